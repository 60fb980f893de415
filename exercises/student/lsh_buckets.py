"""Exercise: Reformer's hash, h(x) = argmax([xR; −xR]) (lesson 13, section "LSH attention by hand").

Replace the TODO with your code, then:
    python -m exercises grade lsh_buckets
    python -m exercises run --student lsh_buckets -- lessons/13_efficient_transformers.py
"""

import torch  # noqa: F401  (tensor methods: .to, .unsqueeze, torch.cat, .argmax)
from torch import Tensor


def lsh_buckets(x: Tensor, rotations: Tensor) -> Tensor:
    """The angular LSH hash, one bucket per vector and round: h(x) = argmax([x R ; −x R]).

    x: (..., T, hs) vectors, with any leading dims (lsh_attention passes (B, nh, T, hs)).
    rotations: (n_hashes, hs, n_buckets/2), one random matrix R per round of hashing
               (minigpt.lsh.random_rotations); it may come in another dtype than x.
    Returns (..., n_hashes, T) int64 bucket ids in [0, n_buckets): for round r and vector x,
    with p = x R_r (n_buckets/2 numbers), the index of the largest entry of [p ; −p], that is
    b when p_b is the largest, b + n_buckets/2 when −p_b is.

    Vectors at a small angle tend to share a bucket; c·x (c > 0) always lands where x does.

    TODO, in four lines:
      1. R = rotations in x's dtype                         (n_hashes, hs, n_b/2)
      2. p = x R for every round at once: put a rounds dim into x, x.unsqueeze(-3) is
         (..., 1, T, hs), and @ broadcasts it against R      (..., n_hashes, T, n_b/2)
      3. [p ; −p]: torch.cat along the last dim              (..., n_hashes, T, n_b)
      4. argmax over the last dim                            (..., n_hashes, T), int64
    Do not change x or rotations in place.
    """
    raise NotImplementedError("exercise lsh_buckets: write argmax([xR; −xR]) for every round")
