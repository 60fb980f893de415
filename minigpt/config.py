"""GPTConfig: every number that fixes the model's shape (minigpt.model builds it).

The options of the lecture's last slide live here too: attention="lsh" with its four
lsh_* settings (Reformer) and embedding_dim / share_layers (ALBERT). A bad value is a
ValueError naming the field and what is allowed, before anything is built.
"""

from dataclasses import asdict, dataclass, fields

ATTENTION_KINDS = ("manual", "sdpa", "lsh")
SHARE_MODES = ("none", "all", "attention", "mlp")  # which block weights all depths share
GELU_KINDS = ("erf", "tanh")  # exact GELU, or the tanh approximation GPT-2 uses ("gelu_new")
LSH_DEFAULTS = {"lsh_n_hashes": 2, "lsh_bucket_size": 32, "lsh_n_buckets": None, "lsh_seed": 0}


@dataclass
class GPTConfig:
    """Every number that fixes the model's shape. Travels with checkpoints as JSON."""

    block_size: int = 1024  # the longest context the position embedding covers
    vocab_size: int = 259  # 256 bytes + BOS, EOS, PAD (the byte tokenizer's size)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers, as GPT-2
    attention: str = "manual"  # "manual": the formula by hand; "sdpa": PyTorch's fused kernel;
    # "lsh": Reformer's LSH attention, with these four settings (minigpt.lsh):
    lsh_n_hashes: int = LSH_DEFAULTS["lsh_n_hashes"]  # hash rounds, combined by log-sum-exp
    lsh_bucket_size: int = LSH_DEFAULTS["lsh_bucket_size"]  # m: chunk length; a chunk sees itself + the previous one
    lsh_n_buckets: int | None = LSH_DEFAULTS["lsh_n_buckets"]  # even; None: Reformer's 2·T/m for each T
    lsh_seed: int = LSH_DEFAULTS["lsh_seed"]  # the random rotations' seed; the block at depth l uses seed + l
    # ALBERT: token and position embeddings of width E, projected to n_embd (None: E = n_embd,
    # no projection), and which block weights are one set shared by every depth
    embedding_dim: int | None = None
    share_layers: str = "none"  # "none", "all", "attention" or "mlp"
    # the MLP's GELU: "erf" the exact x·Φ(x); "tanh" the approximation GPT-2 was trained with
    gelu: str = "erf"

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig: n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                f"each head gets n_embd / n_head dimensions, so pick n_embd as a multiple of n_head"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(
                f"GPTConfig.attention must be one of {ATTENTION_KINDS}, got {self.attention!r}"
            )
        if self.gelu not in GELU_KINDS:
            raise ValueError(f"GPTConfig.gelu must be one of {GELU_KINDS}, got {self.gelu!r}")
        self._check_lsh()
        self._check_albert()

    def _check_lsh(self):
        if self.attention != "lsh":
            changed = [name for name, default in LSH_DEFAULTS.items() if getattr(self, name) != default]
            if changed:
                raise ValueError(f"GPTConfig.{changed[0]} only applies to attention='lsh', "
                                 f"but attention={self.attention!r}")
            return
        for name in ("lsh_n_hashes", "lsh_bucket_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.lsh_bucket_size > self.block_size:
            raise ValueError(f"GPTConfig.lsh_bucket_size={self.lsh_bucket_size} does not fit the "
                             f"block_size={self.block_size}: a chunk must be at most block_size tokens")
        n = self.lsh_n_buckets
        if n is not None and (not isinstance(n, int) or n < 2 or n % 2):
            raise ValueError(f"GPTConfig.lsh_n_buckets must be an even integer ≥ 2 (the hash is "
                             f"argmax over [xR; −xR], two buckets per rotation), or None (0 on the "
                             f"command line) for Reformer's 2·T/m, got {n!r}")

    def _check_albert(self):
        E = self.embedding_dim
        if E is not None and (not isinstance(E, int) or not 1 <= E <= self.n_embd):
            raise ValueError(f"GPTConfig.embedding_dim must be an integer from 1 to n_embd={self.n_embd} "
                             f"(a factorised embedding is narrower than the model), or None (0 on the "
                             f"command line) for E = n_embd, got {E!r}")
        if self.share_layers not in SHARE_MODES:
            raise ValueError(f"GPTConfig.share_layers must be one of {SHARE_MODES}, "
                             f"got {self.share_layers!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"GPTConfig: unknown fields {sorted(unknown)}; expected {sorted(known)}")
        return cls(**values)
