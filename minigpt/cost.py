"""Costos: no aptos para los débiles de corazón — the cost of a training run, from first principles.

    training FLOPs  C ≈ (6·N + 12·L·T·d) · D
    device-seconds  = C / (peak FLOP/s · MFU)
    dollars         = device-seconds / 3600 · price per device-hour · runs

N: the weights the matrix products apply to one token; D: the tokens trained on; L: layers;
T: tokens per sequence; d: the model width. 6·N is Kaplan et al. (2020, "Scaling laws for
neural language models", C ≈ 6·N·D) and Chinchilla's (Hoffmann et al. 2022) convention: a
weight costs 2 FLOPs per token forward (a multiply and an add) and 4 backward (the gradients
of its input and of its weight). 12·L·T·d is attention's scores q·Kᵀ and weighted values
A·V, every query against all T keys (the causal mask not halving it), forward and
backward (PaLM's appendix B, nanoGPT's estimate_mfu). For a GPTConfig the count is
`minigpt.albert.flops_per_token` (one implementation of the idea); `training_flops` is the
same formula when only the sizes are known.
MFU (model FLOPs utilisation, PaLM): the FLOP/s the model's count implies at the measured
tokens/s, over the hardware's peak: (6·N + 12·L·T·d) · tokens/s / peak.

The lecture's slide quotes Sharir, Peleg & Shoham (AI21 Labs, April 2020, "The cost of
training NLP models: a concise overview"): BERT-sized models trained on Wikipedia and
the book corpus (15 GB), at cloud prices; for each size two numbers, the cost of one
training run and a "fully-loaded" cost with hyperparameter tuning and several runs per
setting. The high end is exactly 20× the low end in all three rows; the paper's ×20 is (as
we recall it; check the paper) 2 configurations × 10 runs each. `slide_rows` reproduces
their order of magnitude under these assumptions, all printed with the table:
    D = 128,000 tokens per batch × 1,000,000 steps (BERT's schedule, Devlin et al. 2019,
        about 40 epochs over 3.3 billion words), for all three sizes; T = 512;
    hardware: an NVIDIA V100, the 2020 cloud workhorse: 125 TFLOP/s peak (fp16 tensor cores);
    MFU 20 %–40 %; price $2.48–$3.06 per V100-hour (2020 on-demand: GCP; AWS p3);
    low = 1 run at the high MFU and the low price; high = 20 runs at the low MFU and the high price.
So one run spans ×2.5 (MFU and price) and the fully-loaded cost 20 runs more.

Run:
    python -m minigpt.cost                            # the slide's three rows
    python -m minigpt.cost --params 7e9 --n-layer 32 --d-model 4096 --tokens 2e12 --seq-len 4096
    python -m minigpt.cost --run runs/pipeline/pretrain  # a minigpt.train run: its FLOP/s and MFU
With --run, the peak is by default this project's CPU's theoretical fp32 peak (157 GFLOP/s,
see CPU_PEAK_TFLOPS); --run-peak-tflops gives another, and 0 measures this machine's with a
few seconds of a big fp32 matmul (torch's threads as they are).
"""

import dataclasses
import json
import os
import statistics
import time
from dataclasses import dataclass, field

import torch

from minigpt.albert import flops_per_token
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.config import GPTConfig
from minigpt.errors import InputError
from minigpt.runlog import RunFolder

# (label, N parameters, layers L, width d, the slide's $ range): BERT-base, BERT-large, and
# a 1.5-billion model shaped as GPT-2 XL (48 layers, 1600 wide).
SLIDE = (("110M (BERT-base)", 110e6, 12, 768, (2.5e3, 50e3)),
         ("340M (BERT-large)", 340e6, 24, 1024, (10e3, 200e3)),
         ("1.5B (GPT-2 XL shape)", 1.5e9, 48, 1600, (80e3, 1.6e6)))


# The peak of the CPU this was written on (an AMD EPYC, Zen 3, 2 cores, AVX2 +
# FMA): 2 FMA units × 8 fp32 lanes × 2 FLOPs = 32 FLOPs per cycle per core, × 2.45 GHz
# (its TSC clock), × 2 cores = 157 GFLOP/s. A theoretical peak, as MFU's definition wants;
# a measured matmul falls below it, and on a shared machine it moves with the load.
CPU_PEAK_TFLOPS = 32 * 2.45e9 * 2 / 1e12


@dataclass
class CostConfig:
    tokens: float = field(default=128_000 * 1_000_000, metadata={"help": "D: tokens trained on per run (BERT: 128k tokens/batch × 1M steps)"})
    seq_len: int = field(default=512, metadata={"help": "T: tokens per sequence"})
    peak_tflops: float = field(default=125.0, metadata={"help": "the device's peak TFLOP/s (V100 fp16 tensor cores)"})
    mfu_low: float = field(default=0.2, metadata={"help": "model FLOPs utilisation, pessimistic"})
    mfu_high: float = field(default=0.4, metadata={"help": "model FLOPs utilisation, optimistic"})
    price_low: float = field(default=2.48, metadata={"help": "$ per device-hour, low (GCP V100 on-demand, 2020)"})
    price_high: float = field(default=3.06, metadata={"help": "$ per device-hour, high (AWS p3, per V100, 2020)"})
    runs_high: int = field(default=20, metadata={"help": "runs in the fully-loaded cost (2 configurations × 10 runs)"})
    params: float = field(default=0.0, metadata={"help": "N of one model to cost instead of the slide's rows (needs --n-layer, --d-model); 0: the slide's"})
    n_layer: int = field(default=0, metadata={"help": "L, with --params"})
    d_model: int = field(default=0, metadata={"help": "d, with --params"})
    run: str = field(default="", metadata={"help": "a minigpt.train run folder: its achieved FLOP/s and MFU"})
    run_peak_tflops: float = field(default=CPU_PEAK_TFLOPS, metadata={"help": "with --run: the run's device's peak TFLOP/s (default: this 2-core AVX2 EPYC's fp32 peak, see CPU_PEAK_TFLOPS); 0: measure it here (a big fp32 matmul, 2 s)"})

    def __post_init__(self):
        for name in ("tokens", "seq_len", "peak_tflops", "mfu_low", "mfu_high", "price_low",
                     "price_high", "runs_high"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not (self.mfu_low <= self.mfu_high <= 1):
            raise InputError(f"need --mfu-low ≤ --mfu-high ≤ 1, got {self.mfu_low} and {self.mfu_high}")
        if self.price_low > self.price_high:
            raise InputError(f"need --price-low ≤ --price-high, got {self.price_low} and {self.price_high}")
        if self.params < 0 or self.run_peak_tflops < 0:
            raise InputError("--params and --run-peak-tflops must not be negative")
        if self.params > 0 and (self.n_layer < 1 or self.d_model < 1):
            raise InputError("--params needs --n-layer and --d-model (at least 1 each)")


# ---------------------------------------------------------------------- the formulas

def training_flops(N: float, D: float, n_layer: int, T: int, d: int) -> float:
    """C = (6·N + 12·L·T·d) · D: forward + backward FLOPs of D training tokens (see the
    module's docstring; for a GPTConfig, flops_per_token(config, T) · D is the same count)."""
    return (6 * N + 12 * n_layer * T * d) * D


def device_hours(flops: float, peak_flops: float, mfu: float) -> float:
    """Hours of one device at peak_flops FLOP/s running at utilisation mfu."""
    return flops / (peak_flops * mfu) / 3600


def dollars(flops: float, peak_flops: float, mfu: float, price_per_hour: float, runs: int = 1) -> float:
    return device_hours(flops, peak_flops, mfu) * price_per_hour * runs


def cost_range(flops: float, config: CostConfig) -> tuple[float, float]:
    """(low, high) $: one run at the high MFU and the low price; runs_high runs at the low
    MFU and the high price."""
    peak = config.peak_tflops * 1e12
    return (dollars(flops, peak, config.mfu_high, config.price_low, 1),
            dollars(flops, peak, config.mfu_low, config.price_high, config.runs_high))


def model_flops_utilisation(config: GPTConfig, T: int, tokens_per_s: float, peak_flops: float) -> float:
    """MFU = flops_per_token(config, T) · tokens/s / peak FLOP/s (PaLM's definition)."""
    return flops_per_token(config, T) * tokens_per_s / peak_flops


# ---------------------------------------------------------------------- the slide

def slide_rows(config: CostConfig) -> list[dict]:
    rows = []
    for label, N, L, d, (slide_low, slide_high) in SLIDE:
        flops = training_flops(N, config.tokens, L, config.seq_len, d)
        low, high = cost_range(flops, config)
        rows.append({"model": label, "N": N, "n_layer": L, "d": d, "flops": flops,
                     "slide_low": slide_low, "slide_high": slide_high, "low": low, "high": high,
                     "overlaps": low <= slide_high and high >= slide_low,
                     # geometric middles: how far apart the two ranges sit, as a factor
                     "middle_ratio": (low * high) ** 0.5 / (slide_low * slide_high) ** 0.5})
    return rows


def money(x: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if x >= size:
            return f"${x / size:.3g}{unit}"
    return f"${x:.3g}"


def assumptions(config: CostConfig) -> str:
    return (f"assumptions: D = {config.tokens:.3g} tokens per run, T = {config.seq_len}; "
            f"peak {config.peak_tflops:g} TFLOP/s per device; MFU {config.mfu_low:.0%}–{config.mfu_high:.0%}; "
            f"${config.price_low:g}–${config.price_high:g} per device-hour; low = 1 run at MFU "
            f"{config.mfu_high:.0%} and ${config.price_low:g}/h, high = {config.runs_high} runs at "
            f"MFU {config.mfu_low:.0%} and ${config.price_high:g}/h; FLOPs = (6·N + 12·L·T·d)·D")


def slide_table(rows, config: CostConfig) -> str:
    lines = ["| model | L | d | training FLOPs (1 run) | device-hours (1 run) | slide (Sharir et al.) "
             "| calculator | overlaps | calculator ÷ slide (middles) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    peak = config.peak_tflops * 1e12
    for r in rows:
        hours = (device_hours(r["flops"], peak, config.mfu_high), device_hours(r["flops"], peak, config.mfu_low))
        lines.append(f"| {r['model']} | {r['n_layer']} | {r['d']} | {r['flops']:.3g} | "
                     f"{hours[0]:,.0f}–{hours[1]:,.0f} | {money(r['slide_low'])}–{money(r['slide_high'])} | "
                     f"{money(r['low'])}–{money(r['high'])} | {'yes' if r['overlaps'] else 'no'} | "
                     f"{r['middle_ratio']:.2f} |")
    return "\n".join(lines) + "\n" + assumptions(config)


def one_model(config: CostConfig) -> str:
    flops = training_flops(config.params, config.tokens, config.n_layer, config.seq_len, config.d_model)
    low, high = cost_range(flops, config)
    peak = config.peak_tflops * 1e12
    return (f"N = {config.params:.3g}, L = {config.n_layer}, d = {config.d_model}: training FLOPs "
            f"{flops:.3g}; device-hours per run {device_hours(flops, peak, config.mfu_high):,.0f}–"
            f"{device_hours(flops, peak, config.mfu_low):,.0f}; cost {money(low)}–{money(high)}\n"
            + assumptions(config))


# ---------------------------------------------------------------------- a minigpt run

def measure_peak_flops(size: int = 1024, seconds: float = 2.0) -> float:
    """FLOP/s of repeated (size × size) fp32 matmuls on the CPU for about `seconds`
    (2·size³ FLOPs each): what this machine reaches, with torch's threads as they are."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - started)


def run_utilisation(run_dir: str, peak_flops: float | None = None) -> dict:
    """A minigpt.train run folder's FLOPs per token, measured tokens/s (the median of the
    logged tokens_per_s, a running average per step), achieved FLOP/s and MFU against
    peak_flops (None: measure_peak_flops(), once the folder has been read)."""
    run = RunFolder(run_dir) if os.path.isdir(run_dir) else None
    if run is None or not os.path.exists(run.file("config.json")):
        raise InputError(f"{run_dir}: not a minigpt.train run folder (no config.json)")
    with open(run.file("config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    if "model" not in saved:
        raise InputError(f"{run.file('config.json')}: no 'model' entry (not a minigpt.train run?)")
    names = {f.name for f in dataclasses.fields(GPTConfig)}
    model = GPTConfig(**{k: v for k, v in saved["model"].items() if k in names})
    speeds = [row["tokens_per_s"] for row in run.read_metrics() if "tokens_per_s" in row]
    if not speeds:
        raise InputError(f"{run.file('metrics.jsonl')}: no rows with tokens_per_s")
    if peak_flops is None:
        peak_flops = measure_peak_flops()
    T = model.block_size
    tokens_per_s = statistics.median(speeds)
    per_token = flops_per_token(model, T)
    tokens = saved["max_iters"] * saved["batch_size"] * saved["block_size"] * saved.get("grad_accum", 1)
    return {"run": run.path, "n_layer": model.n_layer, "n_embd": model.n_embd, "T": T,
            "flops_per_token": per_token, "tokens_per_s": tokens_per_s,
            "achieved_flops": per_token * tokens_per_s, "peak_flops": peak_flops,
            "mfu": model_flops_utilisation(model, T, tokens_per_s, peak_flops),
            "tokens": tokens, "training_flops": per_token * tokens, "device": saved.get("device", "?")}


def run_report(r: dict, peak_how: str) -> str:
    return (f"run {r['run']} (device {r['device']}): L = {r['n_layer']}, d = {r['n_embd']}, T = {r['T']}\n"
            f"  FLOPs per token (6·N_applied + 12·L·T·d, minigpt.albert.flops_per_token): {r['flops_per_token']:,}\n"
            f"  tokens/s (median of metrics.jsonl's tokens_per_s): {r['tokens_per_s']:,.0f}\n"
            f"  achieved: {r['achieved_flops'] / 1e9:.3g} GFLOP/s; peak: {r['peak_flops'] / 1e9:.3g} GFLOP/s ({peak_how})\n"
            f"  MFU: {r['mfu']:.1%}"
            + (" (above 100 %: the peak is too low, e.g. measured on a busy machine)\n"
               if r["mfu"] > 1 else "\n") +
            f"  the whole run: {r['tokens']:,} tokens, {r['training_flops']:.3g} FLOPs "
            f"(BERT-base's run in the slide's table: ~9e19)")


def main(argv=None):
    parser = parser_from_dataclass(CostConfig, __doc__)
    config = CostConfig(**given_flags(parser.parse_args(argv)))
    if config.run:
        if config.run_peak_tflops > 0:
            peak = config.run_peak_tflops * 1e12
            how = ("the 2-core AVX2 EPYC's theoretical fp32 peak, CPU_PEAK_TFLOPS"
                   if config.run_peak_tflops == CPU_PEAK_TFLOPS else "given by --run-peak-tflops")
        else:
            peak = None  # measured by run_utilisation once the folder has been read
            how = (f"measured here: 1024×1024 fp32 matmuls for 2 s, {torch.get_num_threads()} "
                   f"thread(s); the run may have had others")
        result = run_utilisation(config.run, peak)
        print(run_report(result, how))
        return result
    if config.params > 0:
        text = one_model(config)
        print(text)
        return text
    rows = slide_rows(config)
    print(slide_table(rows, config))
    return rows


if __name__ == "__main__":
    run_main(main)
