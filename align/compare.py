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
- the fixed answers: the bank of answers that ignore the question (`align.gold.CANNED_ANSWERS`:
  pleasantries, other questions' answers, shotguns, degenerate strings, dodges), each said
  to every prompt, and each policy's paired difference with the best of them, so that a
  policy's mean r* is read against what a collapse onto one answer would get.
- intervals resample the questions the prompts ask (`canonical_question`), not the prompts:
  two wordings of one question are one draw.

Best-of-N: N answers y ~ π_ref(·|x), scored by r_φ(x, y) at their EOS as the reward model
was trained; an answer cut by max_new_tokens (no EOS) is something r_φ never saw, so it is
picked only when no candidate finished.
"""

import torch

from align.breakdown import answer_breakdown, right_flags
from align.gold import CANNED_ANSWERS, gold_reward
from align.kl import kl_report
from align.reward import score_samples
from align.sampling import sample_answers
from align.stats import bootstrap_mean, paired_bootstrap
from toyworld.world import canonical_question

# Answers that ignore the question, said to every prompt (align.gold's bank): a policy's mean
# r* means something only above the best of them.
FIXED_ANSWERS = tuple(answer for answers in CANNED_ANSWERS.values() for answer in answers)


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


def question_groups(prompts) -> list:
    """The question each prompt asks (`canonical_question`), the unit the intervals resample:
    two wordings of one held-out question are one draw of the world's questions."""
    return [canonical_question(p) or p for p in prompts]


def summarise(prompts, samples, seed) -> dict:
    """Mean r* with its bootstrap interval and the breakdown, for one set of answers."""
    texts, finished = [s.text for s in samples], [s.finished for s in samples]
    gold = [gold_reward(p, t, finished=f) for p, t, f in zip(prompts, texts, finished)]
    groups = question_groups(prompts)
    mean, low, high = bootstrap_mean(gold, seed=seed, groups=groups)
    right = right_flags(prompts, texts, finished)  # 1.0 / 0.0 per prompt, for paired comparisons
    right_mean, right_low, right_high = bootstrap_mean(right, seed=seed, groups=groups)
    return {"gold": gold, "right": right, "gold_mean": mean, "gold_interval": (low, high),
            "right_share": right_mean, "right_interval": (right_low, right_high),
            "unfinished": sum(not s.finished for s in samples),
            "breakdown": answer_breakdown(prompts, texts, finished), "texts": texts}


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


def paired(ours: dict, theirs: dict, seed, groups=None) -> dict:
    """ours − theirs on the same prompts: mean r*, win rate, right share; paired intervals
    (resampling the questions the prompts ask when groups are given)."""
    return {
        "gold_difference": paired_bootstrap(ours["gold"], theirs["gold"], "mean_difference",
                                            seed=seed, groups=groups),
        "win_rate": paired_bootstrap(ours["gold"], theirs["gold"], "win_rate", seed=seed,
                                     groups=groups),
        "right_share_difference": paired_bootstrap(ours["right"], theirs["right"],
                                                   "mean_difference", seed=seed, groups=groups),
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
    groups = question_groups(prompts)
    results = {"prompts": len(prompts), "distinct_prompts": len(set(prompts)),
               "distinct_questions": len(set(groups)),
               "sampled": {}, "greedy": {}, "paired": {}, "kl": {}}
    for name, samples in sampled.items():
        results["sampled"][name] = summarise(prompts, samples, seed)
    for name, samples in greedy.items():
        results["greedy"][name] = summarise(prompts, samples, seed)
    for name in [*policies, best_name]:
        results["paired"][f"{name} − SFT"] = paired(results["sampled"][name],
                                                    results["sampled"]["SFT"], seed, groups)
    for name in policies:
        results["paired"][f"{name} − SFT, greedy"] = paired(results["greedy"][name],
                                                            results["greedy"]["SFT"], seed, groups)
        results["kl"][name] = kl_report(models[name], reference, sampled[name], tokenizer.pad_id,
                                        device)
    results.update(against_fixed_answers(prompts, results["sampled"], seed))
    return results


def against_fixed_answers(prompts, sampled: dict, seed=0) -> dict:
    """Each answer of the bank (FIXED_ANSWERS) said to every prompt: its mean r*, the best
    of them, and each policy's paired difference with that best one (sampled answers).

    The best is the bank's highest on these very prompts, so the comparison leans against
    the policy, never for it. Intervals resample the questions, as everywhere here.
    """
    fixed = {answer: [gold_reward(p, answer) for p in prompts] for answer in FIXED_ANSWERS}
    means = {answer: sum(gold) / len(gold) for answer, gold in fixed.items()}
    best = max(means, key=means.get)
    groups = question_groups(prompts)
    return {"fixed_answers": means, "best_fixed_answer": best,
            "minus_best_fixed": {name: paired_bootstrap(summary["gold"], fixed[best],
                                                        "mean_difference", seed=seed,
                                                        groups=groups)
                                 for name, summary in sampled.items()}}
