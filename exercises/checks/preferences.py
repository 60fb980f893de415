"""Checks for the preference losses: Bradley-Terry (lesson 7) and DPO (lessons 8 and 9).

The expected values are the lecture's formulas written out one pair at a time with Python
floats; the "model" checks fit a tiny problem whose answer is known in closed form.
"""

import math

import torch

from exercises.grading import check, expect, expect_close


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def log_sigmoid(z: float) -> float:
    """log σ(z) without overflow: −log(1 + e^{−z})."""
    return -math.log1p(math.exp(-z)) if z > -30 else z - math.log1p(math.exp(z))


# -------------------------------------------------------------------------- Bradley-Terry
@check("bradley_terry_loss", "shape", "returns one number: the mean over the batch, a 0-d tensor")
def bt_shape(bradley_terry_loss):
    out = bradley_terry_loss(torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.0, 2.5, 0.5]))
    expect(isinstance(out, torch.Tensor) and out.dim() == 0,
           f"expected a 0-d tensor (the mean over pairs), got "
           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")


@check("bradley_terry_loss", "values", "the mean of −log(e^{r_w} / (e^{r_w} + e^{r_l})) over the pairs")
def bt_values(bradley_terry_loss):
    r_w = [1.0, 0.5, -2.0, 3.0, 0.0]
    r_l = [0.0, 1.5, -2.0, -1.0, 2.5]
    expected = sum(-math.log(math.exp(a) / (math.exp(a) + math.exp(b))) for a, b in zip(r_w, r_l)) / 5
    out = bradley_terry_loss(torch.tensor(r_w, dtype=torch.float64), torch.tensor(r_l, dtype=torch.float64))
    expect_close(out, torch.tensor(expected, dtype=torch.float64), "the loss", atol=1e-12)


@check("bradley_terry_loss", "property", "only r_w − r_l matters, and large gaps give finite losses",
       section="e^A / (e^A + e^B) = σ(A − B)")
def bt_stable(bradley_terry_loss):
    r_w = torch.tensor([0.3, -1.0], dtype=torch.float64)
    r_l = torch.tensor([1.2, -4.0], dtype=torch.float64)
    expect_close(bradley_terry_loss(r_w + 50.0, r_l + 50.0), bradley_terry_loss(r_w, r_l),
                 "the loss after adding 50 to every reward", atol=1e-12)
    huge = bradley_terry_loss(torch.tensor([-1000.0]), torch.tensor([1000.0]))
    expect(bool(torch.isfinite(huge)), f"r_w = −1000, r_l = 1000 gave {huge.item()}, expected −log σ(−2000) "
           "= 2000: e^1000 overflows and σ(−2000) underflows to 0; use F.logsigmoid(r_w − r_l)")
    expect(abs(huge.item() - 2000.0) < 1e-3, f"r_w = −1000, r_l = 1000 gave {huge.item()}, expected "
           "−log σ(r_w − r_l) = −log σ(−2000) = 2000")


@check("bradley_terry_loss", "gradient", "∂L/∂r_w = −σ(r_l − r_w)/B and ∂L/∂r_l = +σ(r_l − r_w)/B")
def bt_gradient(bradley_terry_loss):
    r_w = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    r_l = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    bradley_terry_loss(r_w, r_l).backward()
    expect(r_w.grad is not None and r_l.grad is not None, "no gradient reached the rewards")
    expected = torch.tensor([-sigmoid(b - a) / 3 for a, b in zip(r_w.tolist(), r_l.tolist())], dtype=torch.float64)
    expect_close(r_w.grad, expected, "∂L/∂r_w", atol=1e-12)
    expect_close(r_l.grad, -expected, "∂L/∂r_l", atol=1e-12)


@check("bradley_terry_loss", "model", "fitting scores to 3-to-1 preferences recovers r_a − r_b = log 3",
       section="A small reward model r_φ, trained on labelled pairs")
def bt_fit(bradley_terry_loss):
    # Answer a beats answer b in 3 of 4 labelled pairs: the maximum-likelihood scores have
    # σ(r_a − r_b) = 3/4, so r_a − r_b = log 3.
    scores = torch.zeros(2, dtype=torch.float64, requires_grad=True)  # r_a, r_b
    winners, losers = torch.tensor([0, 0, 0, 1]), torch.tensor([1, 1, 1, 0])
    optimizer = torch.optim.SGD([scores], lr=2.0)
    for _ in range(300):
        loss = bradley_terry_loss(scores[winners], scores[losers])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    gap = (scores[0] - scores[1]).item()
    expect(abs(gap - math.log(3)) < 1e-4, f"after fitting, r_a − r_b = {gap:.5f}, expected log 3 = {math.log(3):.5f}")


# ---------------------------------------------------------------------------------- DPO
def reference_dpo(pc, pr, rc, rr, beta, eps, loss_type, reference_free):
    """The formulas written out one pair at a time with Python floats (float64)."""
    losses = []
    for a, b, c, d in zip(pc, pr, rc, rr):
        h = (a - b) - (0.0 if reference_free else (c - d))
        if loss_type == "sigmoid":
            losses.append(-(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h))
        elif loss_type == "ipo":
            losses.append((h - 1 / (2 * beta)) ** 2)
        else:
            losses.append(max(0.0, 1 - beta * h))
    return losses


def random_logps(seed=0, B=16):
    """Four (B,) float64 tensors of sequence log-probabilities: π_θ(y_w), π_θ(y_l), π_ref(y_w), π_ref(y_l)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(B, generator=generator, dtype=torch.float64) * 5 - 20 for _ in range(4)]


def expect_dpo(dpo_loss, beta, eps=0.0, loss_type="sigmoid", reference_free=False, seed=0):
    pc, pr, rc, rr = random_logps(seed)
    out = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=eps, loss_type=loss_type,
                   reference_free=reference_free)
    expect(isinstance(out, tuple) and len(out) == 3,
           "expected a tuple (losses, chosen_rewards, rejected_rewards)")
    expected = reference_dpo(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), beta, eps,
                             loss_type, reference_free)
    what = f"losses with loss_type={loss_type!r}, β={beta}" + (f", label_smoothing={eps}" if eps else "") \
        + (", reference_free" if reference_free else "")
    expect_close(out[0], torch.tensor(expected, dtype=torch.float64), what, atol=1e-10)


@check("dpo_loss", "shape", "returns (losses, chosen_rewards, rejected_rewards), each (B,)")
def dpo_shape(dpo_loss):
    out = dpo_loss(*random_logps(B=5), beta=0.1)
    expect(isinstance(out, tuple) and len(out) == 3,
           f"expected a tuple of 3 tensors (losses, chosen_rewards, rejected_rewards), got {type(out).__name__}")
    for name, tensor in zip(("losses", "chosen_rewards", "rejected_rewards"), out):
        expect(isinstance(tensor, torch.Tensor) and tuple(tensor.shape) == (5,),
               f"{name}: expected shape (B,) = (5,), got "
               f"{tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__} "
               "(one loss per pair: the trainer takes the mean)")


@check("dpo_loss", "values", "the lecture's loss −log σ(β·h) for β = 0.1, 0.5, 2")
def dpo_sigmoid(dpo_loss):
    for seed, beta in enumerate((0.1, 0.5, 2.0)):
        expect_dpo(dpo_loss, beta, seed=seed)


@check("dpo_loss", "property", "π_θ = π_ref gives log 2 for every pair and zero rewards",
       section="The lecture's example: `dpo_dataset_dict` and `DPOConfig(beta=0.1)`")
def dpo_log_2(dpo_loss):
    logps = torch.tensor([-12.0, -30.5, -7.25], dtype=torch.float64)
    other = torch.tensor([-15.0, -20.0, -9.0], dtype=torch.float64)
    losses, chosen, rejected = dpo_loss(logps, other, logps, other, beta=0.1)
    expect_close(losses, torch.full((3,), math.log(2), dtype=torch.float64), "losses at step 0", atol=1e-12)
    expect(bool((chosen == 0).all() and (rejected == 0).all()),
           f"with π_θ = π_ref the implicit rewards must be 0, got {chosen.tolist()} and {rejected.tolist()}")


@check("dpo_loss", "values", "implicit rewards β·(log π_θ(y|x) − log π_ref(y|x)), detached",
       section="Rewards and margins over the steps")
def dpo_rewards(dpo_loss):
    pc, pr, rc, rr = (t.requires_grad_(True) for t in random_logps(3))
    _, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.5)
    expect_close(chosen, 0.5 * (pc - rc), "chosen_rewards", atol=1e-12)
    expect_close(rejected, 0.5 * (pr - rr), "rejected_rewards", atol=1e-12)
    expect(not chosen.requires_grad and not rejected.requires_grad,
           "the rewards carry gradients; .detach() them: they are for watching, not for training")


@check("dpo_loss", "gradient", "∂L/∂log π_θ(y_w) = −β·σ(−β·h): descent raises y_w and lowers y_l")
def dpo_gradient(dpo_loss):
    pc, pr, rc, rr = random_logps(4, B=6)
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.5)
    losses.sum().backward()
    expect(pc.grad is not None and pr.grad is not None, "no gradient reached the policy's log-probs")
    h = (pc - pr - (rc - rr)).detach()
    expected = -0.5 * torch.sigmoid(-0.5 * h)
    expect_close(pc.grad, expected, "∂L/∂log π_θ(y_w|x)", atol=1e-12)
    expect_close(pr.grad, -expected, "∂L/∂log π_θ(y_l|x)", atol=1e-12)


@check("dpo_loss", "model", "DPO on a 3-answer bandit converges to π* = π_ref·exp(r/β)/Z",
       lesson="lessons/08_rlhf_objective_and_optimal_policy.py",
       section="Back to Bradley-Terry (retomemos Bradley-Terry): β·log Z cancels")
def dpo_bandit(dpo_loss):
    # Rewards r = (2 log 2, log 2, 0): answer 0 beats 1 in 2 of 3 pairs (σ(log 2) = 2/3), 1 beats
    # 2 in 2 of 3, 0 beats 2 in 4 of 5 (σ(log 4) = 4/5). Minimising the DPO loss on these pairs
    # must give β·log(π_θ/π_ref) = r + a constant, that is π_θ = π*.
    beta = 0.5
    r = torch.tensor([2 * math.log(2), math.log(2), 0.0], dtype=torch.float64)
    log_ref = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    pairs = [(0, 1)] * 2 + [(1, 0)] + [(1, 2)] * 2 + [(2, 1)] + [(0, 2)] * 4 + [(2, 0)]
    chosen, rejected = torch.tensor([w for w, _ in pairs]), torch.tensor([l for _, l in pairs])
    theta = log_ref.clone().requires_grad_(True)  # π_θ = softmax(θ) starts at π_ref
    optimizer = torch.optim.Adam([theta], lr=0.05)
    for _ in range(1500):
        log_pi = torch.log_softmax(theta, dim=0)
        losses, _, _ = dpo_loss(log_pi[chosen], log_pi[rejected], log_ref[chosen], log_ref[rejected], beta=beta)
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
    pi = torch.softmax(theta.detach(), dim=0)
    pi_star = torch.softmax(log_ref + r / beta, dim=0)
    expect_close(pi, pi_star, "π_θ after DPO (expected π*)", atol=2e-3)


@check("dpo_loss", "values", "label_smoothing ε: −(1 − ε)·log σ(β·h) − ε·log σ(−β·h)")
def dpo_label_smoothing(dpo_loss):
    expect_dpo(dpo_loss, 0.5, eps=0.2, seed=5)


@check("dpo_loss", "values", "loss_type 'ipo': (h − 1/(2β))², and 'hinge': max(0, 1 − β·h)")
def dpo_ipo_hinge(dpo_loss):
    expect_dpo(dpo_loss, 0.5, loss_type="ipo", seed=6)
    expect_dpo(dpo_loss, 0.5, loss_type="hinge", seed=7)


@check("dpo_loss", "values", "reference_free: π_ref uniform, log π_ref taken as 0 (losses and rewards)")
def dpo_reference_free(dpo_loss):
    expect_dpo(dpo_loss, 0.5, reference_free=True, seed=8)
    pc, pr, rc, rr = random_logps(9)
    _, chosen, rejected = dpo_loss(pc, pr, rc, rr, beta=0.5, reference_free=True)
    expect_close(chosen, 0.5 * pc, "chosen_rewards with reference_free", atol=1e-12)
    expect_close(rejected, 0.5 * pr, "rejected_rewards with reference_free", atol=1e-12)
