"""What the SFT, reward-model and DPO stages share: settings, loading, the training loop.

Each stage is a plain loop over optimiser steps:

    evaluate at step 0: the starting point (log 2 for DPO, the SFT model's loss, ...)
    for step in 1..max_iters:
        lr ← warm-up then cosine (minigpt.optim)
        batch ← the next shuffled batch of examples
        loss, metrics ← the stage's own loss on the batch   (SFT, Bradley-Terry or DPO)
        loss.backward(); clip the gradient norm; AdamW step
        every eval_interval steps: evaluate, checkpoint (resumable: --resume), plot

`train_steps` below is that loop, written once; each stage passes its loss function.
Under torchrun it runs on every process (rank) with DistributedDataParallel
(minigpt.distributed): each step's global batch of N·batch_size examples is drawn the same
on every rank and split between them, each rank backpropagates its part of the loss, and
DDP averages the gradients, so N ranks take the steps of one process with N·batch_size.
Rank 0 alone evaluates, logs and saves.

metrics.jsonl holds two kinds of rows, named as TRL and the Hugging Face Trainer name
them: one per training step (`loss`, `lr` and the stage's batch metrics, unprefixed) and
one per evaluation, whose names carry the prefix of the rows they were measured on:
`eval_` for the held-out set (`eval_loss`, ...), `train_` for training rows, which a stage
evaluates on when it has no held-out set (SFT always reports both).
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from tqdm import tqdm

from minigpt.checkpoint import (CHECKPOINT_NAME, checkpoint_path, load_checkpoint, require_stage,
                               save_checkpoint)
from minigpt.cli import check_ranges, show_progress
from minigpt.errors import InputError
from minigpt.optim import learning_rate_at, make_optimizer, set_learning_rate
from minigpt.ownership import same_path
from minigpt.runlog import RunFolder
from minigpt.device import autocast_for
from minigpt.distributed import Ranks


@dataclass
class StageConfig:
    """Settings every alignment stage has; each stage's dataclass adds its own."""

    init: str = field(default="", metadata={"help": "run folder or ckpt.pt to start from"})
    data: str = field(default="", metadata={"help": "training JSONL file"})
    eval_data: str = field(default="", metadata={"help": "held-out JSONL file (optional)"})
    out_dir: str = field(default="", metadata={"help": "run folder to write"})
    max_length: int = field(default=0, metadata={
        "help": "longest prompt + response in tokens; 0: the model's context (block_size)"})
    max_prompt_length: int = field(default=0, metadata={
        "help": "longest prompt kept (its end); 0: half of --max-length"})
    batch_size: int = field(default=16, metadata={"help": "examples (or pairs) per step"})
    learning_rate: float = field(default=3e-4, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=3e-5, metadata={"help": "learning rate at the end"})
    warmup_iters: int = field(default=20, metadata={"help": "linear warm-up steps"})
    max_iters: int = field(default=300, metadata={"help": "optimiser steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (matrices only)"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the gradient norm; 0: none"})
    eval_interval: int = field(default=100, metadata={"help": "evaluate and checkpoint every N steps"})
    seed: int = field(default=1337, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    resume: bool = field(default=False, metadata={
        "help": "continue the run in --out-dir from its last checkpoint, exactly (refused if a "
                "setting that shapes the training differs from the saved run's)"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace the run that --out-dir holds (without it, such a run is refused)"})

    def __post_init__(self):
        """Bad numbers are reported before anything is read or written."""
        if self.resume and self.overwrite:
            raise InputError("--resume continues a run and --overwrite replaces it: give one")
        check_ranges(self, at_least_one=("batch_size", "max_iters", "eval_interval"),
                     not_negative=("max_length", "max_prompt_length", "warmup_iters",
                                   "learning_rate", "min_lr", "weight_decay", "grad_clip"))


def load_stage(path, stages: tuple[str, ...], device="cpu", needed_by="this stage"):
    """Read a checkpoint and check it comes from one of the expected stages (its stage is
    named in the error otherwise, see minigpt.checkpoint.require_stage)."""
    checkpoint = load_checkpoint(checkpoint_path(path), map_location=device)
    return checkpoint, require_stage(checkpoint, stages, needed_by)


def shuffled_batches(n_examples: int, batch_size: int, generator: torch.Generator):
    """Endless index batches: each epoch is a new permutation of 0..n-1."""
    while True:
        order = torch.randperm(n_examples, generator=generator).tolist()
        for start in range(0, max(n_examples - batch_size, 0) + 1, batch_size):
            yield order[start : start + batch_size]  # full batches; the next epoch reshuffles


STAGE_NAMES = {"sft": "SFT", "reward": "reward model", "dpo": "DPO"}  # for the progress bar


def train_steps(model, config, loss_on_batch, n_examples: int, run: RunFolder | None, device,
                stage, tokenizer, evaluate=None, progress=True, resume_from: dict | None = None,
                ranks: Ranks = Ranks()):
    """The shared loop: schedule, forward/backward, clip, AdamW step, log, evaluate, save.

    loss_on_batch(trained, indices) -> (loss, metrics dict, weight) is the stage's own
    loss on the training examples `indices`, computed with `trained` (the model itself, or
    its DDP wrapper under torchrun, whose backward all-reduces the gradients): the mean
    over `weight` things (response tokens, pairs). The batches are shuffled_batches of
    the n_examples, seeded with config.seed.
    Under torchrun, rank r's loss l_r over w_r things is backpropagated as
    l_r · N · w_r / Σ_r' w_r', so DDP's average of the N gradients is the gradient of the
    mean over every rank's things, Σ_r w_r · l_r / Σ_r w_r: what one process computes
    on the whole batch (SFT's ranks hold different numbers of response tokens). With one
    process the factor is exactly 1.
    evaluate(step) -> metrics dict (names already prefixed eval_ or train_) runs at step 0,
    before any update, then every eval_interval steps and at the end, each time followed by
    a checkpoint (`save_stage`) that holds what an exact resume needs: the weights, AdamW's
    state and the random state.
    resume_from: such a checkpoint (see `checkpoint_to_resume`); the loop then goes on from
    its step as if it had never stopped: the batches it had drawn are drawn again (and
    thrown away), so the next batch is the one an uninterrupted run would see.
    run: the run folder, None on ranks other than 0 (see start_run).
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(model, config.learning_rate, config.weight_decay,
                               device_type=device)
    batches = shuffled_batches(n_examples, config.batch_size * ranks.world_size,
                               torch.Generator().manual_seed(config.seed))  # global batches
    start_step = continue_from(resume_from, optimizer, batches, device, ranks)
    trained = ranks.wrap(model, device)  # DDP(model) under torchrun, else the model
    started = time.time()

    def log_evaluation(step):
        model.eval()
        row = evaluate(step)
        model.train()
        run.log({"step": step, **row})
        tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))

    def save(step):
        rng = ranks.random_states(device)  # every rank takes part; rank 0 writes
        if ranks.is_main:
            save_stage(run, model, step, model.config, tokenizer, stage, config, optimizer,
                       rng, ranks.world_size)

    if evaluate is not None and start_step == 0 and ranks.is_main:
        log_evaluation(0)  # the baseline every curve starts from
    model.train()
    bar = tqdm(range(start_step + 1, config.max_iters + 1), initial=start_step,
               total=config.max_iters, desc=STAGE_NAMES.get(stage, stage),
               disable=not (show_progress(progress) and ranks.is_main), dynamic_ncols=True)
    for step in bar:
        lr = learning_rate_at(step, config.learning_rate, config.min_lr, config.warmup_iters,
                              config.max_iters)
        set_learning_rate(optimizer, lr)
        with autocast_for(device):
            loss, metrics, weight = loss_on_batch(trained, ranks.my_slice(next(batches)))
        share = ranks.world_size * weight / ranks.sum(weight)  # 1.0 with one process
        (loss * share).backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        # the batch's loss and metrics: this rank's, averaged over every rank's
        averaged = ranks.mean({"loss": loss.item() * share, **metrics})
        row = {"step": step, "loss": averaged.pop("loss"), "lr": lr, **averaged}
        if ranks.is_main:
            run.log(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.1e}")
        if step % config.eval_interval == 0 or step == config.max_iters:
            if evaluate is not None and ranks.is_main:  # the others wait in the next backward
                log_evaluation(step)
            save(step)
    bar.close()
    model.eval()
    return time.time() - started


def continue_from(resume_from: dict | None, optimizer, batches, device,
                  ranks: Ranks = Ranks()) -> int:
    """Put back what an exact resume needs from a checkpoint (`checkpoint_to_resume`):
    AdamW's state, the random state, and the batches an uninterrupted run had drawn by
    then (drawn again and thrown away, so the next one is the one it would see). Returns
    the step to continue after: 0 without a checkpoint."""
    if resume_from is None:
        return 0
    optimizer.load_state_dict(resume_from["optimizer"])
    ranks.restore_random_states(resume_from["rng"], device)  # this rank's
    for _ in range(resume_from["step"]):
        next(batches)
    return resume_from["step"]


def save_stage(run: RunFolder, model, step, model_config, tokenizer, stage, config,
               optimizer=None, rng=None, world_size=1):
    """A checkpoint that remembers which stage wrote it, with which settings and on how
    many processes (and, from the training loop, AdamW's and the random state, for an
    exact resume)."""
    save_checkpoint(run.file(CHECKPOINT_NAME), model, step, model_config, tokenizer, optimizer,
                    rng, extra={"stage": stage, "config": asdict(config),
                                "world_size": world_size})


# Settings a resumed stage may change and still be exact: where it runs and writes, and
# how often it evaluates; every other one shapes the training.
FREE_ON_RESUME = ("out_dir", "device", "eval_interval", "resume", "overwrite")
PATH_SETTINGS = ("init", "data", "eval_data", "reward")  # compared as paths, not as strings


def checkpoint_to_resume(config, stage: str, ranks: Ranks = Ranks()) -> dict | None:
    """With --resume, the last checkpoint of the run in --out-dir, checked to continue this
    very configuration on as many processes (call it once the lengths are filled in);
    None without --resume."""
    if not config.resume:
        return None
    checkpoint, _ = load_stage(config.out_dir, (stage,), "cpu", f"align.{stage} --resume")
    if "optimizer" not in checkpoint or "rng" not in checkpoint:
        raise InputError(f"{checkpoint['path']}: holds no optimizer state, so it cannot be "
                         f"resumed exactly; start the stage again without --resume")
    extra = json.loads(checkpoint["extra"])
    ranks.check_resume(checkpoint["path"], extra.get("world_size", 1))
    saved = extra.get("config", {})

    def same(name, old, new):  # a path is the same however it is spelled (minigpt.ownership)
        if name in PATH_SETTINGS and isinstance(old, str) and isinstance(new, str):
            return same_path(old, new, saved.get("out_dir") or config.out_dir, config.out_dir)
        return old == new
    changes = [f"--{name.replace('_', '-')} {saved.get(name)!r} → {value!r}"
               for name, value in asdict(config).items()
               if name not in FREE_ON_RESUME and not same(name, saved.get(name), value)]
    if changes:
        raise InputError(f"{checkpoint['path']}: cannot resume exactly: {', '.join(changes)} "
                         f"differ from the saved run; give the saved values, or start a new "
                         f"run (another --out-dir)")
    return checkpoint


def fit_lengths_to_context(config, block_size: int):
    """Fill in the lengths left at 0 (--max-length: the model's context; --max-prompt-length:
    half of it), then check them: --max-length must fit the context and
    --max-prompt-length leave room for a response."""
    if config.max_length == 0:
        config.max_length = block_size
    if config.max_prompt_length == 0:
        config.max_prompt_length = max(config.max_length // 2, 1)
    if config.max_length > block_size:
        raise InputError(f"--max-length {config.max_length} is longer than the model's context "
                         f"(block_size {block_size}); use at most {block_size}, or 0 for all of it")
    if not 0 < config.max_prompt_length < config.max_length:
        raise InputError(f"--max-prompt-length {config.max_prompt_length} must be between 1 and "
                         f"--max-length - 1 = {config.max_length - 1}")


def require(value, flag):
    """The value of a flag that must be given; a clear error when it is empty."""
    if not value:
        raise InputError(f"{flag} is required")
    return value


def start_run(config, stage: str, tokenizer, truncation: dict, resume_from: dict | None = None,
              ranks: Ranks = Ranks()) -> RunFolder | None:
    """Open the stage's run folder: run.json (the stage, minigpt.ownership), config.json
    (with the truncation counts, and the number of processes), tokenizer.json. Under torchrun rank 0 alone writes it: the
    others check the same things and get None.

    Call it only after the inputs are read and checked, so bad input leaves an earlier
    run's files as they were. A new run's metrics replace an earlier run's; a resumed run
    keeps those up to its checkpoint's step.
    """
    if os.path.exists(config.out_dir) and not os.path.isdir(config.out_dir):
        raise InputError(f"--out-dir {config.out_dir}: is a file, expected a folder")
    if (resume_from is None and not config.overwrite
            and os.path.exists(os.path.join(config.out_dir, CHECKPOINT_NAME))):
        raise InputError(f"--out-dir {config.out_dir}: already holds a run; pass --resume to "
                         f"continue it, --overwrite to replace it, or another --out-dir")
    if not ranks.is_main:
        return None
    run = RunFolder(config.out_dir, stage)
    run.keep_metrics_up_to(resume_from["step"] if resume_from is not None else -1)
    run.write_json("config.json", {**asdict(config), "truncation": truncation,
                                   "world_size": ranks.world_size})
    tokenizer.save(run.file("tokenizer.json"))
    return run
