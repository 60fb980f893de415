"""Whose run folder is this? Each command writes only into a folder of its own kind.

Every command that writes a run folder leaves a small file at its top, `run.json`:

    {"kind": "pipeline", "command": "python -m align.pipeline"}

and, before any work, checks the folder it was pointed at (`check_run_folder`):

    missing or empty                     → a new run
    run.json of this kind                → its own run (resumed, kept or, with --overwrite, replaced)
    run.json of another kind             → refused, even with --overwrite
    no run.json (written before it existed, or by hand)
        its files are those of this kind  → its own run (run.json is added at the next write)
        otherwise                        → refused, naming what it holds
    its own kind, with files it never writes (notes.txt, another run's ckpt.pt)
                                         → refused, naming them: it never deletes what it did not write
    inside another command's run folder  → refused, unless this kind is made to sit there
                                           (a frontier inside its pipeline run, pruning/ inside a
                                           pre-training run)

A command that writes single files (the benchmark's plot, a JSONL of pairs, the example
files) checks only that the file's folder is no other command's run folder
(`refuse_others_run_folder`).

KINDS below is the one place that says what each kind of folder holds: the names and
patterns of its files, the keys of its config.json that tell an older folder without
run.json apart, and the subfolders a command writes as parts of its run (the pipeline's
pretrain/, sft/, ...; the frontier's dpo-beta-0.1/, ...). A part is checked with its own
kind's files.
"""

import fnmatch
import json
import os
import shutil
from dataclasses import dataclass

from minigpt.checkpoint import load_checkpoint, write_atomically
from minigpt.errors import InputError

OWNER_FILE = "run.json"


@dataclass(frozen=True)
class RunKind:
    what: str                      # "a pipeline run", in messages
    command: str                   # the command that writes it
    files: tuple                   # names or glob patterns of the files at its top
    config_keys: tuple = ()        # keys every config.json of this kind has (older folders)
    stage: str = ""                # the stage its ckpt.pt names (align's stages share a layout)
    signature: tuple = ()          # a file only this kind writes (an older folder whose config.json was replaced)
    parts: tuple = ()              # (subfolder pattern, kind, extra files the parent adds to it)
    inside: tuple = ()             # the kinds of run folder it may be written inside


# Each command's files by name: a pattern as wide as "*.png" would count a user's own figure
# as the command's, and --overwrite would delete it.
TRAIN_FILES = ("config.json", "metrics.jsonl", "loss.png", "ckpt.pt", "tokenizer.json", "report.md")
STAGE_FILES = ("config.json", "metrics.jsonl", "tokenizer.json", "ckpt.pt", "summary.json",
               "report.md", "loss.png")
ALL_KINDS_FILES = (OWNER_FILE, ".tmp-*")  # the marker; a temp file an interrupted atomic write left

KINDS = {
    "pretrain": RunKind("a pre-training run", "python -m minigpt.train", TRAIN_FILES,
                        config_keys=("data_tokens", "grad_accum")),
    "sft": RunKind("an SFT run", "python -m align.sft", STAGE_FILES,
                   config_keys=("truncation",), stage="sft"),
    "reward": RunKind("a reward-model run", "python -m align.reward", STAGE_FILES + ("accuracy.png",),
                      config_keys=("truncation",), stage="reward"),
    "dpo": RunKind("a DPO run", "python -m align.dpo", STAGE_FILES + ("rewards.png", "accuracies.png"),
                   config_keys=("truncation", "beta", "loss_type"), stage="dpo"),
    "rlhf": RunKind("an RLHF run", "python -m align.rlhf",
                    STAGE_FILES + ("value.pt", "rewards.png", "kl.png"),
                    config_keys=("truncation", "algorithm", "rloo_k"), stage="rlhf"),
    "pipeline": RunKind(
        "a pipeline run", "python -m align.pipeline",
        ("config.json", "stages.json", "results.json", "report.md", "samples.jsonl", "losses.png",
         "dpo_rewards.png", "gold_reward.png", "gold_components.png"),
        config_keys=("preset_settings",), signature=("stages.json",),
        parts=(("data", "pipeline-data", ()), ("pretrain", "pretrain", ()), ("sft", "sft", ()),
               ("reward", "reward", ()), ("dpo", "dpo", ()), ("rlhf", "rlhf", ()))),
    "pipeline-data": RunKind("a pipeline run's data/", "python -m align.pipeline",
                             ("corpus.txt", "sft_train.jsonl", "sft_eval.jsonl",
                              "pairs_train.jsonl", "pairs_heldout.jsonl", "eval_prompts.jsonl")),
    "frontier": RunKind(
        "a frontier", "python -m align.frontier",
        ("config.json", "eval_prompts.jsonl", "frontier.json", "frontier.md", "frontier.png",
         "overoptimisation.png"),
        config_keys=("dpo_betas", "optimum_samples"),
        parts=(("dpo-beta-*", "dpo", ("points.json",)), ("rlhf-*-beta-*", "rlhf", ("points.json",))),
        inside=("pipeline",)),
    "albert": RunKind("an ALBERT comparison", "python -m minigpt.albert",
                      ("config.json", "albert.md", "albert.json", "albert.png"),
                      config_keys=("variant_list",), parts=(("*", "pretrain", ("summary.json",)),)),
    "prune": RunKind("a pruning curve", "python -m minigpt.prune",
                     ("config.json", "pruning.json", "pruning.md", "pruning.png"),
                     config_keys=("sparsity_list",), inside=("pretrain", "gpt2")),
    "gpt2": RunKind("a GPT-2 model converted from Hugging Face", "python -m minigpt.gpt2 --from-hf",
                    ("config.json", "tokenizer.json", "ckpt.pt", "report.md"),
                    config_keys=("from_hf",)),
    "hf": RunKind("a Hugging Face GPT-2 folder", "python -m minigpt.gpt2 --to-hf",
                  ("config.json", "*.safetensors", "*.bin", "*.index.json", "vocab.json", "merges.txt",
                   "tokenizer_config.json", "generation_config.json"),
                  config_keys=("model_type",)),
    "gridworld": RunKind("a gridworld run", "python -m gridworld",  # checked in gridworld/__main__.py
                         ("config.json", "metrics.jsonl", "tables.npz", "report.md", "values_*.png",
                          "episode_*.png", "learning_curves.png", "bandit.png", "episode.gif")),
}


FOREIGN = "another tool's"  # kind_of a folder whose run.json another tool wrote


def read_owner_file(folder) -> dict | None:
    """run.json's contents: {"kind": ...} when this project wrote it, {"kind": None} for a
    run.json of another tool (Sacred, say, writes one too), None when there is none."""
    file = os.path.join(folder, OWNER_FILE)
    if not os.path.isfile(file):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            owner = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        owner = None
    if not isinstance(owner, dict) or owner.get("kind") not in KINDS:
        return {"kind": None}
    return owner


def write_owner_file(folder, kind: str):
    """Mark folder as a run of this kind (once: a folder never changes its kind)."""
    owner = read_owner_file(folder)
    if owner is not None:
        if owner["kind"] != kind:
            raise InputError(f"{folder}: its run.json is not {KINDS[kind].what}'s: "
                             f"{owner['kind'] or 'another tool'} wrote it")
        return
    text = json.dumps({"kind": kind, "command": KINDS[kind].command}, indent=2) + "\n"
    write_atomically(os.path.join(folder, OWNER_FILE), text.encode("utf-8"))


def matches(name: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def config_keys_of(folder) -> set:
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return set()
    return set(saved) if isinstance(saved, dict) else set()


def checkpoint_stage(folder) -> str:
    """The stage an align checkpoint records ("" for none, or another kind of checkpoint)."""
    try:
        extra = json.loads(load_checkpoint(os.path.join(folder, "ckpt.pt"))["extra"])
    except (InputError, KeyError, ValueError):
        return ""
    return extra.get("stage", "") if isinstance(extra, dict) else ""


def kind_of(folder, strict=False) -> str | None:
    """The kind of run folder this is: run.json's, or for a folder without one (written
    before run.json existed) the kind its files say; None for no run folder of any kind.
    strict: an older folder counts only if it holds nothing its kind does not write (how a
    folder above the one a command writes is judged: a stray config.json is no run)."""
    owner = read_owner_file(folder)
    if owner is not None:
        return owner["kind"] or (None if strict else FOREIGN)
    try:
        names = set(os.listdir(folder))
    except OSError:  # not a folder, or one we may not read: no run folder of ours
        return None
    for kind, spec in KINDS.items():
        if spec.signature and names & set(spec.signature):
            return None if strict and not_its_own(folder, kind)[0] else kind
    keys = config_keys_of(folder)
    candidates = [kind for kind, spec in KINDS.items()
                  if spec.config_keys and set(spec.config_keys) <= keys]
    if len(candidates) > 1:  # align's stages: the most specific keys, then the checkpoint's stage
        most = max(len(KINDS[k].config_keys) for k in candidates)
        candidates = [k for k in candidates if len(KINDS[k].config_keys) == most]
    if len(candidates) > 1:
        stage = checkpoint_stage(folder)
        candidates = [k for k in candidates if KINDS[k].stage == stage]
    if len(candidates) != 1 or (strict and not_its_own(folder, candidates[0])[0]):
        return None
    return candidates[0]


def enclosing_run(path, from_itself=False) -> tuple[str, str] | tuple[None, None]:
    """(folder, kind) of the nearest folder above path (from_itself: path or above) that is
    a run folder; (None, None) when there is none."""
    here = os.path.abspath(path) if from_itself else os.path.dirname(os.path.abspath(path))
    while True:
        kind = kind_of(here, strict=True)
        if kind is not None:
            return here, kind
        parent = os.path.dirname(here)
        if parent == here:
            return None, None
        here = parent


def not_its_own(folder, kind: str, extra=(), prefix="") -> tuple[list, list]:
    """(entries kind's command never writes there, run folders of other commands inside
    it), as paths relative to the folder first checked. A part (the pipeline's sft/) is
    checked with its own kind's files; a run folder of a kind made to sit inside this one
    (a frontier in its pipeline run) is listed as nested, left to its own command."""
    spec, stray, nested = KINDS[kind], [], []
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # a folder we may not read holds nothing we wrote
        return [prefix or folder], []
    for name in names:
        path, shown = os.path.join(folder, name), prefix + name
        if not os.path.isdir(path):
            if not matches(name, spec.files + ALL_KINDS_FILES + tuple(extra)):
                stray.append(shown)
            continue
        if not os.listdir(path):  # an empty folder holds nobody's work
            continue
        found = kind_of(path)
        part = next(((k, more) for pattern, k, more in spec.parts
                     if fnmatch.fnmatchcase(name, pattern)), None)
        if part is not None and found in (None, part[0]):
            more_stray, more_nested = not_its_own(path, part[0], part[1], shown + "/")
            stray, nested = stray + more_stray, nested + more_nested
        elif found in KINDS and kind in KINDS[found].inside:
            nested.append(shown + "/")
        else:
            stray.append(shown + "/")
    return stray, nested


def listing(names, most=4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def refuse_others_run_folder(path, flag: str, kind: str | None = None, is_folder=False):
    """An InputError when path lies in another command's run folder. path: a file to write,
    or (is_folder) a folder to write files into; kind: the kind of run folder path itself
    is to be (None: files only), which may sit inside the kinds its RunKind.inside names."""
    folder, owner = enclosing_run(path, from_itself=is_folder)
    if owner is None or (kind is not None and owner in KINDS[kind].inside):
        return
    where = ("is" if folder == os.path.abspath(path) else "lies inside") + f" {KINDS[owner].what}"
    raise InputError(f"{flag} {path}: {where} ({folder}, written by {KINDS[owner].command}); "
                     f"choose a path outside it")


def check_run_folder(path, kind: str, flag: str = "--out-dir") -> bool:
    """Refuse, in one line, a folder that kind's command must not write (see the module's
    docstring); True when it holds a run of this kind, False when it is missing or empty."""
    spec = KINDS[kind]
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{flag} {path}: is a file, expected a folder")
    refuse_others_run_folder(path, flag, kind)
    if not os.path.isdir(path) or not os.listdir(path):
        return False
    found = kind_of(path)
    if found == FOREIGN:
        raise InputError(f"{flag} {path}: holds a run.json that this project did not write (another "
                         f"tool's run?); {spec.command} writes only its own run folders: choose "
                         f"another {flag}")
    if found is None:
        raise InputError(f"{flag} {path}: holds files that are not {spec.what} "
                         f"({listing(sorted(os.listdir(path)))}); {spec.command} never writes "
                         f"into a folder of other files: choose another {flag}")
    if found != kind:
        raise InputError(f"{flag} {path}: holds {KINDS[found].what}, written by "
                         f"{KINDS[found].command}; {spec.command} writes only its own run "
                         f"folders: choose another {flag}")
    stray, _ = not_its_own(path, kind)
    if stray:
        raise InputError(f"{flag} {path}: holds {spec.what} and files {spec.command} did not "
                         f"write ({listing(stray)}); move them out (it never deletes what it "
                         f"did not write), or choose another {flag}")
    return True


def remove_run_folder(path, kind: str, flag: str = "--out-dir"):
    """Delete a run folder of this kind (--overwrite), after checking that it holds only
    what its command wrote; a run folder of another command inside it (a frontier measured
    on a pipeline run) is refused by name rather than deleted with it."""
    check_run_folder(path, kind, flag)
    _, nested = not_its_own(path, kind)
    if nested:
        raise InputError(f"{flag} {path}: --overwrite would delete {listing(nested)} inside it, "
                         f"written by another command; move or remove "
                         f"{'it' if len(nested) == 1 else 'them'} first")
    shutil.rmtree(path)


def same_path(old: str, new: str, old_folder: str, new_folder: str) -> bool:
    """Whether two spellings of a path setting name the same file or folder: the same
    after resolving ("runs/p" and "/home/me/runs/p"), or the same place relative to the run
    folder that records them (a run folder moved with what it names)."""
    if not old or not new:
        return old == new
    if os.path.realpath(old) == os.path.realpath(new):
        return True
    return (os.path.relpath(os.path.realpath(old), os.path.realpath(old_folder))
            == os.path.relpath(os.path.realpath(new), os.path.realpath(new_folder)))
