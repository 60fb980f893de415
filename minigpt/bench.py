"""Benchmark: attention by hand against the fused kernel, and the KV cache against recomputing;
with --lengths, attention by hand, the fused kernel and Reformer's LSH attention against T.

Run:
    python -m minigpt.bench                  # the default model (GPTConfig()) on this machine
    python -m minigpt.bench --device cuda --n-layer 12 --n-embd 768 --n-head 12
    python -m minigpt.bench --lengths 256,512,1024,2048,4096,8192   # memory and time against T
    python -m minigpt.bench --compare transformers   # generation beside GPT2LMHeadModel.generate

Prints, for the stated model:
  - training tokens/s (forward, backward, AdamW step) with attention="manual" and "sdpa",
    the activation memory of one step (minigpt.memory), the model FLOPs per token, the
    FLOP/s each achieves and its share of this machine's matmul peak, measured in the run;
  - generation tokens/s at batch 1 for --new-tokens new tokens, greedy and sampled, with
    and without the KV cache (--attention: the default GPTConfig's, the formula by hand);
and the ratio of each pair. Training timings are the median of --repeats runs after a
warm-up; the two generation rows of a pair take turns, each its fastest of --repeats.
The alignment step (DPO, packed and padded) has its own: python -m align.bench.

With --lengths T1,T2,... it measures instead the lecture's claim that Reformer's LSH
attention costs "O(n log n) instead of O(n²) memory". For attention "manual", "sdpa" and
"lsh" at each length T (block_size = the largest length, batch --length-batch) it prints
one training step's forward + backward (no optimiser step): ms (median of --repeats after
a warm-up) and activation memory in MiB (minigpt.memory.activation_bytes: on a CPU the
tensors autograd saves for the backward pass, on CUDA the allocator's peak), and each
model's state bytes. Then, per kind, the log-log slope of memory and of time against T
(least squares on log2: about 2 is O(n²), about 1 is linear), the lengths from which LSH
is faster than manual and than sdpa and uses less memory than manual, and the finding in
two lines. A (kind, T) whose predicted memory exceeds --memory-limit-gb is skipped; an
out-of-memory error is reported, never a crash. Writes --plot (two log-log panels, memory
and time against T, with slope-1 and slope-2 references) and the rows as JSON beside it.
"""

import gc
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.config import ATTENTION_KINDS, LSH_DEFAULTS
from minigpt.errors import InputError
from minigpt.memory import activation_bytes, state_bytes
from minigpt.model import GPT, GPTConfig
from minigpt.optim import make_optimizer
from minigpt.device import autocast_for, pick_device
from minigpt.ownership import refuse_others_run_folder

DEFAULT_MODEL = GPTConfig()
MiB, GiB = 2**20, 2**30
# Attention by hand keeps its weights A (B, nh, T, T) in float32 for the backward pass in
# every layer, S = B · nh · T² · 4 bytes each; while a layer runs backward, its scores and
# the gradients of A and of the scores add about 3 more S. Predicted T² term: (n_layer + 3)·S
# (peak RSS measured on a CPU at T = 4096, default width: 3.4 S with 1 layer, 7.0 S with 4).
BACKWARD_EXTRA = 3


@dataclass
class BenchConfig:
    n_layer: int = field(default=DEFAULT_MODEL.n_layer, metadata={"help": "transformer blocks"})
    n_head: int = field(default=DEFAULT_MODEL.n_head, metadata={"help": "attention heads"})
    n_embd: int = field(default=DEFAULT_MODEL.n_embd, metadata={"help": "embedding width"})
    block_size: int = field(default=DEFAULT_MODEL.block_size, metadata={
        "help": "model context length (with --lengths: the largest length unless given)"})
    vocab_size: int = field(default=DEFAULT_MODEL.vocab_size, metadata={"help": "vocabulary size"})
    batch_size: int = field(default=12, metadata={"help": "training batch size"})
    train_block_size: int = field(default=256, metadata={"help": "training sequence length"})
    train_steps: int = field(default=10, metadata={"help": "timed training steps per repeat"})
    prompt_tokens: int = field(default=16, metadata={"help": "prompt length for generation"})
    new_tokens: int = field(default=512, metadata={"help": "tokens to generate"})
    repeats: int = field(default=3, metadata={"help": "timed repeats (the median is reported)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    attention: str = field(default=DEFAULT_MODEL.attention, metadata={
        "help": "the generation rows' attention (training rows time both manual and sdpa)",
        "choices": ("manual", "sdpa")})
    lengths: str = field(default="", metadata={
        "help": "sequence lengths, comma-separated (e.g. 256,512,1024): instead of the default "
                "benchmark, time and activation memory of one forward + backward with manual, "
                "sdpa and lsh attention at each length; block_size becomes the largest length"})
    length_batch: int = field(default=1, metadata={"help": "with --lengths: the batch size"})
    memory_limit_gb: float = field(default=16.0, metadata={
        "help": "with --lengths: skip a kind and length whose predicted memory exceeds this many "
                f"GiB (manual's T² term: (n_layer + {BACKWARD_EXTRA})·batch·n_head·T²·4 "
                f"bytes)"})
    lsh_n_hashes: int = field(default=LSH_DEFAULTS["lsh_n_hashes"], metadata={
        "help": "with --lengths: LSH hash rounds"})
    lsh_bucket_size: int = field(default=LSH_DEFAULTS["lsh_bucket_size"], metadata={
        "help": "with --lengths: LSH chunk length m (n_buckets = 2T/m); larger than a length is "
                "fine, that length is then one chunk, i.e. full attention (at most the largest "
                "length)"})
    compare: str = field(default="", metadata={
        "help": "instead of the default benchmark, time generation side by side with another "
                "library on the same weights (minigpt.peers; needs it installed)",
        "choices": ("", "transformers")})
    compare_batches: str = field(default="1,8", metadata={
        "help": "with --compare: the batch sizes, comma-separated"})
    plot: str = field(default="runs/bench/attention_lengths.png", metadata={
        "help": "with --lengths: the PNG to write (its folder is made); the rows go beside it "
                "as .json"})

    def __post_init__(self):
        """Bad sizes are refused in one line before anything is built or timed."""
        check_ranges(self, at_least_one=("n_layer", "n_head", "n_embd", "block_size", "vocab_size",
                                         "batch_size", "train_block_size", "train_steps",
                                         "prompt_tokens", "new_tokens", "repeats", "length_batch",
                                         "lsh_n_hashes", "lsh_bucket_size"))
        if self.n_embd % self.n_head:
            raise InputError(f"--n-embd {self.n_embd} is not divisible by --n-head {self.n_head}")
        if self.lengths:
            self.check_length_sweep()
            return
        checked = (("--train-block-size", self.train_block_size),)
        if self.compare:  # generation only
            from minigpt.peers import parse_batches  # it imports this module

            parse_batches(self.compare_batches)
            checked = ()
        for name, length in (*checked,
                             ("--prompt-tokens + --new-tokens", self.prompt_tokens + self.new_tokens)):
            if length > self.block_size:
                raise InputError(f"{name} = {length} is longer than --block-size {self.block_size}")

    def check_length_sweep(self):
        longest = max(self.length_list())
        if longest > self.block_size:
            raise InputError(f"--lengths: {longest} is longer than --block-size {self.block_size} "
                             f"(leave --block-size out: with --lengths it is the largest length)")
        if self.lsh_bucket_size > self.block_size:
            raise InputError(f"--lsh-bucket-size {self.lsh_bucket_size} is longer than the block "
                             f"size {self.block_size} (the largest of --lengths): a chunk must fit")
        if not self.memory_limit_gb > 0:
            raise InputError(f"--memory-limit-gb must be positive, got {self.memory_limit_gb:g}")
        if Path(self.plot).suffix.lower() != ".png" or Path(self.plot).is_dir():
            raise InputError(f"--plot {self.plot}: expected a .png file name")

    def length_list(self) -> list[int]:
        return parse_lengths(self.lengths)


def parse_lengths(text: str) -> list[int]:
    """'256,512,1024' -> [256, 512, 1024]: sorted, each once. A one-line InputError naming
    --lengths for anything that is not a whole number ≥ 1."""
    words = [word.strip() for word in text.split(",") if word.strip()]
    try:
        lengths = [int(word) for word in words]
    except ValueError:
        lengths = []
    if not lengths:
        raise InputError(f"--lengths {text!r}: expected whole numbers separated by commas, "
                         f"e.g. 256,512,1024")
    if min(lengths) < 1:
        raise InputError(f"--lengths: each length must be at least 1, got {min(lengths)}")
    return sorted(set(lengths))


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_seconds(run, repeats, device) -> float:
    run()  # warm-up: first-call allocations, kernel selection
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def training_tokens_per_s(config: BenchConfig, attention: str, device: str) -> tuple[float, int]:
    """Training tokens/s with this attention, and the activation memory of one step."""
    torch.manual_seed(config.seed)
    model_config = GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head,
                             n_embd=config.n_embd, attention=attention)
    model = GPT(model_config).to(device).train()
    optimizer = make_optimizer(model, 1e-4, 0.1, device_type=device)
    x = torch.randint(config.vocab_size, (config.batch_size, config.train_block_size), device=device)
    y = torch.randint(config.vocab_size, (config.batch_size, config.train_block_size), device=device)

    def steps():
        for _ in range(config.train_steps):
            with autocast_for(device):
                _, loss = model(x, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def forward_backward():
        with autocast_for(device):
            _, loss = model(x, y)
        loss.backward()

    seconds = median_seconds(steps, config.repeats, device)
    memory, _ = activation_bytes(forward_backward, device, model=model)
    optimizer.zero_grad(set_to_none=True)
    return config.train_steps * config.batch_size * config.train_block_size / seconds, memory


def fastest_tokens_per_s(runs: dict, tokens: int, repeats: int, device="cpu") -> dict:
    """{name: tokens/s}: after one warm-up call of each, each run once per repeat, in turn,
    and each one's fastest repeat kept. A machine's speed drifts by tens of percent from
    one minute to the next: taking turns exposes every run to the same drift, and the
    fastest repeat is the one least disturbed by anything else on the machine."""
    for run in runs.values():
        run()  # warm-up: first-call allocations, kernel selection
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize(device)
            started = time.perf_counter()
            run()
            synchronize(device)
            seconds[name].append(time.perf_counter() - started)
    return {name: tokens / min(times) for name, times in seconds.items()}


def generation_tokens_per_s(config: BenchConfig, device: str,
                            temperature: float = 0.0) -> tuple[float, float]:
    """Generated tokens/s of the default GPTConfig's attention (--attention), batch 1, with
    the KV cache and recomputing the prefix, timed in turn (`fastest_tokens_per_s`): greedy
    at temperature 0, sampled from softmax(logits / temperature) otherwise."""
    torch.manual_seed(config.seed)
    model_config = GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                             attention=config.attention)
    model = GPT(model_config).to(device).eval()
    prompt = torch.randint(config.vocab_size, (1, config.prompt_tokens), device=device)

    def generate(use_cache):
        generator = torch.Generator(device=device).manual_seed(config.seed)
        with autocast_for(device):
            model.generate(prompt, config.new_tokens, temperature=temperature, use_cache=use_cache,
                           generator=generator)

    speed = fastest_tokens_per_s({"cached": lambda: generate(True),
                                  "recomputed": lambda: generate(False)},
                                 config.new_tokens, config.repeats, device)
    return speed["cached"], speed["recomputed"]


def machine_peak_flops(device: str) -> float:
    """This machine's matmul limit, measured in the same run: a large fp32 (CPU) or bf16
    (CUDA) matrix product, timed (minigpt.cost.measure_peak_flops on a CPU)."""
    # imported here: minigpt.cost imports minigpt.albert, which imports this module
    from minigpt.cost import measure_peak_flops

    if device != "cuda":
        return measure_peak_flops(size=1024, seconds=1.0)
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    seconds = median_seconds(lambda: a @ a, 5, device)
    return 2 * 8192 ** 3 / seconds


def training_flops_report(config: BenchConfig, rows: dict, peak: float) -> dict:
    """Model FLOPs per token (forward + backward, minigpt.albert.flops_per_token: PaLM's
    and nanoGPT's 6·N + 12·L·H·T), the FLOP/s each training row achieves, and its share
    of the measured peak: how close to the machine's limit the step runs."""
    from minigpt.albert import flops_per_token

    model_config = GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
    per_token = flops_per_token(model_config, config.train_block_size)
    achieved = {name: tokens_per_s * per_token for name, tokens_per_s in rows.items()}
    print(f"  model FLOPs per token   {per_token:12,.0f}   "
          f"(forward + backward, 6·N + 12·L·H·T)")
    print(f"  machine matmul peak     {peak / 1e9:12,.1f} GFLOP/s   (measured now)")
    for name, flops in achieved.items():
        print(f"  {name:<22}  {flops / 1e9:12,.2f} GFLOP/s = {flops / peak:6.1%} of the peak")
    return {"flops_per_token": per_token, "peak_flops": peak,
            **{f"{name}_flops": flops for name, flops in achieved.items()}}


def default_benchmark(config: BenchConfig, device: str) -> dict:
    """Training with manual against sdpa attention, generation with against without the
    cache; the training rows' FLOP/s against the machine's measured matmul peak."""
    manual, manual_memory = training_tokens_per_s(config, "manual", device)
    fused, fused_memory = training_tokens_per_s(config, "sdpa", device)
    print(f"\ntraining, batch {config.batch_size} x {config.train_block_size} tokens "
          f"(activation memory of one step; model state {state_bytes(GPT(DEFAULT_MODEL)) / MiB:.1f} MiB "
          f"for the default model):")
    print(f"  hand-written attention  {manual:12,.0f} tokens/s   activations {manual_memory / MiB:8.1f} MiB")
    print(f"  fused sdpa attention    {fused:12,.0f} tokens/s   activations {fused_memory / MiB:8.1f} MiB")
    print(f"  sdpa / hand-written     {fused / manual:12.2f}x   (minigpt.train runs sdpa unless a "
          f"student's attention is swapped in)")
    flops = training_flops_report(config, {"hand-written": manual, "fused sdpa": fused},
                                  machine_peak_flops(device))

    rows = {}
    print(f"\ngeneration, batch 1, {config.prompt_tokens}-token prompt + {config.new_tokens} new "
          f"tokens, {config.attention} attention:")
    for mode, temperature in (("greedy", 0.0), ("sampled", 1.0)):
        cached, recomputed = generation_tokens_per_s(config, device, temperature)
        print(f"  {mode:<7} with KV cache           {cached:10,.0f} tokens/s")
        print(f"  {mode:<7} recomputing the prefix  {recomputed:10,.0f} tokens/s")
        print(f"  {mode:<7} cache speed-up          {cached / recomputed:10.2f}x")
        rows.update({f"generate_{mode}_cached": cached, f"generate_{mode}_recomputed": recomputed})
    return {"train_manual": manual, "train_sdpa": fused, "train_manual_activation_bytes": manual_memory,
            "train_sdpa_activation_bytes": fused_memory, **rows, **flops}


# ------------------------------------------------------------ memory and time against T

def loglog_slope(lengths, values) -> float:
    """The exponent p of value ≈ c·T^p: the least-squares slope of log2(value) on log2(T).

    About 2 for a cost that grows as T² (O(n²)), about 1 for a linear one. Needs at least
    two different lengths and positive values.
    """
    if len(lengths) != len(values) or len(set(lengths)) < 2:
        raise ValueError(f"a slope needs values at two different lengths or more, "
                         f"got lengths {list(lengths)} and {len(values)} values")
    if min(lengths) <= 0 or min(values) <= 0:
        raise ValueError("a log-log slope needs positive lengths and values")
    x = [math.log2(t) for t in lengths]
    y = [math.log2(v) for v in values]
    x_mean, y_mean = sum(x) / len(x), sum(y) / len(y)
    return (sum((xi - x_mean) * (yi - y_mean) for xi, yi in zip(x, y))
            / sum((xi - x_mean) ** 2 for xi in x))


def first_length_where(lengths, a, b):
    """The smallest length from which on a < b at every longer length too, or None.

    lengths ascending; a[i], b[i] the two values at lengths[i], None where one was not
    measured (such lengths are left out). first_length_where(T, lsh_ms, manual_ms) is
    where LSH starts to pay in time: from that length on it is faster at every length.
    """
    pairs = [(t, x, y) for t, x, y in zip(lengths, a, b) if x is not None and y is not None]
    found = None
    for t, x, y in reversed(pairs):
        if not x < y:
            break
        found = t
    return found


def predicted_bytes(config: BenchConfig, attention: str, T: int, last: dict | None) -> int:
    """An upper estimate of the activation memory of (attention, T), to skip before building.

    manual: its T² term, (n_layer + BACKWARD_EXTRA) · B · nh · T² · 4 bytes (the weights A
    of every layer, and while a layer runs backward its scores and the gradients of A and
    of the scores).
    Every kind: its memory at the last length measured, times (T / that length)²; no kind
    grows faster than T², so that is an upper bound for all three.
    """
    need = 0
    if attention == "manual":
        need = (config.n_layer + BACKWARD_EXTRA) * config.length_batch * config.n_head * T * T * 4
    if last is not None:
        need = max(need, int(last["activation_bytes"] * (T / last["T"]) ** 2))
    return need


def sweep_model(config: BenchConfig, attention: str) -> GPT:
    """The bench's GPT with this attention; LSH with --lsh-n-hashes and --lsh-bucket-size."""
    lsh = ({"lsh_n_hashes": config.lsh_n_hashes, "lsh_bucket_size": config.lsh_bucket_size}
           if attention == "lsh" else {})
    return GPT(GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                         n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                         attention=attention, **lsh))


def measure_step(config: BenchConfig, attention: str, T: int, device: str) -> dict:
    """Time and activation memory of one training step's forward + backward at length T."""
    torch.manual_seed(config.seed)
    model = sweep_model(config, attention).to(device).train()
    x = torch.randint(config.vocab_size, (config.length_batch, T), device=device)  # (B, T)
    y = torch.randint(config.vocab_size, (config.length_batch, T), device=device)  # (B, T)

    def forward_backward():  # the gradients add up in .grad: no optimiser step is timed
        with autocast_for(device):
            _, loss = model(x, y)
        loss.backward()

    seconds = median_seconds(forward_backward, config.repeats, device)
    # measured after the timing: the warm-up's one-off allocations are not activations
    memory, measured_as = activation_bytes(forward_backward, device, model=model)
    return {"attention": attention, "T": T, "status": "measured", "ms": 1000 * seconds,
            "activation_bytes": memory, "measured_as": measured_as,
            "state_bytes": state_bytes(model), "parameters": model.num_parameters()}


def is_out_of_memory(error: RuntimeError) -> bool:
    message = str(error).lower()
    return (isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in message
            or "can't allocate memory" in message)


def free_memory(device: str):
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def length_sweep(config: BenchConfig, device: str) -> list[dict]:
    """Every kind at every length, shortest first; prints the table one length at a time."""
    limit = config.memory_limit_gb * GiB
    print(f"\none training step (forward + backward), batch {config.length_batch}: "
          f"ms (median of {config.repeats}) and activation MiB")
    print(f"{'T':>7} " + "".join(f"| {kind + ' ms':>10} {kind + ' MiB':>10} "
                                  for kind in ATTENTION_KINDS))
    rows, last, out_of_memory_at, notes = [], {}, {}, []
    for T in config.length_list():
        cells = []
        for kind in ATTENTION_KINDS:
            need = predicted_bytes(config, kind, T, last.get(kind))
            if kind in out_of_memory_at:
                row = {"status": "skipped", "why": f"out of memory at T={out_of_memory_at[kind]}"}
            elif need > limit:
                row = {"status": "skipped", "why": f"would need ~{need / GiB:.3g} GiB"}
            else:
                try:
                    row = measure_step(config, kind, T, device)
                except RuntimeError as error:  # torch.cuda.OutOfMemoryError is one
                    if not is_out_of_memory(error):
                        raise
                    row = {"status": "out of memory", "why": str(error).splitlines()[0][:200]}
                    out_of_memory_at[kind] = T
                free_memory(device)
            row = {"attention": kind, "T": T, "predicted_bytes": need, **row}
            rows.append(row)
            if row["status"] == "measured":
                last[kind] = row
                cells.append(f"{row['ms']:10.1f} {row['activation_bytes'] / MiB:10.2f}")
            else:
                cells.append(f"{row['status']:>21}")
                notes.append(f"  {kind} at T={T}: {row['status']} ({row['why']})")
        print(f"{T:7d} " + "".join(f"| {cell} " for cell in cells), flush=True)
    for note in notes:
        print(note)
    return rows


def series(rows: list[dict], kind: str, key: str, lengths: list[int]) -> list:
    """The values of key for kind at each length, None where it was not measured."""
    by_length = {r["T"]: r[key] for r in rows
                 if r["attention"] == kind and r["status"] == "measured"}
    return [by_length.get(T) for T in lengths]


def slopes(rows: list[dict], lengths: list[int]) -> dict:
    """Per kind: the log-log slopes of memory and time over the lengths it measured, and
    the slopes between its last two lengths (the long-sequence end of the curve)."""
    result = {}
    for kind in ATTENTION_KINDS:
        measured = [T for T, v in zip(lengths, series(rows, kind, "ms", lengths)) if v is not None]
        entry = {"lengths": measured}
        for name, key in (("memory", "activation_bytes"), ("time", "ms")):
            values = [v for v in series(rows, kind, key, lengths) if v is not None]
            fits = len(measured) >= 2
            entry[name] = loglog_slope(measured, values) if fits else None
            entry[name + "_last_two"] = loglog_slope(measured[-2:], values[-2:]) if fits else None
        result[kind] = entry
    return result


def crossovers(rows: list[dict], lengths: list[int]) -> dict:
    """Where LSH starts to pay: from which measured length on it beats manual and sdpa."""
    result = {}
    for other in ("manual", "sdpa"):
        for name, key in (("faster", "ms"), ("less_memory", "activation_bytes")):
            mine, theirs = series(rows, "lsh", key, lengths), series(rows, other, key, lengths)
            both = [T for T, x, y in zip(lengths, mine, theirs) if x is not None and y is not None]
            result[f"{name}_than_{other}"] = {"from": first_length_where(lengths, mine, theirs),
                                              "up_to": both[-1] if both else None}
    return result


def length_range(measured: list[int]) -> str:
    return ", ".join(map(str, measured)) if len(measured) <= 8 else f"{measured[0]}..{measured[-1]}"


def shape_word(slope: float) -> str:
    return "~ T²" if slope >= 1.75 else "~ T (linear)" if slope <= 1.25 else "between T and T²"


def ratio_words(ratio: float) -> str:
    return f"{ratio:.1f}x slower" if ratio >= 1 else f"{1 / ratio:.1f}x faster"


def print_summary(rows, lengths, fitted, crossings, config):
    print("\nlog-log slopes against T (least squares on log2; about 2: O(n²), about 1: linear):")
    for kind in ATTENTION_KINDS:
        s = fitted[kind]
        if s["memory"] is None:
            print(f"  {kind:<7} fewer than two lengths measured: no slope")
            continue
        print(f"  {kind:<7} memory {s['memory']:5.2f} ({shape_word(s['memory'])}), time "
              f"{s['time']:5.2f}, over T = {length_range(s['lengths'])}; last two lengths: memory "
              f"{s['memory_last_two']:.2f}, time {s['time_last_two']:.2f}")

    print("\nwhere LSH starts to pay (from this measured T on, at every longer one):")
    for key, words in (("faster_than_manual", "faster than manual"),
                       ("faster_than_sdpa", "faster than sdpa"),
                       ("less_memory_than_manual", "less memory than manual"),
                       ("less_memory_than_sdpa", "less memory than sdpa")):
        found, up_to = crossings[key]["from"], crossings[key]["up_to"]
        answer = (f"from T = {found}" if found is not None else
                  f"never up to T = {up_to}" if up_to is not None else "not measured")
        print(f"  {words:<24} {answer}")

    print()
    for line in finding(rows, lengths, fitted, config):
        print(line)


def finding(rows, lengths, fitted, config) -> list[str]:
    """The two lines the sweep ends with, each with the numbers measured behind it."""
    ms = {kind: series(rows, kind, "ms", lengths) for kind in ATTENTION_KINDS}
    common = [i for i in range(len(lengths)) if all(ms[kind][i] is not None for kind in ms)]
    why = (f"sorting, gathering and {config.lsh_n_hashes} hash rounds cost more than the T² "
           f"products they save")
    if not common:
        first = f"finding: at short lengths LSH should be slower ({why}); nothing to compare"
    else:
        i = common[0]
        times = {kind: ms["lsh"][i] / ms[kind][i] for kind in ("manual", "sdpa")}
        measured = f"{times['manual']:.1f}x the time of manual, {times['sdpa']:.1f}x of sdpa"
        first = (f"finding: at short lengths LSH is slower (T={lengths[i]}: {measured}): {why}."
                 if min(times.values()) > 1 else
                 f"finding: at short lengths LSH should be slower ({why}), yet at T={lengths[i]} "
                 f"it took {measured}: noisy timings, or the shortest length is not short.")
    sdpa, manual = fitted["sdpa"]["memory"], fitted["manual"]["memory"]
    if sdpa is not None and sdpa > 1.25:
        return [first, f"and exact fused attention (sdpa) grew with slope {sdpa:.2f} here: this "
                       f"device's kernel materialises the T×T matrix; a flash kernel would not."]
    slopes = "" if sdpa is None or manual is None else f" (slope {sdpa:.2f}, manual {manual:.2f})"
    return [first, f"and exact fused attention (sdpa) is also linear in memory{slopes}: the n² of "
                   f"the slide is the materialised T×T matrix, which sdpa avoids without "
                   f"approximating."]


def plot_lengths(rows, lengths, path: Path, title: str, measured_as: str):
    """Two log-log panels, memory and time against T, one line per kind, slopes 1 and 2."""
    import matplotlib
    matplotlib.use("Agg")  # write PNG files; never open a window
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, scale, ylabel, panel_title in (
            (panels[0], "activation_bytes", 1 / MiB, f"activation memory (MiB, {measured_as})",
             "Activation memory of one training step"),
            (panels[1], "ms", 1.0, "ms per forward + backward", "Time of one forward + backward")):
        starts = []
        for kind in ATTENTION_KINDS:
            points = [(T, v * scale) for T, v in zip(lengths, series(rows, kind, key, lengths))
                      if v is not None]
            if points:
                ax.plot(*zip(*points), "o-", linewidth=2, label=kind)
                starts.append(points[0])
        if starts:  # the references start at half the lowest first point, below the lines
            T0, v0 = min(starts, key=lambda p: (p[0], p[1]))
            v0 /= 2
            ends = [T0, lengths[-1]]
            for power, shade in ((1, "0.55"), (2, "0.2")):
                ax.plot(ends, [v0 * (T / T0) ** power for T in ends], "--", color=shade,
                        linewidth=1, label=f"slope {power} (∝ T{'²' if power == 2 else ''})")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(T) for T in lengths])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set(title=panel_title, xlabel="sequence length T (tokens)", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def length_benchmark(config: BenchConfig, device: str) -> dict:
    """The sweep over --lengths: table, slopes, crossovers, finding, PNG and JSON."""
    lengths = config.length_list()
    print(f"LSH: {config.lsh_n_hashes} hash rounds, chunk length m = {config.lsh_bucket_size}, "
          f"n_buckets = 2T/m (a length of at most m is one chunk: full attention)")
    rows = length_sweep(config, device)
    measured = [r for r in rows if r["status"] == "measured"]
    states = {kind: next((r for r in measured if r["attention"] == kind), None)
              for kind in ATTENTION_KINDS}
    print("state (parameters + gradients + AdamW moments, state_bytes): " + ", ".join(
        f"{kind} {r['state_bytes'] / MiB:.2f} MiB" for kind, r in states.items() if r))
    how = next((r["measured_as"] for r in measured), None)
    if how:
        print(f"activation memory measured as: {how}")
    fitted, crossings = slopes(rows, lengths), crossovers(rows, lengths)

    plot_path = Path(config.plot)
    json_path = plot_path.with_suffix(".json")
    title = (f"{config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, batch "
             f"{config.length_batch}, {device}; LSH {config.lsh_n_hashes} rounds, m = "
             f"{config.lsh_bucket_size}")
    plot_lengths(rows, lengths, plot_path, title, how or "nothing measured")
    results = {"config": asdict(config), "device": device, "threads": torch.get_num_threads(),
               "rows": rows, "slopes": fitted, "lsh_pays": crossings}
    json_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {plot_path} and {json_path}")
    print_summary(rows, lengths, fitted, crossings, config)
    return results


def main(argv=None):
    parser = parser_from_dataclass(BenchConfig, __doc__)
    flags = given_flags(parser.parse_args(argv))
    if flags.get("lengths"):  # block_size: the largest length, unless given
        flags.setdefault("block_size", max(parse_lengths(flags["lengths"])))
    config = BenchConfig(**flags)
    if config.lengths:  # it writes --plot and a JSON beside it: never into another command's run folder
        refuse_others_run_folder(config.plot, "--plot")
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    n_params = GPT(GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head,
                             n_embd=config.n_embd)).num_parameters()
    print(f"model: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, "
          f"block {config.block_size}, vocab {config.vocab_size} ({n_params / 1e6:.2f}M parameters)")
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()}, bf16 autocast)"
                                 if device == "cuda" else f", {torch.get_num_threads()} threads"))
    if config.lengths:
        return length_benchmark(config, device)
    if config.compare:
        from minigpt.peers import compare_with_transformers, parse_batches  # it imports this module

        if device != "cpu":
            raise InputError("--compare runs on the CPU (--device cpu)")
        model_config = GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                                 n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
        return compare_with_transformers(model_config, parse_batches(config.compare_batches),
                                         config.prompt_tokens, config.new_tokens, config.repeats,
                                         config.seed)
    return default_benchmark(config, device)


if __name__ == "__main__":
    run_main(main)
