"""Checkpoints: atomic writes, safe loading, clear errors; sampling from a checkpoint."""

import json
import os
import pickle
import random
import subprocess
import sys
import zipfile

import pytest
import torch
import torch.nn as nn

from align.reward import RewardModel
from minigpt import GPT, ByteTokenizer, load_checkpoint, load_model, save_checkpoint
from minigpt.checkpoint import write_atomically
from minigpt.cli import run_main
from minigpt.errors import InputError
from minigpt.sample import main as sample_main
from tests.conftest import tiny_config


@pytest.fixture
def byte_checkpoint(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64)
    model = GPT(config)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, model, 5, config, ByteTokenizer())
    return path, model


def test_save_and_load_round_trip(byte_checkpoint):
    path, model = byte_checkpoint
    loaded, tokenizer, checkpoint = load_model(path.parent)  # a run folder works too
    assert checkpoint["step"] == 5 and tokenizer == ByteTokenizer()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "ckpt.pt"
    write_atomically(path, b"the good checkpoint")

    def crash(f):
        f.write(b"half a check")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(path, save=crash)
    assert path.read_bytes() == b"the good checkpoint"
    assert os.listdir(tmp_path) == ["ckpt.pt"]  # no temporary file left behind


def test_weights_that_do_not_match_the_config_or_vocabulary(tmp_path, byte_checkpoint):
    path, _ = byte_checkpoint
    checkpoint = torch.load(path, weights_only=True)
    config = json.loads(checkpoint["model_config"])
    checkpoint["model_config"] = json.dumps({**config, "n_embd": 64})
    torch.save(checkpoint, tmp_path / "shape.pt")
    with pytest.raises(InputError, match="shape.pt: the weights do not match the model config: "
                       r"\d+ of another shape \(first 'wte.weight': \(259, 32\) in the file, "
                       r"\(259, 64\) in the model\)"):
        load_model(tmp_path / "shape.pt")
    checkpoint["model_config"] = json.dumps({**config, "vocab_size": 100})
    torch.save(checkpoint, tmp_path / "vocab.pt")
    with pytest.raises(InputError, match="tokenizer has 259 tokens but the model's vocab_size is 100"):
        load_model(tmp_path / "vocab.pt")


def test_sample_command_is_seeded_and_the_cache_changes_nothing(byte_checkpoint, capsys):
    path, _ = byte_checkpoint
    argv = ["--ckpt", str(path), "--prompt", "¿Hola?", "--max-new-tokens", "20", "--seed", "4"]
    first = sample_main(argv)
    assert sample_main(argv) == first
    assert first[0].startswith("¿Hola?")
    greedy = sample_main(argv + ["--temperature", "0", "--no-cache"])
    assert sample_main(argv + ["--temperature", "0"]) == greedy  # the cache changes nothing
    filtered = sample_main(argv + ["--top-k", "5", "--top-p", "0.9"])
    assert filtered[0].startswith("¿Hola?")
    assert "¿Hola?" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# Files that are not what the reader needs: each gets one line that says what it is.


def sample_error(path, capsys) -> str:
    """`python -m minigpt.sample --ckpt PATH` run as the shell runs it: its one stderr line."""
    with pytest.raises(SystemExit) as stop:
        run_main(sample_main, ["--ckpt", str(path), "--max-new-tokens", "2"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "weights_only=False" not in err and "Traceback" not in err
    return lines[0]


def test_a_missing_checkpoint(tmp_path, capsys):
    missing = tmp_path / "nothing"
    with pytest.raises(InputError, match="nothing: no such checkpoint"):
        load_checkpoint(missing)
    assert sample_error(missing, capsys) == (f"error: {missing}: no such checkpoint (give a "
                                             f"ckpt.pt file or a run folder)")


def save_stage_checkpoint(path, stage):
    """A real checkpoint as align.common.save_stage writes it, from a tiny model."""
    torch.manual_seed(0)
    config = tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64)
    model = RewardModel(config) if stage == "reward" else GPT(config)
    save_checkpoint(path, model, 3, config, ByteTokenizer(),
                    extra={"stage": stage, "config": {"learning_rate": 1e-4}})
    return path


def test_a_reward_checkpoint_is_named_by_its_stage(tmp_path, capsys):
    path = save_stage_checkpoint(tmp_path / "reward" / "ckpt.pt", "reward")
    expected = (f"{path}: this is a 'reward' checkpoint (a reward model: a GPT with a scalar "
                f"head); minigpt.sample needs a language model ('pretrain', 'sft', 'dpo' or 'rlhf')")
    assert sample_error(path.parent, capsys) == f"error: {expected}"
    with pytest.raises(InputError, match="this is a 'reward' checkpoint"):
        load_model(path)
    assert load_checkpoint(path)["step"] == 3  # the file itself is fine: only its kind is wrong


def test_a_stage_this_code_does_not_know_is_named_too(tmp_path, capsys):
    path = save_stage_checkpoint(tmp_path / "ckpt.pt", "ppo-old")
    err = sample_error(path, capsys)
    assert "this is a 'ppo-old' checkpoint (a stage this code does not know)" in err


def test_language_model_stages_are_sampled_from(tmp_path):
    for stage in ("sft", "dpo", "rlhf"):
        path = save_stage_checkpoint(tmp_path / stage / "ckpt.pt", stage)
        texts = sample_main(["--ckpt", str(path), "--prompt", "Hi", "--max-new-tokens", "3"])
        assert texts[0].startswith("Hi")


def write_optimizer_only(path):
    layer = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(layer.parameters())
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # so its 'state' holds tensors, as a real one does
    torch.save(optimizer.state_dict(), path)


class NotATensor:
    """Loading this would need unpickling arbitrary code, which weights_only refuses."""


def write_plain_zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a model")


# (name, how to write the file, what the one line must say)
NOT_OURS = [
    ("optimizer", write_optimizer_only,
     "it holds an optimizer's state_dict ('state' and 'param_groups'), with no model in it"),
    ("other_state_dict", lambda p: torch.save(nn.Linear(3, 2).state_dict(), p),
     "it holds a bare state_dict of 2 tensors ('weight', 'bias'), with no model config"),
    ("own_state_dict", lambda p: torch.save(GPT(tiny_config()).state_dict(), p),
     "it holds a bare state_dict of "),
    ("other_keys", lambda p: torch.save({"weights": torch.zeros(2), "epoch": 4}, p),
     "it holds a dict with keys 'weights', 'epoch'; a checkpoint of this project is a dict "
     "with 'model', 'step', 'model_config' and 'tokenizer'"),
    ("tensor", lambda p: torch.save(torch.zeros(3, 4), p), "it holds a tensor of shape (3, 4)"),
    ("text", lambda p: p.write_text("hello, I am a text file\n"),
     "it is not a file written by torch.save (it begins with b'hello, I')"),
    ("random", lambda p: p.write_bytes(random.Random(0).randbytes(2000)),
     "it is not a file written by torch.save"),
    ("pickle", lambda p: p.write_bytes(pickle.dumps({"model": [1, 2]})),
     "it is a Python pickle, not a file written by torch.save"),
    ("zip", write_plain_zip, "it is a zip archive, but not one written by torch.save"),
    ("pickled_object", lambda p: torch.save({"model": NotATensor(), "step": 0}, p),
     "it holds a pickled Python object (tests.test_checkpoint.NotATensor); only tensors"),
]


@pytest.mark.parametrize("name, write, says", NOT_OURS, ids=[case[0] for case in NOT_OURS])
def test_a_file_of_another_kind_is_not_a_checkpoint_of_this_project(tmp_path, capsys, name,
                                                                    write, says):
    path = tmp_path / f"{name}.pt"
    write(path)
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a checkpoint of this project: ") and says in message
    assert sample_error(path, capsys) == f"error: {message}"


def cut_in_half(real: bytes) -> bytes:
    return real[: len(real) // 2]


def zero_the_middle(real: bytes) -> bytes:
    """Damage a stretch of weights: torch.load alone would read this file without a word."""
    middle = len(real) // 2
    return real[:middle] + bytes(500) + real[middle + 500:]


# (name, what to do to a real checkpoint's bytes, how the reason must end)
DAMAGED = [
    ("half", cut_in_half, "its zip archive has no table of contents, which torch.save writes "
                          "at the end of the file"),
    ("last_byte_cut", lambda real: real[:-1], "which torch.save writes at the end of the file"),
    ("zeroed", zero_the_middle, "does not match its checksum"),
    ("zip_header_only", lambda real: b"PK\x03\x04 this is not a whole checkpoint",
     "its zip archive has no table of contents, which torch.save writes at the end of the file"),
]


@pytest.mark.parametrize("name, damage, reason", DAMAGED, ids=[case[0] for case in DAMAGED])
def test_a_truncated_or_corrupted_checkpoint_says_so(tmp_path, byte_checkpoint, capsys, name,
                                                     damage, reason):
    real, _ = byte_checkpoint
    path = tmp_path / name / "ckpt.pt"
    path.parent.mkdir()
    path.write_bytes(damage(real.read_bytes()))
    with pytest.raises(InputError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable checkpoint (the file is truncated or "
                              f"corrupted): ") and message.endswith(reason)
    assert sample_error(path.parent, capsys) == f"error: {message}"


def test_the_legacy_torch_format_loads_and_a_cut_one_says_so(tmp_path, byte_checkpoint, capsys):
    """torch.save(..., _use_new_zipfile_serialization=False): the format before PyTorch 1.6."""
    real, model = byte_checkpoint
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.load(real, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    loaded, _, _ = load_model(legacy)
    assert torch.equal(loaded.wte.weight, model.wte.weight)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(cut_in_half(legacy.read_bytes()))
    assert sample_error(cut, capsys).startswith(f"error: {cut}: not a readable checkpoint (the "
                                                f"file is truncated or corrupted): ")  # + torch's
    # reason, which depends on where the cut falls ("unexpected EOF, expected 1353 more bytes")


def test_an_empty_file_says_so(tmp_path, capsys):
    empty = tmp_path / "ckpt.pt"
    empty.write_bytes(b"")
    assert sample_error(tmp_path, capsys) == (f"error: {empty}: not a readable checkpoint: the "
                                              f"file is empty")


def test_reward_weights_without_a_stage_are_summed_up_in_one_line(tmp_path, capsys):
    """A hand-made file: a reward model's weights, but no stage to name (so 'pretrain')."""
    torch.manual_seed(0)
    config = tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, RewardModel(config), 1, config, ByteTokenizer())
    n_gpt = len(GPT(config).state_dict())
    assert sample_error(path, capsys) == (
        f"error: {path}: the weights do not match the model config: {n_gpt} missing from the "
        f"file (first 'wte.weight'); {n_gpt + 2} the model has no place for (first "
        f"'gpt.wte.weight')")


@pytest.mark.slow
def test_the_command_prints_one_line_and_nothing_else(tmp_path, byte_checkpoint):
    """The real command in a fresh Python: no warning or traceback reaches stderr either."""
    reward = save_stage_checkpoint(tmp_path / "reward" / "ckpt.pt", "reward")
    plain_pickle = tmp_path / "data.pkl"
    plain_pickle.write_bytes(pickle.dumps({"model": [1, 2]}, protocol=4))
    half = tmp_path / "half.pt"
    half.write_bytes(cut_in_half(byte_checkpoint[0].read_bytes()))
    for path, says in ((reward, "this is a 'reward' checkpoint"),
                       (plain_pickle, "not a checkpoint of this project"),
                       (half, "not a readable checkpoint (the file is truncated or corrupted)")):
        done = subprocess.run([sys.executable, "-m", "minigpt.sample", "--ckpt", str(path)],
                              capture_output=True, text=True, cwd=os.path.dirname(
                                  os.path.dirname(os.path.abspath(__file__))))
        assert done.returncode == 2 and done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and says in lines[0]
        assert "weights_only=False" not in done.stderr and "Traceback" not in done.stderr
