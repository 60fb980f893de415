"""Checks for the RL formulas of RLHF (lesson 11): per-token rewards, RLOO, GAE, PPO's clip.

The batches are laid out as `align.rollouts` lays them out: (N, L), `mask` True on the
answer's tokens, which sit after a prompt of False columns and before padding, and whose
starts and lengths differ from row to row. The values off the mask are garbage, so that
a version that reads them fails. The expected numbers are the formulas written out with
Python floats, one row and one token at a time: the per-token rewards by a per-row loop,
RLOO's baseline by an explicit leave-one-out mean, GAE by the double sum Σ_l (γλ)^l δ_{t+l}
and its closed forms at λ = 1 and λ = 0, PPO's loss, gradient and stats token by token.
"""

import itertools
import math

import torch

from exercises.grading import CheckFailed, check, expect, expect_close

# Answers of 5, 1, 7, 3 and 4 tokens after prompts of 2, 4, 1, 3 and 0 columns, in rows of
# L = 8 columns: row 1 has one answer token, row 2 ends at the last column, row 4 has no prompt.
STARTS, LENGTHS, L = (2, 4, 1, 3, 0), (5, 1, 7, 3, 4), 8


def answer_mask(starts=STARTS, lengths=LENGTHS, columns=L) -> torch.Tensor:
    """(N, L) True on each row's answer tokens: columns start .. start + length − 1."""
    mask = torch.zeros(len(starts), columns, dtype=torch.bool)
    for row, (start, length) in enumerate(zip(starts, lengths)):
        mask[row, start : start + length] = True
    return mask


def answer_columns(mask: torch.Tensor, row: int) -> list[int]:
    return [t for t in range(mask.size(1)) if mask[row, t]]


def random_tokens(seed, shape=(len(STARTS), L), scale=1.0, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, dtype=torch.float64, generator=generator) * scale + shift


def inputs_unchanged(tensors: dict, function, *args, **kwargs):
    """Call function(*args, **kwargs); fail if any of tensors {name: tensor} changed in place."""
    before = {name: tensor.clone() for name, tensor in tensors.items()}
    out = function(*args, **kwargs)
    for name, tensor in tensors.items():
        expect(torch.equal(tensor, before[name]), f"{name} was changed in place; compute into a new tensor")
    return out


# -------------------------------------------------------------------- kl_penalized_rewards
def rewards_inputs(seed=0):
    """logprobs, ref_logprobs (N, L) float64 log-probs (≤ 0), scores (N,), mask (N, L)."""
    logprobs = -random_tokens(seed).abs() - 0.1
    ref_logprobs = -random_tokens(seed + 100).abs() - 0.1
    scores = random_tokens(seed + 200, shape=(len(STARTS),), scale=2.0)
    return logprobs, ref_logprobs, scores, answer_mask()


def rewards_by_loop(logprobs, ref_logprobs, scores, mask, beta):
    """One row at a time: −β·(log π_θ − log π_ref) on the answer, + r_φ on its last token, 0 elsewhere."""
    expected = [[0.0] * mask.size(1) for _ in range(mask.size(0))]
    for row in range(mask.size(0)):
        columns = answer_columns(mask, row)
        for t in columns:
            expected[row][t] = -beta * (logprobs[row, t].item() - ref_logprobs[row, t].item())
        expected[row][columns[-1]] += scores[row].item()
    return torch.tensor(expected, dtype=torch.float64)


@check("kl_penalized_rewards", "shape", "returns an (N, L) tensor of rewards, one per column, like the log-probs")
def rewards_shape(kl_penalized_rewards):
    out = kl_penalized_rewards(*rewards_inputs(), 0.1)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (len(STARTS), L),
           f"expected an (N, L) = {(len(STARTS), L)} tensor, got "
           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")


@check("kl_penalized_rewards", "values", "a per-row loop: −β·(log π_θ − log π_ref) on each answer token, "
       "+ r_φ on the last one, for β = 0.05, 0.5, 2")
def rewards_values(kl_penalized_rewards):
    for seed, beta in enumerate((0.05, 0.5, 2.0)):
        logprobs, ref_logprobs, scores, mask = rewards_inputs(seed)
        expect_close(kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, beta),
                     rewards_by_loop(logprobs, ref_logprobs, scores, mask, beta),
                     f"the rewards with β = {beta}", atol=1e-12)


@check("kl_penalized_rewards", "property", "r_φ goes on each row's own last answer token (answers of "
       "different lengths after prompts of different lengths), and only there")
def rewards_score_position(kl_penalized_rewards):
    logprobs, _, scores, mask = rewards_inputs(3)
    out = kl_penalized_rewards(logprobs, logprobs.clone(), scores, mask, 0.7)  # π_θ = π_ref: no penalty
    for row in range(mask.size(0)):
        last = answer_columns(mask, row)[-1]
        nonzero = [t for t in range(mask.size(1)) if out[row, t] != 0]
        expect(nonzero == [last] and abs(out[row, last].item() - scores[row].item()) < 1e-12,
               f"row {row}, answer in columns {answer_columns(mask, row)}: with π_θ = π_ref the rewards "
               f"are {[round(v, 4) for v in out[row].tolist()]}, expected r_φ = {scores[row].item():.4f} in "
               f"column {last} (its last True column) and 0 elsewhere")


@check("kl_penalized_rewards", "property", "0 off the mask (the prompt, the padding), whatever the log-probs there")
def rewards_off_the_mask(kl_penalized_rewards):
    logprobs, ref_logprobs, scores, mask = rewards_inputs(4)
    logprobs = torch.where(mask, logprobs, -50.0)  # garbage where no answer token is
    ref_logprobs = torch.where(mask, ref_logprobs, 3.0)
    out = kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, 0.5)
    off = out.masked_select(~mask)
    expect(bool((off == 0).all()), f"off the answer the rewards should be 0, got values up to "
           f"{off.abs().max().item():.4g}: use torch.where(mask, ..., 0)")


@check("kl_penalized_rewards", "property", "Σ_t r_t = r_φ(x, y) − β·log π_θ(y|x)/π_ref(y|x) for each answer")
def rewards_sum(kl_penalized_rewards):
    logprobs, ref_logprobs, scores, mask = rewards_inputs(5)
    beta = 0.3
    out = kl_penalized_rewards(logprobs, ref_logprobs, scores, mask, beta)
    sequence_log_ratio = torch.where(mask, logprobs - ref_logprobs, 0.0).sum(-1)  # (N,)
    expect_close(out.sum(-1), scores - beta * sequence_log_ratio,
                 "Σ_t r_t against r_φ − β·Σ_t (log π_θ − log π_ref)", atol=1e-12)


@check("kl_penalized_rewards", "property", "changes none of its inputs")
def rewards_inputs_unchanged(kl_penalized_rewards):
    logprobs, ref_logprobs, scores, mask = rewards_inputs(6)
    inputs_unchanged({"logprobs": logprobs, "ref_logprobs": ref_logprobs, "scores": scores, "mask": mask},
                     kl_penalized_rewards, logprobs, ref_logprobs, scores, mask, 0.2)


# ------------------------------------------------------------------------- rloo_advantages
def leave_one_out_by_loop(returns):
    """A_i = R_i − (1/(k−1))·Σ_{j≠i} R_j, one prompt and one answer at a time."""
    rows = returns.tolist()
    return torch.tensor([[r_i - sum(r for j, r in enumerate(row) if j != i) / (len(row) - 1)
                          for i, r_i in enumerate(row)] for row in rows], dtype=torch.float64)


@check("rloo_advantages", "shape", "returns (P, k) advantages for (P, k) returns")
def rloo_shape(rloo_advantages):
    out = rloo_advantages(random_tokens(0, shape=(3, 4)))
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (3, 4), "expected a (P, k) = (3, 4) tensor, got "
           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")


@check("rloo_advantages", "values", "an explicit loop: R_i minus the mean of the other k − 1 returns, for k = 2, 3, 5")
def rloo_values(rloo_advantages):
    for seed, k in enumerate((2, 3, 5)):
        returns = random_tokens(seed, shape=(4, k), scale=3.0)
        expect_close(rloo_advantages(returns), leave_one_out_by_loop(returns), f"the advantages with k = {k}",
                     atol=1e-12)


@check("rloo_advantages", "property", "A_i = k/(k−1)·(R_i − mean_j R_j), and Σ_i A_i = 0 for each prompt")
def rloo_identity(rloo_advantages):
    returns = random_tokens(7, shape=(5, 4), scale=2.0, shift=1.0)
    out = rloo_advantages(returns)
    expect_close(out, 4 / 3 * (returns - returns.mean(dim=1, keepdim=True)), "A against k/(k−1)·(R − mean R)",
                 atol=1e-12)
    expect_close(out.sum(dim=1), torch.zeros(5, dtype=torch.float64), "Σ_i A_i of each prompt", atol=1e-12)


@check("rloo_advantages", "property", "adding a constant to one prompt's returns changes no advantage; "
       "the prompts do not mix")
def rloo_per_prompt(rloo_advantages):
    returns = random_tokens(8, shape=(3, 4))
    shifted = returns + torch.tensor([[100.0], [-7.0], [0.0]], dtype=torch.float64)
    expect_close(rloo_advantages(shifted), rloo_advantages(returns),
                 "the advantages after adding 100, −7 and 0 to the three prompts' returns", atol=1e-10)
    first = rloo_advantages(returns[:1])
    expect_close(first, rloo_advantages(returns)[:1], "the first prompt's advantages, alone and in a batch",
                 atol=1e-12)


@check("rloo_advantages", "property", "a (P, 1) or 1-D input raises ValueError (the baseline needs k ≥ 2 "
       "answers per prompt); no input is changed")
def rloo_errors(rloo_advantages):
    for bad in (torch.ones(3, 1), torch.ones(4)):
        try:
            rloo_advantages(bad)
        except ValueError:
            continue
        raise CheckFailed(f"returns of shape {tuple(bad.shape)} should raise ValueError: with one answer per "
                          "prompt there are no other answers to average (with a 1-D input, no prompts)")
    returns = random_tokens(9, shape=(2, 3))
    inputs_unchanged({"returns": returns}, rloo_advantages, returns)


BANDIT_REWARDS = (1.0, 0.5, 0.0)
BANDIT_REFERENCE = (0.2, 0.5, 0.3)


@check("rloo_advantages", "model", "RLOO's expected gradient, summed over every k-tuple of answers, brings a "
       "3-answer bandit to π* = π_ref·exp(r/β)/Z")
def rloo_bandit(rloo_advantages):
    # One prompt, three one-token answers with r = (1, 0.5, 0). The return of an answer is
    # r − β·log π_θ(a)/π_ref(a) (its per-token rewards summed); the update is the RLOO loss
    # weighted by the probability of each k-tuple, so its gradient is the exact expectation
    # of the RLOO gradient: −∇J, whose maximiser is π*.
    beta, k = 0.5, 3
    r = torch.tensor(BANDIT_REWARDS, dtype=torch.float64)
    log_ref = torch.log(torch.tensor(BANDIT_REFERENCE, dtype=torch.float64))
    tuples = torch.tensor(list(itertools.product(range(3), repeat=k)))  # (27, k) every k answers
    theta = log_ref.clone().requires_grad_(True)  # π_θ = softmax(θ) starts at π_ref
    optimizer = torch.optim.Adam([theta], lr=0.1)
    for _ in range(400):
        log_pi = torch.log_softmax(theta, dim=0)
        chosen = log_pi[tuples]  # (27, k) log π_θ of each answer
        weights = chosen.detach().sum(dim=1).exp()  # (27,) the probability of the tuple
        returns = r[tuples] - beta * (chosen.detach() - log_ref[tuples])  # (27, k)
        advantages = rloo_advantages(returns)  # one "prompt" per tuple
        loss = -(weights[:, None] * advantages.detach() * chosen).sum() / k
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    pi = torch.softmax(theta.detach(), dim=0)
    expect_close(pi, torch.softmax(log_ref + r / beta, dim=0), "π_θ after RLOO (expected π*)", atol=1e-6)


# ------------------------------------------------------------------------------------- gae
def gae_inputs(seed=0):
    """rewards, values (N, L) float64 with garbage off the answer, and the mask."""
    mask = answer_mask()
    rewards = torch.where(mask, random_tokens(seed), 30.0)  # garbage on the prompt and the padding
    values = torch.where(mask, random_tokens(seed + 100), -20.0)
    return rewards, values, mask


def gae_by_double_loop(rewards, values, mask, gamma, lam):
    """Â_t = Σ_{l ≥ 0} (γλ)^l δ_{t+l} over the rest of the answer, δ_t = r_t + γ·V_{t+1} − V_t,
    with V = 0 after the answer's last token. Returns (advantages, returns), 0 off the answer."""
    advantages = [[0.0] * mask.size(1) for _ in range(mask.size(0))]
    returns = [[0.0] * mask.size(1) for _ in range(mask.size(0))]
    for row in range(mask.size(0)):
        columns = answer_columns(mask, row)
        r = [rewards[row, t].item() for t in columns]
        v = [values[row, t].item() for t in columns] + [0.0]  # the episode is over after the last token
        delta = [r[i] + gamma * v[i + 1] - v[i] for i in range(len(columns))]
        for i, t in enumerate(columns):
            advantages[row][t] = sum((gamma * lam) ** l * delta[i + l] for l in range(len(columns) - i))
            returns[row][t] = advantages[row][t] + v[i]
    return torch.tensor(advantages, dtype=torch.float64), torch.tensor(returns, dtype=torch.float64)


def call_gae(gae, *args, **kwargs):
    out = gae(*args, **kwargs)
    expect(isinstance(out, tuple) and len(out) == 2, "expected a tuple (advantages, returns)")
    return out


@check("gae", "shape", "returns (advantages (N, L), returns (N, L))")
def gae_shape(gae):
    advantages, returns = call_gae(gae, *gae_inputs(), 1.0, 0.95)
    for name, out in (("advantages", advantages), ("returns", returns)):
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (len(STARTS), L),
               f"{name}: expected an (N, L) = {(len(STARTS), L)} tensor, got "
               f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")


@check("gae", "values", "a double loop Â_t = Σ_l (γλ)^l δ_{t+l}, V = 0 after the last answer token, "
       "for (γ, λ) = (1, 0.95), (0.9, 0.8), (0.99, 0.5)")
def gae_values(gae):
    for seed, (gamma, lam) in enumerate(((1.0, 0.95), (0.9, 0.8), (0.99, 0.5))):
        rewards, values, mask = gae_inputs(seed)
        advantages, _ = call_gae(gae, rewards, values, mask, gamma, lam)
        expected, _ = gae_by_double_loop(rewards, values, mask, gamma, lam)
        expect_close(advantages, expected, f"the advantages with γ = {gamma}, λ = {lam}", atol=1e-10)


@check("gae", "values", "λ = 1: Â_t = G_t − V_t, with G_t = Σ_l γ^l r_{t+l} the return-to-go (γ = 1 and 0.9)")
def gae_lambda_one(gae):
    rewards, values, mask = gae_inputs(3)
    for gamma in (1.0, 0.9):
        expected = torch.zeros_like(rewards)
        for row in range(mask.size(0)):
            columns = answer_columns(mask, row)
            for i, t in enumerate(columns):
                to_go = sum(gamma ** l * rewards[row, u].item() for l, u in enumerate(columns[i:]))
                expected[row, t] = to_go - values[row, t].item()
        advantages, _ = call_gae(gae, rewards, values, mask, gamma, 1.0)
        expect_close(advantages, expected, f"the advantages with λ = 1, γ = {gamma} (the Monte-Carlo "
                     "return minus V)", atol=1e-10)


@check("gae", "values", "λ = 0: Â_t = δ_t = r_t + γ·V_{t+1} − V_t, and at the last token r_t − V_t")
def gae_lambda_zero(gae):
    rewards, values, mask = gae_inputs(4)
    gamma = 0.9
    expected = torch.zeros_like(rewards)
    for row in range(mask.size(0)):
        columns = answer_columns(mask, row)
        for i, t in enumerate(columns):
            next_value = values[row, columns[i + 1]].item() if i + 1 < len(columns) else 0.0
            expected[row, t] = rewards[row, t].item() + gamma * next_value - values[row, t].item()
    advantages, _ = call_gae(gae, rewards, values, mask, gamma, 0.0)
    expect_close(advantages, expected, f"the advantages with λ = 0, γ = {gamma} (one-step TD errors)", atol=1e-10)


@check("gae", "property", "returns = Â + V on the answer; both are 0 off it (the prompt, the padding)")
def gae_returns(gae):
    rewards, values, mask = gae_inputs(5)
    advantages, returns = call_gae(gae, rewards, values, mask, 1.0, 0.95)
    expect(bool((advantages.masked_select(~mask) == 0).all()) and bool((returns.masked_select(~mask) == 0).all()),
           "off the answer the advantages and returns should be 0: use torch.where(mask, ..., 0)")
    expect_close(returns, torch.where(mask, advantages + values, 0.0), "returns against Â + V on the answer",
                 atol=1e-10)
    _, expected = gae_by_double_loop(rewards, values, mask, 1.0, 0.95)
    expect_close(returns, expected, "the returns G_t = Â_t + V_t", atol=1e-10)


@check("gae", "property", "the rewards and values off the answer change nothing; no input is changed")
def gae_ignores_off_the_mask(gae):
    rewards, values, mask = gae_inputs(6)
    clean = call_gae(gae, torch.where(mask, rewards, 0.0), torch.where(mask, values, 0.0), mask, 0.95, 0.9)
    noisy = inputs_unchanged({"rewards": rewards, "values": values, "mask": mask}, call_gae, gae,
                             rewards, values, mask, 0.95, 0.9)
    for name, a, b in zip(("advantages", "returns"), noisy, clean):
        expect_close(a, b, f"{name} with garbage in the prompt's and the padding's rewards and values "
                     "(expected: as with 0 there; after the last token V = 0)", atol=1e-10)


# --------------------------------------------------------------------------- ppo_clip_loss
# (ρ, Â) for the 20 answer tokens of the mask: every case of the clip, with ρ away from
# 1 ± ε for the ε used here (0.15, 0.2, 0.28): Â > 0 and ρ > 1 + ε (the clip binds), Â > 0
# and ρ < 1 − ε (it does not), Â < 0 and ρ < 1 − ε (binds), Â < 0 and ρ > 1 + ε (does
# not), ρ inside the range.
CASES = [(1.3, 1.0), (1.5, 2.0), (0.6, 0.5), (0.7, 1.5), (0.5, -1.0), (0.75, -0.3), (1.4, -2.0), (1.6, -0.5),
         (1.05, 0.8), (0.9, -1.2), (1.1, 0.0), (1.25, 0.7), (0.7, -0.2), (0.95, 1.1), (1.0, -0.4), (1.35, 0.4),
         (0.55, -1.5), (1.7, 0.9), (0.65, 1.3), (1.12, -0.9)]


def ppo_inputs(seed=0):
    """logprobs, old_logprobs, advantages (N, L) float64 (garbage off the mask), the mask."""
    mask = answer_mask()
    ratio = torch.full(mask.shape, 1.0, dtype=torch.float64)
    advantages = torch.zeros(mask.shape, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(CASES), generator=generator).tolist()
    for i, (row, t) in enumerate(mask.nonzero().tolist()):
        ratio[row, t], advantages[row, t] = CASES[order[i % len(CASES)]]
    old_logprobs = -random_tokens(seed).abs() - 0.5
    logprobs = old_logprobs + ratio.log()
    off = ~mask  # garbage where no answer token is
    logprobs = torch.where(off, old_logprobs + 2.0, logprobs)
    advantages = torch.where(off, 5.0, advantages)
    return logprobs, old_logprobs, advantages, mask


def ppo_by_loop(logprobs, old_logprobs, advantages, mask, eps):
    """(loss, clipfrac, approxkl, mean ratio), token by token over the answer."""
    terms, clipped_count, kl, ratios = [], 0, [], []
    for row, t in mask.nonzero().tolist():
        log_ratio = logprobs[row, t].item() - old_logprobs[row, t].item()
        rho, A = math.exp(log_ratio), advantages[row, t].item()
        unclipped, clipped = -A * rho, -A * min(max(rho, 1 - eps), 1 + eps)
        terms.append(max(unclipped, clipped))
        clipped_count += clipped > unclipped
        kl.append(0.5 * log_ratio ** 2)
        ratios.append(rho)
    n = len(terms)
    return sum(terms) / n, clipped_count / n, sum(kl) / n, sum(ratios) / n


def call_ppo(ppo_clip_loss, *args, **kwargs):
    out = ppo_clip_loss(*args, **kwargs)
    expect(isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict),
           "expected a tuple (loss, stats) with stats a dict")
    return out


@check("ppo_clip_loss", "shape", "returns (a 0-d loss, stats) with stats' clipfrac, approxkl and ratio Python floats")
def ppo_shape(ppo_clip_loss):
    loss, stats = call_ppo(ppo_clip_loss, *ppo_inputs(), 0.2)
    expect(isinstance(loss, torch.Tensor) and loss.dim() == 0, "the loss: expected a 0-d tensor, got "
           f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}")
    for key in ("clipfrac", "approxkl", "ratio"):
        expect(key in stats, f"stats has no {key!r}: expected the keys clipfrac, approxkl, ratio")
        expect(isinstance(stats[key], float), f"stats[{key!r}] is a {type(stats[key]).__name__}, expected a "
               "Python float (.item())")


@check("ppo_clip_loss", "values", "token by token: mean over the answer of max(−Â·ρ, −Â·clip(ρ, 1 − ε, 1 + ε)), "
       "the clip binding for Â > 0 and Â < 0, for ε = 0.2 and 0.15")
def ppo_values(ppo_clip_loss):
    for seed, eps in enumerate((0.2, 0.15)):
        logprobs, old_logprobs, advantages, mask = ppo_inputs(seed)
        loss, _ = call_ppo(ppo_clip_loss, logprobs, old_logprobs, advantages, mask, eps)
        expected = ppo_by_loop(logprobs, old_logprobs, advantages, mask, eps)[0]
        expect_close(loss, torch.tensor(expected, dtype=torch.float64), f"the loss with ε = {eps}", atol=1e-12)


@check("ppo_clip_loss", "gradient", "∂loss/∂log π_θ = −Â_t·ρ_t/n where the unclipped term counts; 0 where "
       "the clip binds (ρ past 1 ± ε in Â's direction) and off the answer")
def ppo_gradient(ppo_clip_loss):
    logprobs, old_logprobs, advantages, mask = ppo_inputs(2)
    eps = 0.2
    logprobs.requires_grad_(True)
    loss, _ = call_ppo(ppo_clip_loss, logprobs, old_logprobs, advantages, mask, eps)
    loss.backward()
    expect(logprobs.grad is not None, "no gradient reached logprobs: is something detached?")
    n = int(mask.sum())
    expected = torch.zeros_like(old_logprobs)
    for row, t in mask.nonzero().tolist():
        rho, A = math.exp(logprobs[row, t].item() - old_logprobs[row, t].item()), advantages[row, t].item()
        clip_binds = (A > 0 and rho > 1 + eps) or (A < 0 and rho < 1 - eps)
        expected[row, t] = 0.0 if clip_binds else -A * rho / n
    expect_close(logprobs.grad, expected, "∂loss/∂log π_θ", atol=1e-12)


@check("ppo_clip_loss", "values", "stats: clipfrac (share of answer tokens where the clipped term is larger), "
       "approxkl = ½·mean (log ρ)², ratio = mean ρ")
def ppo_stats(ppo_clip_loss):
    for seed, eps in enumerate((0.2, 0.28)):
        logprobs, old_logprobs, advantages, mask = ppo_inputs(seed + 3)
        _, stats = call_ppo(ppo_clip_loss, logprobs, old_logprobs, advantages, mask, eps)
        _, clipfrac, approxkl, ratio = ppo_by_loop(logprobs, old_logprobs, advantages, mask, eps)
        for key, value in (("clipfrac", clipfrac), ("approxkl", approxkl), ("ratio", ratio)):
            expect(abs(stats[key] - value) < 1e-6, f"stats[{key!r}] with ε = {eps}: yours {stats[key]:.10g}, "
                   f"expected {value:.10g} (over the answer tokens only)")


@check("ppo_clip_loss", "property", "on-policy (π_θ = π_θ_old): loss = −mean Â, its gradient −Â/n, "
       "clipfrac 0, approxkl 0, ratio 1")
def ppo_on_policy(ppo_clip_loss):
    _, old_logprobs, advantages, mask = ppo_inputs(5)
    logprobs = old_logprobs.clone().requires_grad_(True)
    loss, stats = call_ppo(ppo_clip_loss, logprobs, old_logprobs, advantages, mask, 0.2)
    n = int(mask.sum())
    expect_close(loss, -advantages.masked_select(mask).mean(), "the loss at ρ = 1", atol=1e-12)
    loss.backward()
    expect(logprobs.grad is not None, "no gradient reached logprobs: is something detached?")
    expect_close(logprobs.grad, torch.where(mask, -advantages / n, 0.0), "∂loss/∂log π_θ at ρ = 1 (REINFORCE's)",
                 atol=1e-12)
    expect(stats["clipfrac"] == 0 and abs(stats["approxkl"]) < 1e-15 and abs(stats["ratio"] - 1) < 1e-12,
           f"at ρ = 1 expected clipfrac 0, approxkl 0, ratio 1, got {stats}")


@check("ppo_clip_loss", "property", "many gradient steps on one batch stop just past 1 + ε (Â > 0) and 1 − ε "
       "(Â < 0): the clip keeps π_θ near π_θ_old")
def ppo_steps_stop(ppo_clip_loss):
    eps = 0.2
    old_logprobs = torch.log(torch.tensor([[0.3, 0.4, 0.2]], dtype=torch.float64))
    advantages = torch.tensor([[1.0, -1.0, 0.5]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False]])  # the third token is padding: it must not move
    logprobs = old_logprobs.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([logprobs], lr=0.05)
    for _ in range(400):
        loss, _ = call_ppo(ppo_clip_loss, logprobs, old_logprobs, advantages, mask, eps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rho = (logprobs.detach() - old_logprobs).exp()[0].tolist()
    expect(1 + eps <= rho[0] < (1 + eps) * 1.05 and (1 - eps) * 0.95 < rho[1] <= 1 - eps and rho[2] == 1.0,
           f"after 400 steps ρ = {[round(x, 4) for x in rho]}, expected ρ just past 1 + ε = {1 + eps} for the token "
           f"with Â > 0, just below 1 − ε = {1 - eps} for the one with Â < 0, and exactly 1 off the mask: "
           "once the clipped term is the larger, its gradient is 0")
