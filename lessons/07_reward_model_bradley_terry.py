# %% [markdown]
# # Lesson 7 — Reward model and Bradley-Terry (Modelo de recompensa, Modelo Bradley-Terry)
#
# People are bad at giving an answer an absolute score and good at saying which of two
# answers is better. So the data are triples (x, y_w, y_l): prompt, preferred (winner)
# answer, rejected (loser) answer. The Bradley-Terry model ties these comparisons to a
# scalar reward r(x, y):
#
#     P(y_w ≻ y_l | x) = e^{r(x,y_w)} / (e^{r(x,y_w)} + e^{r(x,y_l)}) = σ(r(x,y_w) − r(x,y_l))
#
# and a reward model r_φ is fitted by maximum likelihood (función de costo del modelo de
# recompensa):  L(φ) = −E_{(x,y_w,y_l)~D}[log σ(r_φ(x,y_w) − r_φ(x,y_l))].

# %%
from lesson_setup import lesson_paths, pretrain_small_model  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect
import random

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from align.data import prompt_tokens, response_tokens, sft_example, write_jsonl
from align.gold import gold_components, gold_reward, preference_probability
from align.losses import bradley_terry_loss
from align.preferences import pairs_from_world
from align.reward import RewardConfig, load_reward_model, score_sequences, train_reward
from toyworld.world import (LECTURE_PREFERENCE_TABLE, answer_candidates, heldout_prompts,
                         train_prompts)

torch.manual_seed(0)
torch.set_num_threads(1)  # tiny tensors: one thread avoids thread-pool overhead on a busy CPU
np.random.seed(0)

# %% [markdown]
# ## The lecture's preference table (x, y_w, y_l)

# %%
for x, y_w, y_l in LECTURE_PREFERENCE_TABLE:
    print(f"x   = {x!r}\n  y_w = {y_w!r}\n  y_l = {y_l!r}")

# %% [markdown]
# ## e^A / (e^A + e^B) = σ(A − B)
#
# Divide numerator and denominator by e^A:  e^A/(e^A + e^B) = 1/(1 + e^{B−A}) = σ(A − B).
# Only the difference of the rewards matters: adding the same constant to both changes
# nothing (this is why β·log Z(x) will cancel in lesson 8). Checked on a grid:

# %%
A, B = np.meshgrid(np.linspace(-10, 10, 81), np.linspace(-10, 10, 81))
softmax_form = np.exp(A) / (np.exp(A) + np.exp(B))
sigmoid_form = 1 / (1 + np.exp(-(A - B)))
print(f"max |e^A/(e^A+e^B) − σ(A−B)| on an 81×81 grid in [−10, 10]²: "
      f"{np.abs(softmax_form - sigmoid_form).max():.2e}")
shifted = np.exp(A + 7) / (np.exp(A + 7) + np.exp(B + 7))
print(f"max change when both rewards get +7: {np.abs(shifted - softmax_form).max():.2e}")
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(1000.0) / (np.exp(1000.0) + np.exp(998.0))
print(f"A = 1000, B = 998: the naive quotient gives {naive} (overflow); "
      f"σ(A − B) = σ(2) = {torch.sigmoid(torch.tensor(2.0)).item():.4f}")

z = np.linspace(-8, 8, 200)
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(z, 1 / (1 + np.exp(-z)), label="σ(A − B)")
ax.scatter((A - B)[::8, ::8].ravel(), softmax_form[::8, ::8].ravel(), s=8, color="tab:orange",
           label="e^A / (e^A + e^B) on the grid", zorder=3)
ax.axhline(0.5, color="gray", lw=0.8, ls=":")
ax.set_xlim(-8, 8)
ax.set_xlabel("A − B = r(x, y_w) − r(x, y_l)")
ax.set_ylabel("P(y_w ≻ y_l)")
ax.set_title("Bradley-Terry: the preference probability\nis σ of the reward difference")
ax.legend()
fig.tight_layout()
path = OUT / "bradley_terry_sigmoid.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)

# %% [markdown]
# ## The Bradley-Terry loss
#
# `bradley_terry_loss` is −log σ(r_w − r_l), averaged over the batch. It is log 2 when the
# model cannot tell the answers apart, small when it ranks them right, large when wrong.

# %%
print(inspect.getsource(bradley_terry_loss))
for r_w, r_l in [(0.0, 0.0), (2.0, 0.0), (0.0, 2.0), (5.0, -5.0)]:
    loss = bradley_terry_loss(torch.tensor([r_w]), torch.tensor([r_l])).item()
    print(f"r_w = {r_w:+.1f}, r_l = {r_l:+.1f}:  −log σ(r_w − r_l) = {loss:.4f}")

# %% [markdown]
# ## The gold reward r* of the toy world
#
# In this project a known reward r*(x, y) (`align.gold`) plays the human labeller:
# correctness, off-topic (an answer that does not answer *this* question), offensive
# language, evasion, fluency, style (paid on a right answer only), length. The answer is
# judged against the question, so no fixed answer can game it: "I am Mary." is right for
# "What is your name?" and off-topic for "Where is Lima?". The lecture's winners score
# higher than its losers, and Bradley-Terry turns each gap into a probability.

# %%
for x, y_w, y_l in LECTURE_PREFERENCE_TABLE:
    print(f"x = {x!r}")
    for name, y in (("y_w", y_w), ("y_l", y_l)):
        parts = ", ".join(f"{k} {v:+.2f}" for k, v in gold_components(x, y).items() if v)
        print(f"  r*({name}) = {gold_reward(x, y):+6.2f}   ({parts})")
    print(f"  P(y_w ≻ y_l) = σ(r*(y_w) − r*(y_l)) = {preference_probability(x, y_w, y_l):.4f}")

# %% [markdown]
# ## A small reward model r_φ, trained on labelled pairs
#
# 1. Pre-train a tiny byte-level GPT (the trunk of r_φ) for a few steps.
# 2. Make pairs: for each training prompt, one answer of each quality (good, wrong, rude,
#    unhelpful) from `toyworld.world`, shuffled and paired two by two; `label_pairs` picks
#    the winner with the Bradley-Terry probability of r*, as a noisy human would.
# 3. `train_reward` fits r_φ = GPT trunk + a linear head on the last token, with the loss
#    above. (The pipeline's r_φ adds a second term, its trunk's mean log-probability of
#    the answer, `RewardConfig(reads_likelihood=True)`: lesson 11 shows why.)

# %%
BLOCK = 160  # room for the lecture's longest example (gravity) with its prompt
pretrain = pretrain_small_model(OUT, SMOKE, block_size=BLOCK,
                                max_iters=10 if SMOKE else 150)  # lessons/lesson_setup.py
print(f"trunk pre-trained: val loss {pretrain['val_loss']:.3f}")

# pairs of the world's own answers (one of each quality per prompt), labelled by Bradley-Terry
train_rows = pairs_from_world(train_prompts(40 if SMOKE else 400, seed=0), seed=0)
eval_rows = pairs_from_world(heldout_prompts(20 if SMOKE else 100, seed=0), seed=1)
write_jsonl(OUT / "pairs.jsonl", train_rows)
write_jsonl(OUT / "heldout_pairs.jsonl", eval_rows)
agree = sum(r["chosen_gold"] > r["rejected_gold"] for r in train_rows)
print(f"{len(train_rows)} training pairs ({agree} labelled as r* ranks them; the rest are the "
      f"labeller's Bradley-Terry noise or ties), {len(eval_rows)} held-out pairs")
print("one pair:", {k: train_rows[0][k] for k in ("prompt", "chosen", "rejected")})

config = RewardConfig(init=str(OUT / "pretrain"), data=str(OUT / "pairs.jsonl"),
                      eval_data=str(OUT / "heldout_pairs.jsonl"), out_dir=str(OUT / "reward"),
                      max_length=BLOCK, max_prompt_length=64, batch_size=8 if SMOKE else 16,
                      learning_rate=1e-3, min_lr=1e-4, warmup_iters=2 if SMOKE else 10,
                      max_iters=10 if SMOKE else 200, eval_interval=10 if SMOKE else 50,
                      device="cpu", seed=0, overwrite=True)
summary = train_reward(config, progress=not SMOKE)
print(f"reward model: held-out accuracy P(r_φ(y_w) > r_φ(y_l)) = {summary['accuracy']:.3f}, "
      f"agreement with r* = {summary['gold_agreement']:.3f}, mean margin {summary['margin']:.3f}")

# %% [markdown]
# ## r_φ ranking answers
#
# Score prompt + answer + EOS with the trained r_φ and compare its order with r*.

# %%
reward_model, tokenizer = load_reward_model(OUT / "reward")


@torch.no_grad()
def r_phi(prompt, answers):
    examples = [sft_example(prompt_tokens(tokenizer, prompt), response_tokens(tokenizer, prompt, y))
                for y in answers]  # (prompt + answer ids, the answer's labels)
    return score_sequences(reward_model, examples, tokenizer.pad_id, "cpu").tolist()


for x, y_w, y_l in LECTURE_PREFERENCE_TABLE:
    s_w, s_l = r_phi(x, [y_w, y_l])
    print(f"{x!r}: r_φ(y_w) = {s_w:+.3f}, r_φ(y_l) = {s_l:+.3f} -> "
          f"{'ranked as the lecture' if s_w > s_l else 'ranked the other way'}")

for prompt in heldout_prompts(2, seed=3):
    candidates = answer_candidates(prompt, random.Random(0))
    scores = r_phi(prompt, list(candidates.values()))
    print(f"\nheld-out x = {prompt!r}, answers sorted by r_φ:")
    for (quality, y), s in sorted(zip(candidates.items(), scores), key=lambda item: -item[1]):
        print(f"  r_φ = {s:+7.3f}   r* = {gold_reward(prompt, y):+6.2f}   [{quality:9}] {y!r}")
