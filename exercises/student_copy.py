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

Which files the copy takes:

- In a git checkout, the files git tracks. Untracked files (a pairs.jsonl you generated, your
  notes) are left out, and a warning names a few of them. exercises/student/ is taken as
  committed (`git show HEAD:exercises/student/NAME.py`), never from the working tree, where an
  instructor may have solved the stubs to try them; a warning says so when they differ.
- Outside a git checkout (an unpacked archive), every file but run outputs, caches and
  virtual environments, and a warning says that untracked files could not be told apart.
Either way each exercise's file must still be a stub (its function only raises
NotImplementedError): a solved one stops the copy in one line, before anything is written.

A marker line inside a string literal would count as a marker too: keep them out of strings.
Imports that only the solution used stay, unused. A STUDENT_COPY.md at the copy's root says
what was done and how students test their work; the test suite reads it to skip the checks
that grade the reference itself, and to report a test that reaches an unwritten exercise as
skipped. The copy's README.md starts with a short note that points to it.
"""

import ast
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

from exercises.registry import EXERCISES, PROJECT_ROOT
from minigpt.errors import InputError
from minigpt.swaps import STUDENT_COPY_MARKER

START = re.compile(r"^(?P<indent>\s*)# >>> solution (?P<name>\w+)\s*$")
END = re.compile(r"^\s*# <<< solution\s*$")
MARKER_FILE = STUDENT_COPY_MARKER  # minigpt.swaps reads it too: a student copy runs manual attention
STUDENT_FOLDER = Path("exercises", "student")  # its .py files are handed out as committed: the stubs
SKIPPED_FOLDERS = {"runs", "__pycache__", "venv"}  # and hidden folders but .ci and .github


def is_student_file(path: Path) -> bool:
    """exercises/student/*.py: a stub to hand out (or the folder's __init__.py)."""
    return path.parent == STUDENT_FOLDER and path.suffix == ".py"


def git(root: Path, *args: str) -> str:
    """What `git args` prints, run in root. Raises OSError without git, CalledProcessError on failure."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, check=True).stdout.decode("utf-8")


def git_listing(root: Path) -> tuple[list[Path], list[Path]] | None:
    """(the files git tracks, the untracked files it does not ignore), as relative paths; None
    outside a git checkout or without git. Tracked files deleted from the working tree are left out."""
    def listed(*options):
        return sorted(Path(p) for p in set(git(root, "ls-files", "-z", *options).split("\0")) if p)

    try:
        tracked, untracked = listed("--cached"), listed("--others", "--exclude-standard")
    except OSError:
        return None  # no git on this machine
    except subprocess.CalledProcessError as error:
        message = error.stderr.decode("utf-8", "replace").strip()
        if "not a git repository" in message:
            return None
        raise InputError(f"git ls-files failed in {root}: {message.splitlines()[0] if message else error}") from None
    return [p for p in tracked if (Path(root) / p).is_file()], untracked


def folder_files(root: Path) -> list[Path]:
    """Every file under root (relative paths) but run outputs, caches and virtual environments:
    what the copy takes outside a git checkout."""
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if d not in SKIPPED_FOLDERS and (not d.startswith(".") or d in (".ci", ".github"))
            and not (Path(folder) / d / "pyvenv.cfg").exists())
        files += [Path(folder, name).relative_to(root) for name in sorted(names) if not name.endswith(".pyc")]
    return files


def check_stub(text: str, name: str, where: str) -> None:
    """An InputError unless text defines the function `name` as a stub: a docstring, then
    `raise NotImplementedError(...)`, and nothing else."""
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise InputError(f"{where}, line {error.lineno}: not valid Python: {error.msg}") from None
    function = next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name), None)
    if function is None:
        raise InputError(f"{where}: defines no function called {name}")
    body = function.body[1:] if ast.get_docstring(function) is not None else function.body
    raised = body[0].exc if len(body) == 1 and isinstance(body[0], ast.Raise) else None
    if isinstance(raised, ast.Call):
        raised = raised.func
    if not (isinstance(raised, ast.Name) and raised.id == "NotImplementedError"):
        raise InputError(f"{where}: {name} is solved, not a stub (its body should be its docstring and "
                         f"`raise NotImplementedError(...)`); put the stub back: no copy was made")


def student_files(root: Path, in_git: bool) -> tuple[dict[Path, str], list[Path]]:
    """exercises/student/*.py as the copy hands them out, {relative path: text}, and the files
    whose working-tree text differs from that (an instructor's edits, left out of the copy).

    In a git checkout the files are read as committed (HEAD); outside one, from the folder.
    Each exercise's file must be there and be a stub.
    """
    if in_git:
        try:
            listed = git(root, "ls-tree", "-z", "--name-only", "HEAD", "--", f"{STUDENT_FOLDER.as_posix()}/")
        except subprocess.CalledProcessError:
            raise InputError(f"{root}: no commit yet; commit the project first (the copy hands out "
                             f"{STUDENT_FOLDER} as committed)") from None
        paths = sorted(Path(p) for p in listed.split("\0") if p and is_student_file(Path(p)))
        texts = {path: git(root, "show", f"HEAD:./{path.as_posix()}") for path in paths}
    else:
        paths = [p for p in folder_files(root) if is_student_file(p)]
        texts = {path: (Path(root) / path).read_text(encoding="utf-8") for path in paths}
    where = "in the last commit (HEAD)" if in_git else "in this folder"
    for name in EXERCISES:
        path = STUDENT_FOLDER / f"{name}.py"
        if path not in texts:
            raise InputError(f"{path}: not {where}; it should hold the stub of {name}")
        check_stub(texts[path], name, f"{path} {where}")
    edited = []
    for path in paths:
        here = Path(root) / path
        if not here.is_file() or here.read_text(encoding="utf-8", errors="replace") != texts[path]:
            edited.append(path)
    return texts, edited


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


def some_of(paths: list[Path], shown: int = 5) -> str:
    """'a, b, c and 4 more': a few of paths, for a one-line warning."""
    names = ", ".join(p.as_posix() for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


HOW_STUDENTS_TEST = (
    "Test your work with `python -m exercises grade all` (or `grade NAME`): one line per check, and "
    "the lesson section to reread. `python -m pytest` tests the whole project, which here runs on "
    "your code. A test that reaches a function you have not written yet is reported as skipped, "
    "\"exercise NAME not implemented yet\", and the summary at the end counts those skips for each "
    "exercise. Most of the suite waits on an exercise: the model, generation, log-probs, losses, "
    "alignment stages and pipeline, the gridworld's planning and learning, and the lessons. Tests "
    "of the parts no exercise touches pass from the start. See exercises/README.md, \"Test your work\".")


def marker_text() -> str:
    """STUDENT_COPY.md: what was replaced, and how students test their work."""
    return ("# Student copy\n\nMade by `python -m exercises student-copy`. The reference code of these "
            "functions was replaced by calls to your files in `exercises/student/`:\n\n"
            + "".join(f"- `{e.reference}` → `exercises/student/{e.name}.py`\n" for e in EXERCISES.values())
            + f"\n## Test your work\n\n{textwrap.fill(HOW_STUDENTS_TEST, width=90)}\n")


def readme_note() -> str:
    """The lines put at the top of the copy's README.md: a quoted paragraph."""
    note = (f"**Student copy.** {len(EXERCISES)} functions of this project are yours to write, in "
            f"`exercises/student/` (start with `exercises/README.md`; `{MARKER_FILE}` lists them). "
            f"{HOW_STUDENTS_TEST}")
    return textwrap.fill(note, width=90, initial_indent="> ", subsequent_indent="> ") + "\n\n"


def make_student_copy(destination: Path, root: Path = PROJECT_ROOT) -> tuple[int, list[str]]:
    """Copy the project to destination without its solutions.

    Returns how many solution blocks were replaced, and warnings for the command to print:
    which files were left out, and why. Every file is read and checked before anything is written.
    """
    destination, root = Path(destination), Path(root)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise InputError(f"{destination}: exists and is not an empty folder; give a new folder")
    if destination.resolve().is_relative_to(root.resolve()):
        raise InputError(f"{destination}: is inside the project; give a folder outside it")
    warnings = []
    listing = git_listing(root)
    if listing is None:
        files, untracked = folder_files(root), []
        warnings.append(f"{root} is not a git checkout (or git is missing): copied every file but runs/, "
                        f"caches and virtual environments, so check the copy for files of yours; "
                        f"{STUDENT_FOLDER}/ was checked to hold the stubs")
    else:
        files, untracked = listing
    stubs, edited = student_files(root, in_git=listing is not None)
    files = [p for p in files if not is_student_file(p)]  # those come from stubs, as committed
    if untracked:
        warnings.append(f"left out {len(untracked)} untracked file{'s' if len(untracked) > 1 else ''} "
                        f"(the copy takes what git tracks): {some_of(untracked)}")
    if edited:
        warnings.append(f"copied {STUDENT_FOLDER}/ as committed, without this working tree's changes to "
                        f"{some_of(edited)}")
    new_text, replaced = {}, []  # relative path -> what the copy holds instead of the project's text
    for relative_path in files:
        if relative_path.suffix == ".py" and relative_path.parts[0] in ("minigpt", "align", "gridworld", "toyworld"):
            text = (root / relative_path).read_text(encoding="utf-8")
            new_text[relative_path], names = strip_solutions(text, str(relative_path))
            replaced += names
    missing = sorted(set(EXERCISES) - set(replaced))
    if missing:
        raise InputError(f"no solution block found for {', '.join(missing)}; no copy was made")
    if Path("README.md") in files:
        new_text[Path("README.md")] = readme_note() + (root / "README.md").read_text(encoding="utf-8")
    new_text.update(stubs)
    for relative_path in files + sorted(stubs):
        target = destination / relative_path
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative_path in new_text:
            target.write_text(new_text[relative_path], encoding="utf-8")
        else:
            shutil.copy2(root / relative_path, target)
    (destination / MARKER_FILE).write_text(marker_text(), encoding="utf-8")
    return len(replaced), warnings
