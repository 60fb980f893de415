"""Every lesson runs, top to bottom, under the smoke setting (LESSONS_SMOKE=1), so none can rot."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[path.stem for path in LESSONS])
def test_lesson_runs_under_the_smoke_setting(lesson, tmp_path):
    env = {**os.environ, "LESSONS_SMOKE": "1", "MPLBACKEND": "Agg",
           "LESSONS_OUT": str(tmp_path)}
    result = subprocess.run([sys.executable, str(lesson)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.strip(), "a lesson prints what it teaches"
    assert list(tmp_path.rglob("*.png")), "a lesson saves its figures as PNG files"
