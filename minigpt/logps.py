"""Scoring a sequence: the log-probability the model gives to a response.

The DPO loss needs log π_θ(y|x) and log π_ref(y|x) (the lecture's "¿Cómo calculamos las
log-probs?"). For a sequence of tokens w_1 … w_T whose response part is marked in labels,

    log π(y|x) = Σ_t log p_θ(w_{t+1} | w_{1:t})   over the response tokens w_{t+1},

which takes four steps on the model's logits (B, T, vocab):
  1. shift: the logits at position t predict the token at position t+1, so drop the
     last logit and the first label;
  2. mask: labels equal to -100 (prompt and padding) do not count;
  3. gather: from log_softmax over the vocabulary, pick the log-probability of the
     actual next token;
  4. sum over the sequence (or average over the counted tokens).

The sum is the log-probability of the whole response (DPO paper, TRL). The average is
the mean per-token log-probability: it no longer grows with length, so the same β in
β·(log π_θ − log π_ref) then weighs a log-ratio per token rather than per sequence.

Example:
    >>> logits = torch.zeros(1, 3, 4)               # uniform over 4 tokens
    >>> labels = torch.tensor([[-100, 2, 3]])        # the first token is the prompt
    >>> get_batch_logps(logits, labels)              # two tokens, each log(1/4)
    tensor([-2.7726])
"""

import torch


def get_batch_logps(
    logits: torch.Tensor,
    labels: torch.Tensor,
    average_log_prob: bool = False,
    label_pad_token_id: int = -100,
) -> torch.Tensor:
    """Log-probabilities of the labels under the logits, summed (or averaged) per row.

    logits: (B, T, vocab), unnormalised. labels: (B, T), with label_pad_token_id where a
    token must not count. Returns (B,). Never changes its inputs. A row whose labels are
    all masked gives 0, for the sum and for the average alike.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must share "
            f"batch and sequence dimensions: expected logits (B, T, vocab) and labels (B, T)"
        )
    # >>> solution get_batch_logps
    labels = labels[:, 1:].clone()  # (B, T-1): the token that follows each position
    logits = logits[:, :-1, :]  # (B, T-1, vocab): the prediction made at each position
    loss_mask = labels != label_pad_token_id  # (B, T-1), True where the token counts

    labels[~loss_mask] = 0  # any valid index; these positions are set to 0 below
    # Upcast half precision so log_softmax is accurate; float64 stays float64.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    per_token_logps = torch.gather(
        logits.log_softmax(dim=-1), dim=2, index=labels.unsqueeze(2)
    ).squeeze(2)  # (B, T-1): log p(next token)

    # keep counted tokens, 0 elsewhere (a masked -inf times 0 would be NaN; where is not)
    total = torch.where(loss_mask, per_token_logps, 0.0).sum(-1)  # (B,)
    if average_log_prob:
        return total / loss_mask.sum(-1).clamp(min=1)  # an all-masked row: 0 / 1 = 0
    return total
    # <<< solution


def token_logps(logits: torch.Tensor, labels: torch.Tensor, label_pad_token_id: int = -100):
    """Steps 1–3 of `get_batch_logps` without the sum: each counted token's own log-prob.

    RL needs them one by one (a KL penalty per token, PPO's ratio per token). logits
    (B, T, vocab), labels (B, T). Returns (per_token (B, T-1), mask (B, T-1)): per_token[b, t]
    = log p(labels[b, t+1] | tokens ≤ t) where mask is True, 0 elsewhere; so
    per_token.sum(-1) is get_batch_logps(logits, labels).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must "
                         f"share batch and sequence dimensions: expected logits (B, T, vocab) and "
                         f"labels (B, T)")
    next_tokens = labels[:, 1:]  # (B, T-1)
    mask = next_tokens != label_pad_token_id
    logits = logits[:, :-1, :].to(torch.promote_types(logits.dtype, torch.float32))
    per_token = torch.gather(logits.log_softmax(dim=-1), dim=2,
                             index=torch.where(mask, next_tokens, 0).unsqueeze(2)).squeeze(2)
    return torch.where(mask, per_token, 0.0), mask  # (B, T-1), (B, T-1)
