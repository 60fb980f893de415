"""Tokenizers: text ⇄ token ids.

Three kinds, all with explicit special tokens BOS (begin of sequence), EOS (end of
sequence) and PAD (padding):

- CharTokenizer: one id per character seen in a corpus (as nanoGPT's character-level
  Shakespeare). Text with a character outside that vocabulary is an error by default;
  with unknown="unk" such characters become the <|unk|> token instead (documented, never
  silent: `count_unknown` tells how many there are).
- ByteTokenizer: one id per UTF-8 byte (0-255), so any text at all (accents, ¿¡,
  emoji) encodes losslessly, with no vocabulary to build.
- BPETokenizer: GPT-2's byte-level byte-pair encoding (see its docstring): bytes, merged
  by learned merges into longer tokens; trained here or read from GPT-2's
  vocab.json + merges.txt.

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

from tqdm import tqdm

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


# ---------------------------------------------------------------------------------------
# GPT-2's byte-level BPE
# ---------------------------------------------------------------------------------------

ENDOFTEXT = "<|endoftext|>"  # GPT-2's only special token (id 50256 in its vocab.json)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from the 256 byte values to 256 printable characters.

    Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
    68 (controls, space, U+00AD) get the characters from U+0100 on, in byte order. So a
    space is 'Ġ' (U+0120) and a newline 'Ċ' (U+010A): every token is a visible string,
    with no space or newline inside it, as vocab.json and merges.txt need.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
# GPT-2's ids 0-255: the byte stand-ins in the order of its bytes_to_unicode lists
# (printable bytes first, then the rest); the trained tokenizer here uses id = byte value.
GPT2_BYTE_ORDER = sorted(range(256), key=lambda b: ord(BYTE_TO_CHAR[b]))

# \s of the `regex` module (Unicode White_Space), which GPT-2's pattern uses. Python's
# str.isspace() differs: it also counts U+001C..U+001F.
WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                       "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after an apostrophe, as GPT-2 lists them


def char_class(c: str) -> str:
    """'s' whitespace, 'L' letter (\\p{L}), 'N' number (\\p{N}), 'o' anything else."""
    if c in WHITESPACE:
        return "s"
    category = unicodedata.category(c)[0]
    return category if category in ("L", "N") else "o"


def pretokenize(text: str) -> list[str]:
    """Split text into words exactly as GPT-2's regular expression does:

        's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

    written out as a scanner, because Python's re has no \\p{L} (letters) or \\p{N}
    (numbers); they come from unicodedata's categories (L*, N*). At each position the
    first alternative that matches wins:
      1. an apostrophe and a contraction ('s 't 're 've 'm 'll 'd, lower case only);
      2-4. an optional single space, then a run of letters, of numbers, or of other
         characters (punctuation, symbols, emoji, combining marks);
      5. a whitespace run that is not followed by a non-space: all of it at the end of the
         text, else all but its last character (which then starts the next word: " a");
      6. any other whitespace run (a single whitespace before a word, like "\\ta").
    Joining the words gives back the text.

        >>> pretokenize("I'm 12  años\\n¿sí?")
        ['I', "'m", ' 12', ' ', ' años', '\\n', '¿', 'sí', '?']
    """
    classes = [char_class(c) for c in text]
    words, i, n = [], 0, len(text)

    def run_end(j: int, kind: str) -> int:
        while j < n and classes[j] == kind:
            j += 1
        return j

    while i < n:
        c = text[i]
        if c == "'":
            contraction = next((x for x in CONTRACTIONS if text.startswith(x, i + 1)), None)
            if contraction is not None:
                words.append(text[i:i + 1 + len(contraction)])
                i += 1 + len(contraction)
                continue
        start = i + 1 if c == " " and i + 1 < n and classes[i + 1] != "s" else i
        if classes[start] != "s":  # alternatives 2-4: " ?" then a run of one class
            end = run_end(start, classes[start])
        else:  # alternatives 5 and 6: whitespace
            end = run_end(i, "s")
            if end < n and end - i >= 2:
                end -= 1  # \s+(?!\S) gives the last space to the next word
        words.append(text[i:end])
        i = end
    return words


def merge_pair(word: list, pair: tuple, new) -> list:
    """Replace every occurrence of pair in word by new, left to right, non-overlapping."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


class BPETokenizer(Tokenizer):
    """GPT-2's byte-level byte-pair encoding.

    Encoding: split the text into words (`pretokenize`, GPT-2's regular expression); write
    each word's UTF-8 bytes as byte stand-ins (`bytes_to_unicode`: "Ġ" is a space), one
    symbol per byte; then repeatedly merge the adjacent pair of symbols with the lowest
    rank (the earliest learned merge) until no adjacent pair is a merge; each symbol is a
    token of the vocabulary. Words never merge across each other. Any text encodes, and
    decoding joins the tokens' bytes back (broken UTF-8 from a sampled model shows as
    U+FFFD). Results per word are cached.

    Ids: the merged vocabulary (`tokens`: 256 byte tokens, then one per merge result), then
    the special tokens. A tokenizer trained here has ids 0-255 = the byte values, then
    256, 257, ... in merge order, then BOS, EOS, PAD (the project's convention). GPT-2's
    own files order the byte tokens differently and have a single special token,
    <|endoftext|> (id 50256); there `special_id(BOS)`, `special_id(EOS)` and
    `special_id(PAD)` all answer 50256 (`special_names` maps a project name to the token
    that plays it), so `eos_id == bos_id == pad_id == 50256`, as in GPT-2 (mask padding
    through labels, never through ids). decode shows it as "<|endoftext|>". Special
    tokens are never produced by encode from text.

    Example:
        >>> tok = BPETokenizer.train("low lower lowest " * 10, vocab_size=260)
        >>> tok.merges[:2]
        [('l', 'o'), ('lo', 'w')]
        >>> tok.decode(tok.encode("lowly ¿sí? 😺"))
        'lowly ¿sí? 😺'
    """

    kind = "bpe"

    def __init__(self, merges, tokens=None, special_tokens=None):
        """merges: (left, right) pairs of byte-stand-in strings, in rank order. tokens: the
        merged vocabulary in id order (default: bytes in byte order, then each new merge
        result). special_tokens: strings, ids right after the tokens (default BOS, EOS, PAD)."""
        self.merges = [(str(a), str(b)) for a, b in merges]
        if tokens is None:
            tokens = [BYTE_TO_CHAR[b] for b in range(256)]
            seen = set(tokens)
            for a, b in self.merges:
                if a + b not in seen:
                    seen.add(a + b)
                    tokens.append(a + b)
        self.tokens = list(tokens)
        self.special_tokens = list([BOS, EOS, PAD] if special_tokens is None else special_tokens)
        self.token_to_id = {t: i for i, t in enumerate(self.tokens)}
        expected = set(BYTE_TO_CHAR.values()) | {a + b for a, b in self.merges}
        if len(self.token_to_id) != len(self.tokens) or set(self.tokens) != expected:
            raise ValueError("a BPE vocabulary must be the 256 byte tokens and the merge "
                             "results, each once")
        for a, b in self.merges:
            if a not in self.token_to_id or b not in self.token_to_id:
                raise ValueError(f"merge {a!r} {b!r} uses a token outside the vocabulary")
        if len(set(self.special_tokens)) != len(self.special_tokens) or \
                set(self.special_tokens) & set(self.tokens):
            raise ValueError("special tokens must be distinct and outside the merged vocabulary")
        self.first_special_id = len(self.tokens)
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        # which special token plays BOS, EOS and PAD: itself, else GPT-2's <|endoftext|>
        self.special_names = {}
        for name in (BOS, EOS, PAD):
            if name in self.special_tokens:
                self.special_names[name] = name
            elif ENDOFTEXT in self.special_tokens:
                self.special_names[name] = ENDOFTEXT
        self.cache: dict[str, list[int]] = {}

    def special_id(self, name: str) -> int:
        token = self.special_names.get(name, name)
        if token not in self.special_tokens:
            raise ValueError(f"this tokenizer has no {name} token (its special tokens: "
                             f"{self.special_tokens})")
        return self.first_special_id + self.special_tokens.index(token)

    # -- encoding ------------------------------------------------------------------------

    def bpe(self, word: str) -> list[str]:
        """One pre-tokenised word (as byte stand-ins) to its tokens: merge by rank."""
        symbols = list(word)
        while len(symbols) > 1:
            pairs = set(zip(symbols, symbols[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            symbols = merge_pair(symbols, best, best[0] + best[1])
        return symbols

    def _encode_text(self, text: str) -> list[int]:
        ids = []
        for word in pretokenize(text):
            word_ids = self.cache.get(word)
            if word_ids is None:
                chars = "".join(BYTE_TO_CHAR[b] for b in word.encode("utf-8"))
                word_ids = [self.token_to_id[t] for t in self.bpe(chars)]
                if len(self.cache) >= 100_000:
                    self.cache.clear()
                self.cache[word] = word_ids
            ids.extend(word_ids)
        return ids

    def _decode_text(self, ids: list[int]) -> str:
        chars = "".join(self.tokens[i] for i in ids)
        return bytes(CHAR_TO_BYTE[c] for c in chars).decode("utf-8", errors="replace")

    def token_bytes(self, i: int) -> bytes:
        """The bytes token id i stands for (not for special tokens)."""
        return bytes(CHAR_TO_BYTE[c] for c in self.tokens[i])

    # -- training ------------------------------------------------------------------------

    @classmethod
    def train(cls, corpus: str, vocab_size: int = 512, progress: bool = True) -> "BPETokenizer":
        """Learn merges on corpus until the merged vocabulary has vocab_size tokens.

        Start from the 256 byte tokens. Split the corpus into words (`pretokenize`) and
        count each distinct word. Then, repeatedly: count every adjacent pair of tokens
        inside the words (a word seen k times counts k times; pairs never span two words);
        take the most frequent pair (ties: the pair whose bytes sort first, (left, right));
        merge it everywhere into one token; record the merge. Stop at vocab_size tokens or
        when no pair is left. (A merge whose result is already a token — "a"+"bc" after
        "ab"+"c" — adds a merge but no token, as Hugging Face's tokenizers do.)

        Worked example, corpus "aaab aab", vocab_size 258:
          words "aaab" ×1 and " aab" ×1 (the space joins the next word), as bytes.
          pairs: (a,a) 3, (a,b) 2, (Ġ,a) 1  ->  merge a+a = "aa" (id 256)
          words "aa a b", "Ġ aa b": (aa,a) 1, (a,b) 1, (Ġ,aa) 1, (aa,b) 1 -> a tie at 1;
          bytes sort first: (Ġ,aa) is (b" ", b"aa") -> merge Ġ+aa = "Ġaa" (id 257). Stop.
        The vocabulary gets BOS, EOS, PAD after these (ids 258, 259, 260).
        """
        if vocab_size < 256:
            raise ValueError(f"a byte-level BPE vocabulary has at least 256 tokens, "
                             f"got {vocab_size}")
        word_counts: dict[tuple, int] = {}
        for word in pretokenize(corpus):
            key = tuple(word.encode("utf-8"))
            word_counts[key] = word_counts.get(key, 0) + 1
        words = [list(w) for w in word_counts]  # token ids (0-255 are bytes)
        counts = list(word_counts.values())
        id_bytes = [bytes([b]) for b in range(256)]
        bytes_id = {b: i for i, b in enumerate(id_bytes)}
        # pair -> how often it occurs, and in which words (kept up to date merge by merge,
        # so that only the words holding the merged pair are counted again)
        pair_counts: dict[tuple, int] = {}
        pair_words: dict[tuple, set] = {}

        def count_pairs(w: int, sign: int):
            for pair in zip(words[w], words[w][1:]):
                pair_counts[pair] = pair_counts.get(pair, 0) + sign * counts[w]
                if sign > 0:
                    pair_words.setdefault(pair, set()).add(w)
                elif pair_counts[pair] == 0:
                    del pair_counts[pair]

        for w in range(len(words)):
            count_pairs(w, +1)
        merges = []
        bar = tqdm(total=vocab_size - 256, desc="BPE merges", dynamic_ncols=True,
                   disable=not progress or vocab_size - 256 < 1000)
        while len(id_bytes) < vocab_size:
            top = max(pair_counts.values(), default=0)
            if top <= 0:
                break
            best = min((p for p, c in pair_counts.items() if c == top),
                       key=lambda p: (id_bytes[p[0]], id_bytes[p[1]]))
            merged = id_bytes[best[0]] + id_bytes[best[1]]
            new = bytes_id.get(merged)
            if new is None:
                new = bytes_id[merged] = len(id_bytes)
                id_bytes.append(merged)
                bar.update(1)
            merges.append(best)
            for w in sorted(pair_words.pop(best)):
                count_pairs(w, -1)
                words[w] = merge_pair(words[w], best, new)
                count_pairs(w, +1)
        bar.close()

        def chars(i):
            return "".join(BYTE_TO_CHAR[b] for b in id_bytes[i])

        return cls([(chars(a), chars(b)) for a, b in merges])

    # -- files and JSON ------------------------------------------------------------------

    def vocab(self) -> dict[str, int]:
        """vocab.json's content: every token (specials included) to its id."""
        return {t: i for i, t in enumerate(self.tokens + self.special_tokens)}

    @classmethod
    def from_vocab(cls, vocab: dict, merges) -> "BPETokenizer":
        """From a vocab.json dict and merge pairs: the tokens that are neither bytes nor
        merge results are the special tokens (GPT-2: <|endoftext|>); they must come last."""
        ordinary = set(BYTE_TO_CHAR.values()) | {a + b for a, b in merges}
        by_id = sorted(vocab.items(), key=lambda item: item[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise ValueError("vocab.json's ids must be 0, 1, ..., n-1, each once")
        tokens = [t for t, _ in by_id if t in ordinary]
        specials = [t for t, _ in by_id if t not in ordinary]
        if [t for t, _ in by_id] != tokens + specials:
            raise ValueError("vocab.json's special tokens must come after all other tokens")
        return cls(merges, tokens, specials)

    @classmethod
    def from_files(cls, folder) -> "BPETokenizer":
        """Read GPT-2's vocab.json and merges.txt from a folder (as Hugging Face keeps them)."""
        paths = [os.path.join(folder, name) for name in ("vocab.json", "merges.txt")]
        for path in paths:
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: no such file (a GPT-2 tokenizer folder has "
                                        f"vocab.json and merges.txt)")
        with open(paths[0], encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(paths[1], encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line or (number == 1 and line.startswith("#version")):
                    continue
                parts = line.split(" ")
                if len(parts) != 2:
                    raise ValueError(f"{paths[1]}:{number}: a merge is two tokens, got {line!r}")
                merges.append((parts[0], parts[1]))
        return cls.from_vocab(vocab, merges)

    def save_files(self, folder):
        """Write vocab.json and merges.txt (GPT-2's format, read by from_files and by
        transformers.GPT2Tokenizer)."""
        os.makedirs(folder, exist_ok=True)
        write_atomically(os.path.join(folder, "vocab.json"),
                         json.dumps(self.vocab(), ensure_ascii=False).encode())
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in self.merges]
        write_atomically(os.path.join(folder, "merges.txt"), ("\n".join(lines) + "\n").encode())

    def to_dict(self) -> dict:
        return {"kind": self.kind, "merges": [list(pair) for pair in self.merges],
                "tokens": self.tokens, "special_tokens": self.special_tokens}

    @classmethod
    def from_dict(cls, values: dict) -> "BPETokenizer":
        merges, tokens = values.get("merges"), values.get("tokens")
        if not isinstance(merges, list) or \
                not all(isinstance(m, list) and len(m) == 2 for m in merges):
            raise ValueError("a bpe tokenizer needs 'merges', a list of [left, right] pairs")
        if tokens is not None and not isinstance(tokens, list):
            raise ValueError("a bpe tokenizer's 'tokens' is a list of strings in id order")
        return cls([tuple(m) for m in merges], tokens, values.get("special_tokens"))

TOKENIZER_KINDS = ("char", "byte", "bpe")


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
    if kind == "bpe":
        return BPETokenizer.from_dict(values)
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {TOKENIZER_KINDS}")


def load_tokenizer(path) -> Tokenizer:
    """Read a tokenizer saved with Tokenizer.save."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such tokenizer file")
    with open(path, encoding="utf-8") as f:
        return tokenizer_from_dict(json.load(f))


def make_tokenizer(kind: str, corpus: str, vocab_size: int = 512,
                   progress: bool = True) -> Tokenizer:
    """A tokenizer of the given kind; a char tokenizer takes its vocabulary from corpus, a
    bpe tokenizer learns merges on corpus up to vocab_size tokens (BOS/EOS/PAD come on top;
    vocab_size is used by bpe only)."""
    if kind == "char":
        return CharTokenizer.from_text(corpus)
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer.train(corpus, vocab_size, progress=progress)
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {TOKENIZER_KINDS}")
