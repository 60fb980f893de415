"""Exercise: causal attention (lesson 2, section "One new token, by hand").

Replace the TODO with your code, then:
    python -m exercises grade causal_attention
    python -m exercises run --student causal_attention -- lessons/02_attention_and_generation.py
    python -m exercises run --student causal_attention -- -m minigpt.train --max-iters 300
"""

import math  # noqa: F401  (you will want math.sqrt)

import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401


def causal_attention(q, k, v, allowed, dropout=None):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V, for every head at once.

    q: (B, nh, T, hs), the queries of this call's T tokens.
    k, v: (B, nh, T_k, hs), the keys and values of every token they may look at
          (T_k = T, or the cached T_past + T while generating).
    allowed: boolean (B or 1, 1, T, T_k); False where query i must not see key j
             (a later token, or padding). Built by minigpt.model.attention_allowed.
             None: every key is allowed (the model passes None for one new token
             without padding: every cached token is in its past).
    dropout: None, or a function to apply to the weights A before they weigh V.
    Returns y: (B, nh, T, hs).

    TODO, in four lines:
      1. scores = q Kᵀ / √d_k                      (B, nh, T, T_k); d_k = q.size(-1)
      2. put -inf where allowed is False            softmax then gives those keys weight 0
                                                    (nothing to do when allowed is None)
      3. A = softmax over the keys (the last dim)   each row sums to 1; then A = dropout(A) if given
      4. y = A @ v
    Do not change q, k, v or allowed in place.
    """
    raise NotImplementedError("exercise causal_attention: write softmax(q Kᵀ/√d_k + mask) V")
