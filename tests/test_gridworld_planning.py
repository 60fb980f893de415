"""Policies, returns, dynamic programming and the KL-regularised optimum, each checked
against a closed form or an independent float64 computation."""

import numpy as np
import pytest

from gridworld import (DOWN, RIGHT, CatGridWorld, bellman_residual, discounted_returns,
                       epsilon_greedy_policy, greedy_policy, kl, kl_objective, optimal_kl_policy,
                       policy_evaluation, policy_evaluation_exact, policy_iteration,
                       reward_from_policy, rollout, sample_action, soft_value_iteration,
                       softmax_policy, uniform_policy, value_iteration)

GAMMA = 0.9


@pytest.fixture(scope="module")
def model():
    return CatGridWorld().matrices()


# -- policies and returns ------------------------------------------------------------

def test_discounted_returns_match_the_definition():
    rewards = np.random.default_rng(0).normal(size=12)
    G = discounted_returns(rewards, GAMMA)
    for t in range(12):  # G_t = Σ_k γ^k r_{t+k+1}
        assert G[t] == pytest.approx(sum(GAMMA ** k * rewards[t + k] for k in range(12 - t)),
                                     abs=1e-12)


def test_policy_tables():
    Q = np.array([[1.0, 3.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(greedy_policy(Q), [[0, 0.5, 0.5, 0], [0.25] * 4])
    np.testing.assert_allclose(epsilon_greedy_policy(Q, 0.2)[0], [0.05, 0.45, 0.45, 0.05])
    np.testing.assert_allclose(softmax_policy(Q, 2.0)[0], np.exp(Q[0] / 2) / np.exp(Q[0] / 2).sum())
    assert np.isfinite(softmax_policy(np.array([1e4, 0.0]), 1.0)).all()   # no overflow
    np.testing.assert_allclose(uniform_policy(3, 4), np.full((3, 4), 0.25))


def test_sampling_follows_pi():
    pi = np.array([[0.1, 0.2, 0.3, 0.4]])
    rng = np.random.default_rng(0)
    n = 20000
    freq = np.bincount([sample_action(pi, 0, rng) for _ in range(n)], minlength=4) / n
    assert np.abs(freq - pi[0]).max() < 4 * np.sqrt(0.25 / n)


def _route_policy(env, moves):
    """A deterministic π: at each visited cell, the given move."""
    pi = np.zeros((env.n_states, 4))
    pi[:, DOWN] = 1.0
    cell = (0, 0)
    for a in moves:
        s = env.state(*cell)
        pi[s] = np.eye(4)[a]
        cell = (cell[0] + (a == DOWN), cell[1] + (a == RIGHT))
    return pi


def test_rollout_of_a_fixed_route():
    env = CatGridWorld()
    traj = rollout(env, _route_policy(env, [DOWN] * 4 + [RIGHT] * 4), seed=0)
    assert traj.terminated and len(traj.actions) == 8
    assert traj.ret(GAMMA) == pytest.approx(100 * GAMMA ** 7, abs=1e-12)
    # Into the bathtub on the 5th move: −10·γ⁴, and the cat is back at the start.
    traj = rollout(env, _route_policy(env, [DOWN, DOWN, RIGHT, RIGHT, DOWN]), seed=0)
    assert traj.terminated and traj.states[-1] == env.start_state
    assert traj.ret(GAMMA) == pytest.approx(-10 * GAMMA ** 4, abs=1e-12)


# -- dynamic programming ---------------------------------------------------------------

def test_optimal_value_of_the_start_is_100_gamma_to_the_7(model):
    T, R = model
    V, Q, _ = value_iteration(T, R, GAMMA)
    assert V[0] == pytest.approx(100 * GAMMA ** 7, abs=1e-9)      # ≈ 47.83
    assert bellman_residual(T, R, V, GAMMA) < 1e-8
    # Moving right first means the broom: exactly 1 less than moving down.
    assert Q[0, RIGHT] == pytest.approx(100 * GAMMA ** 7 - 1, abs=1e-9)


def test_optimal_values_everywhere_follow_the_distance_to_the_meat(model):
    # On this grid every open cell has a shortest path (down/right moves only) that avoids
    # the broom and the bathtub, so V*(s) = 100·γ^(d−1) with d the Manhattan distance.
    env = CatGridWorld()
    V, _, _ = value_iteration(*model, GAMMA)
    for s in range(25):
        if not env.is_absorbing(s):
            row, col = env.cell(s)
            assert V[s] == pytest.approx(100 * GAMMA ** (8 - row - col - 1), abs=1e-9)
    V1, _, _ = value_iteration(*model, 1.0)                         # no discount: 100
    assert V1[0] == pytest.approx(100.0, abs=1e-9)


@pytest.mark.parametrize("layout, p, expected", [
    ("CM", 0.0, 100.0),
    ("CBM", 0.0, -1 + GAMMA * 100),
    ("CM", 0.3, 100 * 0.7 / (1 - GAMMA * 0.3)),   # V = (1−p)·100 + p·γ·V: slips stay put
])
def test_small_layouts_closed_forms(layout, p, expected):
    env = CatGridWorld(layout, slippery=p)
    V, _, _ = value_iteration(*env.matrices(), GAMMA)
    assert V[env.start_state] == pytest.approx(expected, abs=1e-9)


def test_exact_and_iterative_evaluation_agree(model):
    T, R = model
    env = CatGridWorld()
    pi = uniform_policy(25, 4)
    V_exact = policy_evaluation_exact(T, R, pi, GAMMA)
    V_iter, _ = policy_evaluation(T, R, pi, GAMMA)
    assert np.abs(V_exact - V_iter).max() < 1e-8
    for s in range(25):   # the Bellman expectation equation, read straight from P
        backup = sum(pi[s, a] * prob * (r + GAMMA * V_exact[s2] * (not done))
                     for a in range(4) for prob, s2, r, done in env.P[s][a])
        assert V_exact[s] == pytest.approx(backup, abs=1e-9)


def test_policy_iteration_matches_value_iteration():
    for env in (CatGridWorld(), CatGridWorld(slippery=0.2)):
        T, R = env.matrices()
        V_star, _, _ = value_iteration(T, R, GAMMA)
        pi, V, _ = policy_iteration(T, R, GAMMA)
        assert np.abs(V - V_star).max() < 1e-8
        assert np.abs(policy_evaluation_exact(T, R, pi, GAMMA) - V_star).max() < 1e-8


# -- the KL-regularised objective ---------------------------------------------------------

@pytest.mark.parametrize("beta", [0.05, 1.0, 30.0])
def test_bandit_identity_and_reward_recovery(beta):
    rng = np.random.default_rng(1)
    r = rng.normal(scale=3.0, size=6)
    pi_ref = rng.dirichlet(np.ones(6))
    Z = np.sum(pi_ref * np.exp(r / beta))                   # brute force, float64
    pi_star, log_Z = optimal_kl_policy(r, pi_ref, beta)
    np.testing.assert_allclose(pi_star, pi_ref * np.exp(r / beta) / Z, rtol=1e-12)
    assert log_Z == pytest.approx(np.log(Z), rel=1e-12)
    np.testing.assert_allclose(reward_from_policy(pi_star, pi_ref, beta, log_Z), r, atol=1e-10)
    for q in rng.dirichlet(np.ones(6), size=20):
        lhs = kl_objective(q, r, pi_ref, beta)               # E_q[r] − β·KL(q‖π_ref)
        rhs = beta * np.log(Z) - beta * kl(q, pi_star)       # β·log Z − β·KL(q‖π*)
        assert lhs == pytest.approx(rhs, abs=1e-10)
        assert lhs <= kl_objective(pi_star, r, pi_ref, beta) + 1e-12


def test_bandit_with_tiny_beta_does_not_overflow():
    pi_star, log_Z = optimal_kl_policy(np.array([1000.0, 0.0]), np.array([0.5, 0.5]), 0.01)
    np.testing.assert_allclose(pi_star, [1.0, 0.0])
    assert np.isfinite(log_Z) and 0.01 * log_Z == pytest.approx(1000 + 0.01 * np.log(0.5))


def test_kl_basics():
    p = np.array([0.2, 0.3, 0.5])
    assert kl(p, p) == pytest.approx(0.0, abs=1e-15)
    assert kl(np.array([1.0, 0.0, 0.0]), p) == pytest.approx(np.log(1 / 0.2))


def test_soft_value_iteration_tends_to_hard_as_beta_goes_to_zero(model):
    T, R = model
    V_star, _, _ = value_iteration(T, R, GAMMA)
    gaps = []
    for beta in (1.0, 0.1, 0.01):
        V, Q, pi = soft_value_iteration(T, R, GAMMA, beta)
        # With a uniform π_ref: V* − β·log 4 / (1 − γ) ≤ V_soft ≤ V*.
        assert np.all(V <= V_star + 1e-9)
        assert np.all(V >= V_star - beta * np.log(4) / (1 - GAMMA) - 1e-9)
        gaps.append(np.abs(V - V_star).max())
    assert gaps[0] > gaps[1] > gaps[2]
    v_greedy = policy_evaluation_exact(T, R, greedy_policy(Q), GAMMA)[0]
    assert v_greedy == pytest.approx(V_star[0], abs=1e-9)
    assert pi[0, DOWN] > 0.999


def test_soft_value_iteration_tends_to_pi_ref_as_beta_grows(model):
    T, R = model
    pi_ref = np.random.default_rng(2).dirichlet(np.ones(4), size=25)
    V, _, pi = soft_value_iteration(T, R, GAMMA, 1e6, pi_ref=pi_ref)
    assert np.abs(pi - pi_ref).max() < 1e-3
    assert np.abs(V - policy_evaluation_exact(T, R, pi_ref, GAMMA)).max() < 1e-2


def test_soft_values_are_the_regularised_values_of_pi_star(model):
    # V_soft must equal E[Σ γ^t (r − β·KL(π*(·|s_t) ‖ π_ref(·|s_t)))] under π*, found
    # by a linear solve, and no other policy may do better on that objective.
    T, R = model
    beta = 2.0
    rng = np.random.default_rng(3)
    pi_ref = rng.dirichlet(np.ones(4), size=25)
    V, _, pi_star = soft_value_iteration(T, R, GAMMA, beta, pi_ref=pi_ref)

    def regularised_value(pi):
        T_pi = np.einsum("sa,sat->st", pi, T)
        r_pi = (pi * R).sum(1) - beta * kl(pi, pi_ref)
        return np.linalg.solve(np.eye(25) - GAMMA * T_pi, r_pi)

    assert np.abs(regularised_value(pi_star) - V).max() < 1e-8
    for _ in range(10):
        q = rng.dirichlet(np.ones(4), size=25)
        assert regularised_value(q)[0] <= V[0] + 1e-9
        mix = 0.9 * pi_star + 0.1 * q
        assert regularised_value(mix)[0] <= V[0] + 1e-9
