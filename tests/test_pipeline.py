"""The whole lecture in one tiny run, and the stage commands' answers to bad input."""

import dataclasses
import json
import os

import pytest

import align.common
import align.pipeline as pipeline
from align.dpo import main as dpo_main
from align.pipeline import PipelineConfig, main as pipeline_main, run_pipeline
from align.reward import main as reward_main
from align.sft import main as sft_main
from toyworld.world import LECTURE_DPO_DATASET
from align.data import rows_from_dict_of_lists, write_jsonl
from minigpt import GPT, ByteTokenizer, CharTokenizer, save_checkpoint
from minigpt import swaps
from minigpt.cli import run_main
from minigpt.errors import InputError
from tests.conftest import in_background, tiny_config


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One uninterrupted quick run, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("quick")
    return out, run_pipeline(PipelineConfig(preset="quick", out_dir=str(out), progress=False))


@pytest.mark.slow
def test_the_quick_pipeline_runs_end_to_end_and_writes_its_report(quick_run):
    tmp_path, results = quick_run
    for name in ("report.md", "losses.png", "dpo_rewards.png", "gold_reward.png",
                 "gold_components.png", "samples.jsonl", "results.json", "pretrain/ckpt.pt",
                 "sft/ckpt.pt", "reward/ckpt.pt", "dpo/ckpt.pt", "rlhf/ckpt.pt", "rlhf/rewards.png",
                 "data/pairs_train.jsonl",
                 "data/pairs_heldout.jsonl"):
        assert os.path.getsize(tmp_path / name) > 0, name
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    for line in ("pre-training | validation loss", "SFT | held-out response loss",
                 "agreement with the gold ranking", "| DPO − SFT |", "KL, exact per token",
                 "Right-answer share by kind", "| Where is Shanghai? |", "off-topic",
                 "| RLHF − SFT |", "| RLHF (rloo, β = 0.25) | rollouts' r* (never seen by RL)",
                 "RLHF (π_θ, RL) |"):
        assert line in report, line
    evaluation = results["evaluation"]
    assert set(evaluation["sampled"]) == {"SFT", "DPO", "RLHF", "best-of-2 (r_φ)"}
    assert evaluation["kl"]["DPO"]["kl_exact_per_token"] >= 0
    assert evaluation["kl"]["RLHF"]["kl_exact_per_token"] >= 0
    for summary in evaluation["sampled"].values():  # the breakdown adds up to the mean r*
        assert sum(summary["breakdown"]["components"].values()) == pytest.approx(summary["gold_mean"])
    rows = [json.loads(line) for line in open(tmp_path / "data/pairs_train.jsonl")]
    assert all("token_ids" in row for row in rows if row["pair_kind"] == "same_prompt")
    assert {row["pair_kind"] for row in rows} == {"same_prompt", "off_topic_offer", "rude_vs_polite",
                                                  "right_vs_wrong"}
    # the extra pairs' settings are recorded, so that a resume notices a change
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["preset_settings"]["preferences"] == pipeline.EXTRA_PAIRS
    assert saved["preset_settings"]["reward"]["reads_likelihood"] is True
    from align.reward import load_reward_model
    assert load_reward_model(tmp_path / "reward")[0].reads_likelihood  # and the stage used it
    assert saved["preset_settings"]["data"] == {"world": pipeline.world_fingerprint()}
    # each distinct held-out prompt once, the same list for the RLHF stage and the final table
    from toyworld.world import canonical_question, evaluation_prompts
    prompts = [json.loads(line)["prompt"] for line in open(tmp_path / "data/eval_prompts.jsonl")]
    assert prompts == evaluation_prompts(32, seed=1337 + 2)
    assert evaluation["prompts"] == evaluation["distinct_prompts"] == len(prompts) == 32
    assert evaluation["distinct_questions"] == len({canonical_question(p) for p in prompts})
    samples = [json.loads(line)["prompt"] for line in open(tmp_path / "samples.jsonl")]
    assert samples == prompts
    rlhf_config = json.loads((tmp_path / "rlhf" / "config.json").read_text())
    assert rlhf_config["eval_data"].endswith("eval_prompts.jsonl")
    # the knowledge probe, the reward model per kind of pair, the best fixed answer
    assert set(results["knowledge"]) == {"heldout", "train"}
    assert set(results["knowledge"]["heldout"]) == {"pretrained", "SFT", "DPO", "RLHF"}
    # does r_φ use the facts? Those the evaluation's held-out prompts ask, and the probe's
    # training prompts
    from align.probe import asked_facts
    train = evaluation_prompts(pipeline.PRESETS["quick"]["eval_prompts"], seed=1337 + 3,
                               split="train")
    for split, asked in (("heldout", prompts), ("train", train)):
        counted = {kind: row["facts"] for kind, row in results["reward_knowledge"][split].items()}
        kinds = [question.kind for _, question in asked_facts(asked).values()]
        assert counted == {kind: kinds.count(kind) for kind in set(kinds)}, split
    assert set(results["reward_accuracy_by_pair_kind"]) == {"same_prompt", "off_topic_offer",
                                                            "rude_vs_polite", "right_vs_wrong"}
    assert isinstance(results["reward_right_vs_wrong_by_kind"], dict)
    assert evaluation["best_fixed_answer"] == max(evaluation["fixed_answers"],
                                                  key=evaluation["fixed_answers"].get)
    for line in ("## Stored or used: the knowledge probe", "r_φ's held-out accuracy by kind of pair",
                 "Does r_φ use the facts?",
                 "Against the best fixed answer"):
        assert line in report, line


@pytest.mark.slow
def test_an_interrupted_pipeline_resumes_where_it_stopped_and_ends_as_an_uninterrupted_run(
        quick_run, tmp_path, monkeypatch, capsys):
    _, uninterrupted = quick_run
    out = tmp_path / "run"
    config = PipelineConfig(preset="quick", out_dir=str(out), progress=False)
    real_train = pipeline.train

    def stopped_inside_pretraining(train_config, checkpoint=None, progress=True):
        real_train(dataclasses.replace(train_config, stop_after=75), checkpoint, progress)
        raise KeyboardInterrupt  # as if Ctrl-C came after the checkpoint at step 75

    def stopped_before_dpo(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "train", stopped_inside_pretraining)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config)
    assert set(json.loads((out / "stages.json").read_text())) == {"data"}

    real_learning_rate_at = align.common.learning_rate_at

    def stopped_inside_sft(step, *args):  # SFT checkpoints at step 30 of 60 in this preset
        if step == 31:
            raise KeyboardInterrupt
        return real_learning_rate_at(step, *args)

    monkeypatch.setattr(pipeline, "train", real_train)
    monkeypatch.setattr(align.common, "learning_rate_at", stopped_inside_sft)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config)
    assert "pretrain: continuing from step 75" in capsys.readouterr().out
    rows = [json.loads(line) for line in open(out / "pretrain/metrics.jsonl")]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 151))  # none redone
    assert set(json.loads((out / "stages.json").read_text())) == {"data", "pretrain"}

    monkeypatch.setattr(align.common, "learning_rate_at", real_learning_rate_at)
    monkeypatch.setattr(pipeline, "train_dpo", stopped_before_dpo)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config)
    assert "sft: continuing from its last checkpoint" in capsys.readouterr().out
    rows = [json.loads(line) for line in open(out / "sft/metrics.jsonl")]
    assert [row["step"] for row in rows if "loss" in row] == list(range(1, 61))
    assert set(json.loads((out / "stages.json").read_text())) == {
        "data", "pretrain", "sft", "preferences", "reward"}

    kept = ("pretrain/ckpt.pt", "sft/ckpt.pt", "reward/ckpt.pt", "data/pairs_train.jsonl")
    before = {name: os.stat(out / name).st_mtime_ns for name in kept}
    monkeypatch.undo()  # the real stages again
    resumed = run_pipeline(config)
    printed = capsys.readouterr().out
    for name in ("data", "pretrain", "sft", "preferences", "reward"):
        assert f"{name}: done in an earlier run" in printed, name
    assert {name: os.stat(out / name).st_mtime_ns for name in kept} == before  # not redone
    # the resumed run computes what the uninterrupted one did
    for key in ("pretrain_val_loss", "sft_response_loss", "reward_accuracy", "dpo_heldout_accuracy"):
        assert resumed[key] == pytest.approx(uninterrupted[key], abs=1e-6), key
    for mode in ("sampled", "greedy"):
        for name, summary in uninterrupted["evaluation"][mode].items():
            assert resumed["evaluation"][mode][name]["gold_mean"] == pytest.approx(summary["gold_mean"])


def test_the_pipeline_refuses_bad_settings_before_any_work(tmp_path, capsys):
    out = tmp_path / "never"
    for argv, words in ((["--beta", "-1"], "--beta must be positive"),
                        (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
                        (["--resume", "--overwrite"], "give one"),
                        (["--resume"], "holds no pipeline run to continue")):
        assert words in one_line_error(capsys, pipeline_main, ["--out-dir", str(out), *argv])
        assert not out.exists()  # refused before a folder was made


def test_a_run_folder_is_never_replaced_without_asking(tmp_path, capsys):
    quick = PipelineConfig(preset="quick", out_dir=str(tmp_path / "run"))
    run, done = pipeline.open_run_folder(quick)
    assert done == {}
    (tmp_path / "run" / "results.json").write_text("{}")  # as if it had finished
    run.write_json("stages.json", {name: {"seconds": 0, "result": {}} for name in pipeline.STAGES})
    err = one_line_error(capsys, pipeline_main, ["--out-dir", str(tmp_path / "run"), "--beta", "1",
                                                 "--quick"])
    assert "holds a finished pipeline run of other settings (--beta 0.5 → 1.0)" in err
    assert "--preset 'quick' → 'default'" in one_line_error(
        capsys, pipeline_main, ["--out-dir", str(tmp_path / "run")])
    assert (tmp_path / "run" / "results.json").exists()  # still there
    # a student's version of a function is part of the settings, and so is its every draft
    def my_dpo_loss(*args):
        raise NotImplementedError
    swaps.record("dpo_loss", my_dpo_loss)
    try:
        with pytest.raises(InputError, match=r"student_versions.dpo_loss None → '[0-9a-f]{12}'"):
            pipeline.open_run_folder(quick)
    finally:
        swaps.forget("dpo_loss")
    # the same settings resume; --overwrite replaces
    assert pipeline.open_run_folder(quick)[0].path == str(tmp_path / "run")
    assert (tmp_path / "run" / "results.json").exists()
    pipeline.open_run_folder(dataclasses.replace(quick, beta=1.0, overwrite=True))
    assert not (tmp_path / "run" / "results.json").exists()
    # a folder the pipeline did not write is refused even with --overwrite
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my work")
    assert "not a pipeline run" in one_line_error(
        capsys, pipeline_main, ["--out-dir", str(tmp_path / "mine"), "--overwrite"])
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my work"
    # each preset has its own default folder, so --quick never replaces a default run
    assert PipelineConfig(quick=True).out_dir != PipelineConfig().out_dir


def test_settings_of_stages_not_run_yet_may_change(tmp_path, capsys, monkeypatch):
    """A folder that stopped before RLHF (or was made before the pipeline had that stage)
    keeps what it did; the RLHF stage's settings, flag or preset, are not held against it."""
    quick = PipelineConfig(preset="quick", out_dir=str(tmp_path / "run"))
    run, _ = pipeline.open_run_folder(quick)
    done = [name for name in pipeline.STAGES if name not in ("rlhf", "evaluation")]
    run.write_json("stages.json", {name: {"seconds": 0, "result": {}} for name in done})
    _, kept = pipeline.open_run_folder(dataclasses.replace(quick, rlhf_beta=0.7))
    assert set(kept) == set(done)
    changed = {**pipeline.PRESETS["quick"], "rlhf": {**pipeline.PRESETS["quick"]["rlhf"], "max_iters": 3}}
    monkeypatch.setitem(pipeline.PRESETS, "quick", changed)
    assert set(pipeline.open_run_folder(quick)[1]) == set(done)
    with pytest.raises(InputError, match=r"--beta 0.5 → 1.0"):  # DPO has run: its β may not change
        pipeline.open_run_folder(dataclasses.replace(quick, beta=1.0))
    # the preference stage has run: the extra pairs it made, defaults included, may not change
    wrong = pipeline.EXTRA_PAIRS["wrong_per_prompt"]
    monkeypatch.setitem(pipeline.EXTRA_PAIRS, "wrong_per_prompt", wrong + 1)
    with pytest.raises(InputError, match=rf"preferences.wrong_per_prompt {wrong} → {wrong + 1}"):
        pipeline.open_run_folder(quick)
    monkeypatch.setitem(pipeline.EXTRA_PAIRS, "wrong_per_prompt", wrong)
    # nor what the reward model reads (the reward stage has run)
    monkeypatch.setitem(pipeline.REWARD_MODEL, "reads_likelihood", False)
    with pytest.raises(InputError, match=r"reward.reads_likelihood True → False"):
        pipeline.open_run_folder(quick)
    monkeypatch.setitem(pipeline.REWARD_MODEL, "reads_likelihood", True)
    # nor may the world the data stage wrote (another template, fact or mix)
    monkeypatch.setattr(pipeline, "world_fingerprint", lambda: "another world")
    with pytest.raises(InputError, match=r"data.world '[0-9a-f]{12}' → 'another world'"):
        pipeline.open_run_folder(quick)


def test_a_failed_new_run_leaves_no_folder_behind(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise InputError("the corpus is too short")
    monkeypatch.setattr(pipeline, "train", failing)
    with pytest.raises(InputError):
        run_pipeline(PipelineConfig(preset="quick", out_dir=str(tmp_path / "run"), progress=False))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@in_background(lambda folder: ["align.pipeline", "--preset", "small", "--out-dir", folder,
                               "--no-progress"])
def test_the_small_pipeline_aligns_measurably(background_run):
    """What the pipeline is for, at the small preset's size: DPO learns its training pairs
    and its implicit reward ranks held-out pairs better than chance, and DPO's answers are
    not worse than SFT's on the gold reward. (The run starts when the suite does, beside the
    other tests, on one thread: tests/conftest.py.)

    Better than chance is the estimate here, not its interval: 40 DPO steps leave the
    held-out accuracy near 0.55-0.63 depending on the machine and the thread count, and
    on some machines its 95% interval reaches 0.5 (0.54 [0.48, 0.60] on one thread of one
    2-core machine, 2026-12-07). The default run's interval excludes chance on every
    machine measured (align/expected.py: 0.62 to 0.75)."""
    results = json.loads((background_run / "results.json").read_text(encoding="utf-8"))
    accuracy = results["dpo_heldout_accuracy"]
    assert accuracy > 0.5, (accuracy, results["dpo_heldout_accuracy_interval"])
    first_tenth, last_tenth = results["dpo_train_accuracy_start_end"]
    assert last_tenth > first_tenth + 0.05, (first_tenth, last_tenth)  # it learns its pairs
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
    dpo_dir = tmp_path / "dpo"
    assert "this is a 'reward' checkpoint" in one_line_error(
        capsys, dpo_main, ["--init", str(tmp_path / "rm"), "--data", str(pairs), "--out-dir", str(dpo_dir), *common])
    # a checkpoint whose (character) vocabulary cannot write the data
    char = CharTokenizer.from_text("User: hello\nAssistant: hi")
    model = GPT(tiny_config(vocab_size=char.vocab_size, block_size=64))
    save_checkpoint(tmp_path / "char" / "ckpt.pt", model, 0, model.config, char)
    assert "character 'g'" in one_line_error(
        capsys, dpo_main, ["--init", str(tmp_path / "char"), "--data", str(pairs), "--out-dir", str(dpo_dir), *common])
    assert not dpo_dir.exists()  # bad input leaves no folder behind
    # DPO pointed at the SFT run's folder is refused before it reads anything
    assert "holds an SFT run, written by python -m align.sft" in one_line_error(
        capsys, dpo_main, ["--init", str(tmp_path / "rm"), "--data", str(pairs), "--out-dir", str(sft_dir), *common])
    after = {name: (sft_dir / name).read_bytes() for name in ("ckpt.pt", "metrics.jsonl")}
    assert after == before  # nothing written before was lost
    assert json.loads((sft_dir / "config.json").read_text())["data"] == str(good)


@pytest.mark.slow
def test_the_frontier_runs_on_a_pipeline_folder_and_writes_its_figure_and_table(quick_run, tmp_path):
    """Four β for DPO and for RLHF, each measured along training, best-of-N and π*_β, all on
    the same prompts: SFT at KL 0, every trained point with KL ≥ 0, win rates beside SFT."""
    from align.frontier import FrontierConfig, run_frontier
    run_dir, _ = quick_run
    config = FrontierConfig(run=str(run_dir), quick=True, out_dir=str(tmp_path / "frontier"),
                            dpo_steps=4, rlhf_steps=4, eval_every=2, eval_prompts=12,
                            optimum_samples=4, progress=False)
    results = run_frontier(config)
    points = results["points"]
    settings = lambda method: {p["setting"] for p in points if p["method"] == method}  # noqa: E731
    assert len(settings("DPO")) == 4 and len(settings("RLHF (RLOO)")) == 4
    assert {p["step"] for p in points if p["method"] == "DPO"} == {2, 4}  # several points a run
    sft = next(p for p in points if p["method"] == "SFT (π_ref)")
    assert sft["kl"] == 0.0 and sft["win_rate"] is None
    for p in points:
        assert p["kl"] >= -1e-9, p
        assert len(p["gold_per_prompt"]) == results["prompts"] == 12
        if p["method"] in ("DPO", "RLHF (RLOO)"):
            assert 0 <= p["win_low"] <= p["win_rate"] <= p["win_high"] <= 1
    assert settings("best-of-N (r_φ)") == {"N=1", "N=2", "N=4"}
    for p in points:  # the plug-in KL of best-of-N sits below its bound (N=1: both 0)
        if p["method"] == "best-of-N (r_φ)":
            assert -1e-12 <= p["kl_estimate"] <= p["kl"] + 1e-12, p
    for name in ("frontier.png", "overoptimisation.png", "frontier.md", "frontier.json"):
        assert (tmp_path / "frontier" / name).stat().st_size > 0, name
    table = (tmp_path / "frontier" / "frontier.md").read_text(encoding="utf-8")
    assert "## At equal KL" in table and "| RLHF (RLOO) | β=" in table
    assert "| best-of-N (r_φ) | N=2 | 0 | ≤ 0.19 (plug-in " in table
    # the best fixed answer of the bank on the frontier's own prompts, as a line and a sentence
    from align.compare import FIXED_ANSWERS
    from align.gold import gold_reward
    asked = [row["prompt"] for row in map(json.loads, open(tmp_path / "frontier" / "eval_prompts.jsonl"))]
    means = {a: sum(gold_reward(p, a) for p in asked) / len(asked) for a in FIXED_ANSWERS}
    best = max(means, key=means.get)
    assert results["best_fixed_answer"] == {"answer": best, "gold": pytest.approx(means[best])}
    assert f"The best fixed answer of the bank, said to every prompt: {best!r}, mean r* " \
           f"{means[best]:.2f}" in table
    # Gao et al.'s laws fitted to each family's points: RLHF's 8 (4 β, 2 steps) are fitted;
    # best-of-N's N = 2 and 4 are too few beside N = 1 at KL 0, and the table says so
    from align.gao import gao_fit
    assert set(results["gao_fits"]) == {"best-of-N", "RLHF", "DPO"}
    rlhf = [p for p in points if p["method"] == "RLHF (RLOO)" and not p["collapsed"]]
    expected = gao_fit([p["kl"] for p in rlhf], [p["gold"] - sft["gold"] for p in rlhf], "RL")
    assert results["gao_fits"]["RLHF"] == {**expected, "form": "RL"}
    assert results["gao_fits"]["best-of-N"] is None
    assert "## Over-optimisation laws (Gao et al. 2022)" in table
    assert "| best-of-N | best-of-N | fewer than 3 with KL > 0 |" in table
    # a rerun of the same settings keeps every finished part
    again = run_frontier(config)
    assert [p["gold"] for p in again["points"]] == [p["gold"] for p in points]
