"""Which of the project's functions a student's version replaces in this process.

`exercises.switch` records every swap here, and a run folder records them in turn
(align.pipeline's config.json): so a run made with a student's code is never taken for,
or resumed as, a run made with the reference, nor with an earlier draft of the student's
code (each version is known by a hash of its source).

It also decides which attention a model built for a run uses (`attention_to_run`): the
fused kernel is the fast default, but never where a student's causal_attention should run.
"""

import hashlib
import inspect
from pathlib import Path

# A student copy (exercises.student_copy) has this file at its root; there every exercise's
# function calls the student's file, with no switch.
STUDENT_COPY_MARKER = "STUDENT_COPY.md"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

_active: dict[str, str] = {}  # exercise name -> the first 12 hex digits of its source's SHA-256


def record(name: str, function) -> None:
    """Note that `function` now stands in for the exercise `name`'s reference."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # defined where no source can be read (a REPL, a builtin)
        source = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', function)}"
    _active[name] = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def forget(name: str) -> None:
    """The reference is back in place."""
    _active.pop(name, None)


def active() -> dict[str, str]:
    """{exercise name: source hash} of the student versions in use, sorted by name."""
    return dict(sorted(_active.items()))


def student_version_runs(name: str) -> bool:
    """Whether the student's version of exercise `name` is what runs in this process:
    swapped in by exercises.switch, or in a student copy (where every exercise is)."""
    return name in _active or (PROJECT_ROOT / STUDENT_COPY_MARKER).exists()


def attention_to_run(kind: str) -> str:
    """The attention a model built for a run uses, for the kind asked for.

    "auto" is "sdpa": PyTorch's fused kernel, the same softmax(Q Kᵀ / √d_k + mask) V in
    one call, and the fastest here (minigpt.bench measures both). But while a student's
    causal_attention is the one that runs (`student_version_runs`), "auto" and "sdpa" give
    "manual", the hand-written formula, which then calls the student's code: the two
    compute the same function, so a checkpoint trained with either loads into either.
    "manual" and "lsh" stay as they are.
    """
    if kind not in ("auto", "sdpa"):
        return kind
    return "manual" if student_version_runs("causal_attention") else "sdpa"
