# %% [markdown]
# # Lesson 8 — The RLHF objective and the optimal policy (Función de costo RLHF, Política óptima)
#
# RLHF maximises the reward and stays close to the reference model π_ref (the SFT model):
#
#     max_π  E_{x~D, y~π(·|x)} [ r(x, y) ] − β·KL(π(·|x) ‖ π_ref(·|x))
#
# The lecture solves it in closed form (política óptima):
#
#     π*(y|x) = π_ref(y|x)·exp(r(x,y)/β) / Z(x),      Z(x) = Σ_y π_ref(y|x)·exp(r(x,y)/β)
#
# and inverts it:  r(x, y) = β·log(π*(y|x)/π_ref(y|x)) + β·log Z(x).
#
# For a language model Z(x) sums over every possible answer, far too many to compute.
# In a bandit with a handful of answers it is a short sum, so everything can be checked
# exactly. Our bandit: x = the cat at the start cell of lesson 5, y = its first move,
# r(x, y) = Q*(start, y), the optimal return after that move.

# %%
from lesson_setup import lesson_paths  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect

import matplotlib
matplotlib.use("Agg")
import numpy as np

from gridworld import (ACTION_NAMES, CatGridWorld, kl, kl_objective, optimal_kl_policy,
                       plot_bandit, render_policy, reward_from_policy, soft_value_iteration,
                       value_iteration)

np.random.seed(0)
GAMMA = 0.9

# %% [markdown]
# ## The bandit: r(x, y) and π_ref
#
# π_ref is a reference cat that likes going right (towards the broom), as an SFT model
# may like a mediocre answer.

# %%
env = CatGridWorld()
T, R = env.matrices()
V_star, Q_star, _ = value_iteration(T, R, GAMMA)
r = Q_star[env.start_state]                      # r(x, y) for y = up, down, left, right
pi_ref = np.array([0.1, 0.2, 0.1, 0.6])          # π_ref(y|x)
beta = 2.0
print("  y       r(x,y)   π_ref(y|x)")
for y, name in enumerate(ACTION_NAMES):
    print(f"  {name:6} {r[y]:8.3f}   {pi_ref[y]:.2f}")

# %% [markdown]
# ## π* = π_ref·exp(r/β)/Z, with Z computed
#
# `optimal_kl_policy` returns π* and log Z (as a log-sum-exp, so small β never
# overflows); here Z is also summed directly.

# %%
print(inspect.getsource(optimal_kl_policy))
pi_star, log_Z = optimal_kl_policy(r, pi_ref, beta)
Z_direct = float(np.sum(pi_ref * np.exp(r / beta)))
print(f"β = {beta}:  Z(x) = Σ_y π_ref(y|x)·exp(r(x,y)/β) = {Z_direct:.6e};  "
      f"exp(log Z) from optimal_kl_policy = {np.exp(log_Z):.6e}")
print("π*(·|x) =", {ACTION_NAMES[y]: round(float(p), 4) for y, p in enumerate(pi_star)},
      f" (sums to {pi_star.sum():.6f})")

# %% [markdown]
# ## The reward recovered from π*:  r = β·log(π*/π_ref) + β·log Z

# %%
r_back = reward_from_policy(pi_star, pi_ref, beta, log_Z)
print("  y       r(x,y)   β·log(π*/π_ref)   + β·log Z   = r recovered")
for y, name in enumerate(ACTION_NAMES):
    implicit = beta * np.log(pi_star[y] / pi_ref[y])
    print(f"  {name:6} {r[y]:8.3f}   {implicit:14.3f}   {beta * log_Z:10.3f}   {r_back[y]:10.3f}")
print(f"max |r − r recovered| = {np.abs(r - r_back).max():.2e}")

# %% [markdown]
# ## Why π* is the maximiser
#
# For any policy q:   E_q[r] − β·KL(q‖π_ref) = β·log Z − β·KL(q‖π*).
# β·log Z does not depend on q and KL ≥ 0 with equality only at q = π*, so the objective
# is largest, and equals β·log Z, exactly at π*. Checked on random policies q:

# %%
rng = np.random.default_rng(0)
qs = np.vstack([rng.dirichlet(np.ones(4), size=4 if SMOKE else 8), pi_ref, pi_star])
names = [f"random q{i}" for i in range(len(qs) - 2)] + ["q = π_ref", "q = π*"]
print("  policy        E_q[r] − β·KL(q‖π_ref)    β·log Z − β·KL(q‖π*)")
for name, q in zip(names, qs):
    lhs = kl_objective(q, r, pi_ref, beta)
    rhs = beta * log_Z - beta * kl(q, pi_star)
    print(f"  {name:12} {lhs:20.6f}   {rhs:20.6f}")
lhs_all = kl_objective(qs, r, pi_ref, beta)
assert np.allclose(lhs_all, beta * log_Z - beta * kl(qs, pi_star))
print(f"β·log Z = {beta * log_Z:.6f}; the best of these policies is {names[int(np.argmax(lhs_all))]}")

# %% [markdown]
# ## Back to Bradley-Terry (retomemos Bradley-Terry): β·log Z cancels
#
# Substitute r = β·log(π*/π_ref) + β·log Z into σ(r(x,y_w) − r(x,y_l)). Both rewards carry
# the same β·log Z(x), because Z depends on the prompt only, so the difference drops it:
#
#     σ(r(y_w) − r(y_l)) = σ(β·log π*(y_w)/π_ref(y_w) − β·log π*(y_l)/π_ref(y_l))
#
# The preference probability needs no Z: this is what makes DPO possible (lesson 9).

# %%
y_w, y_l = ACTION_NAMES.index("down"), ACTION_NAMES.index("right")
sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))
with_reward = sigmoid(r[y_w] - r[y_l])
implicit = beta * np.log(pi_star / pi_ref)                       # β·log π*/π_ref, no Z
without_Z = sigmoid(implicit[y_w] - implicit[y_l])
print(f"y_w = {ACTION_NAMES[y_w]}, y_l = {ACTION_NAMES[y_l]}")
print(f"σ(r(y_w) − r(y_l))                                   = {with_reward:.10f}")
print(f"σ(β·log π*(y_w)/π_ref(y_w) − β·log π*(y_l)/π_ref(y_l)) = {without_Z:.10f}")
print(f"(each implicit reward alone is off by −β·log Z = {-beta * log_Z:.3f})")
assert abs(with_reward - without_Z) < 1e-12

# %% [markdown]
# ## β: greedy versus staying with π_ref
#
# Small β: π* puts all its mass on argmax r (reward hacking, if r is wrong). Large β: the
# KL term wins and π* → π_ref. The figure draws π*(y) against β (dotted: π_ref).

# %%
for b in (0.1, 1.0, 10.0, 100.0):
    p, _ = optimal_kl_policy(r, pi_ref, b)
    print(f"β = {b:6}: π* =", {ACTION_NAMES[y]: round(float(v), 3) for y, v in enumerate(p)})
path = plot_bandit(r, pi_ref, OUT / "pi_star_vs_beta.png", mark_beta=beta)
print("figure:", path)

# %% [markdown]
# ## The whole gridworld: soft value iteration
#
# In every state the same bandit formula, with Q_soft(s, ·) as the reward:
# V_soft(s) = β·log Σ_a π_ref(a|s)·exp(Q_soft(s,a)/β) = β·log Z(s). As β → 0 it becomes
# ordinary value iteration; as β grows the cat follows π_ref (uniform here) more.

# %%
for b in (0.01, 1.0, 10.0, 100.0):
    V_soft, Q_soft, pi_soft = soft_value_iteration(T, R, GAMMA, b)
    print(f"β = {b:6}: V_soft(start) = {V_soft[env.start_state]:8.3f} (V* = {V_star[env.start_state]:.3f}), "
          "π*(·|start) =", {ACTION_NAMES[a]: round(float(v), 3) for a, v in enumerate(pi_soft[env.start_state])})
print("most likely move under π* for β = 10:")
print(render_policy(env, soft_value_iteration(T, R, GAMMA, 10.0)[2], emoji=False))
