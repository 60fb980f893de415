"""The two preference losses of the lecture: Bradley-Terry for the reward model, and DPO.

Bradley-Terry ("Modelo Bradley-Terry"): the probability that answer y_w is preferred to
y_l is

    P(y_w > y_l) = e^{r(x, y_w)} / (e^{r(x, y_w)} + e^{r(x, y_l)}) = σ(r(x, y_w) − r(x, y_l)),

because e^A / (e^A + e^B) = 1 / (1 + e^{B−A}) = σ(A − B). Fitting a reward model r_φ by
maximum likelihood gives ("Función de costo del modelo de recompensa")

    L = −E_{(x, y_w, y_l) ~ D} [ log σ(r_φ(x, y_w) − r_φ(x, y_l)) ].

DPO ("Política óptima", then "retomemos Bradley-Terry"): the optimal policy of the RLHF
objective gives r(x, y) = β log π*(y|x)/π_ref(y|x) + β log Z(x); in the Bradley-Terry
difference β log Z(x) cancels, leaving a loss on the policy itself:

    L_DPO(π_θ; π_ref) = −E [ log σ( β log π_θ(y_w|x)/π_ref(y_w|x) − β log π_θ(y_l|x)/π_ref(y_l|x) ) ].

Example:
    >>> import torch
    >>> bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0]))  # −log σ(2)
    tensor(0.1269)
"""

import torch
import torch.nn.functional as F

DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge")


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """L = mean of −log σ(r_w − r_l) over the batch. Inputs (B,); returns a scalar.

    F.logsigmoid(z) = log σ(z), computed without overflow for large |z|.
    """
    # >>> solution bradley_terry_loss
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    # <<< solution


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    loss_type: str = "sigmoid",
    reference_free: bool = False,
):
    """The DPO loss for a batch of preference pairs, one value per pair.

    Inputs are (B,) sequence log-probabilities log π(y|x) (see minigpt.get_batch_logps):
    sums over the response tokens for sigmoid and hinge (the DPO paper, TRL), per-token
    means for ipo (IPO's paper, TRL: on sums its target 1/(2β) would mean something
    different at every answer length). align.dpo passes those by default; this function
    takes whichever it is given (--average-log-prob, --ipo-summed choose the other).
    With h = (log π_θ(y_w|x) − log π_θ(y_l|x)) − (log π_ref(y_w|x) − log π_ref(y_l|x)):

      sigmoid (the lecture's L_DPO):  −log σ(β h)
      with label_smoothing ε (conservative DPO, labels flipped with probability ε):
                                      −(1 − ε) log σ(β h) − ε log σ(−β h)
      ipo (Azar et al.):              (h − 1/(2β))²     (h of per-token mean log-probs)
      hinge (SLiC):                   max(0, 1 − β h)
      reference_free:                 π_ref is taken as uniform: h = log π_θ(y_w|x) − log π_θ(y_l|x)

    Returns (losses (B,), chosen_rewards (B,), rejected_rewards (B,)), where the implicit
    rewards are r̂(x, y) = β (log π_θ(y|x) − log π_ref(y|x)), detached: they are for
    watching training (rewards/margins, rewards/accuracies), not for gradients.
    """
    if loss_type not in DPO_LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {DPO_LOSS_TYPES}, got {loss_type!r}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if label_smoothing > 0 and loss_type != "sigmoid":
        raise ValueError("label_smoothing goes with loss_type='sigmoid' only")
    # >>> solution dpo_loss
    if reference_free:  # π_ref uniform: log π_ref(y|x) is the same for every y; take it as 0
        reference_chosen_logps = torch.zeros_like(reference_chosen_logps)
        reference_rejected_logps = torch.zeros_like(reference_rejected_logps)

    policy_logratios = policy_chosen_logps - policy_rejected_logps  # log π_θ(y_w)/π_θ(y_l)
    reference_logratios = reference_chosen_logps - reference_rejected_logps
    h = policy_logratios - reference_logratios  # (B,)

    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    else:  # hinge
        losses = torch.relu(1 - beta * h)

    chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
    rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
    return losses, chosen_rewards, rejected_rewards
    # <<< solution
