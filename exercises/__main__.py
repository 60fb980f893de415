"""python -m exercises: list, grade and use the exercises.

    python -m exercises list                                  # the exercises and their files
    python -m exercises grade causal_attention                # grade one (or several, or all)
    python -m exercises run --student causal_attention -- lessons/02_attention_and_generation.py
    python -m exercises run --student dpo_loss -- -m align.pipeline --quick
    python -m exercises student-copy ../course                # the project without its solutions
"""

import argparse
import importlib.util
import os
import runpy
import sys
import warnings
from pathlib import Path

from exercises.grading import grade, where_in
from exercises.registry import EXERCISES, PROJECT_ROOT, STUDENT_DIR_VARIABLE, find, load_checks
from exercises.switch import use_versions
from minigpt.cli import run_main
from minigpt.errors import InputError


def relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def reread(places) -> str:
    """'lessons/NN.py, section "A"; lessons/MM.py, sections "B", "C"' for (lesson, section) pairs."""
    by_lesson = {}
    for lesson, section in places:
        by_lesson.setdefault(lesson, [])
        if section not in by_lesson[lesson]:
            by_lesson[lesson].append(section)
    parts = []
    for lesson, sections in by_lesson.items():
        text = (PROJECT_ROOT / lesson).read_text(encoding="utf-8")
        sections.sort(key=lambda section: text.find(f"# ## {section}"))  # in the lesson's order
        parts.append(f"{relative(PROJECT_ROOT / lesson)}, section{'s' if len(sections) > 1 else ''} "
                     + ", ".join(f'"{s}"' for s in sections))
    return "; ".join(parts)


def print_report(exercise, report) -> None:
    """The feedback: one line for an untouched stub, else one line per check and what to reread."""
    student_file = relative(exercise.student_file)
    if report.untouched:
        print(f"{exercise.name}: not implemented yet ({student_file} raises NotImplementedError); "
              f"start with {reread([(exercise.lesson, exercise.section)])}")
        return
    print(f"{exercise.name}: {exercise.title}  ({student_file})")
    marks = {"passed": "ok  ", "failed": "FAIL", "todo": "TODO"}
    for result in report.results:
        print(f"  {marks[result.status]} {result.check.kind:<8} {result.check.description}")
        if result.status == "failed":
            for line in result.message.splitlines():
                print(f"       {'':<8} {line}")
        elif result.status == "todo":
            print(f"       {'':<8} not implemented yet: {result.message}")
    total = len(report.results)
    if report.passed:
        print(f"  all {total} checks passed.")
        return
    places = [(r.check.lesson or exercise.lesson, r.check.section or exercise.section) for r in report.not_passed]
    passed = total - len(report.not_passed)
    print(f"  {passed} of {total} checks passed; reread {reread(places)}.")


def load_student_function(exercise):
    """The student's function, or an InputError in one line (no file, a syntax error, ...)."""
    try:
        return exercise.student_function()
    except InputError:
        raise
    except Exception as error:  # a syntax error, or an import that fails, in the student's file
        raise InputError(f"cannot load {relative(exercise.student_file)}: {type(error).__name__}: {error}"
                         f"{where_in(error, [exercise.student_file])}") from None


def grade_command(args) -> int:
    names = list(EXERCISES) if args.names == ["all"] else args.names
    for name in names:
        find(name)  # unknown names fail before any grading
    load_checks()
    all_passed = True
    for name in names:
        exercise = EXERCISES[name]
        try:
            function = load_student_function(exercise)
        except InputError as error:
            print(f"{name}: {error}")
            all_passed = False
            continue
        report = grade(name, function, [exercise.student_file])
        print_report(exercise, report)
        all_passed &= report.passed
    return 0 if all_passed else 1


def list_command(args) -> int:
    print(f"{'exercise':<20} {'lesson to read first':<44} what it is")
    for exercise in EXERCISES.values():
        print(f"{exercise.name:<20} {exercise.lesson:<44} {exercise.title}")
    print("\nEdit exercises/student/<exercise>.py, then: python -m exercises grade <exercise>")
    return 0


def check_module(name: str) -> None:
    """A one-line InputError unless `python -m name` could run name: a module, or a package
    with a __main__.py."""
    try:
        spec = importlib.util.find_spec(name)
        runs = spec is not None and (spec.submodule_search_locations is None  # a module, not a package
                                     or importlib.util.find_spec(f"{name}.__main__") is not None)
    except (ImportError, ValueError):  # a parent package that does not exist, or an empty name
        spec, runs = None, False
    if spec is None:
        raise InputError(f"-m {name}: no such module (e.g. -m minigpt.train, -m align.pipeline, -m gridworld)")
    if not runs:
        raise InputError(f"-m {name}: a package with no __main__.py; give one of its modules, -m {name}.MODULE")


def run_command(args) -> int:
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if not target:
        raise InputError("run needs a target after --: a lesson file, or -m and a module")
    if target[0] == "-m":  # the target is checked before any grading, which takes a while
        if len(target) < 2:
            raise InputError("-m needs a module name, e.g. -m minigpt.train")
        check_module(target[1])
    elif not Path(target[0]).is_file():
        raise InputError(f"{target[0]}: no such file (give a lesson file, or -m and a module)")
    names = [n.strip() for n in args.student.split(",") if n.strip()]
    names = list(EXERCISES) if names == ["all"] else names
    if not names:
        raise InputError(f"--student needs exercise names (comma-separated) or all: {', '.join(EXERCISES)}")
    load_checks()
    functions = {}
    for name in names:
        exercise = find(name)
        functions[name] = load_student_function(exercise)
        report = grade(name, functions[name], [exercise.student_file])
        if report.untouched:  # a stub would fail deep inside the run; say so now, in one line
            raise InputError(f"{name} is not implemented yet: edit {relative(exercise.student_file)} "
                             f"(python -m exercises grade {name})")
        # A wrong version still runs: seeing what it does is part of the exercise.
        passed = sum(r.passed for r in report.results)
        print(f"[exercises] your {name} ({relative(exercise.student_file)}, passes {passed} of "
              f"{len(report.results)} checks) is in use: {exercise.used_by}", file=sys.stderr)
    use_versions(functions)
    if target[0] == "-m":
        sys.argv = [target[1]] + target[2:]
        # The switch imported the modules that define the references (minigpt.train among
        # them, through align). Running one of them as __main__ executes a fresh copy, which
        # runpy warns about; the fresh copy imports the switched functions all the same.
        warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                                category=RuntimeWarning)
        runpy.run_module(target[1], run_name="__main__", alter_sys=True)
    else:
        script = Path(target[0])
        sys.argv = target
        sys.path.insert(0, str(script.resolve().parent))  # as `python script.py` does
        runpy.run_path(str(script), run_name="__main__")
    return 0


def student_copy_command(args) -> int:
    from exercises.student_copy import make_student_copy
    made, notes = make_student_copy(Path(args.destination), root=PROJECT_ROOT)
    for note in notes:  # files left out of the copy, and why
        print(f"warning: {note}", file=sys.stderr)
    print(f"wrote a student copy to {args.destination}: {made} solution blocks replaced by calls to "
          f"exercises/student/*.py (see STUDENT_COPY.md there)")
    return 0


def add_student_dir(parser):
    parser.add_argument("--student-dir", metavar="FOLDER",
                        help="read the student's files from FOLDER instead of exercises/student "
                             "(an instructor grading a submission)")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake on the command line is an InputError: one line, `error: ...`, exit 2."""

    def error(self, message):
        raise InputError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m exercises",
        description="Exercises: rewrite a function of the project in exercises/student/, grade it "
                    "with the reference's checks, then run the lessons and training with it.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the exercises, their files and lessons",
                        description="List the exercises.").set_defaults(handler=list_command)
    grade_parser = commands.add_parser(
        "grade", help="grade exercises/student/<name>.py",
        description="Run the reference's checks against your version and say what failed and what to reread.")
    grade_parser.add_argument("names", nargs="+", metavar="NAME",
                              help=f"exercise names, or all: {', '.join(EXERCISES)}")
    grade_parser.set_defaults(handler=grade_command)
    add_student_dir(grade_parser)
    run_parser = commands.add_parser(
        "run", help="run a lesson or a command with your versions swapped in",
        description="Swap your versions into the project, then run a lesson file or `-m module args`.",
        epilog="examples: run --student causal_attention -- lessons/02_attention_and_generation.py\n"
               "          run --student causal_attention,dpo_loss -- -m align.pipeline --quick",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run_parser.add_argument("--student", required=True, metavar="NAMES",
                            help="comma-separated exercise names, or all")
    run_parser.add_argument("target", nargs=argparse.REMAINDER,
                            help="after --: a lesson file and its arguments, or -m module and its arguments")
    run_parser.set_defaults(handler=run_command)
    add_student_dir(run_parser)
    copy_parser = commands.add_parser(
        "student-copy", help="copy the project without the solutions",
        description="Copy the project to DESTINATION with every marked solution block replaced by a call "
                    "to the student's file, so the copy runs on the students' code.")
    copy_parser.add_argument("destination", help="a folder that does not exist yet (or is empty)")
    copy_parser.set_defaults(handler=student_copy_command)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "student_dir", None):
        if not Path(args.student_dir).is_dir():
            raise InputError(f"--student-dir {args.student_dir}: no such folder")
        os.environ[STUDENT_DIR_VARIABLE] = str(Path(args.student_dir).resolve())  # children see it too
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(run_main(main))
