"""Reformer's LSH attention (Kitaev, Kaiser and Levskaya, 2020), written out by hand.

The lecture's slide "Transformadores para una mejor eficiencia": Reformer replaces
dot-product attention by locality-sensitive-hashing (LSH) attention, and so attends with
O(n log n) instead of O(n²) memory.

Where the n² comes from. Full attention scores every query against every key:

    A = softmax(Q Kᵀ / √d_k + mask)      one (T × T) matrix per head: O(n²) memory, n = T

Yet after the softmax almost all of a row's weight sits on the few keys most similar to
the query. LSH attention computes only those scores: it puts vectors that point in similar
directions into the same bucket, sorts the tokens by bucket, cuts the sorted sequence into
chunks of m tokens, and lets each query look only at the keys of its own chunk and of the
chunk before it: 2m scores per query, O(n·m) memory, linear in n. The sort costs
O(n log n) time; that sort is the "log n" of the slide.

The three ideas, each a function below:

1. Shared-QK (`shared_keys`): the keys are the normalised queries, k_j = q_j / ‖q_j‖.
   Then a query and its key fall in the same bucket, so every chunk holds queries together
   with keys they are similar to. A token is most similar to itself, so its own key is
   excluded: it gets the score SELF_SCORE, a large negative number, and is attended to only
   when nothing else is allowed (the first token has nothing else).

2. The hash (`lsh_buckets`, angular LSH with random rotations): with a random matrix
   R (d_k × n_buckets/2) of standard normal numbers,

       h(x) = argmax([x R ; −x R])      one of n_buckets buckets

   Vectors at a small angle are likely to land in the same bucket, vectors far apart are
   not. n_hashes independent matrices give n_hashes rounds of hashing; a pair that one
   round separates by chance is likely to meet in another.

3. Chunked attention in sorted order (`lsh_attention`), per round, then the rounds combined
   by their log-sum-exp (the softmax normaliser of each round).

The steps of `lsh_attention`, with the shapes (B batch, nh heads, T tokens, hs = d_k the
head size, m = bucket_size the chunk length; in shapes R counts the rounds, n_hashes, and
in formulas R_r is round r's matrix):

    1. k = q / ‖q‖, score(i, j) = q_i · k_j / √hs                      (B, nh, T, hs)
    2. the keys' buckets, one row per round: lsh_buckets(k, rotations) (B, nh, R, T)
       (hashing k or q gives the same buckets: h sees only directions, and k is q scaled
       by the positive number 1/‖q‖; we hash k, the vectors that are looked up)
    3. pad T up to T_pad, a multiple of m; the padded positions get    (B, nh, R, T_pad)
       bucket n_buckets, past every real bucket, so they sort to the very end and cannot
       move a real token's chunk boundary; being later than every real token, the causal
       mask hides their keys from every real query; their outputs are dropped
    4. sort each round by (bucket, position), the argsort of           (B, nh, R, T_pad)
       bucket·T_pad + position: `order` lists the original positions in sorted order
    5. gather q and v in sorted order (the sorted keys are the sorted queries normalised)
       and cut them into n_chunks = T_pad/m chunks of m                (B, nh, R, n_chunks, m, hs)
    6. each chunk's keys: the previous chunk's and its own             (B, nh, R, n_chunks, 2m, hs)
       (the first chunk has no previous one: those keys are masked, no wrap-around)
    7. each chunk's queries against its 2m keys                        (B, nh, R, n_chunks, m, 2m)
       masked by ORIGINAL positions: a later key → −inf (causal); a padding key → −inf;
       the query's own key → SELF_SCORE
    8. per round: lse_r = logsumexp of the scores                      (B, nh, R, n_chunks, m)
       A_r = exp(scores − lse_r) = softmax(scores), rows summing to 1  (B, nh, R, n_chunks, m, 2m)
       y_r = A_r V                                                     (B, nh, R, n_chunks, m, hs)
       then undo the sort and drop the padding                         (B, nh, R, T, hs)
    9. combine the rounds by their log-sum-exp weights
       y = Σ_r exp(lse_r − logsumexp_r(lse_r)) · y_r                   (B, nh, T, hs)

Step 9 is exact softmax arithmetic: if the rounds' key sets were disjoint, y would be the
softmax over all their keys together. A key found in several rounds counts several times;
Reformer's paper corrects for such duplicates, this code does not, so with one chunk that
covers the whole sequence every round is full attention and the combination is exact.

The scores take O(R · T · 2m) memory, linear in T, where full attention takes O(T²). The
hash holds [xR; −xR] for a moment, R · T · n_buckets numbers: linear in T for a fixed
n_buckets; with Reformer's rule n_buckets = 2T/m it is 2R·T²/m, a fraction 2R/m of full
attention's T² (1/16 for R = 2 rounds and chunks of m = 64), freed as soon as the buckets
are known.

Usage, for one layer's heads:

    q, v = torch.randn(1, 4, 1024, 32), torch.randn(1, 4, 1024, 32)  # (B, nh, T, hs)
    R = random_rotations(2, 32, default_n_buckets(1024, 64), seed=0)  # (2, 32, 16)
    y = lsh_attention(q, v, R, bucket_size=64)  # (1, 4, 1024, 32)

Decoding with the KV cache feeds one query at a time; there LSH saves nothing, and
`shared_qk_attention` attends exactly to the cached (normalised) keys. It is also the
full attention that LSH approximates.

A test that does NOT hold for LSH attention: "change a future token and the past outputs
stay the same". No query puts weight on a later key (the causal mask works by original
positions), but a future token's bucket decides where the chunk boundaries fall in the
sorted order, so it can move a past query into another chunk, with other past keys: the
past outputs can change although none of them looks at the future. The right test is the
one on the weights: every weight on a later key is exactly 0.
"""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# The score of a token's own key. Finite in fp16, bf16, fp32 and fp64; exp(SELF_SCORE − lse)
# is exactly 0 in float32 and float64 once any other key is allowed (its score is far
# larger), so a token attends to itself only when it may see nothing else.
SELF_SCORE: float = -1e4


def shared_keys(q: Tensor) -> Tensor:
    """Shared-QK: the keys are the normalised queries, k_j = q_j / ‖q_j‖. (..., T, hs) -> same.

    (A zero query stays a zero key instead of dividing by 0.)
    """
    return F.normalize(q, dim=-1)  # (..., T, hs), each row of length 1


def default_n_buckets(T: int, bucket_size: int) -> int:
    """Reformer's rule n_buckets = 2·T/m (m = chunk length), rounded up to an even number ≥ 2.

    With about m/2 tokens per bucket, a chunk of m tokens holds about two buckets' worth.
    """
    n_buckets = math.ceil(2 * T / bucket_size)
    n_buckets += n_buckets % 2  # an even number: the hash draws n_buckets/2 directions
    return max(2, n_buckets)


def random_rotations(
    n_hashes: int, head_size: int, n_buckets: int, seed: int, device=None, dtype=torch.float32
) -> Tensor:
    """R: (n_hashes, head_size, n_buckets // 2), standard normal, one matrix per hash round.

    Drawn on the CPU from torch.Generator().manual_seed(seed) (in float32) and then moved to
    device and dtype, so the same seed gives the same numbers on every device.
    n_buckets must be even and ≥ 2: each of the n_buckets/2 columns r gives two buckets,
    x·r large (bucket r) and −x·r large (bucket r + n_buckets/2).
    """
    if not isinstance(n_buckets, int) or n_buckets < 2 or n_buckets % 2 != 0:
        raise ValueError(f"n_buckets must be an even integer ≥ 2 (the hash is argmax over "
                         f"[xR; −xR] with n_buckets/2 columns in R), got n_buckets={n_buckets!r}")
    for name, value in (("n_hashes", n_hashes), ("head_size", head_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    generator = torch.Generator().manual_seed(seed)
    R = torch.randn(n_hashes, head_size, n_buckets // 2, generator=generator)  # on the CPU
    return R.to(device=device, dtype=dtype)  # (n_hashes, hs, n_buckets/2)


def lsh_buckets(x: Tensor, rotations: Tensor) -> Tensor:
    """The angular LSH hash, one bucket per vector and round: h(x) = argmax([x R ; −x R]).

    x: (..., T, hs) vectors (any leading dims, e.g. (B, nh, T, hs)).
    rotations: (n_hashes, hs, n_buckets/2), one random matrix R per round.
    Returns (..., n_hashes, T) int64 bucket ids in [0, n_buckets): for round r and vector x,
    with p = x R_r (n_buckets/2 numbers), the index of the largest of [p ; −p]: b when
    p_b is the largest, b + n_buckets/2 when −p_b is.

    Only the direction of x matters: x and c·x (c > 0) give the same buckets.
    """
    # >>> solution lsh_buckets
    R = rotations.to(x.dtype)  # (n_hashes, hs, n_b/2), in x's precision
    # one product per round: (..., 1, T, hs) @ (n_hashes, hs, n_b/2) broadcasts the rounds
    projected = x.unsqueeze(-3) @ R  # (..., n_hashes, T, n_b/2)
    both_signs = torch.cat([projected, -projected], dim=-1)  # (..., n_hashes, T, n_b)
    return both_signs.argmax(dim=-1)  # (..., n_hashes, T), int64 in [0, n_b)
    # <<< solution


def _softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    """Scores are normalised in float32 at least (bf16/fp16 under autocast); float64 stays."""
    return torch.promote_types(dtype, torch.float32)


def rows_in_order(t: Tensor, order: Tensor) -> Tensor:
    """The rows of t that order names, for every leading index: t[..., order, :].

    t: (*L, T, hs); order: (*L, *rest) with entries in [0, T). Returns (*L, *rest, hs),
    whose [l, s] is t[l, order[l, s]]. Written as one index_select over the rows of t laid
    end to end (row t of block l is row l·T + t), which is faster, forwards and backwards,
    than torch.gather with an index expanded over hs.
    """
    *L, T, hs = t.shape
    blocks = t[..., 0, 0].numel()  # how many (T, hs) blocks: the product of L
    first_row = torch.arange(blocks, device=t.device).view(*L, *[1] * (order.dim() - len(L))) * T
    rows = t.reshape(blocks * T, hs).index_select(0, (order + first_row).reshape(-1))
    return rows.view(*order.shape, hs)


def lsh_attention(
    q, v, rotations, bucket_size, key_is_real=None, dropout=None, return_weights=False
):
    """LSH attention with shared QK, causal, over sorted chunks (see the module docstring).

    q: (B, nh, T, hs) the shared query-keys (the keys are shared_keys(q)).
    v: (B, nh, T, hs) the values.
    rotations: (n_hashes, hs, n_buckets/2) from random_rotations.
    bucket_size: m, the chunk length. A sequence of T ≤ m tokens is a single chunk: every
        round is then full causal attention.
    key_is_real: None, or (B, T) bool or 0/1; False (0) marks padding, which no query attends
        to (except a padded query's own key, by the self rule; its output is not used).
    dropout: None, or an nn.Dropout applied to each round's attention weights A_r.
    Returns y: (B, nh, T, hs); with return_weights=True, (y, W) where W (B, nh, T, T) is the
    effective weight of key j in query i's output, Σ_r c_r(i)·A_r(i, j) with c_r the round's
    combination weight. W costs O(T²): it is for tests and lessons only.
    """
    if not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"bucket_size (the chunk length m) must be a positive integer, "
                         f"got {bucket_size!r}")
    B, nh, T, hs = q.shape
    n_hashes, n_buckets = rotations.size(0), 2 * rotations.size(-1)
    m = min(bucket_size, T)  # the chunk length (one chunk when the sequence is short)
    n_chunks = -(-T // m)  # ceil(T / m)
    T_pad = n_chunks * m

    # 1-2. the buckets of every token, per round: of the keys k = q/‖q‖ (q gives the same)
    buckets = lsh_buckets(shared_keys(q.detach()), rotations)  # (B, nh, R, T) ints, no gradient

    # 3. pad to a whole number of chunks; padding sorts last (bucket n_buckets)
    if T_pad > T:
        extra = T_pad - T
        buckets = F.pad(buckets, (0, extra), value=n_buckets)  # (B, nh, R, T_pad)
        q, v = F.pad(q, (0, 0, 0, extra)), F.pad(v, (0, 0, 0, extra))  # (B, nh, T_pad, hs)

    # 4. sort each round by (bucket, position); all sort keys differ, so the order is unique
    position = torch.arange(T_pad, device=q.device)  # (T_pad,)
    order = (buckets * T_pad + position).argsort(dim=-1)  # (B, nh, R, T_pad) original positions

    # 5. the sorted queries and values, in chunks of m, and the positions they came from.
    #    The sorted keys are the sorted queries normalised (normalising and sorting commute).
    chunked = (B, nh, n_hashes, n_chunks, m, hs)
    sq = rows_in_order(q, order).view(chunked)  # (B, nh, R, n_chunks, m, hs)
    sv = rows_in_order(v, order).view(chunked)  # (B, nh, R, n_chunks, m, hs)
    sk = shared_keys(sq)  # (B, nh, R, n_chunks, m, hs)
    q_pos = order.view(B, nh, n_hashes, n_chunks, m)  # (B, nh, R, n_chunks, m)

    # 6. each chunk's keys: the previous chunk's, then its own. The first chunk's "previous"
    #    keys are zeros at position T_pad: later than every query, so the causal mask hides them.
    def with_previous_chunk(t, fill):  # (B, nh, R, n_chunks, m, ...) -> (..., n_chunks, 2m, ...)
        previous = torch.cat([torch.full_like(t[:, :, :, :1], fill), t[:, :, :, :-1]], dim=3)
        return torch.cat([previous, t], dim=4)

    kk = with_previous_chunk(sk, 0.0)  # (B, nh, R, n_chunks, 2m, hs)
    vv = with_previous_chunk(sv, 0.0)  # (B, nh, R, n_chunks, 2m, hs)
    k_pos = with_previous_chunk(q_pos, T_pad)  # (B, nh, R, n_chunks, 2m)

    # 7. the scores, m × 2m per chunk, and the mask by original positions
    scores = (sq / math.sqrt(hs)) @ kk.transpose(-2, -1)  # (B, nh, R, n_chunks, m, 2m)
    scores = scores.to(_softmax_dtype(scores.dtype))
    query_at, key_at = q_pos.unsqueeze(-1), k_pos.unsqueeze(-2)  # (..., m, 1), (..., 1, 2m)
    hidden = key_at > query_at  # (..., m, 2m) a later key: the causal mask
    if key_is_real is not None:
        # is each key real? look it up by its position; position T_pad (no key) is not real
        real = key_is_real.bool().to(q.device)  # (B, T)
        real = F.pad(real, (0, T_pad + 1 - T), value=False)  # (B, T_pad + 1)
        batch = torch.arange(B, device=q.device).view(B, 1, 1, 1, 1)  # (B, 1, 1, 1, 1)
        k_real = real[batch, k_pos]  # (B, nh, R, n_chunks, 2m)
        hidden = hidden | ~k_real.unsqueeze(-2)  # (..., m, 2m) or a padding key
    scores.masked_fill_(hidden, float("-inf"))  # in place: scores is a new tensor of our own
    scores.masked_fill_(key_at == query_at, SELF_SCORE)  # own key: only if nothing else

    # 8. softmax per round, keeping its normaliser lse_r, so that A_r = exp(scores − lse_r)
    A = torch.softmax(scores, dim=-1)  # (B, nh, R, n_chunks, m, 2m), rows sum to 1
    lse = scores.logsumexp(dim=-1)  # (B, nh, R, n_chunks, m)
    if dropout is not None:
        A = dropout(A)
    y_sorted = A.to(vv.dtype) @ vv  # (B, nh, R, n_chunks, m, hs)
    # undo the sort: position t went to place undo[t] of the sorted order; drop the padding
    undo = order.argsort(dim=-1)  # (B, nh, R, T_pad), the inverse permutation
    y_sorted = y_sorted.view(B, nh, n_hashes, T_pad, hs)  # (B, nh, R, T_pad, hs)
    y_rounds = rows_in_order(y_sorted, undo[..., :T])  # (B, nh, R, T, hs)
    lse_rounds = lse.view(B, nh, n_hashes, T_pad).gather(3, undo[..., :T])  # (B, nh, R, T)

    # 9. combine the rounds: c_r = exp(lse_r − logsumexp_r lse_r), y = Σ_r c_r y_r
    c = torch.softmax(lse_rounds, dim=2)  # (B, nh, R, T), sums to 1 over the rounds
    y = (c.unsqueeze(-1) * y_rounds).sum(dim=2).to(v.dtype)  # (B, nh, T, hs)
    if not return_weights:
        return y

    # W[i, j] = Σ_r c_r(i) A_r(i, j): scatter each round's weights to (query, key) positions.
    # Column T_pad collects the first chunk's missing "previous" keys (weight 0) and is dropped.
    c_sorted = F.pad(c, (0, T_pad - T)).gather(3, order)  # (B, nh, R, T_pad) in sorted order
    weighted = A * c_sorted.view(B, nh, n_hashes, n_chunks, m, 1)  # (B, nh, R, n_chunks, m, 2m)
    flat_index = query_at * (T_pad + 1) + key_at  # (B, nh, R, n_chunks, m, 2m) index of W[i, j]
    W = torch.zeros(B, nh, T_pad * (T_pad + 1), dtype=A.dtype, device=A.device)
    W = W.scatter_add(2, flat_index.reshape(B, nh, -1), weighted.reshape(B, nh, -1))
    W = W.view(B, nh, T_pad, T_pad + 1)[:, :, :T, :T]  # (B, nh, T, T)
    return y, W


def shared_qk_attention(q, k, v, allowed, dropout=None, return_weights=False):
    """Exact (full) causal shared-QK attention: softmax(q Kᵀ/√d_k + mask) V, self → SELF_SCORE.

    Used for decoding with the KV cache, and as the full attention LSH approximates.
    q: (B, nh, T, hs) this call's queries (not normalised).
    k: (B, nh, T_k, hs) the normalised keys (shared_keys of the queries) of every token, the
       cache's and this call's (T_k ≥ T). v: (B, nh, T_k, hs).
    allowed: (B or 1, 1, T, T_k) bool from minigpt.model.attention_allowed (causal and padding),
    or None when every key is allowed (one new token without padding).
    Query i of this call is token T_k − T + i; its own key gets the score SELF_SCORE, so it
    attends to itself only when nothing else is allowed.
    dropout: None, or an nn.Dropout applied to the weights A.
    Returns y: (B, nh, T, hs); with return_weights=True, (y, A) with A: (B, nh, T, T_k).
    """
    T, T_k = q.size(-2), k.size(-2)
    scores = (q / math.sqrt(q.size(-1))) @ k.transpose(-2, -1)  # (B, nh, T, T_k)
    scores = scores.to(_softmax_dtype(scores.dtype))
    if allowed is not None:
        scores.masked_fill_(~allowed, float("-inf"))  # causal (and padding) mask, in place
    query_at = torch.arange(T_k - T, T_k, device=q.device).view(T, 1)  # (T, 1) absolute index
    key_at = torch.arange(T_k, device=q.device).view(1, T_k)  # (1, T_k)
    scores.masked_fill_(key_at == query_at, SELF_SCORE)  # own key: only if nothing else
    A = torch.softmax(scores, dim=-1)  # (B, nh, T, T_k), rows sum to 1
    if dropout is not None:
        A = dropout(A)
    y = A.to(v.dtype) @ v  # (B, nh, T, hs)
    return (y, A) if return_weights else y
