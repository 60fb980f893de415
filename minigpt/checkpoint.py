"""Checkpoints: written atomically, read safely.

A checkpoint is one file, `ckpt.pt`, holding plain tensors and JSON text only:
    model        the model's state_dict
    optimizer    the optimiser's state_dict (absent for a model-only checkpoint)
    step         the last completed optimisation step
    rng          random-number-generator states (torch CPU, CUDA, the batch sampler)
    model_config GPTConfig as JSON text
    tokenizer    the tokenizer as JSON text
    extra        any other JSON text (the training configuration, metrics so far)

Writing goes to a temporary file in the same folder, then renames it over the old one:
a crash mid-write leaves the previous checkpoint intact. Reading uses
torch.load(weights_only=True), which refuses arbitrary pickled objects.
"""

import json
import os
import tempfile

import torch

from minigpt.errors import InputError

CHECKPOINT_NAME = "ckpt.pt"
REQUIRED_KEYS = ("model", "step", "model_config", "tokenizer")


def write_atomically(path, data: bytes | None = None, save=None):
    """Write bytes (or call save(file_object)) to a temp file, then rename it to path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            if save is not None:
                save(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes it private (0600)
        os.replace(tmp_path, path)  # atomic on POSIX and Windows
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def checkpoint_path(ckpt_or_run) -> str:
    """Accept a checkpoint file or a run folder that holds ckpt.pt."""
    path = str(ckpt_or_run)
    return os.path.join(path, CHECKPOINT_NAME) if os.path.isdir(path) else path


def save_checkpoint(path, model, step, model_config, tokenizer, optimizer=None, rng=None,
                    extra=None):
    """Save everything needed to resume training or to sample, atomically."""
    checkpoint = {
        "model": model.state_dict(),
        "step": int(step),
        "model_config": json.dumps(model_config.to_dict()),
        "tokenizer": json.dumps(tokenizer.to_dict(), ensure_ascii=False),
        "extra": json.dumps(extra or {}),
    }
    if optimizer is not None:
        checkpoint["optimizer"] = optimizer.state_dict()
    if rng is not None:
        checkpoint["rng"] = rng
    write_atomically(path, save=lambda f: torch.save(checkpoint, f))


def load_checkpoint(ckpt_or_run, map_location="cpu") -> dict:
    """Read a checkpoint with weights_only=True; clear errors for missing or broken files."""
    path = checkpoint_path(ckpt_or_run)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such checkpoint (give a ckpt.pt file or a run folder)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, random bytes, a pickle with code in it...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"{path}: not a readable checkpoint (corrupted, truncated or not a minigpt "
            f"checkpoint): {reason[:200]}"
        ) from None
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in REQUIRED_KEYS):
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise InputError(f"{path}: not a minigpt checkpoint: expected keys {REQUIRED_KEYS}, "
                         f"found {found}")
    checkpoint["path"] = path
    return checkpoint


def load_model(ckpt_or_run, device="cpu"):
    """Rebuild (model, tokenizer, checkpoint) from a checkpoint, the model in eval mode."""
    checkpoint = load_checkpoint(ckpt_or_run, map_location=device)
    model, tokenizer = model_from_checkpoint(checkpoint)
    return model.to(device).eval(), tokenizer, checkpoint


def model_from_checkpoint(checkpoint: dict, weights=True):
    """The GPT and tokenizer a loaded checkpoint describes (with its weights, by default)."""
    from minigpt.model import GPT, GPTConfig
    from minigpt.tokenizer import tokenizer_from_dict

    path = checkpoint["path"]
    try:
        config = GPTConfig.from_dict(json.loads(checkpoint["model_config"]))
        tokenizer = tokenizer_from_dict(json.loads(checkpoint["tokenizer"]))
    except (ValueError, TypeError, AttributeError) as error:
        raise InputError(f"{path}: bad model config or tokenizer in checkpoint: {error}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise InputError(f"{path}: tokenizer has {tokenizer.vocab_size} tokens but the model's "
                         f"vocab_size is {config.vocab_size}")
    model = GPT(config)
    if weights:
        load_weights(model, checkpoint["model"], path)
    return model, tokenizer


def load_weights(model, state_dict, path):
    """load_state_dict, turning shape or key mismatches into one clear error."""
    if not isinstance(state_dict, dict):
        raise InputError(f"{path}: the 'model' entry is a {type(state_dict).__name__}, expected "
                         f"a state_dict (a dict of tensors)")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        first = [line.strip() for line in str(error).splitlines() if line.strip()][1:3]
        raise InputError(f"{path}: the weights do not match the model config: "
                         f"{' '.join(first)[:300]}") from None


def check_same_config(path, saved: dict, wanted: dict, what: str):
    """Raise a clear error naming each field where a checkpoint and the flags disagree."""
    differences = [f"{key}: checkpoint has {saved.get(key)!r}, asked for {wanted.get(key)!r}"
                   for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key)]
    if differences:
        raise InputError(f"{path}: the checkpoint's {what} does not match: "
                         + "; ".join(differences))
