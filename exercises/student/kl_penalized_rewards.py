"""Exercise: per-token rewards (lesson 11, section "Per-token rewards: the KL penalty on every token").

Replace the TODO with your code, then:
    python -m exercises grade kl_penalized_rewards
    python -m exercises run --student kl_penalized_rewards -- lessons/11_rlhf_by_rl.py
    python -m exercises run --student kl_penalized_rewards -- -m align.rlhf --init runs/pipeline/sft \\
        --reward runs/pipeline/reward --data runs/pipeline/data/pairs_train.jsonl --out-dir runs/my-rlhf
"""

import torch


def kl_penalized_rewards(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor,
                         mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards of RLHF: the KL penalty on every answer token, r_φ on the last one.

    logprobs, ref_logprobs: (N, L) log π_θ(y_t|·) and log π_ref(y_t|·) of the sampled tokens;
    scores: (N,) r_φ(x, y); mask: (N, L) True on answer tokens (after the prompt's False
    columns, before the padding's; each row's answer is contiguous). Returns (N, L), 0 off
    the answer:

        r_t = −β·(log π_θ(y_t|x, y_<t) − log π_ref(y_t|x, y_<t))  +  [t = last] · r_φ(x, y).

    Summed over t: r_φ(x, y) − β·log π_θ(y|x)/π_ref(y|x), the lecture's J for one answer.

    TODO: the penalty −β·(logprobs − ref_logprobs), 0 where mask is False (torch.where);
    find each row's last True column (not mask.sum(1) − 1: the answer starts after the
    prompt) and add that row's score there. Do not change the inputs.
    """
    raise NotImplementedError("exercise kl_penalized_rewards: −β·(log π_θ − log π_ref), + r_φ on the last token")
