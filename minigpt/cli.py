"""Command-line helpers shared by every command (CleanRL style: one dataclass of settings).

`parser_from_dataclass` turns each field of a configuration dataclass into a flag
(n_layer → --n-layer), with the field's `help` metadata as its help text and its default
shown. Only the flags the user actually typed end up in the parsed namespace, so a
resumed run can tell "asked for" from "default".

`run_main` runs a command's main function and turns an InputError into one line,
`error: ...`, and exit status 2, instead of a traceback; a mistyped flag is one too.
"""

import argparse
import dataclasses
import os
import sys

from minigpt.distributed import StoppedByAnotherRank, finish
from minigpt.errors import InputError


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a mistyped flag or value is an InputError: one line `error: ...` and
    exit status 2 (argparse itself would print the whole usage first)."""

    def error(self, message):
        raise InputError(f"{message} (see {self.prog} --help)")


def parser_from_dataclass(cls, description: str) -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=command_name(cls),
        description=description,
        argument_default=argparse.SUPPRESS,  # only typed flags reach the namespace
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the docstring's layout
    )
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "") + f" (default: {field.default!r})"
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            kind = {"int": int, "float": float, "str": str}.get(field.type, field.type)
            choices = field.metadata.get("choices")
            parser.add_argument(flag, type=kind, choices=choices, help=help_text,
                                metavar=None if choices else field.name.upper())
    return parser


def check_ranges(config, at_least_one=(), not_negative=()):
    """A one-line InputError for the first setting below its allowed range, named as its flag."""
    for names, low, words in ((at_least_one, 1, "must be at least 1"),
                              (not_negative, 0, "must not be negative")):
        for name in names:
            if getattr(config, name) < low:
                raise InputError(f"--{name.replace('_', '-')} {words}, got {getattr(config, name)}")


def command_name(cls) -> str:
    """'python -m align.sft' for the dataclass of align/sft.py, also when it runs as __main__."""
    module = cls.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else os.path.basename(sys.argv[0])
    return f"python -m {module}"


def show_progress(progress: bool = True) -> bool:
    """Draw progress bars only where someone watches them: when asked (--progress) and
    standard error is a terminal or a notebook. A log piped to a file gets the one line per evaluation
    that each command prints, not thousands of redrawn bars."""
    return progress and (sys.stderr.isatty() or "ipykernel" in sys.modules)  # a notebook draws them too


def given_flags(namespace: argparse.Namespace) -> dict:
    """The flags the user typed, as {field_name: value}."""
    return vars(namespace).copy()


def run_main(main, argv=None, resume_hint: str = ""):
    """Run main(argv); report an InputError as one line and exit with status 2.

    resume_hint: what to type to continue after Ctrl-C ("rerun the same command", "add
    --resume"), printed with the word "interrupted".

    Under torchrun, bad input that one rank found is reported by rank 0 alone (see
    minigpt.distributed.Ranks.together); every rank leaves the process group at the end."""
    try:
        return main(argv)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except StoppedByAnotherRank:
        sys.exit(2)
    except KeyboardInterrupt:
        typed = sys.argv[1:] if argv is None else argv
        if resume_hint and "--overwrite" in typed:  # rerun as typed, it would start afresh
            resume_hint += ", without --overwrite"
        print("interrupted" + (f": {resume_hint}" if resume_hint else ""), file=sys.stderr)
        sys.exit(130)
    finally:
        finish()
