"""Two small statistics read everywhere: a mean with its interval, and a win rate.

The rest of measuring alignment lives beside it: sampling in `align.sampling`, the
KL(π_θ‖π_ref) estimates in `align.kl`, paired bootstrap intervals in `align.stats`, the
breakdown of answers in `align.breakdown`, and the report's comparison in `align.compare`.

- `mean_and_ci`: a mean with its 95% confidence interval, mean ± 1.96·s/√n.
- `win_rate`: how often one policy's answer beats another's on the same prompt (ties ½).
"""

import math


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
