"""Reformer's LSH attention (minigpt.lsh): specifications, each against an independent reference.

The references are Python loops over floats, written from the paper's description and not
from the implementation: the hash as an argmax over [xR; −xR] element by element, the sort
by (bucket, position) with `sorted`, chunks of m in sorted order with a short last chunk and
no padding, each query over its chunk and the previous one, the causal mask by original
positions, padding keys left out, the self rule, a softmax per round and the rounds combined
by their log-sum-exp.
"""

import math

import pytest
import torch

from minigpt.lsh import (
    SELF_SCORE,
    default_n_buckets,
    lsh_attention,
    lsh_buckets,
    random_rotations,
    shared_keys,
    shared_qk_attention,
)
from minigpt.model import attention_allowed


def random_qv(B, nh, T, hs, seed, scale=1.0):
    """q, v: (B, nh, T, hs) float64."""
    generator = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(B, nh, T, hs, dtype=torch.float64, generator=generator)
    v = torch.randn(B, nh, T, hs, dtype=torch.float64, generator=generator)
    return q, v


def padding_mask(B, T, seed):
    """(B, T) bool key_is_real with a few padding tokens in every row but the first token's."""
    generator = torch.Generator().manual_seed(seed)
    real = torch.rand(B, T, generator=generator) > 0.3
    real[:, 0] = True
    return real


# ------------------------------------------------------------------- the loop references
def bucket_by_loop(x: list[float], R: list[list[float]]) -> int:
    """argmax over [x R ; −x R], the first maximum, for one vector x (hs,) and one R (hs, n_b/2)."""
    half = len(R[0])
    projected = [sum(x[d] * R[d][c] for d in range(len(x))) for c in range(half)]
    both = projected + [-p for p in projected]
    best = 0
    for index, value in enumerate(both):
        if value > both[best]:
            best = index
    return best


def normalised(x: list[float]) -> list[float]:
    length = math.sqrt(sum(a * a for a in x))
    return [a / length for a in x]


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


def attend(i, keys, q, k, v, real, hs):
    """Query i over the key positions `keys`: (lse, {j: weight}, y), with the causal mask,
    padding keys left out and the self rule. Always finite: i is among the keys."""
    scores = {}
    for j in keys:
        if j == i:
            scores[j] = SELF_SCORE
        elif j < i and real[j]:
            scores[j] = dot(q[i], k[j]) / math.sqrt(hs)
    top = max(scores.values())
    lse = top + math.log(sum(math.exp(s - top) for s in scores.values()))
    weights = {j: math.exp(s - lse) for j, s in scores.items()}
    y = [sum(w * v[j][d] for j, w in weights.items()) for d in range(hs)]
    return lse, weights, y


def lsh_attention_by_loop(q, v, rotations, m, key_is_real=None):
    """Reformer's LSH attention, one (batch, head, round, query) at a time: y, W as tensors."""
    B, nh, T, hs = q.shape
    R_all = rotations.tolist()
    y_out = torch.zeros(B, nh, T, hs, dtype=torch.float64)
    W_out = torch.zeros(B, nh, T, T, dtype=torch.float64)
    for b in range(B):
        real = [True] * T if key_is_real is None else [bool(x) for x in key_is_real[b].tolist()]
        for h in range(nh):
            qs, vs = q[b, h].tolist(), v[b, h].tolist()
            ks = [normalised(x) for x in qs]
            rounds = []  # per round: {i: (lse, weights, y)}
            for R in R_all:
                buckets = [bucket_by_loop(ks[j], R) for j in range(T)]
                order = sorted(range(T), key=lambda j: (buckets[j], j))
                chunks = [order[start : start + m] for start in range(0, T, m)]  # the last may be short
                found = {}
                for c, chunk in enumerate(chunks):
                    keys = (chunks[c - 1] if c > 0 else []) + chunk
                    for i in chunk:
                        found[i] = attend(i, keys, qs, ks, vs, real, hs)
                rounds.append(found)
            for i in range(T):
                lses = [found[i][0] for found in rounds]
                top = max(lses)
                total = top + math.log(sum(math.exp(l - top) for l in lses))
                for found in rounds:
                    lse, weights, y = found[i]
                    c = math.exp(lse - total)
                    for d in range(hs):
                        y_out[b, h, i, d] += c * y[d]
                    for j, w in weights.items():
                        W_out[b, h, i, j] += c * w
    return y_out, W_out


def full_attention_by_loop(q, k, v, allowed):
    """Full shared-QK attention for T queries, the last T of T_k tokens: the allowed keys,
    and the own key with SELF_SCORE. k is given (normalised); returns y, W."""
    B, nh, T, hs = q.shape
    T_k = k.size(2)
    allowed = allowed.expand(B, nh, T, T_k)
    y_out = torch.zeros(B, nh, T, hs, dtype=torch.float64)
    W_out = torch.zeros(B, nh, T, T_k, dtype=torch.float64)
    for b in range(B):
        for h in range(nh):
            qs, ks, vs = q[b, h].tolist(), k[b, h].tolist(), v[b, h].tolist()
            for i in range(T):
                me = T_k - T + i
                scores = {j: dot(qs[i], ks[j]) / math.sqrt(hs) for j in range(T_k)
                          if allowed[b, h, i, j] and j != me}
                scores[me] = SELF_SCORE
                top = max(scores.values())
                lse = top + math.log(sum(math.exp(s - top) for s in scores.values()))
                for j, s in scores.items():
                    W_out[b, h, i, j] = math.exp(s - lse)
                    y_out[b, h, i] += math.exp(s - lse) * torch.tensor(vs[j], dtype=torch.float64)
    return y_out, W_out


# ------------------------------------------------------------------ LSH attention itself
@pytest.mark.parametrize("T, m, n_hashes, padded", [
    (16, 4, 3, False),  # T a multiple of m: 4 chunks
    (19, 4, 3, False),  # not a multiple: padded inside to 20, the reference has a short last chunk
    (17, 4, 2, True),  # padded inside by 3, and padding keys
    (20, 5, 1, True),
    (13, 3, 4, False),
])
def test_lsh_attention_equals_the_loop_reference(T, m, n_hashes, padded):
    """Several chunks and rounds, in float64. With T not a multiple of m the implementation
    pads to a whole number of chunks and the reference does not: padding never leaks."""
    B, nh, hs = 2, 2, 6
    q, v = random_qv(B, nh, T, hs, seed=T + m, scale=2.0)
    rotations = random_rotations(n_hashes, hs, default_n_buckets(T, m), seed=7, dtype=torch.float64)
    key_is_real = padding_mask(B, T, seed=T) if padded else None
    y, W = lsh_attention(q, v, rotations, m, key_is_real=key_is_real, return_weights=True)
    expected_y, expected_W = lsh_attention_by_loop(q, v, rotations, m, key_is_real)
    assert y.shape == (B, nh, T, hs) and W.shape == (B, nh, T, T)
    torch.testing.assert_close(y, expected_y, atol=1e-10, rtol=0)
    torch.testing.assert_close(W, expected_W, atol=1e-10, rtol=0)
    torch.testing.assert_close(lsh_attention(q, v, rotations, m, key_is_real=key_is_real), y,
                               atol=0, rtol=0)  # return_weights changes nothing
    # the case is not trivial: LSH leaves out keys that full attention would weigh
    causal_pairs = torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=-1)
    assert ((W == 0) & causal_pairs).sum() > 0


def test_padding_keys_get_no_weight_and_the_padded_tail_does_not_leak():
    B, nh, T, hs, m = 2, 3, 23, 8, 4  # padded inside to 24
    q, v = random_qv(B, nh, T, hs, seed=3)
    key_is_real = padding_mask(B, T, seed=4)
    rotations = random_rotations(2, hs, 6, seed=5, dtype=torch.float64)
    y, W = lsh_attention(q, v, rotations, m, key_is_real=key_is_real.long(), return_weights=True)
    off_diagonal = ~torch.eye(T, dtype=torch.bool)
    assert (W[~key_is_real.view(B, 1, 1, T).expand(B, nh, T, T) & off_diagonal] == 0).all()
    # the output at real tokens depends on the values of real tokens only
    v_changed = v.clone()
    v_changed[~key_is_real.view(B, 1, T).expand(B, nh, T)] += 100.0
    y_changed = lsh_attention(q, v_changed, rotations, m, key_is_real=key_is_real)
    is_real = key_is_real.view(B, 1, T).expand(B, nh, T)
    torch.testing.assert_close(y_changed[is_real], y[is_real], atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_hashes", [1, 2, 3, 4])
def test_one_chunk_covering_the_sequence_is_full_shared_qk_attention(n_hashes):
    """m ≥ T: every round attends to every earlier key, so the combination is exact."""
    B, nh, T, hs = 2, 2, 11, 5
    q, v = random_qv(B, nh, T, hs, seed=n_hashes, scale=3.0)
    rotations = random_rotations(n_hashes, hs, 4, seed=n_hashes, dtype=torch.float64)
    for m, key_is_real in ((T, None), (2 * T, None), (T, padding_mask(B, T, seed=1))):
        allowed = attention_allowed(0, T, key_is_real)
        expected_y, expected_W = full_attention_by_loop(q, shared_keys(q), v, allowed)
        y, W = lsh_attention(q, v, rotations, m, key_is_real=key_is_real, return_weights=True)
        torch.testing.assert_close(y, expected_y, atol=1e-12, rtol=0)
        torch.testing.assert_close(W, expected_W, atol=1e-12, rtol=0)
    assert (W[:, :, 0, 0] == 1).all()  # the first token has only itself


def test_no_weight_on_future_keys_and_every_row_sums_to_one():
    """Causality for LSH is a statement about the weights: W[i, j] = 0 for every j > i.

    "Change a future token and see that the past outputs do not change" is the wrong test
    here: a future token's bucket decides where the chunk boundaries fall in the sorted
    order, so it can move a past query into another chunk, next to other past keys. Past
    outputs can then change, legitimately, although no past query puts any weight on a
    future key.
    """
    B, nh, T, hs, m = 2, 4, 64, 8, 8
    q, v = random_qv(B, nh, T, hs, seed=11, scale=2.0)
    rotations = random_rotations(4, hs, default_n_buckets(T, m), seed=12, dtype=torch.float64)
    _, W = lsh_attention(q, v, rotations, m, return_weights=True)
    assert (torch.triu(W, diagonal=1) == 0).all()
    torch.testing.assert_close(W.sum(-1), torch.ones(B, nh, T, dtype=torch.float64), atol=1e-12, rtol=0)
    assert (W >= 0).all()


def clustered_queries(seed, B=1, nh=2, T=128, hs=16, n_centres=4, noise=0.1, scale=20.0):
    """Queries with structure: a few random directions plus small noise, of length `scale`
    (peaked attention, which is where LSH's choice of keys matters); random values."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(B, nh, n_centres, hs, dtype=torch.float64, generator=generator)
    centres = centres / centres.norm(dim=-1, keepdim=True)  # (B, nh, n_centres, hs)
    which = torch.randint(n_centres, (B, nh, T), generator=generator)  # each token's centre
    x = centres.gather(2, which[..., None].expand(B, nh, T, hs))  # (B, nh, T, hs)
    x = x + noise * torch.randn(B, nh, T, hs, dtype=torch.float64, generator=generator)
    q = scale * x / x.norm(dim=-1, keepdim=True)
    v = torch.randn(B, nh, T, hs, dtype=torch.float64, generator=generator)
    return q, v


def test_the_approximation_error_falls_as_the_number_of_hashes_grows():
    """Relative error ‖y_LSH − y_full‖/‖y_full‖, averaged over 4 seeds of inputs and rotations.
    (Checked locally on 20 disjoint groups of 4 seeds: each doubling of n_hashes cut the
    mean error to at most 0.77 of the one before, and 8 hashes to at most 0.34 of 1 hash.)"""
    T, hs, m = 128, 16, 16
    hash_counts = (1, 2, 4, 8)
    errors = torch.zeros(len(hash_counts), dtype=torch.float64)
    seeds = range(4)
    for seed in seeds:
        q, v = clustered_queries(seed, T=T, hs=hs)
        full = shared_qk_attention(q, shared_keys(q), v, attention_allowed(0, T, None))
        for row, n_hashes in enumerate(hash_counts):
            rotations = random_rotations(n_hashes, hs, default_n_buckets(T, m), seed=1000 + seed,
                                         dtype=torch.float64)
            y = lsh_attention(q, v, rotations, m)
            errors[row] += ((y - full).norm() / full.norm()) / len(seeds)
    for fewer, more in zip(errors[:-1], errors[1:]):
        assert more < 0.85 * fewer, errors.tolist()
    assert errors[-1] < 0.5 * errors[0], errors.tolist()


def test_gradients_flow_to_q_and_v_and_match_finite_differences():
    B, nh, T, hs, m = 1, 2, 9, 4, 3
    q, v = random_qv(B, nh, T, hs, seed=21)
    rotations = random_rotations(2, hs, 4, seed=22, dtype=torch.float64)
    q.requires_grad_(True)
    v.requires_grad_(True)
    # buckets are piecewise constant in q: the tiny steps of gradcheck do not cross a boundary
    assert torch.autograd.gradcheck(lambda q, v: lsh_attention(q, v, rotations, m), (q, v), eps=1e-6, atol=1e-6)


def test_dtypes_float32_float64_and_bf16_autocast():
    B, nh, T, hs, m = 2, 2, 24, 8, 8
    q64, v64 = random_qv(B, nh, T, hs, seed=31, scale=2.0)
    rotations = random_rotations(2, hs, 6, seed=32)
    y64 = lsh_attention(q64, v64, rotations, m)
    y32 = lsh_attention(q64.float(), v64.float(), rotations, m)
    assert y64.dtype == torch.float64 and y32.dtype == torch.float32
    # with one chunk the buckets do not matter: bf16 is full attention to bf16 precision
    with torch.autocast("cpu", dtype=torch.bfloat16):
        linear = torch.nn.Linear(hs, hs)
        q_b, v_b = linear(q64.float()), linear(v64.float())  # bf16 under autocast
        assert q_b.dtype == torch.bfloat16
        y_b = lsh_attention(q_b, v_b, rotations, T)
    assert y_b.dtype == torch.bfloat16 and torch.isfinite(y_b).all()
    y_ref = lsh_attention(q_b.double(), v_b.double(), rotations, T)
    torch.testing.assert_close(y_b.double(), y_ref, atol=0.05, rtol=0.05)


# ------------------------------------------------------------------------ the hash
def test_lsh_buckets_equals_a_loop_argmax_with_leading_dims():
    x = torch.randn(2, 3, 7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rotations = random_rotations(3, 5, 8, seed=1, dtype=torch.float64)
    buckets = lsh_buckets(x, rotations)
    assert buckets.shape == (2, 3, 3, 7) and buckets.dtype == torch.int64
    for a in range(2):
        for b in range(3):
            for r in range(3):
                for t in range(7):
                    assert buckets[a, b, r, t] == bucket_by_loop(x[a, b, t].tolist(), rotations[r].tolist())
    assert lsh_buckets(x[0, 0], rotations).shape == (3, 7)  # no leading dims
    assert set(lsh_buckets(torch.randn(500, 5), random_rotations(1, 5, 8, seed=2)).unique().tolist()) == set(range(8))


def test_buckets_depend_on_the_direction_only():
    x = torch.randn(4, 50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    rotations = random_rotations(2, 6, 10, seed=4, dtype=torch.float64)
    buckets = lsh_buckets(x, rotations)
    for c in (0.125, 3.7, 1000.0):
        assert torch.equal(lsh_buckets(c * x, rotations), buckets)
    assert torch.equal(lsh_buckets(shared_keys(x), rotations), buckets)  # hashing k or q: the same


def test_vectors_close_in_angle_share_a_bucket_far_more_often_than_random_pairs():
    generator = torch.Generator().manual_seed(5)
    n, hs, n_buckets = 2000, 16, 8
    x = torch.randn(n, hs, generator=generator)
    close = x + 0.05 * x.norm(dim=-1, keepdim=True) * torch.randn(n, hs, generator=generator) / math.sqrt(hs)
    other = torch.randn(n, hs, generator=generator)
    rotations = random_rotations(1, hs, n_buckets, seed=6)
    same_close = (lsh_buckets(x, rotations) == lsh_buckets(close, rotations)).float().mean().item()
    same_random = (lsh_buckets(x, rotations) == lsh_buckets(other, rotations)).float().mean().item()
    assert same_close > 0.8 and same_random < 0.25, (same_close, same_random)  # chance: 1/8


def test_random_rotations_are_reproducible_and_check_n_buckets():
    R = random_rotations(3, 8, 6, seed=0)
    assert R.shape == (3, 8, 3) and R.dtype == torch.float32
    assert torch.equal(R, random_rotations(3, 8, 6, seed=0))
    assert not torch.equal(R, random_rotations(3, 8, 6, seed=1))
    assert torch.equal(random_rotations(3, 8, 6, seed=0, dtype=torch.float64), R.double())
    for bad in (5, 0, 1, -2):
        with pytest.raises(ValueError, match="n_buckets"):
            random_rotations(2, 8, bad, seed=0)


def test_default_n_buckets_is_two_t_over_m_rounded_up_to_an_even_number():
    assert default_n_buckets(1024, 64) == 32
    assert default_n_buckets(100, 64) == 4  # 3.125 -> 4
    assert default_n_buckets(96, 64) == 4  # 3 -> 4 (even)
    assert default_n_buckets(10, 64) == 2  # at least 2
    assert default_n_buckets(1, 1) == 2


# --------------------------------------------------------- exact shared-QK attention
@pytest.mark.parametrize("past, T, padded", [(0, 6, False), (0, 6, True), (5, 1, False), (4, 3, True)])
def test_shared_qk_attention_equals_the_loop_reference(past, T, padded):
    """T new queries after `past` cached tokens (T_k = past + T), with left padding or not."""
    B, nh, hs = 2, 2, 4
    q_all, v = random_qv(B, nh, past + T, hs, seed=past * 10 + T, scale=2.0)
    k = shared_keys(q_all)  # (B, nh, T_k, hs): the cache's keys and this call's
    q = q_all[:, :, past:]  # this call's queries
    mask = None
    if padded:
        mask = torch.ones(B, past + T, dtype=torch.long)
        mask[1, :2] = 0  # the second row is left-padded by 2
    allowed = attention_allowed(past, T, mask)
    y, W = shared_qk_attention(q, k, v, allowed, return_weights=True)
    expected_y, expected_W = full_attention_by_loop(q, k, v, allowed)
    torch.testing.assert_close(y, expected_y, atol=1e-12, rtol=0)
    torch.testing.assert_close(W, expected_W, atol=1e-12, rtol=0)
    torch.testing.assert_close(shared_qk_attention(q, k, v, allowed), y, atol=0, rtol=0)
    if T == 1 and not padded:  # one new query sees every key: allowed=None says the same
        torch.testing.assert_close(shared_qk_attention(q, k, v, None), y, atol=0, rtol=0)


def test_the_self_rule_a_token_sees_itself_only_when_nothing_else_is_allowed():
    q, v = random_qv(1, 1, 5, 4, seed=41)
    k = shared_keys(q)
    _, W = shared_qk_attention(q, k, v, attention_allowed(0, 5, None), return_weights=True)
    assert W[0, 0, 0, 0] == 1  # the first token has nothing else
    assert (torch.diagonal(W[0, 0])[1:] == 0).all()  # exp(SELF_SCORE − lse) is exactly 0
    mask = torch.tensor([[0, 0, 1, 1, 1]])  # left padding: token 2 is the first real one
    _, W = shared_qk_attention(q, k, v, attention_allowed(0, 5, mask), return_weights=True)
    assert W[0, 0, 2, 2] == 1 and (W[0, 0, 3:, :2] == 0).all()


def test_lsh_attention_agrees_with_shared_qk_attention_for_one_token_and_a_full_chunk():
    B, nh, hs = 2, 3, 8
    rotations = random_rotations(2, hs, 4, seed=51, dtype=torch.float64)
    q, v = random_qv(B, nh, 1, hs, seed=52)
    y = lsh_attention(q, v, rotations, 4)
    torch.testing.assert_close(y, v, atol=0, rtol=0)  # one token: itself
    torch.testing.assert_close(y, shared_qk_attention(q, shared_keys(q), v, attention_allowed(0, 1, None)),
                               atol=0, rtol=0)
    T = 16
    q, v = random_qv(B, nh, T, hs, seed=53, scale=2.0)
    mask = padding_mask(B, T, seed=54)
    expected = shared_qk_attention(q, shared_keys(q), v, attention_allowed(0, T, mask))
    torch.testing.assert_close(lsh_attention(q, v, rotations, T, key_is_real=mask), expected,
                               atol=1e-12, rtol=0)


def test_lsh_attention_hashes_through_the_module_global_lsh_buckets(monkeypatch):
    """The exercise switch rebinds minigpt.lsh.lsh_buckets: lsh_attention must look it up there."""
    import minigpt.lsh

    calls = []

    def counting(x, rotations):
        calls.append(tuple(x.shape))
        return lsh_buckets(x, rotations)

    monkeypatch.setattr(minigpt.lsh, "lsh_buckets", counting)
    q, v = random_qv(1, 2, 10, 4, seed=61)
    minigpt.lsh.lsh_attention(q, v, random_rotations(2, 4, 4, seed=62, dtype=torch.float64), 4)
    assert calls == [(1, 2, 10, 4)]


def test_a_bad_bucket_size_is_a_value_error():
    q, v = random_qv(1, 1, 4, 4, seed=63)
    with pytest.raises(ValueError, match="bucket_size"):
        lsh_attention(q, v, random_rotations(1, 4, 2, seed=0, dtype=torch.float64), 0)
