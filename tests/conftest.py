"""Shared fixtures: small models that run in milliseconds on a CPU; in a student copy, a test
that reaches an exercise the student has not written yet is reported as skipped."""

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402

from minigpt import GPT, GPTConfig  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
ROOT = Path(__file__).resolve().parents[1]
STUDENT_COPY = (ROOT / "STUDENT_COPY.md").exists()


def tiny_config(**overrides) -> GPTConfig:
    values = dict(block_size=32, vocab_size=37, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
    values.update(overrides)
    return GPTConfig(**values)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return GPT(tiny_config()).eval()


@pytest.fixture
def figures(monkeypatch):
    """Every figure the code under test closes (plt.close), kept open for the test to read."""
    kept, close = [], plt.close
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    for figure in kept:
        close(figure)


@pytest.fixture
def shared_dir():
    """The ../shared folder beside the checkout; tests that need it skip without it."""
    if not os.path.isdir(SHARED):
        pytest.skip("../shared is not present (a user's fresh clone has none)")
    return SHARED


# ------------------------------------------------------------------------ in a student copy
# There the project's functions call the students' files (exercises/student_copy.py), and
# until a student writes one, every test that reaches it would fail with the stub's
# NotImplementedError. Such a test is skipped instead, with the exercise's name: `-ra` then
# counts the skips of each exercise in one line.
if STUDENT_COPY:
    from exercises.grading import unwritten_exercise

    @contextmanager
    def unwritten_exercises_skip():
        try:
            yield
        except Exception as error:
            name = unwritten_exercise(error)
            if name is None:
                raise
            pytest.skip(f"exercise {name} not implemented yet (exercises/student/{name}.py; "
                        f"python -m exercises grade {name})")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(item):  # fixtures: a module's trained model, say
        with unwritten_exercises_skip():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(item):  # the test itself
        with unwritten_exercises_skip():
            return (yield)


# ------------------------------------------------------------------ a long run in the background
# The longest check, a whole pipeline run of minutes (test_pipeline.py marks its test with
# @in_background(command)), starts in a process of its own as soon as the tests are
# collected and runs on one core while the rest of the suite runs on the other; its test
# then waits for it and checks what it wrote. Both sides use one thread each, so that
# neither slows the other (two cores, two threads). Alone (pytest -k ...), in a student
# copy, or with --collect-only, nothing starts: the test then runs the command itself.
BACKGROUND = {}  # test node id -> (process, its folder: run/ and log.txt, the log file)


def in_background(command):
    """Mark a slow test whose work is `command(folder)` (a python -m ... argument list)."""
    def mark(test):
        test.background_command = command
        return test
    return mark


def background_command(item):
    return getattr(getattr(item, "function", None), "background_command", None)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: background_command(item) is not None)  # theirs last: the
    # rest of the suite runs while they do (a stable sort: the order is otherwise kept)


def pytest_collection_finish(session):
    wanted = [item for item in session.items if background_command(item) is not None]
    if not wanted or len(session.items) == len(wanted) or STUDENT_COPY \
            or session.config.option.collectonly:
        return
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"  # for the suite's own subprocesses too
    for item in wanted:
        folder = tempfile.mkdtemp(prefix="background_run_")
        log = open(os.path.join(folder, "log.txt"), "w")
        command = background_command(item)(os.path.join(folder, "run"))
        process = subprocess.Popen([sys.executable, "-m", *command],
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   stdout=log, stderr=subprocess.STDOUT)
        BACKGROUND[item.nodeid] = (process, folder, log)


def pytest_sessionfinish(session):
    for process, folder, log in BACKGROUND.values():
        if process.poll() is None:  # interrupted, or its test was never reached
            process.kill()
        process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def background_run(request, tmp_path):
    """The folder the test's @in_background command wrote: the background run's, once it
    has finished (its failure fails the test, with its log), or a run made now."""
    if request.node.nodeid not in BACKGROUND:
        command = request.function.background_command(str(tmp_path / "run"))
        subprocess.run([sys.executable, "-m", *command], cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        return tmp_path / "run"
    process, folder, log = BACKGROUND[request.node.nodeid]
    process.wait()
    log.flush()
    output = Path(folder, "log.txt").read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, output[-5000:]
    return Path(folder, "run")
