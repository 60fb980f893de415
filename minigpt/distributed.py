"""Training on several processes: torchrun + DistributedDataParallel (DDP).

    torchrun --nproc_per_node 2 -m minigpt.train ...      # 2 processes (ranks), this machine
    python -m minigpt.train ...                           # 1 process: nothing here does anything

torchrun starts N copies of one command and tells each its rank r in the environment
(RANK, LOCAL_RANK, WORLD_SIZE, and where to meet: MASTER_ADDR, MASTER_PORT). Every rank
holds a whole copy of the model, and at every optimiser step

    rank r computes the gradient g_r of the loss on its own slice of the global batch
    DDP all-reduces them during backward:   g = 1/N · Σ_r g_r      (the same g on every rank)
    every rank takes the same AdamW step with g, so the N copies stay equal

so N ranks with batch B take the steps one process with batch N·B would take, up to the
order of floating-point sums. Every rank draws the global batch from the same random
generator and keeps its own slice of it (`Ranks.my_slice`): the ranks see different
examples, and together the ones a single process would see.

Rank 0 alone prints and writes the run folder (logs, plots, checkpoints); the others train.
Bad input that any rank finds stops every rank, with that one message, printed once
(`Ranks.together`): without it the others would wait for that rank at the next collective
operation until torchrun kills them.

The process group uses gloo for CPU tensors and NCCL for CUDA ones, so a run on CPU cores
and one on GPUs are the same code. Each GPU is one rank: torchrun --nproc_per_node 8 on a
machine with 8 GPUs.
"""

import contextlib
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from minigpt.errors import InputError


class StoppedByAnotherRank(Exception):
    """Raised on the ranks other than 0 when some rank hit bad input; rank 0 reports it."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: rank r of world_size (1 of 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0  # the rank on this machine: which GPU it uses
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints, logs and saves."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world_size > 1

    def my_slice(self, global_batch: list) -> list:
        """Rank r's part of a global batch of N·B items: items r·B … r·B + B − 1."""
        size = len(global_batch) // self.world_size
        return global_batch[self.rank * size : (self.rank + 1) * size]

    @contextlib.contextmanager
    def together(self):
        """Run a block (reading and checking the input) on every rank; if it raises an
        InputError on any rank, it raises on every rank: rank 0 gets the message (naming
        the rank, when it is another one) and the others StoppedByAnotherRank, so the
        run stops at once with one line, instead of the healthy ranks waiting for the
        failed one at the next all-reduce."""
        if not self.several:
            yield
            return
        error = None
        try:
            yield
        except InputError as raised:
            error = str(raised)
        errors = [None] * self.world_size
        dist.all_gather_object(errors, error)  # every rank learns every rank's outcome
        failed = [(rank, message) for rank, message in enumerate(errors) if message is not None]
        if failed:
            rank, message = failed[0]
            if not self.is_main:
                raise StoppedByAnotherRank(message)
            raise InputError(message if rank == 0 else f"rank {rank}: {message}")

    def wrap(self, model: torch.nn.Module, device: str) -> torch.nn.Module:
        """The module to train through: DDP(model) with several ranks (its backward
        all-reduces the gradients), the model itself with one. Evaluate, sample and save
        with the model itself (DDP's wrapper holds it as .module)."""
        if not self.several:
            return model
        return DistributedDataParallel(model, device_ids=[self.local_rank] if device == "cuda"
                                       else None)

    def gradients_sync(self, trained: torch.nn.Module, last_micro_step: bool):
        """Gradient accumulation: all-reduce only in the backward of the last micro-batch.
        The earlier ones just add into each rank's .grad (DDP's no_sync), so a step costs
        one all-reduce however many micro-batches it has."""
        if self.several and not last_micro_step:
            return trained.no_sync()
        return contextlib.nullcontext()

    def _tensor(self, values) -> torch.Tensor:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        return torch.tensor(values, dtype=torch.float64, device=device)

    def sum(self, value: float) -> float:
        """Σ_r value_r over the ranks (the value itself with one rank)."""
        if not self.several:
            return float(value)
        total = self._tensor([float(value)])
        dist.all_reduce(total)
        return total.item()

    def mean(self, values: dict) -> dict:
        """Each number averaged over the ranks, in one all-reduce (for the logs)."""
        if not self.several or not values:
            return dict(values)
        names = list(values)
        totals = self._tensor([float(values[name]) for name in names])
        dist.all_reduce(totals)
        return {name: total / self.world_size for name, total in zip(names, totals.tolist())}

    def random_states(self, device: str) -> dict:
        """The random state a checkpoint keeps for an exact resume: torch's (and CUDA's)
        state as a single process saves it, and with several ranks also "ranks", each
        rank's state (their dropout masks differ). Every rank must call it."""
        state = {"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if device == "cuda" else []}
        if not self.several:
            return state
        states = [None] * self.world_size
        dist.all_gather_object(states, state)
        return {**states[0], "ranks": states}

    def restore_random_states(self, saved: dict, device: str):
        """Put back this rank's random state from a checkpoint written by random_states."""
        ranks = saved.get("ranks", [])  # none: saved by a single process
        state = ranks[self.rank] if self.rank < len(ranks) else saved
        torch.set_rng_state(state["torch"])
        if device == "cuda" and state.get("cuda"):
            torch.cuda.set_rng_state_all(state["cuda"])

    def check_resume(self, path: str, saved_world_size: int):
        """A run resumes exactly only on as many ranks as it was saved from: the global
        batch and each rank's random state depend on it."""
        if saved_world_size != self.world_size:
            raise InputError(f"{path}: was saved by a run of {saved_world_size} process(es); "
                             f"this one has {self.world_size}, so it cannot resume exactly; "
                             f"run it with torchrun --nproc_per_node {saved_world_size}"
                             + ("" if saved_world_size > 1 else " or plain python"))


def start() -> Ranks:
    """This process's Ranks, from torchrun's environment; joins the process group (gloo
    for CPU tensors, NCCL for CUDA ones) the first time, and sends the printing of ranks
    other than 0 to os.devnull. World size 1: no group, nothing changed."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Ranks()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if rank > 0 and sys.stdout is sys.__stdout__:
        sys.stdout = open(os.devnull, "w")  # rank 0 alone prints; errors still reach stderr
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)  # "cuda" means this rank's GPU from now on
            dist.init_process_group("cpu:gloo,cuda:nccl")
        else:
            dist.init_process_group("gloo")
    return Ranks(rank, local_rank, world_size)


def finish():
    """Leave the process group (at the end of a command run under torchrun)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
