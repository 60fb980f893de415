# %% [markdown]
# # Lesson 4 — Supervised fine-tuning (Sintonización supervisada)
#
# A pre-trained model continues text; SFT teaches it to *answer*. We keep training it on
# demonstrations (prompt x, response y), written in the one prompt template
#
#     User: {prompt}
#     Assistant: {response}<|eos|>
#
# but the loss counts the response tokens only (and the EOS, so the model learns to stop):
#
#     L_SFT(θ) = −1/N Σ_t log π_θ(y_t | x, y_{<t})      (N response tokens)
#
# The prompt's labels are set to **−100**, the index PyTorch's cross-entropy ignores. This
# lesson makes that mask visible token by token.

# %%
from lesson_setup import lesson_paths, token_label  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from align.data import TruncationStats, collate, sft_example, tokenize_example
from align.sft import response_loss
from toyworld.template import format_prompt
from toyworld.world import sft_demonstrations
from minigpt import GPT, ByteTokenizer, GPTConfig

torch.manual_seed(0)

# %% [markdown]
# ## One demonstration, tokenised
#
# `tokenize_example` returns input_ids = prompt tokens + response tokens + EOS, and
# labels = −100 for each prompt token, then the response tokens + EOS themselves. The mask
# itself is `sft_example` (exercise `sft_example`).

# %%
print(inspect.getsource(tokenize_example))
print(inspect.getsource(sft_example))
tokenizer = ByteTokenizer()
stats = TruncationStats()
prompt, response = "What is 2+2?", "4"
input_ids, labels = tokenize_example(tokenizer, prompt, response, max_length=64, max_prompt_length=48, stats=stats)
print(f"prompt text  : {format_prompt(prompt)!r}")
print(f"full sequence: {tokenizer.decode(input_ids)!r}  ({len(input_ids)} tokens)\n")

print(f"{'t':>3}  {'token':>9}  {'id':>4}  {'label':>5}  counts in the loss?")
for t, (i, label) in enumerate(zip(input_ids, labels)):
    token = repr(tokenizer.decode([i]))
    print(f"{t:>3}  {token:>9}  {i:>4}  {label:>5}  {'yes' if label != -100 else 'no (prompt: −100)'}")
counted = sum(label != -100 for label in labels)
print(f"\n{counted} of {len(labels)} tokens count: the response '4' and the EOS that ends it")

# %% [markdown]
# ## A batch: right padding, also −100
#
# `collate` pads input_ids with the PAD id and labels with −100 on the right, so padding
# never counts either. (The mask is never made by comparing with the pad id: that id could
# equal the EOS id, and the EOS target must be trained.)

# %%
rows = sft_demonstrations(4 if SMOKE else 16, seed=0)
stats = TruncationStats()
examples = [tokenize_example(tokenizer, r["prompt"], r["completion"], 96, 64, stats) for r in rows]
examples = [e for e in examples if e is not None]
batch_ids, batch_labels = collate(examples, tokenizer.pad_id)  # (B, T) each
print(stats.summary("demonstrations"))
print(f"input_ids {tuple(batch_ids.shape)}, labels {tuple(batch_labels.shape)}")
for r, row_labels in zip(rows[:4], batch_labels[:4]):
    n = int((row_labels != -100).sum())
    print(f"  {r['prompt']!r:45} → {r['completion']!r}: {n} counted tokens")

# %% [markdown]
# ## The SFT loss on the batch: `align.sft.response_loss`
#
# The model reads input_ids[:, :-1] and is scored on labels[:, 1:] (each position predicts
# the next token). To spend no work on padding, `response_loss` first packs the examples
# into fewer rows (`align.data.pack_sequences`: several sequences per row, each attending
# only to itself, its positions counted from 0), which gives the same tokens the same
# contexts. We recompute the loss by hand on the padded batch above: a mean of −log π_θ
# over the counted positions.

# %%
print(inspect.getsource(response_loss))
config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=128,
                   n_layer=1 if SMOKE else 2, n_head=4, n_embd=32 if SMOKE else 64)
model = GPT(config)
loss = response_loss(model, examples, tokenizer.pad_id, "cpu")

logits, _ = model(batch_ids[:, :-1])  # (B, T-1, vocab)
targets = batch_labels[:, 1:]  # (B, T-1)
counts = targets != -100  # (B, T-1): which positions count
logp = F.log_softmax(logits, dim=-1)  # (B, T-1, vocab)
nll = -logp.gather(2, targets.clamp(min=0).unsqueeze(2)).squeeze(2)  # (B, T-1): −log π_θ(y_t | ·)
by_hand = nll[counts].mean()
full = F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch_ids[:, 1:].reshape(-1))
print(f"response_loss = {loss.item():.4f}; by hand over {int(counts.sum())} counted tokens = {by_hand.item():.4f}")
print(f"(the loss over every token, prompt and padding included, would be {full.item():.4f})")
assert torch.allclose(loss, by_hand, atol=1e-5)

# %% [markdown]
# ## A few SFT steps
#
# A plain loop: the same loss, an optimiser step. The model (random θ here, to keep the
# lesson short; `align.sft` starts from a pre-trained one) learns the answers of the
# demonstrations, never their questions. It imitates whatever they say: the toy world's
# demonstrations are of mixed quality (`toyworld.world.SFT_MIX`: some wrong, rude or
# unhelpful), and SFT copies those too. That is the work left for alignment.

# %%
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
steps = 5 if SMOKE else 150
for step in range(1, steps + 1):
    loss = response_loss(model, examples, tokenizer.pad_id, "cpu")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if step == 1 or step % max(1, steps // 5) == 0:
        print(f"step {step:>4}: response loss {loss.item():.4f}")
idx = torch.tensor([tokenizer.encode(format_prompt(rows[0]["prompt"]))])
out = model.generate(idx, 40, temperature=0.0, eos_id=tokenizer.eos_id)
print(f"greedy answer to {rows[0]['prompt']!r}: {tokenizer.decode(out[0, idx.size(1):])!r} "
      f"(demonstration: {rows[0]['completion']!r})")

# %% [markdown]
# ## Figure: which positions count
#
# Each cell is one target position t of the batch (the token predicted there is written
# in it): green counts in L_SFT, grey is prompt (−100), white is padding (−100).

# %%
show = min(4, len(examples))
T = batch_labels.size(1) - 1
grid = torch.zeros(show, T)  # 0 padding, 1 prompt, 2 counted
for b in range(show):
    n_real = len(examples[b][0]) - 1
    grid[b, :n_real] = 1
    grid[b, counts[b]] = 2
fig, ax = plt.subplots(figsize=(min(0.3 * T + 2, 30), 0.7 * show + 1.5))
cmap = matplotlib.colors.ListedColormap(["white", "lightgray", "tab:green"])
ax.imshow(grid.numpy(), cmap=cmap, vmin=0, vmax=2, aspect="auto")
for b in range(show):
    for t in range(T):
        token_id = int(batch_ids[b, t + 1])
        if grid[b, t] > 0:
            ax.text(t, b, token_label(tokenizer, token_id), ha="center", va="center", fontsize=9)
ax.set_yticks(range(show), [f"example {b}" for b in range(show)])
ax.set_xlabel("target position t (labels[:, 1:])")
ax.set_title("SFT labels: green = counts, grey = prompt (−100), white = padding (−100)")
fig.tight_layout()
path = OUT / "sft_label_mask.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")
