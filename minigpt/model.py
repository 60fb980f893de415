"""A GPT-2-style language model, written out by hand.

A language model assigns a probability to every token of the vocabulary as the next one
(the lecture's "Modelo de lenguaje"):

    p_θ(w_t | w_{1:t-1})  for every w_t in the vocabulary   (a "lista de probabilidades")

The model below computes these probabilities for all positions of a sequence at once:

    token ids (B, T) ─► token embedding + position embedding ─► n_layer × Block ─► LayerNorm
                     ─► lm_head (tied to the token embedding) ─► logits (B, T, vocab)

Each Block is pre-LayerNorm: x = x + Attention(LN(x)); x = x + MLP(LN(x)).

Causal self-attention, per head, exactly as the slides write it:

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + causal mask) V

When generating, only the newest token's query q_t is new; the keys K and values V of
the earlier tokens are kept in a KV cache (the slide "Generando de forma iterativa el
siguiente token": q_t Kᵀ, softmax, then the weighted sum of V).

Two options come from the lecture's last slide, "Transformadores para una mejor eficiencia":
- attention="lsh": Reformer's locality-sensitive-hashing attention (Kitaev et al. 2020):
  shared query-keys, hashed into buckets, attention within sorted chunks (minigpt.lsh);
- embedding_dim E < n_embd and share_layers: ALBERT's factorised embedding and cross-layer
  parameter sharing (Lan et al. 2019), see `GPT`'s docstring for the parameter counts.

Shapes: B = batch, T = tokens in this call, T_k = tokens attended to (cache + this call),
C = n_embd, nh = n_head, hs = head size = C / nh (the slides' d_k), E = embedding_dim.
"""

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from minigpt.config import ATTENTION_KINDS, SHARE_MODES, GPTConfig  # noqa: F401 (re-exported)
from minigpt.lsh import default_n_buckets, lsh_attention, random_rotations, shared_keys, shared_qk_attention
from minigpt.sampling import sample_next_token

class KVCache:
    """The keys and values of every token processed so far, one pair per layer.

    keys[layer], values[layer]: (B, nh, T_past, hs). Each forward call appends the new
    tokens' keys and values, so the next token's query q_t can attend to all of them
    without recomputing the prefix.

    max_length: when the final length is known (generate knows it: prompt + new tokens),
    each layer's keys and values are written into buffers of that length, allocated at the
    first call, and keys[layer] is a view of the filled part. Without it every call
    concatenates, copying the whole past again: O(T) per step, O(T²) over a generation.
    The buffers are written in place, so use them without gradients (generation).
    """

    def __init__(self, n_layer: int, max_length: int | None = None):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer
        self.max_length = max_length
        self.buffers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer

    @property
    def length(self) -> int:
        """How many tokens are cached (T_past), read before a forward call appends to it."""
        return self.length_at(0)

    def length_at(self, layer: int) -> int:
        """How many tokens the given depth holds (during a forward call, the depths before
        this one already hold this call's tokens too)."""
        return 0 if self.keys[layer] is None else self.keys[layer].size(2)

    def keep_rows(self, keep: torch.Tensor):
        """Keep only these rows of the batch (a boolean (B,) mask): `GPT.generate` drops
        the answers that are finished."""
        for layer, buffers in enumerate(self.buffers):
            if self.keys[layer] is None:
                continue
            length = self.length_at(layer)
            if buffers is not None:  # (B, nh, max_length, hs) each -> (B_kept, ...)
                self.buffers[layer] = key_buffer, value_buffer = buffers[0][keep], buffers[1][keep]
                self.keys[layer] = key_buffer.narrow(2, 0, length)
                self.values[layer] = value_buffer.narrow(2, 0, length)
            else:
                self.keys[layer], self.values[layer] = self.keys[layer][keep], self.values[layer][keep]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Add this call's k, v (B, nh, T, hs) and return everything cached: (B, nh, T_k, hs)."""
        past = self.length_at(layer)
        T_k = past + k.size(2)
        if self.max_length is not None and T_k <= self.max_length:
            if self.buffers[layer] is None:  # (B, nh, max_length, hs) each, filled as we go
                shape = (*k.shape[:2], self.max_length, k.size(3))
                self.buffers[layer] = (k.new_empty(shape), v.new_empty(shape))
            key_buffer, value_buffer = self.buffers[layer]
            key_buffer.narrow(2, past, k.size(2)).copy_(k)  # [:, :, past:T_k] = k, in place:
            value_buffer.narrow(2, past, v.size(2)).copy_(v)  # nothing earlier is copied
            k, v = key_buffer.narrow(2, 0, T_k), value_buffer.narrow(2, 0, T_k)  # views [:, :, :T_k]
        elif self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def dropout_layer(p: float) -> nn.Module | None:
    """nn.Dropout(p), or None when p = 0 (most runs here train with p = 0): no dropout, and
    no module to call. A token generated by GPTConfig() (4 blocks, attention by hand) would
    otherwise pass 13 calls that change nothing (three per block and one after the
    embeddings; sdpa calls two per block), 4-6% of its time at batch 1."""
    return nn.Dropout(p) if p > 0 else None


@contextlib.contextmanager
def without_onednn():
    """Switch PyTorch's oneDNN (mkldnn) kernels off for a while, then back as they were.

    On a CPU, F.gelu (the exact, erf one) runs through oneDNN, which sets its kernel up
    again at every call. For one generated token (4·C = 512 numbers) torch.profiler
    measured here (torch 2.13, 2-core CPU, default GPTConfig, batch 1) 49 µs per GELU
    call with oneDNN against 6 µs with PyTorch's own kernel, and the matrix products
    around it ran about a fifth faster too (their data stays in the caches): 1.10-1.18x
    the tokens/s in all. Training's GELUs, over thousands of tokens at once, are where
    oneDNN is the faster one, and they keep it. The switch is the whole process's: two
    threads generating at once could put it back in the wrong order.
    """
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


class DiagonalBlocks:
    """An attention mask for one row of tokens made of blocks that never see each other.

    The row is the blocks one after the other, and allowed[b], a boolean (L_b, L_b), says
    which keys of block b each of its queries may see (every query also sees itself). The
    row's T × T mask would hold these on its diagonal and False everywhere else, so the
    attention is computed block by block: Σ_b L_b² scores instead of T², and no row is
    padded to the length of another. align.data.pack_pairs lays a batch of preference
    pairs out this way, one block per pair. Pass position_ids with it (each sequence
    counts its own positions).
    """

    def __init__(self, allowed: list[torch.Tensor]):
        for b, block in enumerate(allowed):
            if block.dim() != 2 or block.size(0) != block.size(1) or block.size(0) == 0:
                raise ValueError(f"DiagonalBlocks: block {b} must be a square (L, L) mask with "
                                 f"L ≥ 1, got shape {tuple(block.shape)}")
        self.allowed = allowed
        self.lengths = [block.size(0) for block in allowed]

    def to(self, device) -> "DiagonalBlocks":
        return DiagonalBlocks([block.to(device) for block in self.allowed])

    def dense(self) -> torch.Tensor:
        """The same mask written out whole: (1, T, T), False between blocks."""
        return torch.block_diag(*[block.bool() for block in self.allowed]).unsqueeze(0)

    def per_block(self, device=None) -> list[torch.Tensor]:
        """Each block's keys as `attention_allowed` gives a whole row's: a boolean
        (1, 1, L_b, L_b) per block, on `device`, in which every query also sees itself."""
        masks = []
        for block in self.allowed:
            block = block.to(device=device, dtype=torch.bool)
            itself = torch.eye(block.size(0), dtype=torch.bool, device=block.device)
            masks.append((block | itself).view(1, 1, *block.shape))
        return masks


def attention_allowed(
    past: int, T: int, attention_mask: torch.Tensor | None, device=None
) -> torch.Tensor:
    """Which keys each query may attend to: a boolean (B or 1, 1, T, T_k) tensor.

    Query i sits at absolute index past + i; key j at index j (T_k = past + T).
    - causal: key j is allowed when j <= past + i (no peeking at future tokens);
    - padding: with attention_mask (B, T_k), 1 = real token and 0 = padding, padded keys
      are not allowed. A padded query would then see no key at all, and softmax over
      nothing is 0/0 = NaN; so every query may always see itself. Real tokens never
      see padding, and what padded positions compute is never used.
    - packing: a row may hold several sequences one after the other, marked 1, 1, 2, 2, 2
      (align.data.pack_sequences); a token then sees only the keys of its own sequence,
      exactly what it would see alone in a row (a 0/1 mask is the case of one sequence).
    - any other pattern: a boolean (B, T, T_k) attention_mask is taken as `allowed` itself,
      each query's row of keys (for instance two answers after their shared prompt); every
      query still sees itself. (A row of independent blocks can skip this whole-row mask:
      see `DiagonalBlocks`.)
    """
    T_k = past + T
    if attention_mask is not None and attention_mask.dim() == 3:
        if attention_mask.shape[1:] != (T, T_k):
            raise ValueError(f"a 3-D attention_mask must be (B, {T}, {T_k}): each of the {T} "
                             f"queries' allowed keys; got {tuple(attention_mask.shape)}")
        itself = torch.eye(T, T_k, dtype=torch.bool, device=attention_mask.device)
        return (attention_mask.bool() | itself).unsqueeze(1)  # (B, 1, T, T_k)
    if attention_mask is None and T == 1:  # one new token (a generation step) sees every key
        return torch.ones(1, 1, 1, T_k, dtype=torch.bool, device=device)
    query_index = torch.arange(past, T_k, device=device).view(T, 1)
    key_index = torch.arange(T_k, device=device).view(1, T_k)
    causal = key_index <= query_index  # (T, T_k)
    if attention_mask is None:
        return causal.view(1, 1, T, T_k)
    if attention_mask.shape[-1] != T_k:
        raise ValueError(
            f"attention_mask covers {attention_mask.shape[-1]} tokens, expected {T_k} "
            f"(cached {past} + new {T})"
        )
    key_sequence = attention_mask.view(-1, 1, 1, T_k)  # 0: padding, k ≥ 1: the row's k-th sequence
    query_sequence = attention_mask[:, past:].reshape(-1, 1, T, 1)
    # a real query sees the real keys of its own sequence; a padded one (never used) every real key
    seen = (key_sequence != 0) & ((key_sequence == query_sequence) | (query_sequence == 0))
    return (causal & seen) | (key_index == query_index)  # (B, 1, T, T_k)


def positions_in_sequence(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T_k) attention mask -> (B, T_k) positions: how many tokens of the same run of
    equal mask values come before each token. Left padding 0 0 1 1 1 gives the real
    tokens 0 1 2; a packed row 1 1 2 2 2 gives 0 1 0 1 2 (each sequence as if alone)."""
    B, T_k = attention_mask.shape
    index = torch.arange(T_k, device=attention_mask.device).expand(B, T_k)
    starts = torch.ones_like(attention_mask, dtype=torch.bool)  # where a run of values begins
    starts[:, 1:] = attention_mask[:, 1:] != attention_mask[:, :-1]
    run_start = torch.where(starts, index, 0).cummax(dim=-1).values  # (B, T_k)
    return index - run_start


def causal_attention(q, k, v, allowed, dropout=None):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V, for every head at once.

    q: (B, nh, T, hs) the queries of this call's T tokens; k, v: (B, nh, T_k, hs) the keys
    and values of every token they may look at (T_k = T, or the cache's T_past + T).
    allowed: boolean (B or 1, 1, T, T_k) from `attention_allowed`; where it is False the
    score gets -inf, so softmax gives that key weight exactly 0 (no peeking at the future,
    no attending to padding). None: every key is allowed, nothing to mask (PyTorch's
    scaled_dot_product_attention reads attn_mask=None the same way). dropout: applied to
    the weights A before they weigh V (the model's nn.Dropout); None for no dropout.
    Returns y: (B, nh, T, hs).

    While generating with the cache, T = 1: q is the slide's q_t (1 × d_k per head), q_t Kᵀ
    gives one score per cached token, and A·V is their weighted sum of values. Every cached
    token is in q_t's past, so without padding the model passes allowed=None there.
    """
    # >>> solution causal_attention
    # scores = q Kᵀ / √d_k: one row per query, one column per key. Scaling q (T × hs
    # numbers) before the product equals scaling the scores (T × T_k), and is cheaper.
    scores = (q / math.sqrt(q.size(-1))) @ k.transpose(-2, -1)  # (B, nh, T, T_k)
    if allowed is not None:  # + causal (and padding) mask: -inf, in place
        scores.masked_fill_(~allowed, float("-inf"))
    A = F.softmax(scores, dim=-1)  # (B, nh, T, T_k), each row sums to 1
    if dropout is not None:
        A = dropout(A)
    # the slide's "V·A": the attention-weighted sum of value rows, written A @ v here
    return A @ v  # (B, nh, T, T_k) @ (B, nh, T_k, hs) -> (B, nh, T, hs)
    # <<< solution


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention: softmax(Q Kᵀ / √d_k + mask) V for every head.

    With attention="lsh" one projection serves as both queries and keys (Reformer's
    shared-QK: k_j = q_j / ‖q_j‖), so c_attn makes 2C numbers per token instead of 3C.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.n_head = config.n_head
        self.head_size = config.n_embd // config.n_head  # d_k
        self.attention = config.attention
        self.dropout = config.dropout
        projections = 2 if config.attention == "lsh" else 3  # (QK, V) or (Q, K, V)
        self.c_attn = nn.Linear(config.n_embd, projections * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # heads → C
        self.attn_dropout = dropout_layer(config.dropout)
        self.resid_dropout = dropout_layer(config.dropout)
        # LSH's random rotations R are a fixed function of (lsh_seed + depth, n_buckets), so
        # outputs are deterministic (evaluation, exact resume); Reformer redraws them at every
        # step. Kept here so that each is drawn on the CPU and moved to the device once.
        self.rotations: dict[tuple, torch.Tensor] = {}

    def heads(self, x):
        """(B, T, C) -> (B, nh, T, hs): the C columns split into nh heads of hs."""
        B, T, C = x.shape
        return x.view(B, T, self.n_head, self.head_size).transpose(1, 2)

    def forward(self, x, allowed, layer=0, kv_cache=None, is_plain_causal=False, key_is_real=None):
        """x: (B, T, C). allowed: (B|1, 1, T, T_k) from `attention_allowed`, None (plain
        causal, or one new token that sees every key), or a list of (1, 1, L_b, L_b) masks,
        one per block of a DiagonalBlocks row (B = 1). layer: this
        block's depth (the KV cache's index). key_is_real: (B, T_k) or None, the attention
        mask, which LSH attention reads directly (it never builds the T × T_k `allowed`)."""
        B, T, C = x.shape
        if self.attention == "lsh":
            y = self.lsh_forward(x, allowed, layer, kv_cache, key_is_real)  # (B, nh, T, hs)
        else:
            # (B, T, 3C) -> (B, T, 3, nh, hs) -> (3, B, nh, T, hs): q, k, v with the heads apart
            qkv = self.c_attn(x).view(B, T, 3, self.n_head, self.head_size).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)  # each (B, nh, T, hs), as `heads` would split them
            if kv_cache is not None:
                k, v = kv_cache.append(layer, k, v)  # (B, nh, T_k, hs): the past and the new
            if isinstance(allowed, list):  # DiagonalBlocks: each block attends within itself
                # split rather than slice each block: backward then joins the blocks' gradients
                # in one copy (a slice's backward writes into a zero tensor of the whole row)
                lengths = [block.size(-1) for block in allowed]  # L_b, adding up to T
                blocks = zip(q.split(lengths, 2), k.split(lengths, 2), v.split(lengths, 2), allowed)
                y = torch.cat([self.attend(q_b, k_b, v_b, block) for q_b, k_b, v_b, block in blocks],
                              dim=2)  # (1, nh, T, hs)
            else:
                y = self.attend(q, k, v, allowed, is_plain_causal and T > 1)  # (B, nh, T, hs)

        y = self.c_proj(y.transpose(1, 2).reshape(B, T, C))  # heads side by side: (B, T, C)
        return y if self.resid_dropout is None else self.resid_dropout(y)

    def attend(self, q, k, v, allowed, is_causal=False):
        """softmax(Q Kᵀ / √d_k + mask) V: the formula by hand ("manual", the function the
        exercises replace) or PyTorch's fused kernel ("sdpa"). q: (B, nh, T, hs); k, v:
        (B, nh, T_k, hs); allowed: (B|1, 1, T, T_k) or None. Returns (B, nh, T, hs)."""
        if self.attention == "manual":
            return causal_attention(q, k, v, allowed, self.attn_dropout)
        # The same formula in one fused call; is_causal lets it pick its fastest kernel.
        return F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=allowed,  # None: plain causal, or one query that sees every key
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )

    def lsh_forward(self, x, allowed, layer, kv_cache, key_is_real):
        """Reformer's attention. A whole sequence (nothing cached yet) goes through LSH
        attention; a token decoded with the KV cache attends exactly to every cached key
        (`shared_qk_attention`): with one query there is no T × T matrix to avoid, so
        hashing would only throw keys away."""
        C = x.size(-1)
        qk, v = map(self.heads, self.c_attn(x).split(C, dim=2))  # each (B, nh, T, hs)
        past = 0 if kv_cache is None else kv_cache.length_at(layer)
        if kv_cache is not None:
            k, v_all = kv_cache.append(layer, shared_keys(qk), v)  # (B, nh, T_k, hs)
        if past > 0:
            return shared_qk_attention(qk, k, v_all, allowed, self.attn_dropout)  # (B, nh, T, hs)
        T, config = x.size(1), self.config
        n_buckets = config.lsh_n_buckets or default_n_buckets(T, config.lsh_bucket_size)
        key = (layer, n_buckets, x.device, qk.dtype)
        if key not in self.rotations:  # drawn once per depth, length and device, then reused
            self.rotations[key] = random_rotations(config.lsh_n_hashes, self.head_size, n_buckets,
                                                   seed=config.lsh_seed + layer, device=x.device,
                                                   dtype=qk.dtype)  # (n_hashes, hs, n_buckets / 2)
        rotations = self.rotations[key]
        return lsh_attention(qk, v, rotations, config.lsh_bucket_size, key_is_real,
                             self.attn_dropout)  # (B, nh, T, hs)


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear(C → 4C), GELU, Linear(4C → C)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        # GELU(x) = x·Φ(x) exactly ("erf"), or GPT-2's tanh approximation ("tanh")
        self.gelu = nn.GELU(approximate="none" if config.gelu == "erf" else "tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = dropout_layer(config.dropout)

    def forward(self, x):
        x = self.c_proj(self.gelu(self.c_fc(x)))  # (B, T, C)
        return x if self.dropout is None else self.dropout(x)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + Attention(LN(x)), then x + MLP(LN(x)).

    attn, mlp: modules to use instead of new ones: ALBERT's sharing passes the same
    module to the blocks at every depth.
    """

    def __init__(self, config: GPTConfig, attn=None, mlp=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = attn if attn is not None else CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = mlp if mlp is not None else MLP(config)

    def forward(self, x, allowed, layer=0, kv_cache=None, is_plain_causal=False, key_is_real=None):
        x = x + self.attn(self.ln_1(x), allowed, layer, kv_cache, is_plain_causal, key_is_real)  # residual
        x = x + self.mlp(self.ln_2(x))  # residual
        return x


def depth_blocks(config: GPTConfig) -> nn.ModuleList:
    """The n_layer blocks, one per depth, with ALBERT's cross-layer sharing.

    share_layers="none": n_layer independent blocks (GPT-2). "all": one block, the same
    module at every depth (its LayerNorms too). "attention" / "mlp": one attention (or
    MLP) module shared by every depth; each depth keeps its own LayerNorms and the other
    sub-layer. A module that appears at several depths is one set of parameters:
    `parameters()` yields it once, the optimiser updates it once with the gradient summed
    over the depths, and a checkpoint stores it once (the state_dict names it at every
    depth, all names pointing at the same tensor).
    """
    mode, n = config.share_layers, config.n_layer
    if mode == "all":
        block = Block(config)
        return nn.ModuleList([block] * n)
    attn = CausalSelfAttention(config) if mode == "attention" else None
    mlp = MLP(config) if mode == "mlp" else None
    return nn.ModuleList([Block(config, attn=attn, mlp=mlp) for _ in range(n)])


class GPT(nn.Module):
    """The language model p_θ(w_t | w_{1:t-1}): token ids in, next-token logits out.

    With ALBERT's factorised embedding (E = embedding_dim < H = n_embd) the embeddings are
    E wide and a Linear E → H lifts them into the model; at the output a Linear H → E
    brings the hidden state back to E before the tied token matrix (V × E) scores it.

    Unique parameters, V = vocab_size, P = block_size, L = n_layer, biases on (bias=True):

        embeddings            V·E + P·E              (E = H: V·H + P·H, and no projections)
        projections (E < H)   (E·H + H) + (H·E + E)  in and out
        attention sub-layer   a = H·kH + kH + H·H + H    (c_attn, c_proj; k = 3, or 2 with LSH's shared QK)
        MLP sub-layer         f = H·4H + 4H + 4H·H + H   (c_fc, c_proj)
        a block's LayerNorms  n = 4H                     (ln_1, ln_2: a weight and a bias each)
        blocks                none: L·(a + f + n)    all: a + f + n
                              attention: a + L·(f + n)    mlp: f + L·(a + n)
        final LayerNorm       2H

    `num_parameters` counts each shared tensor once; tests/test_model_options.py checks these
    closed forms.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        E = config.embedding_dim or config.n_embd
        self.wte = nn.Embedding(config.vocab_size, E)  # token embedding (V, E)
        self.wpe = nn.Embedding(config.block_size, E)  # learned position embedding (P, E)
        self.factorised = E < config.n_embd
        if self.factorised:  # ALBERT: V·E + E·H parameters instead of V·H
            self.embed_in = nn.Linear(E, config.n_embd, bias=config.bias)  # E → H
            self.embed_out = nn.Linear(config.n_embd, E, bias=config.bias)  # H → E, before lm_head
        self.drop = dropout_layer(config.dropout)
        self.blocks = depth_blocks(config)
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(E, config.vocab_size, bias=False)
        # Tied embeddings: the output layer reuses the token embedding matrix (vocab, E).
        self.lm_head.weight = self.wte.weight

        # GPT-2 initialisation: N(0, 0.02) everywhere, biases 0, and the projections that
        # write into the residual stream scaled by 1/√(2·n_layer), since each of the
        # 2·n_layer residual additions adds variance. n_layer is the depth, shared or not:
        # a shared block still adds to the residual stream at every depth.
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        if self.factorised:
            # Two N(0, 0.02) matrices in a row would start the residual stream at
            # 0.02 · 0.02·√E instead of GPT-2's 0.02. With std 1/√E, E → H keeps the
            # embedding's scale (Var = E · 0.02² · 1/E), and with 1/√H, H → E hands the
            # tied output layer vectors of ln_f's scale, as lm_head gets them when E = H.
            nn.init.normal_(self.embed_in.weight, mean=0.0, std=1 / math.sqrt(E))
            nn.init.normal_(self.embed_out.weight, mean=0.0, std=1 / math.sqrt(config.n_embd))

    @classmethod
    def from_pretrained(cls, folder, **kwargs) -> "GPT":
        """A GPT with the weights of a local Hugging Face GPT-2 folder (see minigpt.gpt2)."""
        from minigpt.gpt2 import from_pretrained

        return from_pretrained(folder, **kwargs)

    def save_pretrained(self, folder, **kwargs) -> str:
        """Write this model as a Hugging Face GPT-2 folder (see minigpt.gpt2)."""
        from minigpt.gpt2 import save_pretrained

        return save_pretrained(self, folder, **kwargs)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, include_position_embedding: bool = True) -> int:
        """Parameters, counting the tied embedding once."""
        n = sum(p.numel() for p in self.parameters())
        return n if include_position_embedding else n - self.wpe.weight.numel()

    def output_layer(self, x):
        """Hidden states (B, T, C) -> logits (B, T, vocab): lm_head, after ALBERT's H → E."""
        if self.factorised:
            x = self.embed_out(x)  # (B, T, E)
        return self.lm_head(x)  # (B, T, vocab)

    def forward(self, idx, targets=None, attention_mask=None, position_ids=None, kv_cache=None):
        """Logits for every position, and the cross-entropy loss when targets are given.

        idx: (B, T) token ids. targets: (B, T) the next token at each position, -100 where
        no loss is wanted. attention_mask, position_ids, kv_cache: see `hidden_states`.

        Returns (logits (B, T, vocab), loss or None), where
            loss = -1/N Σ_t log p_θ(targets_t | idx_{≤t})  over the N targets that are not -100.
        """
        x = self.hidden_states(idx, attention_mask, position_ids, kv_cache)  # (B, T, C)
        logits = self.output_layer(x)  # (B, T, vocab)
        loss = None
        if targets is not None:
            # bf16 logits (CUDA autocast) are scored in float32; float64 stays float64
            logits_for_loss = logits.to(torch.promote_types(logits.dtype, torch.float32))
            loss = F.cross_entropy(
                logits_for_loss.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
            )
        return logits, loss

    def hidden_states(self, idx, attention_mask=None, position_ids=None, kv_cache=None):
        """The transformer's output before the output layer: (B, T, C) after the final LayerNorm.

        attention_mask: (B, T_k), 1 for real tokens, 0 for (left) padding, covering the
        cached tokens too; right padding needs no mask (no real token comes after it).
        Rows packed with several sequences number them 1, 2, ...; a boolean (B, T, T_k)
        mask gives each query's keys outright (see `attention_allowed`); a DiagonalBlocks
        gives them block by block for one row of independent blocks.
        position_ids: (B, T); by default each token's place in its own run of equal mask
        values, so a left-padded prompt starts at position 0 (a 3-D mask and a DiagonalBlocks
        need them given).
        kv_cache: a KVCache to read the past
        from and append this call's keys and values to. (The reward model reads its
        score from these hidden states.)
        """
        B, T = idx.shape
        past = 0 if kv_cache is None else kv_cache.length
        blocks = isinstance(attention_mask, DiagonalBlocks)
        if blocks:
            problems = [  # (what is wrong, how to say it), the first that holds is reported
                (B != 1, f"{B} rows"),
                (sum(attention_mask.lengths) != T,
                 f"blocks of {sum(attention_mask.lengths)} tokens in all for a row of {T}"),
                (position_ids is None, "no position_ids (each sequence counts its own)"),
                (kv_cache is not None, "a KV cache"),
                (self.config.attention == "lsh", "attention 'lsh' (it reads a mask as padding only)"),
            ]
            problem = next((reason for wrong, reason in problems if wrong), None)
            if problem is not None:
                raise ValueError(f"DiagonalBlocks masks one row of independent blocks, with "
                                 f"position_ids, no KV cache, attention 'manual' or 'sdpa'; got {problem}")
        if position_ids is not None and attention_mask is not None and kv_cache is None:
            # packed rows (align.data): a row may be longer than the context, its sequences not
            if int(position_ids.max()) >= self.config.block_size:
                raise ValueError(f"position {int(position_ids.max())} is past block_size="
                                 f"{self.config.block_size}: a packed sequence is too long")
        elif past + T > self.config.block_size:
            raise ValueError(
                f"sequence of {past + T} tokens ({past} cached + {T} new) is longer than "
                f"block_size={self.config.block_size}; crop it to the last "
                f"{self.config.block_size} tokens"
            )
        if position_ids is None:
            if attention_mask is None:
                position_ids = torch.arange(past, past + T, device=idx.device).view(1, T)
            elif attention_mask.dim() == 3:
                raise ValueError("a 3-D attention_mask says who sees whom, not where each token "
                                 "sits: pass position_ids with it")
            else:  # each token's place in its own sequence: (B, T_k) -> this call's (B, T)
                position_ids = positions_in_sequence(attention_mask)[:, -T:]

        if (self.config.attention == "lsh" and attention_mask is not None
                and (attention_mask.dim() == 3 or bool((attention_mask > 1).any()))):
            raise ValueError("LSH attention reads the attention mask as real/padding only: rows "
                             "packed with several sequences need attention 'manual' or 'sdpa'")
        x = self.wte(idx) + self.wpe(position_ids)  # (B, T, E) + (B or 1, T, E)
        if self.factorised:
            x = self.embed_in(x)  # (B, T, E) -> (B, T, C)
        if self.drop is not None:
            x = self.drop(x)
        is_plain_causal = attention_mask is None and past == 0
        # The T × T_k mask, unless there is nothing to mask or the attention never reads it:
        # one new token without padding (a generation step) may look at every key there is,
        # so it gets allowed=None; the fused kernel's plain causal case and LSH over a whole
        # sequence are linear in memory, the mask is not.
        attention = self.config.attention
        one_query_sees_all = attention_mask is None and T == 1
        needs_mask = not (one_query_sees_all or (is_plain_causal and attention != "manual"))
        if blocks:  # one (1, 1, L_b, L_b) mask per block: see CausalSelfAttention.forward
            allowed = attention_mask.per_block(idx.device)
        else:
            allowed = attention_allowed(past, T, attention_mask, idx.device) if needs_mask else None
        for layer, block in enumerate(self.blocks):  # the same module at several depths when shared
            x = block(x, allowed, layer, kv_cache, is_plain_causal, attention_mask)  # (B, T, C)
        return self.ln_f(x)

    @torch.no_grad()
    def next_token_probs(self, idx, temperature: float = 1.0, attention_mask=None):
        """The lecture's "lista de probabilidades": p_θ(w | idx) for every token w.

        idx: (B, T). Returns (B, vocab), each row sums to 1.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 for a distribution, got {temperature}")
        idx = idx[:, -self.config.block_size :]
        if attention_mask is not None:
            attention_mask = attention_mask[:, -self.config.block_size :]
        logits, _ = self(idx, attention_mask=attention_mask)
        return F.softmax(logits[:, -1, :].float() / temperature, dim=-1)  # (B, vocab)

    @torch.inference_mode()
    @without_onednn()
    def generate(
        self,
        idx,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_id: int | None = None,
        use_cache: bool = True,
        attention_mask=None,
        generator: torch.Generator | None = None,
    ):
        """Generate iteratively: predict a distribution, pick a token, append it, repeat.

        idx: (B, T) prompts; several prompts of different lengths are left-padded, with
        attention_mask (B, T) marking real tokens (see `pad_left`). temperature 0 means
        greedy (always the most likely token); top_k / top_p restrict sampling (see
        minigpt.sampling). A row that has produced eos_id is finished: it is filled with
        eos_id until every row is finished, then generation stops early (the model stops
        computing finished rows before that: they leave the batch).

        With use_cache, the prompt is processed once and each step feeds only the newest
        token, whose query attends to the cached keys and values (`kv_cache_step`). Learned absolute
        positions tie each cached key to its position, so once the context fills
        block_size the window must slide and the cache cannot be reused: each later step
        recomputes the last block_size tokens, exactly what use_cache=False does.

        The model is put in eval mode (no dropout) while generating, then set back. It runs
        under torch.inference_mode: like no_grad, and it also skips the bookkeeping autograd
        keeps on every tensor (version counters, views), which at one token per step is a
        large part of the time (about 1.15x the tokens/s of no_grad at batch 1 on a CPU).
        The tokens returned are copied out of it, so they can go into training like any tensor.
        It also runs without oneDNN (`without_onednn`), whose GELU costs more to set up than
        one token's MLP takes to compute.

        Returns (B, T + new) token ids: the prompt followed by the new tokens.
        """
        was_training = self.training
        self.eval()
        block_size = self.config.block_size
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # no padding: the plain causal mask is enough (and faster)
        B, T = idx.shape
        # Every row's tokens, the prompt's and the new ones, in one buffer written as they
        # come (appending with torch.cat would copy all of it again at every step); the
        # mask too. A finished row holds eos_id from its end on.
        out = idx.new_full((B, T + max_new_tokens), 0 if eos_id is None else eos_id)
        out[:, :T] = idx
        mask = None
        if attention_mask is not None:
            mask = attention_mask.new_ones(B, T + max_new_tokens)  # new tokens are real
            mask[:, :T] = attention_mask
        # The rows still being written: `tokens`, `mask` and the cache hold only those, and
        # `rows` says which rows of `out` they are. Once a quarter of them have finished,
        # the finished ones leave the batch: answers end at different lengths, and the
        # model need not go on computing the ones that are over.
        tokens, rows = out, torch.arange(B, device=idx.device)
        final_length = min(block_size, T + max_new_tokens)  # what the cache will hold
        cache = KVCache(self.config.n_layer, max_length=final_length) if use_cache else None
        finished = torch.zeros(B, dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            if use_cache and T <= block_size:
                # The cache holds the tokens before the new ones (none at the first step).
                so_far = None if mask is None else mask[:, :T]
                logits = kv_cache_step(self, tokens[:, :T], cache, so_far)  # (B, vocab)
            else:
                # No cache, or a full context: (re)compute the last block_size tokens.
                start = max(T - block_size, 0)
                window = None if mask is None else mask[:, start:T]
                logits, _ = self(tokens[:, start:T], attention_mask=window)
                logits = logits[:, -1, :]  # (B, vocab)
            next_token = sample_next_token(logits, temperature, top_k, top_p, generator)  # (B,)
            if eos_id is not None:
                next_token = next_token.masked_fill(finished, eos_id)
                finished |= next_token == eos_id
            tokens[:, T] = next_token  # (B, T + 1) filled
            T += 1
            if eos_id is not None:
                done = int(finished.sum())
                if done == len(rows):
                    break
                if 4 * done >= len(rows):  # drop the finished rows, keep the others
                    out[rows[finished], :T] = tokens[finished, :T]
                    keep = ~finished
                    tokens, rows, finished = tokens[keep], rows[keep], finished[keep]
                    mask = None if mask is None else mask[keep]
                    if cache is not None:
                        cache.keep_rows(keep)
        if tokens is not out:
            out[rows, :T] = tokens[:, :T]  # the rows still in the batch at the end
        self.train(was_training)
        with torch.inference_mode(False):  # an ordinary tensor: autograd may save it for backward
            return out[:, :T].clone()  # (B, T + new)


@torch.no_grad()
def kv_cache_step(model, idx, cache, attention_mask=None):
    """One step of iterative generation with a KV cache: the logits of the next token.

    idx: (B, T) every token so far. cache: a KVCache holding the keys and values of the
    first cache.length tokens of idx (0 at the first step, T − 1 at the later ones).
    attention_mask: None, or (B, T) with 1 for real tokens and 0 for left padding.

    Only the tokens not cached yet, idx[:, cache.length:], go through the model, with
    kv_cache=cache: their queries attend to the cached keys and values plus their own,
    and the model appends their keys and values to the cache (so cache.length becomes T).
    The model takes the positions of the new tokens from cache.length. At the first step
    this feeds the whole prompt; after that, one token. Returns (B, vocab).
    """
    # >>> solution kv_cache_step
    new_tokens = idx[:, cache.length :]  # (B, T_new): what the cache does not hold yet
    logits, _ = model(new_tokens, attention_mask=attention_mask, kv_cache=cache)  # (B, T_new, vocab)
    return logits[:, -1, :]  # (B, vocab): the prediction after the last token
    # <<< solution


def pad_left(sequences: list[list[int]], pad_id: int, device=None):
    """Left-pad token lists to one length for batched generation.

    Returns idx (B, T_max) and attention_mask (B, T_max) with 1 for real tokens, 0 for pads.
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pad_left needs at least one sequence, and no empty sequence")
    T_max = max(len(s) for s in sequences)
    idx = torch.full((len(sequences), T_max), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), T_max), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        idx[row, T_max - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[row, T_max - len(tokens) :] = 1
    return idx.to(device), attention_mask.to(device)
