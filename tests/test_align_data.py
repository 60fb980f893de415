"""Alignment data: JSONL validation with file and line, the template, -100 labels, truncation."""

import pytest

from align.data import (PREFERENCE_KEYS, SFT_KEYS, TruncationStats, collate, read_jsonl,
                        prompt_tokens, response_tokens, rows_from_dict_of_lists, tokenize_example,
                        tokenize_pair, write_jsonl)
from toyworld.template import format_prompt
from minigpt import ByteTokenizer, CharTokenizer
from minigpt.errors import InputError


def write_lines(tmp_path, lines, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "hi", "completion": ', "line 2: not valid JSON"),
    ('["hi", "yo"]', "line 2: expected a JSON object with keys ['prompt', 'completion'], got list"),
    ('{"prompt": "hi"}', "line 2: missing key 'completion'"),
    ('{"prompt": "hi", "completion": 3}', "line 2: 'completion' must be a string, got int"),
    ('{"prompt": "  ", "completion": "yo"}', "line 2: 'prompt' is empty"),
])
def test_bad_rows_name_the_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path, ['{"prompt": "a", "completion": "b"}', line])
    with pytest.raises(InputError) as error:
        read_jsonl(path, SFT_KEYS)
    assert str(error.value).startswith(f"{path}, {message}")


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such data file"):
        read_jsonl(tmp_path / "nope.jsonl", SFT_KEYS)
    with pytest.raises(InputError, match="no rows"):
        read_jsonl(write_lines(tmp_path, ["", "  "]), SFT_KEYS)


def test_jsonl_round_trip_keeps_unicode(tmp_path):
    rows = [{"prompt": "¿Dónde está Lima?", "chosen": "En Perú 🙂", "rejected": "no sé"}]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    assert read_jsonl(tmp_path / "pairs.jsonl", PREFERENCE_KEYS) == rows


def test_dict_of_lists_loads_and_is_checked():
    rows = rows_from_dict_of_lists({"prompt": ["hello"], "chosen": ["hi"], "rejected": ["go away"]})
    assert rows == [{"prompt": "hello", "chosen": "hi", "rejected": "go away"}]
    with pytest.raises(InputError, match="different lengths"):
        rows_from_dict_of_lists({"prompt": ["a", "b"], "chosen": ["c"], "rejected": ["d"]})
    with pytest.raises(InputError, match=r"missing column\(s\) \['rejected'\]"):
        rows_from_dict_of_lists({"prompt": ["a"], "chosen": ["c"]})


def test_prompt_labels_are_masked_and_eos_is_trained():
    tokenizer = ByteTokenizer()
    stats = TruncationStats()
    ids, labels = tokenize_example(tokenizer, "What is 2+2?", "4", 64, 32, stats)
    prompt_len = len(format_prompt("What is 2+2?").encode())
    assert ids[:prompt_len] == list(format_prompt("What is 2+2?").encode())
    assert labels[:prompt_len] == [-100] * prompt_len
    assert labels[prompt_len:] == [ord("4"), tokenizer.eos_id] == ids[prompt_len:]
    assert stats.rows == 1 and stats.prompt_truncated == stats.response_truncated == stats.dropped == 0


def test_eos_is_trained_even_when_pad_equals_eos():
    """Masking comes from labels, never from comparing ids with the pad id."""
    tokenizer = ByteTokenizer()
    examples = [tokenize_example(tokenizer, "hi", "yo", 64, 32, TruncationStats()),
                tokenize_example(tokenizer, "hello there", "good day", 64, 32, TruncationStats())]
    input_ids, labels = collate(examples, pad_id=tokenizer.eos_id)  # pad with the EOS id
    short = len(examples[0][0])
    assert labels[0, short - 1] == tokenizer.eos_id  # the real EOS: a target
    assert (labels[0, short:] == -100).all()  # the padding after it: not a target
    assert (input_ids[0, short:] == tokenizer.eos_id).all()


def test_truncation_keeps_the_prompt_end_then_cuts_the_response_and_counts_it():
    tokenizer = ByteTokenizer()
    stats = TruncationStats()
    prompt, response = "x" * 50 + " the question?", "an answer that is long"
    ids, labels = tokenize_example(tokenizer, prompt, response, max_length=40,
                                   max_prompt_length=20, stats=stats)
    assert len(ids) == 40 and stats.prompt_truncated == 1 and stats.response_truncated == 1
    assert bytes(ids[:20]) == format_prompt(prompt).encode()[-20:]  # the end is kept
    assert labels[20:] == ids[20:] and ids[20:] == list(response.encode())[:20]
    dropped = tokenize_example(tokenizer, prompt, response, max_length=10, max_prompt_length=10,
                               stats=stats)
    assert dropped is None and stats.dropped == 1 and stats.rows == 2
    assert "1 dropped" in stats.summary()


def test_a_pair_shares_one_prompt_and_is_cut_alike():
    tokenizer = ByteTokenizer()
    stats = TruncationStats()
    row = {"prompt": "p" * 30, "chosen": "short", "rejected": "a much longer rejected answer"}
    pair = tokenize_pair(tokenizer, row, max_length=48, max_prompt_length=24, stats=stats)
    (chosen_ids, chosen_labels), (rejected_ids, rejected_labels) = pair["chosen"], pair["rejected"]
    assert chosen_ids[:24] == rejected_ids[:24] and len(rejected_ids) == 48
    assert chosen_labels[:24] == [-100] * 24 and chosen_labels[-1] == tokenizer.eos_id
    assert rejected_labels[:24] == [-100] * 24 and rejected_labels[24:] == rejected_ids[24:]
    assert stats.prompt_truncated == 1 and stats.response_truncated == 1


def test_text_outside_a_char_vocabulary_is_a_clear_error():
    tokenizer = CharTokenizer.from_text(format_prompt("abc") + "abc")
    with pytest.raises(InputError, match="prompt 'abz'.*character 'z'"):
        tokenize_example(tokenizer, "abz", "abc", 64, 32, TruncationStats())


class MergingTokenizer(ByteTokenizer):
    """A tokenizer whose tokens can cross the prompt/response boundary (as BPE's can)."""

    def _encode_text(self, text):
        ids = list(text.encode("utf-8"))
        out = []
        for i in ids:
            if out and out[-1] == ord(" ") and i == ord("h"):
                out[-1] = 255  # " h" becomes one token
            else:
                out.append(i)
        return out


def test_a_tokenizer_that_merges_across_the_template_boundary_gets_the_response_on_its_own():
    """As GPT-2's BPE does with "Assistant: " + "hi": the lone " " token the prompt ends
    in (where generation starts) stays, and the response is encoded after it, not as the
    merged " h" that generation would never produce after the prompt."""
    tokenizer = MergingTokenizer()
    prompt_ids = prompt_tokens(tokenizer, "yes")
    assert prompt_ids[-1] == ord(" ")  # "Assistant: " ends in a lone space
    merged = tokenizer.encode(format_prompt("yes") + "hi")
    assert merged[: len(prompt_ids)] != prompt_ids  # " h" crossed the boundary
    ids = response_tokens(tokenizer, "yes", "hi")
    assert ids == [ord("h"), ord("i"), tokenizer.eos_id]
    assert tokenizer.decode(prompt_ids + ids[:-1]) == format_prompt("yes") + "hi"  # lossless
    # no merge across the boundary: the same tokens as the split of the whole text
    assert response_tokens(tokenizer, "yes", "yo") == (
        tokenizer.encode(format_prompt("yes") + "yo")[len(prompt_ids):] + [tokenizer.eos_id])


def test_a_bpe_that_joins_a_space_to_the_next_word_gives_the_template_space_to_the_answer():
    """A byte-level BPE reads "Assistant: Kyoto" as ":", " K", ... in running text (the
    pre-training corpus): the prompt's tokens stop before that space and the answer's first
    token carries it, so prompt + response are exactly the tokens of the whole text, and
    the model answers from the split it was pre-trained on."""
    from minigpt.tokenizer import BPETokenizer
    from align.data import answer_takes_the_space
    from toyworld.world import pretraining_corpus
    tokenizer = BPETokenizer.train(pretraining_corpus(30_000, seed=0), 400, progress=False)
    assert answer_takes_the_space(tokenizer)
    assert not answer_takes_the_space(ByteTokenizer())
    for prompt, response in [("Where is Lima?", "Lima is in Peru."), ("hello", "hi"),
                             ("What is 2+2?", "4."), ("hello", " two spaces")]:
        prompt_ids, ids = prompt_tokens(tokenizer, prompt), response_tokens(tokenizer, prompt, response)
        assert prompt_ids == tokenizer.encode(format_prompt(prompt)[:-1])  # no lone " " at the end
        assert prompt_ids + ids[:-1] == tokenizer.encode(format_prompt(prompt) + response)
        assert tokenizer.decode(ids[:-1]) == " " + response and ids[-1] == tokenizer.eos_id
    # the byte tokenizer keeps the space in the prompt, as before
    byte = ByteTokenizer()
    assert prompt_tokens(byte, "hello")[-1] == ord(" ")
    assert response_tokens(byte, "hello", "hi") == [ord("h"), ord("i"), byte.eos_id]


def test_sampled_text_never_carries_the_template_space(tiny_model):
    """Generation starts after the prompt's tokens; with a BPE that gives the template's
    space to the answer, the answer's text is what follows that space."""
    import torch
    from align.sampling import sample_answers
    from minigpt import GPT
    from minigpt.tokenizer import BPETokenizer
    from tests.conftest import tiny_config
    from toyworld.world import pretraining_corpus
    tokenizer = BPETokenizer.train(pretraining_corpus(30_000, seed=0), 400, progress=False)
    torch.manual_seed(1)
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=64)).eval()
    for sample in sample_answers(model, tokenizer, ["hello", "Where is Lima?"] * 4, 12, seed=3):
        decoded = tokenizer.decode([i for i in sample.answer_ids if i != tokenizer.eos_id],
                                   skip_special_tokens=True)
        assert sample.prompt_ids == prompt_tokens(tokenizer, sample.prompt)
        assert decoded == sample.text or decoded == " " + sample.text
