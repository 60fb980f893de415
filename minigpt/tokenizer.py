"""Tokenizers: text ⇄ token ids.

Two kinds, both with explicit special tokens BOS (begin of sequence), EOS (end of
sequence) and PAD (padding):

- CharTokenizer: one id per character seen in a corpus (as nanoGPT's character-level
  Shakespeare). Text with a character outside that vocabulary is an error by default;
  with unknown="unk" such characters become the <|unk|> token instead (documented, never
  silent: `count_unknown` tells how many there are).
- ByteTokenizer: one id per UTF-8 byte (0-255), so any text at all (accents, ¿¡,
  emoji) encodes losslessly, with no vocabulary to build.

Special tokens are never produced by `encode` from text: writing "<|eos|>" in a string
gives its characters, not the EOS id. Add them with add_bos / add_eos, or by id.

Example:
    >>> tok = ByteTokenizer()
    >>> ids = tok.encode("¿Qué?", add_eos=True)
    >>> tok.decode(ids)
    '¿Qué?<|eos|>'
    >>> tok.decode(ids, skip_special_tokens=True)
    '¿Qué?'
"""

import json
import os
import unicodedata

from minigpt.checkpoint import write_atomically

BOS, EOS, PAD, UNK = "<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"


class Tokenizer:
    """What both tokenizers share: special tokens, decoding specials, JSON."""

    kind = "base"
    special_tokens: list[str] = []
    first_special_id = 0

    def special_id(self, name: str) -> int:
        return self.first_special_id + self.special_tokens.index(name)

    @property
    def bos_id(self) -> int:
        return self.special_id(BOS)

    @property
    def eos_id(self) -> int:
        return self.special_id(EOS)

    @property
    def pad_id(self) -> int:
        return self.special_id(PAD)

    @property
    def vocab_size(self) -> int:
        return self.first_special_id + len(self.special_tokens)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        ids = self._encode_text(text)
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Token ids (a list or a 1-D tensor) back to text; specials shown as <|eos|> etc."""
        ids = [int(i) for i in ids]
        pieces, run = [], []
        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            if i >= self.first_special_id:
                pieces.append(self._decode_text(run))
                run = []
                if not skip_special_tokens:
                    pieces.append(self.special_tokens[i - self.first_special_id])
            else:
                run.append(i)
        pieces.append(self._decode_text(run))
        return "".join(pieces)

    def to_dict(self) -> dict:
        raise NotImplementedError

    def save(self, path):
        """Write the tokenizer as JSON (atomically)."""
        write_atomically(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1).encode())

    def __eq__(self, other):
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()


class ByteTokenizer(Tokenizer):
    """Ids 0-255 are the UTF-8 bytes of the text; 256, 257, 258 are BOS, EOS, PAD.

    Decoding a sequence that is not valid UTF-8 (a sampled model can produce one) shows
    the broken bytes as the replacement character U+FFFD.
    """

    kind = "byte"
    special_tokens = [BOS, EOS, PAD]
    first_special_id = 256

    def _encode_text(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def _decode_text(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        return {"kind": self.kind}


class CharTokenizer(Tokenizer):
    """One id per character of a fixed vocabulary, then BOS, EOS, PAD, UNK."""

    kind = "char"
    special_tokens = [BOS, EOS, PAD, UNK]

    def __init__(self, chars: list[str], unknown: str = "error"):
        if unknown not in ("error", "unk"):
            raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer needs a list of distinct single characters")
        self.chars = list(chars)
        self.unknown = unknown
        self.first_special_id = len(self.chars)
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str, unknown: str = "error") -> "CharTokenizer":
        """The vocabulary is every distinct character of the corpus, sorted."""
        return cls(sorted(set(text)), unknown)

    @property
    def unk_id(self) -> int:
        return self.special_id(UNK)

    def count_unknown(self, text: str) -> int:
        """How many characters of text are not in the vocabulary."""
        return sum(1 for c in text if c not in self.char_to_id)

    def _encode_text(self, text: str) -> list[int]:
        ids = []
        for position, c in enumerate(text):
            i = self.char_to_id.get(c)
            if i is None:
                if self.unknown == "error":
                    name = unicodedata.name(c, "unnamed")
                    raise ValueError(
                        f"character {c!r} (U+{ord(c):04X} {name}) at position {position} is "
                        f"not in this tokenizer's vocabulary of {len(self.chars)} characters; "
                        f"build the vocabulary from text that contains it, use "
                        f"CharTokenizer(..., unknown='unk'), or use the byte tokenizer"
                    )
                i = self.unk_id
            ids.append(i)
        return ids

    def _decode_text(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars), "unknown": self.unknown}


TOKENIZER_KINDS = ("char", "byte")


def tokenizer_from_dict(values: dict) -> Tokenizer:
    """Rebuild a tokenizer from its to_dict() (as stored in JSON and checkpoints)."""
    if not isinstance(values, dict):
        raise ValueError(f"a tokenizer is a JSON object with a 'kind', got {type(values).__name__}")
    kind = values.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        if not isinstance(values.get("chars"), str):
            raise ValueError("a char tokenizer needs a 'chars' string")
        return CharTokenizer(list(values["chars"]), values.get("unknown", "error"))
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {TOKENIZER_KINDS}")


def load_tokenizer(path) -> Tokenizer:
    """Read a tokenizer saved with Tokenizer.save."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such tokenizer file")
    with open(path, encoding="utf-8") as f:
        return tokenizer_from_dict(json.load(f))


def make_tokenizer(kind: str, corpus: str) -> Tokenizer:
    """A tokenizer of the given kind; a char tokenizer takes its vocabulary from corpus."""
    if kind == "char":
        return CharTokenizer.from_text(corpus)
    if kind == "byte":
        return ByteTokenizer()
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {TOKENIZER_KINDS}")
