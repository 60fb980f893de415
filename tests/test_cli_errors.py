"""Every command of minigpt and align answers bad input in one line, `error: ...`, exit 2,
before any work (gridworld's and exercises' own bad inputs are in their test files)."""

import pytest

from align.dpo import main as dpo_main
from align.examples import main as examples_main
from align.pipeline import main as pipeline_main
from align.preferences import main as preferences_main
from align.reward import main as reward_main
from align.sft import main as sft_main
from minigpt.albert import main as albert_main
from minigpt.bench import main as bench_main
from minigpt.prune import main as prune_main
from minigpt.cli import run_main
from minigpt.sample import main as sample_main
from minigpt.train import main as train_main

BAD_INPUTS = [
    # (command, argv, words the one line must hold)
    (train_main, ["--n-layer", "0"], "--n-layer must be a positive integer"),
    (train_main, ["--max-iters", "-1"], "--max-iters must be at least 1"),
    (train_main, ["--learning-rate", "fast"], "argument --learning-rate: invalid float value"),
    (train_main, ["--tokenizer", "word"], "invalid choice: 'word'"),
    (train_main, ["--n-layers", "2"], "unrecognized arguments: --n-layers"),
    (train_main, ["--data", "nosuch.txt"], "nosuch.txt: no such data file"),
    (train_main, ["--val-fraction", "1.5"], "--val-fraction must be between 0 and 1"),
    (sample_main, ["--ckpt", "nosuch"], "nosuch: no such checkpoint"),
    (sample_main, ["--ckpt", "x", "--top-p", "2"], "0 < --top-p <= 1"),
    (bench_main, ["--repeats", "0"], "--repeats must be at least 1"),
    (bench_main, ["--n-head", "3"], "not divisible by --n-head 3"),
    (sft_main, [], "--init is required"),
    (sft_main, ["--init", "nosuch"], "nosuch: no such checkpoint"),
    (sft_main, ["--batch-size", "0"], "--batch-size must be at least 1"),
    (reward_main, ["--max-length", "-5"], "--max-length must not be negative"),
    (dpo_main, ["--beta", "-1"], "--beta must be positive"),
    (dpo_main, ["--label-smoothing", "0.7"], "--label-smoothing must be in [0, 0.5)"),
    (dpo_main, ["--loss-type", "square"], "invalid choice: 'square'"),
    (preferences_main, ["--samples", "1"], "--samples >= 2"),
    (preferences_main, ["--pairing", "some"], "invalid choice: 'some'"),
    (preferences_main, ["--out", "README.md"], "--out README.md: already exists; pass --overwrite"),
    (pipeline_main, ["--preset", "huge"], "invalid choice: 'huge'"),
    (pipeline_main, ["--beta", "0"], "--beta must be positive"),
    (examples_main, ["--out-dir", "README.md"], "is a file, expected a folder"),
    (train_main, ["--attention", "lsh", "--lsh-n-buckets", "3"], "--lsh-n-buckets must be an even integer"),
    (train_main, ["--share-layers", "some"], "invalid choice: 'some'"),
    (albert_main, ["--variants", "nosuch"], "--variants: unknown variant 'nosuch'"),
    (albert_main, ["--max-iters", "0"], "--max-iters must be at least 1"),
    (prune_main, ["--run", "nosuch"], "--run nosuch: no such run folder"),
    (prune_main, ["--run", "x", "--sparsities", "0,1.5"], "each sparsity must be in [0, 1)"),
]


@pytest.mark.parametrize("main, argv, words", BAD_INPUTS,
                         ids=[f"{m.__module__}:{' '.join(a)}" for m, a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(main, argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run folders would be made here
    (tmp_path / "README.md").write_text("a file, not a folder")
    with pytest.raises(SystemExit) as stop:
        run_main(main, argv)
    captured = capsys.readouterr()
    assert stop.value.code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert words in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "runs").exists()  # refused before any run folder was made


def test_ctrl_c_says_how_to_continue_and_to_leave_out_overwrite(capsys):
    from minigpt.cli import run_main

    def interrupted(argv):
        raise KeyboardInterrupt
    for argv, said in ((["--max-iters", "5"], "interrupted: add --resume to continue\n"),
                       (["--overwrite"], "interrupted: add --resume to continue, without --overwrite\n")):
        with pytest.raises(SystemExit) as stop:
            run_main(interrupted, argv, resume_hint="add --resume to continue")
        assert stop.value.code == 130 and capsys.readouterr().err == said
