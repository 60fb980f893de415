# %% [markdown]
# # Lesson 1 — Language model (Modelo de lenguaje)
#
# A language model gives, for a context w_{1:t-1}, a probability to **every** token of the
# vocabulary as the next one:
#
#     p_θ(w_t | w_{1:t-1})   for every w_t in the vocabulary
#
# The lecture calls this vector the "lista de probabilidades". In `minigpt` it is
# `GPT.next_token_probs(idx)`: the logits of the last position, through a softmax.
#
# We look at that list for one context twice: from a freshly initialised model (θ random:
# the list is almost uniform) and from a tiny model pre-trained for a few hundred steps on
# the toy world's corpus (`toyworld.world.pretraining_corpus`).

# %%
from lesson_setup import lesson_paths, token_label  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from minigpt import GPT, load_model, sample_next_token, top_p_filter
from minigpt.train import TrainConfig, train

torch.manual_seed(0)

# %% [markdown]
# ## The code: `next_token_probs`
#
# The model computes logits (B, T, vocab) for every position at once; the distribution of
# the *next* token is the softmax of the last position's logits.

# %%
print(inspect.getsource(GPT.next_token_probs))

# %% [markdown]
# ## A tiny pre-trained model
#
# `minigpt.train.train` pre-trains a character-level GPT on the toy world's corpus (facts
# such as "Lima is in Peru." and dialogues "User: ... / Assistant: ..."). Step 0 is
# evaluated before any update, so the run folder keeps both "before" and "after".

# %%
config = TrainConfig(
    out_dir=str(OUT / "pretrain"), tokenizer="char",
    n_layer=1 if SMOKE else 2, n_head=4, n_embd=32 if SMOKE else 64, block_size=64,
    batch_size=12, learning_rate=3e-3, min_lr=3e-4, warmup_iters=5 if SMOKE else 30,
    max_iters=20 if SMOKE else 600, eval_interval=20 if SMOKE else 200, eval_iters=2 if SMOKE else 10,
    sample_tokens=0 if SMOKE else 120, seed=1337, device="cpu", overwrite=True,
)
summary = train(config, progress=not SMOKE)
trained, tokenizer, _ = load_model(summary["run"])
print(f"\ntrained for {summary['step']} steps: val loss {summary['val_loss']:.3f}")

torch.manual_seed(0)
untrained = GPT(trained.config).eval()  # same shape, random θ: the "before"

# %% [markdown]
# ## The "lista de probabilidades" for one context
#
# Context: `User: Where is Lima?\nAssistant: Lima is in` — the next character should be a
# space, and then "P" of "Peru".

# %%
context = "User: Where is Lima?\nAssistant: Lima is in"
idx = torch.tensor([tokenizer.encode(context)])  # (1, T)
print(f"context {context!r}: idx shape {tuple(idx.shape)} (B=1, T={idx.size(1)})")


def show(token_id: int) -> str:
    """The token as a visible label (lesson_setup.token_label): ␣ for a space, \\n for a
    newline, EOS for EOS."""
    return token_label(tokenizer, token_id)


def top_table(model, name, idx, k=10):
    probs = model.next_token_probs(idx)[0]  # (vocab,), sums to 1
    top = torch.topk(probs, k)
    print(f"\n{name}: p_θ(w_t | w_1:t-1) over {probs.numel()} tokens, sum = {probs.sum():.4f}")
    print(f"  {'rank':>4}  {'token':>8}  {'p':>7}")
    for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
        print(f"  {rank:>4}  {show(i):>8}  {p:7.4f}")
    return probs


probs_before = top_table(untrained, "before training (random θ)", idx)
probs_after = top_table(trained, "after pre-training", idx)
print(f"\nuniform would be 1/{probs_after.numel()} = {1 / probs_after.numel():.4f} for every token")

# %% [markdown]
# One step further: append the most likely token and ask again. This is the loop that
# `GPT.generate` runs (lesson 2).

# %%
idx2 = torch.cat([idx, torch.tensor([[int(probs_after.argmax())]])], dim=1)  # (1, T+1)
probs_next = trained.next_token_probs(idx2)[0]
print(f"after appending {show(int(probs_after.argmax()))}: most likely next "
      f"{show(int(probs_next.argmax()))} (p = {probs_next.max():.3f})")

# %% [markdown]
# ## Choosing the next token: greedy, temperature, top-k, top-p
#
# `GPT.generate` turns the list into one token. Greedy takes the most likely one; sampling
# draws w_t ~ p_θ(·|w_1:t-1), after optional filters that drop the unlikely tail:
# top-k keeps the k most likely tokens; top-p (nucleus) keeps the smallest set of most
# likely tokens whose probabilities add up to at least p. Both set the other logits to
# −inf, so softmax renormalises over what is left.

# %%
print(inspect.getsource(top_p_filter))
logits = probs_after.log().view(1, -1)  # (1, vocab): log-probs are logits (softmax gives back probs)
draws = [int(sample_next_token(logits, temperature=1.0, top_p=0.9)) for _ in range(200)]
print(f"200 draws with top_p=0.9 use {len(set(draws))} distinct tokens; greedy always gives "
      f"{show(int(sample_next_token(logits, temperature=0.0)))}")

# %% [markdown]
# After "Lima is in" the trained model is nearly sure of the next character (a space, the
# p printed above), so top-p keeps that one token unless p is larger than its probability:
# on such a list top-p changes little. p matters when the mass is spread out. Three such
# distributions beside the one above:
#
# - the same context at temperature T = 2: the logits divided by T before the softmax
#   (what `sample_next_token` does), which flattens the list;
# - a context where the model is unsure: the first character of the assistant's answer
#   (many answers are possible);
# - a hand-made list of 8 tokens t1..t8, p = 0.40, 0.24, 0.14, 0.09, 0.06, 0.04, 0.025, 0.005:
#   top-p 0.5 keeps t1 t2 (mass 0.64), 0.9 keeps t1..t5 (0.93), 0.99 keeps t1..t7 (0.995).
#
# For each, how many tokens top-p keeps at p = 0.5, 0.9 and 0.99.

# %%
unsure_context = "User: Where is Lima?\nAssistant: "
unsure_idx = torch.tensor([tokenizer.encode(unsure_context)])  # (1, T')
hand_made = torch.tensor([0.40, 0.24, 0.14, 0.09, 0.06, 0.04, 0.025, 0.005])  # (8,), sums to 1
vocab_labels = [show(i) for i in range(probs_after.numel())]
distributions = {  # name -> (probabilities, a label per token)
    f"after {context[-10:]!r}, T = 1": (probs_after, vocab_labels),
    f"after {context[-10:]!r}, T = 2": (torch.softmax(logits[0] / 2.0, dim=-1), vocab_labels),
    f"after {unsure_context[-12:]!r}, T = 1": (trained.next_token_probs(unsure_idx)[0], vocab_labels),
    "hand-made, 8 tokens": (hand_made, [f"t{i + 1}" for i in range(len(hand_made))]),
}
P_VALUES = (0.5, 0.9, 0.99)
kept_counts = {}  # name -> tokens kept at each p
for name, (probs, names) in distributions.items():
    kept_counts[name] = []
    by_probability = probs.argsort(descending=True).tolist()  # token ids, most likely first
    print(f"\n{name}: top token {names[by_probability[0]]} with p = {probs.max():.3f}")
    for p in P_VALUES:
        kept = torch.isfinite(top_p_filter(probs.log().view(1, -1), p))[0]  # (vocab,) True: kept
        kept_counts[name].append(int(kept.sum()))
        shown = " ".join(names[i] for i in by_probability if kept[i])
        print(f"  top-p {p:<4}: keeps {int(kept.sum()):3d} of {kept.numel()} tokens, their mass "
              f"{probs[kept].sum():.3f} ≥ {p}: {shown[:60]}{' …' if len(shown) > 60 else ''}")

# %% [markdown]
# ## Bar plots: the top 20 tokens, the whole distribution, and what top-p keeps

# %%
TOP = 20
vocab = probs_after.numel()
fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
for ax, probs, name, color in [(axes[0], probs_before, "before training (random θ)", "tab:gray"),
                               (axes[1], probs_after, "after pre-training", "tab:blue")]:
    top = torch.topk(probs, TOP)
    ax.bar(range(TOP), top.values.numpy(), color=color)
    ax.set_xticks(range(TOP), [show(i) for i in top.indices.tolist()])
    ax.set_ylim(0, 1)
    ax.set_xlabel("next token (␣ = space, \\n = newline), most likely first")
    ax.set_ylabel("p_θ(w_t | w_1:t-1)")
    ax.set_title(f"{name}: top {TOP} of {vocab} tokens")
ranks = range(1, vocab + 1)
axes[2].plot(ranks, probs_before.sort(descending=True).values.numpy(), color="tab:gray",
             label="before training (random θ)")
axes[2].plot(ranks, probs_after.sort(descending=True).values.numpy(), color="tab:blue",
             label="after pre-training")
axes[2].axhline(1 / vocab, color="black", linestyle=":", label=f"uniform 1/{vocab}")
axes[2].set_yscale("log")
axes[2].set_xlabel("rank of the token (1 = most likely)")
axes[2].set_ylabel("p_θ(w_t | w_1:t-1), log scale")
axes[2].set_title(f"The whole distribution: all {vocab} tokens, sorted")
axes[2].legend(fontsize=8)
fig.suptitle(f"Lista de probabilidades: the next token after {context!r}")
fig.tight_layout()
path = OUT / "next_token_probs.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")

# the cumulative mass of the sorted list: top-p keeps the tokens up to where it reaches p
fig, ax = plt.subplots(figsize=(8, 4.5))
for name, (probs, _) in distributions.items():
    cumulative = probs.sort(descending=True).values.cumsum(0).numpy()
    counts = " / ".join(f"{k}" for k in kept_counts[name])
    ax.plot(range(1, len(cumulative) + 1), cumulative, "o-", markersize=3,
            label=f"{name}: top-p keeps {counts} tokens")
for p in P_VALUES:
    ax.axhline(p, color="gray", linestyle=":", linewidth=1)
    ax.text(1.02, p, f"p = {p}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
ax.set_xscale("log")
ticks = [k for k in (1, 2, 5, 10, 20, 50) if k < vocab] + [vocab]
ax.set_xticks(ticks, [str(k) for k in ticks])
ax.set_xlabel("number of most likely tokens kept (log scale)")
ax.set_ylabel("their total probability mass")
ax.set_title(f"Top-p keeps the fewest most likely tokens whose mass reaches p "
             f"(p = {' / '.join(map(str, P_VALUES))})")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
path = OUT / "top_p.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")

# %% [markdown]
# Before training, θ is random and the list is nearly flat (every token about 1/vocab).
# After a few hundred steps of next-token prediction the mass sits on a handful of
# plausible characters: the model has learned p_θ(w_t | w_{1:t-1}) from the corpus.
