"""Exercise: RLOO's advantages (lesson 11, section "RLOO: the other answers as the baseline").

Replace the TODO with your code, then:
    python -m exercises grade rloo_advantages
    python -m exercises run --student rloo_advantages -- lessons/11_rlhf_by_rl.py
    python -m exercises run --student rloo_advantages -- -m align.rlhf --init runs/pipeline/sft \\
        --reward runs/pipeline/reward --data runs/pipeline/data/pairs_train.jsonl --out-dir runs/my-rloo
"""

import torch


def rloo_advantages(returns: torch.Tensor) -> torch.Tensor:
    """REINFORCE leave-one-out (Ahmadian et al. 2024): each answer's baseline is the mean
    return of the other k − 1 answers to the same prompt.

    returns: (P, k), k ≥ 2 answers for each of P prompts. Returns (P, k):

        A_i = R_i − 1/(k−1) · Σ_{j≠i} R_j  =  k/(k−1) · (R_i − mean_j R_j).

    The baseline does not depend on answer i itself, so E[A_i ∇ log π_θ(y_i|x)] is still the
    policy gradient (the baseline's term has expectation 0), with much less variance.

    TODO: raise ValueError unless returns is 2-D with k ≥ 2 columns. Then, for every answer
    at once (no loop): the sum of the others is the row's sum minus R_i; divide by k − 1
    and subtract it from R_i. Do not change the input.
    """
    raise NotImplementedError("exercise rloo_advantages: R_i − the mean of the other answers' returns")
