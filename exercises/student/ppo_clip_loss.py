"""Exercise: PPO's clipped objective (lesson 11, section "PPO's clipped objective").

Replace the TODO with your code, then:
    python -m exercises grade ppo_clip_loss
    python -m exercises run --student ppo_clip_loss -- lessons/11_rlhf_by_rl.py
    python -m exercises run --student ppo_clip_loss -- -m align.rlhf --algorithm ppo --init runs/pipeline/sft \\
        --reward runs/pipeline/reward --data runs/pipeline/data/pairs_train.jsonl --out-dir runs/my-ppo
"""

import torch


def ppo_clip_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                  mask: torch.Tensor, clip_range: float = 0.2) -> tuple[torch.Tensor, dict]:
    """PPO's clipped surrogate (Schulman et al. 2017), as a loss to minimise.

    logprobs (N, L) of π_θ now (with gradient); old_logprobs (N, L) of the π_θ that sampled
    the answers (constants); advantages (N, L); mask (N, L), True on answer tokens. With
    ρ_t = exp(log π_θ − log π_θ_old):

        loss = mean over answer tokens of max(−Â_t·ρ_t, −Â_t·clip(ρ_t, 1 − ε, 1 + ε)).

    Returns (loss, stats) with stats (Python floats): clipfrac, the share of answer tokens
    where the clipped term was the larger; approxkl, ½·mean (log ρ_t)²; ratio, the mean ρ_t.

    TODO: ρ from the difference of log-probs (old_logprobs detached); the two terms, their
    elementwise maximum (torch.maximum), its mean over the mask's True positions only
    (align.rl_losses.masked_mean may help). Then the three stats over the same positions,
    without gradient (.item()). Where the clipped term is the larger its gradient is 0:
    that is what keeps π_θ near π_θ_old.
    """
    raise NotImplementedError("exercise ppo_clip_loss: mean of max(−Â·ρ, −Â·clip(ρ, 1 − ε, 1 + ε))")
