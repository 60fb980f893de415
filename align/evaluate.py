"""Measuring alignment: sample answers, score them with the gold reward r*, compare policies.

Sampling itself lives in `align.sampling`, shared with the preference data and RL; the
KL(π_θ‖π_ref) estimates in `align.kl`, paired bootstrap intervals in `align.stats`.

- `mean_and_ci`: a mean with its 95% confidence interval, mean ± 1.96·s/√n.
- `win_rate`: how often one policy's answer beats another's on the same prompt (ties ½).
- `best_of_n`: sample N answers from a policy and keep the one the reward model r_φ likes best.
"""

import math
import torch

from align.reward import score_sequences
from align.sampling import sample_answers


def mean_and_ci(values) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval), normal approximation."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_and_ci needs at least one value")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


def win_rate(ours, theirs) -> float:
    """Share of prompts where our score beats theirs; a tie counts one half."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError("win_rate needs two equally long, non-empty lists of scores")
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs))
    return wins / len(ours)


@torch.no_grad()
def best_of_n(policy, reward_model, tokenizer, prompts, n, device, seed=0, **sampling) -> list[str]:
    """For each prompt, N sampled answers and the one with the highest r_φ(x, y)."""
    candidates = [sample_answers(policy, tokenizer, prompts, seed=seed + k, device=device, **sampling)
                  for k in range(n)]  # n lists of len(prompts)
    block, eos = reward_model.config.block_size, tokenizer.eos_id
    best = []
    for i in range(len(prompts)):
        answers = [candidates[k][i] for k in range(n)]
        sequences = []
        for s in answers:  # scored as in training: prompt + answer + EOS (if there is room)
            sequence = s.prompt_ids + s.answer_ids
            if sequence[-1] != eos and len(sequence) < block:
                sequence = sequence + [eos]
            sequences.append(sequence)
        scores = score_sequences(reward_model, sequences, tokenizer.pad_id, device)
        best.append(answers[int(scores.argmax())].text)
    return best
