"""gridworld: the lecture's cat gridworld, a small exact setting for RL and for π*.

    env.py       CatGridWorld (reset/step, transition model P, slippery mode, text maps
                 checked by parse_layout and read_layout)
    policies.py  π(a|s) tables, a_t ~ π(·|s_t), trajectories, discounted returns G_t
    planning.py  policy evaluation, value iteration, policy iteration; the KL-regularised
                 objective: soft value iteration and the bandit π* = π_ref·exp(r/β)/Z
    learning.py  Q-learning, SARSA, REINFORCE with a baseline (PyTorch)
    render.py    terminal text (emoji or letters) and PNG/GIF figures

    python -m gridworld --help
"""

from .env import (ACTION_NAMES, DEFAULT_LAYOUT, DOWN, LEFT, RIGHT, UP, CatGridWorld, parse_layout,
                  read_layout)
from .learning import LearningResult, greedy_value, q_learning, reinforce, reinforce_loss, sarsa
from .planning import (bellman_residual, kl, kl_objective, optimal_kl_policy, policy_evaluation,
                       policy_evaluation_exact, policy_iteration, q_from_v, reward_from_policy,
                       soft_value_iteration, value_iteration)
from .policies import (Trajectory, discounted_returns, epsilon_greedy_policy, greedy_policy,
                       rollout, sample_action, softmax_policy, uniform_policy)
from .render import (plot_bandit, plot_episode, plot_learning_curves, plot_values, render_grid,
                     render_policy, render_values, save_episode_gif)

__all__ = [
    "ACTION_NAMES", "DEFAULT_LAYOUT", "UP", "DOWN", "LEFT", "RIGHT", "CatGridWorld", "parse_layout",
    "read_layout",
    "uniform_policy", "greedy_policy", "epsilon_greedy_policy", "softmax_policy", "sample_action",
    "Trajectory", "rollout", "discounted_returns",
    "q_from_v", "policy_evaluation", "policy_evaluation_exact", "value_iteration",
    "policy_iteration", "bellman_residual", "kl", "kl_objective", "optimal_kl_policy",
    "reward_from_policy", "soft_value_iteration",
    "LearningResult", "greedy_value", "q_learning", "sarsa", "reinforce", "reinforce_loss",
    "render_grid", "render_values", "render_policy", "plot_values", "plot_learning_curves",
    "plot_episode", "save_episode_gif", "plot_bandit",
]
