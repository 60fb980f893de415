# %% [markdown]
# # Lesson 2 — Attention and iterative generation (Generando de forma iterativa el siguiente token)
#
# A GPT generates one token at a time: compute p_θ(w_t | w_{1:t-1}), pick a token, append
# it, repeat. Inside each layer the newest token's query q_t looks at the keys K and
# values V of all tokens so far:
#
#     scores = q_t Kᵀ / √d_k          (1 × d_k)(d_k × T) → 1 × T
#     A      = softmax(scores)         1 × T, sums to 1
#     out    = A V  (the slide's V·A)  (1 × T)(T × d_k) → 1 × d_k
#
# Only q_t is new at each step: K and V of the earlier tokens do not change, so they are
# kept in a **KV cache** instead of being recomputed. We compute one step by hand with the
# model's own first layer, check it against the model, then time generation with and
# without the cache.

# %%
from lesson_setup import lesson_paths, token_label  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect
import math
import time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from minigpt import GPT, ByteTokenizer, GPTConfig, KVCache
from minigpt.model import CausalSelfAttention, attention_allowed, causal_attention, kv_cache_step

torch.manual_seed(0)

# %% [markdown]
# ## The model's attention, as written in `minigpt/model.py`
#
# The layer splits its input into q, k, v for every head, and `causal_attention` computes
# softmax(q Kᵀ/√d_k + mask) V (exercise `causal_attention`).

# %%
print(inspect.getsource(CausalSelfAttention.forward))
print(inspect.getsource(causal_attention))

# %% [markdown]
# ## One new token, by hand
#
# A small GPT (random θ: the arithmetic of attention does not depend on training) and a
# byte-level prompt. We take the input of the first block's attention, LN(x), and split
# `c_attn`'s output into q, k, v exactly as the model does.

# %%
tokenizer = ByteTokenizer()
config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=512 if not SMOKE else 64,
                   n_layer=1 if SMOKE else 4, n_head=4, n_embd=32 if SMOKE else 128)
model = GPT(config).eval()
prompt = "User: Where is Lima?\nAssistant:"
idx = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
B, T = idx.shape
C, n_head = config.n_embd, config.n_head
d_k = C // n_head
print(f"prompt {prompt!r}: T = {T} tokens; C = n_embd = {C}, {n_head} heads, d_k = C / n_head = {d_k}")

block = model.blocks[0]
with torch.no_grad():
    x = model.wte(idx) + model.wpe(torch.arange(T).view(1, T))  # (1, T, C)
    h = block.ln_1(x)  # (1, T, C): what attention reads
    q, k, v = block.attn.c_attn(h).split(C, dim=2)  # each (1, T, C)

head = 0
cols = slice(head * d_k, (head + 1) * d_k)  # this head's d_k columns
q_t = q[0, -1:, cols]  # (1, d_k): the newest token's query
K = k[0, :, cols]  # (T, d_k): keys of every token so far (the new one included)
V = v[0, :, cols]  # (T, d_k)

scores = q_t @ K.T / math.sqrt(d_k)  # (1, d_k) @ (d_k, T) -> (1, T)
A = F.softmax(scores, dim=-1)  # (1, T)
out = A @ V  # (1, T) @ (T, d_k) -> (1, d_k): the slide's V·A

print(f"\nhead {head}:")
print(f"  q_t            {tuple(q_t.shape)}   = 1 × d_k")
print(f"  Kᵀ             {tuple(K.T.shape)}  = d_k × T")
print(f"  q_t Kᵀ / √d_k  {tuple(scores.shape)}   = 1 × T")
print(f"  A = softmax(·) {tuple(A.shape)}   = 1 × T, sum = {A.sum():.4f}")
print(f"  V              {tuple(V.shape)}  = T × d_k")
print(f"  A V            {tuple(out.shape)}   = 1 × d_k")
top = torch.topk(A[0], 5)
print("  the 5 tokens q_t attends to most:",
      ", ".join(f"{tokenizer.decode([int(idx[0, j])])!r}@{j}: {a:.3f}"
                for a, j in zip(top.values.tolist(), top.indices.tolist())))

# %% [markdown]
# With random θ the row A is nearly flat (every score q_t·k_j is close to 0); a trained
# model's rows are peaked on the few tokens that matter for the next one. There was no mask
# to apply: the newest token may look at every token, itself included. The causal mask only
# matters when several queries are computed at once (below, the whole prompt); at a
# generation step without padding the model calls `causal_attention` with allowed=None.
#
# ## Check: the same numbers as the model's own attention
#
# We run the model's attention layer on the whole prompt (causal mask) and catch what
# enters its output projection `c_proj` (all heads side by side, (1, T, C)). Its last row,
# head 0's columns, must equal our `out`. Then all heads by hand, through `c_proj`, must
# equal the layer's output for the last token.

# %%
caught = {}
hook = block.attn.c_proj.register_forward_pre_hook(lambda module, args: caught.update(y=args[0]))
with torch.no_grad():
    layer_out = block.attn(h, attention_allowed(0, T, None))  # (1, T, C)
hook.remove()
print(f"head {head}, last token: max |by hand − model| = "
      f"{(out[0] - caught['y'][0, -1, cols]).abs().max():.2e}")
assert torch.allclose(out[0], caught["y"][0, -1, cols], atol=1e-5)

heads = []
for hd in range(n_head):
    c = slice(hd * d_k, (hd + 1) * d_k)
    a = F.softmax(q[0, -1:, c] @ k[0, :, c].T / math.sqrt(d_k), dim=-1)  # (1, T)
    heads.append(a @ v[0, :, c])  # (1, d_k)
with torch.no_grad():
    by_hand = block.attn.c_proj(torch.cat(heads, dim=-1))  # (1, C)
print(f"all heads + c_proj, last token: max |by hand − model| = "
      f"{(by_hand[0] - layer_out[0, -1]).abs().max():.2e}")
assert torch.allclose(by_hand[0], layer_out[0, -1], atol=1e-5)

# %% [markdown]
# ## The KV cache
#
# `KVCache` keeps, for every layer, the keys and values (B, nh, T_past, d_k) of every token
# processed so far. Feeding the prompt once fills it; the next step feeds **one** token,
# whose q_t attends to the cached K, V. The logits equal those of recomputing everything.
# Every cached token is in q_t's past, so at such a step there is nothing to mask: without
# padding the model calls `causal_attention` with allowed=None.
#
# `GPT.generate` does each step with `kv_cache_step` (exercise `kv_cache_step`): it feeds the
# model only the tokens that the cache does not hold yet.

# %%
print(inspect.getsource(KVCache))
print(inspect.getsource(kv_cache_step))
with torch.no_grad():
    cache = KVCache(config.n_layer)
    logits_prompt, _ = model(idx, kv_cache=cache)  # (1, T, vocab); cache now holds T tokens
    print(f"after the prompt: cache.length = {cache.length}, keys[0] {tuple(cache.keys[0].shape)} "
          f"= (B, nh, T_past, d_k)")
    next_id = logits_prompt[:, -1].argmax(-1, keepdim=True)  # (1, 1)
    logits_step, _ = model(next_id, kv_cache=cache)  # (1, 1, vocab): only the new token
    print(f"one step later: cache.length = {cache.length}; fed {tuple(next_id.shape)}, "
          f"got logits {tuple(logits_step.shape)}")
    logits_full, _ = model(torch.cat([idx, next_id], dim=1))  # (1, T+1, vocab), no cache
print(f"cached step vs full recomputation: max |Δ logits| = "
      f"{(logits_step[0, -1] - logits_full[0, -1]).abs().max():.2e}")

# %% [markdown]
# ## Measured speed-up of `GPT.generate(use_cache=True)`
#
# Without the cache, step t recomputes attention over all t tokens in every layer (and the
# MLPs of all of them); with it, each step processes one token. Greedy decoding
# (temperature 0) makes both produce the same tokens.

# %%
new_tokens = 16 if SMOKE else 400
timings = {}
outputs = {}
for use_cache in (False, True):
    torch.manual_seed(0)
    started = time.perf_counter()
    outputs[use_cache] = model.generate(idx, new_tokens, temperature=0.0, use_cache=use_cache)
    timings[use_cache] = time.perf_counter() - started
same = torch.equal(outputs[True], outputs[False])
print(f"{new_tokens} new tokens after a {T}-token prompt ({config.n_layer} layers, {C} dims):")
print(f"  use_cache=False: {timings[False]:.3f} s ({new_tokens / timings[False]:.0f} tokens/s)")
print(f"  use_cache=True : {timings[True]:.3f} s ({new_tokens / timings[True]:.0f} tokens/s)")
print(f"  speed-up {timings[False] / timings[True]:.1f}×, same tokens: {same}")

# %% [markdown]
# ## Figures: head 0's attention row A, and the timing
#
# Left, one bar per earlier token j: the weight A_j that head 0 of the first layer gives it
# when the newest token's q_t looks back (the row computed by hand above). The bars are
# nearly flat, each close to 1/T: the weights are random (θ at initialisation), so every
# score q_t·k_j is close to 0 and nothing has taught q_t which tokens matter. A trained
# model's bars would peak on the few tokens that predict the next one. Right: the two
# generation times measured above.

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
labels = [token_label(tokenizer, int(i)) for i in idx[0]]
axes[0].bar(range(T), A[0].detach().numpy())
axes[0].set_xticks(range(T), labels, fontsize=10)
axes[0].set_xlabel("earlier token j (␣ = space, \\n = newline)")
axes[0].set_ylabel("A = softmax(q_t Kᵀ/√d_k)")
axes[0].set_title(f"layer 0, head {head}: where the newest token's q_t looks (1 × T)")
axes[1].bar(["no cache", "KV cache"], [timings[False], timings[True]], color=["tab:gray", "tab:green"])
axes[1].set_ylabel("seconds")
speedup = timings[False] / timings[True]
axes[1].set_title(f"{new_tokens} tokens: {speedup:.1f}× faster with the cache" if speedup >= 1 else
                  f"{new_tokens} tokens: too few for the cache to pay off (timing noise)")
fig.tight_layout()
path = OUT / "attention_and_kv_cache.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}: the largest of the {T} weights is {A.max():.3f}, 1/T = {1 / T:.3f}")
