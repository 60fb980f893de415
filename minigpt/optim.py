"""The optimiser and the learning-rate schedule, shared by every training loop.

AdamW with two parameter groups: weight decay for the matrices (Linear weights,
embeddings), none for biases and LayerNorm gains, as in GPT-2 and nanoGPT.

Learning rate at step s (steps count from 1), with peak lr, floor min_lr, warm-up W and
last step S:
    s ≤ W:       lr · s / W                                      (linear warm-up)
    W < s ≤ S:   min_lr + ½ (1 + cos(π · (s − W) / (S − W))) · (lr − min_lr)   (cosine decay)
    s > S:       min_lr
so it reaches lr at the end of the warm-up and min_lr at the last step.
"""

import math

import torch


def make_optimizer(model, learning_rate, weight_decay, betas=(0.9, 0.95), device_type="cpu"):
    """AdamW over two groups: decayed matrices (dim ≥ 2) and undecayed vectors (dim < 2)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in parameters if p.dim() >= 2]
    no_decay = [p for p in parameters if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel gives the same update in one call per group, instead of a dozen
    # small operations per tensor: on CUDA, and on the CPU since PyTorch 2.4 (for the
    # default model on 2 CPU cores, a third of the optimiser's time).
    extra = {"fused": True} if fused_adamw_available(device_type) else {}
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)


def fused_adamw_available(device_type: str) -> bool:
    """Whether torch.optim.AdamW(fused=True) runs on this device type with this PyTorch."""
    kind = str(device_type).split(":")[0]  # "cuda:1" (a torchrun rank's GPU) is "cuda"
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return kind == "cuda" or (kind == "cpu" and (major, minor) >= (2, 4))


def learning_rate_at(step, learning_rate, min_lr, warmup_steps, max_steps):
    """Linear warm-up to learning_rate, then cosine decay to min_lr at max_steps."""
    if warmup_steps > 0 and step <= warmup_steps:
        return learning_rate * step / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / (max_steps - warmup_steps)  # 0 → 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (learning_rate - min_lr)


def set_learning_rate(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr
