"""No command writes into another command's run folder, nor deletes what it did not write.

Every writing command is pointed at every other kind of run folder, at a folder holding a
stray file and at its own kind of folder with a stray file in it: each is refused in one
line, before any work, and nothing on disk changes (every file's bytes and time kept).
"""

import dataclasses
import json
import os
import pathlib

import pytest

from align.pipeline import PipelineConfig, open_run_folder
from gridworld.__main__ import main as gridworld_main, run_main as gridworld_run_main
from minigpt import ByteTokenizer, GPT, save_checkpoint
from minigpt.cli import run_main
from minigpt.errors import InputError
from minigpt.ownership import (KINDS, OWNER_FILE, check_run_folder, kind_of, remove_run_folder,
                               same_path)
from minigpt.runlog import RunFolder
from tests.conftest import tiny_config


def snapshot(root: pathlib.Path) -> dict:
    """Every file under root: its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(capsys, main, argv, runner=run_main) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        runner(main, argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


# A folder of each kind, as its command leaves it: run.json and the files named in its layout.
CONFIG_KEYS = {"pretrain": ["data_tokens", "grad_accum"], "pipeline": ["preset_settings"],
               "frontier": ["dpo_betas", "optimum_samples"], "sft": ["truncation"],
               "dpo": ["truncation", "beta", "loss_type"], "albert": ["variant_list"],
               "prune": ["sparsity_list"], "gpt2": ["from_hf"], "hf": ["model_type"]}


def make_folder_of(kind: str, folder: pathlib.Path) -> pathlib.Path:
    RunFolder(folder, kind)
    (folder / "config.json").write_text(json.dumps({key: 1 for key in CONFIG_KEYS[kind]}))
    (folder / "report.md").write_text(f"# a {kind} run")
    return folder


@pytest.fixture
def world(tmp_path):
    """A pre-training checkpoint (for the commands that read one) and a fake pipeline run to
    measure a frontier on, outside the folders under test."""
    inputs = tmp_path / "inputs"
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64))
    save_checkpoint(inputs / "pre" / "ckpt.pt", model, 0, model.config, ByteTokenizer())
    pipeline = inputs / "pipeline"
    open_run_folder(PipelineConfig(preset="quick", out_dir=str(pipeline)))
    for name in ("sft/ckpt.pt", "reward/ckpt.pt", "data/pairs_train.jsonl", "data/pairs_heldout.jsonl"):
        (pipeline / name).parent.mkdir(parents=True, exist_ok=True)
        (pipeline / name).write_text("")
    return inputs


def commands(inputs: pathlib.Path):
    """(kind it writes, main, argv for an out-dir, the runner) of every writing command."""
    from align.dpo import main as dpo
    from align.examples import main as examples
    from align.frontier import main as frontier
    from align.pipeline import main as pipeline
    from align.preferences import main as preferences
    from align.reward import main as reward
    from align.rlhf import main as rlhf
    from align.sft import main as sft
    from minigpt.albert import main as albert
    from minigpt.bench import main as bench
    from minigpt.gpt2 import main as gpt2
    from minigpt.prune import main as prune
    from minigpt.train import main as train

    small = ["--max-iters", "1", "--n-layer", "1", "--n-embd", "16", "--n-head", "2"]
    pre = str(inputs / "pre")
    return {
        "minigpt.train": ("pretrain", train, lambda d: ["--out-dir", d, *small], run_main),
        "align.sft": ("sft", sft, lambda d: ["--init", pre, "--out-dir", d], run_main),
        "align.reward": ("reward", reward, lambda d: ["--init", pre, "--out-dir", d], run_main),
        "align.dpo": ("dpo", dpo, lambda d: ["--init", pre, "--out-dir", d], run_main),
        "align.rlhf": ("rlhf", rlhf, lambda d: ["--init", pre, "--out-dir", d], run_main),
        "align.pipeline": ("pipeline", pipeline, lambda d: ["--quick", "--out-dir", d], run_main),
        "align.frontier": ("frontier", frontier,
                           lambda d: ["--run", str(inputs / "pipeline"), "--quick", "--out-dir", d], run_main),
        "minigpt.albert": ("albert", albert, lambda d: ["--out-dir", d, "--max-iters", "1"], run_main),
        "minigpt.prune": ("prune", prune, lambda d: ["--run", pre, "--out-dir", d], run_main),
        "minigpt.gpt2 --from-hf": ("gpt2", gpt2, lambda d: ["--from-hf", pre, "--out-dir", d], run_main),
        "minigpt.gpt2 --to-hf": ("hf", gpt2, lambda d: ["--to-hf", pre, "--out-dir", d], run_main),
        "python -m gridworld": ("gridworld", gridworld_main, lambda d: ["--out", d, "--no-figures"],
                                gridworld_run_main),
        # single files: refused inside any run folder
        "minigpt.bench --lengths": (None, bench, lambda d: ["--lengths", "64", "--plot",
                                                            os.path.join(d, "lengths.png")], run_main),
        "align.examples": (None, examples, lambda d: ["--out-dir", d], run_main),
        "align.preferences": (None, preferences, lambda d: ["--sft", pre, "--out",
                                                            os.path.join(d, "pairs.jsonl")], run_main),
    }


OTHER_KINDS = sorted(CONFIG_KEYS)
COMMANDS = list(commands(pathlib.Path("unused")))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_every_other_commands_folder_and_changes_nothing(
        command, world, tmp_path, capsys):
    kind, main, argv, runner = commands(world)[command]
    for other in OTHER_KINDS:
        if other == kind:
            continue
        folder = make_folder_of(other, tmp_path / f"a-{other}-run")
        before = snapshot(tmp_path)
        err = one_line_error(capsys, main, argv(str(folder)), runner)
        assert str(folder) in err, err
        assert KINDS[other].what in err or other in err, err  # it says whose folder it is
        assert "choose" in err, err  # the check before any work, not the last guard at the write
        assert snapshot(tmp_path) == before, f"{command} changed {folder}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if commands(pathlib.Path("x"))[c][0]])
def test_every_command_refuses_a_folder_with_a_file_it_did_not_write(command, world, tmp_path, capsys):
    kind, main, argv, runner = commands(world)[command]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my work")
    before = snapshot(tmp_path)
    assert "notes.txt" in one_line_error(capsys, main, argv(str(mine)), runner)
    # and its own kind of folder with a stray file in it, --overwrite or not
    own = tmp_path / "own"
    if kind == "gridworld":
        own.mkdir()
        (own / OWNER_FILE).write_text(json.dumps({"kind": "gridworld"}))
    else:
        make_folder_of(kind, own) if kind in CONFIG_KEYS else RunFolder(own, kind)
    (own / "notes.txt").write_text("my work")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        if extra and kind in ("gridworld", "prune"):
            continue  # no --overwrite: each rewrites its own few files
        err = one_line_error(capsys, main, argv(str(own)) + extra, runner)
        assert "notes.txt" in err, err
    assert snapshot(tmp_path) == before


def test_a_command_never_writes_inside_another_commands_run_folder(world, tmp_path, capsys):
    from align.sft import main as sft
    from minigpt.train import main as train

    pipeline = world / "pipeline"
    before = snapshot(world)
    small = ["--max-iters", "1", "--n-layer", "1", "--n-embd", "16", "--n-head", "2"]
    err = one_line_error(capsys, train, ["--out-dir", str(pipeline / "pretrain"), *small])
    assert "lies inside a pipeline run" in err
    err = one_line_error(capsys, sft, ["--out-dir", str(pipeline / "mine" / "sft")])
    assert "lies inside a pipeline run" in err
    assert snapshot(world) == before
    # what is made to sit inside: a frontier in its pipeline run, pruning in a pre-training run
    assert not check_run_folder(str(pipeline / "frontier"), "frontier")
    train_run = make_folder_of("pretrain", tmp_path / "pretrain")
    assert not check_run_folder(str(train_run / "pruning"), "prune")
    with pytest.raises(InputError, match="lies inside a pre-training run"):
        check_run_folder(str(train_run / "pruning"), "frontier")


def test_older_folders_without_run_json_are_known_by_their_files(world, tmp_path):
    """A folder written before run.json existed is recognised (and adopted by its own
    command); align's stages, which share a layout, are told apart by their checkpoint."""
    from align.common import save_stage
    from align.sft import SFTConfig

    train_run = make_folder_of("pretrain", tmp_path / "old-train")
    (train_run / OWNER_FILE).unlink()
    assert kind_of(str(train_run)) == "pretrain"
    assert check_run_folder(str(train_run), "pretrain")
    with pytest.raises(InputError, match="holds a pre-training run"):
        check_run_folder(str(train_run), "sft")
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64))
    for stage in ("sft", "reward"):
        folder = tmp_path / f"old-{stage}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"truncation": {}}))
        save_stage(RunFolder(folder), model, 1, model.config, ByteTokenizer(), stage, SFTConfig())
        assert kind_of(str(folder)) == stage
    with pytest.raises(InputError, match="holds an SFT run"):
        check_run_folder(str(tmp_path / "old-sft"), "reward")


def test_a_pipeline_run_an_older_version_damaged_is_recognised_and_repairable(world, tmp_path, capsys):
    """An older minigpt.train replaced a pipeline run's config.json and report.md and added
    its own files: the pipeline names the files to remove, then --overwrite replaces the run."""
    from align.pipeline import main as pipeline_main

    run = tmp_path / "pipeline"
    open_run_folder(PipelineConfig(preset="quick", out_dir=str(run)))
    (run / "stages.json").write_text(json.dumps({"data": {"seconds": 1, "result": {}}}))
    (run / OWNER_FILE).unlink()  # as an older version left it
    (run / "config.json").write_text(json.dumps({"data_tokens": 1, "grad_accum": 1}))
    for name in ("ckpt.pt", "tokenizer.json", "metrics.jsonl", "loss.png"):
        (run / name).write_text("minigpt.train's")
    before = snapshot(run)
    for extra in ([], ["--overwrite"]):
        err = one_line_error(capsys, pipeline_main, ["--quick", "--out-dir", str(run), *extra])
        assert "holds a pipeline run and files" in err
        assert "ckpt.pt, loss.png, metrics.jsonl, tokenizer.json" in err  # each by name
    assert snapshot(run) == before
    for name in ("ckpt.pt", "tokenizer.json", "metrics.jsonl", "loss.png"):
        (run / name).unlink()
    assert "cannot be resumed; pass --overwrite" in one_line_error(
        capsys, pipeline_main, ["--quick", "--out-dir", str(run)])
    open_run_folder(PipelineConfig(preset="quick", out_dir=str(run), overwrite=True))
    assert sorted(os.listdir(run)) == ["config.json", OWNER_FILE]


def test_overwrite_never_deletes_another_commands_run_inside(world, tmp_path):
    run = tmp_path / "pipeline"
    open_run_folder(PipelineConfig(preset="quick", out_dir=str(run)))
    make_folder_of("frontier", run / "frontier")
    assert check_run_folder(str(run), "pipeline")  # a frontier there is no stray file
    before = snapshot(run)
    with pytest.raises(InputError, match="would delete frontier/ inside it"):
        remove_run_folder(str(run), "pipeline")
    assert snapshot(run) == before
    (run / "frontier" / OWNER_FILE).unlink()
    (run / "frontier" / "config.json").unlink()
    (run / "frontier" / "report.md").unlink()
    remove_run_folder(str(run), "pipeline")  # an empty folder is nobody's work
    assert not run.exists()


def test_a_path_setting_is_the_same_however_spelled_and_when_moved_with_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "p" / "data").mkdir(parents=True)
    absolute = str(tmp_path / "runs" / "p" / "data" / "corpus.txt")
    assert same_path("runs/p/data/corpus.txt", absolute, "runs/p", "runs/p")
    assert same_path("runs/p/data/corpus.txt", "./runs/../runs/p/data/corpus.txt", "runs/p", "runs/p")
    # the run moved to runs/q with its data: the same setting; another file is not
    assert same_path("runs/p/data/corpus.txt", "runs/q/data/corpus.txt", "runs/p", "runs/q")
    assert not same_path("runs/p/data/corpus.txt", "runs/q/data/other.txt", "runs/p", "runs/q")
    assert not same_path("runs/p/data/corpus.txt", "runs/q/data/corpus.txt", "runs/p", "runs/p")


def test_a_moved_or_respelled_run_folder_is_the_same_run(world, tmp_path, monkeypatch, capsys):
    """Paths are settings compared as paths: the pipeline, a frontier and a stage each take
    their folder spelled relative or absolute, or moved with what it names, as the same run."""
    import shutil

    from align.common import checkpoint_to_resume
    from align.data import write_jsonl
    from align.frontier import FrontierConfig, open_out_dir
    from align.sft import SFTConfig, main as sft_main

    monkeypatch.chdir(tmp_path)
    # the pipeline: relative, absolute, then moved
    open_run_folder(PipelineConfig(preset="quick", out_dir="runs/p"))
    (tmp_path / "runs" / "p" / "stages.json").write_text(json.dumps({"data": {"seconds": 1, "result": {}}}))
    assert open_run_folder(PipelineConfig(preset="quick", out_dir=str(tmp_path / "runs" / "p")))[1]
    shutil.move("runs/p", "runs/q")
    assert open_run_folder(PipelineConfig(preset="quick", out_dir="runs/q"))[1]  # its stage kept
    # a frontier on a pipeline run: --run relative, then absolute; then both moved together
    shutil.copytree(world / "pipeline", "runs/pipeline")
    open_out_dir(FrontierConfig(run="runs/pipeline", quick=True, progress=False))
    (tmp_path / "runs" / "pipeline" / "frontier" / "frontier.md").write_text("kept")
    open_out_dir(FrontierConfig(run=str(tmp_path / "runs" / "pipeline"), quick=True))
    shutil.move("runs/pipeline", "runs/moved")
    open_out_dir(FrontierConfig(run="runs/moved", quick=True))
    assert (tmp_path / "runs" / "moved" / "frontier" / "frontier.md").read_text() == "kept"
    with pytest.raises(InputError, match="holds a frontier of other settings"):  # another run is another setting
        open_out_dir(FrontierConfig(run="runs/q", out_dir="runs/moved/frontier", quick=True))
    # a stage's --resume after its folder moved with its data and starting point
    stage = tmp_path / "runs" / "s"
    shutil.copytree(world / "pre", stage / "pre")
    write_jsonl(stage / "data.jsonl", [{"prompt": "hello", "completion": "hi"}] * 4)
    flags = ["--max-length", "64", "--max-prompt-length", "32", "--batch-size", "2", "--max-iters", "2"]
    run_main(sft_main, ["--init", "runs/s/pre", "--data", "runs/s/data.jsonl", "--out-dir", "runs/s/sft",
                        *flags])
    shutil.move("runs/s", "runs/t")
    resumed = SFTConfig(init="runs/t/pre", data=str(tmp_path / "runs/t/data.jsonl"), out_dir="runs/t/sft",
                        max_length=64, max_prompt_length=32, batch_size=2, max_iters=2, resume=True)
    assert checkpoint_to_resume(resumed, "sft")["step"] == 2
    with pytest.raises(InputError, match="--init"):  # another starting point is another run
        checkpoint_to_resume(dataclasses.replace(resumed, init=str(world / "pre")), "sft")


def test_a_users_figure_is_no_commands_file_and_overwrite_never_deletes_it(world, tmp_path, capsys):
    from align.pipeline import main as pipeline_main

    run = tmp_path / "pipeline"
    open_run_folder(PipelineConfig(preset="quick", out_dir=str(run)))
    for place in (run / "my_figure.png", run / "sft" / "slide.png"):
        place.parent.mkdir(exist_ok=True)
        place.write_bytes(b"\x89PNG mine")
        before = snapshot(tmp_path)
        err = one_line_error(capsys, pipeline_main, ["--quick", "--beta", "1", "--overwrite",
                                                     "--out-dir", str(run)])
        assert str(place.relative_to(run)) in err
        assert snapshot(tmp_path) == before
        place.unlink()


def test_the_same_settings_with_overwrite_resume_rather_than_start_again(tmp_path):
    """What the lessons rely on for their own quick run: --overwrite replaces a run of other
    settings only; an interrupted run of the same settings keeps what it had done."""
    quick = PipelineConfig(preset="quick", out_dir=str(tmp_path / "run"))
    run, _ = open_run_folder(quick)
    run.write_json("stages.json", {"data": {"seconds": 1, "result": {}}})
    assert set(open_run_folder(dataclasses.replace(quick, overwrite=True))[1]) == {"data"}
    assert open_run_folder(dataclasses.replace(quick, seed=1, overwrite=True))[1] == {}  # data ran: changed


def test_another_tools_run_json_is_no_run_of_ours(tmp_path):
    """A run.json this project did not write (Sacred writes one, say): a folder under it is
    written as usual, and the folder itself is refused without advice to delete the file."""
    (tmp_path / "run.json").write_text(json.dumps({"experiment": "theirs"}))
    assert not check_run_folder(str(tmp_path / "mine"), "pretrain")
    with pytest.raises(InputError, match="holds a run.json that this project did not write") as error:
        check_run_folder(str(tmp_path), "pretrain")
    assert "remove" not in str(error.value)


def test_a_frontier_moved_with_its_whole_project_is_the_same_frontier(world, tmp_path, monkeypatch):
    import shutil

    from align.frontier import FrontierConfig, open_out_dir

    shutil.copytree(world / "pipeline", tmp_path / "one" / "runs" / "pipeline")
    monkeypatch.chdir(tmp_path / "one")
    open_out_dir(FrontierConfig(run="runs/pipeline", quick=True))
    (tmp_path / "one" / "runs" / "pipeline" / "frontier" / "frontier.md").write_text("kept")
    shutil.move(tmp_path / "one", tmp_path / "two")
    monkeypatch.chdir(tmp_path / "two")
    open_out_dir(FrontierConfig(run="runs/pipeline", quick=True))
    assert (tmp_path / "two" / "runs" / "pipeline" / "frontier" / "frontier.md").read_text() == "kept"


def test_the_gridworld_keeps_out_of_other_runs_and_lists_its_files_as_ownership_does(
        world, tmp_path, capsys):
    from gridworld.__main__ import OWN_FILES

    assert set(OWN_FILES) == {OWNER_FILE, *KINDS["gridworld"].files}  # one list, checked twice
    inside = world / "pipeline" / "gw"
    before = snapshot(world)
    err = one_line_error(capsys, gridworld_main, ["--out", str(inside), "--no-figures"],
                         gridworld_run_main)
    assert "lies inside" in err and str(world / "pipeline") in err
    assert snapshot(world) == before
