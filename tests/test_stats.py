"""Bootstrap intervals, against the normal approximation, an unpaired interval and coverage."""

import numpy as np
import pytest

from align.evaluate import win_rate
from align.stats import bootstrap_mean, paired_bootstrap


def normal_interval(values):
    """mean ± 1.96·s/√n, computed here by hand."""
    values = np.asarray(values, dtype=np.float64)
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    return values.mean(), values.mean() - half, values.mean() + half


def test_mean_difference_agrees_with_the_normal_interval_on_large_data():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(0.0, 3.0, size=2000)  # one per prompt, shared by both policies
    ours = difficulty + rng.exponential(1.0, size=2000) + 0.2  # skewed noise
    theirs = difficulty + rng.exponential(1.0, size=2000)
    estimate, low, high = paired_bootstrap(ours, theirs, n_resamples=10_000, seed=1)
    mean, normal_low, normal_high = normal_interval(ours - theirs)
    half = (normal_high - normal_low) / 2
    print(f"\nmean difference {estimate:.4f}: bootstrap [{low:.4f}, {high:.4f}], "
          f"normal [{normal_low:.4f}, {normal_high:.4f}]")
    assert estimate == pytest.approx(mean, abs=1e-12)
    assert abs(low - normal_low) < 0.05 * half and abs(high - normal_high) < 0.05 * half
    single = bootstrap_mean(ours - theirs, n_resamples=10_000, seed=1)
    assert single == pytest.approx((estimate, low, high), abs=1e-12)  # the same resamples


def test_pairing_removes_the_prompts_difficulty_from_the_width():
    rng = np.random.default_rng(2)
    difficulty = rng.normal(0.0, 10.0, size=300)  # a large per-prompt offset
    ours = difficulty + 0.5 + rng.normal(0.0, 1.0, size=300)
    theirs = difficulty + rng.normal(0.0, 1.0, size=300)
    _, low, high = paired_bootstrap(ours, theirs, seed=0)
    # unpaired: the two lists resampled independently, as if from different prompts
    pick = np.random.default_rng(3)
    unpaired = [ours[pick.integers(0, 300, 300)].mean() - theirs[pick.integers(0, 300, 300)].mean()
                for _ in range(2000)]
    unpaired_low, unpaired_high = np.quantile(unpaired, [0.025, 0.975])
    print(f"\npaired width {high - low:.3f}, unpaired width {unpaired_high - unpaired_low:.3f}")
    assert high - low < 0.2 * (unpaired_high - unpaired_low)
    assert low > 0.0 > unpaired_low  # only the paired interval sees that ours is better


def test_the_95_percent_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(4)
    true_difference, covered = 0.3, 0
    for dataset in range(200):
        difficulty = rng.normal(0.0, 2.0, size=60)
        ours = difficulty + true_difference + rng.normal(0.0, 1.0, size=60)
        theirs = difficulty + rng.normal(0.0, 1.0, size=60)
        _, low, high = paired_bootstrap(ours, theirs, n_resamples=500, seed=dataset)
        covered += low <= true_difference <= high
    print(f"\ncoverage {covered / 200:.3f} over 200 data sets")
    assert 0.90 <= covered / 200 <= 0.99


def test_win_rate_counts_ties_as_half_and_all_ties_give_a_point():
    ours, theirs = [3, 1, 2, 0, 4], [1, 1, 5, -1, 4]
    estimate, low, high = paired_bootstrap(ours, theirs, "win_rate")
    assert estimate == pytest.approx(win_rate(ours, theirs)) and 0.0 <= low <= estimate <= high <= 1.0
    assert paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "win_rate") == (0.5, 0.5, 0.5)


def test_the_same_seed_gives_the_same_interval():
    rng = np.random.default_rng(5)
    ours, theirs = rng.normal(size=50).tolist(), rng.normal(size=50).tolist()
    assert paired_bootstrap(ours, theirs, seed=7) == paired_bootstrap(ours, theirs, seed=7)
    assert paired_bootstrap(ours, theirs, seed=7) != paired_bootstrap(ours, theirs, seed=8)
    assert bootstrap_mean(ours, seed=7) == bootstrap_mean(ours, seed=7)


@pytest.mark.parametrize("call, message", [
    (lambda: paired_bootstrap([1, 2, 3], [1, 2]), "equally long"),
    (lambda: paired_bootstrap([], []), "empty"),
    (lambda: bootstrap_mean([]), "empty"),
    (lambda: paired_bootstrap([1, float("nan")], [1, 2]), "NaN"),
    (lambda: paired_bootstrap([1, 2], [1, 2], statistic="median"), "statistic must be one of"),
    (lambda: paired_bootstrap([1, 2], [1, 2], confidence=95), "confidence"),
    (lambda: bootstrap_mean([1, 2], n_resamples=0), "n_resamples"),
], ids=["unequal-lengths", "empty-pair", "empty-list", "nan", "unknown-statistic",
        "confidence-in-percent", "no-resamples"])
def test_bad_input_is_refused_with_the_reason(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_wilson_interval_for_a_share_by_hand():
    from align.stats import proportion_interval
    low, high = proportion_interval(0.5, 100)  # centre 0.5, half 1.96·√(0.0025 + 0.000096)/1.0384
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    low, high = proportion_interval(0.0, 10)  # never below 0, unlike p ± 1.96·√(p(1−p)/n)
    assert low == pytest.approx(0.0, abs=1e-12) and 0.27 < high < 0.28


def test_a_group_per_value_is_the_plain_bootstrap():
    values = np.random.default_rng(3).normal(size=40)
    labels = [f"q{i:03d}" for i in range(40)]  # sorted as the values are
    assert bootstrap_mean(values, seed=5, groups=labels) == bootstrap_mean(values, seed=5)
    other = values[::-1].copy()
    assert (paired_bootstrap(values, other, seed=5, groups=labels)
            == paired_bootstrap(values, other, seed=5))


def test_repeated_wordings_of_one_question_count_once():
    """Each question asked in three wordings with the same score: grouped by question, the
    interval is the one of the questions alone; ungrouped, it is too narrow."""
    values = np.random.default_rng(4).normal(size=30)
    repeated = np.repeat(values, 3)
    questions = np.repeat([f"q{i:03d}" for i in range(30)], 3)
    grouped = bootstrap_mean(repeated, seed=2, groups=questions)
    alone = bootstrap_mean(values, seed=2)
    assert np.allclose(grouped, alone)
    naive = bootstrap_mean(repeated, seed=2)
    assert naive[2] - naive[1] < 0.75 * (alone[2] - alone[1])
    diff = paired_bootstrap(repeated, np.zeros(90), seed=2, groups=questions)
    assert np.allclose(diff, alone)


def test_groups_must_label_every_value():
    with pytest.raises(ValueError, match="groups"):
        bootstrap_mean([1.0, 2.0, 3.0], groups=["a", "b"])
