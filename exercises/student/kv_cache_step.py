"""Exercise: one generation step with a KV cache (lesson 2, section "The KV cache").

Replace the TODO with your code, then:
    python -m exercises grade kv_cache_step
    python -m exercises run --student kv_cache_step -- lessons/02_attention_and_generation.py
"""

import torch


@torch.no_grad()
def kv_cache_step(model, idx, cache, attention_mask=None):
    """The logits of the token that follows idx, computing only what the cache lacks.

    model: a minigpt GPT. idx: (B, T), every token so far.
    cache: a minigpt.model.KVCache holding the keys and values of the first cache.length
           tokens of idx: 0 at the first step (the prompt), T − 1 at every later step.
    attention_mask: None, or (B, T) with 1 for real tokens and 0 for left padding.
    Returns the next-token logits, (B, vocab).

    `model(tokens, attention_mask=..., kv_cache=cache)` runs the model on tokens that
    come after the cached ones: it reads positions and the past keys and values from the
    cache, attends over all of them, and appends the new keys and values to the cache.
    Its attention_mask covers every token, cached and new: pass the one you were given.
    (Without padding the model then calls causal_attention with allowed=None for the one
    new token: if causal_attention is yours too, its check "allowed=None too" must pass.)

    TODO:
      1. the tokens the cache does not hold yet: idx[:, cache.length:]
      2. run the model on them with kv_cache=cache; it returns (logits (B, T_new, vocab), loss)
      3. return the logits at the last position
    """
    raise NotImplementedError("exercise kv_cache_step: feed only the tokens the cache lacks")
