"""Imports go one way: gridworld and toyworld alone, minigpt on toyworld only, align on top."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("minigpt", "align", "gridworld", "toyworld", "exercises", "lessons")
# package -> the project packages it may import
ALLOWED = {"gridworld": set(), "toyworld": set(), "minigpt": {"toyworld"},
           "align": {"minigpt", "toyworld"}}


def project_imports(path: pathlib.Path) -> set[str]:
    """The project packages a file imports, top-level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PACKAGES)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_go_one_way(package):
    for path in sorted((ROOT / package).rglob("*.py")):
        wrong = project_imports(path) - ALLOWED[package] - {package}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from align.world import x\n    import gridworld.env\n")
    assert project_imports(path) == {"align", "gridworld"}
