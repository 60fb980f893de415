"""What each RL step is given, checked against independent computations on a real short run.

A short RLOO or PPO run of `align.rlhf.train_rlhf` on tiny checkpoints (tests/test_rlhf_stage's
`stages`: a random byte-level GPT, several prompts of different lengths, answers of up to
10 tokens), with the loss functions wrapped so that every call's inputs are kept. Each
test recomputes one input from what the rollouts hold, by a loop written here:

- PPO's value of the state before each token, V(s_t), from each prefix run alone;
- the returns PPO's value head is fitted to, by a brute-force GAE on those values;
- the whitened advantages, mean 0 and variance 1 over answer tokens (not prompt or padding);
- ρ = 1 on the first minibatch of a step (the policy that sampled is the one updated) and
  ρ ≠ 1 after an update, with some tokens clipped;
- RLOO's leave-one-out baseline, within the k answers to one prompt.
"""

import pytest
import torch

import align.rlhf
import align.rollouts
from align.rlhf import train_rlhf
from tests.test_rlhf_stage import rl_config, stages  # noqa: F401  (stages is a fixture)


def recording(monkeypatch, module, name, calls):
    """Replace module.name by a wrapper that appends (args, result) to calls."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result
    monkeypatch.setattr(module, name, wrapper)


def run_recorded(monkeypatch, config):
    """train_rlhf(config), keeping each step's rollouts (with PPO's V recomputed prefix by
    prefix right after they were collected, before the update) and each loss call."""
    calls = {name: [] for name in ("rollouts", "ppo_clip_loss", "value_clip_loss", "rloo_loss")}
    original = align.rlhf.collect_rollouts

    def collect(*args, **kwargs):
        rollouts = original(*args, **kwargs)
        value_model = args[9] if len(args) > 9 else kwargs.get("value_model")
        calls["rollouts"].append((rollouts, prefix_values(value_model, rollouts)))
        return rollouts
    monkeypatch.setattr(align.rlhf, "collect_rollouts", collect)
    for name in ("ppo_clip_loss", "value_clip_loss", "rloo_loss"):
        recording(monkeypatch, align.rlhf, name, calls[name])
    train_rlhf(config, progress=False)
    return calls


@torch.no_grad()
def prefix_values(value_model, rollouts):
    """V(s_t) for every answer token t + 1: the value head on the tokens up to t alone,
    read at its last position. None without a value model."""
    if value_model is None:
        return None
    values = torch.zeros(rollouts.mask.shape)
    for n, t in rollouts.mask.nonzero().tolist():  # mask[n, t]: token t + 1 is an answer token
        values[n, t] = value_model.values(rollouts.input_ids[n : n + 1, : t + 1])[0, -1]
    return values


def brute_force_returns(rewards, values, mask, gamma, lam):
    """G_t = Â_t + V(s_t), Â_t = Σ_l (γλ)^l δ_{t+l} over the rest of the answer, V = 0 after it."""
    returns = torch.zeros_like(rewards)
    for n in range(rewards.size(0)):
        columns = mask[n].nonzero().flatten().tolist()
        for i, t in enumerate(columns):
            total = 0.0
            for l, u in enumerate(columns[i:]):
                after = values[n, columns[i + l + 1]] if i + l + 1 < len(columns) else 0.0
                total += (gamma * lam) ** l * (rewards[n, u] + gamma * after - values[n, u])
            returns[n, t] = total + values[n, t]
    return returns


def token_rewards(rollouts, beta):
    """r_t = −β·(log π_θ − log π_ref) on each answer token, plus r_φ on the last one."""
    rewards = torch.zeros(rollouts.mask.shape)
    for n in range(rewards.size(0)):
        columns = rollouts.mask[n].nonzero().flatten().tolist()
        for t in columns:
            rewards[n, t] = -beta * (rollouts.logprobs[n, t] - rollouts.ref_logprobs[n, t])
        rewards[n, columns[-1]] += rollouts.scores[n]
    return rewards


def ppo_config(stages, tmp_path):  # noqa: F811
    return rl_config(stages, tmp_path / "ppo", algorithm="ppo", rloo_k=2, batch_size=3,
                     num_ppo_epochs=2, num_mini_batches=2, max_iters=2, eval_interval=2,
                     learning_rate=3e-3, min_lr=3e-3, warmup_iters=0, cliprange=0.05)


def test_ppo_is_given_the_value_of_the_state_before_each_token_and_its_gae_returns(
        stages, tmp_path, monkeypatch):  # noqa: F811
    config = ppo_config(stages, tmp_path)
    calls = run_recorded(monkeypatch, config)
    steps = len(calls["rollouts"])
    assert steps == config.max_iters
    per_step = len(calls["value_clip_loss"]) // steps  # minibatch updates a step
    for step, (rollouts, values) in enumerate(calls["rollouts"]):
        mask = rollouts.mask
        torch.testing.assert_close(rollouts.values[mask], values[mask], atol=1e-5, rtol=1e-5)
        returns = brute_force_returns(token_rewards(rollouts, config.beta), values, mask,
                                      config.gamma, config.lam)
        assert returns[mask].abs().max() > 0
        for args, _, _ in calls["value_clip_loss"][step * per_step : (step + 1) * per_step]:
            _, old_values, given_returns, batch_mask = args[:4]
            rows = [next(n for n in range(len(rollouts)) if torch.equal(
                old_values[i], rollouts.values[n])) for i in range(len(old_values))]
            torch.testing.assert_close(given_returns[batch_mask], returns[rows][batch_mask],
                                       atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "bf16 autocast"])
def test_ppo_whitens_over_answer_tokens_and_its_ratio_is_one_only_before_the_first_update(
        stages, tmp_path, monkeypatch, precision):  # noqa: F811
    """Also under bf16 autocast (on the CPU, standing in for CUDA's): the rollouts' old
    log-probs are computed with all N answers packed together, each minibatch's with a
    subset packed otherwise, and still agree (ρ = 1 before the first update)."""
    if precision == "bf16 autocast":
        bf16 = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
        monkeypatch.setattr(align.rollouts, "autocast_for", bf16)
        monkeypatch.setattr(align.rlhf, "autocast_for", bf16)
    config = ppo_config(stages, tmp_path)
    calls = run_recorded(monkeypatch, config)
    per_step = len(calls["ppo_clip_loss"]) // config.max_iters
    assert per_step == config.num_ppo_epochs * config.num_mini_batches
    for step in range(config.max_iters):
        step_calls = calls["ppo_clip_loss"][step * per_step : (step + 1) * per_step]
        # the first epoch's minibatches cover every rollout once: their advantages together
        first_epoch = step_calls[: config.num_mini_batches]
        advantages = torch.cat([args[2][args[3]] for args, _, _ in first_epoch])
        assert abs(advantages.mean().item()) < 1e-5
        assert abs(advantages.var(unbiased=False).item() - 1) < 1e-4
        ratios = [torch.exp(args[0].detach() - args[1])[args[3]] for args, _, _ in step_calls]
        assert (ratios[0] - 1).abs().max() < 1e-5  # before any update: the sampling policy
        later = torch.cat(ratios[1:])
        assert (later - 1).abs().max() > 1e-3  # after an update: another policy
        assert max(result[1]["clipfrac"] for _, _, result in step_calls[1:]) > 0


def test_rloo_takes_each_baseline_from_the_other_answers_to_the_same_prompt(
        stages, tmp_path, monkeypatch):  # noqa: F811
    config = rl_config(stages, tmp_path / "rloo", rloo_k=3, batch_size=2, max_iters=2,
                       eval_interval=2)  # 2 prompts of 3 answers: a (3, 2) layout mixes them
    calls = run_recorded(monkeypatch, config)
    for (rollouts, _), (args, _, _) in zip(calls["rollouts"], calls["rloo_loss"]):
        sequence_logprobs, advantages = args
        assert len({s.prompt for s in rollouts.samples}) == config.batch_size  # several prompts
        kl = sequence_logprobs.detach() - (rollouts.ref_logprobs * rollouts.mask).sum(-1)
        returns = rollouts.scores - config.beta * kl  # (N,)
        for i, sample in enumerate(rollouts.samples):
            others = [returns[j] for j, other in enumerate(rollouts.samples)
                      if j != i and other.prompt == sample.prompt]
            assert len(others) == config.rloo_k - 1
            expected = returns[i] - sum(others) / len(others)
            assert abs(advantages[i].item() - expected.item()) < 1e-4, i

