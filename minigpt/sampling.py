"""Choosing the next token from the model's "lista de probabilidades".

    p(w) = softmax(logits / temperature)(w)

- greedy (temperature 0): always the most likely token;
- temperature T: T < 1 sharpens the distribution, T > 1 flattens it;
- top-k: keep only the k most likely tokens, renormalise, sample;
- top-p (nucleus): keep the smallest set of most likely tokens whose probabilities add
  up to at least p, renormalise, sample.

Filtered-out tokens get logit -inf, so softmax gives them probability exactly 0.

Example:
    >>> logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    >>> top_k_filter(logits, 2)
    tensor([[2., 1., -inf, -inf]])
"""

import torch
import torch.nn.functional as F


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of each row (B, vocab); the others become -inf.

    Ties at the k-th value are all kept. Returns a new tensor.
    """
    if k < 1:
        raise ValueError(f"top_k must be at least 1, got {k}")
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens with total mass ≥ p.

    Sort probabilities in decreasing order; a token is kept when the mass of the tokens
    before it is still below p (so the most likely token is always kept). Returns a new
    tensor (B, vocab) with the others at -inf.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    # >>> solution top_p_filter
    if p == 1.0:
        return logits.clone()  # the whole distribution (float rounding must not cut its tail)
    probs = F.softmax(logits.double(), dim=-1)  # float64: the running sums stay exact enough
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)  # (B, vocab)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # (B, vocab)
    keep_sorted = mass_before < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)  # back to vocab order
    return logits.masked_fill(~keep, float("-inf"))
    # <<< solution


def sample_next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick one token per row from logits (B, vocab): w_t ~ p_θ(·|w_{1:t-1}). Returns (B,)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return torch.argmax(logits, dim=-1)  # greedy
    logits = logits.float() / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits, dim=-1)  # (B, vocab)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
