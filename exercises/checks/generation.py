"""Checks for the exercises of lessons 1 and 2: causal attention, one KV-cache step, top-p.

Each check builds its own inputs and computes what to expect independently of the
reference: a per-position loop of the slide's formula in float64, the model run without a
cache, a brute-force search over sorted probabilities.
"""

import math

import torch

from exercises.grading import check, expect, expect_close
from exercises.switch import swapped
from minigpt.model import GPT, GPTConfig, KVCache, attention_allowed, pad_left
from minigpt.sampling import sample_next_token

# ------------------------------------------------------------------------ causal attention
B, NH, HS = 2, 3, 4  # batch, heads, head size d_k


def random_qkv(T, T_k, seed=0):
    """q (B, nh, T, hs), k and v (B, nh, T_k, hs) in float64."""
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(B, NH, T, HS, dtype=torch.float64, generator=generator)
    k = torch.randn(B, NH, T_k, HS, dtype=torch.float64, generator=generator)
    v = torch.randn(B, NH, T_k, HS, dtype=torch.float64, generator=generator)
    return q, k, v


def attention_by_loop(q, k, v, allowed):
    """For every query i: y_i = Σ_j a_ij v_j, a_i = softmax_j(q_i·k_j / √d_k) over allowed j."""
    y = torch.zeros_like(q)
    allowed = allowed.expand(q.size(0), q.size(1), q.size(2), k.size(2))
    for b in range(q.size(0)):
        for h in range(q.size(1)):
            for i in range(q.size(2)):
                js = [j for j in range(k.size(2)) if allowed[b, h, i, j]]
                scores = torch.stack([q[b, h, i] @ k[b, h, j] / math.sqrt(q.size(-1)) for j in js])
                weights = torch.exp(scores - scores.max())
                weights = weights / weights.sum()
                y[b, h, i] = sum(w * v[b, h, j] for w, j in zip(weights, js))
    return y


@check("causal_attention", "shape", "y has the queries' shape (B, nh, T, hs), for T = T_k and for T = 1")
def attention_shape(causal_attention):
    q, k, v = random_qkv(5, 5)
    y = causal_attention(q, k, v, attention_allowed(0, 5, None))
    expect(isinstance(y, torch.Tensor), f"expected a tensor, got {type(y).__name__}")
    expect(tuple(y.shape) == (B, NH, 5, HS), f"y has shape {tuple(y.shape)}, expected (B, nh, T, hs) "
           f"= {(B, NH, 5, HS)}; did you return the weights A instead of A @ v?")
    q, k, v = random_qkv(1, 6)
    y = causal_attention(q, k, v, attention_allowed(5, 1, None))
    expect(tuple(y.shape) == (B, NH, 1, HS), f"with one query and 6 cached keys, y has shape "
           f"{tuple(y.shape)}, expected {(B, NH, 1, HS)}")


def expect_like_loop(causal_attention, T, past, what, seed, attention_mask=None):
    """Compare with the loop: T new queries after `past` cached tokens, optionally padded."""
    q, k, v = random_qkv(T, past + T, seed)
    allowed = attention_allowed(past, T, attention_mask)  # (B or 1, 1, T, T_k)
    expect_close(causal_attention(q, k, v, allowed), attention_by_loop(q, k, v, allowed), what, atol=1e-10)


@check("causal_attention", "values", "y equals a per-position loop of softmax(q·kᵀ/√d_k)·v (float64)")
def attention_values(causal_attention):
    expect_like_loop(causal_attention, 5, 0, "y for 5 tokens, causal mask", seed=1)


@check("causal_attention", "property", "causality: changing a later token's k or v changes no earlier output")
def attention_causality(causal_attention):
    q, k, v = random_qkv(6, 6, seed=2)
    allowed = attention_allowed(0, 6, None)
    y = causal_attention(q, k, v, allowed)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 4:] += 10.0
    v2[:, :, 4:] -= 10.0
    y2 = causal_attention(q, k2, v2, allowed)
    changed = (y2[:, :, :4] - y[:, :, :4]).abs().max().item()
    expect(changed < 1e-12, f"changing tokens 4 and 5 changed the outputs of tokens 0-3 by up to "
           f"{changed:.3g}: a query must not see later keys; set the score to -inf where "
           f"allowed is False before the softmax")


@check("causal_attention", "values", "a cached step (T = 1 query, 7 keys; allowed=None too) and left padding")
def attention_cache_and_padding(causal_attention):
    expect_like_loop(causal_attention, 1, 6, "y of one new query over 7 cached keys", seed=3)
    q, k, v = random_qkv(1, 7, seed=3)
    every_key = torch.ones(1, 1, 1, 7, dtype=torch.bool)
    try:
        y = causal_attention(q, k, v, None)
    except (TypeError, AttributeError) as error:  # ~None, allowed.logical_not(): not optional
        expect(False, f"causal_attention(q, k, v, allowed=None) raised {type(error).__name__} ({error}): "
               f"None means every key is allowed, so skip the masking step")
    expect_close(y, attention_by_loop(q, k, v, every_key),
                 "y of one new query over 7 cached keys with allowed=None (the model's generation "
                 "step without padding: nothing to mask)", atol=1e-10)
    row_0_padded = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])  # two pads on the left of row 0
    expect_like_loop(causal_attention, 5, 0, "y with a left-padded row (padding keys not allowed)", seed=4,
                     attention_mask=row_0_padded)


@check("causal_attention", "property", "dropout is applied to the weights A (rows summing to 1) before A·V")
def attention_dropout(causal_attention):
    q, k, v = random_qkv(4, 4, seed=5)
    allowed = attention_allowed(0, 4, None)
    seen = []
    keep = (torch.arange(B * NH * 4 * 4).view(B, NH, 4, 4) % 3 != 0).double()  # a fixed "dropout" mask

    def dropout(A):
        seen.append(A.detach().clone())
        return A * keep

    y = causal_attention(q, k, v, allowed, dropout)
    expect(len(seen) == 1, f"dropout was called {len(seen)} times, expected once, on A")
    A = seen[0]
    expect(tuple(A.shape) == (B, NH, 4, 4), f"dropout got a tensor of shape {tuple(A.shape)}, "
           f"expected the weights A (B, nh, T, T_k) = {(B, NH, 4, 4)}")
    expect_close(A.sum(-1), torch.ones(B, NH, 4), "the rows of A passed to dropout (should sum to 1)")
    expect(bool((A[~allowed.expand_as(A)] == 0).all()), "A has weight on keys that are not allowed")
    expect_close(y, (A * keep) @ v, "y after dropout: expected dropout(A) @ v", atol=1e-10)
    y_none = causal_attention(q, k, v, allowed, None)
    expect_close(y_none, attention_by_loop(q, k, v, allowed), "y with dropout=None", atol=1e-10)


@check("causal_attention", "gradient", "gradients flow to q, k and v and equal the loop's")
def attention_gradient(causal_attention):
    q, k, v = random_qkv(4, 4, seed=6)
    allowed = attention_allowed(0, 4, None)
    weights = torch.randn(B, NH, 4, HS, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    grads = []
    for function in (causal_attention, attention_by_loop):
        inputs = [t.clone().requires_grad_(True) for t in (q, k, v)]
        (function(*inputs, allowed) * weights).sum().backward()
        grads.append([t.grad for t in inputs])
    for name, yours, expected in zip("qkv", *grads):
        expect(yours is not None, f"no gradient reached {name}: is something detached?")
        expect_close(yours, expected, f"∂L/∂{name}", atol=1e-9)


@check("causal_attention", "property", "q, k, v and allowed are left unchanged")
def attention_no_mutation(causal_attention):
    q, k, v = random_qkv(4, 4, seed=8)
    allowed = attention_allowed(0, 4, None)
    before = [t.clone() for t in (q, k, v, allowed)]
    causal_attention(q, k, v, allowed)
    for name, now, then in zip(("q", "k", "v", "allowed"), (q, k, v, allowed), before):
        expect(torch.equal(now, then), f"{name} was changed in place; compute new tensors instead")


@check("causal_attention", "model", "inside a GPT: the same logits as PyTorch's fused attention (sdpa)")
def attention_in_model(causal_attention):
    torch.manual_seed(0)
    config = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=8, attention="manual")
    manual = GPT(config).double().eval()
    fused = GPT(GPTConfig(**{**config.to_dict(), "attention": "sdpa"})).double().eval()
    fused.load_state_dict(manual.state_dict())
    idx = torch.randint(0, 11, (2, 12))
    with swapped("causal_attention", causal_attention):
        logits, _ = manual(idx)
    expected, _ = fused(idx)
    expect_close(logits, expected, "the GPT's logits with your attention", atol=1e-9)


# --------------------------------------------------------------------------- KV-cache step
def small_model(seed=0):
    torch.manual_seed(seed)
    config = GPTConfig(block_size=32, vocab_size=13, n_layer=2, n_head=2, n_embd=8)
    return GPT(config).double().eval()


def prompt_and_empty_cache(rows, length, seed):
    """A small float64 GPT, a random prompt (rows, length) and an empty KVCache for it."""
    model = small_model()
    idx = torch.randint(0, 13, (rows, length), generator=torch.Generator().manual_seed(seed))
    return model, idx, KVCache(model.config.n_layer)


def full_logits(model, idx, attention_mask=None):
    """The next-token logits (B, vocab) by running the model on every token, no cache."""
    logits, _ = model(idx, attention_mask=attention_mask)
    return logits[:, -1, :]


@check("kv_cache_step", "values", "first step (empty cache): the logits after the prompt, (B, vocab)",
       section="The KV cache")
def cache_first_step(kv_cache_step):
    model, idx, cache = prompt_and_empty_cache(2, 6, seed=1)
    logits = kv_cache_step(model, idx, cache)
    expect(isinstance(logits, torch.Tensor) and tuple(logits.shape) == (2, 13),
           f"expected logits (B, vocab) = (2, 13), got "
           f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}; "
           f"return only the last position's logits")
    expect_close(logits, full_logits(model, idx), "logits after a 6-token prompt", atol=1e-10)
    expect(cache.length == 6, f"after the first step the cache holds {cache.length} tokens, expected "
           f"6: pass kv_cache=cache to the model so it stores the prompt's keys and values")


@check("kv_cache_step", "values", "later steps: the same logits as recomputing everything")
def cache_later_steps(kv_cache_step):
    model, idx, cache = prompt_and_empty_cache(2, 5, seed=2)
    kv_cache_step(model, idx, cache)
    for step in range(3):
        idx = torch.cat([idx, torch.tensor([[step + 1], [step + 4]])], dim=1)  # append one token per row
        logits = kv_cache_step(model, idx, cache)
        expect_close(logits, full_logits(model, idx), f"logits at step {step + 2} ({idx.size(1)} tokens)",
                     atol=1e-10)
        expect(cache.length == idx.size(1), f"after a step with {idx.size(1)} tokens the cache holds "
               f"{cache.length}; expected {idx.size(1)}")


@check("kv_cache_step", "property", "a later step feeds the model only the one new token")
def cache_feeds_one_token(kv_cache_step):
    model, idx, cache = prompt_and_empty_cache(1, 8, seed=3)
    kv_cache_step(model, idx, cache)
    fed = []
    hook = model.wte.register_forward_hook(lambda module, args, out: fed.append(args[0].shape[-1]))
    try:
        kv_cache_step(model, torch.cat([idx, torch.tensor([[4]])], dim=1), cache)
    finally:
        hook.remove()
    expect(fed == [1], f"in the second step the model was fed {fed[0] if len(fed) == 1 else fed} tokens; "
           f"the cache already holds the first 8, so feed only idx[:, cache.length:] (1 token)")


@check("kv_cache_step", "values", "left-padded prompts: the attention mask is passed on")
def cache_with_padding(kv_cache_step):
    model = small_model()
    idx, mask = pad_left([[3, 1, 4, 1, 5], [9, 2]], pad_id=0)
    cache = KVCache(model.config.n_layer)
    expect_close(kv_cache_step(model, idx, cache, mask), full_logits(model, idx, mask),
                 "first-step logits with a left-padded row", atol=1e-10)
    idx = torch.cat([idx, torch.tensor([[7], [8]])], dim=1)
    mask = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], dim=1)
    expect_close(kv_cache_step(model, idx, cache, mask), full_logits(model, idx, mask),
                 "second-step logits with a left-padded row", atol=1e-10)


@check("kv_cache_step", "model", "GPT.generate with your step gives the tokens of generating without a cache",
       section="Measured speed-up of `GPT.generate(use_cache=True)`")
def cache_in_generate(kv_cache_step):
    model = small_model(seed=4)
    idx, mask = pad_left([[1, 2, 3], [4, 5, 6, 7, 8]], pad_id=0)
    expected = model.generate(idx, 20, temperature=0.0, use_cache=False, attention_mask=mask)
    with swapped("kv_cache_step", kv_cache_step):
        tokens = model.generate(idx, 20, temperature=0.0, use_cache=True, attention_mask=mask)
    expect(torch.equal(tokens, expected), "greedy generation with your cached step produced other "
           f"tokens than without a cache:\n      yours    {tokens.tolist()}\n      expected {expected.tolist()}")


# -------------------------------------------------------------------------------- top-p
def nucleus_by_search(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Boolean (vocab,): the smallest set of most likely tokens whose mass is at least p."""
    order = sorted(range(probs.numel()), key=lambda i: -probs[i].item())
    kept, mass = [], 0.0
    for i in order:
        kept.append(i)
        mass += probs[i].item()
        if mass >= p:
            break
    keep = torch.zeros(probs.numel(), dtype=torch.bool)
    keep[kept] = True
    return keep


def random_logits(rows=3, vocab=12, seed=0):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 2.0


@check("top_p_filter", "shape", "returns a new tensor of the logits' shape and dtype")
def top_p_shape(top_p_filter):
    logits = random_logits()
    before = logits.clone()
    out = top_p_filter(logits, 0.7)
    expect(isinstance(out, torch.Tensor) and out.shape == logits.shape and out.dtype == logits.dtype,
           f"expected a {logits.dtype} tensor of shape {tuple(logits.shape)}, got "
           f"{(out.dtype, tuple(out.shape)) if isinstance(out, torch.Tensor) else type(out).__name__}")
    expect(torch.equal(logits, before), "the input logits were changed in place; return a new tensor")


@check("top_p_filter", "values", "keeps exactly the brute-force nucleus, with its logits unchanged and -inf elsewhere")
def top_p_values(top_p_filter):
    for seed, p in [(0, 0.5), (1, 0.7), (2, 0.9), (3, 0.95), (4, 0.3)]:
        logits = random_logits(seed=seed)
        out = top_p_filter(logits, p)
        probs = torch.softmax(logits.double(), dim=-1)
        for row in range(logits.size(0)):
            expected = nucleus_by_search(probs[row], p)
            kept = torch.isfinite(out[row])
            expect(torch.equal(kept, expected),
                   f"p = {p}, row {row}: you kept {int(kept.sum())} tokens {kept.nonzero()[:, 0].tolist()}, "
                   f"expected the {int(expected.sum())} most likely {expected.nonzero()[:, 0].tolist()} "
                   f"(probabilities {[round(x, 3) for x in probs[row].tolist()]})")
            expect(torch.equal(out[row][kept], logits[row][kept]), f"p = {p}, row {row}: the kept logits "
                   "changed; keep their values (softmax renormalises later)")
            expect(bool((out[row][~kept] == float("-inf")).all()), f"p = {p}, row {row}: filtered tokens "
                   "must be -inf, so softmax gives them probability exactly 0")


@check("top_p_filter", "property", "the most likely token is always kept, even for a tiny p")
def top_p_keeps_top(top_p_filter):
    logits = random_logits(seed=5)
    out = top_p_filter(logits, 1e-6)
    kept = torch.isfinite(out)
    expect(bool((kept.sum(-1) == 1).all()) and bool(kept.gather(1, logits.argmax(-1, keepdim=True)).all()),
           f"with p = 1e-6 each row should keep just its most likely token; kept {kept.sum(-1).tolist()} tokens")


@check("top_p_filter", "property", "p = 1 keeps every token, however unlikely")
def top_p_one(top_p_filter):
    logits = torch.tensor([[30.0, 0.0, -5.0, -30.0, 1.0]])
    out = top_p_filter(logits, 1.0)
    expect(bool(torch.isfinite(out).all()), f"with p = 1 every token must stay; got {out.tolist()}. "
           "(In float32 the cumulative sum of the probabilities may reach 1 before the last tokens.)")
    expect(out is not logits and out.data_ptr() != logits.data_ptr(),
           "with p = 1 you returned the input tensor itself; return a new tensor (logits.clone())")


@check("top_p_filter", "model", "sampling with top_p draws only from the nucleus",
       section="Choosing the next token: greedy, temperature, top-k, top-p")
def top_p_in_sampling(top_p_filter):
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.06, 0.04]]))
    generator = torch.Generator().manual_seed(0)
    with swapped("top_p_filter", top_p_filter):
        draws = {int(sample_next_token(logits, 1.0, top_p=0.75, generator=generator)) for _ in range(300)}
    expect(draws == {0, 1}, f"300 draws with top_p = 0.75 from probabilities [0.5, 0.3, 0.1, 0.06, 0.04] "
           f"gave tokens {sorted(draws)}; expected exactly {{0, 1}}")
