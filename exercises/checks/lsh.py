"""Checks for Reformer's hash (lesson 13): lsh_buckets, h(x) = argmax([x R ; −x R]).

The expected buckets are the formula written out with Python floats, one vector and one
round at a time: the products x·r_c for every column r_c of R, the list [p ; −p], and the
index of its (first) largest entry. The inputs are random float64 numbers, so no two
entries tie. The properties are the ones that make it a hash of directions: c·x (c > 0)
lands where x does, −x lands n_buckets/2 further round, and each round uses only its own
matrix. The model check swaps the function into minigpt.lsh.lsh_attention and compares
the attention with Reformer's LSH attention written as loops over the sorted chunks.
"""

import math

import torch

from exercises.grading import check, expect, expect_close
from exercises.switch import swapped
from minigpt.lsh import SELF_SCORE, lsh_attention, random_rotations


def random_vectors(shape, seed):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def bucket_by_loop(x: list[float], R: list[list[float]]) -> int:
    """argmax over [x R ; −x R] for one vector x (hs numbers) and one R (hs × n_buckets/2)."""
    projected = [sum(x[d] * R[d][c] for d in range(len(x))) for c in range(len(R[0]))]
    both = projected + [-p for p in projected]
    return max(range(len(both)), key=lambda index: both[index])  # the first largest


def buckets_by_loop(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """(..., T, hs), (n_hashes, hs, n_b/2) -> (..., n_hashes, T) int64, one vector at a time."""
    *lead, T, hs = x.shape
    rows = x.reshape(-1, T, hs).tolist()
    R_all = rotations.tolist()
    out = [[[bucket_by_loop(vector, R) for vector in row] for R in R_all] for row in rows]
    return torch.tensor(out, dtype=torch.int64).view(*lead, len(R_all), T)


def call_buckets(lsh_buckets, x, rotations):
    """The student's buckets, checked to be an int64 tensor of the right shape."""
    out = lsh_buckets(x, rotations)
    expected_shape = (*x.shape[:-2], rotations.size(0), x.size(-2))
    expect(isinstance(out, torch.Tensor), f"expected a tensor of bucket ids, got {type(out).__name__}")
    expect(tuple(out.shape) == expected_shape,
           f"x {tuple(x.shape)} and rotations {tuple(rotations.shape)} gave shape {tuple(out.shape)}, "
           f"expected (..., n_hashes, T) = {expected_shape}: one row of T buckets per round")
    expect(out.dtype == torch.int64, f"the buckets have dtype {out.dtype}, expected torch.int64 "
           f"(what argmax returns)")
    return out


def expect_same_buckets(actual, expected, what):
    wrong = (actual != expected).nonzero()
    if len(wrong):
        where = [int(i) for i in wrong[0]]
        expect(False, f"{what}: {len(wrong)} of {expected.numel()} buckets differ; at index {where} yours is "
               f"{actual[tuple(where)].item()}, expected {expected[tuple(where)].item()}")


SHAPES = [  # (x's shape, n_hashes, n_buckets)
    ((7, 5), 1, 4),  # no leading dims, one round
    ((2, 3, 6, 4), 3, 8),  # (B, nh, T, hs) as lsh_attention calls it
    ((2, 2, 2, 5, 3), 2, 2),  # more leading dims; two buckets: the sign of x·r
    ((1, 9, 8), 4, 16),
]


@check("lsh_buckets", "shape", "returns (..., n_hashes, T) int64 bucket ids, for x (T, hs), (B, nh, T, hs) "
       "and more leading dims")
def buckets_shape(lsh_buckets):
    for seed, (shape, n_hashes, n_buckets) in enumerate(SHAPES):
        call_buckets(lsh_buckets, random_vectors(shape, seed),
                     random_rotations(n_hashes, shape[-1], n_buckets, seed=seed, dtype=torch.float64))


@check("lsh_buckets", "values", "a loop over vectors and rounds: argmax of [x·r_1, …, x·r_{n/2}, −x·r_1, …, "
       "−x·r_{n/2}], for 4 shapes and 2 to 16 buckets (float64)")
def buckets_values(lsh_buckets):
    for seed, (shape, n_hashes, n_buckets) in enumerate(SHAPES):
        x = random_vectors(shape, 10 + seed)
        rotations = random_rotations(n_hashes, shape[-1], n_buckets, seed=20 + seed, dtype=torch.float64)
        expect_same_buckets(call_buckets(lsh_buckets, x, rotations), buckets_by_loop(x, rotations),
                            f"x {tuple(shape)}, {n_hashes} rounds, {n_buckets} buckets")


@check("lsh_buckets", "values", "x and R in different dtypes (float32 and float64, either way): R is used "
       "in x's precision")
def buckets_dtypes(lsh_buckets):
    x = random_vectors((2, 5, 6), 30)
    rotations = random_rotations(2, 6, 8, seed=31)  # float32, as random_rotations makes them
    expected = buckets_by_loop(x, rotations)
    expect_same_buckets(call_buckets(lsh_buckets, x, rotations), expected, "x float64, R float32")
    expect_same_buckets(call_buckets(lsh_buckets, x.float(), rotations.double()),
                        buckets_by_loop(x.float(), rotations), "x float32, R float64")


@check("lsh_buckets", "property", "every id is in [0, n_buckets), and on 400 random vectors every bucket is used "
       "(the −xR half too)")
def buckets_range(lsh_buckets):
    for n_buckets in (2, 6, 8):
        out = call_buckets(lsh_buckets, random_vectors((400, 5), 40 + n_buckets),
                           random_rotations(1, 5, n_buckets, seed=n_buckets, dtype=torch.float64))
        used = sorted(set(out.flatten().tolist()))
        expect(used == list(range(n_buckets)), f"with {n_buckets} buckets the ids used are {used}, expected "
               f"all of 0 … {n_buckets - 1}: bucket b + n_buckets/2 is where −x·r_b is the largest")


@check("lsh_buckets", "property", "only the direction matters: c·x lands where x does (c = 0.25, 3, 1000), "
       "and −x lands n_buckets/2 further round: h(−x) = (h(x) + n_buckets/2) mod n_buckets")
def buckets_directions(lsh_buckets):
    x = random_vectors((3, 20, 6), 50)
    n_buckets = 10
    rotations = random_rotations(2, 6, n_buckets, seed=51, dtype=torch.float64)
    out = call_buckets(lsh_buckets, x, rotations)
    for c in (0.25, 3.0, 1000.0):
        expect_same_buckets(call_buckets(lsh_buckets, c * x, rotations), out, f"the buckets of {c}·x against x's")
    expect_same_buckets(call_buckets(lsh_buckets, -x, rotations), (out + n_buckets // 2) % n_buckets,
                        "the buckets of −x against (h(x) + n_buckets/2) mod n_buckets")


@check("lsh_buckets", "property", "each round uses only its own matrix: round r equals hashing with "
       "rotations[r] alone; x and rotations are left unchanged")
def buckets_rounds(lsh_buckets):
    x = random_vectors((2, 8, 5), 60)
    rotations = random_rotations(3, 5, 6, seed=61, dtype=torch.float64)
    before = (x.clone(), rotations.clone())
    out = call_buckets(lsh_buckets, x, rotations)
    for r in range(3):
        alone = call_buckets(lsh_buckets, x, rotations[r : r + 1])
        expect_same_buckets(out[..., r : r + 1, :], alone, f"round {r} against rotations[{r}:{r + 1}] alone")
    expect(torch.equal(x, before[0]), "x was changed in place; compute new tensors instead")
    expect(torch.equal(rotations, before[1]), "rotations was changed in place; compute new tensors instead")


# ---------------------------------------------------------- inside Reformer's attention
def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def lsh_attention_by_loop(q, v, rotations, m):
    """Reformer's causal shared-QK LSH attention, one head, round and query at a time.

    Per round: sort the tokens by (bucket of k = q/‖q‖, position), cut the order into chunks
    of m (the last may be short); each query attends to the earlier keys of its chunk and
    the previous chunk, and to its own key with SELF_SCORE; y_r and lse_r per query; then
    y = Σ_r exp(lse_r − logsumexp_r lse_r)·y_r.
    """
    B, nh, T, hs = q.shape
    y_out = torch.zeros_like(q)
    for b in range(B):
        for h in range(nh):
            qs, vs = q[b, h].tolist(), v[b, h].tolist()
            ks = [[a / math.sqrt(sum(x * x for x in row)) for a in row] for row in qs]
            per_round = []
            for R in rotations.tolist():
                buckets = [bucket_by_loop(key, R) for key in ks]
                order = sorted(range(T), key=lambda j: (buckets[j], j))
                chunks = [order[start : start + m] for start in range(0, T, m)]
                found = {}
                for c, chunk in enumerate(chunks):
                    keys = (chunks[c - 1] if c > 0 else []) + chunk
                    for i in chunk:
                        scores = {j: SELF_SCORE if j == i else dot(qs[i], ks[j]) / math.sqrt(hs)
                                  for j in keys if j <= i}  # earlier keys, and the own key
                        top = max(scores.values())
                        lse = top + math.log(sum(math.exp(s - top) for s in scores.values()))
                        found[i] = (lse, [sum(math.exp(s - lse) * vs[j][d] for j, s in scores.items())
                                          for d in range(hs)])
                per_round.append(found)
            for i in range(T):
                lses = [found[i][0] for found in per_round]
                total = max(lses) + math.log(sum(math.exp(l - max(lses)) for l in lses))
                for found in per_round:
                    y_out[b, h, i] += math.exp(found[i][0] - total) * torch.tensor(found[i][1], dtype=q.dtype)
    return y_out


@check("lsh_buckets", "model", "inside minigpt.lsh.lsh_attention: the same output as Reformer's LSH attention "
       "written as loops (2 rounds, chunks of 4, 14 tokens)")
def buckets_in_attention(lsh_buckets):
    q = 2.0 * random_vectors((2, 2, 14, 6), 70)
    v = random_vectors((2, 2, 14, 6), 71)
    rotations = random_rotations(2, 6, 8, seed=72, dtype=torch.float64)
    with swapped("lsh_buckets", lsh_buckets):
        y = lsh_attention(q, v, rotations, 4)
    expect_close(y, lsh_attention_by_loop(q, v, rotations, 4),
                 "the LSH attention's output with your hash (float64)", atol=1e-10)
