"""Checks for the RL exercises of lesson 5: value iteration and the REINFORCE update.

Value iteration is checked against the lecture's number V*(start) = 100·0.9⁷ and against
a brute-force search over every deterministic policy of small random MDPs, each evaluated
exactly by solving V = R_π + γ·T_π·V. REINFORCE's loss is checked against a loop and
against the score-function gradient written out by hand.
"""

import itertools

import numpy as np
import torch

from exercises.grading import CheckFailed, check, expect, expect_close
from exercises.switch import swapped
from gridworld.env import RIGHT, CatGridWorld

GAMMA = 0.9
V_STAR_START = 100 * GAMMA ** 7  # the lecture's cat: 8 steps to the meat, the last one rewarded


def random_mdp(seed, S=3, A=2):
    """T (S, A, S) with rows summing to at most 1 (the rest ends the episode), R (S, A)."""
    rng = np.random.default_rng(seed)
    T = rng.random((S, A, S))
    T = T / T.sum(axis=2, keepdims=True) * rng.uniform(0.7, 1.0, size=(S, A, 1))
    return T, rng.normal(size=(S, A))


def best_deterministic_values(T, R, gamma):
    """max over all A^S deterministic policies of V^π, each solved exactly: (S,)."""
    S, A = R.shape
    best = np.full(S, -np.inf)
    for actions in itertools.product(range(A), repeat=S):
        T_pi = T[np.arange(S), actions]  # (S, S)
        R_pi = R[np.arange(S), actions]  # (S,)
        best = np.maximum(best, np.linalg.solve(np.eye(S) - gamma * T_pi, R_pi))
    return best


def call_value_iteration(value_iteration, T, R, gamma, **kwargs):
    out = value_iteration(T, R, gamma, **kwargs)
    expect(isinstance(out, tuple) and len(out) == 3, "expected a tuple (V, Q, sweeps)")
    return out


@check("value_iteration", "shape", "returns (V (S,), Q (S, A), number of sweeps)")
def vi_shape(value_iteration):
    T, R = CatGridWorld().matrices()
    V, Q, sweeps = call_value_iteration(value_iteration, T, R, GAMMA)
    expect(np.shape(V) == (25,) and np.shape(Q) == (25, 4),
           f"V has shape {np.shape(V)} and Q {np.shape(Q)}, expected (S,) = (25,) and (S, A) = (25, 4)")
    expect(isinstance(sweeps, (int, np.integer)) and sweeps > 0, f"sweeps = {sweeps!r}, expected a positive int")


@check("value_iteration", "values", "the cat's V*(start) = 100·0.9⁷ = 47.8297, and Q*(start, right) is 1 less")
def vi_cat(value_iteration):
    env = CatGridWorld()
    V, Q, _ = call_value_iteration(value_iteration, *env.matrices(), GAMMA)
    start = env.start_state
    expect(abs(V[start] - V_STAR_START) < 1e-8, f"V*(start) = {V[start]:.6f}, expected 100·0.9⁷ = {V_STAR_START:.6f}")
    expect(abs(Q[start, RIGHT] - (V_STAR_START - 1)) < 1e-8,
           f"Q*(start, right) = {Q[start, RIGHT]:.6f}, expected {V_STAR_START - 1:.6f} (the broom costs 1)")


@check("value_iteration", "values", "random MDPs: V* equals the best of all deterministic policies, solved exactly")
def vi_brute_force(value_iteration):
    for seed in range(4):
        T, R = random_mdp(seed)
        V, _, _ = call_value_iteration(value_iteration, T, R, GAMMA)
        expect_close(torch.as_tensor(V), torch.as_tensor(best_deterministic_values(T, R, GAMMA)),
                     f"V* of random MDP {seed}", atol=1e-8)


@check("value_iteration", "property", "Bellman optimality: V = max_a Q and Q = R + γ·T·V")
def vi_bellman(value_iteration):
    T, R = CatGridWorld(slippery=0.2).matrices()
    V, Q, _ = call_value_iteration(value_iteration, T, R, GAMMA)
    expect_close(torch.as_tensor(Q), torch.as_tensor(R + GAMMA * T @ V), "Q against R + γ·T·V", atol=1e-8)
    expect_close(torch.as_tensor(V), torch.as_tensor(Q.max(axis=1)), "V against max_a Q", atol=1e-8)


@check("value_iteration", "property", "tol sets when to stop; max_iters too few raises RuntimeError")
def vi_stopping(value_iteration):
    T, R = CatGridWorld(slippery=0.2).matrices()  # slipping: V converges geometrically, never exactly
    T_before, R_before = T.copy(), R.copy()
    _, _, loose = call_value_iteration(value_iteration, T, R, 0.99, tol=1e-2)
    V, _, tight = call_value_iteration(value_iteration, T, R, 0.99, tol=1e-12)
    expect(loose < tight, f"tol=1e-2 took {loose} sweeps and tol=1e-12 {tight}; stop as soon as no V(s) "
           "moves by tol or more in a sweep")
    expect(np.array_equal(T, T_before) and np.array_equal(R, R_before), "T or R was changed in place")
    try:
        value_iteration(T, R, 0.99, tol=1e-12, max_iters=3)
    except RuntimeError:
        return
    raise CheckFailed("3 sweeps cannot reach tol=1e-12, but no RuntimeError was raised: "
                      "say so instead of returning values that have not converged")


@check("value_iteration", "values", "sweeps counts every sweep made, the last one included")
def vi_sweeps(value_iteration):
    # The one-step world "CM": sweep 1 sets V(cat) = 100, sweep 2 changes nothing: 2 sweeps.
    _, _, sweeps = call_value_iteration(value_iteration, *CatGridWorld("CM").matrices(), GAMMA, tol=1e-6)
    expect(sweeps == 2, f"on the one-step world 'CM' you counted {sweeps} sweeps, expected 2: the first "
           "sets V(cat) = 100, the second finds that nothing moves")
    T, R = CatGridWorld(slippery=0.2).matrices()
    V, expected = np.zeros(R.shape[0]), 0
    while True:  # the same loop, counted here
        expected += 1
        V_new = (R + GAMMA * T @ V).max(axis=1)
        moved, V = np.abs(V_new - V).max(), V_new
        if moved < 1e-6:
            break
    _, _, sweeps = call_value_iteration(value_iteration, T, R, GAMMA, tol=1e-6)
    expect(sweeps == expected, f"on the slippery cat world with tol=1e-6 you counted {sweeps} sweeps, "
           f"expected {expected}")


# ----------------------------------------------------------------------------- REINFORCE
def reinforce_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    theta = torch.randn(5, 4, dtype=torch.float64, generator=generator)
    states = torch.tensor([0, 2, 2, 4, 1, 2])
    actions = torch.tensor([1, 3, 0, 2, 2, 3])
    advantages = torch.tensor([1.5, -2.0, 0.5, 3.0, 0.0, -0.7], dtype=torch.float64)
    return theta, states, actions, advantages


@check("reinforce_loss", "shape", "returns one number, a 0-d tensor (a sum over the episode's steps)")
def reinforce_shape(reinforce_loss):
    out = reinforce_loss(*reinforce_inputs())
    expect(isinstance(out, torch.Tensor) and out.dim() == 0, "expected a 0-d tensor, got "
           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")


@check("reinforce_loss", "values", "−Σ_t A_t·log π_θ(a_t|s_t) with π_θ(·|s) = softmax(θ[s])")
def reinforce_values(reinforce_loss):
    theta, states, actions, advantages = reinforce_inputs(1)
    expected = 0.0
    for s, a, A in zip(states.tolist(), actions.tolist(), advantages.tolist()):
        expected -= A * torch.log_softmax(theta[s], dim=0)[a].item()
    expect_close(reinforce_loss(theta, states, actions, advantages), torch.tensor(expected, dtype=torch.float64),
                 "the loss", atol=1e-10)


@check("reinforce_loss", "gradient", "∂/∂θ[s] = −Σ_{t: s_t = s} A_t·(e_{a_t} − π_θ(·|s)); unvisited states get 0")
def reinforce_gradient(reinforce_loss):
    theta, states, actions, advantages = reinforce_inputs(2)
    theta.requires_grad_(True)
    reinforce_loss(theta, states, actions, advantages).backward()
    expect(theta.grad is not None, "no gradient reached θ: is something detached?")
    pi = torch.softmax(theta.detach(), dim=-1)
    expected = torch.zeros_like(pi)
    for s, a, A in zip(states.tolist(), actions.tolist(), advantages.tolist()):
        expected[s] -= A * (torch.eye(4, dtype=torch.float64)[a] - pi[s])
    expect_close(theta.grad, expected, "∂loss/∂θ", atol=1e-10)


@check("reinforce_loss", "property", "a step along −∇ makes good actions likelier and bad ones rarer")
def reinforce_direction(reinforce_loss):
    theta = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    states, actions = torch.tensor([0, 1]), torch.tensor([2, 0])
    advantages = torch.tensor([1.0, -1.0], dtype=torch.float64)  # a good move in state 0, a bad one in 1
    reinforce_loss(theta, states, actions, advantages).backward()
    with torch.no_grad():
        pi = torch.softmax(theta - 0.5 * theta.grad, dim=-1)
    expect(pi[0, 2] > 1 / 3 and pi[1, 0] < 1 / 3,
           f"after one step π(a=2|s=0) = {pi[0, 2]:.3f} (advantage +1, should rise above 1/3) and "
           f"π(a=0|s=1) = {pi[1, 0]:.3f} (advantage −1, should fall below 1/3): check the sign")


@check("reinforce_loss", "model", "REINFORCE with your loss finds the cat's optimal path (seed 1, 100 episodes)",
       section="REINFORCE (gradiente de la política)")
def reinforce_learns(reinforce_loss):
    from gridworld.learning import reinforce
    with swapped("reinforce_loss", reinforce_loss):
        result = reinforce(CatGridWorld(), episodes=100, seed=1, progress=False)
    reached = result.episodes_to_optimal(V_STAR_START)
    expect(reached is not None, f"after 100 episodes the greedy policy's value is "
           f"{result.greedy_values[-1]:.2f}, expected {V_STAR_START:.2f} (the reference gets there)")
