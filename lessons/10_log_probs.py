# %% [markdown]
# # Lesson 10 — Computing the log-probs (¿Cómo calculamos las log-probs?)
#
# DPO (and the reward of RLHF's policy) needs the log-probability a model gives to a whole
# response y after a prompt x:
#
#     log π_θ(y | x) = Σ_t log π_θ(y_t | x, y_{<t})   over the response tokens
#
# From one forward pass, logits (B, T, vocab), `minigpt.get_batch_logps` gets it in four
# steps: **shift** (the logits at position t predict the token at t+1), **mask** (labels
# −100 do not count), **gather** (from log_softmax, the log-probability of the actual next
# token) and **sum**. We do each step by hand on a real batch of preference data and check
# the result equals `get_batch_logps`.

# %%
from lesson_setup import lesson_paths, pretrain_small_model, token_label  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from align.data import TruncationStats, collate, rows_from_dict_of_lists, tokenize_pair
from toyworld.world import LECTURE_DPO_DATASET
from minigpt import get_batch_logps, load_model

torch.manual_seed(0)

# %% [markdown]
# ## The function

# %%
print(inspect.getsource(get_batch_logps))

# %% [markdown]
# ## A model to score with
#
# A small byte-level GPT pre-trained briefly on the toy world's corpus (its log-probs then
# mean something: likely text scores higher than unlikely text).

# %%
summary = pretrain_small_model(OUT, SMOKE, block_size=64, max_iters=20 if SMOKE else 500)
model, tokenizer, _ = load_model(summary["run"])
print(f"pre-trained {summary['step']} steps, val loss {summary['val_loss']:.3f}")

# %% [markdown]
# ## A real batch: the lecture's `dpo_dataset_dict`
#
# Each pair (x, y_w, y_l) is tokenised with the prompt template; the prompt's labels are
# −100. We score the chosen answers y_w of the first pairs as one right-padded batch.

# %%
all_rows = rows_from_dict_of_lists(LECTURE_DPO_DATASET)
rows = [all_rows[i] for i in (0, 1, 2, 4)]  # four different pairs (the dict repeats some)
stats = TruncationStats()
pairs = [tokenize_pair(tokenizer, row, max_length=64, max_prompt_length=48, stats=stats) for row in rows]
input_ids, labels = collate([pair["chosen"] for pair in pairs], tokenizer.pad_id)  # (B, T) each
B, T = input_ids.shape
for row in rows:
    print(f"  x = {row['prompt']!r:45} y_w = {row['chosen']!r}")
print(f"input_ids {tuple(input_ids.shape)}, labels {tuple(labels.shape)} (−100 on prompt and padding)")
with torch.no_grad():
    logits, _ = model(input_ids)  # (B, T, vocab)
print(f"logits {tuple(logits.shape)} = (B, T, vocab)")

# %% [markdown]
# ## Step 1 — shift
#
# The logits at position t are the model's prediction for the token at position t+1. So
# the last position's logits predict nothing we have, and the first token is predicted by
# nothing: drop both.

# %%
shifted_labels = labels[:, 1:].clone()  # (B, T-1): the token that follows each position
shifted_logits = logits[:, :-1, :]  # (B, T-1, vocab): the prediction made at each position
print(f"labels[:, 1:]     {tuple(shifted_labels.shape)}")
print(f"logits[:, :-1, :] {tuple(shifted_logits.shape)}")
print(f"row 0, first 8 targets: {shifted_labels[0, :8].tolist()}")

# %% [markdown]
# ## Step 2 — mask
#
# Prompt and padding labels are −100: they must not count. The −100 entries are replaced
# by a valid index (0) so `gather` can run; their values are zeroed afterwards.

# %%
loss_mask = shifted_labels != -100  # (B, T-1)
print(f"loss_mask {tuple(loss_mask.shape)}: counted tokens per row {loss_mask.sum(-1).tolist()}")
shifted_labels[~loss_mask] = 0

# %% [markdown]
# ## Step 3 — gather from log_softmax
#
# log_softmax over the vocabulary turns each position's logits into log p_θ(w | context)
# for every w; gather picks, at each position, the log-probability of the actual next token.

# %%
log_probs = shifted_logits.log_softmax(dim=-1)  # (B, T-1, vocab)
per_token_logps = torch.gather(log_probs, dim=2, index=shifted_labels.unsqueeze(2)).squeeze(2)  # (B, T-1)
print(f"log_softmax      {tuple(log_probs.shape)}; each row's exp sums to "
      f"{log_probs[0, 0].exp().sum():.4f}")
print(f"per_token_logps  {tuple(per_token_logps.shape)}")
print("row 0, the counted tokens:")
for t in torch.nonzero(loss_mask[0]).flatten().tolist():
    token = tokenizer.decode([int(labels[0, t + 1])])
    print(f"  t+1 = {t + 1:>2}  {token!r:10}  log π_θ = {per_token_logps[0, t]:.3f}")

# %% [markdown]
# ## Step 4 — sum over the response
#
# `torch.where` (not a multiplication: −inf · 0 would be NaN) keeps the counted tokens.

# %%
by_hand = torch.where(loss_mask, per_token_logps, 0.0).sum(-1)  # (B,)
reference = get_batch_logps(logits, labels)  # (B,)
average = get_batch_logps(logits, labels, average_log_prob=True)  # (B,)
print(f"step by step:    {[round(v, 4) for v in by_hand.tolist()]}")
print(f"get_batch_logps: {[round(v, 4) for v in reference.tolist()]}")
print(f"mean per token (average_log_prob=True): {[round(v, 4) for v in average.tolist()]}")
assert torch.allclose(by_hand, reference, atol=1e-5)
print("equal: log π_θ(y|x) is the sum of the response tokens' log-probs")

# %% [markdown]
# In DPO the same function scores y_w and y_l under π_θ and π_ref; the loss uses the
# differences log π_θ(y|x) − log π_ref(y|x) (lesson 9). Here are the rejected answers y_l
# of the same pairs, scored the same way:

# %%
rejected_ids, rejected_labels = collate([pair["rejected"] for pair in pairs], tokenizer.pad_id)
with torch.no_grad():
    rejected_logps = get_batch_logps(model(rejected_ids)[0], rejected_labels)  # (B,)
for row, w, l in zip(rows, reference.tolist(), rejected_logps.tolist()):
    print(f"  {row['prompt']!r:42} log π(y_w|x) = {w:7.2f} ({row['chosen']!r}), "
          f"log π(y_l|x) = {l:7.2f} ({row['rejected']!r})")

# %% [markdown]
# ## Figure: per-token log-probs
#
# Grey cells are masked (prompt or padding: −100); the coloured cells are what is summed.

# %%
fig, ax = plt.subplots(figsize=(min(0.32 * T + 2, 30), 0.8 * B + 1.5))
shown = torch.where(loss_mask, per_token_logps, float("nan")).numpy()
cmap = plt.get_cmap("viridis").copy()
cmap.set_bad("lightgray")
image = ax.imshow(shown, cmap=cmap, aspect="auto")
for b in range(B):
    for t in range(T - 1):
        token_id = int(input_ids[b, t + 1])
        if token_id != tokenizer.pad_id:
            ax.text(t, b, token_label(tokenizer, token_id), ha="center", va="center", fontsize=9,
                    color="white" if loss_mask[b, t] else "black")
ax.set_yticks(range(B), [f"{rows[b]['chosen'][:18]!r}: {reference[b]:.1f}" for b in range(B)], fontsize=7)
ax.set_xlabel("position t of the shifted arrays (the token shown is w_{t+1}, the one predicted there)")
ax.set_title("log π_θ(w_{t+1} | w_{1:t}) per counted token; grey = −100 (not counted)")
fig.colorbar(image, ax=ax, label="log-prob")
fig.tight_layout()
path = OUT / "per_token_logps.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")
