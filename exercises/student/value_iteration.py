"""Exercise: value iteration (lesson 5, section "Value iteration (iteración de valores)").

Replace the TODO with your code, then:
    python -m exercises grade value_iteration
    python -m exercises run --student value_iteration -- -m gridworld
"""

import numpy as np  # noqa: F401


def value_iteration(T, R, gamma: float, tol: float = 1e-12, max_iters: int = 100_000):
    """V(s) ← max_a [ R(s, a) + γ Σ_{s'} T(s, a, s') V(s') ], repeated until V stops moving.

    T: (S, A, S), T[s, a, s'] = P(next state s' and the episode goes on | s, a).
    R: (S, A), the expected reward of taking a in s.
    Returns (V*, Q*, sweeps): V* (S,), Q*(s, a) = R(s, a) + γ Σ_{s'} T(s, a, s') V*(s') (S, A),
    and the number of sweeps made.

    TODO:
      start from V = 0; each sweep computes Q from V (T @ V sums over s'), then V_new = max_a Q;
      stop after the first sweep in which no V(s) moved by tol or more. Return that V_new,
      Q computed once more from it, and the number of sweeps made, the last one included.
      After max_iters sweeps without converging, raise RuntimeError. Do not change T or R.
    """
    raise NotImplementedError("exercise value_iteration: V ← max_a (R + γ·T·V) until it stops moving")
