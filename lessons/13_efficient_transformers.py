# %% [markdown]
# # Lesson 13 — Efficient transformers (Transformadores para una mejor eficiencia)
#
# The lecture's last slide, word for word:
#
# > **Reformer:** La atención del producto punto se reemplaza con la atención de hash
# > sensible a la localidad (LSH). Esto logra la atención con O(n log(n)) en lugar del
# > costo de la memoria O(n²). (Kitaev, Kaiser y Levskaya, 2020, arXiv:2001.04451)
# >
# > **ALBERT:** Tamaño 5 veces más pequeño que BERT con el mismo rendimiento, debido a la
# > compresión mediante poda. (Lan et al., 2019, arXiv:1909.11942)
#
# The project implements both as options of its GPT (`GPTConfig(attention="lsh")`;
# `GPTConfig(embedding_dim=E, share_layers=...)`) and measures them. This lesson checks
# the slide, claim by claim:
#
# 1. LSH attention by hand, on 20 tokens: the hash, the sort, the chunks, and its weights
#    next to those of full attention;
# 2. the memory (and time) of one training step against the sequence length T, for
#    attention by hand, PyTorch's fused kernel and LSH;
# 3. ALBERT's parameter counts in BERT's sizes, and its two ideas trained on our toy corpus;
# 4. pruning ("poda"), measured: what it does to the loss and to the model's size;
# 5. what the slide gets wrong, with the papers' own numbers.

# %%
from lesson_setup import lesson_paths, pretrain_small_model  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect
import math
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import minigpt.albert
import minigpt.prune
from minigpt import GPT, GPTConfig, load_model
from minigpt.albert import AlbertConfig, run_albert
from minigpt.bench import BenchConfig, crossovers, length_sweep, plot_lengths, print_summary, slopes
from minigpt.lsh import (default_n_buckets, lsh_attention, lsh_buckets, random_rotations,
                         shared_keys, shared_qk_attention)
from minigpt.model import attention_allowed
from minigpt.prune import prune_curve, run_settings, validation_data
from toyworld.world import pretraining_corpus

torch.manual_seed(0)

# %% [markdown]
# ## LSH attention by hand
#
# Full attention scores every query against every key: one T × T matrix per head. Yet
# after the softmax most of a row's weight sits on the few keys most similar to the
# query. Reformer computes only those scores, in three steps (`minigpt/lsh.py`):
#
# - **shared QK**: the keys are the normalised queries, k_j = q_j/‖q_j‖, so a query and
#   its own key always land in the same bucket (a token may attend to itself only when
#   nothing else is allowed);
# - **the hash**: with a random matrix R (d_k × n_buckets/2), h(x) = argmax([xR ; −xR]).
#   Only x's direction matters: vectors at a small angle tend to share a bucket;
# - **sort and chunk**: sort the tokens by (bucket, position), cut the sorted order into
#   chunks of m, and let each query look only at its own chunk and the one before:
#   2m scores per query instead of T. n_hashes rounds with different R are combined by
#   their softmax normalisers (log-sum-exp).
#
# The hash is exercise `lsh_buckets`:

# %%
print(inspect.getsource(lsh_buckets))


def clustered_queries(T, hs, n_clusters, seed, spread=0.3, length=6.0):
    """T query vectors (1, 1, T, hs) of length `length`, each near one of n_clusters random
    directions (the situation LSH is made for), and random values v of the same shape."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(n_clusters, hs, generator=g), dim=-1)  # (n_clusters, hs)
    which = torch.randint(n_clusters, (T,), generator=g)  # (T,) each token's cluster
    q = centres[which] + spread * torch.randn(T, hs, generator=g) / math.sqrt(hs)  # (T, hs)
    q = length * F.normalize(q, dim=-1)
    v = torch.randn(T, hs, generator=g)  # (T, hs)
    return q.view(1, 1, T, hs), v.view(1, 1, T, hs)


# %% [markdown]
# A small example whose picture is honest: T = 20 tokens, head size 2 (each query is an
# arrow in the plane), n_buckets = 8, one round. R is 2 × 4: four random directions r_c;
# bucket c is "r_c has the largest projection", bucket c + 4 "−r_c has". So the buckets
# are sectors of angle around the origin, which we find by hashing 720 unit vectors.

# %%
T, hs, m, n_buckets = 20, 2, 4, 8
q, v = clustered_queries(T, hs, n_clusters=4, seed=1)  # (1, 1, T, 2) each
R = random_rotations(1, hs, n_buckets, seed=0)  # (1 round, hs = 2, n_buckets/2 = 4)
k = shared_keys(q)  # (1, 1, T, 2), unit length
buckets = lsh_buckets(k, R)[0, 0, 0]  # (1, 1, 1 round, T) -> (T,)
assert torch.equal(buckets, lsh_buckets(q, R)[0, 0, 0])  # q and k = q/‖q‖: same buckets
angle = torch.rad2deg(torch.atan2(q[0, 0, :, 1], q[0, 0, :, 0])) % 360  # (T,)
print("position:", " ".join(f"{i:4d}" for i in range(T)))
print("angle °  :", " ".join(f"{a:4.0f}" for a in angle.tolist()))
print("bucket   :", " ".join(f"{b:4d}" for b in buckets.tolist()))

theta = torch.linspace(0, 2 * math.pi, 721)[:-1]  # (720,)
ring = torch.stack([theta.cos(), theta.sin()], dim=-1)  # (720, 2) unit vectors
ring_buckets = lsh_buckets(ring, R)[0]  # (720,): the bucket of every direction
empty = sorted(set(range(n_buckets)) - set(ring_buckets.tolist()))
print(f"buckets that no direction falls in: {empty} (R's 4 columns are random, not orthogonal: "
      f"a short column can lose to a longer one in every direction)")
colours = plt.get_cmap("tab10")
fig, ax = plt.subplots(figsize=(7.5, 7))
radius = 1.15 * q.norm(dim=-1).max().item()
for b in range(n_buckets):
    sector = ring[ring_buckets == b] * radius
    if len(sector):
        ax.scatter(sector[:, 0], sector[:, 1], s=14, color=colours(b), label=f"bucket {b}")
for i in range(T):
    x, y = q[0, 0, i].tolist()
    ax.annotate("", (x, y), (0, 0),
                arrowprops=dict(arrowstyle="->", color=colours(int(buckets[i]))))
    ax.text(1.06 * x, 1.06 * y, str(i), fontsize=8, ha="center", va="center")
ax.set_aspect("equal")
ax.set(xlabel="q[0]", ylabel="q[1]",
       title="h(x) = argmax([xR; −xR]), one R (2 × 4): buckets are angle sectors (ring)\n"
             "queries coloured by bucket, labelled by position")
ax.legend(fontsize=7, loc="upper right", ncol=2)
fig.tight_layout()
fig.savefig(OUT / "lsh_buckets.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'lsh_buckets.png'}")

# %% [markdown]
# ### The sort and the chunks
#
# Sorting by bucket · T + position orders the tokens by bucket, and by position within a
# bucket. The sorted order is cut into chunks of m = 4. Query i may look at the keys of its
# own chunk and of the chunk before (none for the first), and of those only at positions
# j ≤ i (causal), itself only if nothing else is left.

# %%
order = (buckets * T + torch.arange(T)).argsort()  # (T,): positions in sorted order
chunk_of = torch.empty(T, dtype=torch.long)
chunk_of[order] = torch.arange(T) // m  # (T,): each position's chunk
for c in range(T // m):
    members = order[c * m:(c + 1) * m].tolist()
    print(f"chunk {c}: positions {members}, buckets {buckets[members].tolist()}")
positions = torch.arange(T)
key_chunk, query_chunk = chunk_of.view(1, T), chunk_of.view(T, 1)
near = (key_chunk == query_chunk) | (key_chunk == query_chunk - 1)  # (T, T) own or previous chunk
allowed_by_hand = near & (positions.view(1, T) <= positions.view(T, 1))  # (T, T) [query i, key j]

y_lsh, W = lsh_attention(q, v, R, bucket_size=m, return_weights=True)  # W: (1, 1, T, T)
y_full, A = shared_qk_attention(q, k, v, attention_allowed(0, T, None), return_weights=True)
W, A = W[0, 0], A[0, 0]  # (T, T) each
print(f"\nLSH weights outside a query's own and previous chunk: max "
      f"{W[~allowed_by_hand].abs().max():.1e}")
print(f"LSH weights on a future key (j > i): max {W.triu(1).abs().max():.1e}")
print(f"full attention on a future key:      max {A.triu(1).abs().max():.1e}")
assert W.triu(1).abs().max() == 0 and W[~allowed_by_hand].abs().max() == 0
missed = 0.5 * (W - A).abs().sum(-1)  # (T,) total-variation distance of each row
print(f"rows sum to 1: LSH {W.sum(-1).min():.4f}..{W.sum(-1).max():.4f}; "
      f"½Σ_j|W − A| per query: mean {missed.mean():.3f}, worst {missed.max():.3f}")
worst = int(missed.argmax())
heaviest = A[worst].topk(min(3, worst + 1)).indices  # full attention's largest weights
print(f"the worst, query {worst} (chunk {chunk_of[worst]}): LSH weighs keys "
      f"{W[worst].nonzero().flatten().tolist()}, full attention mostly {heaviest.tolist()} "
      f"(chunks {chunk_of[heaviest].tolist()})")

fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), layout="constrained")
for ax, weights, title in ((axes[0], W, f"LSH attention W (1 round, chunks of m = {m})"),
                           (axes[1], A, "full shared-QK attention A")):
    image = ax.imshow(weights.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(0, T, 2))
    ax.set_yticks(range(0, T, 2))
    ax.set(title=title, xlabel="key position j", ylabel="query position i")
    fig.colorbar(image, ax=ax, label="weight of key j in query i's output")
fig.suptitle("Effective attention weights, same q and v: LSH keeps the large ones, drops the rest")
fig.savefig(OUT / "lsh_weights.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'lsh_weights.png'}")

# %% [markdown]
# ### More rounds, less error
#
# One round misses a similar key whenever a sector boundary falls between the two. Each
# extra round, with its own R, is another chance to meet it. Here on clustered inputs of
# more tokens and a wider head (T = 128, head size 8, m = 16, Reformer's n_buckets =
# 2T/m), averaged over seeds: the distance between the rows of W and A, and the relative
# error of the outputs ‖y_LSH − y_full‖/‖y_full‖, for n_hashes = 1, 2, 4, 8.

# %%
T_err, hs_err, m_err = (64, 8, 16) if SMOKE else (128, 8, 16)
seeds = range(2 if SMOKE else 10)
nb_err = default_n_buckets(T_err, m_err)
rounds = (1, 2, 4, 8)
errors = {r: {"rows": [], "outputs": []} for r in rounds}
for seed in seeds:
    qe, ve = clustered_queries(T_err, hs_err, n_clusters=8, seed=100 + seed)
    y_exact, A_exact = shared_qk_attention(qe, shared_keys(qe), ve,
                                           attention_allowed(0, T_err, None), return_weights=True)
    for r in rounds:
        y_r, W_r = lsh_attention(qe, ve, random_rotations(r, hs_err, nb_err, seed=seed), m_err,
                                 return_weights=True)
        errors[r]["rows"].append(0.5 * (W_r - A_exact).abs().sum(-1).mean().item())
        errors[r]["outputs"].append(((y_r - y_exact).norm() / y_exact.norm()).item())
print(f"T = {T_err}, head size {hs_err}, m = {m_err}, n_buckets = {nb_err}, {len(seeds)} seeds")
print("n_hashes   ½Σ|W − A| per row   ‖y − y_full‖/‖y_full‖")
for r in rounds:
    print(f"   {r}       {np.mean(errors[r]['rows']):.3f} ± {np.std(errors[r]['rows']):.3f}"
          f"        {np.mean(errors[r]['outputs']):.3f} ± {np.std(errors[r]['outputs']):.3f}")

fig, ax = plt.subplots(figsize=(7, 4.5))
for key, label in (("rows", "½Σ_j|W − A| (weight misplaced per row)"),
                   ("outputs", "‖y_LSH − y_full‖ / ‖y_full‖")):
    ax.errorbar(rounds, [np.mean(errors[r][key]) for r in rounds],
                yerr=[np.std(errors[r][key]) for r in rounds], marker="o", capsize=3, label=label)
ax.set_xscale("log", base=2)
ax.set_xticks(rounds, [str(r) for r in rounds])
ax.set(xlabel="hash rounds n_hashes",
       ylabel=f"error against full attention (mean over {len(seeds)} seeds)",
       title=f"LSH approximation error, clustered inputs (T = {T_err}, m = {m_err})")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "lsh_error.png", dpi=100)
plt.close(fig)
print(f"saved {OUT / 'lsh_error.png'}")

# %% [markdown]
# The error falls but does not reach 0: a key that several rounds find is counted once per
# round (Reformer's paper corrects for such duplicates; this code does not, see its
# docstring). When is LSH exact? When one chunk covers the whole sequence (m ≥ T): every
# round is then full causal attention, whatever the buckets, and combining identical
# rounds changes nothing.

# %%
_, W_one_chunk = lsh_attention(q, v, random_rotations(4, hs, n_buckets, seed=0), bucket_size=T,
                               return_weights=True)
print(f"m = T = {T}, 4 rounds: max |W − A| = {(W_one_chunk[0, 0] - A).abs().max():.1e}")
assert torch.allclose(W_one_chunk[0, 0], A, atol=1e-6)

# %% [markdown]
# Write the hash yourself: `python -m exercises grade lsh_buckets`

# %% [markdown]
# ## Memory against sequence length
#
# `minigpt.bench`'s length sweep (`python -m minigpt.bench --lengths ...`) times one
# training step (forward + backward) of a small GPT at each length T, for the three
# attentions, and measures its activation memory: on a CPU the bytes of the tensors autograd
# saves for the backward pass (`minigpt.memory.activation_bytes`). Then the log-log slope of
# each curve (≈ 2: grows as T², ≈ 1: linear) and the lengths from which LSH pays.

# %%
lengths = "64,128,256" if SMOKE else "256,512,1024,2048,4096"
bench = BenchConfig(n_layer=1 if SMOKE else 2, n_head=4, n_embd=32 if SMOKE else 64,
                    lengths=lengths, block_size=max(map(int, lengths.split(","))),
                    repeats=1 if SMOKE else 2, plot=str(OUT / "attention_lengths.png"))
print(f"{bench.n_layer} layers, {bench.n_embd} dims, {bench.n_head} heads; LSH "
      f"{bench.lsh_n_hashes} rounds, m = {bench.lsh_bucket_size}, n_buckets = 2T/m; device cpu, "
      f"{torch.get_num_threads()} threads")
rows = length_sweep(bench, "cpu")
T_list = bench.length_list()
fitted, crossings = slopes(rows, T_list), crossovers(rows, T_list)
print_summary(rows, T_list, fitted, crossings, bench)
plot_lengths(rows, T_list, Path(bench.plot),
             f"{bench.n_layer} layers, {bench.n_embd} dims, cpu; LSH {bench.lsh_n_hashes} rounds, "
             f"m = {bench.lsh_bucket_size}", rows[0]["measured_as"])
print(f"saved {bench.plot}")

# %% [markdown]
# How to read it. Attention by hand keeps its weights A, (B, n_head, T, T) per layer, for
# the backward pass: its memory slope climbs towards 2 as the T² term takes over from the
# linear rest (embeddings, MLP). LSH keeps 2m scores per query and round: linear. But so is
# PyTorch's fused kernel (`attention="sdpa"`), exactly, with no approximation: it never
# materialises the T × T matrix (the Reformer paper makes the same remark about computing
# attention one query at a time). At short lengths LSH is the slowest: sorting, gathers and
# n_hashes rounds cost more than the scores they save. sdpa still computes all T² scores,
# so its time grows about as T²; at long enough lengths LSH's linear time can overtake it —
# the "faster than sdpa" line above says whether it did within these lengths.
#
# Two more honest details. "O(n log n)" is the time of the sort by bucket; the memory of
# the scores is O(n · m · n_hashes). And with Reformer's rule n_buckets = 2T/m, the hash
# itself, [xR; −xR], is a T × n_buckets product per round: O(T²/m), short-lived (freed as
# soon as the buckets are known), but quadratic:

# %%
r, m_b = bench.lsh_n_hashes, bench.lsh_bucket_size
print(f"   T   n_buckets   hash R·T·n_b   LSH scores R·T·2m   full scores T²   hash / T²")
for T_b in T_list:
    nb = default_n_buckets(T_b, m_b)
    print(f"{T_b:5d}   {nb:9d}   {r * T_b * nb:12,}   {r * T_b * 2 * m_b:17,}   {T_b * T_b:14,}   "
          f"{r * T_b * nb / T_b**2:9.3f}")

# %% [markdown]
# ## ALBERT: fewer parameters, the same compute
#
# ALBERT's two ideas are options of our GPT: `embedding_dim=E` (the token embedding V × E
# plus a projection E × H, instead of V × H) and `share_layers="all"` (one block's weights
# at every depth). First the counts in BERT's sizes, V = 30,000, T = 512, on the "meta"
# device (shapes only, no memory), next to the paper's Table 1.

# %%
ALBERT = dict(embedding_dim=128, share_layers="all")  # E = 128, every block shared
SIZES = {  # name: (GPTConfig fields, the paper's Table 1 count in millions); H/64 heads
    "BERT-base": (dict(n_layer=12, n_head=12, n_embd=768), 108),
    "BERT-large": (dict(n_layer=24, n_head=16, n_embd=1024), 334),
    "ALBERT-base": (dict(n_layer=12, n_head=12, n_embd=768, **ALBERT), 12),
    "ALBERT-large": (dict(n_layer=24, n_head=16, n_embd=1024, **ALBERT), 18),
    "ALBERT-xlarge": (dict(n_layer=24, n_head=32, n_embd=2048, **ALBERT), 60),
}
print(f"{'model':14} {'L':>3} {'H':>5} {'E':>5} shared   ours (num_parameters)   paper   "
      f"pooler H²+H")
for name, (fields, paper) in SIZES.items():
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=30_000, block_size=512, **fields))
    H = fields["n_embd"]
    print(f"{name:14} {fields['n_layer']:3d} {H:5d} {fields.get('embedding_dim', H):5d} "
          f"{fields.get('share_layers', 'none'):6}   {model.num_parameters() / 1e6:10.1f}M"
          f"             {paper:4d}M   {(H * H + H) / 1e6:6.2f}M")

# %% [markdown]
# Ours land within a few percent, a little below: BERT and ALBERT also have token-type
# embeddings (2 × E), an embedding LayerNorm, a pooler (a dense H × H layer on the first
# token: 4.2M at H = 2048, most of the gap for ALBERT-xlarge) and, in ALBERT, an MLM head;
# our GPT has none of them. Being decoder-only (a causal mask) changes no count. ALBERT-base
# stores 9× fewer parameters than BERT-base — and applies just as many per token.
#
# Now both ideas trained on the toy corpus (`python -m minigpt.albert`): every variant the
# same steps, seed and batches; the table counts unique and applied parameters, FLOPs per
# token, state memory (parameters, gradients, AdamW) and activation memory, and the
# validation loss. A variant already trained with the same settings is reused.

# %%
if SMOKE:
    corpus = OUT / "albert_corpus.txt"
    corpus.write_text(pretraining_corpus(20_000, seed=0), encoding="utf-8")
    albert_config = AlbertConfig(data=str(corpus), out_dir=str(OUT / "albert"),
                                 variants="share-all,control-1-layer", n_layer=2, n_head=2,
                                 n_embd=32, block_size=32, batch_size=4, max_iters=5,
                                 warmup_iters=1, eval_iters=2, timing_steps=1, timing_repeats=1,
                                 overwrite=True, progress=False, device="cpu")
else:  # the command's variants and model, 300 steps instead of its 500
    albert_config = AlbertConfig(out_dir=str(OUT / "albert"), max_iters=300, device="cpu")
albert_rows = run_albert(albert_config)
print(minigpt.albert.table(albert_rows))
print()
print(minigpt.albert.findings(albert_rows))
by_variant = {row["variant"]: row for row in albert_rows}
if {"share-attention", "share-mlp"} <= set(by_variant):
    print(f"\nsharing the MLP: Δ val loss {by_variant['share-mlp']['val_loss_change']:+.4f}; "
          f"sharing attention: {by_variant['share-attention']['val_loss_change']:+.4f}")
print(f"figure: {Path(albert_config.out_dir) / 'albert.png'}")

# %% [markdown]
# What to take from the table: sharing divides the unique parameters (and the state
# memory: each one has a gradient and two AdamW moments) but the FLOPs per token and the
# activations stay those of the full depth — a shared block still runs L times. The loss
# pays for it at equal steps; compare the cost of sharing the MLP with that of sharing
# attention (the line above) with ALBERT's Table 4, below. The 1-layer control stores
# exactly share-all's parameters and runs its block once: the difference between the two
# is what running a block L times buys. The factorised embedding saves little here: our
# vocabulary has V of about a hundred characters or bytes, BERT's 30,000 word pieces.

# %% [markdown]
# ## Pruning, what the slide attributes to ALBERT
#
# Pruning ("poda") sets the smallest weights to zero. `minigpt.prune` prunes a trained
# model's block matrices globally by magnitude, at each sparsity, and measures the loss on
# the same validation batches, the parameter count, the dense file and a sparse (CSR) copy.

# %%
summary = pretrain_small_model(OUT, SMOKE, block_size=64, max_iters=20 if SMOKE else 400)
model, tokenizer, _ = load_model(summary["run"])
settings, data_tokens = run_settings(summary["run"])  # how it was trained: its validation split
data = validation_data(settings, data_tokens, tokenizer, summary["run"])
sparsities = [0.0, 0.5, 0.7, 0.9] if SMOKE else [i / 10 for i in range(10)]
prune_rows = prune_curve(model, data, sparsities, settings, "cpu")
print(minigpt.prune.table(prune_rows))
print()
print(minigpt.prune.findings(prune_rows))
minigpt.prune.plot(prune_rows, OUT / "pruning.png")
print(f"saved {OUT / 'pruning.png'}")

# %% [markdown]
# A pruned weight is still stored: the tensor keeps its shape, so numel and the dense
# state_dict are the same at every sparsity. Only a sparse format shrinks it, and CSR pays
# 4 bytes of value plus 8 of (int64) column index for each nonzero: it beats dense (4 bytes
# an entry) only when fewer than a third of the entries are left, past about 67% sparsity.
# Pruning can make a model smaller; it is not how ALBERT did it.

# %% [markdown]
# ## What the slide gets wrong
#
# **ALBERT.** Lan et al. (2019, arXiv:1909.11942) prune nothing. ALBERT's size comes from
# the factorised embedding and cross-layer sharing (their section 3.1), the two options
# measured above. "5 times smaller with the same performance" matches one pair of Table 2
# (dev set, pre-trained 125k steps on BookCorpus and Wikipedia): ALBERT-xlarge (60M) against
# BERT-large (334M), 85.5 against 85.2 on the average — but it iterates through the data
# about 1.7× slower (Table 2's speedup column: BERT-large 1.0×, ALBERT-xlarge 0.6×): its
# 2048-wide block, applied at all 24 depths, does more arithmetic per token than
# BERT-large's 1024-wide ones, however few parameters it stores. The base
# models tell the other half: ALBERT-base (12M) is 9× smaller than BERT-base (108M) and
# about 2 points lower (80.1 against 82.3). Smaller in memory, not in compute.

# %%
TABLE_2 = {  # Lan et al. 2019, Table 2: parameters (M), Avg of the dev scores, training speedup
    "BERT-base": (108, 82.3, 4.7), "BERT-large": (334, 85.2, 1.0),
    "ALBERT-base": (12, 80.1, 5.6), "ALBERT-large": (18, 82.4, 1.7),
    "ALBERT-xlarge": (60, 85.5, 0.6), "ALBERT-xxlarge": (235, 88.7, 0.3),
}
for small, big in (("ALBERT-xlarge", "BERT-large"), ("ALBERT-large", "BERT-large"),
                   ("ALBERT-base", "BERT-base")):
    (p_s, avg_s, speed_s), (p_b, avg_b, speed_b) = TABLE_2[small], TABLE_2[big]
    pace = speed_s / speed_b
    print(f"{small:14} vs {big:10}: {p_b / p_s:4.1f}× fewer parameters, Avg {avg_s} vs {avg_b} "
          f"({avg_s - avg_b:+.1f}), trains {pace:.1f}× as fast"
          + (f" ({1 / pace:.1f}× slower)" if pace < 1 else ""))

# %% [markdown]
# The paper's own ablations, to set beside our toy table: with E = 128, sharing everything
# costs 1.5 points on the average (80.1 against 81.6 not shared, Table 4), almost
# all of it from sharing the feed-forward layers (shared-FFN 80.2, shared-attention 81.7);
# and a 1-layer ALBERT-large with the same 18M parameters as the 24-layer one scores 52.9
# against 82.1 (Table 11): applying a block many times is what the shared parameters buy.
# The paper trained for 125k steps; our toy runs take a few hundred, too few for the
# differences between sharing modes, or between share-all and its 1-layer control, to
# settle (the findings above say how they came out in this run; `python -m minigpt.albert`
# trains 500 steps).
#
# **Reformer.** Kitaev et al. (2020, arXiv:2001.04451) state the O(L log L) for LSH
# attention against O(L²) for dot-product attention; the sort by bucket is where the log
# comes from. Their memory count (Table 1) is linear in L for a fixed chunk length, and the
# n² of the slide is the materialised T × T matrix, which exact attention does not need
# either: their section 2 ("Memory-efficient attention") notes that computing it one query
# at a time uses memory proportional to the length, and uses that for its full-attention
# baselines. LSH buys linear time as well, at the price of an approximation (the error
# figure above).

# %% [markdown]
# ## Summary
#
# - LSH attention hashes directions into buckets, sorts, and attends within chunks: its
#   weights never fall on a future key, it approximates full attention better with more
#   rounds, and it is exact when one chunk covers the sequence.
# - Memory: by hand, attention's activations grow as T²; LSH's and the fused kernel's
#   linearly. The fused kernel is exact and, at short lengths, faster.
# - ALBERT saves parameters and optimiser memory, not FLOPs or activations, at a cost in
#   loss at equal steps. Pruning keeps every parameter; it was not ALBERT's method.
#
# The full measurements, each a command (minutes on a laptop CPU; a GPU with `--device cuda`):
#
#     python -m minigpt.bench --lengths 256,512,1024,2048,4096,8192
#     python -m minigpt.albert
#     python -m minigpt.prune --run runs/pretrain
#     python -m minigpt.train --attention lsh
#     python -m minigpt.train --share-layers all --embedding-dim 32
