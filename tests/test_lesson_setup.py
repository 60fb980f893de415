"""lessons/lesson_setup.token_label: how the lessons' figures show one token, for the three
tokenizer kinds. A byte, or a BPE token, that is only part of a UTF-8 character must show
its bytes (\\xNN), never U+FFFD, which decode gives and which hides which bytes they are."""

import pathlib
import sys

import pytest

from minigpt.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer

LESSONS = pathlib.Path(__file__).resolve().parents[1] / "lessons"
sys.path.insert(0, str(LESSONS))
from lesson_setup import token_label  # noqa: E402

ACCENTS_AND_EMOJI = "¿Qué tal, niño? Él está en el año 2024 😺😺 y el café cuesta 3 € " * 20


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_char_tokenizer_labels():
    tok = CharTokenizer.from_text("ab é\n\t")
    assert token_label(tok, tok.encode("a")[0]) == "a"
    assert token_label(tok, tok.encode("é")[0]) == "é"  # a whole character, shown as itself
    assert token_label(tok, tok.encode(" ")[0]) == "␣"
    assert token_label(tok, tok.encode("\n")[0]) == "\\n"
    assert token_label(tok, tok.encode("\t")[0]) == "\\t"
    assert [token_label(tok, i) for i in (tok.eos_id, tok.bos_id, tok.pad_id)] == \
        ["EOS", "BOS", "PAD"]


def test_byte_tokenizer_labels():
    tok = ByteTokenizer()
    assert token_label(tok, ord("a")) == "a"
    assert token_label(tok, ord(" ")) == "␣"
    assert token_label(tok, ord("\n")) == "\\n"
    first, second = "é".encode("utf-8")  # 0xc3 0xa9: neither is a character alone
    assert token_label(tok, first) == "\\xc3"
    assert token_label(tok, second) == "\\xa9"
    assert [token_label(tok, i) for i in (tok.eos_id, tok.bos_id, tok.pad_id)] == \
        ["EOS", "BOS", "PAD"]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(ACCENTS_AND_EMOJI, vocab_size=300, progress=False)


def test_bpe_partial_tokens_show_their_bytes(bpe):
    partial = [i for i in range(256, bpe.first_special_id) if not is_utf8(bpe.token_bytes(i))]
    assert partial, "the corpus should give merges that end or start inside a character"
    for i in partial:
        data = bpe.token_bytes(i)
        assert "\ufffd" in bpe.decode([i])  # what the old label showed
        label = token_label(bpe, i)
        assert "\ufffd" not in label
        # independent of the code: printable ASCII as itself, every other byte as \xNN
        # (these tokens hold no complete multi-byte character)
        expected = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in data)
        assert label == expected, (data, label)


def test_bpe_labels_of_known_tokens(bpe):
    # the emoji's last three bytes were merged into one token, of no character on its own
    tail = "😺".encode("utf-8")[1:]  # b"\x9f\x98\xba"
    assert tail in {bpe.token_bytes(i) for i in range(bpe.first_special_id)}
    tail_id = next(i for i in range(bpe.first_special_id) if bpe.token_bytes(i) == tail)
    assert token_label(bpe, tail_id) == "\\x9f\\x98\\xba"
    # a raw byte of the BPE vocabulary (ids 0-255 are the byte values here)
    assert token_label(bpe, 0xc3) == "\\xc3"
    # complete tokens keep their text: a letter, a space, an accented letter, the emoji
    for text, label in (("a", "a"), (" ", "␣"), ("é", "é"), ("😺", "😺")):
        ids = bpe.encode(text)
        assert len(ids) == 1 and token_label(bpe, ids[0]) == label
    whole = [i for i in range(256, bpe.first_special_id)
             if is_utf8(bpe.token_bytes(i)) and bpe.token_bytes(i).decode().isprintable()]
    assert whole and all(token_label(bpe, i) == bpe.decode([i]) for i in whole)
    assert [token_label(bpe, i) for i in (bpe.eos_id, bpe.bos_id, bpe.pad_id)] == \
        ["EOS", "BOS", "PAD"]
