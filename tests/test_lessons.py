"""Every lesson runs, top to bottom, under the smoke setting (LESSONS_SMOKE=1), so none can rot;
and a lesson run as a script prints its prose, each markdown cell before the code after it."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
SHORT_LESSON = ROOT / "lessons" / "08_rlhf_objective_and_optimal_policy.py"  # a few seconds


def run_lesson(lesson, tmp_path, **env):
    """The lesson run as a student runs it, in the smoke setting; its own writes go under
    tmp_path/out (LESSONS_OUT), and it runs in an empty folder, tmp_path/cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, "LESSONS_SMOKE": "1", "MPLBACKEND": "Agg",
           "LESSONS_OUT": str(tmp_path / "out"), **env}
    return subprocess.run([sys.executable, str(lesson)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_under_the_smoke_setting(lesson, tmp_path):
    result = run_lesson(lesson, tmp_path, LESSONS_QUIET="1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip(), "a lesson prints what it teaches"
    assert list((tmp_path / "out").rglob("*.png")), "a lesson saves its figures as PNG files"
    # nothing written into the folder it runs from (a path relative to it, a command's
    # default such as runs/bench/): a lesson writes only into LESSONS_OUT or runs/lessons
    assert not list((tmp_path / "cwd").iterdir())


def markdown_cells(lesson: pathlib.Path) -> list[str]:
    """Each markdown cell's text, read here without lesson_setup: its "# " comment marks
    removed, the blank lines around it dropped."""
    cells, current = [], None
    for line in lesson.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            current = [] if "[markdown]" in line else None
            if current is not None:
                cells.append(current)
        elif current is not None:
            current.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    return ["\n".join(cell).strip("\n") for cell in cells]


@pytest.mark.slow
def test_a_lesson_run_as_a_script_prints_its_prose_before_each_cells_output(tmp_path):
    prose = markdown_cells(SHORT_LESSON)
    assert len(prose) > 5
    shown = run_lesson(SHORT_LESSON, tmp_path)
    quiet = run_lesson(SHORT_LESSON, tmp_path, LESSONS_QUIET="1")
    for result in (shown, quiet):
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # every markdown cell, whole and in the file's order
    positions, start = [], 0
    for text in prose:
        assert text in shown.stdout[start:], f"missing, or out of order: {text[:80]!r}"
        positions.append(shown.stdout.index(text, start))
        start = positions[-1] + len(text)
    # each before the output of the cell that follows it: the title comes before any
    # output, the bandit's table after its cell's prose and before the next cell's prose
    assert shown.stdout.lstrip().startswith(prose[0])
    table = shown.stdout.index("  y       r(x,y)   π_ref(y|x)")
    bandit = next(i for i, text in enumerate(prose) if text.startswith("## The bandit"))
    assert positions[bandit] < table < positions[bandit + 1]
    # the prose is all that differs: taken out, what is left is the quiet run's output
    rest = shown.stdout
    for text in prose:
        rest = rest.replace(text, "", 1)
    assert rest.split() == quiet.stdout.split()
    # and the quiet run shows none of it
    for text in prose:
        assert text.splitlines()[0] not in quiet.stdout, text[:80]
