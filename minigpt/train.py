"""Pre-training (pre-entrenamiento): next-token prediction on plain text.

    L(θ) = -1/N Σ_t log p_θ(w_t | w_{1:t-1})

Run:
    python -m minigpt.train                          # the built-in corpus (toyworld.world's)
    python -m minigpt.train --data input.txt --out-dir runs/shakespeare
    python -m minigpt.train --out-dir runs/shakespeare --resume      # continue it, exactly
    torchrun --nproc_per_node 2 -m minigpt.train --batch-size 6     # 2 processes, DDP

Under torchrun each of N processes (ranks) trains a copy of the model on its own
--batch-size blocks of every global batch of N·batch_size·grad_accum blocks, and DDP
averages their gradients (minigpt.distributed): the steps are those of one process with
--batch-size N·batch_size. Rank 0 alone logs, plots and checkpoints; --resume restores
every rank, and needs as many ranks as the run was saved from.

A resumed run gives the losses of an uninterrupted one, so --resume refuses a changed
setting that shapes the optimisation (the schedule, the batch, the data, the model...):
`--resume --max-iters 4000` on a run saved at 2000 is an error naming the change. Pass
--allow-changes to resume anyway (a warning lists the changes); the run is then no longer
exact. Evaluation, sampling and bookkeeping flags (--eval-interval, --stop-after, ...)
may change freely.

The defaults are nanoGPT's CPU recipe for character-level Shakespeare (4 layers, 4
heads, 128 dims, block 64, batch 12, lr 1e-3 → 1e-4, warm-up 100, 2000 steps).
The run folder gets config.json, metrics.jsonl, loss.png, ckpt.pt, tokenizer.json and
report.md; the final validation loss is printed last.
"""

import dataclasses
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from minigpt.checkpoint import (CHECKPOINT_NAME, check_same_config, load_checkpoint,
                                load_weights, save_checkpoint)
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main, show_progress
from minigpt.data import TokenData, read_text_file
from minigpt.device import autocast_for, pick_device
from minigpt import distributed
from minigpt.distributed import Ranks
from minigpt.errors import InputError
from minigpt.model import ATTENTION_KINDS, GPT, SHARE_MODES, GPTConfig
from minigpt.optim import learning_rate_at, make_optimizer, set_learning_rate
from minigpt.ownership import check_run_folder, same_path
from minigpt.runlog import RunFolder, column
from minigpt.swaps import attention_to_run
from minigpt.tokenizer import TOKENIZER_KINDS, make_tokenizer, tokenizer_from_dict
from toyworld.world import pretraining_corpus

MODEL_FIELDS = ("block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "attention",
                "lsh_n_hashes", "lsh_bucket_size", "lsh_n_buckets", "lsh_seed",
                "embedding_dim", "share_layers")
ZERO_MEANS_NONE = ("lsh_n_buckets", "embedding_dim")  # 0 on the command line: GPTConfig's None
# Settings a resumed run may change and still be exact: they decide what is evaluated,
# printed and saved, and when to stop, not the steps taken. Every other field of
# TrainConfig shapes the optimisation trajectory (a new field does too, until listed here).
FREE_ON_RESUME = ("eval_interval", "eval_iters", "sample_tokens", "stop_after", "device",
                  "out_dir", "overwrite", "resume", "allow_changes")


@dataclass
class TrainConfig:
    # data and run folder
    data: str = field(default="", metadata={"help": "UTF-8 text file; empty: the built-in corpus (the toy world's)"})
    out_dir: str = field(default="runs/pretrain", metadata={"help": "run folder to write"})
    tokenizer: str = field(default="char", metadata={"help": "tokenizer kind",
                                                     "choices": TOKENIZER_KINDS})
    vocab_size: int = field(default=512, metadata={"help": "with --tokenizer bpe: tokens learned "
                                                         "(256 bytes + merges), before BOS/EOS/PAD"})
    val_fraction: float = field(default=0.1, metadata={"help": "last part of the text kept for validation"})
    # model
    block_size: int = field(default=64, metadata={"help": "context length in tokens"})
    n_layer: int = field(default=4, metadata={"help": "transformer blocks"})
    n_head: int = field(default=4, metadata={"help": "attention heads per block"})
    n_embd: int = field(default=128, metadata={"help": "embedding width"})
    dropout: float = field(default=0.0, metadata={"help": "dropout probability"})
    bias: bool = field(default=True, metadata={"help": "biases in Linear and LayerNorm"})
    attention: str = field(default="auto", metadata={
        "help": "attention: auto is sdpa, the fused kernel, unless a student's causal_attention "
                "runs (then manual, the formula by hand; minigpt.swaps.attention_to_run); "
                "lsh: Reformer's",
        "choices": ("auto", *ATTENTION_KINDS)})
    lsh_n_hashes: int = field(default=2, metadata={"help": "with --attention lsh: hash rounds"})
    lsh_bucket_size: int = field(default=32, metadata={"help": "with --attention lsh: chunk length m"})
    lsh_n_buckets: int = field(default=0, metadata={"help": "with --attention lsh: buckets per round, "
                                                            "even; 0: 2·T/m"})
    lsh_seed: int = field(default=0, metadata={"help": "with --attention lsh: the rotations' seed"})
    embedding_dim: int = field(default=0, metadata={"help": "ALBERT's factorised embedding width E "
                                                            "(≤ --n-embd); 0: E = --n-embd"})
    share_layers: str = field(default="none", metadata={"help": "ALBERT's cross-layer sharing",
                                                        "choices": SHARE_MODES})
    # optimisation
    batch_size: int = field(default=12, metadata={"help": "sequences per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "micro-batches per optimiser step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=1e-4, metadata={"help": "learning rate at the end of the cosine"})
    warmup_iters: int = field(default=100, metadata={"help": "linear warm-up steps"})
    max_iters: int = field(default=2000, metadata={"help": "optimiser steps in total"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (matrices only)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.99, metadata={"help": "AdamW beta2"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm; 0: no clipping"})
    # evaluation, sampling, bookkeeping
    eval_interval: int = field(default=250, metadata={"help": "evaluate and checkpoint every N steps"})
    eval_iters: int = field(default=20, metadata={"help": "batches per loss estimate"})
    sample_tokens: int = field(default=200, metadata={"help": "tokens to sample at each evaluation; 0: none"})
    seed: int = field(default=1337, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto (CUDA if present, else CPU), cpu, cuda or mps"})
    resume: bool = field(default=False, metadata={"help": "continue the run in --out-dir from its checkpoint"})
    overwrite: bool = field(default=False, metadata={"help": "start afresh even if --out-dir holds a checkpoint"})
    stop_after: int = field(default=0, metadata={"help": "stop (with a checkpoint) after this many steps of this invocation; 0: run to --max-iters"})
    allow_changes: bool = field(default=False, metadata={
        "help": "with --resume: accept changed optimisation settings (--max-iters, "
                "--learning-rate, ...); the resumed run is then not exact: its losses differ "
                "from an uninterrupted run's"})

    def __post_init__(self):
        self.attention = attention_to_run(self.attention)  # "auto" → the kind that runs, saved as such
        check_ranges(self, at_least_one=("batch_size", "grad_accum", "eval_interval", "eval_iters",
                                         "max_iters"),
                     not_negative=("warmup_iters", "sample_tokens", "stop_after", "weight_decay",
                                   "grad_clip"))
        if self.tokenizer == "bpe" and self.vocab_size < 256:
            raise InputError(f"--vocab-size {self.vocab_size}: a byte-level BPE vocabulary starts "
                             f"with the 256 bytes, so it must be at least 256")
        if not 0.0 < self.val_fraction < 1.0:
            raise InputError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        try:
            self.model_config(vocab_size=1)  # the model's own checks (n_embd % n_head, ...)
        except ValueError as error:
            message = re.sub(r"GPTConfig\.(\w+)", lambda m: "--" + m.group(1).replace("_", "-"),
                             str(error))
            raise InputError(message.replace("GPTConfig: ", "")) from None

    def model_config(self, vocab_size: int) -> GPTConfig:
        values = {name: getattr(self, name) for name in MODEL_FIELDS}
        for name in ZERO_MEANS_NONE:
            values[name] = values[name] or None
        return GPTConfig(vocab_size=vocab_size, **values)


@torch.no_grad()
def estimate_loss(model, data, config, device, world_size=1):
    """Mean loss over eval_iters batches of each split; the same batches at every evaluation.

    Each batch is a global one, world_size·batch_size blocks (so the figure does not
    depend on how many processes train), run through the model batch_size at a time."""
    model.eval()
    generator = torch.Generator().manual_seed(config.seed + 1)
    losses = {}
    for split in ("train", "val"):
        total = 0.0
        for _ in range(config.eval_iters):
            x, y = data.get_batch(split, world_size * config.batch_size, config.block_size,
                                  generator, device)  # (N·B, T) each
            for x_part, y_part in zip(x.split(config.batch_size), y.split(config.batch_size)):
                with autocast_for(device):
                    _, loss = model(x_part, y_part)
                total += loss.item() / world_size  # equal parts: their mean is the batch's
        losses[split] = total / config.eval_iters
    model.train()
    return losses


def sample_text(model, tokenizer, data, n_tokens, seed, device) -> str:
    """Sample from the model, starting at the first token of the validation text."""
    prompt = data.val[:1].view(1, 1).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(prompt, n_tokens, temperature=1.0, generator=generator)  # eval mode inside
    return tokenizer.decode(out[0].tolist())


def resolve_config(flags: dict, ranks: Ranks = Ranks()) -> tuple[TrainConfig, dict | None]:
    """The run's configuration: defaults, or the resumed run's, overridden by the flags typed."""
    config = TrainConfig(**flags)
    check_run_folder(config.out_dir, "pretrain")  # no other command's folder, no stray files
    checkpoint_file = os.path.join(config.out_dir, CHECKPOINT_NAME)
    if not config.resume:
        if os.path.exists(checkpoint_file) and not config.overwrite:
            raise InputError(f"{config.out_dir}: already holds a checkpoint; pass --resume to "
                             f"continue it, --overwrite to start again, or another --out-dir")
        return config, None
    checkpoint = load_checkpoint(checkpoint_file)
    missing = [key for key in ("optimizer", "rng") if key not in checkpoint]
    if missing:
        raise InputError(f"{checkpoint['path']}: cannot resume from it: it has no {' or '.join(missing)} "
                         f"state (a model-only checkpoint); start a new run from it instead")
    extra = json.loads(checkpoint["extra"])
    saved = extra.get("train_config", {})
    # --allow-changes is this invocation's choice, never inherited from the saved run
    config = TrainConfig(**{**saved, **flags, "resume": True,
                            "allow_changes": flags.get("allow_changes", False)})
    # through GPTConfig, so that a checkpoint older than a field gets that field's default
    saved_model = GPTConfig.from_dict(json.loads(checkpoint["model_config"])).to_dict()
    wanted_model = config.model_config(saved_model["vocab_size"]).to_dict()
    check_same_config(checkpoint["path"], saved_model, wanted_model, "model config")
    saved_kind = json.loads(checkpoint["tokenizer"])["kind"]
    check_same_config(checkpoint["path"], {"tokenizer": saved_kind},
                      {"tokenizer": config.tokenizer}, "tokenizer")
    changes = trajectory_changes(saved, flags)
    if changes and not config.allow_changes:
        raise InputError(f"{checkpoint['path']}: cannot resume exactly: {changes} change the "
                         f"optimisation; pass --allow-changes to resume anyway (the losses will "
                         f"then differ from an uninterrupted run), or start a new run")
    saved_world_size = extra.get("world_size", 1)
    if saved_world_size != ranks.world_size:
        if not config.allow_changes:
            ranks.check_resume(checkpoint["path"], saved_world_size)  # the refusal, worded
        changes = ", ".join(filter(None, [changes, f"processes {saved_world_size} → "
                                                   f"{ranks.world_size}"]))
    if changes and ranks.is_main:
        print(f"warning: {checkpoint['path']}: resuming with changed settings ({changes}); "
              f"the losses will differ from an uninterrupted run", file=sys.stderr)
    return config, checkpoint


def trajectory_changes(saved: dict, flags: dict) -> str:
    """The typed flags that change the optimisation of a saved run, as
    "--max-iters 2000 → 3000, ..." in the order typed; "" when there are none.

    Typing a setting's saved value again is no change; --data counts as changed only if it
    names another file. (The model fields and the tokenizer are already checked against
    the checkpoint itself; a change there is refused even with --allow-changes.)"""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

    def same(name, old, new):
        if name == "data":  # "corpus.txt" and "./corpus.txt" are one file, so is a moved run's own
            new_folder = flags.get("out_dir", defaults["out_dir"])
            return same_path(old, new, saved.get("out_dir", new_folder), new_folder)
        return old == new

    def show(value):
        return repr(value) if isinstance(value, str) else str(value)

    changes = []
    for name, new in flags.items():
        if name in FREE_ON_RESUME or name not in defaults:
            continue
        old = saved.get(name, defaults[name])
        if not same(name, old, new):
            changes.append(f"--{name.replace('_', '-')} {show(old)} → {show(new)}")
    return ", ".join(changes)


def builtin_corpus() -> str:
    """The default text: the toy world's pre-training corpus (1M characters, generated)."""
    return pretraining_corpus()


def train(config: TrainConfig, checkpoint: dict | None = None, progress: bool = True,
          ranks: Ranks = Ranks()) -> dict:
    """Pre-train a GPT as configured; returns a summary with the final losses.

    ranks: this process's place in a torchrun run (minigpt.distributed); the default is
    a single process. The summary is complete on rank 0 only (the others return {})."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    main_rank = ranks.is_main
    progress = progress and main_rank

    with ranks.together():  # bad data on any rank stops every rank, with its message
        text = read_text_file(config.data) if config.data else builtin_corpus()
        source = config.data or "<built-in corpus: the toy world of toyworld.world>"
        if checkpoint is not None:
            tokenizer = tokenizer_from_dict(json.loads(checkpoint["tokenizer"]))
        else:
            tokenizer = make_tokenizer(config.tokenizer, text, vocab_size=config.vocab_size,
                                       progress=show_progress(progress))
        data = TokenData.from_text(text, tokenizer, config.val_fraction, source)
        data.check_block_size(config.block_size)

    # only now: bad data above leaves no empty folder behind; rank 0 alone writes it
    run = RunFolder(config.out_dir, "pretrain") if main_rank else None
    model_config = config.model_config(tokenizer.vocab_size)
    model = GPT(model_config).to(device)
    optimizer = make_optimizer(model, config.learning_rate, config.weight_decay,
                               (config.beta1, config.beta2), device)
    batch_generator = torch.Generator().manual_seed(config.seed)
    start_step = 0
    if checkpoint is not None:
        load_weights(model, checkpoint["model"], checkpoint["path"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        # load_state_dict also brings back the saved run's hyperparameters; the ones asked
        # for now win (they differ only under --allow-changes). lr is set at every step.
        for group, decay in zip(optimizer.param_groups, (config.weight_decay, 0.0)):
            group["weight_decay"], group["betas"] = decay, (config.beta1, config.beta2)
        start_step = checkpoint["step"]
        ranks.restore_random_states(checkpoint["rng"], device)
        batch_generator.set_state(checkpoint["rng"]["batches"])  # the same on every rank
    elif ranks.rank > 0:
        torch.manual_seed(config.seed + ranks.rank)  # each rank its own dropout masks
    trained = ranks.wrap(model, device)  # DDP(model) under torchrun: its backward all-reduces
    if main_rank:
        if checkpoint is not None:
            run.keep_metrics_up_to(start_step)
        else:
            run.keep_metrics_up_to(-1)  # a fresh run starts a fresh metrics file
            if os.path.exists(run.file(CHECKPOINT_NAME)):  # --overwrite: no stale run to resume
                os.remove(run.file(CHECKPOINT_NAME))
        run.write_json("config.json", {**dataclasses.asdict(config),
                                       "model": model_config.to_dict(), "device": device,
                                       "world_size": ranks.world_size,
                                       "data_tokens": len(data.train) + len(data.val)})
        tokenizer.save(run.file("tokenizer.json"))

    def save(step):
        rng = {**ranks.random_states(device), "batches": batch_generator.get_state()}
        if main_rank:
            save_checkpoint(run.file(CHECKPOINT_NAME), model, step, model_config, tokenizer,
                            optimizer, rng, extra={"train_config": dataclasses.asdict(config),
                                                   "world_size": ranks.world_size})

    def evaluate(step):
        losses = estimate_loss(model, data, config, device, ranks.world_size)
        run.log({"step": step, "train_loss": losses["train"], "val_loss": losses["val"],
                 "train_perplexity": math.exp(losses["train"]),
                 "val_perplexity": math.exp(losses["val"])})
        tqdm.write(f"step {step}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
                   f"(perplexity {math.exp(losses['val']):.2f})")
        if config.sample_tokens > 0:
            sample = sample_text(model, tokenizer, data, config.sample_tokens, config.seed, device)
            tqdm.write(f"--- sample at step {step} ---\n{sample}\n---")
        return losses

    if main_rank:
        print(f"{model.num_parameters() / 1e6:.2f}M parameters, {len(data.train)} training "
              f"tokens, vocabulary {tokenizer.vocab_size} ({tokenizer.kind}), device {device}"
              + (f", {ranks.world_size} processes" if ranks.several else ""))
    last_step = config.max_iters
    if config.stop_after > 0:
        last_step = min(last_step, start_step + config.stop_after)
    if start_step == 0 and main_rank:
        evaluate(0)
    model.train()
    tokens_per_step = (config.batch_size * config.block_size * config.grad_accum
                       * ranks.world_size)  # over all ranks
    tokens_per_s = 0.0
    started = time.time()
    bar = tqdm(range(start_step + 1, last_step + 1), initial=start_step, total=config.max_iters,
               desc="pre-training", disable=not show_progress(progress), dynamic_ncols=True)
    for step in bar:
        step_started = time.time()
        lr = learning_rate_at(step, config.learning_rate, config.min_lr,
                              config.warmup_iters, config.max_iters)
        set_learning_rate(optimizer, lr)
        step_loss = 0.0
        for micro_step in range(config.grad_accum):
            x, y = data.get_batch("train", config.batch_size, config.block_size,
                                  batch_generator, device, ranks.rank, ranks.world_size)
            with ranks.gradients_sync(trained, micro_step == config.grad_accum - 1):
                with autocast_for(device):
                    _, loss = trained(x, y)
                (loss / config.grad_accum).backward()  # gradients add up over micro-batches
            step_loss += loss.item() / config.grad_accum
        step_loss = ranks.mean({"loss": step_loss})["loss"]  # this rank's, then all ranks'
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        step_tokens_per_s = tokens_per_step / max(time.time() - step_started, 1e-9)
        # a running average, so the bar shows a steady figure rather than each step's jitter
        tokens_per_s = step_tokens_per_s if tokens_per_s == 0 else (
            0.9 * tokens_per_s + 0.1 * step_tokens_per_s)
        if main_rank:
            run.log({"step": step, "loss": step_loss, "lr": lr, "tokens_per_s": tokens_per_s})
        bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}")
        if step % config.eval_interval == 0 or step == last_step:
            if main_rank:  # the others go on to the next step and wait for it in backward
                evaluate(step)
            save(step)
            if main_rank:
                plot_losses(run)
    bar.close()
    if not main_rank:
        return {}

    rows = run.read_metrics()
    final = [row for row in rows if "val_loss" in row][-1]
    summary = {"step": final["step"], "train_loss": final["train_loss"],
               "val_loss": final["val_loss"], "seconds": time.time() - started,
               "parameters": model.num_parameters(), "run": run.path}
    write_report(run, config, summary, tokenizer)
    return summary


def plot_losses(run: RunFolder):
    rows = run.read_metrics()
    run.plot("loss.png", {"train loss (each step)": column(rows, "loss"),
                          "train loss (eval)": column(rows, "train_loss"),
                          "val loss (eval)": column(rows, "val_loss")},
             title="Pre-training loss")


def write_report(run, config, summary, tokenizer):
    run.write_text("report.md", "\n".join([
        "# Pre-training run", "",
        f"Data: `{config.data or 'built-in corpus'}`, tokenizer `{tokenizer.kind}` "
        f"(vocabulary {tokenizer.vocab_size}).",
        f"Model: {config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, "
        f"block {config.block_size}, {summary['parameters'] / 1e6:.2f}M parameters.", "",
        "| step | train loss | val loss | val perplexity | seconds (this invocation) |",
        "| --- | --- | --- | --- | --- |",
        f"| {summary['step']} | {summary['train_loss']:.4f} | {summary['val_loss']:.4f} | "
        f"{math.exp(summary['val_loss']):.2f} | {summary['seconds']:.0f} |", "",
        "![loss](loss.png)", ""]))


def main(argv=None):
    parser = parser_from_dataclass(TrainConfig, __doc__)
    flags = given_flags(parser.parse_args(argv))
    ranks = distributed.start()  # under torchrun: join the other processes (minigpt.distributed)
    with ranks.together():
        config, checkpoint = resolve_config(flags, ranks)
    summary = train(config, checkpoint, ranks=ranks)
    if ranks.is_main:
        print(f"run folder: {summary['run']}")
        print(f"final val loss {summary['val_loss']:.4f}")
    return summary


if __name__ == "__main__":
    run_main(main, resume_hint="add --resume to the same command to continue from its last checkpoint, exactly")
