"""Bootstrap confidence intervals for comparing two policies on the same prompts (numpy only).

The bootstrap: the n prompts we evaluated stand in for the population of prompts. Draw n
prompt indices with replacement, recompute the statistic on that resample, repeat B times;
the spread of the B values is the statistic's sampling spread. The percentile interval
at confidence 1 − α is the α/2 and 1 − α/2 quantiles of the B values.

A *paired* bootstrap compares two policies evaluated on the same prompts x_1 … x_n, with
scores ours_i and theirs_i (e.g. gold reward r*(x_i, y) of π_θ's and π_ref's answers). It
resamples prompt indices, the same indices for both lists, so each resample keeps the pairs
(ours_i, theirs_i) together. Why pairing matters: much of a score is the prompt's
difficulty, shared by both answers to it. Written ours_i = d(x_i) + a_i and
theirs_i = d(x_i) + b_i, the difference ours_i − theirs_i = a_i − b_i does not contain d:
the prompt's difficulty cancels. An unpaired interval (resampling the two lists
independently) keeps Var d(x) in the width, twice, and can be many times wider for the same
data; it answers a question about two independent sets of prompts, which is not the
experiment we ran.

- `paired_bootstrap(ours, theirs, "mean_difference")`: mean over prompts of ours_i − theirs_i.
- `paired_bootstrap(ours, theirs, "win_rate")`: share of prompts where ours_i > theirs_i,
  a tie counting ½ (as `align.evaluate.win_rate`).
- `bootstrap_mean(values)`: one list, the mean.
- `groups=`: prompts that ask one question in other words are one draw, not several:
  the bootstrap then resamples the questions (a cluster bootstrap).
- `proportion_interval(share, n)`: Wilson's interval for a share of n yes/no outcomes
  (an accuracy over held-out pairs).
Each returns (estimate on the data, low, high).

Example:
    >>> paired_bootstrap([3.0, 1.0, 2.0, 0.5], [1.0, 1.0, 5.0, -1.0], "win_rate", seed=0)
    (0.625, 0.25, 1.0)
"""

import math

import numpy as np

STATISTICS = ("mean_difference", "win_rate")
CHUNK = 1 << 22  # at most this many resampled values held at once


def as_scores(values, name: str) -> np.ndarray:
    """A non-empty 1-D array of finite floats, or ValueError naming the problem."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a list of numbers") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a flat list of numbers, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name}: empty; a bootstrap needs at least one value")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: holds NaN or infinite values at indices "
                         f"{np.flatnonzero(~np.isfinite(array))[:5].tolist()}")
    return array


def check_settings(n_resamples, confidence):
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")


def bootstrap_means(values: np.ndarray, n_resamples: int, seed: int, groups=None) -> np.ndarray:
    """(n_resamples,): the mean of values[i_1 … i_n] for n indices drawn with replacement.

    groups (one label per value, e.g. the question a prompt asks): draw the G groups with
    replacement instead, and take the mean of every value in the drawn groups,
    Σ_g* sum_g / Σ_g* count_g. Two wordings of one question ("Where is Kyoto?", "In which
    country is Kyoto?") are not two independent draws of the world's questions: resampling
    them one by one would make the interval too narrow.
    """
    rng = np.random.default_rng(seed)
    if groups is not None:
        _, index = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
        sums = np.bincount(index, weights=values)  # (G,)
        counts = np.bincount(index).astype(np.float64)  # (G,)
        values, n = None, sums.size
    else:
        n = values.size
    rows = max(1, CHUNK // n)  # resamples per chunk, so memory stays bounded for large n
    means = []
    for start in range(0, n_resamples, rows):
        indices = rng.integers(0, n, size=(min(rows, n_resamples - start), n))  # (rows, n)
        if values is None:
            means.append(sums[indices].sum(axis=1) / counts[indices].sum(axis=1))  # (rows,)
        else:
            means.append(values[indices].mean(axis=1))  # (rows,)
    return np.concatenate(means)


def check_groups(groups, n: int):
    if groups is not None and len(groups) != n:
        raise ValueError(f"groups: expected one label per value ({n}), got {len(groups)}")


def percentile_interval(estimate, resampled: np.ndarray, confidence) -> tuple[float, float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
    return float(estimate), float(low), float(high)


def bootstrap_mean(values, n_resamples=2000, seed=0, confidence=0.95,
                   groups=None) -> tuple[float, float, float]:
    """(mean, low, high): the mean of one list and its percentile bootstrap interval
    (resampling whole groups when groups are given: see `bootstrap_means`)."""
    check_settings(n_resamples, confidence)
    values = as_scores(values, "values")
    check_groups(groups, values.size)
    return percentile_interval(values.mean(), bootstrap_means(values, n_resamples, seed, groups),
                               confidence)


def paired_bootstrap(ours, theirs, statistic="mean_difference", n_resamples=2000, seed=0,
                     confidence=0.95, groups=None) -> tuple[float, float, float]:
    """(estimate, low, high) for a comparison of two policies on the same n prompts.

    ours[i] and theirs[i] are the two scores on prompt i. Resamples prompt indices with
    replacement, the same indices for both lists (paired), and takes the percentile interval.
    statistic: "mean_difference", mean_i (ours_i − theirs_i); or "win_rate", mean_i w_i with
    w_i = 1 if ours_i > theirs_i, ½ on a tie, 0 otherwise. Both are means over prompts of one
    per-prompt value, so resampling the prompts' values resamples the pairs. groups: resample
    whole groups of prompts (the question each asks), as `bootstrap_means` says.
    """
    check_settings(n_resamples, confidence)
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    ours, theirs = as_scores(ours, "ours"), as_scores(theirs, "theirs")
    if ours.size != theirs.size:
        raise ValueError(f"ours and theirs must be equally long, one score each per prompt: "
                         f"got {ours.size} and {theirs.size}")
    if statistic == "mean_difference":
        per_prompt = ours - theirs  # (n,): the prompt's difficulty cancels here
    else:
        per_prompt = np.where(ours > theirs, 1.0, np.where(ours == theirs, 0.5, 0.0))  # (n,)
    check_groups(groups, per_prompt.size)
    resampled = bootstrap_means(per_prompt, n_resamples, seed, groups)  # (n_resamples,)
    return percentile_interval(per_prompt.mean(), resampled, confidence)


def proportion_interval(share: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95% interval for a share of n independent yes/no outcomes (e.g. accuracy)."""
    if n < 1:
        return (float("nan"), float("nan"))
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)
