"""Bradley-Terry and DPO losses, against independent float64 computations of the formulas."""

import math

import pytest
import torch

from align.losses import bradley_terry_loss, dpo_loss


def sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_bradley_terry_identity_e_a_over_e_a_plus_e_b_is_sigmoid_a_minus_b():
    for A, B in [(0.0, 0.0), (2.0, -1.0), (-3.5, 4.0), (30.0, 29.0)]:
        assert math.exp(A) / (math.exp(A) + math.exp(B)) == pytest.approx(sigmoid(A - B), rel=1e-12)


def test_bradley_terry_loss_is_the_mean_negative_log_probability_of_the_preference():
    r_w = torch.tensor([1.0, 0.5, -2.0, 40.0], dtype=torch.float64)
    r_l = torch.tensor([0.0, 1.5, -2.0, -40.0], dtype=torch.float64)
    expected = sum(-math.log(math.exp(a) / (math.exp(a) + math.exp(b)))
                   for a, b in zip(r_w.tolist()[:3], r_l.tolist()[:3]))
    expected += -math.log(sigmoid(80.0))  # e^40/(e^40+e^-40) overflows nothing in σ form
    torch.testing.assert_close(bradley_terry_loss(r_w, r_l), torch.tensor(expected / 4, dtype=torch.float64))
    huge = bradley_terry_loss(torch.tensor([-1000.0]), torch.tensor([1000.0]))
    assert torch.isfinite(huge) and huge.item() == pytest.approx(2000.0)


def reference_dpo(pc, pr, rc, rr, beta, eps, loss_type, reference_free):
    """The formulas written out one pair at a time with Python floats (float64)."""
    losses = []
    for a, b, c, d in zip(pc, pr, rc, rr):
        h = (a - b) - (0.0 if reference_free else (c - d))
        if loss_type == "sigmoid":
            losses.append(-(1 - eps) * math.log(sigmoid(beta * h)) - eps * math.log(sigmoid(-beta * h)))
        elif loss_type == "ipo":
            losses.append((h - 1 / (2 * beta)) ** 2)
        else:
            losses.append(max(0.0, 1 - beta * h))
    return losses


@pytest.mark.parametrize("loss_type, eps, reference_free", [
    ("sigmoid", 0.0, False), ("sigmoid", 0.2, False), ("sigmoid", 0.0, True),
    ("ipo", 0.0, False), ("hinge", 0.0, False), ("hinge", 0.0, True),
])
@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_loss_matches_the_formula_in_float64(loss_type, eps, reference_free, beta):
    generator = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(16, generator=generator, dtype=torch.float64) * 5 - 20
                      for _ in range(4))
    losses, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps,
                                        loss_type=loss_type, reference_free=reference_free)
    expected = reference_dpo(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), beta, eps,
                             loss_type, reference_free)
    torch.testing.assert_close(losses, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    if reference_free:  # π_ref uniform: its log-probability is taken as 0
        rc, rr = torch.zeros_like(rc), torch.zeros_like(rr)
    torch.testing.assert_close(chosen, beta * (pc - rc))
    torch.testing.assert_close(rejected, beta * (pr - rr))


def test_dpo_loss_is_log_2_when_the_policy_equals_the_reference():
    logps = torch.tensor([-12.0, -30.5, -7.25])
    other = torch.tensor([-15.0, -20.0, -9.0])
    losses, chosen, rejected = dpo_loss(logps, other, logps, other, beta=0.1)
    torch.testing.assert_close(losses, torch.full((3,), math.log(2)))
    assert torch.all(chosen == 0) and torch.all(rejected == 0)


def test_implicit_rewards_are_detached_and_the_loss_has_gradients():
    pc = torch.tensor([-5.0], requires_grad=True)
    pr = torch.tensor([-6.0], requires_grad=True)
    losses, chosen, rejected = dpo_loss(pc, pr, torch.tensor([-5.5]), torch.tensor([-5.5]))
    assert not chosen.requires_grad and not rejected.requires_grad
    losses.sum().backward()
    assert pc.grad.item() < 0 < pr.grad.item()  # descent raises log π(y_w), lowers log π(y_l)


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
