"""Gao et al.'s over-optimisation laws (align.gao): the fits recover known laws, the peaks
are where the curves turn down, and too few points are not fitted."""

import math

import numpy as np
import pytest

from align.gao import fitted_gain, gao_fit


@pytest.mark.parametrize("form, law", [
    ("best-of-N", lambda d, a, b: d * (a - b * d)),
    ("RL", lambda d, a, b: d * (a - b * math.log(d))),
])
def test_a_fit_recovers_the_law_its_points_were_made_from_and_finds_its_peak(form, law):
    kl = [0.1, 0.4, 0.9, 1.6, 2.5, 4.0]
    gain = [law(math.sqrt(k), 0.8, 0.3) for k in kl]
    fit = gao_fit(kl, gain, form)
    assert fit["alpha"] == pytest.approx(0.8, abs=1e-9) and fit["beta"] == pytest.approx(0.3, abs=1e-9)
    assert fit["residual"] < 1e-9 and fit["points"] == 6
    d = np.linspace(1e-3, 20, 200_001)  # the peak, by search on a fine grid
    peak = d[np.argmax([law(x, 0.8, 0.3) for x in d])]
    assert fit["d_star"] == pytest.approx(peak, abs=1e-3)
    assert fit["kl_star"] == pytest.approx(fit["d_star"] ** 2)
    assert fitted_gain(fit, kl, form) == pytest.approx(gain, abs=1e-9)


def test_noise_leaves_a_residual_and_a_curve_that_never_turns_down_has_no_peak():
    kl = [0.25, 1.0, 2.25, 4.0]
    rising = [0.5 * math.sqrt(k) + 0.1 * k for k in kl]  # R = d(0.5 + 0.1 d): β_g = −0.1
    fit = gao_fit(kl, rising, "best-of-N")
    assert fit["beta"] == pytest.approx(-0.1) and fit["d_star"] is None and fit["kl_star"] is None
    noisy = [g + e for g, e in zip(rising, (0.05, -0.05, 0.05, -0.05))]
    assert gao_fit(kl, noisy, "best-of-N")["residual"] > 0.01


def test_fewer_than_three_points_are_not_fitted_and_an_unknown_law_is_refused():
    assert gao_fit([0.5, 1.0], [0.1, 0.2], "RL") is None
    assert gao_fit([0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.1, 0.2], "RL") is None  # KL 0 counts for nothing
    with pytest.raises(ValueError, match="form must be one of"):
        gao_fit([0.5, 1.0, 2.0], [0.1, 0.2, 0.3], "linear")
