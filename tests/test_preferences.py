"""Preference pairs labelled by the gold reward through Bradley-Terry: noisy as people's are."""

import json
import random

import pytest

from align.gold import gold_reward, sigmoid
from align.preferences import label_pairs, main as preferences_main
from minigpt import GPT, ByteTokenizer, save_checkpoint
from tests.conftest import tiny_config


def fresh_counts():
    return {"pairs": 0, "identical_skipped": 0, "empty_skipped": 0}


def test_labels_follow_the_bradley_terry_probability_of_the_gold_reward():
    prompt, good, bad = "What is 2+2?", "2+2 is 4.", "2+2 is 5."
    p_good = sigmoid(gold_reward(prompt, good) - gold_reward(prompt, bad))
    assert 0.9 < p_good < 1.0  # mostly right, not always
    rng, counts = random.Random(0), fresh_counts()
    rows = [row for _ in range(4000) for row in label_pairs(prompt, [good, bad], rng, counts)]
    share = sum(row["chosen"] == good for row in rows) / len(rows)
    assert abs(share - p_good) < 4 * (p_good * (1 - p_good) / len(rows)) ** 0.5
    assert rows[0]["chosen_gold"] == gold_reward(prompt, rows[0]["chosen"])
    first, second = "Lima is a city in Peru.", "Lima is in Peru."
    assert gold_reward("Where is Lima?", first) == gold_reward("Where is Lima?", second)
    tied = [row for _ in range(2000)
            for row in label_pairs("Where is Lima?", [first, second], rng, fresh_counts())]
    assert abs(sum(row["chosen"] == first for row in tied) / len(tied) - 0.5) < 0.05  # a coin flip


def test_identical_and_empty_answers_are_skipped_and_counted():
    counts = fresh_counts()
    rows = label_pairs("hello", ["hi", "hi", "", "Hello.", "Hi there.", "Leave me alone."],
                       random.Random(0), counts)
    assert len(rows) == 1 and counts == {"pairs": 1, "identical_skipped": 1, "empty_skipped": 1}


def test_the_command_reads_a_prompt_file_and_writes_jsonl(tmp_path):
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=96))
    save_checkpoint(tmp_path / "sft" / "ckpt.pt", model, 0, model.config, ByteTokenizer(),
                    extra={"stage": "sft"})
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello"}\n{"prompt": "What is 2+2?"}\n')
    out = tmp_path / "pairs.jsonl"
    rows, counts = preferences_main(["--sft", str(tmp_path / "sft"), "--prompt-file", str(prompts),
                                     "--out", str(out), "--samples", "4", "--max-new-tokens", "8"])
    written = [json.loads(line) for line in open(out)]
    assert written == rows and counts["prompts"] == 2
    assert counts["pairs"] + counts["identical_skipped"] + counts["empty_skipped"] == 4
    for row in written:
        assert row["prompt"] in ("hello", "What is 2+2?") and row["chosen"] != row["rejected"]
        assert row["p_chosen"] == pytest.approx(
            sigmoid(row["chosen_gold"] - row["rejected_gold"]), abs=1e-12)


def test_bad_settings_and_no_pairs_leave_the_output_file_alone(tmp_path, capsys):
    from minigpt.cli import run_main
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=96))
    save_checkpoint(tmp_path / "sft" / "ckpt.pt", model, 0, model.config, ByteTokenizer(),
                    extra={"stage": "sft"})
    out = tmp_path / "pairs.jsonl"
    out.write_text('{"prompt": "keep", "chosen": "me", "rejected": "please"}\n')
    for flags, message in ((["--samples", "1"], "--samples >= 2"),
                           (["--temperature", "0"], "--temperature > 0"),
                           (["--out", str(tmp_path)], "is a folder")):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            run_main(preferences_main, ["--sft", str(tmp_path / "sft"), "--out", str(out), *flags])
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err
    assert "keep" in out.read_text()


def test_pairs_from_world_pair_the_worlds_own_answers():
    from align.preferences import pairs_from_world
    from toyworld.world import train_prompts
    prompts = train_prompts(200, seed=0)
    rows = pairs_from_world(prompts, seed=0)
    assert rows == pairs_from_world(prompts, seed=0)  # deterministic
    assert len(rows) >= len(prompts)  # four answers each: two pairs, fewer when two coincide
    agree = sum(row["chosen_gold"] > row["rejected_gold"] for row in rows)
    disagree = sum(row["chosen_gold"] < row["rejected_gold"] for row in rows)
    assert agree > 4 * disagree > 0  # mostly, not always, the better answer wins
