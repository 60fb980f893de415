"""ALBERT measured (minigpt.albert): FLOPs per token counted by hand and by PyTorch, the
parameter-matched control, and a tiny run whose rows say that sharing saves parameters
and optimiser state but neither compute nor activation memory."""

import dataclasses
import json
import os

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from minigpt import GPT, GPTConfig
from minigpt.albert import (
    AlbertConfig,
    applied_parameters,
    finished_summary,
    flops_per_token,
    main,
    run_albert,
    run_signature,
)
from minigpt.cli import run_main
from toyworld.world import pretraining_corpus


def test_flops_per_token_against_a_count_by_hand():
    """V = 10, H = 8, L = 2, T = 4: each matrix of a block, the output layer and attention."""
    c_attn, c_proj, c_fc, mlp_proj = 8 * 24, 8 * 8, 8 * 32, 32 * 8  # 192 + 64 + 256 + 256
    per_depth = c_attn + c_proj + c_fc + mlp_proj
    assert per_depth == 768
    # per depth: q·Kᵀ and A·V, 2·H·T each per token forward, ×3 with the backward
    attention = (2 * 8 * 4 + 2 * 8 * 4) * 3
    assert attention == 384
    unshared = 6 * (2 * per_depth + 10 * 8) + 2 * attention  # output layer V·H = 80
    assert unshared == 10464

    def flops(**options):
        shape = {"block_size": 4, "vocab_size": 10, "n_layer": 2, "n_head": 2, "n_embd": 8,
                 **options}
        return flops_per_token(GPTConfig(**shape), T=4)

    assert flops() == 10464
    for share in ("all", "attention", "mlp"):  # a shared block still runs at every depth
        assert flops(share_layers=share) == 10464
    # E = 4: embed_in 4·8 and embed_out 8·4 added, the output layer shrinks to V·E = 40
    assert flops(embedding_dim=4) == 6 * (2 * per_depth + 4 * 8 + 8 * 4 + 10 * 4) + 2 * attention
    assert flops(embedding_dim=4) == 10608
    assert flops(embedding_dim=8) == 10464  # E = H: no projections
    assert flops(n_layer=1) == 6 * (per_depth + 80) + attention == 5472
    with pytest.raises(ValueError, match="lsh"):
        flops(attention="lsh", lsh_bucket_size=2)


@pytest.mark.parametrize("options", [{}, {"share_layers": "all"}, {"share_layers": "attention"},
                                     {"share_layers": "mlp"}, {"embedding_dim": 4},
                                     {"share_layers": "all", "embedding_dim": 3}, {"n_layer": 1}])
def test_flops_per_token_is_what_pytorch_counts(options):
    """torch's FlopCounterMode counts every matrix product of a real forward + backward."""
    config = GPTConfig(**{"block_size": 8, "vocab_size": 11, "n_layer": 3, "n_head": 2,
                          "n_embd": 8, **options})
    torch.manual_seed(0)
    model = GPT(config)
    x = torch.randint(11, (3, 8))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        loss.backward()
    assert counter.get_total_flops() == flops_per_token(config, T=8) * x.numel()


@pytest.mark.parametrize("sizes", [{}, dict(n_layer=6, n_head=2, n_embd=48, block_size=32,
                                                variants="share-all,embed-16")])
def test_the_control_has_exactly_share_alls_parameters(sizes):
    config = AlbertConfig(**sizes)
    control = config.train_config("control-1-layer").model_config(vocab_size=74)
    share_all = config.train_config("share-all").model_config(vocab_size=74)
    assert (control.n_layer, control.share_layers) == (1, "none")
    assert (share_all.n_layer, share_all.share_layers) == (config.n_layer, "all")
    assert GPT(control).num_parameters() == GPT(share_all).num_parameters()
    assert applied_parameters(GPT(control)) == GPT(control).num_parameters()


def test_applied_parameters_count_each_depth():
    base = tiny_gpt_config()
    unshared = GPT(base).num_parameters()
    for share in ("all", "attention", "mlp"):
        model = GPT(dataclasses.replace(base, share_layers=share))
        assert model.num_parameters() < unshared
        assert applied_parameters(model) == unshared  # each depth applies a whole block


def tiny_gpt_config(**options) -> GPTConfig:
    return GPTConfig(**{"block_size": 16, "vocab_size": 20, "n_layer": 3, "n_head": 2,
                        "n_embd": 16, **options})


# ---------------------------------------------------------------------- a tiny run

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("albert")
    corpus = folder / "corpus.txt"
    corpus.write_text(pretraining_corpus(n_chars=20_000), encoding="utf-8")
    config = AlbertConfig(data=str(corpus), out_dir=str(folder / "out"),
                          variants="share-all,control-1-layer,embed-16", n_layer=2, n_head=2,
                          n_embd=32, block_size=16, batch_size=4, max_iters=20, warmup_iters=2,
                          eval_iters=2, timing_steps=2, device="cpu", progress=False)
    return config, run_albert(config)


def test_tiny_run_writes_its_three_files(tiny):
    config, rows = tiny
    for name in ("albert.md", "albert.json", "albert.png", "config.json"):
        assert os.path.getsize(os.path.join(config.out_dir, name)) > 0
    with open(os.path.join(config.out_dir, "albert.json"), encoding="utf-8") as f:
        assert json.load(f)["rows"] == rows
    with open(os.path.join(config.out_dir, "albert.md"), encoding="utf-8") as f:
        report = f.read()
    assert "| share-all |" in report and "| embed-16 |" in report
    assert "19,101,696" in report  # BERT-base's V·H − (V·E + E·H)
    for name in ("baseline", "share-all", "control-1-layer", "embed-16"):  # one run folder each
        assert os.path.exists(os.path.join(config.out_dir, name, "ckpt.pt"))


def test_rows_count_and_measure_what_they_say(tiny):
    _, rows = tiny
    by = {row["variant"]: row for row in rows}
    assert [row["variant"] for row in rows] == ["baseline", "share-all", "control-1-layer",
                                                "embed-16"]
    V = rows[0]["vocab_size"]
    shape = {"block_size": 16, "vocab_size": V, "n_head": 2, "n_embd": 32}
    expected = {"baseline": GPTConfig(n_layer=2, **shape),
                "share-all": GPTConfig(n_layer=2, share_layers="all", **shape),
                "control-1-layer": GPTConfig(n_layer=1, **shape),
                "embed-16": GPTConfig(n_layer=2, embedding_dim=16, **shape)}
    for name, model_config in expected.items():
        assert by[name]["unique_parameters"] == GPT(model_config).num_parameters()
        assert by[name]["flops_per_token"] == flops_per_token(model_config, 16)
        assert by[name]["steps"] == 20 and by[name]["tokens_per_s"] > 0
    base, shared = by["baseline"], by["share-all"]
    assert by["control-1-layer"]["unique_parameters"] == shared["unique_parameters"]
    # sharing: less state (16 bytes a float32 parameter), the same compute and activations
    assert shared["state_bytes"] == 16 * shared["unique_parameters"] < base["state_bytes"]
    assert shared["flops_per_token"] == base["flops_per_token"]
    assert shared["applied_parameters"] == base["unique_parameters"]
    assert abs(shared["activation_bytes"] / base["activation_bytes"] - 1) < 0.10
    assert by["control-1-layer"]["activation_bytes"] < 0.75 * base["activation_bytes"]
    assert base["val_loss_change"] == 0.0
    assert shared["val_loss_change"] == pytest.approx(shared["val_loss"] - base["val_loss"])
    with open(os.path.join(shared["run"], "metrics.jsonl"), encoding="utf-8") as f:
        last_eval = [json.loads(line) for line in f if "val_loss" in line][-1]
    assert (last_eval["step"], last_eval["val_loss"]) == (20, shared["val_loss"])


def test_a_finished_variant_is_reused_only_with_the_same_settings(tiny):
    config, rows = tiny
    again = run_albert(dataclasses.replace(config, variants="share-all"))
    assert [row["variant"] for row in again] == ["baseline", "share-all"]
    assert all(row["reused"] for row in again)
    assert [row["val_loss"] for row in again] == [row["val_loss"] for row in rows[:2]]
    train_config = config.train_config("share-all")
    with open(os.path.join(train_config.out_dir, "config.json"), encoding="utf-8") as f:
        tokens = json.load(f)["data_tokens"]
    assert finished_summary(train_config, run_signature(train_config, "cpu", tokens)) is not None
    changed = dataclasses.replace(train_config, learning_rate=2e-3)
    assert finished_summary(changed, run_signature(changed, "cpu", tokens)) is None


@pytest.mark.parametrize("argv, words", [
    (["--variants", "share-everything"], "unknown variant 'share-everything'"),
    (["--variants", "embed-128"], "--variants embed-128: E must be from 1 to"),
    (["--timing-repeats", "0"], "--timing-repeats must be at least 1"),
    (["--n-head", "3"], "not divisible by n_head=3"),
])
def test_bad_flags_are_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "runs").exists()


def test_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert "--variants" in capsys.readouterr().out
