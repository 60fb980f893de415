"""Checkpoints: atomic writes, safe loading, clear errors; sampling from a checkpoint."""

import json
import os

import pytest
import torch

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


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch reading random bytes
def test_missing_corrupted_and_truncated_checkpoints_get_clear_errors(tmp_path, byte_checkpoint):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    with pytest.raises(InputError, match="garbage.pt: not a readable checkpoint"):
        load_checkpoint(garbage)
    path, _ = byte_checkpoint
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(InputError, match="not a minigpt checkpoint: expected keys"):
        load_checkpoint(other)


class NotATensor:
    """Loading this would need unpickling arbitrary code, which weights_only refuses."""


def test_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": NotATensor(), "step": 0, "model_config": "{}", "tokenizer": "{}"}, path)
    with pytest.raises(InputError, match="evil.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_match_the_config_or_vocabulary(tmp_path, byte_checkpoint):
    path, _ = byte_checkpoint
    checkpoint = torch.load(path, weights_only=True)
    config = json.loads(checkpoint["model_config"])
    checkpoint["model_config"] = json.dumps({**config, "n_embd": 64})
    torch.save(checkpoint, tmp_path / "shape.pt")
    with pytest.raises(InputError, match="shape.pt: the weights do not match the model config"):
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


def test_sample_command_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        run_main(sample_main, ["--ckpt", str(tmp_path / "nothing")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'nothing'}: no such checkpoint (give a ckpt.pt file or a run folder)"


def test_a_corrupted_checkpoint_is_a_one_line_error_from_the_command(tmp_path, capsys):
    broken = tmp_path / "ckpt.pt"
    broken.write_bytes(b"PK\x03\x04 this is not a whole checkpoint")
    with pytest.raises(SystemExit) as stop:
        run_main(sample_main, ["--ckpt", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {broken}: not a readable checkpoint")
