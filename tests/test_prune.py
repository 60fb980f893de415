"""Magnitude pruning (minigpt.prune): the zeros are the smallest |w| of the blocks' matrices
taken together, the model keeps its size, CSR bytes are what the format stores, and the
command measures the run's own validation loss."""

import dataclasses
import json
import os

import pytest
import torch

from minigpt import GPT, load_model, save_checkpoint
from minigpt.cli import run_main
from minigpt.data import TokenData
from minigpt.prune import (dense_bytes, main, prunable_modules, prune_curve, prune_model,
                           sparse_bytes)
from minigpt.tokenizer import CharTokenizer
from minigpt.train import TrainConfig, estimate_loss, train
from tests.conftest import tiny_config
from toyworld.world import pretraining_corpus


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real minigpt.train run folder: a tiny GPT trained for 60 steps on toy-world text."""
    folder = tmp_path_factory.mktemp("prune")
    corpus = folder / "corpus.txt"
    corpus.write_text(pretraining_corpus(n_chars=20_000), encoding="utf-8")
    config = TrainConfig(data=str(corpus), out_dir=str(folder / "run"), block_size=32, n_layer=2,
                         n_head=2, n_embd=32, batch_size=8, learning_rate=3e-3, warmup_iters=5,
                         max_iters=60, eval_interval=60, eval_iters=4, sample_tokens=0, seed=5)
    train(config, progress=False)
    return config


def weights(model) -> list[torch.Tensor]:
    return [module.weight.detach() for module in prunable_modules(model)]


def test_the_zeros_are_the_globally_smallest_magnitudes(trained_run):
    model, _, _ = load_model(trained_run.out_dir)
    before = [w.clone() for w in weights(model)]
    names = {name for name, m in model.named_modules() if m in prunable_modules(model)}
    assert len(names) == 4 * 2  # c_attn, attn.c_proj, c_fc, mlp.c_proj in each of 2 blocks
    magnitudes = torch.sort(torch.cat([w.flatten() for w in before]).double().abs()).values
    n = magnitudes.numel()
    for sparsity in (0.3, 0.7, 0.9):
        pruned = prune_model(model, sparsity)
        after = weights(pruned)
        zeros = sum(int((w == 0).sum()) for w in after)
        assert abs(zeros - sparsity * n) <= 1  # the asked share, within one weight
        k = zeros
        zeroed = torch.cat([b[a == 0].flatten() for a, b in zip(after, before)]).double().abs()
        kept = torch.cat([b[a != 0].flatten() for a, b in zip(after, before)]).double().abs()
        assert zeroed.max() == magnitudes[k - 1]  # the threshold of an independent sort
        assert kept.min() == magnitudes[k]
        for a, b in zip(after, before):  # the kept weights are untouched
            assert torch.equal(a[a != 0], b[a != 0])
        assert not any("_orig" in key or "_mask" in key for key in pruned.state_dict())
        # the tied embedding is left out and still tied; the model given is not changed
        assert pruned.lm_head.weight is pruned.wte.weight
        assert torch.equal(pruned.wte.weight, model.wte.weight)
    assert all(torch.equal(w, b) for w, b in zip(weights(model), before))


@pytest.mark.parametrize("sharing", ["none", "all"])
def test_pruning_keeps_numel_and_dense_bytes(sharing):
    torch.manual_seed(0)
    model = GPT(tiny_config(share_layers=sharing))
    pruned = prune_model(model, 0.8)
    assert sum(p.numel() for p in pruned.parameters()) == model.num_parameters()
    assert dense_bytes(pruned.state_dict()) == dense_bytes(model.state_dict())
    nonzero = sum(int(torch.count_nonzero(p)) for p in pruned.parameters())
    assert nonzero < 0.5 * model.num_parameters()
    # ALBERT's one block at every depth is pruned once, and stays one block
    assert len(prunable_modules(pruned)) == (4 if sharing == "all" else 8)
    assert (pruned.blocks[0] is pruned.blocks[1]) == (sharing == "all")


def test_sparse_bytes_is_what_csr_stores():
    matrix = torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, 3.0]])
    assert sparse_bytes(matrix) == 3 * (4 + 8) + (3 + 1) * 8  # values + columns + row pointers
    assert sparse_bytes(matrix, torch.int32) == 3 * (4 + 4) + (3 + 1) * 4
    for w in weights(prune_model(GPT(tiny_config()), 0.6)):
        nnz, rows = int(torch.count_nonzero(w)), w.shape[0]
        assert sparse_bytes(w) == nnz * (4 + 8) + (rows + 1) * 8
    # float32 values with int64 indices: 12 bytes a nonzero against 4 dense, break-even 2/3
    torch.manual_seed(1)
    dense = torch.randn(128, 128)
    for sparsity, wins in ((0.6, False), (0.7, True)):
        w = dense * (torch.rand_like(dense) >= sparsity)
        assert (sparse_bytes(w) < w.numel() * 4) == wins
    with pytest.raises(ValueError, match="matrix"):
        sparse_bytes(torch.ones(3))


def test_the_command_measures_the_runs_own_validation_loss(trained_run, tmp_path, capsys):
    out = tmp_path / "pruning"
    rows = main(["--run", trained_run.out_dir, "--sparsities", "0.9,0.5", "--out-dir", str(out),
                 "--no-progress"])
    assert [r["sparsity"] for r in rows] == [0.0, 0.5, 0.9]  # sorted, with the baseline

    # loss at sparsity 0: estimate_loss of the unpruned model on the run's validation split
    model, tokenizer, _ = load_model(trained_run.out_dir)
    text = open(trained_run.data, encoding="utf-8").read()
    data = TokenData.from_text(text, tokenizer, trained_run.val_fraction)
    assert rows[0]["val_loss"] == estimate_loss(model, data, trained_run, "cpu")["val"]
    with open(os.path.join(trained_run.out_dir, "metrics.jsonl")) as f:
        last_eval = [json.loads(line) for line in f if "val_loss" in line][-1]
    assert rows[0]["val_loss"] == pytest.approx(last_eval["val_loss"], abs=1e-6)  # the same batches
    assert rows[-1]["val_loss"] > rows[0]["val_loss"] + 0.05  # 90% zeros hurt a trained model
    assert rows[-1]["val_loss_change"] == rows[-1]["val_loss"] - rows[0]["val_loss"]

    n = rows[0]["pruned_weights"]
    for r in rows:
        assert abs(r["zeros"] - r["sparsity"] * n) <= 1 and r["zero_share"] == r["zeros"] / n
        assert r["parameters"] == rows[0]["parameters"] == model.num_parameters()
        assert r["nonzero_parameters"] == rows[0]["nonzero_parameters"] - r["zeros"]
        assert r["dense_state_dict_bytes"] == rows[0]["dense_state_dict_bytes"]
        assert r["matrices_dense_bytes"] == 4 * n
    assert rows[0]["matrices_csr_bytes"] > rows[0]["matrices_dense_bytes"]  # dense: CSR is 3×
    assert rows[-1]["matrices_csr_bytes"] < rows[-1]["matrices_dense_bytes"]

    printed = capsys.readouterr().out
    assert "| sparsity |" in printed and "ALBERT" in printed
    report = (out / "pruning.md").read_text(encoding="utf-8")
    assert "| 0.9 |" in report and "stores zeros" in report
    assert json.loads((out / "pruning.json").read_text())["rows"] == rows
    png = (out / "pruning.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000

    smaller = prune_curve(model, data, [0.0, 0.9], dataclasses.replace(trained_run, eval_iters=2))
    assert smaller[0]["val_loss"] != rows[0]["val_loss"]  # --eval-iters picks the batches


def one_line_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_bad_input_is_one_line_naming_the_problem(trained_run, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no ckpt.pt" in one_line_error(capsys, ["--run", str(empty)])
    assert "no such run folder" in one_line_error(capsys, ["--run", str(tmp_path / "nowhere")])
    run = ["--run", trained_run.out_dir, "--no-progress"]
    assert "[0, 1)" in one_line_error(capsys, run + ["--sparsities", "0,1"])
    assert "[0, 1)" in one_line_error(capsys, run + ["--sparsities", "-0.1"])
    assert "'0,half'" in one_line_error(capsys, run + ["--sparsities", "0,half"])
    assert "--eval-iters" in one_line_error(capsys, run + ["--eval-iters", "-1"])

    reward = tmp_path / "reward"
    tokenizer = CharTokenizer.from_text("abcd")
    config = tiny_config(vocab_size=tokenizer.vocab_size)
    save_checkpoint(reward / "ckpt.pt", GPT(config), 0, config, tokenizer,
                    extra={"stage": "reward"})
    assert "'reward' checkpoint" in one_line_error(capsys, ["--run", str(reward)])
    save_checkpoint(reward / "ckpt.pt", GPT(config), 0, config, tokenizer)  # no config.json
    assert "no config.json" in one_line_error(capsys, ["--run", str(reward)])
