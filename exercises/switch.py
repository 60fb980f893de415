"""The switch: run the project's code with a student's version of a function.

`use_versions({"causal_attention": f})` puts f, the student's function from
exercises/student/causal_attention.py, in place of minigpt.model.causal_attention: in the
module that defines it and in every project module that imported it by name. Everything imported afterwards sees the
student's version too, since Python looks names up in the defining module at import time.
So a GPT built after the switch attends with the student's attention, `align.dpo` trains
with the student's DPO loss, and a lesson shows what the student's code does.

`swapped(exercise, function)` does the same for one function inside a `with` block and
puts the reference back afterwards (the graders use it to test a function in the model).
"""

import sys
from contextlib import contextmanager

from exercises.registry import find
from minigpt import swaps

PROJECT_PACKAGES = ("minigpt", "align", "gridworld", "toyworld")
SCRIPTS = ("__main__", "lesson_setup")  # a lesson or command being run, and the lessons' helper


def _project_modules():
    for name, module in list(sys.modules.items()):
        if module is not None and (name in SCRIPTS or name.split(".")[0] in PROJECT_PACKAGES):
            yield module


def replace_everywhere(old, new) -> int:
    """Rebind every project-module name bound to old so it is bound to new; return how many."""
    count = 0
    for module in _project_modules():
        for attribute, value in list(vars(module).items()):
            if value is old:
                setattr(module, attribute, new)
                count += 1
    return count


@contextmanager
def swapped(exercise_name: str, function):
    """Inside the block, the project runs `function` wherever it ran the exercise's reference."""
    reference = find(exercise_name).reference_function()
    replace_everywhere(reference, function)
    swaps.record(exercise_name, function)
    try:
        yield
    finally:
        replace_everywhere(function, reference)
        swaps.forget(exercise_name)


def use_versions(functions: dict) -> None:
    """Swap in {exercise name: function} for the rest of this process."""
    for name, function in functions.items():
        replace_everywhere(find(name).reference_function(), function)
        swaps.record(name, function)  # so that run folders can say whose code ran
