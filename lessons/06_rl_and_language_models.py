# %% [markdown]
# # Lesson 6 — RL and language models (Configuración de RL: Conexión con LLMs)
#
# The cat of lesson 5, translated to a language model:
#
# | RL (the cat) | language model |
# | --- | --- |
# | agente (agent) | the GPT, π_θ |
# | estado (state) s_t | the prompt x plus the tokens written so far, (x, y_<t) |
# | acción (action) a_t | the next token y_t, one of the vocabulary's ids |
# | política π(a\|s) | the next-token distribution p_θ(y_t \| x, y_<t) |
# | episodio (episode) | one answer, until EOS |
# | recompensa (reward) | a score of the whole answer, at its end (like the meat) |
#
# The probability of a whole answer is a product over its steps, so its log-probability
# is a sum:  log π_θ(y|x) = Σ_t log π_θ(a_t|s_t) = Σ_t log p_θ(y_t | x, y_<t).
# This lesson samples an answer and computes that sum twice: one step at a time, and on
# the whole sequence at once with `get_batch_logps` (what DPO uses, lessons 9 and 10).

# %%
from lesson_setup import lesson_paths, pretrain_small_model, token_label  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import math

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from toyworld.template import format_prompt
from minigpt import get_batch_logps, load_model

torch.manual_seed(0)
torch.set_num_threads(1)  # tiny tensors: one thread avoids thread-pool overhead on a busy CPU

# %% [markdown]
# ## The agent: a small byte-level GPT, quickly pre-trained
#
# A few hundred steps on the toy world's corpus (a few under the smoke setting): enough
# for the model to prefer letters and the dialogue format over random bytes. The answer
# it writes will not be good; this lesson is about how its probability is computed.

# %%
summary = pretrain_small_model(OUT, SMOKE, block_size=96 if SMOKE else 128,
                               max_iters=20 if SMOKE else 200)  # lessons/lesson_setup.py
model, tokenizer, _ = load_model(summary["run"])  # eval mode: no dropout
print(f"pre-trained {summary['step']} steps: val loss {summary['val_loss']:.3f} nats/byte; "
      f"vocabulary {tokenizer.vocab_size} (256 bytes + BOS, EOS, PAD)")

# %% [markdown]
# ## The state: the prompt (el estado)
#
# s_0 is the prompt in the template every stage uses (`toyworld.template.format_prompt`).

# %%
prompt = "What is 2+2?"
prompt_text = format_prompt(prompt)
prompt_ids = tokenizer.encode(prompt_text)
print(repr(prompt_text), "->", len(prompt_ids), "tokens (bytes)")

# %% [markdown]
# ## Actions: sample an answer, a_t ~ π_θ(·|s_t)
#
# `GPT.generate` appends one sampled token at a time until EOS (or a length limit).

# %%
generator = torch.Generator().manual_seed(0)
idx = torch.tensor([prompt_ids])
out = model.generate(idx, max_new_tokens=24, temperature=1.0, eos_id=tokenizer.eos_id,
                     generator=generator)
answer_ids = out[0, len(prompt_ids):].tolist()
if tokenizer.eos_id in answer_ids:
    answer_ids = answer_ids[: answer_ids.index(tokenizer.eos_id) + 1]
print("sampled answer y:", repr(tokenizer.decode(answer_ids)), f"({len(answer_ids)} actions)")

# %% [markdown]
# ## log π_θ(y|x), step by step
#
# At step t the state is s_t = prompt + a_<t; `next_token_probs` gives π_θ(·|s_t) over
# all 259 tokens, and we read off the probability of the token that was actually
# sampled.

# %%
step_logps = []
state = list(prompt_ids)
print(" t  action    π_θ(a_t|s_t)   log π_θ(a_t|s_t)")
for t, a in enumerate(answer_ids):
    probs = model.next_token_probs(torch.tensor([state]))[0]  # π_θ(·|s_t)  (vocab,)
    step_logps.append(math.log(probs[a].item()))
    if t < 12 or t == len(answer_ids) - 1:
        print(f"{t:2d}  {tokenizer.decode([a])!r:8}  {probs[a].item():12.5f}   {step_logps[-1]:12.4f}")
    state.append(a)  # s_{t+1} = s_t + a_t
loop_total = sum(step_logps)
print(f"Σ_t log π_θ(a_t|s_t) = {loop_total:.5f}")

# %% [markdown]
# ## log π_θ(y|x) on the whole sequence at once
#
# One forward pass over prompt + answer gives the logits at every position; labels hold
# the answer's tokens and −100 on the prompt, which does not count. `get_batch_logps`
# shifts, masks, gathers and sums (lesson 10 takes it apart).

# %%
sequence = torch.tensor([prompt_ids + answer_ids])              # (1, T)
labels = sequence.clone()
labels[0, : len(prompt_ids)] = -100                              # the prompt is not an action
with torch.no_grad():
    logits, _ = model(sequence)                                  # (1, T, vocab)
batch_total = get_batch_logps(logits, labels).item()
print("labels:", labels[0].tolist()[:len(prompt_ids) + 3], "...")
print(f"get_batch_logps = {batch_total:.5f}   loop = {loop_total:.5f}   "
      f"difference {abs(batch_total - loop_total):.2e}")
assert abs(batch_total - loop_total) < 1e-3
print(f"π_θ(y|x) = exp({batch_total:.3f}) = {math.exp(batch_total):.3e}: a product of "
      f"{len(answer_ids)} probabilities, hence the log")

# %% [markdown]
# ## A figure: log π_θ(a_t|s_t) of each token

# %%
fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(answer_ids)), 3.5))
ax.bar(range(len(step_logps)), step_logps, color="tab:blue")
ax.set_xticks(range(len(answer_ids)))
ax.set_xticklabels([token_label(tokenizer, a) for a in answer_ids], fontsize=9)
ax.set_xlabel("sampled token a_t (␣ = space; \\xNN = a byte that is only part of a character)")
ax.set_ylabel("log π_θ(a_t | s_t)")
ax.set_title(f"{prompt!r}: Σ_t log π_θ(a_t|s_t) = {loop_total:.2f}")
fig.tight_layout()
path = OUT / "token_logps.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)
