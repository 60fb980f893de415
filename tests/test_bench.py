"""minigpt.bench: the log-log slope and the crossover are what independent computations say,
the --lengths sweep shows attention by hand growing as T² while sdpa and LSH grow linearly,
it writes its PNG and JSON, bad lengths are one-line errors, and the default benchmark
prints what it always printed."""

import contextlib
import io
import json
import re

import numpy as np
import pytest
import torch

from minigpt import bench
from minigpt.bench import first_length_where, loglog_slope, main
from minigpt.albert import flops_per_token
from minigpt.cli import run_main
from minigpt.config import GPTConfig

# the T² term visible at short lengths: 8 heads of 4 dims, a 16-token vocabulary
TINY = ["--n-layer", "1", "--n-head", "8", "--n-embd", "32", "--vocab-size", "16", "--repeats", "1"]


@pytest.mark.parametrize("power, scale", [(2, 3.0), (1, 0.5), (1.5, 7.0), (0.5, 1e6)])
def test_the_slope_of_exact_powers_is_their_exponent_as_polyfit_says(power, scale):
    lengths = [256, 512, 1024, 2048, 4096, 8192]
    values = [scale * T ** power for T in lengths]
    expected = np.polyfit(np.log2(lengths), np.log2(values), 1)[0]
    assert abs(loglog_slope(lengths, values) - power) < 1e-9
    assert abs(loglog_slope(lengths, values) - expected) < 1e-9


def test_the_slope_of_noisy_values_is_the_least_squares_one():
    lengths = [64, 100, 256, 1000, 3000]
    values = [5.0, 9.0, 40.0, 130.0, 900.0]  # no exact power: only a fit gives the slope
    expected = np.polyfit(np.log2(lengths), np.log2(values), 1)[0]
    assert abs(loglog_slope(lengths, values) - expected) < 1e-9
    # a constant plus a T² term: the slope over all lengths lies below 2, above 1
    mixed = [1e6 + T ** 2 for T in [256, 512, 1024, 2048, 4096, 8192]]
    assert 1.0 < loglog_slope([256, 512, 1024, 2048, 4096, 8192], mixed) < 2.0


def test_a_slope_needs_two_lengths_and_positive_values():
    with pytest.raises(ValueError):
        loglog_slope([256], [1.0])
    with pytest.raises(ValueError):
        loglog_slope([256, 256], [1.0, 2.0])
    with pytest.raises(ValueError):
        loglog_slope([256, 512], [1.0, 0.0])


def test_the_crossover_is_the_length_from_which_a_stays_below_b():
    lengths = [256, 512, 1024, 2048]
    assert first_length_where(lengths, [9, 8, 2, 1], [5, 5, 5, 5]) == 1024
    assert first_length_where(lengths, [1, 2, 3, 4], [5, 5, 5, 5]) == 256  # from the start
    assert first_length_where(lengths, [1, 9, 1, 1], [5, 5, 5, 5]) == 1024  # below, above, below
    assert first_length_where(lengths, [1, 1, 1, 9], [5, 5, 5, 5]) is None  # not at the end
    assert first_length_where(lengths, [5, 5, 5, 5], [5, 5, 5, 5]) is None  # equal is not below
    # a length where one of the two was not measured is left out
    assert first_length_where(lengths, [9, None, 1, 1], [5, 5, None, 5]) == 2048
    assert first_length_where(lengths, [9, 1, 1, None], [5, 5, 5, None]) == 512
    assert first_length_where([], [], []) is None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    plot = folder / "out" / "lengths.png"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        results = main(["--lengths", "256,64,128", *TINY, "--plot", str(plot)])
    return results, plot, printed.getvalue()


def memory(results, kind):
    return {r["T"]: r["activation_bytes"] for r in results["rows"]
            if r["attention"] == kind and r["status"] == "measured"}


def test_the_sweep_measures_every_kind_at_every_length(sweep):
    results, _, _ = sweep
    rows = results["rows"]
    assert [(r["attention"], r["T"]) for r in rows] == [
        (kind, T) for T in (64, 128, 256) for kind in ("manual", "sdpa", "lsh")]
    for r in rows:
        assert r["status"] == "measured" and r["ms"] > 0 and r["activation_bytes"] > 0
        assert r["state_bytes"] == 16 * r["parameters"]  # float32: params, grads, 2 moments
    assert results["config"]["block_size"] == 256  # the largest length


def test_attention_by_hand_grows_as_t_squared_and_sdpa_and_lsh_linearly(sweep):
    results, _, _ = sweep
    # growth from 128 to 256 against growth from 64 to 128: 2 for a linear term, 4 for T²
    growth = {kind: (m[256] - m[128]) / (m[128] - m[64])
              for kind in ("manual", "sdpa", "lsh") for m in [memory(results, kind)]}
    assert growth["manual"] > 3.0, growth  # measured 3.4: the (1, 8, T, T) weights dominate
    assert growth["sdpa"] < 2.2, growth  # measured 2.0
    assert growth["lsh"] < 2.2, growth  # measured 2.0
    # the T² term itself: the weights A, 8 heads · T² · 4 bytes, are in manual's memory
    manual = memory(results, "manual")
    assert manual[256] - memory(results, "sdpa")[256] >= 8 * 256 ** 2 * 4
    slopes = results["slopes"]
    assert slopes["manual"]["lengths"] == [64, 128, 256]
    assert slopes["manual"]["memory_last_two"] > 1.5
    assert abs(slopes["sdpa"]["memory"] - 1.0) < 0.1 and abs(slopes["lsh"]["memory"] - 1.0) < 0.1


def test_the_sweep_prints_the_table_slopes_crossovers_and_the_finding(sweep):
    out = sweep[2]
    lines = out.splitlines()
    for T in (64, 128, 256):
        assert any(line.split()[:1] == [str(T)] for line in lines), T
    assert "manual ms" in out and "lsh MiB" in out
    assert "over T = 64, 128, 256" in out
    assert "faster than manual" in out and "less memory than manual" in out
    assert lines[-2].startswith("finding: at short lengths LSH is slower (T=64: ")
    assert "x the time of manual" in lines[-2] and "x of sdpa" in lines[-2]
    assert lines[-1].startswith("and exact fused attention (sdpa) is also linear in memory")


def test_the_finding_says_what_was_measured_even_when_it_is_not_the_expected_one():
    config = bench.BenchConfig(lengths="64,128")
    rows = [{"attention": kind, "T": T, "status": "measured", "ms": ms}
            for T, times in ((64, (2.0, 1.0, 4.0)), (128, (8.0, 2.0, 6.0)))
            for kind, ms in zip(("manual", "sdpa", "lsh"), times)]
    linear = {"manual": {"memory": 1.8}, "sdpa": {"memory": 1.0}}
    first, second = bench.finding(rows, [64, 128], linear, config)
    assert first.startswith("finding: at short lengths LSH is slower (T=64: 2.0x the time of "
                            "manual, 4.0x of sdpa)")
    assert second.startswith("and exact fused attention (sdpa) is also linear in memory "
                             "(slope 1.00, manual 1.80)")
    rows[2]["ms"] = 0.5  # LSH faster at the shortest length: said, not hidden
    first, _ = bench.finding(rows, [64, 128], linear, config)
    assert "should be slower" in first and "yet at T=64 it took 0.2x the time of manual" in first
    _, second = bench.finding(rows, [64, 128], {"manual": {"memory": 2.0},
                                                "sdpa": {"memory": 1.9}}, config)
    assert "grew with slope 1.90" in second


def test_the_sweep_writes_the_png_and_the_rows_as_json(sweep):
    results, plot, _ = sweep
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(plot.with_suffix(".json").read_text(encoding="utf-8"))
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    assert set(saved["slopes"]) == {"manual", "sdpa", "lsh"}


def test_a_length_over_the_memory_limit_is_skipped_not_run(tmp_path, capsys):
    # manual at T=256 with 1 layer, 8 heads: (1 + 3) · 8 · 256² · 4 bytes = 8 MiB > 0.004 GiB
    results = main(["--lengths", "64,256", *TINY, "--memory-limit-gb", "0.004",
                    "--plot", str(tmp_path / "x.png")])
    status = {(r["attention"], r["T"]): r["status"] for r in results["rows"]}
    assert status[("manual", 64)] == "measured" and status[("manual", 256)] == "skipped"
    assert "manual at T=256: skipped (would need ~0.00781 GiB)" in capsys.readouterr().out
    assert results["slopes"]["manual"]["memory"] is None  # one length: no slope


def test_out_of_memory_is_reported_and_longer_lengths_are_skipped(tmp_path, monkeypatch, capsys):
    real = bench.measure_step

    def measure(config, kind, T, device):
        if kind == "manual" and T >= 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8 GiB")
        return real(config, kind, T, device)

    monkeypatch.setattr(bench, "measure_step", measure)
    results = main(["--lengths", "32,64,128", *TINY, "--plot", str(tmp_path / "x.png")])
    status = {(r["attention"], r["T"]): r["status"] for r in results["rows"]}
    assert status[("manual", 32)] == "measured"
    assert status[("manual", 64)] == "out of memory"
    assert status[("manual", 128)] == "skipped" and status[("lsh", 128)] == "measured"
    out = capsys.readouterr().out
    assert "manual at T=64: out of memory" in out
    assert "manual at T=128: skipped (out of memory at T=64)" in out


def test_an_error_that_is_not_out_of_memory_is_not_hidden(tmp_path, monkeypatch):
    def broken(config, kind, T, device):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(bench, "measure_step", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["--lengths", "32", *TINY, "--plot", str(tmp_path / "x.png")])


def test_a_bucket_longer_than_the_shortest_length_is_one_chunk(tmp_path):
    results = main(["--lengths", "8,32", *TINY, "--lsh-bucket-size", "16",
                    "--plot", str(tmp_path / "x.png")])
    assert all(r["status"] == "measured" for r in results["rows"])


@pytest.mark.parametrize("argv, words", [
    (["--lengths", "64,abc"], "--lengths '64,abc': expected whole numbers"),
    (["--lengths", "64,1.5"], "--lengths '64,1.5': expected whole numbers"),
    (["--lengths", ","], "--lengths ',': expected whole numbers"),
    (["--lengths", "0,64"], "--lengths: each length must be at least 1, got 0"),
    (["--lengths", "64,-8"], "--lengths: each length must be at least 1, got -8"),
    (["--lengths", "64,2048", "--block-size", "1024"],
     "--lengths: 2048 is longer than --block-size 1024"),
    (["--lengths", "64,128", "--lsh-bucket-size", "256"], "--lsh-bucket-size 256 is longer than"),
    (["--lengths", "64", "--memory-limit-gb", "0"], "--memory-limit-gb must be positive"),
    (["--lengths", "64", "--length-batch", "0"], "--length-batch must be at least 1"),
    (["--lengths", "64", "--plot", "out.svg"], "--plot out.svg: expected a .png file name"),
])
def test_bad_sweep_flags_are_one_line_errors(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert words in err, err
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_the_default_benchmark_prints_its_rows(capsys):
    results = main(["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "64",
                    "--train-block-size", "16", "--batch-size", "2", "--train-steps", "1",
                    "--prompt-tokens", "4", "--new-tokens", "8", "--repeats", "1"])
    assert set(results) == {"train_manual", "train_sdpa", "train_manual_activation_bytes",
                            "train_sdpa_activation_bytes", "generate_greedy_cached",
                            "generate_greedy_recomputed", "generate_sampled_cached",
                            "generate_sampled_recomputed", "flops_per_token", "peak_flops",
                            "hand-written_flops", "fused sdpa_flops"}
    # the hand-written attention keeps its (B, nh, T, T) weights for the backward pass
    assert results["train_manual_activation_bytes"] > results["train_sdpa_activation_bytes"] > 0
    # the achieved FLOP/s are tokens/s × FLOPs per token, the count checked in test_albert.py
    per_token = flops_per_token(GPTConfig(block_size=64, vocab_size=bench.DEFAULT_MODEL.vocab_size,
                                          n_layer=1, n_head=2, n_embd=16), 16)
    assert results["flops_per_token"] == per_token
    assert results["hand-written_flops"] == pytest.approx(results["train_manual"] * per_token)
    assert results["fused sdpa_flops"] == pytest.approx(results["train_sdpa"] * per_token)
    assert 1e8 < results["peak_flops"] < 1e15  # a measured matmul rate, not a constant
    # every number as #, spaces collapsed: the lines as the benchmark printed them before --lengths
    lines = [" ".join(re.sub(r"\d[\d,.]*\d|\d", "#", line).split())
             for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        "model: # layers, # heads, # dims, block #, vocab # (#M parameters)",
        "device: cpu, # threads",
        "",
        "training, batch # x # tokens (activation memory of one step; model state # MiB for the default model):",
        "hand-written attention # tokens/s activations # MiB",
        "fused sdpa attention # tokens/s activations # MiB",
        "sdpa / hand-written #x (minigpt.train runs sdpa unless a student's attention is swapped in)",
        "model FLOPs per token # (forward + backward, #·N + #·L·H·T)",
        "machine matmul peak # GFLOP/s (measured now)",
        "hand-written # GFLOP/s = #% of the peak",
        "fused sdpa # GFLOP/s = #% of the peak",
        "",
        "generation, batch #, #-token prompt + # new tokens, manual attention:",
        "greedy with KV cache # tokens/s",
        "greedy recomputing the prefix # tokens/s",
        "greedy cache speed-up #x",
        "sampled with KV cache # tokens/s",
        "sampled recomputing the prefix # tokens/s",
        "sampled cache speed-up #x",
    ]


def test_the_dpo_step_benchmark_times_packed_and_padded_rows_of_the_same_batches(capsys):
    from pathlib import Path

    from align import bench as align_bench

    pairs = Path(__file__).resolve().parents[1] / "examples" / "pairs.jsonl"
    result = align_bench.main(["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--steps", "2",
                               "--repeats", "1", "--batch-size", "4", "--data", str(pairs)])
    tokens = result["tokens_per_step"]
    # sharing each prompt leaves fewer tokens than the sequences hold; padding only adds
    assert 0 < tokens["needed"] < tokens["sequences"] <= tokens["padded"]
    assert tokens["needed"] <= tokens["packed"] <= tokens["padded"]
    assert all(value > 0 for value in result["pairs_per_s"].values())
    assert set(result["pairs_per_s"]) == {"packed", "padded"}
    # the model FLOPs count the real tokens only, at their mean length (minigpt.albert)
    config = GPTConfig(vocab_size=259, block_size=256, n_layer=1, n_head=2, n_embd=16, attention="sdpa")
    assert result["model_flops_per_step"] == tokens["needed"] * flops_per_token(config, round(tokens["sequences"] / 8))
    out = capsys.readouterr().out
    assert "packed / padded" in out and "of the peak" in out and "cached once" in out


# ------------------------------------------------- side by side with transformers (optional)

@pytest.mark.parametrize("argv, words", [
    (["--compare", "transformers", "--compare-batches", "1,x"], "--compare-batches '1,x': expected"),
    (["--compare", "transformers", "--compare-batches", "0"], "--compare-batches '0': expected"),
    (["--compare", "nanogpt"], "argument --compare: invalid choice"),
])
def test_bad_compare_flags_are_one_line_errors(argv, words, capsys):
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and words in err, err


def test_without_transformers_the_comparison_says_how_to_install_it(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_transformers(name, *args, **kwargs):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_transformers)
    with pytest.raises(SystemExit) as stop:
        run_main(main, ["--compare", "transformers", "--device", "cpu"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.strip() == ("error: --compare transformers needs the optional packages "
                           "transformers and safetensors: pip install transformers safetensors")


def test_the_comparison_times_both_libraries_on_the_same_weights(capsys):
    pytest.importorskip("transformers")
    pytest.importorskip("safetensors")
    rows = main(["--compare", "transformers", "--device", "cpu", "--n-layer", "1", "--n-head", "2",
                 "--n-embd", "16", "--block-size", "64", "--prompt-tokens", "4",
                 "--new-tokens", "8", "--repeats", "1", "--compare-batches", "1,3"])
    assert [(row["batch"], row["mode"]) for row in rows] == [
        (1, "greedy"), (1, "sampled"), (3, "greedy"), (3, "sampled")]
    for row in rows:
        # greedy: the four implementations wrote the same tokens; sampling is not compared
        assert row["same_tokens"] is (True if row["mode"] == "greedy" else None)
        speeds = [row[name] for name in ("hf_eager", "hf_sdpa", "ours_manual", "ours_sdpa")]
        assert all(speed > 0 for speed in speeds)
        best_ours, best_theirs = max(speeds[2:]), max(speeds[:2])
        assert row["ratio"] == pytest.approx(best_ours / best_theirs)
    assert "generation side by side with transformers" in capsys.readouterr().out
