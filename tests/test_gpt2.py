"""GPT-2 weights in and out (minigpt.gpt2): the Hugging Face folder format, nothing downloaded.

Without transformers: a save -> load round trip, a hand-made Hugging Face state dict
(Conv1D layout) landing in the right places, the four GPT-2 sizes, one-line errors.
With transformers (skipped when it is not installed): logits, batched left-padded
prompts and KV-cache generation equal to GPT2LMHeadModel's, in both directions.
"""

import json
import os

import pytest
import torch

from minigpt import GPT, GPTConfig, pad_left
from minigpt.errors import InputError
from minigpt.gpt2 import (
    config_from_hf,
    from_pretrained,
    hf_shapes,
    safetensors_torch,
    save_pretrained,
)
from minigpt.model import kv_cache_step

TOL = 1e-5  # float32
FORMATS = [False] + ([True] if safetensors_torch() is not None else [])  # safe_serialization


def gpt2_config(**overrides) -> GPTConfig:
    values = dict(block_size=64, vocab_size=100, n_layer=2, n_head=2, n_embd=32, gelu="tanh")
    values.update(overrides)
    return GPTConfig(**values)


def random_model(seed=0, **overrides) -> GPT:
    torch.manual_seed(seed)
    model = GPT(gpt2_config(**overrides)).eval()
    with torch.no_grad():  # biases and LayerNorms away from their 0 / 1 init, so a mix-up shows
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def hf_config_dict(**overrides) -> dict:
    values = dict(model_type="gpt2", n_layer=2, n_head=2, n_embd=32, n_positions=64,
                  vocab_size=100, activation_function="gelu_new", layer_norm_epsilon=1e-5)
    values.update(overrides)
    return values


def write_folder(folder, config: dict, tensors: dict | None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    if tensors is not None:
        torch.save(tensors, folder / "pytorch_model.bin")
    return folder


def hf_style_tensors(n_layer=2, C=32, V=100, P=64, prefix="transformer.", seed=0) -> dict:
    """Random tensors named and shaped as a GPT2LMHeadModel state dict (Conv1D: (in, out)),
    with the causal-mask buffers and the tied lm_head that older files carry."""
    g = torch.Generator().manual_seed(seed)
    shapes = hf_shapes(GPTConfig(block_size=P, vocab_size=V, n_layer=n_layer, n_head=2, n_embd=C))
    tensors = {prefix + name: torch.randn(shape, generator=g) for name, shape in shapes.items()}
    for i in range(n_layer):
        tensors[f"{prefix}h.{i}.attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
        tensors[f"{prefix}h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    tensors["lm_head.weight"] = tensors[prefix + "wte.weight"]
    return tensors


def one_line_error(call, *words):
    with pytest.raises(InputError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


# ------------------------------------------------------------------ without transformers


@pytest.mark.parametrize("safe", FORMATS)
@pytest.mark.parametrize("gelu", ["tanh", "erf"])
def test_save_then_load_gives_identical_logits(tmp_path, safe, gelu):
    model = random_model(gelu=gelu)
    written = save_pretrained(model, tmp_path / "hf", safe_serialization=safe)
    assert written.endswith("model.safetensors" if safe else "pytorch_model.bin")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert config["activation_function"] == {"tanh": "gelu_new", "erf": "gelu"}[gelu]

    loaded = from_pretrained(tmp_path / "hf")
    assert loaded.config == model.config and not loaded.training
    assert loaded.lm_head.weight is loaded.wte.weight  # still tied
    idx = torch.randint(0, 100, (3, 20), generator=torch.Generator().manual_seed(1))
    assert torch.equal(model(idx)[0], loaded(idx)[0])


def test_saving_again_in_the_other_format_removes_the_stale_weights(tmp_path):
    if safetensors_torch() is None:
        pytest.skip("needs safetensors")
    save_pretrained(random_model(seed=0), tmp_path, safe_serialization=True)
    save_pretrained(random_model(seed=1), tmp_path, safe_serialization=False)
    assert not (tmp_path / "model.safetensors").exists()
    assert torch.equal(from_pretrained(tmp_path).wte.weight, random_model(seed=1).wte.weight)


@pytest.mark.parametrize("prefix", ["transformer.", ""])  # "": the original gpt2 upload's names
def test_a_hugging_face_state_dict_lands_in_the_right_places(tmp_path, prefix):
    hf = hf_style_tensors(prefix=prefix)
    model = from_pretrained(write_folder(tmp_path, hf_config_dict(), hf))
    assert model.config.gelu == "tanh" and model.config.block_size == 64
    assert torch.equal(model.wte.weight, hf[prefix + "wte.weight"])
    assert torch.equal(model.lm_head.weight, hf[prefix + "wte.weight"])
    assert torch.equal(model.wpe.weight, hf[prefix + "wpe.weight"])
    assert torch.equal(model.ln_f.weight, hf[prefix + "ln_f.weight"])
    assert torch.equal(model.ln_f.bias, hf[prefix + "ln_f.bias"])
    x = torch.randn(5, 128)
    for i, block in enumerate(model.blocks):
        h = f"{prefix}h.{i}."
        for name in ("ln_1", "ln_2"):
            assert torch.equal(getattr(block, name).weight, hf[h + name + ".weight"])
            assert torch.equal(getattr(block, name).bias, hf[h + name + ".bias"])
        for name, linear in (("attn.c_attn", block.attn.c_attn), ("attn.c_proj", block.attn.c_proj),
                             ("mlp.c_fc", block.mlp.c_fc), ("mlp.c_proj", block.mlp.c_proj)):
            W, b = hf[h + name + ".weight"], hf[h + name + ".bias"]  # Conv1D: y = x W + b
            # element by element: Linear's weight[o, i] is Conv1D's W[i, o]
            rows, cols = torch.arange(W.shape[1]).view(-1, 1), torch.arange(W.shape[0]).view(1, -1)
            expected = W[cols, rows]  # (out, in), by indexing rather than by .t()
            assert torch.equal(linear.weight, expected), name
            assert torch.equal(linear.bias, b), name
            inputs = x[:, : W.shape[0]]
            # Conv1D's formula, y = b + x W
            torch.testing.assert_close(linear(inputs), torch.addmm(b, inputs, W))


@pytest.mark.parametrize("name, n_layer, n_head, n_embd, parameters", [
    ("gpt2", 12, 12, 768, 124_439_808),
    ("gpt2-medium", 24, 16, 1024, 354_823_168),
    ("gpt2-large", 36, 20, 1280, 774_030_080),
    ("gpt2-xl", 48, 25, 1600, 1_557_611_200),
])
def test_the_four_gpt2_sizes_map_onto_gpt_configs(name, n_layer, n_head, n_embd, parameters):
    hub = {"model_type": "gpt2", "n_layer": n_layer, "n_head": n_head, "n_embd": n_embd,
           "n_positions": 1024, "n_ctx": 1024, "vocab_size": 50257,
           "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
           "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1}
    config = config_from_hf(hub)
    assert (config.n_layer, config.n_head, config.n_embd) == (n_layer, n_head, n_embd)
    assert (config.block_size, config.vocab_size) == (1024, 50257)
    assert (config.gelu, config.dropout) == ("tanh", 0.1)
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = GPT(config)
    assert model.num_parameters() == parameters  # as transformers counts GPT2LMHeadModel


def test_errors_are_one_line_and_name_the_problem(tmp_path):
    one_line_error(lambda: from_pretrained(tmp_path / "nowhere"), "no such folder")
    good = hf_style_tensors()
    one_line_error(lambda: from_pretrained(write_folder(tmp_path / "a", hf_config_dict(), None)),
                   "no weights file")
    (tmp_path / "b").mkdir()
    one_line_error(lambda: from_pretrained(tmp_path / "b"), "config.json", "not found")
    bert = write_folder(tmp_path / "c", hf_config_dict(model_type="bert"), good)
    one_line_error(lambda: from_pretrained(bert), "model_type", "'bert'")
    for key in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        folder = write_folder(tmp_path / key, hf_config_dict(**{key: True}), good)
        one_line_error(lambda folder=folder: from_pretrained(folder), key, "not supported")
    relu = write_folder(tmp_path / "d", hf_config_dict(activation_function="relu"), good)
    one_line_error(lambda: from_pretrained(relu), "activation_function")
    eps = write_folder(tmp_path / "e", hf_config_dict(layer_norm_epsilon=1e-6), good)
    one_line_error(lambda: from_pretrained(eps), "layer_norm_epsilon")

    wide = write_folder(tmp_path / "f", hf_config_dict(n_embd=64), good)
    one_line_error(lambda: from_pretrained(wide), "'transformer.wte.weight'", "shape")
    deep = write_folder(tmp_path / "g", hf_config_dict(n_layer=3), good)
    one_line_error(lambda: from_pretrained(deep), "'transformer.h.2.ln_1.weight'", "missing")
    extra = write_folder(tmp_path / "h", hf_config_dict(),
                         {**good, "score.weight": torch.zeros(2, 32)})
    one_line_error(lambda: from_pretrained(extra), "'score.weight'")
    untied = write_folder(tmp_path / "i", hf_config_dict(),
                          {**good, "lm_head.weight": torch.zeros(100, 32)})
    one_line_error(lambda: from_pretrained(untied), "lm_head.weight")
    broken = write_folder(tmp_path / "j", hf_config_dict(), None)
    (broken / "pytorch_model.bin").write_bytes(b"not a torch file")
    one_line_error(lambda: from_pretrained(broken), "pytorch_model.bin", "not a readable")
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "config.json").write_text("{not json")
    one_line_error(lambda: from_pretrained(tmp_path / "k"), "config.json", "JSON")


def test_safetensors_without_the_package_says_what_to_install(tmp_path, monkeypatch):
    import minigpt.gpt2

    monkeypatch.setattr(minigpt.gpt2, "safetensors_torch", lambda: None)
    folder = write_folder(tmp_path, hf_config_dict(), None)
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    one_line_error(lambda: from_pretrained(folder), "pip install safetensors")
    model = random_model()
    one_line_error(lambda: save_pretrained(model, tmp_path / "out", safe_serialization=True),
                   "safetensors")
    assert save_pretrained(random_model(), tmp_path / "out").endswith("pytorch_model.bin")


@pytest.mark.parametrize("overrides, word", [
    (dict(attention="lsh"), "lsh"),
    (dict(embedding_dim=16), "embedding_dim"),
    (dict(share_layers="all"), "share_layers"),
    (dict(bias=False), "bias=False"),
])
def test_saving_refuses_what_gpt2_cannot_express(tmp_path, overrides, word):
    model = GPT(gpt2_config(**overrides))
    one_line_error(lambda: save_pretrained(model, tmp_path / "out"), "cannot save as GPT-2", word)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------- with transformers


@pytest.fixture
def transformers():
    return pytest.importorskip("transformers")


def hf_tiny(transformers, seed=0, **overrides):
    torch.manual_seed(seed)
    values = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 64, "vocab_size": 100}
    config = transformers.GPT2Config(**{**values, **overrides})
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # move biases and LayerNorms off 0 / 1 so that a mix-up shows
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def left_padded_batch():
    prompts = [[5, 17, 3, 99, 42, 8, 1], [7, 7], [60, 61, 62, 63]]
    return pad_left(prompts, pad_id=0)  # idx, attention_mask (B, 7)


def hf_position_ids(attention_mask):
    """What transformers' generate computes for left-padded prompts."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_a_transformers_model_loads_with_equal_logits(tmp_path, transformers, activation):
    hf = hf_tiny(transformers, activation_function=activation)
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    assert model.config.gelu == {"gelu_new": "tanh", "gelu": "erf"}[activation]
    idx = torch.randint(0, 100, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert max_diff(model(idx)[0], hf(idx).logits) <= TOL


def test_left_padded_batches_match_transformers(tmp_path, transformers):
    hf = hf_tiny(transformers)
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    idx, mask = left_padded_batch()
    real = mask.bool()
    with torch.no_grad():
        ours = model(idx, attention_mask=mask)[0]  # positions from the mask (cumsum - 1)
        theirs = hf(idx, attention_mask=mask, position_ids=hf_position_ids(mask)).logits
    assert max_diff(ours[real], theirs[real]) <= TOL  # padded positions are never used


def test_kv_cache_generation_matches_transformers(tmp_path, transformers):
    hf = hf_tiny(transformers)
    hf.save_pretrained(tmp_path)
    model = from_pretrained(tmp_path)
    idx, mask = left_padded_batch()
    new = 12
    with torch.no_grad():
        out = hf.generate(idx, attention_mask=mask, max_new_tokens=new, do_sample=False,
                          pad_token_id=0, eos_token_id=None, return_dict_in_generate=True,
                          output_logits=True)
    ours = model.generate(idx, new, temperature=0.0, attention_mask=mask)
    assert torch.equal(ours, out.sequences)
    # the logits of every step, computed with minigpt's KV cache on transformers' tokens
    from minigpt.model import KVCache

    cache, tokens, step_mask = KVCache(model.config.n_layer), idx, mask
    for step in range(new):
        logits = kv_cache_step(model, tokens, cache, step_mask)
        assert max_diff(logits, out.logits[step]) <= TOL, step
        tokens = out.sequences[:, : idx.size(1) + step + 1]
        step_mask = torch.cat([step_mask, torch.ones_like(step_mask[:, :1])], dim=1)


@pytest.mark.parametrize("gelu", ["tanh", "erf"])
@pytest.mark.parametrize("safe", FORMATS)
def test_a_minigpt_model_loads_in_transformers(tmp_path, transformers, gelu, safe):
    model = random_model(gelu=gelu)
    save_pretrained(model, tmp_path, safe_serialization=safe)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    idx = torch.randint(0, 100, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert max_diff(model(idx)[0], hf(idx).logits) <= TOL
    idx, mask = left_padded_batch()
    with torch.no_grad():
        out = hf.generate(idx, attention_mask=mask, max_new_tokens=10, do_sample=False,
                          pad_token_id=0, eos_token_id=None)
    assert torch.equal(model.generate(idx, 10, temperature=0.0, attention_mask=mask), out)


def test_a_folder_transformers_wrote_starts_align_sft(tmp_path, transformers):
    """A GPT2LMHeadModel and a GPT2Tokenizer saved by transformers (its own files: in
    transformers 5 a tokenizer.json, before it vocab.json + merges.txt) are `--init` for
    align.sft: the same logits and the same token ids as transformers computes."""
    from align.common import load_stage
    from align.data import read_jsonl, write_jsonl
    from align.sft import main as sft_main
    from minigpt.checkpoint import model_from_checkpoint
    from minigpt.tokenizer import ENDOFTEXT, BPETokenizer

    examples = os.path.join(os.path.dirname(__file__), "..", "examples")
    with open(os.path.join(examples, "corpus.txt"), encoding="utf-8") as f:
        trained = BPETokenizer.train(f.read()[:4000], 300, progress=False)
    BPETokenizer(trained.merges, trained.tokens, [ENDOFTEXT]).save_files(tmp_path / "bpe")
    folder = tmp_path / "gpt2"
    hf_tokenizer = transformers.GPT2Tokenizer.from_pretrained(tmp_path / "bpe")
    hf_tokenizer.save_pretrained(folder)
    hf = hf_tiny(transformers, vocab_size=len(hf_tokenizer))
    hf.save_pretrained(folder)

    checkpoint, stage = load_stage(folder, ("pretrain", "sft"), "cpu", "align.sft --init")
    model, tokenizer = model_from_checkpoint(checkpoint)
    text = "User: What is your name?\nAssistant: My name is Mary. ¿Y tú? 😺"
    assert stage == "pretrain" and tokenizer.encode(text) == hf_tokenizer(text)["input_ids"]
    assert tokenizer.eos_id == hf_tokenizer.eos_token_id
    idx = torch.randint(0, len(hf_tokenizer), (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert max_diff(model.eval()(idx)[0], hf(idx).logits) <= TOL

    # answers that start with a space, as GPT-2's words do (align.data needs the prompt's
    # tokens to be a prefix of the whole text's: "Assistant: " + "Mary" is not, with GPT-2)
    rows = read_jsonl(os.path.join(examples, "sft.jsonl"), ("prompt", "completion"))[:16]
    write_jsonl(tmp_path / "sft.jsonl", [{**r, "completion": " " + r["completion"]} for r in rows])
    sft_main(["--init", str(folder), "--data", str(tmp_path / "sft.jsonl"), "--out-dir",
              str(tmp_path / "sft"), "--max-iters", "2", "--batch-size", "4", "--max-length", "64",
              "--device", "cpu"])
    sft, _ = load_stage(tmp_path / "sft", ("sft",), "cpu", "test")
    assert sft["step"] == 2 and model_from_checkpoint(sft)[1] == tokenizer
