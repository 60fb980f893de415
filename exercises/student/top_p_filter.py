"""Exercise: top-p (nucleus) filtering (lesson 1, section "Choosing the next token: greedy, temperature, top-k, top-p").

Replace the TODO with your code, then:
    python -m exercises grade top_p_filter
    python -m exercises run --student top_p_filter -- -m minigpt.sample --help
"""

import torch
import torch.nn.functional as F  # noqa: F401


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probabilities add up to at least p.

    logits: (B, vocab). Returns a new tensor of the same shape and dtype: the kept tokens
    keep their logits, every other token gets -inf (so softmax gives it probability 0).
    The most likely token is always kept; p = 1 keeps every token. p is in (0, 1].

    TODO:
      1. probs = softmax(logits) per row; sort them in decreasing order (torch.sort gives
         the order too)
      2. a token is kept when the mass of the tokens sorted before it is still below p:
         cumsum(sorted) − sorted < p
      3. bring the kept/not-kept flags back to vocabulary order (scatter with the order)
      4. logits.masked_fill(~keep, float("-inf"))
    Careful with p = 1: in float32 the running sum can reach 1.0 before the last tokens.
    """
    raise NotImplementedError("exercise top_p_filter: keep the smallest set with mass ≥ p")
