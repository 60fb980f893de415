"""Bradley-Terry and DPO losses beyond their exercises' checks (exercises/checks/preferences.py,
run against the reference by tests/test_exercises.py): every option of dpo_loss for three
values of β, and its argument checks."""

import math

import pytest
import torch

from align.losses import dpo_loss
from exercises.checks.preferences import random_logps, reference_dpo, sigmoid


def test_bradley_terry_identity_e_a_over_e_a_plus_e_b_is_sigmoid_a_minus_b():
    for A, B in [(0.0, 0.0), (2.0, -1.0), (-3.5, 4.0), (30.0, 29.0)]:
        assert math.exp(A) / (math.exp(A) + math.exp(B)) == pytest.approx(sigmoid(A - B), rel=1e-12)


@pytest.mark.parametrize("loss_type, eps, reference_free", [
    ("sigmoid", 0.0, False), ("sigmoid", 0.2, False), ("sigmoid", 0.0, True),
    ("ipo", 0.0, False), ("hinge", 0.0, False), ("hinge", 0.0, True),
])
@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_loss_matches_the_formula_in_float64(loss_type, eps, reference_free, beta):
    pc, pr, rc, rr = random_logps(seed=0)
    losses, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps,
                                        loss_type=loss_type, reference_free=reference_free)
    expected = reference_dpo(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), beta, eps,
                             loss_type, reference_free)
    torch.testing.assert_close(losses, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    if reference_free:  # π_ref uniform: its log-probability is taken as 0
        rc, rr = torch.zeros_like(rc), torch.zeros_like(rr)
    torch.testing.assert_close(chosen, beta * (pc - rc))
    torch.testing.assert_close(rejected, beta * (pr - rr))


def test_bad_options_are_clear_errors():
    x = torch.zeros(2)
    with pytest.raises(ValueError, match="loss_type must be one of"):
        dpo_loss(x, x, x, x, loss_type="kto")
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(x, x, x, x, label_smoothing=0.7)
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="label_smoothing goes with loss_type='sigmoid' only"):
        dpo_loss(x, x, x, x, label_smoothing=0.1, loss_type="ipo")
