"""Dynamic programming with the full model, and the optimal KL-regularised policy.

Every function takes the model as two arrays from `env.matrices()`:

    T[s, a, s'] = P(s' and the episode goes on | s, a)    (S, A, S)
    R[s, a]     = E[r | s, a]                              (S, A)

so one Bellman backup is Q(s, a) = R(s, a) + γ·Σ_{s'} T(s, a, s')·V(s'), written
`q_from_v`. Terminal transitions (meat, bathtub) are in R but not in T: after them the
episode is over and is worth 0.

The second half is the lecture's "Función de costo RLHF" and "Política óptima":

    max_π  E_{y~π}[r(y)] − β·KL(π ‖ π_ref)
    π*(y) = π_ref(y)·exp(r(y)/β) / Z,        Z = Σ_y π_ref(y)·exp(r(y)/β)
    r(y)  = β·log(π*(y)/π_ref(y)) + β·log Z

In a bandit (one step, x = the prompt, y = the answer) Z is a short sum and all of it can
be computed exactly; soft value iteration applies the same formula in every state.
"""

from __future__ import annotations

import numpy as np

from .policies import greedy_policy


def q_from_v(T: np.ndarray, R: np.ndarray, V: np.ndarray, gamma: float) -> np.ndarray:
    """One Bellman backup Q(s,a) = R(s,a) + γ·Σ_{s'} T(s,a,s')·V(s').      (S,) → (S, A)"""
    return R + gamma * T @ V  # (S, A, S) @ (S,) → (S, A)


def policy_matrices(T, R, pi):
    """The chain that π induces:
    T_π(s, s') = Σ_a π(a|s)·T(s,a,s')  (S, S)   and   R_π(s) = Σ_a π(a|s)·R(s,a)  (S,)."""
    T_pi = np.einsum("sa,sat->st", pi, T)  # (S, S)
    R_pi = (pi * R).sum(axis=1)            # (S,)
    return T_pi, R_pi


def policy_evaluation(T, R, pi, gamma: float, tol: float = 1e-12, max_iters: int = 100_000):
    """Iterative policy evaluation: repeat V ← R_π + γ·T_π·V until no value moves by more
    than tol. Returns (V^π, number of sweeps)."""
    T_pi, R_pi = policy_matrices(T, R, pi)
    V = np.zeros(len(R_pi))
    for it in range(1, max_iters + 1):
        V_new = R_pi + gamma * T_pi @ V
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            return V, it
    raise RuntimeError(f"policy evaluation did not converge in {max_iters} sweeps "
                       f"(last change {delta:.3g}); expected γ < 1 or episodes that end")


def policy_evaluation_exact(T, R, pi, gamma: float) -> np.ndarray:
    """V^π solves the linear Bellman equation V = R_π + γ·T_π·V, i.e.
    (I − γ·T_π)·V = R_π: one call to a linear solver."""
    T_pi, R_pi = policy_matrices(T, R, pi)
    return np.linalg.solve(np.eye(len(R_pi)) - gamma * T_pi, R_pi)


def value_iteration(T, R, gamma: float, tol: float = 1e-12, max_iters: int = 100_000):
    """V(s) ← max_a [R(s,a) + γ·Σ_{s'} T(s,a,s')·V(s')] until it stops moving.
    Returns (V*, Q*, number of sweeps); the optimal policy is greedy_policy(Q*)."""
    # >>> solution value_iteration
    V = np.zeros(R.shape[0])
    for it in range(1, max_iters + 1):
        Q = q_from_v(T, R, V, gamma)
        V_new = Q.max(axis=1)
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol:
            return V, q_from_v(T, R, V, gamma), it
    raise RuntimeError(f"value iteration did not converge in {max_iters} sweeps")
    # <<< solution


def policy_iteration(T, R, gamma: float, max_iters: int = 1000):
    """Evaluate π exactly, make it greedy in Q^π, repeat until the values stop improving
    (policy improvement theorem: then π is optimal). Starts from the uniform policy.
    Returns (π*, V*, number of improvements)."""
    n_states, n_actions = R.shape
    pi = np.full((n_states, n_actions), 1.0 / n_actions)
    V = policy_evaluation_exact(T, R, pi, gamma)
    for it in range(1, max_iters + 1):
        pi = greedy_policy(q_from_v(T, R, V, gamma))
        V_new = policy_evaluation_exact(T, R, pi, gamma)
        if np.abs(V_new - V).max() < 1e-10:
            return pi, V_new, it
        V = V_new
    raise RuntimeError(f"policy iteration did not converge in {max_iters} steps")


def bellman_residual(T, R, V, gamma: float) -> float:
    """max_s |max_a Q(s,a) − V(s)|: zero exactly when V is the optimal value V*."""
    return float(np.abs(q_from_v(T, R, V, gamma).max(axis=1) - V).max())


# -- the KL-regularised objective (lecture: "Función de costo RLHF", "Política óptima") --

def kl(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """KL(q ‖ p) = Σ_y q(y)·log(q(y)/p(y)) over the last axis (terms with q(y) = 0 are 0)."""
    ratio = np.where(q > 0, q / np.where(q > 0, p, 1.0), 1.0)
    return (q * np.log(ratio)).sum(axis=-1)


def kl_objective(q, r, pi_ref, beta: float):
    """The RLHF objective of a policy q in a bandit: E_{y~q}[r(y)] − β·KL(q ‖ π_ref)."""
    return (q * r).sum(axis=-1) - beta * kl(q, pi_ref)


def optimal_kl_policy(r: np.ndarray, pi_ref: np.ndarray, beta: float):
    """π*(y) = π_ref(y)·exp(r(y)/β) / Z  with  Z = Σ_y π_ref(y)·exp(r(y)/β).

    Works on the last axis (a bandit's (Y,) or a table (S, A)). Returns (π*, log Z);
    log Z is computed as a log-sum-exp so that small β never overflows."""
    logits = np.log(pi_ref) + r / beta          # log π_ref(y) + r(y)/β
    m = logits.max(axis=-1, keepdims=True)
    log_Z = m[..., 0] + np.log(np.exp(logits - m).sum(axis=-1))
    return np.exp(logits - log_Z[..., None]), log_Z


def reward_from_policy(pi_star, pi_ref, beta: float, log_Z):
    """The lecture's inversion: r(y) = β·log(π*(y)/π_ref(y)) + β·log Z."""
    return beta * np.log(pi_star / pi_ref) + beta * np.asarray(log_Z)[..., None]


def soft_value_iteration(T, R, gamma: float, beta: float, pi_ref=None,
                         tol: float = 1e-10, max_iters: int = 100_000):
    """Value iteration for max_π E[Σ_t γ^t (r_{t+1} − β·KL(π(·|s_t) ‖ π_ref(·|s_t)))].

    In every state the backup is the bandit above, with Q_soft(s, ·) as the reward:

        V_soft(s) = β·log Σ_a π_ref(a|s)·exp(Q_soft(s,a)/β)          (= β·log Z(s))
        Q_soft(s,a) = R(s,a) + γ·Σ_{s'} T(s,a,s')·V_soft(s')
        π*(a|s) = π_ref(a|s)·exp(Q_soft(s,a)/β) / Z(s)

    As β → 0 the log-sum-exp becomes a max (hard value iteration); as β → ∞ the KL
    dominates and π* → π_ref. π_ref defaults to uniform. Returns (V_soft, Q_soft, π*)."""
    n_states, n_actions = R.shape
    if pi_ref is None:
        pi_ref = np.full((n_states, n_actions), 1.0 / n_actions)
    V = np.zeros(n_states)
    for _ in range(max_iters):
        Q = q_from_v(T, R, V, gamma)
        V_new = beta * optimal_kl_policy(Q, pi_ref, beta)[1]   # β·log Z(s)
        delta = np.abs(V_new - V).max()
        V = V_new
        if delta < tol * max(1.0, beta):  # β·log Z carries rounding errors of size β·1e-16
            Q = q_from_v(T, R, V, gamma)
            return V, Q, optimal_kl_policy(Q, pi_ref, beta)[0]
    raise RuntimeError(f"soft value iteration did not converge in {max_iters} sweeps")
