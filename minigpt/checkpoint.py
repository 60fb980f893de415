"""Checkpoints: written atomically, read safely.

A checkpoint is one file, `ckpt.pt`, holding plain tensors and JSON text only:
    model        the model's state_dict
    optimizer    the optimiser's state_dict (absent for a model-only checkpoint)
    step         the last completed optimisation step
    rng          random-number-generator states (torch CPU, CUDA, the batch sampler)
    model_config GPTConfig as JSON text
    tokenizer    the tokenizer as JSON text
    extra        any other JSON text: the stage that wrote it ({"stage": "reward", ...},
                 see STAGES below; none for minigpt.train), the training configuration

A Hugging Face GPT-2 folder (config.json with model_type "gpt2", the weights, vocab.json +
merges.txt) reads as a pre-trained model's checkpoint: load_checkpoint("gpt2") returns
the same keys, converted by minigpt.gpt2.checkpoint_from_hf, so `--init gpt2` works for
every stage that starts from a pre-trained model.

Writing goes to a temporary file in the same folder, then renames it over the old one:
a crash mid-write leaves the previous checkpoint intact. Reading uses
torch.load(weights_only=True), which refuses arbitrary pickled objects.

A file that is not what the reader needs gets one line that says what it is instead:
    runs/x/ckpt.pt: this is a 'reward' checkpoint (a reward model: a GPT with a scalar
        head); minigpt.sample needs a language model ('pretrain', 'sft', 'dpo' or 'rlhf')
    opt.pt: not a checkpoint of this project: it holds an optimizer's state_dict ...
    half.pt: not a readable checkpoint (the file is truncated or corrupted): ...
"""

import dataclasses
import json
import os
import pickle
import re
import tempfile
import zipfile

import torch

from minigpt.errors import InputError
from minigpt.swaps import attention_to_run

CHECKPOINT_NAME = "ckpt.pt"
REQUIRED_KEYS = ("model", "step", "model_config", "tokenizer")

# How a file written by torch.save begins. Since PyTorch 1.6 it is a zip archive; before,
# a pickle stream that starts with a magic number (pickled with protocol 2).
ZIP_SIGNATURE = b"PK\x03\x04"
LEGACY_SIGNATURE = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


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
    """Accept a checkpoint file or a run folder that holds ckpt.pt; a Hugging Face model
    folder (no ckpt.pt, its own config.json or weights) is returned as it is."""
    from minigpt.gpt2 import looks_like_hf_folder

    path = str(ckpt_or_run)
    if not os.path.isdir(path):
        return path
    ckpt = os.path.join(path, CHECKPOINT_NAME)
    return path if not os.path.exists(ckpt) and looks_like_hf_folder(path) else ckpt


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
    """Read a checkpoint with weights_only=True; one clear line for anything else.

    Three kinds of failure, told apart so the message says what to do:
      - the file is missing, empty, truncated or corrupted (a zip member whose CRC-32
        checksum does not match, even where torch.load would read it): copy or train it again;
      - the file is whole but is no checkpoint of this project (random bytes, a plain
        pickle, a tensor, another project's state_dict, an optimizer's state_dict...);
      - torch cannot read a whole torch file for another reason (its own first sentence).
    A Hugging Face GPT-2 folder is converted (minigpt.gpt2.checkpoint_from_hf: a 'pretrain'
    checkpoint whose path is the folder; its tensors stay on the CPU).
    """
    path = checkpoint_path(ckpt_or_run)
    if os.path.isdir(path):  # checkpoint_path keeps only a Hugging Face folder as a folder
        from minigpt.gpt2 import checkpoint_from_hf

        return checkpoint_from_hf(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such checkpoint (give a ckpt.pt file or a run folder)")
    try:
        with open(path, "rb") as f:
            head = f.read(len(LEGACY_SIGNATURE))  # enough to tell the file formats apart
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {error.strerror or error}") from None
    if not head.startswith((ZIP_SIGNATURE, LEGACY_SIGNATURE)):
        raise InputError(f"{path}: {not_a_torch_file(head)}")
    damage = zip_damage(path) if head.startswith(ZIP_SIGNATURE) else None
    if damage is not None:  # checked first: torch.load would not notice damaged weights
        raise InputError(f"{path}: not a readable checkpoint (the file is truncated or "
                         f"corrupted): {damage}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a pickled object weights_only refuses, a cut legacy file...
        raise InputError(f"{path}: {why_torch_failed(path, head, error)}") from None
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in REQUIRED_KEYS):
        raise InputError(f"{path}: not a checkpoint of this project: it holds "
                         f"{describe_contents(checkpoint)}; a checkpoint of this project is a "
                         f"dict with {listed(REQUIRED_KEYS, 'and')}")
    checkpoint["path"] = path
    return checkpoint


def not_a_torch_file(head: bytes) -> str:
    """Why a file whose first bytes are `head` cannot be a checkpoint."""
    if not head:
        return "not a readable checkpoint: the file is empty"
    if head.startswith(b"\x80"):  # the PROTO opcode every binary pickle starts with
        return ("not a checkpoint of this project: it is a Python pickle, not a file written "
                "by torch.save")
    return (f"not a checkpoint of this project: it is not a file written by torch.save "
            f"(it begins with {head[:8]!r})")


def why_torch_failed(path, head: bytes, error: Exception) -> str:
    """The message for a torch file that torch.load(weights_only=True) could not read.

    PyTorch's own message is long and suggests weights_only=False (which would let the
    file run arbitrary code): we never pass it on, only a short reason of our own.
    """
    refused = re.search(r"GLOBAL (\S+)", str(error))  # "Unsupported global: GLOBAL x.Y ..."
    if isinstance(error, pickle.UnpicklingError) and refused:
        return (f"not a checkpoint of this project: it holds a pickled Python object "
                f"({refused.group(1)}); only tensors, numbers, strings and containers of them "
                f"are loaded, because unpickling anything else can run code")
    if head.startswith(ZIP_SIGNATURE):  # an intact archive (load_checkpoint checked it)
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("data.pkl") for name in archive.namelist()):
                return ("not a checkpoint of this project: it is a zip archive, but not one "
                        "written by torch.save (it has no data.pkl)")
        return f"not a readable checkpoint: {short_reason(error)}"  # whole, yet unreadable
    reason = "the file ends too early" if isinstance(error, EOFError) else short_reason(error)
    return f"not a readable checkpoint (the file is truncated or corrupted): {reason}"


def zip_damage(path) -> str | None:
    """What is broken in a zip archive, or None when every member reads back intact."""
    if not zipfile.is_zipfile(path):
        return ("its zip archive has no table of contents, which torch.save writes at the "
                "end of the file")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()  # reads every member and checks its CRC-32 checksum
    except Exception as error:  # a damaged header inside the archive
        return f"its zip archive is damaged ({short_reason(error)})"
    return None if broken is None else f"{broken} does not match its checksum"


def short_reason(error: Exception) -> str:
    """The first sentence of an error's message; the error's type when that is long or
    talks about weights_only (PyTorch's advice to turn the safety off)."""
    first = re.split(r"\.\s|\n", str(error).strip(), maxsplit=1)[0].strip()
    if not first or len(first) > 120 or re.search(r"weights.only", first, re.IGNORECASE):
        return type(error).__name__
    return first


def describe_contents(obj) -> str:
    """A few words on what torch.load returned, when it is not one of our checkpoints."""
    if isinstance(obj, torch.Tensor):
        return f"a tensor of shape {tuple(obj.shape)}"
    if not isinstance(obj, dict):
        return f"an object of type {type(obj).__name__}"
    if not obj:
        return "an empty dict"
    keys = list(obj)
    shown = ", ".join(repr(key) for key in keys[:5]) + (f" and {len(keys) - 5} more"
                                                          if len(keys) > 5 else "")
    if "state" in obj and "param_groups" in obj:
        return "an optimizer's state_dict ('state' and 'param_groups'), with no model in it"
    if all(isinstance(value, torch.Tensor) for value in obj.values()):
        return (f"a bare state_dict of {len(keys)} tensors ({shown}), with no model config "
                f"or tokenizer")
    return f"a dict with keys {shown}"


def listed(names, last_word: str) -> str:
    """('a', 'b', 'c') -> "'a', 'b' or 'c'" (last_word 'or') or "... and 'c'"."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last_word} {quoted[-1]}"


# The stages that write checkpoints, as align.common.save_stage names them in 'extra'
# (minigpt.train writes no stage: a checkpoint without one is a pre-trained model).
STAGES = {
    "pretrain": ("a language model", "a language model pre-trained on text"),
    "sft": ("a language model", "a language model fine-tuned on demonstrations"),
    "dpo": ("a language model", "a language model aligned with DPO"),
    "rlhf": ("a language model", "a language model aligned by RL on J_RLHF (RLOO or PPO)"),
    "reward": ("a reward model", "a reward model: a GPT with a scalar head"),
    "value": ("a value head", "PPO's value head, written beside an RLHF checkpoint"),
}
LANGUAGE_MODEL_STAGES = ("pretrain", "sft", "dpo", "rlhf")


def checkpoint_stage(checkpoint: dict) -> str:
    """The stage that wrote a loaded checkpoint: extra["stage"], or 'pretrain' if none."""
    try:
        stage = json.loads(checkpoint.get("extra", "{}")).get("stage", "pretrain")
    except (TypeError, ValueError, AttributeError):
        raise InputError(f"{checkpoint['path']}: its 'extra' entry is not a JSON object") from None
    if not isinstance(stage, str):
        raise InputError(f"{checkpoint['path']}: its 'extra' entry has a 'stage' that is not a "
                         f"name: {stage!r}")
    return stage


def require_stage(checkpoint: dict, stages: tuple[str, ...], needed_by: str) -> str:
    """The checkpoint's stage; a one-line error naming it when it is not one of `stages`.

    needed_by names who asks ("minigpt.sample", "align.dpo --init"), for the message:
      PATH: this is a 'reward' checkpoint (a reward model: a GPT with a scalar head);
      minigpt.sample needs a language model ('pretrain', 'sft', 'dpo' or 'rlhf')
    """
    stage = checkpoint_stage(checkpoint)
    if stage not in stages:
        kinds = {STAGES[s][0] for s in stages if s in STAGES}
        wanted = kinds.pop() if len(kinds) == 1 else "a checkpoint"
        what = STAGES[stage][1] if stage in STAGES else "a stage this code does not know"
        raise InputError(f"{checkpoint['path']}: this is a {stage!r} checkpoint ({what}); "
                         f"{needed_by} needs {wanted} ({listed(stages, 'or')})")
    return stage


def load_model(ckpt_or_run, device="cpu", needed_by="load_model"):
    """Rebuild (model, tokenizer, checkpoint) from a language model's checkpoint, in eval mode.

    A checkpoint of another kind (a reward model) is refused by name; needed_by says who
    asked, for the message.
    """
    checkpoint = load_checkpoint(ckpt_or_run, map_location=device)
    require_stage(checkpoint, LANGUAGE_MODEL_STAGES, needed_by)
    model, tokenizer = model_from_checkpoint(checkpoint)
    return model.to(device).eval(), tokenizer, checkpoint


def model_from_checkpoint(checkpoint: dict, weights=True):
    """The GPT and tokenizer a loaded checkpoint describes (with its weights, by default)."""
    from minigpt.model import GPT, GPTConfig
    from minigpt.tokenizer import tokenizer_from_dict

    path = checkpoint["path"]
    try:
        config = GPTConfig.from_dict(json.loads(checkpoint["model_config"]))
        # the fused kernel or the formula by hand: the same function, and a student's
        # causal_attention runs whenever it is in place (minigpt.swaps.attention_to_run)
        config = dataclasses.replace(config, attention=attention_to_run(config.attention))
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
    """load_state_dict, with missing, unexpected or resized weights named in one line."""
    if not isinstance(state_dict, dict):
        raise InputError(f"{path}: the 'model' entry is a {type(state_dict).__name__}, expected "
                         f"a state_dict (a dict of tensors)")
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    resized = [key for key in expected if key in state_dict
               and getattr(state_dict[key], "shape", None) != expected[key].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing from the file (first {missing[0]!r})")
    if unexpected:
        problems.append(f"{len(unexpected)} the model has no place for (first {unexpected[0]!r})")
    if resized:
        key = resized[0]
        saved = getattr(state_dict[key], "shape", None)
        saved = tuple(saved) if saved is not None else "not a tensor"
        problems.append(f"{len(resized)} of another shape (first {key!r}: {saved} in the file, "
                        f"{tuple(expected[key].shape)} in the model)")
    if problems:
        raise InputError(f"{path}: the weights do not match the model config: "
                         f"{'; '.join(problems)}")
    check_sharing(model, state_dict, path)
    model.load_state_dict(state_dict)


def check_sharing(model, state_dict, path):
    """Names that are one tensor in the model (ALBERT's share_layers, the tied embedding)
    must hold one value in the file: otherwise load_state_dict would silently keep the last
    depth's weights for all. A file saved with other sharing is refused by name."""
    for first, *others in shared_state_names(model):
        for other in others:
            if not torch.equal(state_dict[first], state_dict[other]):
                raise InputError(
                    f"{path}: {other!r} differs from {first!r}, but the model config makes them "
                    f"one tensor (share_layers): the weights were saved from a model with other sharing")


def shared_state_names(model) -> list[list[str]]:
    """Groups of state_dict names that are one tensor in the model (ALBERT's sharing, the
    tied embedding): [[first name, other names...], ...], each group of two or more."""
    groups: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def check_same_config(path, saved: dict, wanted: dict, what: str):
    """Raise a clear error naming each field where a checkpoint and the flags disagree."""
    differences = [f"{key}: checkpoint has {saved.get(key)!r}, asked for {wanted.get(key)!r}"
                   for key in sorted(set(saved) | set(wanted)) if saved.get(key) != wanted.get(key)]
    if differences:
        raise InputError(f"{path}: the checkpoint's {what} does not match: "
                         + "; ".join(differences))
