"""RL on the lecture's RLHF objective (align.rl_losses, align.rollouts, align.rlhf), checked
against independent computations: hand-written numbers, brute-force loops over positions in
float64, and, end to end, the lecture's closed-form optimal policy

    π*(y|x) = π_ref(y|x)·exp(r(x, y)/β) / Z(x)

on a one-token bandit, where RLOO and PPO, run through `rloo_update` and `ppo_update` as the
RL stage runs them, must find π* (and not stay at π_ref); and the KL they report must be
the exact KL(π‖π_ref) = Σ_y π(y) log π(y)/π_ref(y), enumerable on that bandit.
"""

import math

import pytest
import torch
import torch.nn as nn

from align.kl import kl_report, per_sample_kl, token_kl
from align.rl_losses import (gae, kl_penalized_rewards, ppo_clip_loss, rloo_advantages,
                             value_clip_loss, whiten)
from align.rlhf import RLHFConfig, ValueHead, ppo_update, rloo_update, rollout_metrics
from align.rollouts import Rollouts, layout, policy_logprobs
from align.sampling import Sample
from minigpt.logps import get_batch_logps, token_logps


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tensors here are tiny: one thread runs the thousands of small RL steps fastest (several
    threads fight over a busy CPU), and the rest of the suite gets its threads back after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def contiguous_mask(spans, length):
    """(N, L) bool, row i True on columns start..end (inclusive) of spans[i]: one answer per row."""
    mask = torch.zeros(len(spans), length, dtype=torch.bool)
    for i, (start, end) in enumerate(spans):
        mask[i, start : end + 1] = True
    return mask


# ---------------------------------------------------------------------- 1. per-token log-probs

def test_token_logps_are_the_terms_of_get_batch_logps_and_zero_where_masked():
    generator = torch.Generator().manual_seed(0)
    B, T, V = 5, 9, 7
    logits = torch.randn(B, T, V, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, V, (B, T), generator=generator)
    labels[0, :3] = -100  # a prompt of 3 tokens
    labels[1, :5] = -100
    labels[1, 7:] = -100  # a prompt and right padding
    labels[2, 4] = -100  # a hole in the middle (token_logps has no contiguity assumption)
    labels[3, :] = -100  # nothing counts
    labels[4, 0] = -100
    logits_before, labels_before = logits.clone(), labels.clone()

    per_token, mask = token_logps(logits, labels)

    assert per_token.shape == mask.shape == (B, T - 1)
    assert torch.equal(mask, labels[:, 1:] != -100)
    torch.testing.assert_close(per_token.sum(-1), get_batch_logps(logits, labels), rtol=1e-12, atol=1e-12)
    assert torch.all(per_token[~mask] == 0.0)
    for b in range(B):  # brute force: log softmax of the logits at t, at the label of t + 1
        for t in range(T - 1):
            if labels[b, t + 1] != -100:
                row = logits[b, t].tolist()
                log_z = math.log(sum(math.exp(v) for v in row))
                assert per_token[b, t].item() == pytest.approx(row[labels[b, t + 1]] - log_z, abs=1e-12)
    assert torch.equal(logits, logits_before) and torch.equal(labels, labels_before)


def test_layout_puts_the_mask_on_each_answer_token_and_nowhere_else():
    """Prompt + answer right-padded: column t predicts token t + 1, so the answer of a prompt
    of length p and an answer of length a occupies columns p − 1 .. p + a − 2 of the mask."""
    samples = [Sample("a", [5, 6, 7], [1, 2], "", True), Sample("b", [5], [3, 4, 1, 2], "", True),
               Sample("c", [5, 6], [4], "", False)]
    input_ids, labels = layout(samples, pad_id=0, device="cpu")
    assert input_ids.tolist() == [[5, 6, 7, 1, 2], [5, 3, 4, 1, 2], [5, 6, 4, 0, 0]]
    assert labels.tolist() == [[-100, -100, -100, 1, 2], [-100, 3, 4, 1, 2], [-100, -100, 4, -100, -100]]
    _, mask = token_logps(torch.zeros(3, 5, 8), labels)
    assert torch.equal(mask, contiguous_mask([(2, 3), (0, 3), (1, 1)], 4))


# ------------------------------------------------------------- 2. per-token rewards and returns

BETA_BY_HAND = 0.5
# Row 0: a prompt of 2 tokens and an answer of 3 (mask columns 1..3); row 1: a prompt of 3
# tokens, an answer of 1 (column 2) and one pad. The 9.0s are off the answer and must not count.
LOGPROBS = torch.tensor([[9.0, -1.0, -0.5, -2.0], [9.0, 9.0, -0.2, 9.0]])
REF_LOGPROBS = torch.tensor([[-9.0, -1.5, -0.5, -1.0], [-9.0, -9.0, -1.2, -9.0]])
SCORES = torch.tensor([2.0, -1.0])
MASK = contiguous_mask([(1, 3), (2, 2)], 4)


def test_kl_penalized_rewards_by_hand():
    """r_t = −β·(log π − log π_ref), + r_φ on the last answer token; 0 off the answer.

    row 0: −0.5·(−1.0 + 1.5) = −0.25,  −0.5·0 = 0,  −0.5·(−2.0 + 1.0) + 2.0 = 2.5
    row 1: −0.5·(−0.2 + 1.2) − 1.0 = −1.5
    """
    rewards = kl_penalized_rewards(LOGPROBS, REF_LOGPROBS, SCORES, MASK, BETA_BY_HAND)
    torch.testing.assert_close(rewards, torch.tensor([[0.0, -0.25, 0.0, 2.5], [0.0, 0.0, -1.5, 0.0]]))
    torch.testing.assert_close(rewards.sum(-1), torch.tensor([2.25, -1.5]))  # RLOO's returns R_i


def test_gae_returns_by_hand():
    """λ = 1: G_t is the discounted reward-to-go, whatever V is (γ = 1: 2.25, 2.5, 2.5;
    γ = 0.9: −0.25 + 0.81·2.5 = 1.775, 0.9·2.5 = 2.25, 2.5). λ = 0, γ = 1: the one-step
    target G_t = r_t + V(s_{t+1}), V = 0 after the last token: −0.25 + 2 = 1.75, 0 + 3 = 3, 2.5,
    and Â_t = G_t − V(s_t) = 0.75, 1.0, −0.5."""
    rewards = kl_penalized_rewards(LOGPROBS, REF_LOGPROBS, SCORES, MASK, BETA_BY_HAND)
    values = torch.tensor([[7.0, 1.0, 2.0, 3.0], [7.0, 7.0, 0.5, 7.0]])  # 7.0: off the answer
    _, returns = gae(rewards, values, MASK, gamma=1.0, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[0.0, 2.25, 2.5, 2.5], [0.0, 0.0, -1.5, 0.0]]))
    _, returns = gae(rewards, values, MASK, gamma=0.9, lam=1.0)
    torch.testing.assert_close(returns, torch.tensor([[0.0, 1.775, 2.25, 2.5], [0.0, 0.0, -1.5, 0.0]]))
    advantages, returns = gae(rewards, values, MASK, gamma=1.0, lam=0.0)
    torch.testing.assert_close(returns, torch.tensor([[0.0, 1.75, 3.0, 2.5], [0.0, 0.0, -1.5, 0.0]]))
    torch.testing.assert_close(advantages, torch.tensor([[0.0, 0.75, 1.0, -0.5], [0.0, 0.0, -2.0, 0.0]]))


@pytest.mark.parametrize("beta", [0.05, 0.5, 2.0])
def test_row_sum_of_the_rewards_is_the_lectures_j_per_sample(beta):
    """Σ_t r_t = r_φ(x, y) − β·Σ_t (log π_θ(y_t|·) − log π_ref(y_t|·)), in float64."""
    generator = torch.Generator().manual_seed(1)
    spans = [(0, 7), (3, 7), (2, 4), (5, 5), (1, 6)]
    mask = contiguous_mask(spans, 8)
    logprobs = -torch.rand(5, 8, generator=generator, dtype=torch.float64) * 4
    ref_logprobs = -torch.rand(5, 8, generator=generator, dtype=torch.float64) * 4
    scores = torch.randn(5, generator=generator, dtype=torch.float64)
    rewards = kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, beta)
    for i, (start, end) in enumerate(spans):
        log_ratio = sum(logprobs[i, t].item() - ref_logprobs[i, t].item() for t in range(start, end + 1))
        assert rewards[i].sum().item() == pytest.approx(scores[i].item() - beta * log_ratio, abs=1e-12)
        assert torch.all(rewards[i, ~mask[i]] == 0.0)
        for t in range(start, end):  # all but the last token: the penalty alone
            assert rewards[i, t].item() == pytest.approx(-beta * (logprobs[i, t] - ref_logprobs[i, t]).item(),
                                                         abs=1e-12)


# ------------------------------------------------------------------ 3. advantages and losses

def test_rloo_advantages_are_each_return_minus_the_mean_of_the_others():
    returns = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    advantages = rloo_advantages(returns)
    for p in range(4):
        for i in range(5):
            others = [returns[p, j].item() for j in range(5) if j != i]
            assert advantages[p, i].item() == pytest.approx(returns[p, i].item() - sum(others) / 4, abs=1e-12)
    torch.testing.assert_close(rloo_advantages(torch.tensor([[1.0, 3.0]])), torch.tensor([[-2.0, 2.0]]))
    with pytest.raises(ValueError, match="k ≥ 2"):
        rloo_advantages(torch.zeros(3, 1))


def brute_force_gae(rewards, values, spans, gamma, lam):
    """Â_t = Σ_{u=t}^{end} (γλ)^{u−t} δ_u, δ_u = r_u + γ·V_{u+1} − V_u with V = 0 after the end."""
    n, length = rewards.shape
    advantages = [[0.0] * length for _ in range(n)]
    returns = [[0.0] * length for _ in range(n)]
    for i, (start, end) in enumerate(spans):
        r, v = rewards[i].tolist(), values[i].tolist()
        for t in range(start, end + 1):
            total = 0.0
            for u in range(t, end + 1):
                next_value = v[u + 1] if u < end else 0.0
                total += (gamma * lam) ** (u - t) * (r[u] + gamma * next_value - v[u])
            advantages[i][t] = total
            returns[i][t] = total + v[t]
    return torch.tensor(advantages, dtype=torch.float64), torch.tensor(returns, dtype=torch.float64)


@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (1.0, 1.0), (0.9, 0.0), (0.99, 0.5), (0.8, 0.9)])
def test_gae_matches_a_brute_force_double_loop(gamma, lam):
    generator = torch.Generator().manual_seed(3)
    spans = [(0, 6), (2, 6), (1, 3), (3, 3), (5, 6), (4, 5)]  # answers start (and end) at different columns
    mask = contiguous_mask(spans, 7)
    rewards = torch.randn(6, 7, generator=generator, dtype=torch.float64)
    values = torch.randn(6, 7, generator=generator, dtype=torch.float64)
    rewards[~mask] = 50.0  # garbage off the answer: must not leak in
    values[~mask] = -50.0
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    expected_advantages, expected_returns = brute_force_gae(rewards, values, spans, gamma, lam)
    torch.testing.assert_close(advantages, expected_advantages, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(returns, expected_returns, rtol=1e-12, atol=1e-12)


def expected_ppo(logprobs, old, advantages, mask, eps):
    """The clipped surrogate term by term in Python floats: (loss, clipfrac, approxkl, ratio, d loss/d logprobs)."""
    terms, clipped, kls, ratios = [], [], [], []
    count = int(mask.sum())
    grad = [[0.0] * logprobs.size(1) for _ in range(logprobs.size(0))]
    for i in range(logprobs.size(0)):
        for t in range(logprobs.size(1)):
            if not mask[i, t]:
                continue
            log_ratio = logprobs[i, t].item() - old[i, t].item()
            rho, a = math.exp(log_ratio), advantages[i, t].item()
            unclipped_term, clipped_term = -a * rho, -a * min(max(rho, 1 - eps), 1 + eps)
            terms.append(max(unclipped_term, clipped_term))
            clipped.append(clipped_term > unclipped_term)
            kls.append(0.5 * log_ratio ** 2)
            ratios.append(rho)
            # the clipped term, where it is the larger, is constant in θ: no gradient
            grad[i][t] = 0.0 if clipped_term > unclipped_term else -a * rho / count
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return mean(terms), mean(clipped), mean(kls), mean(ratios), torch.tensor(grad, dtype=torch.float64)


def test_ppo_clip_loss_binds_for_both_signs_of_the_advantage():
    """ε = 0.2. Columns: ρ = e^0.5 with Â = +1 (clipped: −1.2), ρ = e^−0.5 with Â = −2
    (clipped: 2·0.8 = 1.6), ρ = e^0.5 with Â = −1 (not clipped: e^0.5), ρ = e^−0.5 with Â = +1
    (not clipped: −e^−0.5), ρ = e^0.1 inside the range (−0.7·e^0.1), and one masked column."""
    old = torch.zeros(1, 6, dtype=torch.float64)
    logprobs = torch.tensor([[0.5, -0.5, 0.5, -0.5, 0.1, 3.0]], dtype=torch.float64, requires_grad=True)
    advantages = torch.tensor([[1.0, -2.0, -1.0, 1.0, 0.7, 5.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, True, False]])
    loss, stats = ppo_clip_loss(logprobs, old, advantages, mask, clip_range=0.2)
    by_hand = (-1.2 + 1.6 + math.exp(0.5) - math.exp(-0.5) - 0.7 * math.exp(0.1)) / 5
    assert loss.item() == pytest.approx(by_hand, abs=1e-12)
    assert stats["clipfrac"] == pytest.approx(2 / 5)
    assert stats["approxkl"] == pytest.approx(0.5 * (4 * 0.25 + 0.01) / 5)
    assert stats["ratio"] == pytest.approx((2 * math.exp(0.5) + 2 * math.exp(-0.5) + math.exp(0.1)) / 5)
    loss.backward()
    expected_grad = [0.0, 0.0, math.exp(0.5) / 5, -math.exp(-0.5) / 5, -0.7 * math.exp(0.1) / 5, 0.0]
    torch.testing.assert_close(logprobs.grad, torch.tensor([expected_grad], dtype=torch.float64))


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
def test_ppo_clip_loss_matches_the_formula_elementwise_in_float64(eps):
    generator = torch.Generator().manual_seed(4)
    spans = [(0, 9), (3, 9), (1, 4), (6, 6), (2, 8)]
    mask = contiguous_mask(spans, 10)
    old = -torch.rand(5, 10, generator=generator, dtype=torch.float64) * 3
    logprobs = (old + torch.randn(5, 10, generator=generator, dtype=torch.float64) * 0.4).requires_grad_()
    advantages = torch.randn(5, 10, generator=generator, dtype=torch.float64)
    loss, stats = ppo_clip_loss(logprobs, old, advantages, mask, clip_range=eps)
    e_loss, e_clipfrac, e_kl, e_ratio, e_grad = expected_ppo(logprobs, old, advantages, mask, eps)
    assert 0.1 < e_clipfrac < 0.9  # clipping binds somewhere, not everywhere
    assert loss.item() == pytest.approx(e_loss, abs=1e-12)
    assert stats["clipfrac"] == pytest.approx(e_clipfrac, abs=1e-6)  # a share, counted in float32
    assert stats["approxkl"] == pytest.approx(e_kl, abs=1e-12)
    assert stats["ratio"] == pytest.approx(e_ratio, abs=1e-12)
    loss.backward()
    torch.testing.assert_close(logprobs.grad, e_grad, rtol=1e-10, atol=1e-12)


def test_value_clip_loss_binds_when_the_value_moves_either_way():
    """ε_V = 0.2, V_old = 0.5. V = 1 (clipped to 0.7): G = 0 → max(1, 0.49) = 1 (not clipped);
    G = 2 → max(1, 1.69) = 1.69 (clipped). V = 0 (clipped to 0.3): G = 1 → max(1, 0.49) = 1;
    G = −1 → max(1, 1.69) = 1.69 (clipped). V = 0.6 inside: G = 0.6 → 0. One masked column."""
    values = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.6, 9.0]], dtype=torch.float64, requires_grad=True)
    old = torch.full((1, 6), 0.5, dtype=torch.float64)
    returns = torch.tensor([[0.0, 2.0, 1.0, -1.0, 0.6, -9.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, True, False]])
    loss, clipfrac = value_clip_loss(values, old, returns, mask, clip_range_value=0.2)
    assert loss.item() == pytest.approx(0.5 * (1.0 + 1.69 + 1.0 + 1.69 + 0.0) / 5, abs=1e-12)
    assert clipfrac == pytest.approx(2 / 5)
    loss.backward()  # where the clipped error is the larger, V is out of its range: no gradient
    torch.testing.assert_close(values.grad, torch.tensor([[1.0 / 5, 0.0, -1.0 / 5, 0.0, 0.0, 0.0]],
                                                         dtype=torch.float64))


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_value_clip_loss_matches_the_formula_elementwise_in_float64(eps):
    generator = torch.Generator().manual_seed(5)
    mask = contiguous_mask([(0, 7), (2, 7), (1, 3), (5, 5)], 8)
    old = torch.randn(4, 8, generator=generator, dtype=torch.float64)
    values = old + torch.randn(4, 8, generator=generator, dtype=torch.float64) * 0.6
    returns = torch.randn(4, 8, generator=generator, dtype=torch.float64)
    loss, clipfrac = value_clip_loss(values, old, returns, mask, clip_range_value=eps)
    terms, clipped = [], []
    for i in range(4):
        for t in range(8):
            if mask[i, t]:
                v, v_old, g = values[i, t].item(), old[i, t].item(), returns[i, t].item()
                v_clipped = v_old + min(max(v - v_old, -eps), eps)
                terms.append(max((v - g) ** 2, (v_clipped - g) ** 2))
                clipped.append((v_clipped - g) ** 2 > (v - g) ** 2)
    assert 0 < sum(clipped) < len(clipped)
    assert loss.item() == pytest.approx(0.5 * sum(terms) / len(terms), abs=1e-12)
    assert clipfrac == pytest.approx(sum(clipped) / len(clipped), abs=1e-6)  # a share, in float32


def test_whiten_gives_mean_zero_and_variance_one_over_the_mask():
    generator = torch.Generator().manual_seed(6)
    mask = contiguous_mask([(0, 9), (4, 9), (2, 5), (7, 7)], 10)
    values = torch.randn(4, 10, generator=generator, dtype=torch.float64) * 3 + 2
    values[~mask] = 1000.0  # off the mask: must change neither the mean nor the variance
    white = whiten(values, mask)
    kept = white[mask]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert (kept ** 2).mean().item() == pytest.approx(1.0, abs=1e-6)  # the population variance
    assert torch.all(white[~mask] == 0.0)
    raw = values[mask]
    expected = (raw - raw.mean()) / raw.std(unbiased=False)
    torch.testing.assert_close(kept, expected, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------- 4. the lecture's optimal policy, learned

V = 6
BETA = 0.5
PI_REF = torch.tensor([0.30, 0.25, 0.05, 0.20, 0.12, 0.08], dtype=torch.float64)
REWARD = torch.tensor([0.0, 0.4, 1.0, -0.6, 0.2, 0.7], dtype=torch.float64)
Z = (PI_REF * torch.exp(REWARD / BETA)).sum()
PI_STAR = PI_REF * torch.exp(REWARD / BETA) / Z  # the lecture's closed form
J_STAR = BETA * math.log(Z.item())  # max J = β log Z: every answer's r − β log π*/π_ref equals it


class BanditPolicy(nn.Module):
    """π_θ(y) = softmax(θ)_y for the one answer token, whatever the prompt: logits (B, T, V)."""

    def __init__(self, log_probs):
        super().__init__()
        self.theta = nn.Parameter(log_probs.clone().float())

    def forward(self, input_ids):
        return self.theta.expand(*input_ids.shape, V), None

    def log_probs(self):
        return self.theta.detach().double().log_softmax(-1)


class BanditValue(nn.Module):
    """V(s_t): one scalar per previous token (the prompt token 0 for the state before the answer)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(V))

    def values(self, input_ids):
        return self.w[input_ids]  # (B, T)


def total_variation(log_p, q):
    return 0.5 * (log_p.exp() - q).abs().sum().item()


def bandit_rollouts(policy, reference, n, generator, value_model=None, old_logprobs=False):
    """n one-token answers y ~ softmax(θ) to the prompt [0], laid out as align.rollouts does."""
    with torch.no_grad():
        y = torch.multinomial(policy.theta.softmax(-1), n, replacement=True, generator=generator)  # (n,)
        input_ids = torch.stack([torch.zeros_like(y), y], dim=1)  # (n, 2)
        labels = torch.stack([torch.full_like(y, -100), y], dim=1)  # (n, 2)
        ref_logprobs, mask = policy_logprobs(reference, input_ids, labels, "cpu")  # (n, 1)
        logprobs = policy_logprobs(policy, input_ids, labels, "cpu")[0] if old_logprobs else None
        values = None
        if value_model is not None:
            values = torch.where(mask, value_model.values(input_ids)[:, :-1].float(), 0.0)
    samples = [Sample("bandit", [0], [a], str(a), True) for a in y.tolist()]
    return Rollouts(samples, input_ids, labels, mask, logprobs, ref_logprobs, REWARD.float()[y],
                    torch.ones(n, dtype=torch.bool), values)


def reference_policy():
    return BanditPolicy(PI_REF.log()).requires_grad_(False).eval()


def test_the_bandit_layout_gives_the_log_probs_of_the_answer_token():
    policy, reference = BanditPolicy(PI_STAR.log()), reference_policy()
    rollouts = bandit_rollouts(policy, reference, 50, torch.Generator().manual_seed(0), old_logprobs=True)
    y = rollouts.input_ids[:, 1]
    assert rollouts.mask.shape == (50, 1) and rollouts.mask.all()
    torch.testing.assert_close(rollouts.ref_logprobs[:, 0], PI_REF.log().float()[y])
    torch.testing.assert_close(rollouts.logprobs[:, 0], PI_STAR.log().float()[y])


@pytest.mark.parametrize("optimizer_name, lr, grad_clip", [("sgd", 0.5, 0.0), ("adam", 0.05, 1.0)])
def test_rloo_finds_the_lectures_optimal_policy(optimizer_name, lr, grad_clip):
    """RLOO on the bandit (V = 6, β = 0.5, 16 prompts × k = 4 answers a step, 300 steps,
    constant learning rate) ends at π* = π_ref·exp(r/β)/Z: total variation < 0.01 (a β off
    by 10% gives 0.03) and max_y |log π(y) − log π*(y)| < 0.05, while TV(π_ref, π*) ≈ 0.32
    (and the learned π must be more than 0.25 from π_ref). At π* every answer's return r − β log π*/π_ref equals
    β log Z, so the advantages, and the noise, vanish there: no decay is needed, and the
    step's objective/rlhf_reward is then J* = β log Z (to 0.01)."""
    assert total_variation(PI_REF.log(), PI_STAR) > 0.3  # the control: π* is far from π_ref
    torch.manual_seed(0)
    policy, reference = BanditPolicy(PI_REF.log()), reference_policy()
    config = RLHFConfig(beta=BETA, rloo_k=4, batch_size=16, grad_clip=grad_clip)
    parameters = [policy.theta]
    optimizer = (torch.optim.SGD(parameters, lr=lr) if optimizer_name == "sgd"
                 else torch.optim.Adam(parameters, lr=lr))
    generator = torch.Generator().manual_seed(1)
    for _ in range(300):
        rollouts = bandit_rollouts(policy, reference, config.batch_size * config.rloo_k, generator)
        metrics = rloo_update(policy, rollouts, config, optimizer, parameters, "cpu")
    log_pi = policy.log_probs()
    tv, worst = total_variation(log_pi, PI_STAR), (log_pi - PI_STAR.log()).abs().max().item()
    print(f"\nRLOO ({optimizer_name}): TV(π, π*) {tv:.5f}, max |log π − log π*| {worst:.4f}, "
          f"TV(π, π_ref) {total_variation(log_pi, PI_REF):.3f}, "
          f"rlhf_reward {metrics['objective/rlhf_reward']:.4f} vs β log Z {J_STAR:.4f}")
    assert tv < 0.01
    assert worst < 0.05
    assert total_variation(log_pi, PI_REF) > 0.25
    assert metrics["objective/rlhf_reward"] == pytest.approx(J_STAR, abs=0.01)
    assert metrics["policy/approxkl_avg"] == 0.0 and metrics["val/ratio"] == 1.0


def test_ppo_finds_the_lectures_optimal_policy():
    """PPO on the bandit (V = 6, β = 0.5, 64 rollouts a step, 2 epochs × 2 minibatches,
    Adam, learning rate 0.05 decaying linearly to 0.0025 over 400 steps, grad_clip 1) ends at
    π* within total variation 0.01 and max_y |log π(y) − log π*(y)| < 0.05, more than 0.25
    from π_ref (a β off by 10% would put π 0.03 from π*). The decay is needed because PPO
    whitens its advantages: near π* the returns differ little, but whitening scales them back
    to variance 1, so the step does not shrink by itself. The value head at the prompt learns E[return] = J* = β log Z (to 0.02)."""
    torch.manual_seed(0)
    policy, reference, value_model = BanditPolicy(PI_REF.log()), reference_policy(), BanditValue()
    config = RLHFConfig(algorithm="ppo", beta=BETA, rloo_k=1, batch_size=64, grad_clip=1.0,
                        num_ppo_epochs=2, num_mini_batches=2)
    parameters = [policy.theta, value_model.w]
    lr, steps = 0.05, 400
    optimizer = torch.optim.Adam(parameters, lr=lr)
    generator, minibatch_order = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * (1 - 0.95 * step / steps)
        rollouts = bandit_rollouts(policy, reference, config.batch_size, generator, value_model,
                                   old_logprobs=True)
        metrics = ppo_update(policy, ValueHead(value_model), rollouts, config, optimizer,
                             parameters, "cpu", minibatch_order)
    log_pi = policy.log_probs()
    tv, worst = total_variation(log_pi, PI_STAR), (log_pi - PI_STAR.log()).abs().max().item()
    print(f"\nPPO: TV(π, π*) {tv:.5f}, max |log π − log π*| {worst:.4f}, "
          f"TV(π, π_ref) {total_variation(log_pi, PI_REF):.3f}, "
          f"V(prompt) {value_model.w[0].item():.4f} vs β log Z {J_STAR:.4f}")
    assert tv < 0.01
    assert worst < 0.05
    assert total_variation(log_pi, PI_REF) > 0.25
    assert value_model.w[0].item() == pytest.approx(J_STAR, abs=0.02)
    assert metrics["objective/rlhf_reward"] == pytest.approx(J_STAR, abs=0.02)


# ------------------------------------------------------------- 5. the reported KL is the exact KL

THETA = torch.tensor([0.3, -0.2, 1.1, -1.0, 0.0, 0.6], dtype=torch.float64)  # some π_θ ≠ π_ref


def exact_bandit_kl(log_pi):
    """KL(π‖π_ref) = Σ_y π(y) log π(y)/π_ref(y): every answer enumerated, float64."""
    return sum(math.exp(log_pi[y]) * (log_pi[y] - math.log(PI_REF[y])) for y in range(V))


def test_token_kl_is_the_brute_force_kl_and_never_negative():
    generator = torch.Generator().manual_seed(7)
    B, T, vocab = 4, 6, 5
    p_logits = torch.randn(B, T, vocab, generator=generator, dtype=torch.float64) * 2
    q_logits = torch.randn(B, T, vocab, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, vocab, (B, T), generator=generator)
    labels[0, :2] = -100
    labels[1, 4:] = -100
    labels[2, :] = -100
    got = token_kl(p_logits, q_logits, labels)
    for b in range(B):
        expected = 0.0
        for t in range(T - 1):
            if labels[b, t + 1] == -100:
                continue
            p = torch.softmax(p_logits[b, t], -1).tolist()
            q = torch.softmax(q_logits[b, t], -1).tolist()
            expected += sum(p[v] * math.log(p[v] / q[v]) for v in range(vocab))
        assert got[b].item() == pytest.approx(expected, abs=1e-12)
    assert torch.all(got >= 0.0) and got[2].item() == 0.0
    assert torch.all(token_kl(p_logits, p_logits, labels).abs() < 1e-12)  # KL(π‖π) = 0


def test_per_sample_kl_on_the_bandit_is_the_exact_kl_for_every_answer():
    """One answer token: Σ_t KL_t is KL(π‖π_ref) itself, for every answer, and the log-ratio
    is log π(y) − log π_ref(y); their π-weighted mean is the exact KL too."""
    policy, reference = BanditPolicy(THETA.log_softmax(-1)), reference_policy()
    log_pi = THETA.log_softmax(-1).tolist()
    exact = exact_bandit_kl(log_pi)
    assert exact > 0.1
    samples = [Sample("bandit", [0], [y], str(y), True) for y in range(V)]
    log_ratios, token_kls = per_sample_kl(policy, reference, samples, pad_id=0, device="cpu")
    assert token_kls == pytest.approx([exact] * V, abs=1e-6)
    assert log_ratios == pytest.approx([log_pi[y] - math.log(PI_REF[y]) for y in range(V)], abs=1e-6)
    assert sum(math.exp(log_pi[y]) * log_ratios[y] for y in range(V)) == pytest.approx(exact, abs=1e-6)
    report = kl_report(policy, reference, samples, pad_id=0, device="cpu")
    assert report["kl_exact_per_token"] == pytest.approx(exact, abs=1e-6)
    assert report["kl_exact_per_token_ci"] == pytest.approx(0.0, abs=1e-6)


def test_rollout_metrics_kl_approaches_the_exact_kl():
    """objective/kl over N = 20 000 rollouts y ~ π_θ lies within 4 standard errors of the exact
    KL(π‖π_ref) (the standard error from the exact variance of log π/π_ref under π), and so
    does objective/entropy around the exact entropy; the other objective/ metrics are their
    definitions on the same rollouts exactly."""
    policy, reference = BanditPolicy(THETA.log_softmax(-1)), reference_policy()
    n = 20_000
    rollouts = bandit_rollouts(policy, reference, n, torch.Generator().manual_seed(8), old_logprobs=True)
    metrics = rollout_metrics(rollouts, rollouts.logprobs, BETA)
    log_pi = THETA.log_softmax(-1).tolist()
    pi = [math.exp(v) for v in log_pi]
    ratios = [log_pi[y] - math.log(PI_REF[y]) for y in range(V)]
    exact = sum(p * r for p, r in zip(pi, ratios))
    kl_se = math.sqrt(sum(p * (r - exact) ** 2 for p, r in zip(pi, ratios)) / n)
    entropy = -sum(p * lp for p, lp in zip(pi, log_pi))
    entropy_se = math.sqrt(sum(p * (-lp - entropy) ** 2 for p, lp in zip(pi, log_pi)) / n)
    print(f"\nobjective/kl {metrics['objective/kl']:.4f} vs exact {exact:.4f} ± {kl_se:.4f} (1 s.e.)")
    assert exact > 0.1
    assert abs(metrics["objective/kl"] - exact) < 4 * kl_se
    assert abs(metrics["objective/entropy"] - entropy) < 4 * entropy_se
    y = rollouts.input_ids[:, 1]
    scores = REWARD[y].mean().item()
    assert metrics["objective/scores"] == pytest.approx(scores, abs=1e-5)
    assert metrics["objective/non_score_reward"] == pytest.approx(-BETA * metrics["objective/kl"], abs=1e-5)
    assert metrics["objective/rlhf_reward"] == pytest.approx(scores - BETA * metrics["objective/kl"], abs=1e-5)
    assert metrics["val/num_eos_tokens"] == n
