"""The shipped examples/ files are what `python -m align.examples` writes, and they read as
each stage reads its data."""

import json
from pathlib import Path

from align.data import PREFERENCE_KEYS, read_jsonl
from align.examples import example_files, main as examples_main
from align.gold import gold_reward
from toyworld.world import canonical_question, heldout_prompts, train_prompts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_shipped_examples_are_exactly_what_the_generator_writes(tmp_path):
    examples_main(["--out-dir", str(tmp_path)])
    for name in example_files():
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), (
            f"examples/{name} is stale: run python -m align.examples")


def test_the_examples_read_as_the_stages_read_them_and_hold_what_they_say():
    sft = read_jsonl(EXAMPLES / "sft.jsonl", ("prompt", "completion"))
    pairs = read_jsonl(EXAMPLES / "pairs.jsonl", PREFERENCE_KEYS)
    heldout = read_jsonl(EXAMPLES / "pairs_heldout.jsonl", PREFERENCE_KEYS)
    assert (len(sft), len(pairs), len(heldout)) == (400, 400, 100)
    assert len(read_jsonl(EXAMPLES / "prompts.jsonl", ("prompt",))) == 50
    raw = [json.loads(line) for name in ("pairs.jsonl", "pairs_heldout.jsonl")
           for line in open(EXAMPLES / name, encoding="utf-8")]
    for row in raw:  # the stored gold rewards are r*'s, beside the label's probability
        assert row["chosen_gold"] == gold_reward(row["prompt"], row["chosen"])
        assert row["rejected_gold"] == gold_reward(row["prompt"], row["rejected"])
        assert 0 < row["p_chosen"] < 1
    # held-out pairs ask only held-out questions, by content
    trained = {canonical_question(p) for p in train_prompts(2000, 0)}
    assert all(canonical_question(row["prompt"]) not in trained for row in heldout)
    assert {canonical_question(r["prompt"]) for r in heldout} <= {
        canonical_question(p) for p in heldout_prompts(2000, 0)}
    assert len((EXAMPLES / "corpus.txt").read_text(encoding="utf-8")) == 100_000
