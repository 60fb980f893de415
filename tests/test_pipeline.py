"""The whole lecture in one tiny run, and the stage commands' answers to bad input."""

import json
import os

import pytest

from align.dpo import main as dpo_main
from align.pipeline import PipelineConfig, run_pipeline
from align.reward import main as reward_main
from align.sft import main as sft_main
from toyworld.world import LECTURE_DPO_DATASET
from align.data import rows_from_dict_of_lists, write_jsonl
from minigpt import GPT, ByteTokenizer, CharTokenizer, save_checkpoint
from minigpt.cli import run_main
from tests.conftest import tiny_config


@pytest.mark.slow
def test_the_quick_pipeline_runs_end_to_end_and_writes_its_report(tmp_path):
    results = run_pipeline(PipelineConfig(preset="quick", out_dir=str(tmp_path), progress=False))
    for name in ("report.md", "losses.png", "dpo_rewards.png", "gold_reward.png",
                 "gold_components.png", "samples.jsonl", "results.json", "pretrain/ckpt.pt",
                 "sft/ckpt.pt", "reward/ckpt.pt", "dpo/ckpt.pt", "data/pairs_train.jsonl",
                 "data/pairs_heldout.jsonl"):
        assert os.path.getsize(tmp_path / name) > 0, name
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    for line in ("pre-training | validation loss", "SFT | held-out response loss",
                 "agreement with the gold ranking", "| DPO − SFT |", "KL, exact per token",
                 "Right-answer share by kind", "| Where is Shanghai? |", "off-topic"):
        assert line in report, line
    evaluation = results["evaluation"]
    assert set(evaluation["sampled"]) == {"SFT", "DPO", "best-of-2 (r_φ)"}
    assert evaluation["kl"]["DPO"]["kl_exact_per_token"] >= 0
    for summary in evaluation["sampled"].values():  # the breakdown adds up to the mean r*
        assert sum(summary["breakdown"]["components"].values()) == pytest.approx(summary["gold_mean"])
    rows = [json.loads(line) for line in open(tmp_path / "data/pairs_train.jsonl")]
    assert all("token_ids" in row for row in rows)


@pytest.mark.slow
def test_the_small_pipeline_aligns_measurably(tmp_path):
    """What the pipeline is for: DPO's implicit reward ranks held-out pairs above chance
    (with its interval), and DPO's answers are not worse than SFT's on the gold reward."""
    results = run_pipeline(PipelineConfig(preset="small", out_dir=str(tmp_path), progress=False))
    low, high = results["dpo_heldout_accuracy_interval"]
    assert low > 0.5, (results["dpo_heldout_accuracy"], low, high)
    estimate, low, high = results["evaluation"]["paired"]["DPO − SFT"]["gold_difference"]
    assert high >= 0, (estimate, low, high)
    assert results["reward_gold_agreement"] > 0.6
    assert results["evaluation"]["sampled"]["DPO"]["breakdown"]["distinct_answers"] > 20


@pytest.fixture
def byte_checkpoint(tmp_path):
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64))
    save_checkpoint(tmp_path / "pre" / "ckpt.pt", model, 0, model.config, ByteTokenizer())
    return tmp_path / "pre"


def one_line_error(capsys, main, argv) -> str:
    capsys.readouterr()  # forget what earlier commands printed
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_the_lecture_dataset_loads_as_it_is(tmp_path, byte_checkpoint, capsys):
    rows = rows_from_dict_of_lists(LECTURE_DPO_DATASET, source="dpo_dataset_dict")
    assert len(rows) == 7 and rows[4] == {"prompt": "Which is the best programming language?",
                                          "chosen": "Python", "rejected": "Javascript"}
    write_jsonl(tmp_path / "lecture.jsonl", rows)
    summary = run_main(dpo_main, ["--init", str(byte_checkpoint), "--data", str(tmp_path / "lecture.jsonl"),
                                  "--out-dir", str(tmp_path / "dpo"), "--max-length", "64",
                                  "--max-prompt-length", "48", "--max-iters", "3", "--batch-size", "4"])
    assert summary["loss"] > 0


def test_stage_commands_reject_bad_input_in_one_line_and_keep_earlier_output(tmp_path, byte_checkpoint, capsys):
    good = tmp_path / "good.jsonl"
    write_jsonl(good, [{"prompt": "hello", "completion": "hi"}] * 4)
    sft_dir = tmp_path / "sft"
    common = ["--max-length", "64", "--max-prompt-length", "32", "--batch-size", "2"]
    run_main(sft_main, ["--init", str(byte_checkpoint), "--data", str(good), "--out-dir", str(sft_dir),
                        "--max-iters", "2", *common])
    before = {name: (sft_dir / name).read_bytes() for name in ("ckpt.pt", "metrics.jsonl")}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hello", "completion": "hi"}\n{"prompt": "x", "answer": "y"}\n')
    err = one_line_error(capsys, sft_main, ["--init", str(byte_checkpoint), "--data", str(bad),
                                            "--out-dir", str(sft_dir), *common])
    assert err.startswith(f"error: {bad}, line 2: missing key 'completion'")
    bad.write_text('{"prompt": "hello", "completion": ""}\n')
    assert "'completion' is empty" in one_line_error(
        capsys, sft_main, ["--init", str(byte_checkpoint), "--data", str(bad), "--out-dir", str(sft_dir), *common])
    bad.write_text('{"prompt": "hello", "completion": "hi"\n')
    assert "line 1: not valid JSON" in one_line_error(
        capsys, sft_main, ["--init", str(byte_checkpoint), "--data", str(bad), "--out-dir", str(sft_dir), *common])
    assert "longer than the model's context (block_size 64)" in one_line_error(
        capsys, sft_main, ["--init", str(byte_checkpoint), "--data", str(good), "--out-dir", str(sft_dir),
                           "--max-length", "512"])
    # a reward model is the wrong stage to start DPO from
    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, [{"prompt": "hello", "chosen": "hi", "rejected": "go away"}] * 4)
    run_main(reward_main, ["--init", str(sft_dir), "--data", str(pairs), "--out-dir", str(tmp_path / "rm"),
                           "--max-iters", "2", *common])
    assert "this is a 'reward' checkpoint" in one_line_error(
        capsys, dpo_main, ["--init", str(tmp_path / "rm"), "--data", str(pairs), "--out-dir", str(sft_dir), *common])
    # a checkpoint whose (character) vocabulary cannot write the data
    char = CharTokenizer.from_text("User: hello\nAssistant: hi")
    model = GPT(tiny_config(vocab_size=char.vocab_size, block_size=64))
    save_checkpoint(tmp_path / "char" / "ckpt.pt", model, 0, model.config, char)
    assert "character 'g'" in one_line_error(
        capsys, dpo_main, ["--init", str(tmp_path / "char"), "--data", str(pairs), "--out-dir", str(sft_dir), *common])
    after = {name: (sft_dir / name).read_bytes() for name in ("ckpt.pt", "metrics.jsonl")}
    assert after == before  # nothing written before was lost
    assert json.loads((sft_dir / "config.json").read_text())["data"] == str(good)
