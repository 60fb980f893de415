"""Where the model runs and in which precision: one place for every command to ask.

    pick_device("auto")   # "cuda" if a GPU is present, else "cpu"; MPS only by name
    with autocast_for(device):   # bf16 matrix products on CUDA, nothing elsewhere
        logits, loss = model(x, y)
"""

import contextlib

import torch

from minigpt.errors import InputError


def pick_device(name: str) -> str:
    """auto: CUDA if present, else CPU. Apple's MPS only when asked for by name."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device must be auto, cpu, cuda or mps, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device mps: Apple's MPS backend is not available here")
    return name


def autocast_for(device: str):
    """bf16 autocast on CUDA (matrix products in bfloat16, weights in float32); none elsewhere."""
    if device == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
