"""align.chat: each policy's block holds its own model's answer, with r* and r_φ of that answer."""

import json
import os
import re
import shutil

import pytest
import torch

import align.chat as chat
from align.gold import gold_reward, judge
from align.pipeline import PipelineConfig, run_pipeline
from align.reward import load_reward_model, score_samples
from align.sampling import generate_responses, sample_answers
from minigpt.checkpoint import load_model
from minigpt.cli import run_main

NAMES = {"sft": "SFT (π_ref)", "dpo": "DPO", "rlhf": "RLHF"}
IN_WORLD, OUTSIDE = "What is 2+2?", "Tell me a joke."


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A smoke pipeline run whose DPO and RLHF weights are then moved apart from SFT's (its
    stages take a step or two, too few to change a sampled token), so that a block showing
    another policy's answer is seen."""
    out = tmp_path_factory.mktemp("chat") / "run"
    run_pipeline(PipelineConfig(preset="smoke", out_dir=str(out), progress=False))
    generator = torch.Generator().manual_seed(0)
    for stage in ("dpo", "rlhf"):
        path = out / stage / "ckpt.pt"
        checkpoint = torch.load(path, weights_only=True)
        for tensor in checkpoint["model"].values():
            if tensor.is_floating_point():
                tensor += 0.3 * torch.randn(tensor.shape, generator=generator)
        torch.save(checkpoint, path)
    return out


def blocks(out: str) -> list[dict]:
    """The printed blocks: {"name", "text", "gold", "r_phi", "cut"}; gold and r_phi as printed."""
    lines = [line for line in out.splitlines() if line.startswith("  ")]
    found = []
    for head, scores in zip(lines[::2], lines[1::2]):
        assert head.startswith("  ") and not head.startswith("   ") and scores.startswith("      ")
        name, quoted = head.strip().split(": ", 1)
        parts = dict(part.split(" = ", 1) for part in scores.split("   ") if " = " in part)
        found.append({"name": name, "text": json.loads(quoted), "gold": parts["r*"],
                      "r_phi": parts.get("r_φ"), "cut": "(cut at --max-new-tokens)" in scores})
    return found


def policy(run, stage):
    model, tokenizer, _ = load_model(run / stage)
    return model, tokenizer


def test_each_question_gets_one_block_per_policy_scored_by_the_gold_reward(run, capsys):
    questions = [IN_WORLD, OUTSIDE, "Where is Lima?"]
    chat.main(["--run", str(run), "--device", "cpu"] + [a for q in questions for a in ("--question", q)])
    shown = blocks(capsys.readouterr().out)
    assert [b["name"] for b in shown] == list(NAMES.values()) * 3
    for i, (question, block) in enumerate(zip([q for q in questions for _ in NAMES], shown)):
        if question != OUTSIDE:  # r* of the printed answer and the judge's verdict, computed here
            number, verdict = re.fullmatch(r"([+-]\d+\.\d\d) \((.+)\)", block["gold"]).groups()
            finished = not block["cut"]
            assert float(number) == pytest.approx(  # printed to 2 decimals: half a cent off
                gold_reward(question, block["text"], finished=finished), abs=0.005 + 1e-9)
            said = judge(question, block["text"], finished=finished)
            assert verdict.split(", ") == [word for word, on in (
                ("right", said.right), ("wrong", said.wrong), ("off-topic", said.off_topic),
                ("evasive", said.evasive), ("offensive", said.offensive),
                ("unfinished", said.unfinished)) if on]
        else:  # outside the world the judge has nothing to check: no number
            assert judge(question, block["text"]).kind is None
            assert block["gold"].startswith("n/a (outside the toy world")
        assert block["r_phi"] is not None
        # question i is sampled (temperature 1) with seed --seed + i, by every policy
        stage = list(NAMES)[i % 3]
        model, tokenizer = policy(run, stage)
        sample = sample_answers(model, tokenizer, [question], 48, 1.0, seed=i // 3)[0]
        assert (block["text"], block["cut"]) == (sample.text, not sample.finished)


def test_greedy_answers_are_each_policys_own_greedy_answer_with_its_r_phi(run, capsys):
    questions = [IN_WORLD, "Where is Lima?"]
    chat.main(["--run", str(run), "--greedy", "--device", "cpu"]
              + [arg for q in questions for arg in ("--question", q)])
    shown = iter(blocks(capsys.readouterr().out))
    reward_model, reward_tokenizer = load_reward_model(run / "reward")
    answers = set()
    for question in questions:
        for stage, name in NAMES.items():
            block = next(shown)
            model, tokenizer = policy(run, stage)
            expected = generate_responses(model, tokenizer, [question], max_new_tokens=48,
                                          temperature=0.0)[0]
            assert (block["name"], block["text"]) == (name, expected)
            sample = sample_answers(model, tokenizer, [question], 48, temperature=0.0)[0]
            r_phi = score_samples(reward_model, [sample], reward_tokenizer.pad_id, "cpu")[0].item()
            assert float(block["r_phi"]) == pytest.approx(r_phi, abs=0.005)
            assert block["cut"] == (not sample.finished)
            answers.add(expected)
    assert len(answers) > 2  # the policies do answer differently, so a swapped block shows


def test_one_policy_alone_shows_only_its_own_answer(run, capsys):
    chat.main(["--run", str(run), "--policy", "dpo", "--greedy", "--question", IN_WORLD])
    shown = blocks(capsys.readouterr().out)
    model, tokenizer = policy(run, "dpo")
    assert [(b["name"], b["text"]) for b in shown] == [
        ("DPO", generate_responses(model, tokenizer, [IN_WORLD], 48, temperature=0.0)[0])]


@pytest.mark.parametrize("ending", ["quit", "", EOFError, KeyboardInterrupt])
def test_the_interactive_session_answers_each_question_until_it_is_ended(run, capsys, monkeypatch,
                                                                         ending):
    typed = iter([IN_WORLD, "Where is Lima?", ending, "never asked"])
    asked = []

    def fake_input(prompt):
        asked.append(prompt)
        line = next(typed)
        if isinstance(line, type):
            raise line()
        return line

    monkeypatch.setattr("builtins.input", fake_input)
    try:
        assert chat.main(["--run", str(run), "--max-new-tokens", "8"]) is None  # ends cleanly
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C at the prompt escaped the session")
    shown = blocks(capsys.readouterr().out)
    assert asked == ["You: "] * 3
    assert [b["name"] for b in shown] == list(NAMES.values()) * 2


def error_of(argv, capsys) -> str:
    """The one line run_main prints for bad input (exit status 2), nothing on stdout."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(chat.main, argv)
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2 and blocks(out) == []
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def copy_without(run, tmp_path, stage):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=lambda folder, names: [stage] if folder == str(run) else [])
    return copy


def test_a_run_without_rlhf_is_refused_by_name_unless_rlhf_is_not_asked_for(run, tmp_path, capsys):
    copy = copy_without(run, tmp_path, "rlhf")
    err = error_of(["--run", str(copy), "--question", IN_WORLD], capsys)
    assert f"--run {copy}: no rlhf/ckpt.pt (the rlhf stage)" in err
    assert "python -m align.pipeline" in err
    chat.main(["--run", str(copy), "--policy", "sft", "--question", IN_WORLD])
    assert [b["name"] for b in blocks(capsys.readouterr().out)] == ["SFT (π_ref)"]


def test_a_run_without_reward_shows_the_answers_without_r_phi_and_says_why(run, tmp_path, capsys):
    copy = copy_without(run, tmp_path, "reward")
    chat.main(["--run", str(copy), "--question", IN_WORLD])
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"note: {copy} has no reward/ckpt.pt")
    shown = blocks(out)
    assert len(shown) == 3 and all(b["r_phi"] is None for b in shown)


@pytest.mark.parametrize("where, words", [("sft", "is an SFT run, not a pipeline run"),
                                          ("nowhere", "no such folder")])
def test_a_folder_that_is_no_pipeline_run_is_refused(run, capsys, where, words):
    err = error_of(["--run", str(run / where), "--question", IN_WORLD], capsys)
    assert f"--run {run / where}: {words}" in err


def test_answers_are_shown_exactly_with_unprintable_characters_escaped():
    text = 'Lima "is"\n in\x00 Peru\x85.'
    assert json.loads(chat.quoted(text)) == text
    assert chat.quoted(text).isprintable()
    assert os.linesep not in chat.quoted(text)
