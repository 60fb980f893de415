"""What every lesson does first: find the project, read the settings, make its folder.

    from lesson_setup import lesson_paths
    ROOT, SMOKE, OUT = lesson_paths(__file__)

ROOT is put on sys.path, so a plain `python lessons/NN_name.py` imports the project's
packages. SMOKE is True under LESSONS_SMOKE=1, the few-seconds setting of the test
suite. OUT is the lesson's own folder for figures and runs: runs/lessons/NN_name/, or
under LESSONS_OUT when that is set. `token_label` is how every lesson's figure shows a token.

Run as a script, a lesson prints its prose. A lesson is a percent-format script: `# %%`
starts a code cell, `# %% [markdown]` a cell of prose written as `# ` comment lines.
Python alone would skip the comments, and the explanation of a figure would be lost. So
when `python lessons/NN_name.py` reaches `lesson_paths(__file__)`, lesson_paths takes
over (`run_cells`): it reads the file, prints each prose cell as plain text and runs each
code cell after it, in order, in the script's own globals (compiled with the lesson's file
name and line numbers, so a traceback points at the lesson's line), then exits with status
0. The first cell, run again that way, calls lesson_paths once more, which then only
returns the paths. LESSONS_QUIET=1 runs the cells the same way without printing the prose
(the test suite's smoke runs use it). In a notebook or an editor's cells (Jupyter, VS
Code, Spyder, all IPython) the editor runs the cells itself: lesson_paths only returns
the paths.

Where lessons write: only into OUT, or into the lessons' shared folder runs/lessons/
(`lessons_folder`; LESSONS_OUT when set). A lesson that needs a pipeline run or a
frontier reads the user's own (runs/pipeline, runs/pipeline-quick) when it is there and
finished, and never writes into it; otherwise it trains what it needs in runs/lessons/
(`pipeline_run_folder`, `frontier_file`). Either way it prints which one it used.
"""

import json
import os
import pathlib
import sys

_running_cells = False  # True while run_cells runs a lesson: lesson_paths then only returns


def lessons_folder(root: pathlib.Path) -> pathlib.Path:
    """The folder every lesson writes under: LESSONS_OUT when set (the tests), else
    ROOT/runs/lessons. Nothing a lesson writes goes anywhere else."""
    return pathlib.Path(os.environ.get("LESSONS_OUT", root / "runs" / "lessons"))


def lesson_paths(lesson_file: str):
    """ROOT, SMOKE, OUT for the lesson `lesson_file` (see the module's docstring); run as a
    script, the whole lesson first, cell by cell, with its prose."""
    if started_as_script(lesson_file):
        run_cells(lesson_file, show_prose=os.environ.get("LESSONS_QUIET") != "1")
        sys.exit(0)  # every cell has run: the rest of the file must not run a second time
    root = pathlib.Path(lesson_file).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    smoke = os.environ.get("LESSONS_SMOKE") == "1"
    out = lessons_folder(root) / pathlib.Path(lesson_file).stem
    out.mkdir(parents=True, exist_ok=True)
    return root, smoke, out


def started_as_script(lesson_file: str) -> bool:
    """True when the lesson is the program being run (`python lessons/NN_name.py`, or
    `python -m exercises run -- lessons/NN_name.py`) and run_cells is not running it yet.
    False in IPython (a notebook, an editor's cells), where __main__ is the kernel's
    namespace and sys.argv[0] the kernel, and when the lesson is imported."""
    if _running_cells or "IPython" in sys.modules and sys.modules["IPython"].get_ipython():
        return False
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    this = pathlib.Path(lesson_file).resolve()
    return main_file is not None and pathlib.Path(main_file).resolve() == this and \
        bool(sys.argv) and pathlib.Path(sys.argv[0]).resolve() == this


def read_cells(lesson_file: str) -> list[tuple[str, int, str]]:
    """The cells of a percent-format script, in order: (kind, line, text), kind "code" or
    "markdown", line the file's line number of the cell's first line (after its `# %%`).
    A markdown cell's text is its prose: each line's leading "# " (or a lone "#") removed."""
    cells = []
    lines = pathlib.Path(lesson_file).read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        if line.startswith("# %%"):
            cells.append(["markdown" if "[markdown]" in line else "code", number + 1, []])
        elif not cells:  # code before the first marker
            cells.append(["code", number, [line]])
        else:
            cells[-1][2].append(line)
    return [(kind, first, "".join(body) if kind == "code" else prose_text(body))
            for kind, first, body in cells]


def prose_text(lines: list[str]) -> str:
    """The text of a markdown cell's comment lines: "# text" -> "text", "#" -> ""."""
    text = [line.rstrip("\n").removeprefix("#").removeprefix(" ") for line in lines]
    return "\n".join(text).strip("\n")


def run_cells(lesson_file: str, show_prose: bool = True) -> None:
    """Run the lesson cell by cell in the __main__ module's globals, each markdown cell's
    text printed (show_prose=True) before the code that follows it. A code cell is compiled
    with blank lines in front, so that its line numbers are the file's: an error in a cell
    shows the lesson's file and line. An exception stops the lesson and propagates, as in a
    plain script (status 1, the traceback printed)."""
    global _running_cells
    namespace = sys.modules["__main__"].__dict__
    _running_cells = True
    try:
        for kind, first_line, text in read_cells(lesson_file):
            if kind == "markdown":
                if show_prose and text:
                    print(f"\n{text}\n", flush=True)
            else:
                numbered = "\n" * (first_line - 1) + text  # line numbers as in the file
                exec(compile(numbered, lesson_file, "exec", dont_inherit=True), namespace)
    finally:
        _running_cells = False


VISIBLE = {" ": "␣", "\n": "\\n", "\t": "\\t"}  # a space or newline would print as nothing


def token_bytes(tokenizer, token_id: int) -> bytes | None:
    """The bytes a byte-level token stands for: the byte itself for the byte tokenizer
    (ids 0-255), the merged bytes for BPE (`BPETokenizer.token_bytes`); None for a
    character tokenizer or a special token, which are no bytes."""
    if tokenizer.kind == "byte" and token_id < 256:
        return bytes([token_id])
    if tokenizer.kind == "bpe" and token_id < tokenizer.first_special_id:
        return tokenizer.token_bytes(token_id)
    return None


def token_label(tokenizer, token_id: int) -> str:
    """A token as a label a reader can see: ␣ for a space, \\n for a newline, EOS, BOS,
    PAD by name, and the bytes that are no character on their own (part of a multi-byte
    UTF-8 character, as an untrained model often samples, or a BPE token that ends or
    starts inside one) as \\xNN: byte 0xc3 is \\xc3, the BPE token b" \\xe2\\x82" is
    " \\xe2\\x82" (U+FFFD, what decode shows, would hide which bytes they are)."""
    names = {tokenizer.eos_id: "EOS", tokenizer.bos_id: "BOS", tokenizer.pad_id: "PAD"}
    if token_id in names:
        return names[token_id]
    text = tokenizer.decode([token_id])
    data = token_bytes(tokenizer, token_id)
    if "\ufffd" in text and data is not None:
        text = data.decode("utf-8", errors="backslashreplace")  # complete characters stay
    return VISIBLE.get(text, text if text.isprintable() else repr(text)[1:-1])


def pretrain_small_model(out: pathlib.Path, smoke: bool, block_size: int, max_iters: int) -> dict:
    """Set-up for the lessons that need a model, not a lesson on pre-training (that is 03):
    a small byte-level GPT pre-trained briefly on the toy world's corpus, so that it prefers
    the world's text to random bytes. Its run folder is out/pretrain; returns train()'s summary.
    """
    from toyworld.world import pretraining_corpus
    from minigpt.train import TrainConfig, train

    corpus = out / "corpus.txt"
    corpus.write_text(pretraining_corpus(20_000 if smoke else 100_000, seed=0), encoding="utf-8")
    config = TrainConfig(data=str(corpus), out_dir=str(out / "pretrain"), tokenizer="byte",
                         block_size=block_size, n_layer=1 if smoke else 2, n_head=4,
                         n_embd=32 if smoke else 64, batch_size=8, max_iters=max_iters,
                         warmup_iters=max(max_iters // 10, 1), learning_rate=3e-3, min_lr=3e-4,
                         eval_interval=10_000, eval_iters=2 if smoke else 10, sample_tokens=0,
                         overwrite=True, device="cpu", seed=0)
    return train(config, progress=not smoke)


USER_RUNS = ("pipeline", "pipeline-quick")  # what `python -m align.pipeline [--quick]` writes


def finished_pipeline_run(folder: pathlib.Path) -> bool:
    """A pipeline run that has finished (results.json is written last) and holds what RLHF
    and the frontier read (align.frontier.NEEDED): a run still going, or stopped mid-way,
    is not one."""
    from align.frontier import NEEDED
    return (folder / "results.json").exists() and all((folder / name).exists() for name in NEEDED)


def pipeline_run_folder(root: pathlib.Path, smoke: bool) -> pathlib.Path:
    """Set-up for the lessons that read a pipeline run (11, 12): a finished run folder.

    The user's default run (runs/pipeline) if it is finished, else the user's quick run
    (runs/pipeline-quick): read, never written. With neither, the quick preset trained into
    the lessons' own folder, runs/lessons/pipeline-quick (a few minutes on 2 CPU cores,
    once: lessons 11 and 12 share it), so that a user's own `python -m align.pipeline` never
    finds its folder taken. In the smoke setting the user's runs are not read: the smoke
    preset into runs/lessons/pipeline-smoke, seconds. Prints which folder it uses."""
    from align.pipeline import PipelineConfig, run_pipeline

    if not smoke:
        for name in USER_RUNS:
            folder = root / "runs" / name
            if finished_pipeline_run(folder):
                print(f"pipeline run: your own, {folder} (read only: nothing is written there)")
                return folder
    preset = "smoke" if smoke else "quick"
    folder = lessons_folder(root) / f"pipeline-{preset}"
    if finished_pipeline_run(folder):
        print(f"pipeline run: the lessons' own {preset} run, {folder}")
        return folder
    why = "the smoke setting" if smoke else \
        f"no finished run in {root / 'runs' / USER_RUNS[0]} or {root / 'runs' / USER_RUNS[1]}"
    print(f"pipeline run: {why}, so the {preset} preset is trained into the lessons' own folder "
          f"{folder} (python -m align.pipeline --preset {preset} --out-dir {folder})")
    small = dict(max_new_tokens=16, device="cpu") if smoke else {}
    # an interrupted run of these settings continues; one of older settings is replaced
    run_pipeline(PipelineConfig(preset=preset, out_dir=str(folder), overwrite=True,
                                progress=not smoke, **small))
    return folder


# Lesson 12's frontier in the smoke setting: the quick preset made smaller still, two β
# values per method, two steps each, four prompts; seconds.
SMOKE_FRONTIER = dict(dpo_betas="0.1,1", rlhf_betas="0.1,1", dpo_steps=2, rlhf_steps=2,
                      eval_every=1, eval_prompts=4, best_of="1,2,4", optimum_samples=4,
                      device="cpu")


def frontier_file(root: pathlib.Path, out: pathlib.Path, smoke: bool) -> pathlib.Path:
    """Set-up for lesson 12: the frontier.json of a finished frontier (align.frontier).

    The user's own frontier of runs/pipeline (`python -m align.frontier --run
    runs/pipeline`), else of runs/pipeline-quick: read, never written. With neither, the
    quick frontier of `pipeline_run_folder`'s run, made into the lesson's own folder
    out/frontier, never into the run's folder, where the user's own `python -m
    align.frontier` would then find it taken. In the smoke setting, a tiny frontier
    (SMOKE_FRONTIER) of the smoke run, into out/frontier. Prints which one it uses."""
    from align.frontier import FrontierConfig, run_frontier

    if not smoke:
        for name in USER_RUNS:
            path = root / "runs" / name / "frontier" / "frontier.json"  # written last
            if path.exists():
                print(f"frontier: your own, {path} (read only: nothing is written there)")
                return path
    run = pipeline_run_folder(root, smoke)
    path = out / "frontier" / "frontier.json"
    made_before = path.exists() and json.loads(path.read_text(encoding="utf-8"))["run"] == str(run)
    if made_before and not smoke:
        print(f"frontier: the lesson's own, {path}, of {run}")
        return path
    command = f"python -m align.frontier --run {run} --quick --out-dir {path.parent}"
    print(f"frontier: making {'a tiny one (SMOKE_FRONTIER)' if smoke else 'the quick one'} of "
          f"{run} into the lesson's own folder {path.parent}" + ("" if smoke else f" ({command})"))
    smaller = SMOKE_FRONTIER if smoke else {}
    run_frontier(FrontierConfig(run=str(run), out_dir=str(path.parent), quick=True,
                                overwrite=True, progress=False, **smaller))
    return path


def expected_lines(results: dict | None, names: tuple[str, ...] = ()) -> list[str]:
    """What a default pipeline run is expected to measure (align.expected: a range for each
    figure, from the runs listed in MEASURED_ON), as lines to print. Given that run's
    results.json, its own value beside each range and compare_with_expected's verdict:
    "within" (it behaves like the runs measured) or "outside" (look closer). names: only
    these figures (align.expected.EXPECTED's keys); empty, all of them."""
    from align.expected import MEASURED_ON, compare_with_expected

    lines = [f"expected ranges (align.expected), measured on {MEASURED_ON}:"]
    for row in compare_with_expected(results or {}):
        if names and row["name"] not in names:
            continue
        form = "+.2f" if "minus" in row["name"] else ".2f"  # a difference has a sign
        expected = f"expected [{row['low']:{form}}, {row['high']:{form}}]"
        if results is None:
            lines.append(f"  {row['label']:55} {expected}")
        else:
            value = "missing" if row["value"] is None else f"{row['value']:{form}}"
            lines.append(f"  {row['label']:55} yours {value:>7}   {expected}   {row['verdict']}")
    return lines
