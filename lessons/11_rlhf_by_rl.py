# %% [markdown]
# # Lesson 11 — RLHF: optimising J directly (Función de costo RLHF)
#
# The lecture's objective, with the reward model r_φ of lesson 7 and π_ref the SFT model:
#
#     J_RLHF(π_θ) = E_{x~D, y~π_θ(y|x)} [ r_φ(x, y) − β·D_KL(π_θ(y|x) ‖ π_ref(y|x)) ]
#
# Lesson 8 solved it in closed form for a bandit, where Z(x) is a short sum; lesson 9 (DPO)
# went around it, with no sampling at all. Here we do what InstructGPT did with PPO, and
# what TRL's RLOOTrainer and PPOTrainer do: sample answers from π_θ, score them with r_φ,
# and climb J by the policy gradient, the cat's REINFORCE of lesson 5 on a GPT.
#
# The code: `align.rl_losses` (the formulas, one small function each), `align.rollouts`
# (sampling k answers per prompt and everything RL reads about them) and `align.rlhf`
# (`train_rlhf`: the loop, RLOO or PPO).

# %%
from lesson_setup import expected_lines, lesson_paths, pipeline_run_folder  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import collections
import inspect
import json

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import align.rl_losses
from align.dpo import load_policy_and_reference
from align.gold import gold_reward
from align.report import SMOOTH, smoothed
from align.reward import load_reward_model
from align.rl_losses import (gae, kl_penalized_rewards, ppo_clip_loss, rloo_advantages, rloo_loss,
                             value_clip_loss, whiten)
from align.rlhf import RLHFConfig, rloo_update, train_rlhf
from align.rollouts import Rollouts, collect_rollouts
from gridworld import kl, optimal_kl_policy, reinforce_loss
from minigpt.runlog import RunFolder

torch.manual_seed(0)
torch.set_num_threads(1)  # small tensors: one thread avoids thread-pool overhead on a busy CPU
np.random.seed(0)
torch.set_printoptions(precision=3, sci_mode=False)

# %% [markdown]
# ## From the cat to the GPT: an answer is one action
#
# Lesson 5's cat took a step on −Σ_t (G_t − b(s_t))·log π_θ(a_t|s_t): make the actions that
# returned more than the baseline b more likely. For a language model, the state is the
# prompt x, the action is the whole answer y, and its log-probability is the sum over its
# tokens (lesson 6):  log π_θ(y|x) = Σ_t log π_θ(y_t | x, y_<t).  RLOO
# (REINFORCE leave-one-out, Ahmadian et al. 2024) takes exactly the cat's step with the
# answer as the action: −mean_i A_i·log π_θ(y_i|x). Only the baseline is new: the mean
# return of the other k − 1 answers sampled for the same prompt.

# %%
print(inspect.getsource(reinforce_loss))
print(inspect.getsource(rloo_loss))

# %% [markdown]
# ## The run folder: π_ref, r_φ and the prompts
#
# RLHF starts where the pipeline (`python -m align.pipeline`) has put its stages: the SFT
# model (π_ref, and π_θ's starting point), the reward model r_φ trained on pairs of π_ref's
# own answers, and the preference pairs, whose prompts are the training prompts. This
# lesson reads your default run (runs/pipeline) if it has finished, else your quick one
# (runs/pipeline-quick), and writes nothing into either. With neither, it trains the quick
# preset into the lessons' own folder, runs/lessons/pipeline-quick (a few minutes on 2 CPU
# cores, once: lesson 12 reads it too). In the smoke setting it trains the pipeline's
# smoke preset there instead: seconds, and models too small to write words
# (`lesson_setup.pipeline_run_folder`). The first line below says which run it uses.

# %%
RUN = pipeline_run_folder(ROOT, SMOKE)
settings = json.loads((RUN / "config.json").read_text(encoding="utf-8"))
MAX_NEW = settings["max_new_tokens"]
print(f"\nrun folder: {RUN} (preset {settings['preset']!r}); answers of at most {MAX_NEW} tokens")
policy, reference, tokenizer = load_policy_and_reference(str(RUN / "sft"), "cpu")  # π_θ = π_ref at first
reward_model, _ = load_reward_model(RUN / "reward", "cpu")
train_file = RUN / "data" / "pairs_train.jsonl"
heldout_file = RUN / "data" / "pairs_heldout.jsonl"
train_prompts = list(dict.fromkeys(json.loads(line)["prompt"]
                                   for line in train_file.read_text(encoding="utf-8").splitlines()))
heldout = list(dict.fromkeys(json.loads(line)["prompt"]
                             for line in heldout_file.read_text(encoding="utf-8").splitlines()))
print(f"{len(train_prompts)} distinct training prompts, {len(heldout)} distinct held-out prompts")

# %% [markdown]
# ## Rollouts: k answers to each prompt, and what RL reads about them
#
# `collect_rollouts` samples one answer per entry of its prompt list (a prompt repeated k
# times gets k answers) at temperature 1, so that the log-probabilities are π_θ's own, and
# lays prompt + answer out as one right-padded row per answer. Column t of the (N, T−1)
# tensors is the prediction, made at position t, of token t + 1; `mask` is True where that
# token is an answer token. r_φ reads the answer at its EOS, as it was trained; an answer
# cut at max_new_tokens without an EOS is something r_φ never saw, and is paid
# r_φ − missing_eos_penalty (TRL's rule).

# %%
print(inspect.getsource(Rollouts).split("    def __len__")[0])
k = 2
rollouts = collect_rollouts(policy, reference, reward_model, tokenizer,
                            [p for p in train_prompts[:2] for _ in range(k)], MAX_NEW, seed=0,
                            device="cpu")
print(f"{len(rollouts)} rollouts: input_ids {tuple(rollouts.input_ids.shape)}, mask "
      f"{tuple(rollouts.mask.shape)}, logprobs {tuple(rollouts.logprobs.shape)}, scores "
      f"{tuple(rollouts.scores.shape)}")
for sample, score, finished in zip(rollouts.samples, rollouts.scores, rollouts.finished):
    print(f"  x = {sample.prompt!r:38} y = {sample.text!r:40} r_φ = {score:+.3f}"
          f"{'' if finished else ' (no EOS: penalty included)'}")
row = 0
columns = rollouts.mask[row].nonzero().squeeze(1)[:6]
print(f"answer 0, its first answer columns {columns.tolist()}:")
print("  log π_θ(y_t|·) ", rollouts.logprobs[row, columns])
print("  log π_ref(y_t|·)", rollouts.ref_logprobs[row, columns], "(π_θ = π_ref before any update)")

# %% [markdown]
# ## Per-token rewards: the KL penalty on every token
#
# RLHF code pays the reward token by token: every answer token pays −β times its log-ratio
# log π_θ(y_t|·) − log π_ref(y_t|·), and the last token also gets r_φ(x, y). The module's
# docstring says why the sum of these rewards, the answer's return with γ = 1, is the
# lecture's J: the log-ratios add up to log π_θ(y|x)/π_ref(y|x), and its mean over
# y ~ π_θ is the KL.

# %%
print(align.rl_losses.__doc__)
print(inspect.getsource(kl_penalized_rewards))

# %% [markdown]
# A worked example: two answers, six columns. Row 0 is a prompt of two columns and an
# answer of three tokens, then padding; row 1 an answer of five tokens. β = 0.5.

# %%
mask = torch.tensor([[False, False, True, True, True, False],
                     [False, True, True, True, True, True]])
logprobs = torch.tensor([[0.0, 0.0, -1.0, -0.5, -2.0, 0.0],
                         [0.0, -0.2, -0.3, -1.5, -0.1, -0.4]])      # log π_θ(y_t|·)
ref_logprobs = torch.tensor([[0.0, 0.0, -1.2, -0.9, -1.0, 0.0],
                             [0.0, -0.2, -0.6, -1.0, -0.3, -0.4]])  # log π_ref(y_t|·)
scores = torch.tensor([2.0, -1.0])                                   # r_φ(x, y)
beta = 0.5
rewards = kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, beta)
print("per-token rewards r_t (0 off the answer; r_φ added on each answer's last token):")
print(rewards)
log_ratio = torch.where(mask, logprobs - ref_logprobs, 0.0).sum(1)  # log π_θ(y|x)/π_ref(y|x)
print("Σ_t r_t                              ", rewards.sum(1))
print("r_φ − β·log π_θ(y|x)/π_ref(y|x)      ", scores - beta * log_ratio)
assert torch.allclose(rewards.sum(1), scores - beta * log_ratio)

# %% [markdown]
# And the other half of the argument: over answers y ~ π_θ, the mean of
# log π_θ(y|x)/π_ref(y|x) is KL(π_θ ‖ π_ref). On five answers, where the KL can be summed:

# %%
pi_theta = np.array([0.50, 0.20, 0.15, 0.10, 0.05])
pi_ref = np.array([0.20, 0.20, 0.20, 0.20, 0.20])
draws = np.random.default_rng(0).choice(5, size=2_000 if SMOKE else 100_000, p=pi_theta)
print(f"mean of log π_θ(y)/π_ref(y) over {len(draws)} answers y ~ π_θ = "
      f"{np.log(pi_theta[draws] / pi_ref[draws]).mean():.4f};  KL(π_θ‖π_ref) summed = "
      f"{kl(pi_theta, pi_ref):.4f}")

# %% [markdown]
# ## RLOO: the other answers as the baseline
#
# Each answer's return is R_i = Σ_t r_t = r_φ(x, y_i) − β·log π_θ(y_i|x)/π_ref(y_i|x), and its
# advantage the return less the mean return of the other k − 1 answers to the same prompt.
# The baseline does not depend on y_i, so the expected gradient is still ∇J; it only
# lowers the variance. The advantages of one prompt sum to 0: some answers are pushed up,
# the others down, by how much better or worse they did than their siblings.

# %%
print(inspect.getsource(rloo_advantages))
returns = torch.tensor([[1.0, 2.0, 3.0, 6.0],     # prompt 1: k = 4 answers
                        [-1.0, -1.0, -1.0, 3.0]])  # prompt 2: one answer much better
A = rloo_advantages(returns)
print("returns R:\n", returns)
print("advantages A_i = R_i − mean_{j≠i} R_j:\n", A)
print("k/(k−1)·(R_i − mean_j R_j):\n", 4 / 3 * (returns - returns.mean(1, keepdim=True)))
print("sum of the advantages of each prompt:", A.sum(1))

# %% [markdown]
# Why a baseline at all? r_φ is known only up to a constant: Bradley-Terry sees
# differences (lesson 7), so r_φ + 5 is the same reward model. Plain REINFORCE,
# mean_i R_i·∇log π_θ(y_i), is unbiased for either, but its variance grows with the
# constant; with the leave-one-out baseline the constant cancels. On a softmax bandit of
# five answers, where the exact gradient of E[r] is π ⊙ (r − E_π[r]), many batches of
# k = 4 answers each:

# %%
def gradient_estimates(rewards, theta, k, batches, seed, baseline):
    """(batches, Y) estimates of ∇_θ E_{y~softmax(θ)}[r(y)] from k answers each."""
    pi = torch.softmax(theta, 0)
    y = torch.multinomial(pi.expand(batches, -1), k, replacement=True,
                          generator=torch.Generator().manual_seed(seed))  # (batches, k)
    R = rewards[y]                                                         # (batches, k)
    weight = rloo_advantages(R) if baseline else R
    grad_log_pi = torch.nn.functional.one_hot(y, len(pi)).double() - pi   # ∇_θ log π(y) = e_y − π
    return (weight[..., None] * grad_log_pi).mean(1)                       # (batches, Y)


theta = torch.tensor([0.5, 0.0, -0.5, 0.2, 0.0], dtype=torch.float64)
r = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0], dtype=torch.float64)
pi = torch.softmax(theta, 0)
exact = pi * (r - (pi * r).sum())
print("exact ∇E[r]:", exact.numpy().round(4))
batches = 2_000 if SMOKE else 50_000
for shift in (0.0, 5.0):
    for name, baseline in (("REINFORCE, no baseline", False), ("RLOO", True)):
        g = gradient_estimates(r + shift, theta, 4, batches, 0, baseline)
        print(f"  r_φ + {shift:.0f}, {name:22}: mean {g.mean(0).numpy().round(4)}, "
              f"variance (summed) {g.var(0).sum():.3f}")

# %% [markdown]
# `align.rlhf.rloo_update` puts the pieces together: per-token rewards from the rollouts,
# their sums as returns, leave-one-out advantages, and one gradient step on `rloo_loss`.

# %%
print(inspect.getsource(rloo_update))

# %% [markdown]
# ## GAE: advantages from a value head
#
# PPO, the algorithm of the InstructGPT paper, gives credit token by token instead: a value
# head V(s_t) (in `align.rlhf`, a copy of r_φ that PPO trains on) estimates the return
# still to come after the prefix s_t, and each token's advantage is built from the one-step
# errors δ_t = r_t + γ·V(s_{t+1}) − V(s_t), summed with weights (γλ)^l. λ = 1 gives the
# return minus the value (the Monte Carlo advantage, low bias, high variance); λ = 0
# gives δ_t alone (leans on V). `gae` computes it backwards in one loop over positions.

# %%
print(inspect.getsource(gae))
# one answer of five tokens after a prompt of two columns, with per-token KL penalties and
# r_φ = 1.5 on the last token; the value head's guesses V(s_t) before each token
mask = torch.tensor([[False, False, True, True, True, True, True]])
rewards = torch.tensor([[0.0, 0.0, -0.02, 0.01, -0.05, -0.01, 1.5]])
values = torch.tensor([[0.0, 0.0, 0.8, 0.9, 1.1, 1.0, 1.3]])


def gae_brute_force(rewards, values, mask, gamma, lam):
    """Â_t = Σ_{l≥0} (γλ)^l δ_{t+l} by a double loop, over one row's answer tokens."""
    cols = mask[0].nonzero().squeeze(1).tolist()
    r, v = rewards[0, cols].tolist(), values[0, cols].tolist() + [0.0]  # V = 0 after the last token
    deltas = [r[t] + gamma * v[t + 1] - v[t] for t in range(len(r))]
    return [sum((gamma * lam) ** l * deltas[t + l] for l in range(len(r) - t)) for t in range(len(r))]


for gamma, lam in ((1.0, 0.95), (1.0, 1.0), (1.0, 0.0)):
    advantages, targets = gae(rewards, values, mask, gamma, lam)
    loop = gae_brute_force(rewards, values, mask, gamma, lam)
    print(f"γ = {gamma}, λ = {lam}:  gae  {advantages[0, 2:].numpy().round(4)}")
    print(f"{'':18}loop {np.round(loop, 4)}")
    assert np.allclose(advantages[0, 2:].numpy(), loop, atol=1e-6)
G = rewards[0, 2:].flip(0).cumsum(0).flip(0)  # the return still to come, Σ_{l≥t} r_l
print(f"λ = 1 is the return minus the value: G_t − V(s_t) = {(G - values[0, 2:]).numpy().round(4)}")
print(f"value head targets G_t = Â_t + V(s_t) (λ = 0.95): {gae(rewards, values, mask)[1][0, 2:].numpy().round(4)}")
print(f"PPO then whitens the advantages over the batch (mean 0, std 1): "
      f"{whiten(gae(rewards, values, mask)[0], mask)[0, 2:].numpy().round(3)}")

# %% [markdown]
# ## PPO's clipped objective
#
# RLOO takes one gradient step on answers sampled by the very weights it updates, so the
# ratio ρ_t = π_θ(y_t|·)/π_θ_old(y_t|·) is exactly 1. PPO reuses each batch of rollouts for
# several epochs of minibatches; π_θ moves away from the π_θ_old that sampled them, and the
# surrogate ρ_t·Â_t would reward moving ever further on stale data. PPO's objective is
# min(ρ_t·Â_t, clip(ρ_t, 1 − ε, 1 + ε)·Â_t): once the ratio has moved past 1 + ε in the
# direction the advantage favours (1 − ε for Â < 0), the gradient is 0. The loss below is
# its negative, averaged over answer tokens.

# %%
print(inspect.getsource(ppo_clip_loss))
epsilon = 0.2
ratios = torch.linspace(0.0, 2.0, 201)
fig, ax = plt.subplots(figsize=(8, 4.5))
print("  ρ      Â    min(ρÂ, clip(ρ)Â)   ∂/∂log π_θ   clipped")
for advantage, color in ((1.0, "tab:blue"), (-1.0, "tab:red")):
    surrogate, gradient = [], []
    for rho in ratios:
        log_pi = torch.log(rho.clamp(min=1e-6)).reshape(1, 1).requires_grad_(True)
        loss, stats = ppo_clip_loss(log_pi, torch.zeros(1, 1), torch.tensor([[advantage]]),
                                    torch.ones(1, 1, dtype=torch.bool), epsilon)
        loss.backward()
        surrogate.append(-loss.item())
        gradient.append(-log_pi.grad.item())
        if round(rho.item(), 2) in (0.5, 1.0, 1.5):
            print(f"  {rho:.2f}  {advantage:+.0f}   {-loss.item():+8.3f}          {-log_pi.grad.item():+8.3f}     "
                  f"{'yes' if stats['clipfrac'] else 'no'}")
    ax.plot(ratios, surrogate, color=color, lw=2.5, label=f"min(ρ·Â, clip(ρ, 1±ε)·Â), Â = {advantage:+.0f}")
    ax.plot(ratios, ratios * advantage, color=color, lw=1, ls="--", label=f"ρ·Â (unclipped), Â = {advantage:+.0f}")
for edge in (1 - epsilon, 1 + epsilon):
    ax.axvline(edge, color="gray", lw=0.8, ls=":")
ax.axvline(1.0, color="black", lw=0.8)
ax.set_xlabel("ratio ρ = π_θ(y_t|·) / π_θ_old(y_t|·)   (dotted: 1 − ε and 1 + ε, ε = 0.2)")
ax.set_ylabel("PPO's surrogate objective (to maximise)")
ax.set_title("PPO's clipped objective: flat (no gradient) once ρ has moved\npast 1 ± ε in the direction the advantage favours")
ax.legend(fontsize=8)
fig.tight_layout()
path = OUT / "ppo_clipped_objective.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)

# %% [markdown]
# The value head is clipped the same way: its new value may not move further than ε_V
# from the value it had when the answers were sampled, and the larger of the two errors
# is the loss.

# %%
print(inspect.getsource(value_clip_loss))
v_old, target = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 2.0]])
v_new = torch.tensor([[1.1, 1.5]])  # the second moved 0.5, more than ε_V = 0.2
loss, clipfrac = value_clip_loss(v_new, v_old, target, torch.ones(1, 2, dtype=torch.bool), 0.2)
print(f"V_old = 1.0, 1.0; V = 1.1, 1.5; G = 2.0, 2.0: loss {loss:.3f} = "
      f"½·mean(0.9², 0.8²) (the second token's error taken at clip(1.5) = 1.2), clipfrac {clipfrac}")

# %% [markdown]
# ## A short RLOO run: watching reward hacking on r_φ while r* is measured
#
# `train_rlhf` runs the loop: rollouts of k answers to each of B training prompts, the
# RLOO update, and the metrics under TRL's names. `objective/scores` is r_φ of the
# rollouts, what RL climbs; `objective/gold_scores` is the gold reward r* of the same
# answers (`align.gold`), which RL never sees; `objective/kl` is the mean of
# log π_θ(y|x)/π_ref(y|x) over them. Every eval interval, π_θ answers held-out prompts and
# r*, r_φ, the KL (exact per token, `align.kl`) and the number of distinct answers are
# measured. β = 0.1 (the pipeline's RLHF stage uses 0.25: see below why); the learning
# rate is about two and a half times the pipeline's, so that a few dozen steps show
# what its 100 do.

# %%
eval_file = OUT / "eval_prompts.jsonl"  # distinct held-out prompts (the pairs repeat theirs)
eval_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in heldout), encoding="utf-8")
steps = 3 if SMOKE else 40
config = RLHFConfig(init=str(RUN / "sft"), reward=str(RUN / "reward"), data=str(train_file),
                    eval_data=str(eval_file), out_dir=str(OUT / "rlhf"), overwrite=True,
                    algorithm="rloo", beta=0.1, rloo_k=2 if SMOKE else 4, batch_size=2 if SMOKE else 16,
                    max_new_tokens=MAX_NEW, max_iters=steps, eval_interval=steps if SMOKE else 20,
                    eval_prompts=4 if SMOKE else 32, learning_rate=3e-4, min_lr=3e-5, warmup_iters=2,
                    device="cpu", seed=0)
points = {}  # step -> evaluate_point's measures, with the answers themselves
summary = train_rlhf(config, progress=not SMOKE, keep_point=lambda step, point: points.__setitem__(step, point))
print(f"{steps} RLOO steps of {config.batch_size} prompts × {config.rloo_k} answers in {summary['seconds']:.0f} s")

# %%
rows = RunFolder(OUT / "rlhf").read_metrics()
train_rows = [row for row in rows if "objective/scores" in row]
eval_rows = [row for row in rows if "eval_gold_reward" in row]
step_axis = [row["step"] for row in train_rows]


def curve(ax, key, label, color):
    values = [row[key] for row in train_rows]
    ax.plot(step_axis, values, color=color, lw=0.8, alpha=0.35)
    ax.plot(step_axis, smoothed(values, SMOOTH), color=color, lw=1.8,
            label=f"{label} (running mean of {SMOOTH} steps)")


fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
curve(left, "objective/scores", "r_φ of the rollouts (objective/scores)", "tab:red")
curve(left, "objective/gold_scores", "r* of the rollouts (objective/gold_scores)", "tab:green")
left.plot([r["step"] for r in eval_rows], [r["eval_scores"] for r in eval_rows], "s--", color="tab:red",
          label="r_φ, held-out prompts")
left.plot([r["step"] for r in eval_rows], [r["eval_gold_reward"] for r in eval_rows], "o--",
          color="tab:green", label="r*, held-out prompts")
off_topic = gold_reward("Where is Lima?", "You can call me Mary.")  # r* of an answer to another question
left.axhline(off_topic, color="gray", lw=0.8, ls=":", label=f"r* = {off_topic:+.0f}: an off-topic answer")
left.set_xlabel("RLOO step")
left.set_ylabel("reward per answer")
left.set_title(f"What RL optimises (r_φ) and the truth (r*)\nRLOO, β = {config.beta}, {RUN.name} ({settings['preset']} preset)")
left.legend(fontsize=7)
curve(right, "objective/kl", "objective/kl (rollouts)", "tab:purple")
right.plot([r["step"] for r in eval_rows], [r["eval_kl_exact_per_token"] for r in eval_rows], "o--",
           color="black", label="KL exact per token, held-out prompts")
right.axhline(0, color="gray", lw=0.8)
right.set_xlabel("RLOO step")
right.set_ylabel("KL(π_θ ‖ π_ref) per answer (nats)")
right.set_title("How far π_θ has moved from π_ref")
right.legend(fontsize=7)
fig.tight_layout()
path = OUT / "rloo_reward_hacking.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)


def tenth(key, last):
    """The mean of a rollout metric over the first (or the last) tenth of the steps: a level."""
    values = [row[key] for row in train_rows]
    n = max(len(values) // 10, 1)
    return float(np.mean(values[-n:] if last else values[:n]))


def change(key):
    """How far a rollout metric moved: its level over the last tenth minus over the first."""
    return tenth(key, True) - tenth(key, False)


print("rollouts: mean over the first tenth of the steps → over the last tenth (levels), and the change")
for key, name in (("objective/scores", "r_φ"), ("objective/gold_scores", "r*"), ("objective/kl", "KL")):
    print(f"  {name:3}: {tenth(key, False):+7.3f}  →  {tenth(key, True):+7.3f}   "
          f"change {change(key):+7.3f}")
print("held-out prompts, at each evaluation (levels):")
for row in eval_rows:
    print(f"  step {row['step']:3d}: r* {row['eval_gold_reward']:+.3f} "
          f"[{row['eval_gold_reward_low']:+.3f}, {row['eval_gold_reward_high']:+.3f}], r_φ "
          f"{row['eval_scores']:+.3f}, KL {row['eval_kl_exact_per_token']:.2f} nats, right "
          f"{row['eval_right_share']:.2f}, distinct answers {row['eval_distinct_answers']} of "
          f"{summary['counts']['eval_prompts']}")

# %% [markdown]
# π_θ's answers to the held-out prompts at the last evaluation, and the most common ones:

# %%
last = points[max(points)]
prompts_evaluated = heldout[: summary["counts"]["eval_prompts"]]
for prompt, text, gold in list(zip(prompts_evaluated, last["texts"], last["gold"]))[:6]:
    print(f"  x = {prompt!r:40} y = {text!r:45} r* = {gold:+.2f}")
common = collections.Counter(text.strip() for text in last["texts"]).most_common(3)
print("most common answers:", ", ".join(f"{text!r} ×{n}" for text, n in common))
rise_phi, rise_gold = change("objective/scores"), change("objective/gold_scores")
print(f"\nthis run, from the first tenth of the steps to the last: r_φ of the rollouts changed by "
      f"{rise_phi:+.2f}, r* by {rise_gold:+.2f}; the KL over the last tenth (a level) was "
      f"{tenth('objective/kl', True):.1f} nats: " +
      ("r_φ rose far more than r* — what the policy found pleases r_φ, not r*."
       if rise_phi > 0.5 and rise_phi > 2 * max(rise_gold, 0) else
       "no clear parting of r_φ and r* in this short run" +
       (" (the smoke setting: a few steps of a model that writes no words)." if SMOKE else ".")))
first, final = eval_rows[0], eval_rows[-1]
print(f"Read a mean r* beside what it is made of. From the first evaluation (step {first['step']}) "
      f"to the last (step {final['step']}), levels on the held-out prompts: r* "
      f"{first['eval_gold_reward']:+.2f} → {final['eval_gold_reward']:+.2f}, right answers "
      f"{first['eval_right_share']:.2f} → {final['eval_right_share']:.2f}, distinct answers "
      f"{first['eval_distinct_answers']} → {final['eval_distinct_answers']}. An off-topic answer "
      f"scores {off_topic:+.0f}; π_ref's sampled answers can average less (made-up words, "
      f"unfinished answers), so one polite answer to everything can even raise the mean r* while "
      f"answering almost nothing.")

# %% [markdown]
# ## What a default run shows: reward over-optimisation
#
# One default pipeline run of the first, longer recipe (2026-12-01; runs/pipeline,
# `python -m align.pipeline`), RLOO at β = 0.1 with that recipe's RLHF settings (16
# prompts × 4 answers a step, learning rate 1e-4), from its SFT model and reward model:
# within a few dozen steps π_θ collapsed onto one answer, "You can call me Mary.", for
# every prompt. r_φ of the rollouts rose by several points while r* stayed at
# what an off-topic answer scores, and the held-out evaluation found a single distinct
# answer. That is what happened in one run of a recipe since replaced, not a figure to
# expect; the short run above is the same experiment, made smaller.
#
# Why r_φ loved it: that reward model was trained only on pairs of π_ref's own answers to
# each prompt (lesson 7's labelling). It never saw "You can call me Mary." offered to a
# question it does not answer, so nothing taught it that the answer is bad there; it had
# learnt that a fluent, polite, finished sentence tends to win. RL is an optimiser: it
# finds the answer r_φ overrates and moves all the probability there. The pipeline's
# preference data now also holds *off-topic offers* (an answer to another question, a
# pleasantry, the assistant's name, set against a right answer to this one) and rude
# answers against polite ones (`align.preferences`), and its report gives r_φ's held-out
# accuracy on each kind of pair; with them its RLHF stage (β = 0.25) raises the mean r*
# over SFT without collapsing, and the stage watches for a collapse while it trains (a
# line in its log, and in the report, when one answer goes to more than a tenth of the
# prompts). This
# is reward over-optimisation (Goodhart's law: a measure that becomes a target stops being
# a good measure). The KL term is the guard: the larger β, the more each nat away from
# π_ref costs, and the less of r_φ's error the policy can buy.
#
# r_φ can be paid by a *wording* too. In an earlier version of the toy world every wrong
# sum was written "7+5 is 13." or "The answer is 13.", never "7 plus 5 is 13.": the words
# "a plus b is" came only with right sums, in the demonstrations and in the pairs. r_φ
# learnt the words instead of the sum, and RL found them: its answers moved to "4 plus 5
# is 8.". The world now writes every wording of a right answer as a wrong one too (a
# test checks it), and the preference data also sets the world's right answer against
# its wrong one in the same prompt (right_vs_wrong pairs), which only a reward model that
# checks the fact can order.
#
# What is left is the hardest part, and the report's knowledge probe measures it
# (`align.probe.reward_facts`): does r_φ *use* the facts its trunk has stored? Given
# "7 plus 6 is s." for every sum s as the answer to the held-out "What is 7+6?", the
# lecture's r_φ (a linear head on the hidden state of the EOS) rarely ranked the right
# sum above both sums one off, less often than a coin would, though its trunk, started
# from SFT, prefers the right sum. A likely reading: from the training sums the head
# learnt which numbers go with which operands, and the near misses of a held-out sum
# are the right answers of its training neighbours (12 is 7+5, 14 is 7+7). RL on that
# r_φ moved held-out sums *away* from the right answer while it removed the insults and
# the dodges. DPO needed no such judge: its implicit reward β·log π_θ/π_ref reads the
# policy's own log-probabilities, and they already prefer the stored sum.
#
# So the pipeline's r_φ reads them too (`RewardModel(reads_likelihood=True)`):
#
#     r_φ(x, y) = w·h_EOS + b + λ·(1/|y|) Σ_t log π_φ(y_t | x, y_<t)
#
# the head as before, plus λ times the mean log-probability its own trunk gives the
# answer's tokens (λ learned, from 1), trained by the same Bradley-Terry loss. Where the
# fact sits in the trunk, it is now one term of the score instead of something the head
# would have to learn to read from a few thousand pairs. The same probe then finds the
# right held-out sum above both near misses most of the time, and RL answers held-out
# sums better than SFT (the README's table has both reward models side by side). It is
# still a learnt reward: it prefers what its trunk finds likely, and it does not check
# everything (the probe finds it ranking a held-out topic's own explanation first for
# few of the topics). A reward that checks the fact itself (a verifier, beyond the
# lecture) does not have that limit.
#
# Nor can r_φ check what no pair showed it. The world's wrong sums keep the question's
# operands ("2+2 is 5."), so no pair set an answer that *misreads* the question against a
# right one, and r_φ (either kind) scored "2 plus 1 is 4." above "2+2 is 4." for "What is
# 2+2?"; RL found it and answered that (r* calls it wrong: it states a false sum). Half
# of a sum's wrong twins in the preference data now misread the question
# (`toyworld.world.misread_answer`, "2 plus 1 is 4." or "2 plus 1 is 3."), and the
# lecture's prompt is answered right again. Every hole in the preference data is a place
# RL can look for reward.
#
# The cell below prints the RLHF stage of this lesson's run folder (its own figures, β as
# the pipeline set it), and the ranges a default run is expected to measure
# (`align.expected`, with the runs and dates they were measured on).

# %%
results = json.loads((RUN / "results.json").read_text(encoding="utf-8"))  # the run is finished
evaluation = results["evaluation"]
sft, rlhf = (evaluation["sampled"][name]["breakdown"] for name in ("SFT", "RLHF"))
difference, low, high = evaluation["paired"]["RLHF − SFT"]["gold_difference"]
print(f"{RUN}'s own RLHF stage ({results['rlhf']['algorithm'].upper()}, β = {results['rlhf']['beta']}), SFT → RLHF on "
      f"{evaluation['prompts']} held-out prompts: RLHF − SFT mean r* {difference:+.2f} "
      f"[{low:+.2f}, {high:+.2f}]; off-topic answers {sft['shares']['off_topic']:.0%} → "
      f"{rlhf['shares']['off_topic']:.0%}; distinct answers {sft['distinct_answers']} → "
      f"{rlhf['distinct_answers']}; the reward model's agreement with the gold ranking "
      f"{results['reward_gold_agreement']:.2f}")
figures = ("rlhf_minus_sft", "rlhf_greedy_right", "rlhf_greedy_sums_right",
           "rlhf_top_answer_share", "reward_off_topic_accuracy", "reward_sums_above_near_miss")
if results["preset"] == "default":
    print("\n".join(expected_lines(results, figures)))
else:
    print(f"(the {results['preset']} preset: no expected range; a default run, "
          f"`python -m align.pipeline`, is expected to measure what follows)")
    print("\n".join(expected_lines(None, figures)))

# %% [markdown]
# ## β: the KL penalty against the score
#
# The optimum of J is π*_β ∝ π_ref·exp(r_φ/β) (lesson 8), so its collapse can be computed
# on a toy. One question, "Where is Lima?", and four answers. r_φ is wrong about one of
# them, as the pipeline's reward model was: it scores "You can call me Mary." above the
# right answer. What the optimum gets, for each β, of r_φ (what it optimises), of the
# penalty β·KL, of J = E[r_φ] − β·KL and of the gold reward r*:

# %%
answers = ["Lima is in Peru.", "You can call me Mary.", "I don't know.", "Go away."]
r_phi = np.array([2.0, 3.0, 0.0, -2.0])    # the reward model, wrong about "Mary"
r_star = np.array([3.0, -1.0, -0.5, -3.0])  # the gold reward: right, off-topic, evasive, rude
pi_ref = np.array([0.30, 0.05, 0.40, 0.25])
for a, s, g, p in zip(answers, r_phi, r_star, pi_ref):
    print(f"  {a:24} r_φ {s:+.1f}   r* {g:+.1f}   π_ref {p:.2f}")
print("\n  β      π*_β(y) of the four answers   E[r_φ]   β·KL     J     E[r*]")
for b in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
    p, _ = optimal_kl_policy(r_phi, pi_ref, b)
    penalty = b * float(kl(p, pi_ref))
    print(f"  {b:5.2f}  {' '.join(f'{v:.3f}' for v in p)}   {p @ r_phi:+.2f}   {penalty:5.2f}  "
          f"{p @ r_phi - penalty:+.2f}   {p @ r_star:+.2f}")
table = []  # on a fine grid of β, for the figure: β, E[r_φ], KL, β·KL, J, E[r*]
for b in np.geomspace(0.03, 30, 61):
    p, _ = optimal_kl_policy(r_phi, pi_ref, b)
    divergence = float(kl(p, pi_ref))
    table.append((b, p @ r_phi, divergence, b * divergence, p @ r_phi - b * divergence, p @ r_star))
table = np.array(table)
best = table[np.argmax(table[:, 5])]
print(f"\nβ → 0: all the mass on argmax r_φ ({answers[int(np.argmax(r_phi))]!r}), r* = "
      f"{r_star[np.argmax(r_phi)]:+.1f}; β → ∞: π_ref, r* = {pi_ref @ r_star:+.2f}. The best r* here "
      f"is {best[5]:+.2f}, at β ≈ {best[0]:.2f} (KL {best[2]:.2f} nats).")

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
left.semilogx(table[:, 0], table[:, 1], color="tab:red", label="E_π*[r_φ] (what is optimised)")
left.semilogx(table[:, 0], table[:, 5], color="tab:green", label="E_π*[r*] (the truth)")
left.semilogx(table[:, 0], table[:, 4], color="black", ls="--", label="J = E[r_φ] − β·KL")
left.axvline(best[0], color="gray", ls=":", lw=0.8, label=f"the best r*, at β ≈ {best[0]:.2f}")
left.set_xlabel("β (log scale)")
left.set_ylabel("reward")
left.set_title("π*_β ∝ π_ref·exp(r_φ/β): small β collapses\nonto r_φ's favourite, which r* calls off-topic")
left.legend(fontsize=8)
right.semilogx(table[:, 0], table[:, 2], color="tab:purple", label="KL(π*_β ‖ π_ref)")
right.semilogx(table[:, 0], table[:, 3], color="tab:orange", label="β·KL (the penalty paid)")
right.set_xlabel("β (log scale)")
right.set_ylabel("nats  /  reward units")
right.set_title("The KL the optimum spends, and what it costs")
right.legend(fontsize=8)
fig.tight_layout()
path = OUT / "beta_tradeoff.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)

# %% [markdown]
# What to take away: RLHF by RL climbs exactly the lecture's J, with r_φ in it. Where r_φ
# is wrong, a small β lets the optimiser exploit the error (KL is cheap), and r* shows it;
# a larger β keeps π_θ near π_ref, where r_φ was trained and can be trusted. (J itself
# always falls as β grows: each β is a different objective, so compare the β by r*.) Lesson 12 puts
# RLHF, DPO, best-of-N and π*_β side by side, each at the KL it spends.
