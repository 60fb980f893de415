"""Exercise: the DPO loss (lesson 9, section "The loss, as the code computes it"; lecture: "Función de pérdida").

Replace the TODO with your code, then:
    python -m exercises grade dpo_loss
    python -m exercises run --student dpo_loss -- lessons/09_dpo.py
    python -m exercises run --student dpo_loss -- -m align.pipeline --quick
"""

import torch
import torch.nn.functional as F  # noqa: F401


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
    """L_DPO = −log σ( β log π_θ(y_w|x)/π_ref(y_w|x) − β log π_θ(y_l|x)/π_ref(y_l|x) ), per pair.

    The four inputs are (B,) sequence log-probabilities log π(y|x). Write
        h = (log π_θ(y_w) − log π_θ(y_l)) − (log π_ref(y_w) − log π_ref(y_l)).
    Returns (losses (B,), chosen_rewards (B,), rejected_rewards (B,)), where the implicit
    rewards r̂(x, y) = β (log π_θ(y|x) − log π_ref(y|x)) are detached (for watching only).

    TODO, part 1 (the lecture): loss_type "sigmoid" with label_smoothing 0: −log σ(β h),
    and the two rewards. Grade it: the first checks cover this part.
    TODO, part 2 (the variants):
      label_smoothing ε:   −(1 − ε) log σ(β h) − ε log σ(−β h)
      loss_type "ipo":     (h − 1/(2β))²   (align.dpo passes per-token mean log-probs here)
      loss_type "hinge":   max(0, 1 − β h)
      reference_free:      π_ref uniform: log π_ref taken as 0 for both answers, in h and
                           in the two rewards
    Until you write part 2, keep `raise NotImplementedError(...)` for those options (after
    part 1's code): grading then marks their checks TODO instead of FAIL.
    """
    raise NotImplementedError("exercise dpo_loss: −log σ(β·h), with h the difference of log-ratios")
