"""Tokenizers: lossless round trips, explicit special tokens, no silent wrong ids."""

import os
import random

import pytest

from minigpt import ByteTokenizer, CharTokenizer, load_tokenizer
from minigpt.tokenizer import tokenizer_from_dict


def random_unicode_text(rng: random.Random, length: int) -> str:
    """Any code point outside the surrogate range: accents, ¿¡, CJK, emoji, controls."""
    chars = []
    while len(chars) < length:
        code = rng.choice([rng.randrange(0x20, 0x250), rng.randrange(0x250, 0x10FFFF)])
        if not 0xD800 <= code <= 0xDFFF:
            chars.append(chr(code))
    return "".join(chars)


def test_byte_tokenizer_round_trips_random_unicode():
    tokenizer = ByteTokenizer()
    rng = random.Random(0)
    for _ in range(200):
        text = random_unicode_text(rng, rng.randrange(0, 40))
        ids = tokenizer.encode(text)
        assert all(0 <= i < 256 for i in ids)
        assert tokenizer.decode(ids) == text
    spanish = "¿Dónde está Shanghái? ¡Año de pingüinos! 😺🥩"
    assert tokenizer.decode(tokenizer.encode(spanish)) == spanish


def test_char_tokenizer_round_trips_its_corpus_and_random_mixes_of_it():
    rng = random.Random(1)
    corpus = random_unicode_text(rng, 300)
    tokenizer = CharTokenizer.from_text(corpus)
    assert tokenizer.decode(tokenizer.encode(corpus)) == corpus
    for _ in range(50):
        text = "".join(rng.choice(corpus) for _ in range(rng.randrange(0, 30)))
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_special_tokens_are_explicit_and_distinct():
    for tokenizer in (ByteTokenizer(), CharTokenizer.from_text("abc")):
        specials = [tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id]
        first = 256 if isinstance(tokenizer, ByteTokenizer) else 3  # after bytes / characters
        assert specials == [first, first + 1, first + 2]
        ids = tokenizer.encode("ab", add_bos=True, add_eos=True)
        assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
        assert tokenizer.decode(ids) == "<|bos|>ab<|eos|>"
        assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"
        # special tokens are never produced from text
        assert tokenizer.eos_id not in ByteTokenizer().encode("<|eos|>")
    assert ByteTokenizer().vocab_size == 259
    char = CharTokenizer.from_text("cab")
    assert char.chars == ["a", "b", "c"] and char.vocab_size == 3 + 4


def test_unknown_characters_are_an_error_or_a_documented_unk():
    tokenizer = CharTokenizer.from_text("hello")
    with pytest.raises(ValueError, match=r"'é' \(U\+00E9 LATIN SMALL LETTER E WITH ACUTE\) at position 1"):
        tokenizer.encode("hé")
    lenient = CharTokenizer.from_text("hello", unknown="unk")
    assert lenient.encode("hé") == [lenient.char_to_id["h"], lenient.unk_id]
    assert lenient.count_unknown("héé!") == 3
    assert lenient.decode(lenient.encode("hé")) == "h<|unk|>"


def test_invalid_utf8_from_a_model_decodes_with_replacement_characters():
    tokenizer = ByteTokenizer()
    assert tokenizer.decode([0xC3]) == "\ufffd"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([300])


def test_json_save_and_load(tmp_path):
    for tokenizer in (ByteTokenizer(), CharTokenizer.from_text("¿Qué tal? 😺", unknown="unk")):
        path = os.path.join(tmp_path, f"{tokenizer.kind}.json")
        tokenizer.save(path)
        loaded = load_tokenizer(path)
        assert loaded == tokenizer and loaded.vocab_size == tokenizer.vocab_size
        assert loaded.encode("Qué") == tokenizer.encode("Qué")
    with pytest.raises(ValueError, match="unknown tokenizer kind"):
        tokenizer_from_dict({"kind": "wordpiece"})


def test_char_tokenizer_on_tinyshakespeare(shared_dir):
    with open(os.path.join(shared_dir, "data", "tinyshakespeare.txt"), encoding="utf-8") as f:
        text = f.read()
    tokenizer = CharTokenizer.from_text(text)
    assert len(tokenizer.chars) == 65  # nanoGPT's character-level Shakespeare vocabulary
    assert tokenizer.decode(tokenizer.encode(text[:5000])) == text[:5000]
