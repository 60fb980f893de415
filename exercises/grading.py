"""How an exercise is graded: named checks, run one by one, with feedback a student can use.

A check is a small test of the reference's behaviour, written against any implementation
with the same signature: it gets the function to test and raises CheckFailed with a
message that says what was expected and what came out. Each check has a kind, so that the
feedback says what went wrong:

    shape     the output has the wrong shape or type
    values    the numbers differ from an independent computation (a loop, float64, a closed form)
    property  a rule the result must obey (causality, rows summing to 1, no input changed, ...)
    gradient  the gradient is missing or wrong
    model     the function, swapped into the real model or training loop, changes its results

`grade` runs every check of one exercise. A check that hits the stub's NotImplementedError
stops the grading with one line; a check that fails or raises is reported with its kind,
its message and, for an exception, the line of the student's file where it happened.
"""

import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from exercises.registry import EXERCISES, STUDENT_DIR, student_dir

CHECK_KINDS = ("shape", "values", "property", "gradient", "model")


class CheckFailed(AssertionError):
    """Raised by a check: the message says what was expected and what came out."""


def expect(condition: bool, message: str):
    """Fail the current check with message unless condition holds."""
    if not condition:
        raise CheckFailed(message)


def expect_close(actual, expected, what: str, atol: float = 1e-6, rtol: float = 1e-5):
    """Fail unless two tensors have the same shape and close values; name the worst element.

    Close means |yours − expected| ≤ atol + rtol·|expected| everywhere; the message shows
    the element that breaks this by the most, with enough digits to see the difference.
    """
    actual = torch.as_tensor(actual)
    expected = torch.as_tensor(expected)
    expect(tuple(actual.shape) == tuple(expected.shape),
           f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    actual = actual.detach().double()
    expected = expected.detach().double()
    if torch.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True):
        return
    difference = (actual - expected).abs().nan_to_num(nan=float("inf"))
    excess = (difference - (atol + rtol * expected.abs())).nan_to_num(nan=float("inf"))
    worst = tuple(int(i) for i in torch.unravel_index(excess.argmax(), excess.shape))
    where = f" at index {list(worst)}" if worst else ""
    raise CheckFailed(
        f"{what}: |yours − expected| = {difference[worst].item():.3g}{where} (allowed {atol:g} + "
        f"{rtol:g}·|expected|): yours {actual[worst].item():.12g}, expected {expected[worst].item():.12g}"
    )


@dataclass
class Check:
    kind: str  # one of CHECK_KINDS
    description: str  # what it checks, in one line
    run: object  # run(function): raises CheckFailed when the function is wrong
    section: str | None = None  # the lesson section to reread when it fails (None: the exercise's)
    lesson: str | None = None  # the lesson that holds that section (None: the exercise's)


CHECKS: dict[str, list[Check]] = {}  # exercise name -> its checks, in order


def check(exercise: str, kind: str, description: str, section: str | None = None,
          lesson: str | None = None):
    """Decorator: register a check function for an exercise (lesson, section: what to reread)."""
    if kind not in CHECK_KINDS:
        raise ValueError(f"check kind must be one of {CHECK_KINDS}, got {kind!r}")

    def register(run):
        CHECKS.setdefault(exercise, []).append(Check(kind, description, run, section, lesson))
        return run

    return register


@dataclass
class CheckResult:
    check: Check
    status: str  # "passed", "failed", or "todo" (the check reached a NotImplementedError)
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class Report:
    exercise: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def untouched(self) -> bool:
        """The stub as handed out: its first check already hit NotImplementedError."""
        return bool(self.results) and self.results[0].status == "todo"

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def not_passed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


def frames_in(error: BaseException, files: list[Path]) -> list[traceback.FrameSummary]:
    """The frames of error's traceback that lie in one of files, outermost first."""
    resolved = {str(Path(f).resolve()) for f in files}
    return [frame for frame in traceback.extract_tb(error.__traceback__)
            if str(Path(frame.filename).resolve()) in resolved]


def where_in(error: BaseException, files: list[Path]) -> str:
    """' (file, line N: code)' for the last traceback frame inside one of files, else ''."""
    frames = frames_in(error, files)
    if not frames:
        return ""
    frame = frames[-1]
    return f" ({Path(frame.filename).name}, line {frame.lineno}: {(frame.line or '').strip()})"


def raised_by_this_exercise(error: NotImplementedError, source_files: list[Path]) -> bool:
    """True when the student's own file raised it (its TODO), not a function it calls.

    A correct kv_cache_step calls the model, and in a student copy the model calls the
    student's causal_attention: if that is still a stub, kv_cache_step is not at fault.
    Without source files (a function defined elsewhere, as in the tests), it is trusted.
    """
    if not source_files:
        return True
    innermost = traceback.extract_tb(error.__traceback__)[-1]
    return bool(frames_in(error, source_files)) and innermost in frames_in(error, source_files)


# The last frame of a printed traceback, when the error it ends with is a NotImplementedError
# (an assertion message that quotes it may indent every line):
#   File ".../exercises/student/causal_attention.py", line 33, in causal_attention
#     raise NotImplementedError("exercise causal_attention: ...")
# NotImplementedError: exercise causal_attention: ...
LAST_FRAME_BEFORE_NOT_IMPLEMENTED = re.compile(
    r'File "(?P<file>[^"]+)", line \d+, in \S+\n(?:(?![ \t]*File ")[ \t]+.*\n)*?[ \t]*NotImplementedError\b')


def unwritten_exercise(error: BaseException) -> str | None:
    """The exercise whose student file raised error, if error is the NotImplementedError of a
    stub (or of a part not written yet) in exercises/student/; else None.

    A test that runs a lesson or a command in a child process sees only what the child printed,
    which its assertion message shows: then the last traceback in that message tells.
    """
    if isinstance(error, NotImplementedError):
        frames = traceback.extract_tb(error.__traceback__)
        files = [frames[-1].filename] if frames else []
    else:
        text = str(error)
        last_traceback = text[max(text.rfind("Traceback (most recent call last):"), 0):]
        files = [match["file"] for match in LAST_FRAME_BEFORE_NOT_IMPLEMENTED.finditer(last_traceback)][-1:]
    student_folders = {STUDENT_DIR.resolve(), student_dir().resolve()}
    for file in files:
        if Path(file).parent.resolve() in student_folders and Path(file).stem in EXERCISES:
            return Path(file).stem
    return None


def grade(exercise: str, function, source_files: list[Path] = ()) -> Report:
    """Run every check of exercise against function; never raises for the function's errors.

    A stub whose first check hits its own NotImplementedError is reported as untouched,
    without running the rest. Later, a check that hits it is a "todo" (a part not written
    yet, such as DPO's variants) and the other checks still run. A NotImplementedError
    from another exercise's stub that this function calls is a failure that says so.
    """
    source_files = list(source_files)
    report = Report(exercise)
    for item in CHECKS[exercise]:
        try:
            item.run(function)
        except NotImplementedError as error:
            if raised_by_this_exercise(error, source_files):
                report.results.append(CheckResult(item, "todo", str(error) or "NotImplementedError"))
                if report.untouched:
                    return report
            else:
                frame = traceback.extract_tb(error.__traceback__)[-1]
                report.results.append(CheckResult(item, "failed", (
                    f"a function your code calls is not written yet: {error} "
                    f"({Path(frame.filename).name}, line {frame.lineno}); do that exercise first")))
        except CheckFailed as error:
            report.results.append(CheckResult(item, "failed", str(error)))
        except Exception as error:  # the student's code crashed: say what and where
            message = f"your code raised {type(error).__name__}: {error}{where_in(error, source_files)}"
            report.results.append(CheckResult(item, "failed", message))
        else:
            report.results.append(CheckResult(item, "passed"))
    return report
