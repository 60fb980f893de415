"""Exercise: sequence log-probabilities (lesson 10, "Step 1 — shift" to "Step 4 — sum over the response").

Replace the TODO with your code, then:
    python -m exercises grade get_batch_logps
    python -m exercises run --student get_batch_logps -- lessons/10_log_probs.py
    python -m exercises run --student get_batch_logps -- -m align.pipeline --quick
"""

import torch


def get_batch_logps(
    logits: torch.Tensor,
    labels: torch.Tensor,
    average_log_prob: bool = False,
    label_pad_token_id: int = -100,
) -> torch.Tensor:
    """log π(y|x) = Σ_t log p_θ(w_{t+1} | w_{1:t}) over the tokens whose label counts.

    logits: (B, T, vocab), the model's output. labels: (B, T), the tokens themselves, with
    label_pad_token_id (-100) where a token must not count (prompt, padding).
    Returns (B,): the sum per row, or with average_log_prob the mean over the counted tokens.

    TODO, the lecture's four steps:
      1. shift: the logits at position t predict the label at t + 1:
         labels[:, 1:] and logits[:, :-1]  (copy the labels before changing them)
      2. mask: loss_mask = labels != label_pad_token_id; put any valid index (0) where masked
      3. gather: log_softmax over the vocabulary, then torch.gather the label's entry
      4. sum the counted positions per row (torch.where, not a product: 0 · −inf is NaN),
         or divide by the count (at least 1) for the average
    A row with no counted token gives 0. Do not change the inputs.
    """
    raise NotImplementedError("exercise get_batch_logps: shift, mask, gather, sum")
