"""lessons/lesson_setup.py: what every lesson does first.

- token_label: how the lessons' figures show one token, for the three tokenizer kinds. A
  byte, or a BPE token, that is only part of a UTF-8 character must show its bytes (\\xNN),
  never U+FFFD, which decode gives and which hides which bytes they are.
- lesson_paths run as a script: the prose printed before each cell's output, each cell run
  once, a traceback at the lesson's own line, the exit status kept; elsewhere (imported, a
  notebook's kernel) it only returns the paths.
- where lessons write: only under runs/lessons (or LESSONS_OUT); a user's own pipeline run
  or frontier is read when it is finished, and never changed.
"""

import json
import os
import pathlib
import subprocess
import sys
import types

import pytest

from minigpt.tokenizer import BPETokenizer, ByteTokenizer, CharTokenizer

LESSONS = pathlib.Path(__file__).resolve().parents[1] / "lessons"
sys.path.insert(0, str(LESSONS))
import lesson_setup  # noqa: E402
from lesson_setup import token_label  # noqa: E402

ACCENTS_AND_EMOJI = "¿Qué tal, niño? Él está en el año 2024 😺😺 y el café cuesta 3 € " * 20


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_char_tokenizer_labels():
    tok = CharTokenizer.from_text("ab é\n\t")
    assert token_label(tok, tok.encode("a")[0]) == "a"
    assert token_label(tok, tok.encode("é")[0]) == "é"  # a whole character, shown as itself
    assert token_label(tok, tok.encode(" ")[0]) == "␣"
    assert token_label(tok, tok.encode("\n")[0]) == "\\n"
    assert token_label(tok, tok.encode("\t")[0]) == "\\t"
    assert [token_label(tok, i) for i in (tok.eos_id, tok.bos_id, tok.pad_id)] == \
        ["EOS", "BOS", "PAD"]


def test_byte_tokenizer_labels():
    tok = ByteTokenizer()
    assert token_label(tok, ord("a")) == "a"
    assert token_label(tok, ord(" ")) == "␣"
    assert token_label(tok, ord("\n")) == "\\n"
    first, second = "é".encode("utf-8")  # 0xc3 0xa9: neither is a character alone
    assert token_label(tok, first) == "\\xc3"
    assert token_label(tok, second) == "\\xa9"
    assert [token_label(tok, i) for i in (tok.eos_id, tok.bos_id, tok.pad_id)] == \
        ["EOS", "BOS", "PAD"]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.train(ACCENTS_AND_EMOJI, vocab_size=300, progress=False)


def test_bpe_partial_tokens_show_their_bytes(bpe):
    partial = [i for i in range(256, bpe.first_special_id) if not is_utf8(bpe.token_bytes(i))]
    assert partial, "the corpus should give merges that end or start inside a character"
    for i in partial:
        data = bpe.token_bytes(i)
        assert "\ufffd" in bpe.decode([i])  # what the old label showed
        label = token_label(bpe, i)
        assert "\ufffd" not in label
        # independent of the code: printable ASCII as itself, every other byte as \xNN
        # (these tokens hold no complete multi-byte character)
        expected = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in data)
        assert label == expected, (data, label)


def test_bpe_labels_of_known_tokens(bpe):
    # the emoji's last three bytes were merged into one token, of no character on its own
    tail = "😺".encode("utf-8")[1:]  # b"\x9f\x98\xba"
    assert tail in {bpe.token_bytes(i) for i in range(bpe.first_special_id)}
    tail_id = next(i for i in range(bpe.first_special_id) if bpe.token_bytes(i) == tail)
    assert token_label(bpe, tail_id) == "\\x9f\\x98\\xba"
    # a raw byte of the BPE vocabulary (ids 0-255 are the byte values here)
    assert token_label(bpe, 0xc3) == "\\xc3"
    # complete tokens keep their text: a letter, a space, an accented letter, the emoji
    for text, label in (("a", "a"), (" ", "␣"), ("é", "é"), ("😺", "😺")):
        ids = bpe.encode(text)
        assert len(ids) == 1 and token_label(bpe, ids[0]) == label
    whole = [i for i in range(256, bpe.first_special_id)
             if is_utf8(bpe.token_bytes(i)) and bpe.token_bytes(i).decode().isprintable()]
    assert whole and all(token_label(bpe, i) == bpe.decode([i]) for i in whole)
    assert [token_label(bpe, i) for i in (bpe.eos_id, bpe.bos_id, bpe.pad_id)] == \
        ["EOS", "BOS", "PAD"]


# ------------------------------------------------------------ a lesson run as a script
FAKE_LESSON = '''# %% [markdown]
# # A lesson
#
#     an indented formula stays indented

# %%
from lesson_setup import lesson_paths

ROOT, SMOKE, OUT = lesson_paths(__file__)
print("first cell", SMOKE, OUT.name)

# %% [markdown]
# ## Second cell
# says what comes next.

# %%
print("second cell")
'''
FAILING_CELL = '''
# %% [markdown]
# ## A cell that fails

# %%
def divide():
    return 1 / 0


divide()
print("never printed")
'''


def fake_lesson(tmp_path, text, name="99_fake.py") -> pathlib.Path:
    """A lesson file in a project of its own, tmp_path/project/lessons/NAME."""
    path = tmp_path / "project" / "lessons" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_script(path, tmp_path, **env):
    """`python path`, as a student runs a lesson, with lesson_setup importable."""
    env = {**os.environ, "PYTHONPATH": str(LESSONS), "LESSONS_OUT": str(tmp_path / "out"),
           "LESSONS_QUIET": "", **env}
    return subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_script_prints_each_markdown_cell_before_the_code_after_it(tmp_path):
    path = fake_lesson(tmp_path, FAKE_LESSON)
    shown = run_script(path, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert lines(shown.stdout) == ["# A lesson", "    an indented formula stays indented",
                                   "first cell False 99_fake", "## Second cell",
                                   "says what comes next.", "second cell"]  # each cell once
    quiet = run_script(path, tmp_path, LESSONS_QUIET="1")
    assert quiet.returncode == 0, quiet.stderr
    assert lines(quiet.stdout) == ["first cell False 99_fake", "second cell"]


def test_an_error_in_a_cell_shows_the_lessons_line_and_exits_with_1(tmp_path):
    path = fake_lesson(tmp_path, FAKE_LESSON + FAILING_CELL)
    result = run_script(path, tmp_path)
    assert result.returncode == 1
    numbered = path.read_text(encoding="utf-8").splitlines()
    for code in ("divide()", "return 1 / 0"):
        line = next(i for i, text in enumerate(numbered, start=1) if text.strip() == code)
        assert f'File "{path}", line {line}' in result.stderr, result.stderr
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert lines(result.stdout)[-2:] == ["second cell", "## A cell that fails"]


def test_a_cells_own_exit_status_is_kept(tmp_path):
    exits = "\n# %%\nimport sys\nsys.exit(3)\n\n# %%\nprint('after')\n"
    path = fake_lesson(tmp_path, FAKE_LESSON + exits)
    result = run_script(path, tmp_path, LESSONS_QUIET="1")
    assert result.returncode == 3 and "after" not in result.stdout


def test_imported_or_in_a_notebook_lesson_paths_only_returns_the_paths(tmp_path, monkeypatch,
                                                                       capsys):
    path = fake_lesson(tmp_path, FAKE_LESSON)
    monkeypatch.setenv("LESSONS_OUT", str(tmp_path / "out"))
    expected = (tmp_path / "project", False, tmp_path / "out" / "99_fake")
    monkeypatch.delenv("LESSONS_SMOKE", raising=False)
    assert lesson_setup.lesson_paths(str(path)) == expected  # here __main__ is pytest
    # a notebook's kernel (Jupyter, VS Code): __main__ is its namespace, which may hold the
    # lesson's __file__, and the program is the kernel
    kernel = types.ModuleType("__main__")
    kernel.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "__main__", kernel)
    monkeypatch.setattr(sys, "argv", ["/venv/lib/ipykernel_launcher.py", "-f", "kernel.json"])
    assert lesson_setup.lesson_paths(str(path)) == expected
    del kernel.__file__
    assert lesson_setup.lesson_paths(str(path)) == expected
    assert capsys.readouterr().out == ""  # no cell was run


REAL_LESSONS = sorted(LESSONS.glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("lesson", REAL_LESSONS, ids=[path.stem for path in REAL_LESSONS])
def test_every_lesson_has_prose_cells_of_comment_lines_and_calls_lesson_paths_first(lesson):
    cells = lesson_setup.read_cells(str(lesson))
    assert cells[0][0] == "markdown"
    first_code = next(text for kind, _, text in cells if kind == "code")
    assert "lesson_paths(__file__)" in first_code
    # a markdown cell is never run: a line in it that is not a comment would run in a plain
    # `python` but not cell by cell (blank lines only at its end, before the next cell)
    markdown = None  # the lines of the markdown cell being read
    for number, line in enumerate(lesson.read_text(encoding="utf-8").splitlines() + ["# %%"], 1):
        if line.startswith("# %%"):
            while markdown and not markdown[-1][1]:
                markdown.pop()  # the blank lines before the next cell
            for where, text in markdown or []:
                assert text.startswith("#"), f"{lesson.name}, line {where}: {text!r} in markdown"
            markdown = [] if "[markdown]" in line else None
        elif markdown is not None:
            markdown.append((number, line))


# ----------------------------------------------------------------- where lessons write
def fake_pipeline_run(folder: pathlib.Path, finished=True, frontier=False) -> pathlib.Path:
    """A user's pipeline run, as far as the lessons look at it: the files the frontier needs
    (align.frontier.NEEDED), results.json once finished, a frontier's frontier.json."""
    from align.frontier import NEEDED
    names = [*NEEDED, *(["results.json"] if finished else []),
             *(["frontier/frontier.json"] if frontier else [])]
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"the user's own {name}", encoding="utf-8")
    return folder


def outside_the_lessons_folder(root: pathlib.Path) -> dict:
    """Every path under root except runs/lessons/: a file with its bytes and mtime, a folder
    as itself (its mtime changes when runs/lessons is made in it, which is allowed)."""
    listing = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if relative.parts[:2] == ("runs", "lessons"):
            continue
        listing[relative.as_posix()] = (path.stat().st_mtime_ns, path.read_bytes()) \
            if path.is_file() else "folder"
    return listing


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder; LESSONS_OUT unset, so lessons write under its runs/lessons."""
    monkeypatch.delenv("LESSONS_OUT", raising=False)
    root = tmp_path / "project"
    root.mkdir()
    return root


def test_lessons_write_under_runs_lessons_or_lessons_out(project, monkeypatch, tmp_path):
    assert lesson_setup.lessons_folder(project) == project / "runs" / "lessons"
    monkeypatch.setenv("LESSONS_OUT", str(tmp_path / "out"))
    assert lesson_setup.lessons_folder(project) == tmp_path / "out"


def test_a_finished_user_run_and_frontier_are_read_and_never_changed(project, capsys):
    fake_pipeline_run(project / "runs" / "pipeline", finished=False)  # stopped mid-way
    quick = fake_pipeline_run(project / "runs" / "pipeline-quick", frontier=True)
    before = outside_the_lessons_folder(project)
    out = lesson_setup.lessons_folder(project) / "12_dpo_against_rlhf"
    assert lesson_setup.pipeline_run_folder(project, smoke=False) == quick
    frontier = lesson_setup.frontier_file(project, out, smoke=False)
    assert frontier == quick / "frontier" / "frontier.json"
    assert outside_the_lessons_folder(project) == before
    assert not (project / "runs" / "lessons").exists()
    printed = capsys.readouterr().out
    assert f"your own, {quick}" in printed and "frontier: your own" in printed
    default = fake_pipeline_run(project / "runs" / "pipeline")  # now finished: it comes first
    assert lesson_setup.pipeline_run_folder(project, smoke=False) == default


def test_a_frontier_is_made_in_the_lessons_folder_never_in_the_users_run(project, monkeypatch):
    import align.frontier
    made = []

    def fake_run_frontier(config):  # what run_frontier writes last, where it was told to
        made.append(config)
        (pathlib.Path(config.out_dir) / "frontier.json").parent.mkdir(parents=True, exist_ok=True)
        (pathlib.Path(config.out_dir) / "frontier.json").write_text(json.dumps({"run": config.run}))

    monkeypatch.setattr(align.frontier, "run_frontier", fake_run_frontier)
    user_run = fake_pipeline_run(project / "runs" / "pipeline")  # finished, with no frontier
    before = outside_the_lessons_folder(project)
    out = lesson_setup.lessons_folder(project) / "12_dpo_against_rlhf"
    path = lesson_setup.frontier_file(project, out, smoke=False)
    assert path == out / "frontier" / "frontier.json" and path.exists()
    assert [config.run for config in made] == [str(user_run)]  # the user's run, read
    assert outside_the_lessons_folder(project) == before  # and nothing written into it
    again = lesson_setup.frontier_file(project, out, smoke=False)
    assert again == path and len(made) == 1  # a frontier of its own, of the same run, is kept


def test_with_no_user_run_the_quick_run_is_trained_in_the_lessons_folder(project, monkeypatch,
                                                                        capsys):
    import align.pipeline
    trained = []

    def fake_run_pipeline(config):  # what run_pipeline leaves, where it was told to write
        trained.append(config)
        fake_pipeline_run(pathlib.Path(config.out_dir))

    monkeypatch.setattr(align.pipeline, "run_pipeline", fake_run_pipeline)
    fake_pipeline_run(project / "runs" / "pipeline", finished=False)  # the user's, still running
    before = outside_the_lessons_folder(project)
    folder = lesson_setup.pipeline_run_folder(project, smoke=False)
    assert folder == project / "runs" / "lessons" / "pipeline-quick"
    assert [(config.preset, config.out_dir) for config in trained] == [("quick", str(folder))]
    assert outside_the_lessons_folder(project) == before
    assert f"into the lessons' own folder {folder}" in capsys.readouterr().out
    again = lesson_setup.pipeline_run_folder(project, smoke=False)
    assert again == folder and len(trained) == 1  # a finished run of its own is kept


@pytest.mark.slow
def test_the_smoke_set_up_trains_only_under_runs_lessons(project):
    # the real smoke pipeline (about a minute on two busy cores). A user's finished run is
    # there; the smoke setting does not read it (its files are no models: reading them
    # would fail) and must not change it
    fake_pipeline_run(project / "runs" / "pipeline")
    before = outside_the_lessons_folder(project)
    folder = lesson_setup.pipeline_run_folder(project, smoke=True)
    assert outside_the_lessons_folder(project) == before
    assert folder == project / "runs" / "lessons" / "pipeline-smoke"
    assert lesson_setup.finished_pipeline_run(folder)


# ------------------------------------------------- a default run against the expected ranges
def put_figure(results: dict, where: tuple, value) -> None:
    """results[where[0]][where[1]]... = value, making the dicts on the way (a list of three,
    estimate and interval, where the last key is an index): a results.json holding one
    figure where align.expected reads it."""
    node = results
    for key, following in zip(where[:-1], where[1:]):
        node = node.setdefault(key, [0.0, 0.0, 0.0] if isinstance(following, int) else {})
    node[where[-1]] = value


def test_expected_lines_put_a_default_runs_figures_beside_the_ranges():
    from align.expected import EXPECTED, MEASURED_ON
    names = list(EXPECTED)
    results = {"preset": "default"}
    inside, outside, missing = names[0], names[1], names[2]
    for name, (label, low, high, where) in EXPECTED.items():
        if name != missing:
            put_figure(results, where, high + 1.0 if name == outside else (low + high) / 2)
    lines = lesson_setup.expected_lines(results)
    assert MEASURED_ON in lines[0] and len(lines) == 1 + len(names)
    for name, line in zip(names, lines[1:]):
        label, low, high = EXPECTED[name][:3]
        assert label in line and f"{low:.2f}" in line and f"{high:.2f}" in line
        verdict = {inside: "within", outside: "outside", missing: "missing"}.get(name, "within")
        assert line.endswith(verdict), line
    # without a run: the ranges alone; names picks the figures
    alone = lesson_setup.expected_lines(None, (outside,))
    assert len(alone) == 2 and EXPECTED[outside][0] in alone[1] and "yours" not in alone[1]
