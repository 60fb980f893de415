"""torchrun + DistributedDataParallel (minigpt.distributed): N processes take the steps one
process takes with N times the batch, resume exactly, and stop together on bad input.

The slow tests start real runs of 2 CPU processes under torchrun (gloo) and compare them
with plain single-process runs of the same global batch; the fast ones check the pieces
(the batch split, the no-op single process, the skipped all-reduces of accumulation).
"""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from minigpt.checkpoint import load_checkpoint
from minigpt.data import TokenData
from minigpt.distributed import Ranks
from minigpt.errors import InputError
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--n-layer", "2", "--n-embd", "32", "--n-head", "2", "--block-size", "32",
        "--max-iters", "12", "--eval-interval", "6", "--eval-iters", "2", "--sample-tokens", "0",
        "--warmup-iters", "3"]


def run_here(arguments: list[str], cwd: Path):
    """`python -m module flags...` run in this process (quicker than a new one), in cwd."""
    module, *flags = arguments
    command = importlib.import_module(module)
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return command.main(flags)
    finally:
        os.chdir(previous)


def torchrun(arguments: list[str], cwd, timeout=300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGUMENTS` on CPU, with this Python's
    torchrun (its module), one thread per process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", *arguments]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def ran(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def losses(rows: list[dict]) -> list[tuple]:
    """(step, name, value) of every loss a run logged, in order."""
    return [(row["step"], name, row[name]) for row in rows
            for name in ("loss", "train_loss", "val_loss") if name in row]


def weights(folder: Path) -> dict:
    return load_checkpoint(str(folder / "ckpt.pt"))["model"]


# --- the pieces, in one process ---------------------------------------------------------

def test_the_ranks_batches_partition_the_batch_of_one_process():
    tokenizer = CharTokenizer.from_text("abcdefghij")
    data = TokenData.from_text("abcdefghij" * 50, tokenizer, 0.1, "text")
    whole = data.get_batch("train", 6, 8, torch.Generator().manual_seed(3))
    parts = [data.get_batch("train", 2, 8, torch.Generator().manual_seed(3), rank=r, world_size=3)
             for r in range(3)]
    assert torch.equal(torch.cat([x for x, _ in parts]), whole[0])
    assert torch.equal(torch.cat([y for _, y in parts]), whole[1])
    ranks = [Ranks(rank=r, world_size=3) for r in range(3)]
    assert [item for r in ranks for item in r.my_slice(list(range(9)))] == list(range(9))
    assert ranks[1].my_slice(list(range(9))) == [3, 4, 5]


def test_one_process_is_untouched():
    single = Ranks()
    model = torch.nn.Linear(2, 2)
    assert single.wrap(model, "cpu") is model and not single.several and single.is_main
    assert single.sum(3) == 3.0 and single.mean({"loss": 0.25}) == {"loss": 0.25}
    with pytest.raises(InputError, match="^bad$"):  # the error itself, unchanged
        with single.together():
            raise InputError("bad")
    with pytest.raises(InputError, match="saved by a run of 2 process"):
        single.check_resume("run/ckpt.pt", 2)


def test_accumulation_all_reduces_only_on_the_last_micro_batch(monkeypatch):
    """DDP's no_sync through Ranks.gradients_sync: a step of 3 micro-batches all-reduces
    the gradients once (counted with a communication hook), and .grad still holds the
    sum of the 3 micro-batches' gradients."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29571")
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
        reference = GPT(model.config)
        reference.load_state_dict(model.state_dict())
        ranks = Ranks(rank=0, world_size=2)  # "several": a group of 1 stands in for 2
        trained = ranks.wrap(model, "cpu")
        calls = []

        def counting_hook(state, bucket):
            calls.append(len(bucket.gradients()))
            future = torch.futures.Future()
            future.set_result(bucket.buffer())
            return future

        trained.register_comm_hook(None, counting_hook)
        batches = [torch.randint(0, 11, (2, 8)) for _ in range(3)]
        for micro_step, x in enumerate(batches):
            with ranks.gradients_sync(trained, micro_step == 2):
                trained(x, x)[1].backward()
        assert calls and sum(calls) == len(list(model.parameters()))  # each gradient once
        for x in batches:
            reference(x, x)[1].backward()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    finally:
        dist.destroy_process_group()


# --- real runs of 2 processes -----------------------------------------------------------
# Starting torchrun and its 2 Pythons costs seconds, so one launch runs several commands in
# turn (`in_turn`), each as `python -m module flags` would, in one process group.

IN_TURN = """
import importlib, json, sys
from minigpt.distributed import finish
for module, *flags in json.loads(sys.argv[1]):
    importlib.import_module(module).main(flags)  # one process group for them all
finish()
"""


def in_turn(commands: list[list[str]], cwd: Path) -> subprocess.CompletedProcess:
    """Run the commands one after the other on 2 processes under a single torchrun."""
    (cwd / "in_turn.py").write_text(IN_TURN)
    return torchrun(["in_turn.py", json.dumps(commands)], cwd, timeout=600)


STAGE_DATA = {"sft": "examples/sft.jsonl", "reward": "examples/pairs.jsonl",
              "dpo": "examples/pairs.jsonl"}


def stage_flags(stage, init) -> list[str]:
    return [f"align.{stage}", "--init", str(init), "--data", str(ROOT / STAGE_DATA[stage]),
            "--max-iters", "4", "--eval-interval", "2", "--warmup-iters", "1",
            "--learning-rate", "1e-3", "--max-length", "32"]


PPO = ["--data", str(ROOT / "examples/prompts.jsonl"), "--algorithm", "ppo", "--max-iters", "2",
       "--eval-interval", "1", "--batch-size", "2", "--rloo-k", "2", "--eval-prompts", "4",
       "--max-new-tokens", "8", "--num-mini-batches", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each command once in one process (here) and once on 2 processes (one torchrun):
    pre-training with batch 4 × 2 micro-batches against 2 × 2 on each rank; the same with
    dropout, stopped at step 6 (resumed by a test); each alignment stage with batch 8
    against 4 on each rank; and PPO on 2 processes."""
    folder = tmp_path_factory.mktemp("ddp")
    pretrain = ["minigpt.train", *TINY, "--grad-accum", "2"]
    run_here([*pretrain, "--batch-size", "4", "--out-dir", "one/pretrain"], folder)
    init = folder / "one" / "pretrain"
    for stage in STAGE_DATA:
        run_here([*stage_flags(stage, init), "--batch-size", "8", "--out-dir", f"one/{stage}"],
                 folder)
    with_dropout = ["minigpt.train", *TINY, "--batch-size", "2", "--dropout", "0.1"]
    ran(in_turn([[*pretrain, "--batch-size", "2", "--out-dir", "two/pretrain"],
                 *[[*stage_flags(stage, init), "--batch-size", "4", "--out-dir", f"two/{stage}"]
                   for stage in STAGE_DATA],
                 ["align.rlhf", "--init", str(init), "--reward", "one/reward", *PPO,
                  "--out-dir", "two/ppo"],
                 [*with_dropout, "--out-dir", "whole"],
                 [*with_dropout, "--out-dir", "parts", "--stop-after", "6"]], folder))
    return folder


@pytest.mark.slow
def test_two_processes_train_as_one_with_the_same_global_batch(runs):
    one, two = metrics(runs / "one/pretrain"), metrics(runs / "two/pretrain")
    assert [s[:2] for s in losses(one)] == [s[:2] for s in losses(two)]
    for (step, name, a), (_, _, b) in zip(losses(one), losses(two)):
        assert abs(a - b) < 1e-5, (step, name, a, b)
    assert losses(one)[-1][2] < losses(one)[0][2] - 0.1  # it did learn something
    for name, tensor in weights(runs / "one/pretrain").items():
        assert torch.allclose(tensor, weights(runs / "two/pretrain")[name], atol=1e-5), name
    config = json.loads((runs / "two/pretrain/config.json").read_text())
    assert config["world_size"] == 2 and config["batch_size"] == 2
    assert json.loads((runs / "one/pretrain/config.json").read_text())["world_size"] == 1


@pytest.mark.slow
def test_a_resumed_two_process_run_equals_an_uninterrupted_one(runs):
    """With dropout, so each rank's own random state has to come back too."""
    assert metrics(runs / "parts")[-1]["step"] == 6
    resumed = ran(torchrun(["-m", "minigpt.train", "--out-dir", "parts", "--resume"], runs))

    def without_timing(rows):
        return [{k: v for k, v in row.items() if k != "tokens_per_s"} for row in rows]

    # every number but the wall-clock speed, exactly
    assert without_timing(metrics(runs / "parts")) == without_timing(metrics(runs / "whole"))
    for name, tensor in weights(runs / "whole").items():
        assert torch.equal(tensor, weights(runs / "parts")[name]), name
    assert resumed.stdout.count("final val loss") == 1  # rank 0 alone prints
    with pytest.raises(InputError, match=r"saved by a run of 2 process\(es\); this one has 1"):
        run_here(["minigpt.train", "--out-dir", "parts", "--resume"], runs)  # one process


@pytest.mark.slow
def test_bad_input_on_one_rank_stops_every_rank_with_one_line(tmp_path):
    """Rank 1 alone is given a file that does not exist; rank 0's input is fine. Both stop
    at once (not at torchrun's timeout), and the message is printed once, naming rank 1."""
    (tmp_path / "rank1_reads_a_missing_file.py").write_text(
        "import os, sys\n"
        "from minigpt.cli import run_main\n"
        "from minigpt.train import main\n"
        "argv = sys.argv[1:] + (['--data', 'missing.txt'] if os.environ['RANK'] == '1' else [])\n"
        "run_main(main, argv)\n")
    result = torchrun(["rank1_reads_a_missing_file.py", *TINY, "--out-dir", "run"], tmp_path,
                      timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: rank 1: ") and "missing.txt" in errors[0], output
    assert not re.search(r"^\[rank\d\]:", output, re.MULTILINE), output  # no rank's traceback
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGE_DATA))
def test_an_alignment_stage_on_two_processes_trains_as_one(stage, runs):
    """SFT's ranks hold different numbers of response tokens, so this also checks that the
    loss is the mean over every rank's tokens, not the mean of the ranks' means."""
    one, two = metrics(runs / "one" / stage), metrics(runs / "two" / stage)
    assert [sorted(row) for row in one] == [sorted(row) for row in two]
    for a, b in zip(one, two):
        for name, value in a.items():
            assert abs(value - b[name]) < 2e-5, (a["step"], name, value, b[name])
    # The Bradley-Terry loss sees r_w − r_l only, so a shift of every score (head.bias, and
    # ln_f's bias through the head) has a gradient of exactly 0; AdamW turns its float
    # noise, g/√v, into steps of ±lr, which differ between any two orders of summation.
    # Elsewhere two orders of summation still differ by float rounding, which AdamW's g/√v
    # enlarges where √v is small: up to about 1e-5 (1.4e-5 measured, on one element of the
    # examples' reward model). A lost rank's batch or a mean of means moves weights by
    # about the learning rate, 1e-3, each step.
    shifts_every_score = {"head.bias", "gpt.ln_f.bias"} if stage == "reward" else set()
    for name, tensor in weights(runs / "one" / stage).items():
        if name not in shifts_every_score:
            assert torch.allclose(tensor, weights(runs / "two" / stage)[name], atol=5e-5), name
    assert json.loads((runs / "two" / stage / "config.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_the_rl_stage_trains_on_two_processes(runs):
    """PPO, whose policy and value head are two DDP modules. Its rollouts are sampled per
    rank, so no single-process run takes the same steps: what is checked is that both
    ranks stay in step to the end and rank 0 alone writes."""
    assert [row["step"] for row in metrics(runs / "two/ppo")] == [0, 1, 1, 2, 2]
    assert json.loads((runs / "two/ppo/config.json").read_text())["world_size"] == 2
    assert (runs / "two/ppo/value.pt").is_file()
