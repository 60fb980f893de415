"""The formulas of RL on the lecture's RLHF objective, one small function each.

"Función de costo RLHF":

    J_RLHF(π_θ) = E_{x~D, y~π_θ(y|x)} [ r_φ(x, y) − β·D_KL(π_θ(y|x) ‖ π_ref(y|x)) ].

Tensors here are laid out as `align.rollouts` lays out a batch of N answers: (N, L) with
one column per position that predicts the next token, and `mask` (N, L) True where that
next token is an answer token y_t (the prompt and the padding are False). An answer's
tokens are contiguous in its row; its last True column is its last token (its EOS when
it wrote one).

    kl_penalized_rewards   r_t = −β·(log π_θ(y_t|·) − log π_ref(y_t|·)), + r_φ(x, y) on the
                           last token
    rloo_advantages        A_i = R_i − mean_{j≠i} R_j over the k answers to one prompt
    rloo_loss              −mean_i A_i · log π_θ(y_i|x)        (REINFORCE with that baseline)
    gae                    Â_t = Σ_l (γλ)^l δ_{t+l},  δ_t = r_t + γ·V(s_{t+1}) − V(s_t)
    ppo_clip_loss          mean_t max(−Â_t·ρ_t, −Â_t·clip(ρ_t, 1−ε, 1+ε)),  ρ_t = π_θ/π_θ_old
    value_clip_loss        ½·mean_t max((V_t − G_t)², (clip(V_t, V_old ± ε_V) − G_t)²)

Why the sum of the per-token rewards is the lecture's J: log π(y|x) = Σ_t log π(y_t|x, y_<t),
so for one sampled answer

    Σ_t r_t = r_φ(x, y) − β·Σ_t [log π_θ(y_t|·) − log π_ref(y_t|·)]
            = r_φ(x, y) − β·log π_θ(y|x)/π_ref(y|x),

and the mean of log π_θ(y|x)/π_ref(y|x) over y ~ π_θ is D_KL(π_θ ‖ π_ref) (align.kl). So
E_{y~π_θ}[Σ_t r_t] = J_RLHF at x: maximising the return (γ = 1) maximises J.

Example:
    >>> rloo_advantages(torch.tensor([[1.0, 2.0, 3.0]]))  # each minus the mean of the other two
    tensor([[-1.5000,  0.0000,  1.5000]])
"""

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values over the positions where mask is True (every answer token weighs the same)."""
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """(N,) the column of each row's last True entry (its answer's last token)."""
    columns = torch.arange(mask.size(1), device=mask.device).expand_as(mask)  # (N, L)
    return torch.where(mask, columns, -1).max(dim=1).values  # (N,)


def kl_penalized_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor,
                         mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards of RLHF: the KL penalty on every answer token, r_φ on the last one.

    logprobs, ref_logprobs: (N, L) log π_θ(y_t|·) and log π_ref(y_t|·) of the sampled tokens;
    scores: (N,) r_φ(x, y); mask: (N, L) True on answer tokens. Returns (N, L), 0 off the answer:

        r_t = −β·(log π_θ(y_t|x, y_<t) − log π_ref(y_t|x, y_<t))  +  [t = last] · r_φ(x, y).
    """
    # >>> solution kl_penalized_rewards
    rewards = -beta * (logprobs - ref_logprobs)  # (N, L)
    rewards = torch.where(mask, rewards, 0.0)
    rows = torch.arange(mask.size(0), device=mask.device)
    last = last_token_index(mask)  # (N,); -1 for a row with no answer token, which gets nothing
    paid = torch.where(mask.any(dim=1), scores.to(rewards.dtype), 0.0)
    rewards[rows, last] = rewards[rows, last] + paid
    return rewards
    # <<< solution


def rloo_advantages(returns: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out (Ahmadian et al. 2024): each answer's baseline is the mean
    return of the other k − 1 answers to the same prompt.

    returns: (P, k), k ≥ 2 answers for each of P prompts. Returns (P, k):

        A_i = R_i − 1/(k−1) · Σ_{j≠i} R_j  =  k/(k−1) · (R_i − mean_j R_j).

    The baseline does not depend on answer i itself, so E[A_i ∇ log π_θ(y_i|x)] is still the
    policy gradient (the baseline's term has expectation 0), with much less variance.
    """
    if returns.dim() != 2 or returns.size(1) < 2:
        raise ValueError(f"rloo_advantages needs returns of shape (prompts, k) with k ≥ 2, "
                         f"got {tuple(returns.shape)}")
    # >>> solution rloo_advantages
    k = returns.size(1)
    others = (returns.sum(dim=1, keepdim=True) - returns) / (k - 1)  # (P, k) mean of the others
    return returns - others
    # <<< solution


def rloo_loss(sequence_logprobs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """−mean_i A_i · log π_θ(y_i|x): its gradient is the REINFORCE estimate of −∇J.

    sequence_logprobs (N,) with gradient (Σ_t log π_θ(y_t|·)); advantages (N,), no gradient.
    The same update as the cat's `reinforce_loss` (gridworld), with the answer as one action.
    """
    return -(advantages.detach() * sequence_logprobs).mean()


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), by a plain loop over positions.

    rewards, values: (N, L), values V(s_t) of the state before each answer token; mask
    (N, L). After an answer's last token the episode is over: V = 0 there. Returns
    (advantages (N, L), returns (N, L)), 0 off the answer, where

        δ_t = r_t + γ·V(s_{t+1}) − V(s_t),    Â_t = δ_t + γλ·Â_{t+1}  (= Σ_l (γλ)^l δ_{t+l}),
        G_t = Â_t + V(s_t)                    (the value head's target).
    """
    # >>> solution gae
    rewards = torch.where(mask, rewards, 0.0)
    values = torch.where(mask, values, 0.0)  # V = 0 after the answer (and before it)
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])  # (N,)
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = delta + gamma * lam * next_advantage
        next_value, next_advantage = values[:, t], advantages[:, t]
    advantages = torch.where(mask, advantages, 0.0)
    return advantages, torch.where(mask, advantages + values, 0.0)
    # <<< solution


def whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(values − mean) / std over the masked positions (PPO's whitened advantages); 0 elsewhere."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return torch.where(mask, (values - mean) * torch.rsqrt(variance + eps), 0.0)


def ppo_clip_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                  mask: torch.Tensor, clip_range: float = 0.2) -> tuple[torch.Tensor, dict]:
    """PPO's clipped surrogate (Schulman et al. 2017), as a loss to minimise.

    logprobs (N, L) of π_θ now (with gradient); old_logprobs (N, L) of the π_θ that sampled
    the answers; advantages (N, L). With ρ_t = exp(log π_θ − log π_θ_old):

        loss = mean over answer tokens of max(−Â_t·ρ_t, −Â_t·clip(ρ_t, 1 − ε, 1 + ε)).

    Returns (loss, stats) with stats (floats): clipfrac, the share of tokens where the
    clipped term was the larger; approxkl, ½·mean (log ρ_t)²; ratio, the mean ρ_t.
    """
    # >>> solution ppo_clip_loss
    log_ratio = logprobs - old_logprobs.detach()  # (N, L)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    stats = {"clipfrac": masked_mean((clipped > unclipped).float(), mask).item(),
             "approxkl": masked_mean(0.5 * log_ratio.detach() ** 2, mask).item(),
             "ratio": masked_mean(ratio.detach(), mask).item()}
    return loss, stats
    # <<< solution


def value_clip_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                    mask: torch.Tensor,
                    clip_range_value: float = 0.2) -> tuple[torch.Tensor, float]:
    """PPO's clipped value loss: the value head may not move further than ε_V from the
    value it had when the answers were sampled, in one rollout batch.

        loss = ½ · mean over answer tokens of max((V_t − G_t)², (clip(V_t, V_old ± ε_V) − G_t)²).

    Returns (loss, clipfrac: the share of tokens where the clipped error was the larger).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range_value,
                                              clip_range_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask)
    return loss, masked_mean((clipped_error > unclipped_error).float(), mask).item()
