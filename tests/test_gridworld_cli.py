"""`python -m gridworld` with bad input: every flag and the layout file are checked before
any work, and each refusal is one line, `error: ...`, with exit status 2, never a traceback."""

import os
import pathlib
import subprocess
import sys

import pytest

from gridworld.__main__ import main, run_main

ROOT = pathlib.Path(__file__).resolve().parents[1]

BAD_FLAGS = [  # (argv, what the one line must say)
    (["--gamma", "1.5"], "--gamma: expected a number in [0, 1), got '1.5'"),
    (["--gamma", "1"], "--gamma: expected a number in [0, 1)"),
    (["--gamma", "-0.5"], "--gamma: expected a number in [0, 1), got '-0.5'"),
    (["--gamma", "nan"], "--gamma: expected a number in [0, 1), got 'nan'"),
    (["--gamma", "abc"], "--gamma: expected a number in [0, 1), got 'abc'"),
    (["--gamma"], "--gamma: expected one argument"),
    (["--slippery", "1.5"], "--slippery: expected a number in [0, 1], got '1.5'"),
    (["--slippery", "-0.1"], "--slippery: expected a number in [0, 1]"),
    (["--episodes", "0"], "--episodes: expected a whole number in [1, ∞), got '0'"),
    (["--episodes", "2.5"], "--episodes: expected a whole number in [1, ∞), got '2.5'"),
    (["--alpha", "0"], "--alpha: expected a number in (0, 1], got '0'"),
    (["--alpha", "1.5"], "--alpha: expected a number in (0, 1]"),
    (["--epsilon", "-0.1"], "--epsilon: expected a number in [0, 1]"),
    (["--epsilon", "2"], "--epsilon: expected a number in [0, 1]"),
    (["--lr", "0"], "--lr: expected a number in (0, 10]"),
    (["--lr", "inf"], "--lr: expected a number in (0, 10], got 'inf'"),
    (["--beta", "0"], "--beta: expected a number in [0.001, 1000], got '0'"),
    (["--beta", "-1"], "--beta: expected a number in [0.001, 1000]"),
    (["--beta", "1e9"], "--beta: expected a number in [0.001, 1000]"),
    (["--seed", "-1"], "--seed: expected a whole number in [0, 4294967295], got '-1'"),
    (["--seed", "2.5"], "--seed: expected a whole number"),
    (["--max-steps", "0"], "--max-steps: expected a whole number in [1, ∞), got '0'"),
    (["--algorithm", "dqn"], "--algorithm: expected one of value-iteration, "),
    (["--frobnicate"], "unrecognized arguments: --frobnicate: expected the flags"),
]

BAD_LAYOUTS = [  # (file name, its bytes or None for no file, what the one line must say)
    ("nosuch.txt", None, "nosuch.txt: no such file: expected a text map"),
    ("nocat.txt", b".B..\n...M\n", "nocat.txt: expected exactly one cat 'C'"),
    ("twocats.txt", b"CB.C\n...M\n", "twocats.txt: expected exactly one cat 'C' (where the cat "
                                     "starts), found 2: line 1, column 1 (cell (0, 0)); "
                                     "line 1, column 4"),
    ("symbol.txt", b"CB..\n.X.M\n", "symbol.txt: line 2, column 2 (cell (1, 1)): unknown "
                                    "symbol 'X'; expected one of: 'C' cat"),
    ("ragged.txt", b"CB..\n..\n...M\n", "ragged.txt: line 2 has 2 cells, line 1 has 4: "
                                        "expected every row to have the same number"),
    ("unreachable.txt", b"C.T.\n.T..\nT..M\n", "unreachable.txt: no meat 'M' reachable from "
                                                "the cat at line 1, column 1"),
    ("latin1.txt", "CB.\n.ñM\n".encode("latin-1"), "latin1.txt: line 2, column 2: byte 0xf1 "
                                                    "is not UTF-8: expected a text file in UTF-8"),
    ("empty.txt", b"", "empty.txt: the file is empty: expected rows of cells"),
    ("blank.txt", b"\n   \n", "blank.txt: the file is empty"),
    ("huge.txt", b"C" + b"." * 499 + b"M\n", "huge.txt: the map has 1 × 501 = 501 cells: "
                                             "expected at most 400"),
]


def refusal(argv, capsys) -> str:
    """Run the command as `python -m gridworld` does; return its one line on stderr."""
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    captured = capsys.readouterr()
    assert stop.value.code == 2
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == "", "refused before any work: nothing printed on stdout"
    return lines[0]


@pytest.mark.parametrize("argv, message", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_each_bad_flag_is_refused_in_one_line(argv, message, tmp_path, capsys):
    out = tmp_path / "run"
    line = refusal(["--out", str(out), *argv], capsys)
    assert line.startswith("error: " + message), line
    assert not out.exists(), "no run folder for a refused command"


@pytest.mark.parametrize("name, content, message", BAD_LAYOUTS,
                         ids=[name for name, _, _ in BAD_LAYOUTS])
def test_each_bad_layout_is_refused_in_one_line(name, content, message, tmp_path, capsys):
    path, out = tmp_path / name, tmp_path / "run"
    if content is not None:
        path.write_bytes(content)
    line = refusal(["--layout", str(path), "--out", str(out)], capsys)
    assert line.startswith(f"error: --layout {path.parent}"), line   # names the file
    assert message in line, line
    assert not out.exists()


def test_a_folder_as_layout_or_a_file_as_run_folder(tmp_path, capsys):
    line = refusal(["--layout", str(tmp_path), "--out", str(tmp_path / "run")], capsys)
    assert line == f"error: --layout {tmp_path}: is a folder: expected a text file"
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    line = refusal(["--out", str(a_file)], capsys)
    assert line.startswith(f"error: --out {a_file}: cannot make the folder")
    assert line.endswith("expected a folder you can write to")


def test_the_ends_of_every_range_are_accepted(tmp_path, capsys):
    main(["--gamma", "0", "--slippery", "1", "--epsilon", "0", "--alpha", "1", "--lr", "10",
          "--beta", "0.001", "--seed", "4294967295", "--max-steps", "1", "--episodes", "1",
          "--ascii", "--no-figures", "--out", str(tmp_path)])
    assert "V*(start) = 0.0000" in capsys.readouterr().out   # γ = 0: only r_1 counts


def test_the_module_refuses_in_one_line(tmp_path):
    """The real `python -m gridworld` (one run: importing torch takes seconds): exit 2, one
    line on stderr, no traceback, and at once (γ = 1.5 used to run 100,000 sweeps first)."""
    done = subprocess.run([sys.executable, "-m", "gridworld", "--gamma", "1.5", "--out",
                           str(tmp_path / "r")],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines == ["error: --gamma: expected a number in [0, 1), got '1.5'"], done.stderr
    assert not (tmp_path / "r").exists()
