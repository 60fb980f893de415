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
from lesson_setup import lesson_paths  # lessons/lesson_setup.py

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
    return repr(tokenizer.decode([token_id]))


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
by_probability = probs_after.argsort(descending=True).tolist()  # token ids, most likely first
for p in (0.5, 0.9, 0.99):
    kept = torch.isfinite(top_p_filter(logits, p))[0]  # (vocab,) True where the token survives
    print(f"top-p {p}: keeps {int(kept.sum()):3d} of {kept.numel()} tokens, their mass "
          f"{probs_after[kept].sum():.4f} ≥ {p}: {', '.join(show(i) for i in by_probability if kept[i])[:60]}"
          f" …")
draws = [int(sample_next_token(logits, temperature=1.0, top_p=0.9)) for _ in range(200)]
print(f"200 draws with top_p=0.9 use {len(set(draws))} distinct tokens; greedy always gives "
      f"{show(int(sample_next_token(logits, temperature=0.0)))}")

# %% [markdown]
# ## Bar plot: the whole distribution, sorted, and the top 10 tokens

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, probs, name in [(axes[0], probs_before, "before training"), (axes[1], probs_after, "after pre-training")]:
    top = torch.topk(probs, 10)
    ax.bar(range(10), top.values.numpy(), color="tab:blue" if "after" in name else "tab:gray")
    ax.set_xticks(range(10), [show(i) for i in top.indices.tolist()], rotation=45)
    ax.set_ylim(0, 1)
    ax.set_ylabel("p_θ(w_t | w_1:t-1)")
    ax.set_title(f"{name}: top 10 next tokens")
fig.suptitle(f"Lista de probabilidades after {context[-20:]!r}")
fig.tight_layout()
path = OUT / "next_token_probs.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")

# %% [markdown]
# Before training, θ is random and the list is nearly flat (every token about 1/vocab).
# After a few hundred steps of next-token prediction the mass sits on a handful of
# plausible characters: the model has learned p_θ(w_t | w_{1:t-1}) from the corpus.
