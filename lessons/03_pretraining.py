# %% [markdown]
# # Lesson 3 — Pre-training (Pre-entrenamiento)
#
# Pre-training is next-token prediction on plain text. For every position of every block
# of text the model is scored on the token that actually follows:
#
#     L(θ) = −1/N Σ_t log p_θ(w_t | w_{1:t-1})
#
# Nothing tells the model what a "good answer" is: it only learns to continue text like
# its corpus. Here the corpus is the toy world's "web" (`toyworld.world.pretraining_corpus`):
# facts, a few of them false, and dialogues with good, wrong, rude and unhelpful answers.
# We run `minigpt.train.train`, read its loss curve, and sample before and after.

# %%
import pathlib
from lesson_setup import lesson_paths  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect
import json
import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from toyworld.world import pretraining_corpus
from minigpt import GPT, TokenData, load_model
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, train

torch.manual_seed(0)

# %% [markdown]
# ## The data: one long text, cut into (x, y) blocks shifted by one token

# %%
corpus = pretraining_corpus()
print(f"corpus: {len(corpus):,} characters; its start:\n{corpus[:400]}")
tokenizer = CharTokenizer.from_text(corpus)
data = TokenData.from_text(corpus, tokenizer, val_fraction=0.1)
x, y = data.get_batch("train", batch_size=2, block_size=24, generator=torch.Generator().manual_seed(0))
print(f"vocabulary: {tokenizer.vocab_size} tokens (characters + BOS, EOS, PAD, UNK)")
print(f"x {tuple(x.shape)}: {tokenizer.decode(x[0])!r}")
print(f"y {tuple(y.shape)}: {tokenizer.decode(y[0])!r}   (x shifted by one: each target is the next token)")

# %% [markdown]
# ## The loss: cross-entropy of the next token, in `GPT.forward`

# %%
source = inspect.getsource(GPT.forward)
print(source[source.index("        x = self.hidden_states"):])
print(f"at random θ the loss should be about log(vocab) = log({tokenizer.vocab_size}) = "
      f"{math.log(tokenizer.vocab_size):.3f}")

# %% [markdown]
# ## A small run
#
# `train` writes a run folder (config.json, metrics.jsonl, loss.png, ckpt.pt, report.md),
# evaluates at step 0 (before any update) and every `eval_interval` steps. The learning
# rate warms up linearly, then follows a cosine down to `min_lr`.

# %%
config = TrainConfig(
    out_dir=str(OUT / "pretrain"), tokenizer="char",
    n_layer=1 if SMOKE else 3, n_head=4, n_embd=32 if SMOKE else 96, block_size=64,
    batch_size=12, learning_rate=2e-3, min_lr=2e-4, warmup_iters=5 if SMOKE else 50,
    max_iters=20 if SMOKE else 800, eval_interval=10 if SMOKE else 100, eval_iters=2 if SMOKE else 10,
    sample_tokens=0, seed=1337, device="cpu", overwrite=True,
)
torch.manual_seed(config.seed)
untrained = GPT(config.model_config(tokenizer.vocab_size)).eval()  # θ at initialisation
summary = train(config, progress=not SMOKE)
trained, _, _ = load_model(summary["run"])
print(f"\n{summary['parameters']:,} parameters, {summary['step']} steps in {summary['seconds']:.1f} s: "
      f"train loss {summary['train_loss']:.3f}, val loss {summary['val_loss']:.3f} "
      f"(perplexity {math.exp(summary['val_loss']):.2f})")

# %% [markdown]
# ## The loss curve, read from the run's metrics.jsonl

# %%
rows = [json.loads(line) for line in open(pathlib.Path(summary["run"]) / "metrics.jsonl")]
step_rows = [r for r in rows if "loss" in r]
eval_rows = [r for r in rows if "val_loss" in r]
print(f"{'step':>6}  {'train loss':>10}  {'val loss':>8}  {'perplexity':>10}")
for r in eval_rows:
    print(f"{r['step']:>6}  {r['train_loss']:>10.4f}  {r['val_loss']:>8.4f}  {r['val_perplexity']:>10.2f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot([r["step"] for r in step_rows], [r["loss"] for r in step_rows], alpha=0.4, label="train loss (each step)")
axes[0].plot([r["step"] for r in eval_rows], [r["train_loss"] for r in eval_rows], "o-", label="train loss (eval)")
axes[0].plot([r["step"] for r in eval_rows], [r["val_loss"] for r in eval_rows], "o-", label="val loss (eval)")
axes[0].axhline(math.log(tokenizer.vocab_size), color="gray", linestyle="--", label="log(vocab): uniform guess")
axes[0].set_xlabel("step")
axes[0].set_ylabel("−1/N Σ log p_θ(w_t | w_1:t-1)")
axes[0].set_title("Pre-training loss")
axes[0].legend()
axes[1].plot([r["step"] for r in step_rows], [r["lr"] for r in step_rows])
axes[1].set_xlabel("step")
axes[1].set_ylabel("learning rate")
axes[1].set_title("warm-up, then cosine decay")
fig.tight_layout()
path = OUT / "pretraining_loss.png"
fig.savefig(path, dpi=100)
plt.close(fig)
print(f"saved {path}")

# %% [markdown]
# ## Samples before and after
#
# The same prompts, the same seed, temperature 1 (sampling from p_θ itself). Before
# training the model writes random characters; after, it writes the corpus's kind of text,
# including dialogues in the "User: … / Assistant: …" template: it has seen them on the
# "web". Whether its answers are right or polite is not something pre-training asks for.

# %%
new_tokens = 40 if SMOKE else 200
for prompt in ["Lima is", "User: What is 2+3?\nAssistant:"]:
    idx = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
    for name, model in [("before", untrained), ("after", trained)]:
        generator = torch.Generator().manual_seed(0)
        out = model.generate(idx, new_tokens, temperature=1.0, generator=generator)
        text = tokenizer.decode(out[0, idx.size(1):])
        print(f"--- {name} pre-training, prompt {prompt!r} ---\n{prompt}{text}\n")
