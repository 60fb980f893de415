"""Which of the project's functions a student's version replaces in this process.

`exercises.switch` records every swap here, and a run folder records them in turn
(align.pipeline's config.json): so a run made with a student's code is never taken for,
or resumed as, a run made with the reference, nor with an earlier draft of the student's
code (each version is known by a hash of its source).
"""

import hashlib
import inspect

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
