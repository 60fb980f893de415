"""Benchmark of an alignment stage's training step: DPO's, on preference pairs.

Run:
    python -m align.bench                                   # DPO, 4 layers × 128, examples/pairs.jsonl
    python -m align.bench --n-layer 6 --n-head 6 --n-embd 384
    python -m align.bench --data runs/pipeline/data/pairs_train.jsonl --device cuda

A fresh GPT of the given shape (the byte tokenizer's 259 tokens) plays π_θ and π_ref;
π_ref's log-probabilities are cached once, as align.dpo does, and that time is printed
apart. Each timed step is one of align.dpo's: the 2B sequences of B pairs through π_θ in
one forward pass (align.dpo.concatenated_forward), the DPO loss, backward, gradient
clipping, AdamW. The same random batches are timed two ways, in turn:

    packed   the default: each pair's shared prompt once, then both answers, the pairs
             one after the other in one row, attended to block by block (align.data.pack_pairs)
    padded   one sequence per row, right-padded to the batch's longest (as TRL's collator does)

Printed for each: pairs/s (median of --repeats runs of --steps steps, after a warm-up
run), the tokens a step computes (with the rows' padding), the activation memory of one
step (minigpt.memory.activation_bytes) and the model's state; then the model FLOPs of a
step (minigpt.albert.flops_per_token on the tokens a step needs, each shared prompt once:
what the packed row computes, at the sequences' mean length), the FLOP/s that makes and its share of this
machine's matmul peak, measured in the same run (minigpt.bench.machine_peak_flops).
"""

import json
import random
import statistics
import time
from dataclasses import dataclass, field

import torch

from align.common import StageConfig
from align.data import PREFERENCE_KEYS, pack_pairs, read_jsonl, shared_prefix, tokenize_pairs
from align.dpo import FORWARD_BATCH_SIZE, add_reference_logps, concatenated_forward
from align.losses import dpo_loss
from minigpt.albert import flops_per_token
from minigpt.bench import machine_peak_flops, synchronize
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.device import autocast_for, pick_device
from minigpt.errors import InputError
from minigpt.memory import activation_bytes, state_bytes
from minigpt.model import GPT, GPTConfig
from minigpt.optim import make_optimizer
from minigpt.tokenizer import ByteTokenizer

MiB = 2**20


@dataclass
class AlignBenchConfig:
    stage: str = field(default="dpo", metadata={"help": "the stage whose step is timed",
                                                "choices": ("dpo",)})
    data: str = field(default="examples/pairs.jsonl", metadata={"help": "preference pairs (JSONL)"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads"})
    n_embd: int = field(default=128, metadata={"help": "embedding width"})
    block_size: int = field(default=256, metadata={"help": "context length (= DPO's --max-length)"})
    attention: str = field(default="sdpa", metadata={"help": "attention of π_θ and π_ref",
                                                     "choices": ("manual", "sdpa")})
    batch_size: int = field(default=8, metadata={"help": "pairs per step"})
    steps: int = field(default=10, metadata={"help": "timed steps per repeat"})
    repeats: int = field(default=3, metadata={"help": "timed repeats (the median is reported)"})
    beta: float = field(default=0.1, metadata={"help": "DPO's β"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self):
        check_ranges(self, at_least_one=("n_layer", "n_head", "n_embd", "block_size", "batch_size",
                                         "steps", "repeats"))
        if self.n_embd % self.n_head:
            raise InputError(f"--n-embd {self.n_embd} is not divisible by --n-head {self.n_head}")


def load_bench_pairs(config: AlignBenchConfig, tokenizer) -> list[dict]:
    """The pairs, tokenised as align.dpo does (max length = block size, prompts up to half)."""
    lengths = StageConfig(max_length=config.block_size, max_prompt_length=config.block_size // 2)
    pairs, _ = tokenize_pairs(read_jsonl(config.data, PREFERENCE_KEYS), tokenizer, lengths,
                              "benchmark pairs")
    if len(pairs) < config.batch_size:
        raise InputError(f"{config.data}: {len(pairs)} pairs fit --block-size {config.block_size}, "
                         f"fewer than --batch-size {config.batch_size}")
    return pairs


def dpo_step(policy, optimizer, batch, pad_id, device, beta, pack):
    """One training step of align.dpo: forward, DPO loss, backward, clipping, AdamW."""
    with autocast_for(device):
        chosen, rejected = concatenated_forward(policy, batch, pad_id, device, pack=pack)
    as_tensor = dict(dtype=chosen.dtype, device=device)
    losses, _, _ = dpo_loss(chosen, rejected,
                            torch.tensor([p["reference_chosen_logps"] for p in batch], **as_tensor),
                            torch.tensor([p["reference_rejected_logps"] for p in batch], **as_tensor),
                            beta=beta)
    losses.mean().backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def step_tokens(batch, pad_id) -> dict:
    """Tokens of a step: of its 2B sequences; needed (each shared prompt once); and
    computed by the packed rows and by the padded rows, padding included."""
    sequences = [p["chosen"] for p in batch] + [p["rejected"] for p in batch]
    packed = pack_pairs(batch, pad_id)
    return {"sequences": sum(len(ids) for ids, _ in sequences),
            "needed": sum(len(p["chosen"][0]) + len(p["rejected"][0])
                          - shared_prefix(p["chosen"][0], p["rejected"][0]) for p in batch),
            "packed": packed.input_ids.numel(),
            "padded": len(sequences) * max(len(ids) for ids, _ in sequences)}


def time_steps(config, fresh_policy, batches, pad_id, device, layouts=("packed", "padded")) -> dict:
    """Median seconds per step of each layout, the layouts run in turn at every repeat (so a
    machine that slows down mid-run slows both alike); each from the same initial weights."""
    seconds = {layout: [] for layout in layouts}
    for repeat in range(config.repeats + 1):  # the first round is the warm-up
        for layout in layouts:
            policy, optimizer = fresh_policy()
            synchronize(device)
            started = time.perf_counter()
            for batch in batches:
                dpo_step(policy, optimizer, batch, pad_id, device, config.beta, layout == "packed")
            synchronize(device)
            if repeat > 0:
                seconds[layout].append((time.perf_counter() - started) / len(batches))
    return {layout: statistics.median(values) for layout, values in seconds.items()}


def benchmark_dpo(config: AlignBenchConfig, device: str) -> dict:
    tokenizer = ByteTokenizer()
    pairs = load_bench_pairs(config, tokenizer)
    model_config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=config.block_size,
                             n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd,
                             attention=config.attention)
    torch.manual_seed(config.seed)
    initial = GPT(model_config).to(device)
    reference = GPT(model_config).to(device).eval().requires_grad_(False)
    reference.load_state_dict(initial.state_dict())

    def fresh_policy():
        policy = GPT(model_config).to(device).train()
        policy.load_state_dict(initial.state_dict())
        return policy, make_optimizer(policy, 1e-5, 0.0, device_type=device)

    started = time.perf_counter()
    add_reference_logps(reference, pairs, tokenizer.pad_id, device, False, FORWARD_BATCH_SIZE)
    reference_seconds = time.perf_counter() - started
    rng = random.Random(config.seed)
    batches = [rng.sample(pairs, config.batch_size) for _ in range(config.steps)]
    tokens = {key: statistics.mean(step_tokens(batch, tokenizer.pad_id)[key] for batch in batches)
              for key in ("sequences", "needed", "packed", "padded")}
    seconds = time_steps(config, fresh_policy, batches, tokenizer.pad_id, device)
    policy, optimizer = fresh_policy()
    memory = {layout: activation_bytes(lambda: concatenated_forward(
        policy, batches[0], tokenizer.pad_id, device, pack=layout == "packed")[0].sum().backward(),
        device, model=policy)[0] for layout in ("packed", "padded")}
    mean_length = tokens["sequences"] / (2 * config.batch_size)
    model_flops = tokens["needed"] * flops_per_token(model_config, round(mean_length))
    peak = machine_peak_flops(device)

    print(f"\nDPO steps on {len(pairs)} pairs of {config.data}, batch {config.batch_size} pairs "
          f"({2 * config.batch_size} sequences, {mean_length:.0f} tokens each on average), "
          f"{config.attention} attention")
    print(f"  π_ref's log-probs, cached once   {reference_seconds:8.2f} s")
    print(f"  tokens per step: {tokens['sequences']:.0f} in the sequences, {tokens['needed']:.0f} "
          f"needed (each shared prompt once)")
    for layout in ("packed", "padded"):
        print(f"  {layout:<7} {config.batch_size / seconds[layout]:8.2f} pairs/s   "
              f"{1000 * seconds[layout]:8.1f} ms/step   {tokens[layout]:7.0f} tokens computed "
              f"({tokens['needed'] / tokens[layout]:.0%} needed)   activations {memory[layout] / MiB:7.1f} MiB")
    print(f"  packed / padded                  {seconds['padded'] / seconds['packed']:8.2f}x")
    print(f"  model state (weights, gradients, AdamW)  {state_bytes(policy) / MiB:.1f} MiB")
    print(f"  model FLOPs per step   {model_flops / 1e9:10.2f} GFLOP   (the needed tokens)")
    print(f"  machine matmul peak    {peak / 1e9:10.1f} GFLOP/s (measured now)")
    for layout in ("packed", "padded"):
        achieved = model_flops / seconds[layout]
        print(f"  {layout:<7}                {achieved / 1e9:10.2f} GFLOP/s = {achieved / peak:6.1%} of the peak")
    return {"pairs_per_s": {layout: config.batch_size / s for layout, s in seconds.items()},
            "tokens_per_step": tokens, "reference_seconds": reference_seconds,
            "activation_bytes": memory, "model_flops_per_step": model_flops, "peak_flops": peak}


def main(argv=None):
    parser = parser_from_dataclass(AlignBenchConfig, __doc__)
    config = AlignBenchConfig(**given_flags(parser.parse_args(argv)))
    device = pick_device(config.device)
    print(f"model: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, block "
          f"{config.block_size}; device: {device}"
          + ("" if device == "cuda" else f", {torch.get_num_threads()} threads"))
    result = benchmark_dpo(config, device)
    print(json.dumps({"pairs_per_s": result["pairs_per_s"]}))
    return result


if __name__ == "__main__":
    run_main(main)
