"""minigpt.cost: the training-cost calculator, checked against counts made another way."""

import json
import os
import statistics

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from minigpt import GPT, GPTConfig
from minigpt.albert import flops_per_token
from minigpt.cost import (CostConfig, main, model_flops_utilisation, run_utilisation,
                          slide_rows, training_flops)
from minigpt.train import train
from tests.test_train import small_run


def test_flop_counter_on_a_real_forward_backward_equals_6N_plus_12LTd():
    """torch counts every matmul (2·m·n·k FLOPs) of one forward + backward of a tiny GPT.
    The count per token is exactly 6·N_applied + 12·L·T·d: N_applied is the four Linear
    weights of each block (12·d² per layer) plus the tied lm_head (V·d). The embedding
    lookups, LayerNorms, biases, GELU and softmax are not matmuls and are not counted by
    either side; the causal mask does not halve the scores' matmul (all T×T computed)."""
    torch.manual_seed(0)
    config = GPTConfig(block_size=16, vocab_size=37, n_layer=2, n_head=2, n_embd=24,
                       dropout=0.0, bias=True, attention="manual")
    model = GPT(config)
    B, T = 3, 16
    idx = torch.randint(0, config.vocab_size, (B, T))
    with FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    counted = counter.get_total_flops()

    L, d, V = config.n_layer, config.n_embd, config.vocab_size
    n_applied = L * 12 * d * d + V * d  # by hand: c_attn 3d², c_proj d², MLP 8d²; lm_head V·d
    by_hand = (6 * n_applied + 12 * L * T * d) * B * T
    assert flops_per_token(config, T) * B * T == by_hand
    assert counted == by_hand
    # Kaplan's 6·N with N = num_parameters() instead: N also holds the embedding tables
    # (V·d is the tied lm_head, counted; the T·d position table is a lookup, not counted),
    # the biases and LayerNorms, and leaves out attention's 12·L·T·d: a few % off here.
    N = sum(p.numel() for p in model.parameters())
    assert abs(6 * N * B * T - counted) / counted < 0.2


def test_training_flops_is_flops_per_token_times_tokens():
    config = GPTConfig(block_size=64, vocab_size=50, n_layer=3, n_head=4, n_embd=32)
    n_applied = 3 * 12 * 32 * 32 + 50 * 32
    assert training_flops(n_applied, 1000, 3, 64, 32) == flops_per_token(config, 64) * 1000


def test_the_slides_three_rows_against_an_independent_computation():
    rows = slide_rows(CostConfig())
    D = 128_000 * 1_000_000  # BERT's 128k tokens per batch × 1M steps
    T = 512
    peak = 125e12  # V100, fp16 tensor cores
    for row, (N, L, d, slide) in zip(rows, [(110e6, 12, 768, (2.5e3, 50e3)),
                                            (340e6, 24, 1024, (10e3, 200e3)),
                                            (1.5e9, 48, 1600, (80e3, 1.6e6))]):
        flops = 6 * N * D + 12 * L * T * d * D
        seconds_fast = flops / (peak * 0.4)
        seconds_slow = flops / (peak * 0.2)
        low = seconds_fast / 3600 * 2.48  # one run, best MFU, cheapest hour
        high = seconds_slow / 3600 * 3.06 * 20  # 2 configurations × 10 runs, worst case
        assert row["flops"] == pytest.approx(flops)
        assert row["low"] == pytest.approx(low) and row["high"] == pytest.approx(high)
        assert (row["slide_low"], row["slide_high"]) == slide
        assert row["overlaps"] == (low <= slide[1] and high >= slide[0]) == True  # noqa: E712
    # BERT-base by hand: 6·1.1e8 + 12·12·512·768 = 7.166e8 FLOPs/token; × 1.28e11 tokens
    assert rows[0]["flops"] == pytest.approx(9.172e19, rel=1e-3)


def test_mfu_of_a_tiny_training_run(tmp_path, capsys):
    summary = train(small_run(tmp_path, "run", max_iters=6, eval_interval=6), progress=False)
    run = summary["run"]
    saved = json.load(open(os.path.join(run, "config.json")))
    speeds = [json.loads(line)["tokens_per_s"] for line in open(os.path.join(run, "metrics.jsonl"))
              if "tokens_per_s" in line]
    assert len(speeds) == 6

    result = run_utilisation(run, peak_flops=1e11)
    m = saved["model"]
    T, L, d, V = m["block_size"], m["n_layer"], m["n_embd"], m["vocab_size"]
    per_token = 6 * (L * 12 * d * d + V * d) + 12 * L * T * d
    assert result["flops_per_token"] == per_token
    assert result["tokens_per_s"] == statistics.median(speeds)
    assert result["mfu"] == pytest.approx(per_token * statistics.median(speeds) / 1e11)
    assert result["mfu"] == pytest.approx(model_flops_utilisation(
        GPTConfig(**m), T, statistics.median(speeds), 1e11))
    assert result["tokens"] == 6 * 4 * 16

    main(["--run", run, "--run-peak-tflops", "0.1"])
    out = capsys.readouterr().out
    assert "MFU" in out and "given by --run-peak-tflops" in out


def test_errors_are_one_line(tmp_path, capsys):
    from minigpt.cli import run_main
    for argv in (["--run", str(tmp_path / "missing")], ["--mfu-high", "1.5"],
                 ["--params", "1e9"], ["--no-such-flag"]):
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
