"""Benchmark: attention by hand against the fused kernel, and the KV cache against recomputing.

Run:
    python -m minigpt.bench                  # the default model (GPTConfig()) on this machine
    python -m minigpt.bench --device cuda --n-layer 12 --n-embd 768 --n-head 12

Prints, for the stated model:
  - training tokens/s (forward, backward, AdamW step) with attention="manual" and "sdpa";
  - generation tokens/s for --new-tokens new tokens, with and without the KV cache;
and the ratio of each pair. Timings are the median of --repeats runs after a warm-up.
"""

import statistics
import time
from dataclasses import dataclass, field

import torch

from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.errors import InputError
from minigpt.model import GPT, GPTConfig
from minigpt.optim import make_optimizer
from minigpt.device import autocast_for, pick_device

DEFAULT_MODEL = GPTConfig()


@dataclass
class BenchConfig:
    n_layer: int = field(default=DEFAULT_MODEL.n_layer, metadata={"help": "transformer blocks"})
    n_head: int = field(default=DEFAULT_MODEL.n_head, metadata={"help": "attention heads"})
    n_embd: int = field(default=DEFAULT_MODEL.n_embd, metadata={"help": "embedding width"})
    block_size: int = field(default=DEFAULT_MODEL.block_size, metadata={"help": "model context length"})
    vocab_size: int = field(default=DEFAULT_MODEL.vocab_size, metadata={"help": "vocabulary size"})
    batch_size: int = field(default=12, metadata={"help": "training batch size"})
    train_block_size: int = field(default=256, metadata={"help": "training sequence length"})
    train_steps: int = field(default=10, metadata={"help": "timed training steps per repeat"})
    prompt_tokens: int = field(default=16, metadata={"help": "prompt length for generation"})
    new_tokens: int = field(default=512, metadata={"help": "tokens to generate"})
    repeats: int = field(default=3, metadata={"help": "timed repeats (the median is reported)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self):
        """Bad sizes are refused in one line before anything is built or timed."""
        check_ranges(self, at_least_one=("n_layer", "n_head", "n_embd", "block_size", "vocab_size",
                                         "batch_size", "train_block_size", "train_steps",
                                         "prompt_tokens", "new_tokens", "repeats"))
        if self.n_embd % self.n_head:
            raise InputError(f"--n-embd {self.n_embd} is not divisible by --n-head {self.n_head}")
        for name, length in (("--train-block-size", self.train_block_size),
                             ("--prompt-tokens + --new-tokens", self.prompt_tokens + self.new_tokens)):
            if length > self.block_size:
                raise InputError(f"{name} = {length} is longer than --block-size {self.block_size}")


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


def training_tokens_per_s(config: BenchConfig, attention: str, device: str) -> float:
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

    seconds = median_seconds(steps, config.repeats, device)
    return config.train_steps * config.batch_size * config.train_block_size / seconds


def generation_tokens_per_s(config: BenchConfig, use_cache: bool, device: str) -> float:
    torch.manual_seed(config.seed)
    model_config = GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head, n_embd=config.n_embd)
    model = GPT(model_config).to(device).eval()
    prompt = torch.randint(config.vocab_size, (1, config.prompt_tokens), device=device)

    def generate():
        with autocast_for(device):
            model.generate(prompt, config.new_tokens, temperature=0.0, use_cache=use_cache)

    return config.new_tokens / median_seconds(generate, config.repeats, device)


def main(argv=None):
    parser = parser_from_dataclass(BenchConfig, __doc__)
    config = BenchConfig(**given_flags(parser.parse_args(argv)))
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    n_params = GPT(GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                             n_layer=config.n_layer, n_head=config.n_head,
                             n_embd=config.n_embd)).num_parameters()
    print(f"model: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, "
          f"block {config.block_size}, vocab {config.vocab_size} ({n_params / 1e6:.2f}M parameters)")
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name()}, bf16 autocast)"
                                 if device == "cuda" else f", {torch.get_num_threads()} threads"))

    manual = training_tokens_per_s(config, "manual", device)
    fused = training_tokens_per_s(config, "sdpa", device)
    print(f"\ntraining, batch {config.batch_size} x {config.train_block_size} tokens:")
    print(f"  hand-written attention  {manual:12,.0f} tokens/s")
    print(f"  fused sdpa attention    {fused:12,.0f} tokens/s")
    print(f"  sdpa / hand-written     {fused / manual:12.2f}x   (target: at most 1.30x)")

    cached = generation_tokens_per_s(config, True, device)
    recomputed = generation_tokens_per_s(config, False, device)
    print(f"\ngeneration, {config.prompt_tokens}-token prompt + {config.new_tokens} new tokens (greedy):")
    print(f"  with KV cache           {cached:12,.0f} tokens/s")
    print(f"  recomputing the prefix  {recomputed:12,.0f} tokens/s")
    print(f"  cache speed-up          {cached / recomputed:12.2f}x   (target: at least 5x)")
    return {"train_manual": manual, "train_sdpa": fused, "generate_cached": cached,
            "generate_recomputed": recomputed}


if __name__ == "__main__":
    run_main(main)
