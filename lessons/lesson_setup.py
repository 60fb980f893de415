"""What every lesson does first: find the project, read the smoke setting, make its folder.

    from lesson_setup import lesson_paths
    ROOT, SMOKE, OUT = lesson_paths(__file__)

ROOT is put on sys.path, so a plain `python lessons/NN_name.py` imports the project's
packages. SMOKE is True under LESSONS_SMOKE=1, the few-seconds setting of the test
suite. OUT is the lesson's own folder for figures and runs: runs/lessons/NN_name/, or
under LESSONS_OUT when that is set.
"""

import os
import pathlib
import sys


def lesson_paths(lesson_file: str):
    root = pathlib.Path(lesson_file).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    smoke = os.environ.get("LESSONS_SMOKE") == "1"
    out = pathlib.Path(os.environ.get("LESSONS_OUT", root / "runs" / "lessons")) / pathlib.Path(lesson_file).stem
    out.mkdir(parents=True, exist_ok=True)
    return root, smoke, out
