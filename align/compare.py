"""Comparing policies on held-out prompts with the gold reward r*: the report's numbers.

For each policy (SFT = π_ref, DPO = π_θ, best-of-N over π_ref's samples picked by r_φ):

- answers sampled at temperature 1 (the policy itself) and greedy answers (temperature 0);
- the mean r* with a 95% bootstrap interval, and the breakdown beside it
  (`align.breakdown`: right / wrong / offensive / evasive / off-topic shares, the mean of
  each component, distinct answers, right answers by kind of question);
- paired comparisons with SFT on the same prompts (`align.stats.paired_bootstrap`): the
  difference of mean r*, the win rate (ties ½) and the difference of right-answer shares,
  each with its interval;
- KL(π_θ‖π_ref) on π_θ's own samples, sampled and exact per token (`align.kl`);
- the best fixed answers: a handful of answers that ignore the question, scored on the same
  prompts, so that a policy's mean can be read against what a collapse would get.

Best-of-N: N answers y ~ π_ref(·|x), scored by r_φ(x, y) at their EOS as the reward model
was trained; an answer cut by max_new_tokens (no EOS) is something r_φ never saw, so it is
picked only when no candidate finished.
"""

import torch

from align.breakdown import answer_breakdown, right_flags
from align.gold import gold_reward
from align.kl import kl_report
from align.reward import score_samples
from align.sampling import sample_answers
from align.stats import bootstrap_mean, paired_bootstrap

FIXED_ANSWERS = ("I am Mary.", "Yes.", "Python.", "Hello! How can I help you?",
                 "I am fine, thank you.", "Hello, I am Mary and I am fine. Python.",
                 "I don't know.", "")


@torch.no_grad()
def best_of_n_samples(policy, reward_model, tokenizer, prompts, n, device, seed=0, **sampling):
    """For each prompt, N samples of the policy and the one r_φ scores highest."""
    candidates = [sample_answers(policy, tokenizer, prompts, seed=seed + k, device=device,
                                 **sampling)
                  for k in range(n)]  # n lists of len(prompts)
    n_prompts = len(prompts)
    everything = [sample for samples in candidates for sample in samples]  # (n · prompts)
    scores = score_samples(reward_model, everything, tokenizer.pad_id, device).view(n, n_prompts)
    unfinished = torch.tensor([not s.finished for s in everything], device=scores.device)
    unfinished = unfinished.view(n, n_prompts)
    # an answer cut at max_new_tokens is picked only when all of a prompt's answers were cut
    scores = scores.masked_fill(unfinished & ~unfinished.all(0), float("-inf"))
    best = [candidates[k][i] for i, k in enumerate(scores.argmax(0).tolist())]
    return best


def summarise(prompts, samples, seed) -> dict:
    """Mean r* with its bootstrap interval and the breakdown, for one set of answers."""
    texts = [s.text for s in samples]
    gold = [gold_reward(p, t) for p, t in zip(prompts, texts)]
    mean, low, high = bootstrap_mean(gold, seed=seed)
    right = right_flags(prompts, texts)  # 1.0 / 0.0 per prompt, for the paired comparisons
    right_mean, right_low, right_high = bootstrap_mean(right, seed=seed)
    return {"gold": gold, "right": right, "gold_mean": mean, "gold_interval": (low, high),
            "right_share": right_mean, "right_interval": (right_low, right_high),
            "unfinished": sum(not s.finished for s in samples),
            "breakdown": answer_breakdown(prompts, texts), "texts": texts}


@torch.no_grad()
def evaluate_point(policy, reference, reward_model, tokenizer, prompts, max_new_tokens, device,
                   seed=0, missing_eos_penalty=1.0) -> dict:
    """One point of a training curve or of the frontier: π_θ's own answers (T = 1) to the
    held-out prompts, measured three ways.

    - the gold reward r* (mean with its bootstrap interval) and the breakdown (`summarise`);
    - r_φ's view of the same answers (`reward_model_score`: mean r_φ at the EOS, less
      missing_eos_penalty for an answer cut at max_new_tokens, as RL is paid), so that
      reward over-optimisation shows as r_φ rising while r* does not;
    - KL(π_θ‖π_ref) on those samples, sampled and exact per token (`align.kl`).
    """
    samples = sample_answers(policy, tokenizer, prompts, max_new_tokens=max_new_tokens, seed=seed,
                             device=device)
    point = summarise(prompts, samples, seed)
    point["reward_model_score"] = score_samples(reward_model, samples, tokenizer.pad_id, device,
                                                missing_eos_penalty).mean().item()
    point.update(kl_report(policy, reference, samples, tokenizer.pad_id, device))
    return point


def point_metrics(point: dict, prefix="eval_") -> dict:
    """The scalars of `evaluate_point` for metrics.jsonl (the per-prompt lists stay out)."""
    low, high = point["gold_interval"]
    return {f"{prefix}gold_reward": point["gold_mean"], f"{prefix}gold_reward_low": low,
            f"{prefix}gold_reward_high": high, f"{prefix}right_share": point["right_share"],
            f"{prefix}scores": point["reward_model_score"], f"{prefix}kl": point["kl"],
            f"{prefix}kl_exact_per_token": point["kl_exact_per_token"],
            f"{prefix}kl_exact_per_token_ci": point["kl_exact_per_token_ci"],
            f"{prefix}distinct_answers": point["breakdown"]["distinct_answers"],
            f"{prefix}unfinished": point["unfinished"]}


def paired(ours: dict, theirs: dict, seed) -> dict:
    """ours − theirs on the same prompts: mean r*, win rate, right share; paired intervals."""
    return {
        "gold_difference": paired_bootstrap(ours["gold"], theirs["gold"], "mean_difference",
                                            seed=seed),
        "win_rate": paired_bootstrap(ours["gold"], theirs["gold"], "win_rate", seed=seed),
        "right_share_difference": paired_bootstrap(ours["right"], theirs["right"],
                                                   "mean_difference", seed=seed),
    }


def compare_policies(reference, policies: dict, reward_model, tokenizer, prompts, best_of,
                     max_new_tokens, device, seed=0) -> dict:
    """Everything the report shows about the policies on these prompts (see the docstring).

    policies: name -> aligned model (e.g. {"DPO": π_θ}); SFT is `reference` itself.
    """
    sampling = dict(max_new_tokens=max_new_tokens, device=device)
    models = {"SFT": reference, **policies}
    sampled = {name: sample_answers(model, tokenizer, prompts, seed=seed, **sampling)
               for name, model in models.items()}
    greedy = {name: sample_answers(model, tokenizer, prompts, temperature=0.0, **sampling)
              for name, model in models.items()}
    best_name = f"best-of-{best_of} (r_φ)"
    sampled[best_name] = best_of_n_samples(reference, reward_model, tokenizer, prompts, best_of,
                                           device, seed=seed + 100, max_new_tokens=max_new_tokens)
    results = {"prompts": len(prompts), "distinct_prompts": len(set(prompts)),
               "sampled": {}, "greedy": {}, "paired": {}, "kl": {}}
    for name, samples in sampled.items():
        results["sampled"][name] = summarise(prompts, samples, seed)
    for name, samples in greedy.items():
        results["greedy"][name] = summarise(prompts, samples, seed)
    for name in [*policies, best_name]:
        results["paired"][f"{name} − SFT"] = paired(results["sampled"][name],
                                                    results["sampled"]["SFT"], seed)
    for name in policies:
        results["paired"][f"{name} − SFT, greedy"] = paired(results["greedy"][name],
                                                            results["greedy"]["SFT"], seed)
        results["kl"][name] = kl_report(models[name], reference, sampled[name], tokenizer.pad_id,
                                        device)
    results["fixed_answers"] = {
        answer: sum(gold_reward(p, answer) for p in prompts) / len(prompts)
        for answer in FIXED_ANSWERS}
    return results
