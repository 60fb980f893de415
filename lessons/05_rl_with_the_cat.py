# %% [markdown]
# # Lesson 5 — RL set-up with the cat gridworld (Configuración de RL)
#
# The lecture introduces reinforcement learning (aprendizaje por refuerzo) with a cat on
# a 5 × 5 grid: a broom (escoba, −1), a bathtub (bañera, −10, the cat faints and the
# episode ends) and a piece of meat (carne, +100, the episode ends).
#
# | lecture term | here |
# | --- | --- |
# | agente (agent) | the cat |
# | estado (state) s_t | the cat's cell, an integer s = row·5 + col |
# | acción (action) a_t | up, down, left, right |
# | recompensa (reward) r_{t+1} | what `env.step` returns after a_t |
# | política (policy) π(a\|s) | a table `pi[s, a]`; the cat acts with a_t ~ π(·\|s_t) |
#
# Goal: a policy that maximises the expected return G_0 = r_1 + γ·r_2 + γ²·r_3 + ...

# %%
from lesson_setup import lesson_paths  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect

import matplotlib
matplotlib.use("Agg")
import numpy as np
import torch

from gridworld import (ACTION_NAMES, DOWN, RIGHT, CatGridWorld, discounted_returns, greedy_policy,
                       plot_learning_curves, plot_values, policy_evaluation_exact, reinforce,
                       reinforce_loss, render_grid, render_policy, render_values, rollout,
                       sample_action, uniform_policy, value_iteration)

np.random.seed(0)
torch.manual_seed(0)
GAMMA = 0.9

# %% [markdown]
# ## Agent, state, action, reward (agente, estado, acción, recompensa)
#
# `CatGridWorld` follows Gymnasium's contract: `reset() -> (s_0, info)` and
# `step(a_t) -> (s_{t+1}, r_{t+1}, terminated, truncated, info)`.
# Letters: C = cat (start), B = broom, T = bathtub, M = meat.

# %%
env = CatGridWorld()
print(render_grid(env, emoji=False))
s, info = env.reset(seed=0)
print(f"s_0 = {s}  cell {info['cell']}  ({env.n_states} states, {env.n_actions} actions: {ACTION_NAMES})")
for a in (RIGHT, DOWN, DOWN):
    s2, r, terminated, truncated, info = env.step(a)
    print(f"  s_t = {env.cell(s)}  a_t = {ACTION_NAMES[a]:5}  ->  s_t+1 = {env.cell(s2)}  "
          f"r_t+1 = {r:+.0f}  event = {info['event']}")
    s = s2

# %% [markdown]
# ## A policy and a_t ~ π(·|s_t) (política)
#
# The uniform random policy π(a|s) = 1/4 is a table of shape (S, A). Acting means
# sampling from the row of the current state.

# %%
pi = uniform_policy(env.n_states, env.n_actions)
print("π(·|s_0) =", pi[env.start_state], " shape of the table:", pi.shape)
rng = np.random.default_rng(0)
draws = [sample_action(pi, env.start_state, rng) for _ in range(2000)]
print("2000 draws a ~ π(·|s_0), frequencies:",
      {ACTION_NAMES[a]: round(draws.count(a) / len(draws), 3) for a in range(4)})

# %% [markdown]
# ## Returns of sampled episodes (retorno)
#
# `discounted_returns` computes G_t = r_{t+1} + γ·G_{t+1} backwards; G_0 is the
# episode's return. Averaging G_0 over n episodes estimates V^π(s_0), which a linear
# solve gives exactly (`policy_evaluation_exact`). The estimate comes with a 95%
# interval, mean ± 1.96·s/√n (s: the standard deviation of the n returns): its
# half-width is about 0.17 after 4000 episodes and shrinks like 1/√n. Even so, a 95%
# interval misses the true value in about 1 run of 20, whatever n is; the run below
# uses seed 0, so it draws the same episodes every time.

# %%
traj = rollout(env, pi, seed=1)
G = discounted_returns(traj.rewards, GAMMA)
print(f"one episode of the random cat: {len(traj.actions)} steps, "
      f"{'terminated' if traj.terminated else 'truncated'}")
for t in range(min(5, len(traj.actions))):
    print(f"  t={t}  s={env.cell(traj.states[t])}  a={ACTION_NAMES[traj.actions[t]]:5}  "
          f"r={traj.rewards[t]:+.0f}  G_t={G[t]:8.4f}")
print(f"  ... last reward r_T = {traj.rewards[-1]:+.0f};  G_0 = {G[0]:.4f}")

n_episodes = 200 if SMOKE else 4000
rng = np.random.default_rng(0)                   # seed 0: the same n episodes every run
returns = np.array([rollout(env, pi, rng=rng).ret(GAMMA) for _ in range(n_episodes)])
T, R = env.matrices()
v_uniform = policy_evaluation_exact(T, R, pi, GAMMA)[env.start_state]
mean = returns.mean()
half_width = 1.96 * returns.std(ddof=1) / np.sqrt(n_episodes)
covered = mean - half_width <= v_uniform <= mean + half_width
print(f"random policy, V^π(s_0) from {n_episodes} episodes (seed 0):")
print(f"  estimate      mean G_0 = {mean:.3f}")
print(f"  95% interval  mean ± 1.96·s/√n = [{mean - half_width:.3f}, {mean + half_width:.3f}]")
print(f"  exact         V^π(s_0) = {v_uniform:.3f}  (linear solve)")
print(f"  covered       {'yes' if covered else 'no'}: the exact value is "
      f"{'inside' if covered else 'outside'} the interval")

# %% [markdown]
# ## Value iteration (iteración de valores)
#
# With the model (T, R) known, repeat V(s) ← max_a [R(s,a) + γ·Σ_{s'} T(s,a,s')·V(s')].
# The shortest broom-free path to the meat takes 8 moves, and the +100 arrives on the
# 8th, so V*(start) = γ⁷·100 = 100·0.9⁷.

# %%
V_star, Q_star, sweeps = value_iteration(T, R, GAMMA)
v_star = float(V_star[env.start_state])
print(f"value iteration converged in {sweeps} sweeps")
print(f"V*(start) = {v_star:.6f}    100·0.9^7 = {100 * 0.9 ** 7:.6f}")
assert abs(v_star - 100 * 0.9 ** 7) < 1e-8
print("Q*(start, ·):", {ACTION_NAMES[a]: round(float(Q_star[env.start_state, a]), 3) for a in range(4)})
print(render_values(env, V_star))
pi_star = greedy_policy(Q_star)
print(render_policy(env, pi_star, emoji=False))
path = plot_values(env, V_star, pi_star, OUT / "value_heatmap.png", title="V*(s) and the greedy π*(s)")
print("figure:", path)

# %% [markdown]
# ## REINFORCE (gradiente de la política)
#
# Without the model the cat learns from its own episodes. π_θ(a|s) = softmax(θ[s]) and
# each episode takes a step on  −Σ_t (G_t − b(s_t))·log π_θ(a_t|s_t).
# For a language model the same line reads −Σ_t A_t·log π_θ(y_t | x, y_<t) (lesson 6).

# %%
print(inspect.getsource(reinforce_loss))
episodes = 30 if SMOKE else 600
result = reinforce(env, episodes=episodes, gamma=GAMMA, lr=0.1, seed=0, progress=not SMOKE)
n_opt = result.episodes_to_optimal(v_star)
print(f"REINFORCE, {episodes} episodes: mean G_0 of the last 20 = {np.mean(result.returns[-20:]):.2f}; "
      f"greedy V^π(start) now {result.greedy_values[-1]:.3f} (V* = {v_star:.3f}); "
      + (f"optimal from episode {n_opt} on" if n_opt else "not optimal at the end"))
pi_theta = torch.softmax(torch.from_numpy(result.table), dim=-1).numpy()
print("π_θ(·|start) after training:", {ACTION_NAMES[a]: round(float(pi_theta[env.start_state, a]), 3)
                                       for a in range(4)})
path = plot_learning_curves({"REINFORCE": result}, OUT / "reinforce_curve.png", v_star=v_star)
print("figure:", path)
