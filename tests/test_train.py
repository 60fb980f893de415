"""Pre-training: the schedule, the optimiser groups, the run folder, exact resumption."""

import dataclasses
import json
import math
import os
import shutil

import pytest
import torch

from toyworld.world import pretraining_corpus
from minigpt import GPT, learning_rate_at, load_model, make_optimizer
from minigpt.checkpoint import load_checkpoint
from minigpt.data import TokenData
from minigpt.errors import InputError
from minigpt.train import FREE_ON_RESUME, TrainConfig, main, resolve_config, train
from tests.conftest import tiny_config


def test_learning_rate_schedule_at_warmup_peak_and_end():
    def lr(step):
        return learning_rate_at(step, learning_rate=1e-3, min_lr=1e-4, warmup_steps=100,
                                max_steps=2000)
    assert lr(0) == 0.0
    assert lr(50) == pytest.approx(5e-4)  # halfway through the linear warm-up
    assert lr(100) == pytest.approx(1e-3)  # the peak
    middle = 100 + (2000 - 100) // 2
    assert lr(middle) == pytest.approx((1e-3 + 1e-4) / 2)  # cos(π/2) = 0: halfway down
    assert lr(2000) == pytest.approx(1e-4)  # the floor at the last step
    assert lr(5000) == pytest.approx(1e-4)
    steps = [lr(s) for s in range(100, 2001)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))  # never rises after the peak


def test_weight_decay_applies_to_matrices_only():
    model = GPT(tiny_config())
    optimizer = make_optimizer(model, 1e-3, weight_decay=0.1)
    decayed, undecayed = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decayed["params"])
    assert all(p.dim() == 1 for p in undecayed["params"])
    n = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
    assert n == model.num_parameters()  # every parameter once (the tied matrix too)


def small_run(tmp_path, name, **overrides) -> TrainConfig:
    data = tmp_path / "corpus.txt"
    if not data.exists():
        data.write_text(pretraining_corpus(n_chars=20_000), encoding="utf-8")
    values = dict(data=str(data), out_dir=str(tmp_path / name), block_size=16, n_layer=1,
                  n_head=2, n_embd=16, dropout=0.1, batch_size=4, max_iters=12,
                  warmup_iters=3, eval_interval=4, eval_iters=2, sample_tokens=0, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def step_losses(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


def test_resuming_gives_the_losses_of_an_uninterrupted_run(tmp_path):
    uninterrupted = train(small_run(tmp_path, "a"), progress=False)

    interrupted = small_run(tmp_path, "b", stop_after=6)
    first = train(interrupted, progress=False)
    assert first["step"] == 6
    with open(os.path.join(interrupted.out_dir, "metrics.jsonl"), "a") as f:  # a crash after
        f.write(json.dumps({"step": 7, "loss": 99.0}) + "\n" + '{"step": 8, "lo')  # the checkpoint
    config, checkpoint = resolve_config({"out_dir": interrupted.out_dir, "resume": True,
                                         "stop_after": 0, "eval_interval": 5})
    assert checkpoint["step"] == 6 and config.max_iters == 12 and config.dropout == 0.1
    assert config.eval_interval == 5  # evaluating at other steps leaves the steps as they are
    resumed = train(config, checkpoint, progress=False)

    a, b = step_losses(uninterrupted["run"]), step_losses(resumed["run"])
    assert sorted(b) == list(range(1, 13))  # the log holds each step once
    assert [a[s] for s in range(1, 13)] == [b[s] for s in range(1, 13)]  # exactly equal
    assert resumed["val_loss"] == uninterrupted["val_loss"]


def test_run_folder_contents_and_a_loadable_checkpoint(tmp_path):
    summary = train(small_run(tmp_path, "run", sample_tokens=20), progress=False)
    run = summary["run"]
    for name in ("config.json", "metrics.jsonl", "loss.png", "ckpt.pt", "tokenizer.json",
                 "report.md"):
        assert os.path.getsize(os.path.join(run, name)) > 0, name
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["n_layer"] == 1 and config["model"]["vocab_size"] > 10
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl"))]
    evals = [row for row in rows if "val_loss" in row]
    assert [row["step"] for row in evals] == [0, 4, 8, 12]
    assert evals[0]["val_perplexity"] == pytest.approx(math.exp(evals[0]["val_loss"]))
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]  # it learned something
    model, tokenizer, checkpoint = load_model(run)
    assert checkpoint["step"] == 12 and not model.training
    assert model.config.vocab_size == tokenizer.vocab_size


def test_an_existing_run_is_not_overwritten_by_accident(tmp_path):
    config = small_run(tmp_path, "run", max_iters=2, eval_interval=2)
    train(config, progress=False)
    with pytest.raises(InputError, match="already holds a checkpoint; pass --resume"):
        resolve_config({"out_dir": config.out_dir})
    with pytest.raises(InputError, match=r"n_layer: checkpoint has 1, asked for 2"):
        resolve_config({"out_dir": config.out_dir, "resume": True, "n_layer": 2})
    with pytest.raises(InputError, match=r"n_layer: checkpoint has 1, asked for 2"):
        # another model cannot take the checkpoint's weights: --allow-changes cannot help
        resolve_config({"out_dir": config.out_dir, "resume": True, "n_layer": 2,
                        "allow_changes": True})
    with pytest.raises(InputError, match="tokenizer"):
        resolve_config({"out_dir": config.out_dir, "resume": True, "tokenizer": "byte"})


def test_resuming_on_text_outside_the_vocabulary_is_a_clear_error(tmp_path):
    config = small_run(tmp_path, "run", max_iters=2, eval_interval=2)
    train(config, progress=False)
    other = tmp_path / "other.txt"
    other.write_text("ñandú " * 500, encoding="utf-8")
    resumed, checkpoint = resolve_config({"out_dir": config.out_dir, "resume": True,
                                          "data": str(other), "max_iters": 4,
                                          "allow_changes": True})
    with pytest.raises(InputError, match=r"other.txt: character 'ñ'"):
        train(resumed, checkpoint, progress=False)


@pytest.mark.parametrize("content, message", [
    (b"", "the data file is empty"),
    (b"   \n\n", "only white space"),
    (b"short text", "fewer than one block"),
    (b"caf\xe9 au lait\n" * 50, "not UTF-8 text (byte 3, line 1"),
])
def test_bad_data_files_get_one_line_errors(tmp_path, capsys, content, message):
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    with pytest.raises(SystemExit) as stop:
        run_cli(["--data", str(path), "--out-dir", str(tmp_path / "run"), "--max-iters", "1"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and message in err


def test_a_missing_data_file_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli(["--data", str(tmp_path / "nope.txt"), "--out-dir", str(tmp_path / "run")])
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.txt'}: no such data file"


def run_cli(argv):
    from minigpt.cli import run_main
    return run_main(main, argv)


def test_every_command_has_help(capsys):
    from minigpt import bench, sample
    for module in (main, sample.main, bench.main):
        with pytest.raises(SystemExit) as stop:
            module(["--help"])
        assert stop.value.code == 0
    assert "--max-iters" in capsys.readouterr().out


def test_cpu_autocast_is_a_no_op_and_device_auto_picks_cpu_without_cuda():
    from minigpt.device import autocast_for, pick_device
    if not torch.cuda.is_available():
        assert pick_device("auto") == "cpu"
        with pytest.raises(InputError, match="no CUDA device"):
            pick_device("cuda")
    with autocast_for("cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_gradient_accumulation_in_train_equals_one_big_batch(tmp_path):
    """train() with batch 2B and grad_accum 1 takes the steps of batch B with grad_accum 2:
    (L_1 + L_2) / 2 over two micro-batches of B rows has the gradient of the mean loss L
    over the 2B rows, so the weights after a few steps agree to float64 round-off.

    The settings make a mistake visible. float64: a wrong scale of the gradient (forgetting
    `/ grad_accum` doubles it) changes Adam's update only through its ε, by ~1e-5 of a
    weight, far below float32's noise but far above float64's. grad_clip 0: clipping would
    scale both gradients to the same norm and hide the mistake. Dropout 0: no mask to
    draw, so both runs use the global RNG alike."""
    B = 2
    data = TokenData(torch.arange(1000) % 37, torch.arange(100) % 37)
    one, two = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    x_big, _ = data.get_batch("train", 2 * B, 16, one)
    x_a, _ = data.get_batch("train", B, 16, two)
    x_b, _ = data.get_batch("train", B, 16, two)
    # The premise: the batch sampler draws row by row, so B rows drawn twice are the 2B
    # rows drawn once and both runs see the same rows in the same order.
    assert torch.equal(x_big, torch.cat([x_a, x_b]))

    def weights_after(name, **batching):
        config = small_run(tmp_path, name, dropout=0.0, grad_clip=0.0, max_iters=4,
                           warmup_iters=0, eval_interval=4, eval_iters=1, **batching)
        train(config, progress=False)
        return load_checkpoint(config.out_dir)["model"], step_losses(config.out_dir)

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the model is built in float64
    try:
        big, big_losses = weights_after("big", batch_size=2 * B, grad_accum=1)
        accumulated, accumulated_losses = weights_after("accumulated", batch_size=B,
                                                        grad_accum=2)
    finally:
        torch.set_default_dtype(default_dtype)
    assert big["wte.weight"].dtype == torch.float64
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=0, atol=1e-12,
                                   msg=lambda m: f"{name}: {m}")
    assert accumulated_losses == pytest.approx(big_losses, rel=1e-12)


@pytest.mark.parametrize("flags, message", [
    ({"eval_interval": 0}, "--eval-interval must be at least 1"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"grad_accum": 0}, "--grad-accum must be at least 1"),
    ({"n_embd": 30}, "n_embd=30 is not divisible by n_head=4"),
    ({"device": "tpu"}, "--device must be auto, cpu, cuda or mps"),
])
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    argv = ["--out-dir", str(tmp_path / "run")]
    for key, value in flags.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    with pytest.raises(SystemExit):
        run_cli(argv)
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err


# Resuming refuses what would make it inexact: every setting that shapes the optimisation.

@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    config = small_run(tmp_path_factory.mktemp("saved"), "run", max_iters=4, eval_interval=2,
                       dropout=0.0)
    train(config, progress=False)
    return config.out_dir


@pytest.fixture
def saved_run(trained_once, tmp_path):
    """A finished 4-step run (batch 4, lr 1e-3), a fresh copy for each test: its folder."""
    folder = str(tmp_path / "run")
    shutil.copytree(trained_once, folder)
    return folder


def folder_bytes(folder) -> dict:
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder))}


def test_the_settings_that_shape_the_optimisation_are_all_checked():
    trajectory = {f.name for f in dataclasses.fields(TrainConfig)} - set(FREE_ON_RESUME)
    assert trajectory == {"learning_rate", "min_lr", "warmup_iters", "max_iters", "batch_size",
                          "grad_accum", "block_size", "weight_decay", "beta1", "beta2",
                          "grad_clip", "seed", "data", "tokenizer", "vocab_size", "val_fraction", "n_layer",
                          "n_head", "n_embd", "dropout", "bias", "attention", "lsh_n_hashes",
                          "lsh_bucket_size", "lsh_n_buckets", "lsh_seed", "embedding_dim",
                          "share_layers"}


@pytest.mark.parametrize("flag, value, change", [
    ("--max-iters", "8", "--max-iters 4 → 8"),
    ("--learning-rate", "5e-4", "--learning-rate 0.001 → 0.0005"),
    ("--batch-size", "2", "--batch-size 4 → 2"),
], ids=["max_iters", "learning_rate", "batch_size"])
def test_resuming_with_a_changed_setting_is_refused_in_one_line(saved_run, capsys, flag, value,
                                                                change):
    before = folder_bytes(saved_run)
    with pytest.raises(SystemExit) as stop:
        run_cli(["--out-dir", saved_run, "--resume", flag, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: {os.path.join(saved_run, 'ckpt.pt')}: cannot resume exactly: "
                          f"{change} change the optimisation; pass --allow-changes")
    assert folder_bytes(saved_run) == before  # nothing in the run folder was touched


def test_the_refusal_names_every_changed_flag_in_the_order_typed(saved_run, capsys):
    with pytest.raises(SystemExit):
        run_cli(["--out-dir", saved_run, "--resume", "--max-iters", "8", "--eval-interval", "1",
                 "--learning-rate", "5e-4"])
    err = capsys.readouterr().err.strip()
    assert ("cannot resume exactly: --max-iters 4 → 8, --learning-rate 0.001 → 0.0005 "
            "change the optimisation") in err
    assert "eval-interval" not in err


def test_resuming_with_the_same_values_typed_again_or_a_free_flag_changed(saved_run, capsys):
    corpus = json.load(open(os.path.join(saved_run, "config.json")))["data"]
    config, checkpoint = resolve_config({
        "out_dir": saved_run, "resume": True, "max_iters": 4, "learning_rate": 0.001,
        "batch_size": 4, "dropout": 0.0,
        "data": os.path.relpath(corpus),  # the same file, spelled differently
        "eval_interval": 1, "eval_iters": 3, "sample_tokens": 5, "stop_after": 1})
    assert checkpoint["step"] == 4 and config.eval_interval == 1 and config.eval_iters == 3
    assert capsys.readouterr().err == ""  # no warning either


def test_allow_changes_resumes_with_a_warning_and_applies_the_changes(saved_run, capsys):
    resumed, checkpoint = resolve_config({"out_dir": saved_run, "resume": True,
                                          "max_iters": 6, "weight_decay": 0.0,
                                          "allow_changes": True})
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("warning: ")
    assert "--max-iters 4 → 6, --weight-decay 0.1 → 0.0" in err
    summary = train(resumed, checkpoint, progress=False)
    assert summary["step"] == 6
    saved = load_checkpoint(saved_run)
    assert saved["optimizer"]["param_groups"][0]["weight_decay"] == 0.0  # not the saved 0.1
    # --allow-changes holds for one invocation: the next resume is checked again
    with pytest.raises(InputError, match="cannot resume exactly: --max-iters 6 → 8"):
        resolve_config({"out_dir": saved_run, "resume": True, "max_iters": 8})
