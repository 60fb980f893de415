"""Learning from experience, without the model: Q-learning, SARSA and REINFORCE.

Dynamic programming (planning.py) reads the rules from the transition model. Here the
agent only sees what `env.step` returns, one transition at a time, as a language model
only sees the reward of the answers it generates.

- Q-learning and SARSA learn a table Q(s, a) and act ε-greedily.
- REINFORCE learns the policy itself, π_θ(a|s) = softmax(θ[s])_a, by gradient ascent on
  E[G_0] with PyTorch autograd. It is the bridge to language models: there π_θ is a
  network over tokens, the state is the prompt plus the tokens so far, and the reward
  arrives at the end of the answer, as the meat's +100 arrives at the end here.

Each learner returns a `LearningResult`: the learned table and, per episode, the return
G_0 the agent got and the exact value from the start of the greedy policy so far (from
the model, only to draw learning curves; the learner never uses it).

    >>> res = q_learning(CatGridWorld(), episodes=300, seed=0, progress=False)
    >>> res.episodes_to_optimal(v_star=100 * 0.9**7)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import trange

from .planning import policy_evaluation_exact
from .policies import discounted_returns, epsilon_greedy_policy, greedy_policy, rollout, \
    sample_action


@dataclass
class LearningResult:
    """table: Q (S, A) for Q-learning and SARSA, the logits θ (S, A) for REINFORCE.
    returns[i]: G_0 of episode i. greedy_values[i]: V^π(start) of π = greedy(table) after
    episode i."""
    table: np.ndarray
    returns: list[float] = field(default_factory=list)
    greedy_values: list[float] = field(default_factory=list)

    def episodes_to_optimal(self, v_star: float, tol: float = 1e-6) -> int | None:
        """The number of episodes after which the greedy policy is optimal from the start
        and stays so until the end; None if it is not optimal at the end."""
        n = None
        for i in reversed(range(len(self.greedy_values))):
            if abs(self.greedy_values[i] - v_star) > tol:
                break
            n = i + 1
        return n


def greedy_value(env, table: np.ndarray, gamma: float, model=None) -> float:
    """V^π(start) of the greedy policy π = greedy(table), exactly, by a linear solve."""
    T, R = model if model is not None else env.matrices()
    return float(policy_evaluation_exact(T, R, greedy_policy(table), gamma)[env.start_state])


def _td_control(env, episodes, gamma, alpha, epsilon, seed, progress, on_policy):
    """Q-learning (off-policy) and SARSA (on-policy) differ in one line: the target."""
    rng = np.random.default_rng(seed)
    model = env.matrices()
    Q = np.zeros((env.n_states, env.n_actions))
    result = LearningResult(table=Q)
    name = "SARSA" if on_policy else "Q-learning"
    for episode in trange(episodes, desc=name, disable=not progress):
        s, _ = env.reset(seed=seed if episode == 0 else None)
        a = sample_action(epsilon_greedy_policy(Q, epsilon), s, rng)  # a_t ~ π(·|s_t)
        rewards = []
        while True:
            s2, r, terminated, truncated, _ = env.step(a)
            rewards.append(r)
            a2 = sample_action(epsilon_greedy_policy(Q, epsilon), s2, rng)
            # After a terminal transition nothing follows: the target is r alone. (After
            # the bathtub s2 is the start, but it belongs to the next episode.)
            if on_policy:  # SARSA: the action the agent will really take, a_{t+1}
                next_value = Q[s2, a2]
            else:          # Q-learning: the best action, whatever the agent does
                next_value = Q[s2].max()
            target = r + gamma * next_value * (not terminated)
            Q[s, a] += alpha * (target - Q[s, a])  # Q(s,a) ← Q(s,a) + α·(target − Q(s,a))
            if terminated or truncated:
                break
            s, a = s2, a2
        result.returns.append(float(discounted_returns(rewards, gamma)[0]))
        result.greedy_values.append(greedy_value(env, Q, gamma, model))
    return result


def q_learning(env, episodes: int = 1000, gamma: float = 0.9, alpha: float = 0.1,
               epsilon: float = 0.1, seed: int = 0, progress: bool = True) -> LearningResult:
    """Q(s_t,a_t) ← Q(s_t,a_t) + α·[r_{t+1} + γ·max_a Q(s_{t+1}, a) − Q(s_t,a_t)],
    acting with a_t ~ ε-greedy(Q)(·|s_t). It learns Q* even while it explores."""
    return _td_control(env, episodes, gamma, alpha, epsilon, seed, progress, on_policy=False)


def sarsa(env, episodes: int = 1000, gamma: float = 0.9, alpha: float = 0.1,
          epsilon: float = 0.1, seed: int = 0, progress: bool = True) -> LearningResult:
    """Q(s_t,a_t) ← Q(s_t,a_t) + α·[r_{t+1} + γ·Q(s_{t+1}, a_{t+1}) − Q(s_t,a_t)] with
    a_{t+1} ~ ε-greedy(Q): it learns the value of the ε-greedy policy it follows
    (on-policy). Since that policy sometimes slips into a random move, SARSA may prefer a
    path that keeps away from the bathtub, a step or two longer than the optimal one."""
    return _td_control(env, episodes, gamma, alpha, epsilon, seed, progress, on_policy=True)


def reinforce_loss(theta: torch.Tensor, states, actions, advantages) -> torch.Tensor:
    """−Σ_t (G_t − b(s_t))·log π_θ(a_t|s_t), with π_θ(a|s) = softmax(θ[s])_a.

    Its gradient is minus the REINFORCE estimate of ∇_θ J(θ), so a minimiser climbs J.
    theta (S, A); states, actions, advantages (T,). For a language model the same line
    reads −Σ_t A_t·log π_θ(y_t | x, y_<t): states are prefixes, actions are tokens."""
    # >>> solution reinforce_loss
    log_probs = torch.log_softmax(theta[states], dim=-1)          # log π_θ(·|s_t)   (T, A)
    log_pi = log_probs.gather(1, actions[:, None]).squeeze(1)     # log π_θ(a_t|s_t) (T,)
    return -(advantages * log_pi).sum()
    # <<< solution


def reinforce(env, episodes: int = 1000, gamma: float = 0.9, lr: float = 0.1,
              baseline_lr: float = 0.1, seed: int = 0, progress: bool = True) -> LearningResult:
    """REINFORCE with a baseline, for a tabular softmax policy π_θ(a|s) = softmax(θ[s])_a.

    Play an episode with a_t ~ π_θ(·|s_t), then take one step along

        ∇_θ J(θ) ≈ Σ_t (G_t − b(s_t))·∇_θ log π_θ(a_t|s_t)

    with Adam (step size lr). The baseline b(s) is a table of average returns from s,
    b(s_t) ← b(s_t) + baseline_lr·(G_t − b(s_t)): it leaves the expected gradient as it
    is and lowers its variance. (Sutton & Barto also multiply by γ^t; like most code, we
    leave that factor out.)

    Policy gradient can settle in a local optimum: a policy that already walks over the
    broom (return 100·γ⁷ − 1) rarely tries the first move down, so it learns slowly that
    down is better. Most seeds escape within a few hundred episodes; some do not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tensors are tiny: a thread pool only adds overhead
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = env.matrices()
        theta = torch.zeros(env.n_states, env.n_actions, dtype=torch.float64,
                            requires_grad=True)                          # θ      (S, A)
        baseline = np.zeros(env.n_states)                                # b(s)   (S,)
        optimizer = torch.optim.Adam([theta], lr=lr)
        result = LearningResult(table=theta.detach().numpy())  # a view: follows θ
        for episode in trange(episodes, desc="REINFORCE", disable=not progress):
            with torch.no_grad():
                pi = torch.softmax(theta, dim=-1).numpy()              # π_θ(a|s) (S, A)
            traj = rollout(env, pi, seed=seed if episode == 0 else None, rng=rng)
            G = discounted_returns(traj.rewards, gamma)                # G_t     (T,)
            states = np.array(traj.states[:-1])                        # s_t     (T,)
            advantage = torch.from_numpy(G - baseline[states])         # G_t − b(s_t) (T,)
            loss = reinforce_loss(theta, torch.from_numpy(states), torch.tensor(traj.actions),
                                  advantage)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for s, g in zip(states, G):  # every-visit Monte Carlo average of the return
                baseline[s] += baseline_lr * (g - baseline[s])
            result.returns.append(float(G[0]))
            result.greedy_values.append(greedy_value(env, result.table, gamma, model))
        return result
    finally:
        torch.set_num_threads(threads)
