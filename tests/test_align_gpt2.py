"""Every align stage starts from a Hugging Face GPT-2 folder (`--init gpt2`), or from a
minigpt run converted from one (`python -m minigpt.gpt2 --from-hf`).

No transformers needed: the folder is written by the project's own save_pretrained
(config.json + pytorch_model.bin) and BPETokenizer.save_files (vocab.json + merges.txt),
a tiny GPT-2 with <|endoftext|> as its only special token, as GPT-2's own files have it.
tests/test_gpt2.py checks, with transformers, a folder that transformers wrote.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from align.common import load_stage
from align.data import PREFERENCE_KEYS, read_jsonl, rows_from_dict_of_lists, write_jsonl
from align.dpo import main as dpo_main
from align.sft import main as sft_main
from minigpt.checkpoint import (
    CHECKPOINT_NAME,
    REQUIRED_KEYS,
    checkpoint_stage,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
)
from minigpt.cli import run_main
from minigpt.errors import InputError
from minigpt.gpt2 import from_pretrained, read_hf_tensors
from minigpt.gpt2 import main as gpt2_main
from minigpt.tokenizer import ENDOFTEXT, BPETokenizer
from tests.test_gpt2 import one_line_error, random_model
from toyworld.world import LECTURE_DPO_DATASET

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEXT = "The cat eats the meat. Hello, how are you? My name is Mary. ¿Qué tal? 😺\n"
TINY = ["--max-iters", "2", "--batch-size", "4", "--max-length", "64", "--eval-interval", "2",
        "--device", "cpu"]


@pytest.fixture(scope="module")
def gpt2_tokenizer() -> BPETokenizer:
    """A small byte-level BPE with GPT-2's one special token, <|endoftext|> (BOS = EOS = PAD)."""
    trained = BPETokenizer.train((EXAMPLES / "sft.jsonl").read_text()[:4000], vocab_size=300,
                                 progress=False)
    return BPETokenizer(trained.merges, trained.tokens, [ENDOFTEXT])


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory, gpt2_tokenizer) -> Path:
    """A Hugging Face GPT-2 folder: config.json, pytorch_model.bin, vocab.json, merges.txt."""
    folder = tmp_path_factory.mktemp("gpt2")
    model = random_model(seed=0, vocab_size=gpt2_tokenizer.vocab_size)
    model.save_pretrained(folder, safe_serialization=False)
    gpt2_tokenizer.save_files(folder)
    return folder


def copy_folder(source, target, without=()) -> Path:
    shutil.copytree(source, target)
    for name in without:
        os.remove(target / name)
    return target


def logits(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    idx = torch.randint(0, model.config.vocab_size, (2, 30), generator=generator)
    with torch.no_grad():
        return model.eval()(idx)[0]


# ----------------------------------------------------------------- the folder as a checkpoint


def test_a_gpt2_folder_loads_as_a_pretrained_checkpoint(gpt2_folder, gpt2_tokenizer):
    checkpoint, stage = load_stage(gpt2_folder, ("pretrain", "sft"), "cpu", "align.sft --init")
    assert stage == "pretrain" and checkpoint_stage(checkpoint) == "pretrain"
    assert checkpoint["path"] == str(gpt2_folder) and checkpoint["step"] == 0
    assert all(key in checkpoint for key in REQUIRED_KEYS)
    model, tokenizer = model_from_checkpoint(checkpoint)
    assert torch.equal(logits(model), logits(from_pretrained(gpt2_folder, attention=model.config.attention)))
    assert model.config.gelu == "tanh" and model.lm_head.weight is model.wte.weight

    from_files = BPETokenizer.from_files(gpt2_folder)
    assert tokenizer == from_files == gpt2_tokenizer
    assert tokenizer.encode(TEXT) == from_files.encode(TEXT)
    assert len(tokenizer.encode(TEXT)) < len(TEXT.encode("utf-8"))  # merges are used
    end = tokenizer.vocab_size - 1  # <|endoftext|>, the last id, as 50256 in GPT-2
    assert tokenizer.bos_id == tokenizer.eos_id == tokenizer.pad_id == end


def test_minigpt_sample_reads_the_folder_too(gpt2_folder):
    model, _, checkpoint = load_model(gpt2_folder, needed_by="minigpt.sample")
    assert checkpoint["path"] == str(gpt2_folder) and not model.training
    assert torch.equal(logits(model), logits(from_pretrained(gpt2_folder, attention=model.config.attention)))


def test_a_tokenizer_json_alone_is_read_as_the_same_tokenizer(gpt2_folder, gpt2_tokenizer,
                                                              tmp_path):
    """transformers 5 writes tokenizer.json instead of vocab.json + merges.txt: its merges as
    "a b" strings (older tokenizers) or as [a, b] pairs (newer), the special token in
    added_tokens."""
    for pairs in (False, True):
        folder = copy_folder(gpt2_folder, tmp_path / f"pairs_{pairs}", ("vocab.json", "merges.txt"))
        vocab = {t: i for t, i in gpt2_tokenizer.vocab().items() if t != ENDOFTEXT}
        merges = [list(m) if pairs else " ".join(m) for m in gpt2_tokenizer.merges]
        added = [{"id": gpt2_tokenizer.eos_id, "content": ENDOFTEXT, "special": True}]
        (folder / "tokenizer.json").write_text(json.dumps(
            {"added_tokens": added, "model": {"type": "BPE", "vocab": vocab, "merges": merges}}))
        _, tokenizer = model_from_checkpoint(load_checkpoint(folder))
        assert tokenizer == gpt2_tokenizer and tokenizer.encode(TEXT) == gpt2_tokenizer.encode(TEXT)


# ----------------------------------------------------------------- the stages, from the folder


def leading_space(rows, keys):
    """Rows whose responses start with a space, as GPT-2's words do: align.data then accepts
    them with a byte-level BPE (see the next test for the shipped examples)."""
    return [{**row, **{key: " " + row[key] for key in keys}} for row in rows]


def test_sft_then_dpo_run_from_a_gpt2_folder(gpt2_folder, gpt2_tokenizer, tmp_path):
    sft_rows = read_jsonl(EXAMPLES / "sft.jsonl", ("prompt", "completion"))[:40]
    pair_rows = read_jsonl(EXAMPLES / "lecture_dpo_pairs.jsonl", PREFERENCE_KEYS)
    write_jsonl(tmp_path / "sft.jsonl", leading_space(sft_rows, ("completion",)))
    write_jsonl(tmp_path / "pairs.jsonl", leading_space(pair_rows, ("chosen", "rejected")))

    sft_main(["--init", str(gpt2_folder), "--data", str(tmp_path / "sft.jsonl"),
              "--out-dir", str(tmp_path / "sft"), *TINY])
    sft, _ = load_stage(tmp_path / "sft", ("sft",), "cpu", "test")
    assert sft["step"] == 2
    sft_model, sft_tokenizer = model_from_checkpoint(sft)
    assert sft_tokenizer == gpt2_tokenizer
    assert not torch.equal(sft_model.wte.weight, from_pretrained(gpt2_folder).wte.weight)

    dpo_main(["--init", str(tmp_path / "sft"), "--data", str(tmp_path / "pairs.jsonl"),
              "--out-dir", str(tmp_path / "dpo"), *TINY])
    dpo, _ = load_stage(tmp_path / "dpo", ("dpo",), "cpu", "test")
    assert dpo["step"] == 2
    rows = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").open()]
    assert rows[0]["train_loss"] == pytest.approx(0.6931, abs=1e-4)  # log 2: π_θ = π_ref

    # DPO also starts from the folder itself (it accepts a pre-trained model as π_ref)
    dpo_main(["--init", str(gpt2_folder), "--data", str(tmp_path / "pairs.jsonl"),
              "--out-dir", str(tmp_path / "dpo_from_gpt2"), *TINY])
    assert (tmp_path / "dpo_from_gpt2" / CHECKPOINT_NAME).is_file()


def test_sft_then_dpo_run_on_the_shipped_examples_from_a_gpt2_folder(gpt2_folder, tmp_path):
    """The prompt "User: ...\nAssistant: " ends with a lone " " token under a byte-level
    BPE, which the full text merges into the answer's first word (" Mary"):
    align.data.response_tokens then encodes the answer on its own, and both stages run."""
    sft_main(["--init", str(gpt2_folder), "--data", str(EXAMPLES / "sft.jsonl"),
              "--out-dir", str(tmp_path / "sft"), *TINY])
    dpo_main(["--init", str(tmp_path / "sft"), "--data", str(EXAMPLES / "lecture_dpo_pairs.jsonl"),
              "--out-dir", str(tmp_path / "dpo"), *TINY])
    assert (tmp_path / "dpo" / CHECKPOINT_NAME).is_file()


# ----------------------------------------------------------------- the converter


def test_folder_to_run_to_folder_gives_identical_tensors(gpt2_folder, tmp_path, capsys):
    run, back = tmp_path / "run", tmp_path / "back"
    gpt2_main(["--from-hf", str(gpt2_folder), "--out-dir", str(run)])
    assert f"-> {run / CHECKPOINT_NAME}" in capsys.readouterr().out
    model, tokenizer, checkpoint = load_model(run)
    assert checkpoint_stage(checkpoint) == "pretrain" and "optimizer" not in checkpoint
    assert torch.equal(logits(model), logits(from_pretrained(gpt2_folder, attention=model.config.attention)))
    assert (run / "tokenizer.json").is_file() and (run / "config.json").is_file()

    gpt2_main(["--to-hf", str(run), "--out-dir", str(back), "--weights", "bin"])
    original, _ = read_hf_tensors(str(gpt2_folder))
    converted, _ = read_hf_tensors(str(back))
    assert sorted(original) == sorted(converted)
    assert all(torch.equal(original[name], converted[name]) for name in original)
    for name in ("vocab.json", "merges.txt"):
        assert (back / name).read_bytes() == (gpt2_folder / name).read_bytes()
    config = json.loads((back / "config.json").read_text())
    assert config["eos_token_id"] == config["bos_token_id"] == tokenizer.eos_id
    assert json.loads((back / "tokenizer_config.json").read_text())["eos_token"] == ENDOFTEXT
    unchanged = json.loads((gpt2_folder / "config.json").read_text())
    assert {k: v for k, v in config.items() if not k.endswith("token_id")} == \
        {k: v for k, v in unchanged.items() if not k.endswith("token_id")}


def test_the_converter_refuses_to_replace_and_needs_one_direction(gpt2_folder, tmp_path):
    run = tmp_path / "run"
    gpt2_main(["--from-hf", str(gpt2_folder), "--out-dir", str(run)])
    one_line_error(lambda: gpt2_main(["--from-hf", str(gpt2_folder), "--out-dir", str(run)]),
                   str(run), "already holds a converted model", "--overwrite")
    gpt2_main(["--from-hf", str(gpt2_folder), "--out-dir", str(run), "--overwrite"])
    one_line_error(lambda: gpt2_main(["--to-hf", str(run), "--out-dir", str(run)]),
                   "holds a GPT-2 model converted from Hugging Face", "minigpt.gpt2 --from-hf")
    hf = tmp_path / "hf"  # the way back: refused a second time without --overwrite
    gpt2_main(["--to-hf", str(run), "--out-dir", str(hf)])
    one_line_error(lambda: gpt2_main(["--to-hf", str(run), "--out-dir", str(hf)]),
                   "already holds a Hugging Face model", "--overwrite")
    gpt2_main(["--to-hf", str(run), "--out-dir", str(hf), "--overwrite"])
    one_line_error(lambda: gpt2_main(["--from-hf", str(hf), "--out-dir", str(hf)]),
                   "holds a Hugging Face GPT-2 folder")
    one_line_error(lambda: gpt2_main(["--out-dir", str(run)]), "--from-hf", "--to-hf")
    one_line_error(lambda: gpt2_main(["--from-hf", str(gpt2_folder)]), "--out-dir is required")


# ----------------------------------------------------------------- bad folders


def bad_folders(source, tmp_path):
    """(folder, words its one-line error must hold), one per way a GPT-2 folder goes wrong."""
    no_vocab = copy_folder(source, tmp_path / "no_vocab", ("vocab.json",))
    no_merges = copy_folder(source, tmp_path / "no_merges", ("merges.txt",))
    no_tokenizer = copy_folder(source, tmp_path / "no_tokenizer", ("vocab.json", "merges.txt"))
    no_weights = copy_folder(source, tmp_path / "no_weights", ("pytorch_model.bin",))
    no_config = copy_folder(source, tmp_path / "no_config", ("config.json",))
    llama = copy_folder(source, tmp_path / "llama")
    config = json.loads((llama / "config.json").read_text())
    (llama / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    bigger = copy_folder(source, tmp_path / "bigger_vocab")
    (bigger / "config.json").write_text(json.dumps({**config, "vocab_size": 400}))
    broken_vocab = copy_folder(source, tmp_path / "broken_vocab")
    (broken_vocab / "vocab.json").write_text("{not json")
    return [
        (no_vocab, [f"{no_vocab / 'vocab.json'}: not found", "merges.txt", "tokenizer.json"]),
        (no_merges, [f"{no_merges / 'merges.txt'}: not found", "vocab.json"]),
        (no_tokenizer, [f"{no_tokenizer / 'vocab.json'}: not found", "merges.txt"]),
        (no_weights, [f"{no_weights}: no weights file", "pytorch_model.bin", "model.safetensors"]),
        (no_config, [f"{no_config / 'config.json'}: not found"]),
        (llama, [f"{llama / 'config.json'}: model_type is 'llama', expected 'gpt2'"]),
        (bigger, [str(bigger), "the tokenizer has", "vocab_size 400"]),
        (broken_vocab, [str(broken_vocab), "vocab.json and merges.txt are not a GPT-2 tokenizer"]),
    ]


def test_each_bad_folder_gets_one_line_naming_the_folder_and_file(gpt2_folder, tmp_path, capsys):
    for folder, words in bad_folders(gpt2_folder, tmp_path):
        one_line_error(lambda f=folder: load_stage(f, ("pretrain", "sft"), "cpu", "align.sft"),
                       *words)
        one_line_error(lambda f=folder: gpt2_main(["--from-hf", str(f), "--out-dir",
                                                   str(tmp_path / "out")]), *words)
    # as a user sees it: one line, exit status 2, and no run folder written
    folder, words = bad_folders(gpt2_folder, tmp_path / "cli")[0]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_status:
        run_main(sft_main, ["--init", str(folder), "--data", str(EXAMPLES / "sft.jsonl"),
                            "--out-dir", str(tmp_path / "sft"), *TINY])
    err = capsys.readouterr().err
    assert exit_status.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert words[0] in err and not (tmp_path / "sft").exists()


def test_a_run_folder_without_its_checkpoint_is_still_no_such_checkpoint(tmp_path):
    """A minigpt run folder has a config.json too (the resolved settings, no model_type):
    without ckpt.pt it is a missing checkpoint, not a Hugging Face folder."""
    (tmp_path / "config.json").write_text(json.dumps({"batch_size": 16}))
    one_line_error(lambda: load_checkpoint(tmp_path),
                   f"{tmp_path / CHECKPOINT_NAME}: no such checkpoint")


def test_a_stage_that_needs_an_sft_model_still_refuses_the_folder(gpt2_folder):
    """Only where a pre-trained model is accepted does the folder count as one."""
    one_line_error(lambda: load_stage(gpt2_folder, ("sft",), "cpu", "align.x --init"),
                   str(gpt2_folder), "'pretrain' checkpoint", "align.x --init needs")


# ----------------------------------------------------------------- the lecture's pairs


def test_the_lecture_pairs_file_is_the_lectures_dpo_dataset_dict():
    rows = read_jsonl(EXAMPLES / "lecture_dpo_pairs.jsonl", PREFERENCE_KEYS)
    assert rows == rows_from_dict_of_lists(LECTURE_DPO_DATASET, source="dpo_dataset_dict")
    assert len(rows) == 7
