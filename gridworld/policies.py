"""Policies (políticas) as tables, trajectories and discounted returns (retornos).

A policy is a table pi of shape (S, A) with pi[s, a] = π(a|s): each row is a probability
distribution over the actions in state s. The agent acts by sampling from its row,

    a_t ~ π(·|s_t)                                   (lecture: "Configuración de RL")

and the goal of RL is a policy that maximises the expected return from the start,

    G_t = r_{t+1} + γ·r_{t+2} + γ²·r_{t+3} + ...  =  r_{t+1} + γ·G_{t+1}.

Every function that builds a policy from Q works on the last axis, so it takes a whole
table Q (S, A) or one row Q[s] (A,).

    >>> pi = uniform_policy(25, 4)                # π(a|s) = 1/4
    >>> traj = rollout(CatGridWorld(), pi, seed=0)
    >>> G = discounted_returns(traj.rewards, gamma=0.9)   # G[0] is the episode's return
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def uniform_policy(n_states: int, n_actions: int) -> np.ndarray:
    """The uniform random policy π(a|s) = 1/|A|.                              (S, A)"""
    return np.full((n_states, n_actions), 1.0 / n_actions)


def greedy_policy(Q: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """π(a|s) puts all its mass on argmax_a Q(s, a); ties (within atol) share it equally,
    so a table of zeros gives the uniform policy."""
    best = Q >= Q.max(axis=-1, keepdims=True) - atol
    return best / best.sum(axis=-1, keepdims=True)


def epsilon_greedy_policy(Q: np.ndarray, epsilon: float) -> np.ndarray:
    """With probability ε a uniform random action (exploración), otherwise the greedy one:
    π(a|s) = ε/|A| + (1 − ε)·greedy(a|s)."""
    n_actions = Q.shape[-1]
    return epsilon / n_actions + (1.0 - epsilon) * greedy_policy(Q)


def softmax_policy(Q: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Boltzmann policy π(a|s) = exp(Q(s,a)/τ) / Σ_b exp(Q(s,b)/τ). With τ = β it is the
    optimal KL-regularised policy against a uniform π_ref (see planning.soft_value_iteration)."""
    z = Q / temperature
    z = z - z.max(axis=-1, keepdims=True)  # subtract the max: exp never overflows
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sample_action(pi: np.ndarray, s: int, rng: np.random.Generator) -> int:
    """a_t ~ π(·|s_t): draw one action from row s of the table."""
    return int(rng.choice(pi.shape[1], p=pi[s]))


def discounted_returns(rewards, gamma: float) -> np.ndarray:
    """G_t = r_{t+1} + γ·G_{t+1} for every t of one episode, computed backwards.

    rewards[t] is r_{t+1}, the reward that follows action a_t.  (T,) → (T,); G[0] is the
    episode's return. The one implementation of a return: everything else calls this."""
    G = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        G[t] = running
    return G


@dataclass
class Trajectory:
    """One episode τ = (s_0, a_0, r_1, s_1, a_1, r_2, ..., s_T).

    states has T + 1 entries (the last is where the episode stopped), actions and
    rewards have T: rewards[t] follows actions[t]."""
    states: list[int] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False

    def ret(self, gamma: float) -> float:
        """The return G_0 of the episode."""
        return float(discounted_returns(self.rewards, gamma)[0]) if self.rewards else 0.0


def rollout(env, pi: np.ndarray, seed: int | None = None,
            rng: np.random.Generator | None = None) -> Trajectory:
    """Play one episode with a_t ~ π(·|s_t) until it terminates or is truncated.

    seed seeds both the environment (slippery moves) and the agent's sampling; pass rng
    instead to keep drawing from a generator you already have."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    s, _ = env.reset(seed=seed)
    traj = Trajectory(states=[s])
    while True:
        a = sample_action(pi, s, rng)
        s, r, terminated, truncated, _ = env.step(a)
        traj.actions.append(a)
        traj.rewards.append(r)
        traj.states.append(s)
        if terminated or truncated:
            traj.terminated, traj.truncated = terminated, truncated
            return traj
