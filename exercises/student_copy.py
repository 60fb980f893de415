"""Make a student copy of the project: the same files, with the solutions taken out.

In the reference, the body of each exercise's function sits between two marker lines:

    # >>> solution causal_attention
    ...the reference's code...
    # <<< solution

The copy replaces each such block by a call to the student's file, so the copy's model,
trainers and lessons run the students' code everywhere (no switch needed), and its tests
and graders say what is still missing:

    from exercises.student.causal_attention import causal_attention as student_version
    return student_version(q, k, v, allowed, dropout)

Only the files git tracks or does not ignore are copied (no runs/, no virtual environment). A marker line
inside a string literal would count as a marker too: keep them out of strings. Imports that
only the solution used stay, unused. A STUDENT_COPY.md at the copy's root says what was
done, and the test suite reads it to skip the checks that grade the reference itself.
"""

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

from exercises.registry import EXERCISES, PROJECT_ROOT
from minigpt.errors import InputError

START = re.compile(r"^(?P<indent>\s*)# >>> solution (?P<name>\w+)\s*$")
END = re.compile(r"^\s*# <<< solution\s*$")
MARKER_FILE = "STUDENT_COPY.md"


SKIPPED_FOLDERS = {"runs", "__pycache__", "venv"}  # and hidden folders but .ci and .github


def tracked_files(root: Path) -> list[Path]:
    """The project's files (relative paths): those git tracks or would track (untracked but not
    ignored, such as a new exercise not committed yet), or, outside a git checkout (an
    unpacked archive), every file but run outputs, caches and virtual environments."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, capture_output=True, check=True).stdout
        names = sorted(set(p for p in listed.decode().split("\0") if p))
        return [Path(p) for p in names if (Path(root) / p).is_file()]  # not the deleted ones
    except (OSError, subprocess.CalledProcessError):
        pass
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if d not in SKIPPED_FOLDERS and (not d.startswith(".") or d in (".ci", ".github"))
            and not (Path(folder) / d / "pyvenv.cfg").exists())
        files += [Path(folder, name).relative_to(root) for name in sorted(names) if not name.endswith(".pyc")]
    return files


def enclosing_function(tree: ast.Module, line_number: int):
    """The innermost function definition around line_number, or None."""
    around = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              and node.lineno <= line_number <= node.end_lineno]
    return max(around, key=lambda node: node.lineno, default=None)


def call_of(function: ast.FunctionDef) -> str:
    """`(a, b, *args, c=c, **kwargs)`: the arguments that pass on function's parameters."""
    arguments = function.args
    passed = [a.arg for a in arguments.posonlyargs + arguments.args]
    if arguments.vararg:
        passed.append(f"*{arguments.vararg.arg}")
    passed += [f"{a.arg}={a.arg}" for a in arguments.kwonlyargs]
    if arguments.kwarg:
        passed.append(f"**{arguments.kwarg.arg}")
    return f"({', '.join(passed)})"


def strip_solutions(source: str, where: str) -> tuple[str, list[str]]:
    """source with every solution block replaced by a call to the student's version.

    A block must be the end of the function named like its exercise: the call returns
    what the student's function returns, so nothing may follow it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise InputError(f"{where}, line {error.lineno}: not valid Python: {error.msg}") from None
    lines = source.splitlines(keepends=True)
    out, names, index = [], [], 0
    while index < len(lines):
        start = START.match(lines[index])
        if not start:
            out.append(lines[index])
            index += 1
            continue
        name, indent = start["name"], start["indent"]
        place = f"{where}, line {index + 1}"
        if name not in EXERCISES:
            raise InputError(f"{place}: solution block for unknown exercise {name!r}")
        end = next((j for j in range(index + 1, len(lines)) if END.match(lines[j])), None)
        if end is None:
            raise InputError(f"{place}: solution block {name!r} has no '# <<< solution' line")
        function = enclosing_function(tree, index + 1)
        if function is None or function.name != name:
            raise InputError(f"{place}: solution block {name!r} is not inside a function called {name}")
        if function.end_lineno > end + 1 and any(line.strip() for line in lines[end + 1 : function.end_lineno]):
            raise InputError(f"{place}: solution block {name!r} must end its function; code follows it")
        out += [f"{indent}# Student copy: this runs your version, exercises/student/{name}.py\n",
                f"{indent}from exercises.student.{name} import {name} as student_version\n",
                f"{indent}return student_version{call_of(function)}\n"]
        names.append(name)
        index = end + 1
    return "".join(out), names


def make_student_copy(destination: Path, root: Path = PROJECT_ROOT) -> int:
    """Copy the project to destination without its solutions; return how many blocks were replaced."""
    destination = Path(destination)
    if destination.exists() and any(destination.iterdir()):
        raise InputError(f"{destination}: exists and is not empty; give a new folder")
    if destination.resolve().is_relative_to(Path(root).resolve()):
        raise InputError(f"{destination}: is inside the project; give a folder outside it")
    stripped, replaced = {}, []  # every file is checked before anything is written
    files = tracked_files(root)
    for relative_path in files:
        if relative_path.suffix == ".py" and relative_path.parts[0] in ("minigpt", "align", "gridworld", "toyworld"):
            text = (Path(root) / relative_path).read_text(encoding="utf-8")
            stripped[relative_path], names = strip_solutions(text, str(relative_path))
            replaced += names
    missing = sorted(set(EXERCISES) - set(replaced))
    if missing:
        raise InputError(f"no solution block found for {', '.join(missing)}; no copy was made")
    for relative_path in files:
        target = destination / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative_path in stripped:
            target.write_text(stripped[relative_path], encoding="utf-8")
        else:
            shutil.copy2(Path(root) / relative_path, target)
    (destination / MARKER_FILE).write_text(
        "# Student copy\n\nMade by `python -m exercises student-copy`. The reference code of these functions "
        "was replaced by calls to your files in `exercises/student/`:\n\n"
        + "".join(f"- `{e.reference}` → `exercises/student/{e.name}.py`\n" for e in EXERCISES.values())
        + "\nUntil you write them, the lessons and tests that use them stop with NotImplementedError. "
          "Grade one with `python -m exercises grade NAME`.\n", encoding="utf-8")
    return len(replaced)
