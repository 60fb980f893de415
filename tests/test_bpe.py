"""GPT-2's byte-level BPE: the split, the learned merges, lossless round trips, GPT-2's files."""

import json
import os
import random

import pytest

from minigpt.tokenizer import (
    ENDOFTEXT,
    GPT2_BYTE_ORDER,
    TOKENIZER_KINDS,
    BPETokenizer,
    bytes_to_unicode,
    load_tokenizer,
    make_tokenizer,
    pretokenize,
    tokenizer_from_dict,
)

CORPUS = (
    "¿Dónde está el gato? ¡El gato come carne! The cat's meat, the cat'll eat it.\n"
    "def forward(self, idx):\n    return self.lm_head(x)  # (B, T, vocab)\n"
    "Números: 12 345 6789 y ٣٤٥ y ²³. Emoji 😺🥩😺!   Espacios\t\ttabs\n\n"
) * 3

VARIED = ("¿Qué tal, pingüino? ¡Año 2024! naïve café 😺🥩👩‍👩‍👧 "
          "for i in range(10):\n\tprint(i ** 2)  # cuadrados\n\n\n   x = {'a': 1.5e-3}"
          "  \t  trailing   \r\n don't we'll I'M ٣٤ १२३ ½ Ⅻ 漢字 ")


def random_unicode_text(rng: random.Random, length: int) -> str:
    pool = list("aé ¿¡'\t\n1٣😺.") + ["'s", "  ", "'ll"]
    chars = []
    while len(chars) < length:
        r = rng.random()
        if r < 0.3:
            chars.append(rng.choice(pool))
        else:
            code = rng.randrange(0x20, 0x250) if r < 0.7 else rng.randrange(0x250, 0x110000)
            if not 0xD800 <= code <= 0xDFFF:
                chars.append(chr(code))
    return "".join(chars)


def test_byte_to_unicode_map_is_gpt2s():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert table[0] == "Ā" and table[0xAD] == "Ń"  # the 68 non-printables from U+0100 on
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert [table[b] for b in GPT2_BYTE_ORDER][:3] == ["!", '"', "#"]


@pytest.mark.parametrize("text, words", [
    ("Hello world", ["Hello", " world"]),
    ("I'm can't we'll they're you've he'd it's",
     ["I", "'m", " can", "'t", " we", "'ll", " they", "'re", " you", "'ve", " he", "'d", " it",
      "'s"]),
    ("IT'S", ["IT", "'", "S"]),  # contractions are lower case only
    ("'s'", ["'s", "'"]),
    ("abc123 4567", ["abc", "123", " 4567"]),
    ("٣٤٥ १२३ ²³ Ⅻ½", ["٣٤٥", " १२३", " ²³", " Ⅻ½"]),  # \p{N}: other scripts' digits, Nl, No
    ("a   b", ["a", "  ", " b"]),  # a whitespace run gives its last space to the next word
    ("a \t b", ["a", " \t", " b"]),
    ("a\tb", ["a", "\t", "b"]),
    ("a\n\nb", ["a", "\n", "\n", "b"]),
    ("end   ", ["end", "   "]),
    ("¿Qué? ¡Sí!", ["¿", "Qué", "?", " ¡", "Sí", "!"]),
    ("x = f(y) ** 2", ["x", " =", " f", "(", "y", ")", " **", " 2"]),
    ("😺🥩 ok", ["😺🥩", " ok"]),
    ("cafe\u0301", ["cafe", "\u0301"]),  # a combining mark is not \p{L}
    ("a\x1cb", ["a", "\x1c", "b"]),  # U+001C: str.isspace() says yes, regex's \s says no
    ("a\u3000\u3000b", ["a", "\u3000", "\u3000", "b"]),
    ("", []),
])
def test_pretokenize_splits_as_gpt2s_regex(text, words):
    assert pretokenize(text) == words


def test_pretokenize_matches_the_regex_package_when_available():
    regex = pytest.importorskip("regex")
    import unicodedata
    pattern = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
                            r"|\s+(?!\S)|\s+")
    rng = random.Random(3)
    for _ in range(3000):
        # characters assigned in Python's Unicode database (regex's may be newer)
        text = "".join(c for c in random_unicode_text(rng, rng.randrange(0, 20))
                       if unicodedata.category(c) != "Cn")
        assert pretokenize(text) == pattern.findall(text), repr(text)


def brute_force_merges(corpus: str, vocab_size: int) -> list[tuple[bytes, bytes]]:
    """The training rule, as plainly as possible: every word occurrence, every pair, again."""
    words = [[bytes([b]) for b in word.encode("utf-8")] for word in pretokenize(corpus)]
    vocab = {bytes([b]) for b in range(256)}
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for word in words:
            for i in range(len(word) - 1):
                counts[(word[i], word[i + 1])] = counts.get((word[i], word[i + 1]), 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        vocab.add(best[0] + best[1])
        for word in words:
            i = 0
            while i < len(word) - 1:
                if (word[i], word[i + 1]) == best:
                    word[i:i + 2] = [best[0] + best[1]]
                i += 1
    return merges


@pytest.mark.parametrize("corpus, vocab_size", [(CORPUS, 400), ("aaab aab", 258),
                                                ("aaaa aaa aa a " * 3, 270)])
def test_training_learns_the_same_merges_as_a_brute_force_loop(corpus, vocab_size):
    tokenizer = BPETokenizer.train(corpus, vocab_size, progress=False)
    as_bytes = [(tokenizer.token_bytes(tokenizer.token_to_id[a]),
                 tokenizer.token_bytes(tokenizer.token_to_id[b])) for a, b in tokenizer.merges]
    assert as_bytes == brute_force_merges(corpus, vocab_size)
    assert len(tokenizer.tokens) <= vocab_size
    assert tokenizer.vocab_size == len(tokenizer.tokens) + 3


def test_the_docstring_worked_example():
    tokenizer = BPETokenizer.train("aaab aab", 258, progress=False)
    assert tokenizer.merges == [("a", "a"), ("Ġ", "aa")]
    assert tokenizer.encode(" aab") == [257, ord("b")]
    assert [tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id] == [258, 259, 260]


def test_merges_make_the_corpus_shorter_and_stop_when_nothing_is_left():
    tokenizer = BPETokenizer.train(CORPUS, 500, progress=False)
    assert len(tokenizer.encode(CORPUS)) < len(CORPUS.encode("utf-8")) / 2
    tiny = BPETokenizer.train("ab", 1000, progress=False)
    assert tiny.merges == [("a", "b")] and len(tiny.tokens) == 257
    assert BPETokenizer([]).encode("hé") == list("hé".encode())  # no merges: bytes


def test_round_trips_any_unicode_text():
    tokenizer = BPETokenizer.train(CORPUS, 450, progress=False)
    rng = random.Random(0)
    for _ in range(300):
        text = random_unicode_text(rng, rng.randrange(0, 40))
        ids = tokenizer.encode(text)
        assert all(0 <= i < tokenizer.first_special_id for i in ids)
        assert tokenizer.decode(ids) == text
    for text in (VARIED, CORPUS, "   \n\t \r\n  ", "0123456789" * 5):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.encode(VARIED) == tokenizer.encode(VARIED)  # cached words give the same ids


def test_special_tokens_come_after_the_merges_and_never_from_text():
    tokenizer = BPETokenizer.train(CORPUS, 300, progress=False)
    n = len(tokenizer.tokens)
    assert [tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id] == [n, n + 1, n + 2]
    ids = tokenizer.encode("gato", add_bos=True, add_eos=True)
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    assert tokenizer.decode(ids) == "<|bos|>gato<|eos|>"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "gato"
    for text in ("<|bos|><|eos|><|pad|>", ENDOFTEXT, "a<|eos|>b"):
        assert max(tokenizer.encode(text)) < n
        assert tokenizer.decode(tokenizer.encode(text)) == text
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocab_size])


def test_json_round_trip_and_make_tokenizer(tmp_path):
    assert "bpe" in TOKENIZER_KINDS
    tokenizer = make_tokenizer("bpe", CORPUS, vocab_size=350)
    assert len(tokenizer.tokens) == 350
    assert make_tokenizer("byte", CORPUS).kind == "byte"  # other kinds ignore vocab_size
    path = os.path.join(tmp_path, "bpe.json")
    tokenizer.save(path)
    loaded = load_tokenizer(path)
    assert loaded == tokenizer and loaded.vocab_size == tokenizer.vocab_size
    assert loaded.encode(VARIED) == tokenizer.encode(VARIED)
    assert tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict()))) == tokenizer
    with pytest.raises(ValueError, match="merges"):
        tokenizer_from_dict({"kind": "bpe", "merges": "a b"})


def test_gpt2_files_round_trip(tmp_path):
    tokenizer = BPETokenizer.train(CORPUS, 400, progress=False)
    tokenizer.save_files(tmp_path)
    with open(os.path.join(tmp_path, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[0].startswith("#version") and lines[-1] == ""
    assert len(lines) == len(tokenizer.merges) + 2
    loaded = BPETokenizer.from_files(tmp_path)
    assert loaded == tokenizer and loaded.encode(VARIED) == tokenizer.encode(VARIED)
    assert loaded.eos_id == tokenizer.eos_id


def gpt2_style_files(folder, tokenizer: BPETokenizer):
    """The folder GPT-2's own files would make: bytes in GPT-2's order, then the merges, then
    <|endoftext|> as the only special token."""
    table = bytes_to_unicode()
    tokens = [table[b] for b in GPT2_BYTE_ORDER] + tokenizer.tokens[256:]
    vocab = {t: i for i, t in enumerate(tokens + [ENDOFTEXT])}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in tokenizer.merges))
    return vocab


def test_gpt2s_endoftext_plays_bos_eos_and_pad(tmp_path):
    trained = BPETokenizer.train(CORPUS, 400, progress=False)
    vocab = gpt2_style_files(tmp_path, trained)
    gpt2 = BPETokenizer.from_files(tmp_path)
    end = vocab[ENDOFTEXT]
    assert gpt2.special_tokens == [ENDOFTEXT] and gpt2.vocab_size == end + 1
    assert gpt2.bos_id == gpt2.eos_id == gpt2.pad_id == gpt2.special_id(ENDOFTEXT) == end
    assert gpt2.encode("!") == [0]  # GPT-2's id 0 is "!"
    ids = gpt2.encode(VARIED, add_eos=True)
    assert ids[-1] == end and end not in gpt2.encode(ENDOFTEXT)
    assert gpt2.decode(ids) == VARIED + ENDOFTEXT
    # the same merges, so the same tokens, only numbered differently
    assert ([gpt2.tokens[i] for i in gpt2.encode(VARIED)]
            == [trained.tokens[i] for i in trained.encode(VARIED)])
    assert tokenizer_from_dict(gpt2.to_dict()).eos_id == end
    gpt2.save_files(os.path.join(tmp_path, "again"))
    assert BPETokenizer.from_files(os.path.join(tmp_path, "again")) == gpt2


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        BPETokenizer.from_files(tmp_path)
    with pytest.raises(ValueError, match="256 byte tokens"):
        BPETokenizer([("a", "b")], tokens=["a", "b", "ab"])


@pytest.mark.parametrize("files", ["trained", "gpt2_style"])
def test_same_ids_as_transformers_gpt2_tokenizer(tmp_path, files):
    transformers = pytest.importorskip("transformers")
    tokenizer = BPETokenizer.train(CORPUS, 500, progress=False)
    if files == "trained":
        tokenizer.save_files(tmp_path)
    else:
        gpt2_style_files(tmp_path, tokenizer)
        tokenizer = BPETokenizer.from_files(tmp_path)
    theirs = transformers.GPT2Tokenizer(os.path.join(tmp_path, "vocab.json"),
                                        os.path.join(tmp_path, "merges.txt"))
    rng = random.Random(5)
    texts = [VARIED, CORPUS] + [random_unicode_text(rng, 30) for _ in range(50)]
    for text in texts:
        assert tokenizer.encode(text) == theirs.encode(text), repr(text)
