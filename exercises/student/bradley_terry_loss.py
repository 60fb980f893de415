"""Exercise: the Bradley-Terry loss of the reward model (lesson 7, section "The Bradley-Terry loss").

Replace the TODO with your code, then:
    python -m exercises grade bradley_terry_loss
    python -m exercises run --student bradley_terry_loss -- lessons/07_reward_model_bradley_terry.py
"""

import torch
import torch.nn.functional as F  # noqa: F401


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """L = −mean over pairs of log P(y_w > y_l), with P(y_w > y_l) = e^{r_w} / (e^{r_w} + e^{r_l}).

    chosen_rewards, rejected_rewards: (B,), the scores r_φ(x, y_w) and r_φ(x, y_l).
    Returns a 0-d tensor.

    TODO: use e^A / (e^A + e^B) = σ(A − B), and F.logsigmoid for log σ: it does not
    overflow when the scores are far apart.
    """
    raise NotImplementedError("exercise bradley_terry_loss: −mean log σ(r_w − r_l)")
