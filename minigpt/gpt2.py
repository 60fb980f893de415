"""GPT-2 weights in and out, in the Hugging Face folder format (nothing is downloaded).

    from minigpt.gpt2 import from_pretrained, save_pretrained
    model = from_pretrained("path/to/gpt2")       # a local folder: config.json + weights
    save_pretrained(model, "out/my-gpt2")         # transformers.GPT2LMHeadModel reads it back

A GPT-2 folder is also a checkpoint: every command that reads one (align.sft --init,
align.dpo --init, minigpt.sample --ckpt, ...) takes the folder itself, as a pre-trained
model ('pretrain') with GPT-2's tokenizer (`checkpoint_from_hf`). Or convert it once:

    python -m minigpt.gpt2 --from-hf gpt2 --out-dir runs/gpt2      # folder -> minigpt run
    python -m minigpt.gpt2 --to-hf runs/sft --out-dir hf/sft       # run -> Hugging Face folder

(get the folder on a machine with internet: huggingface-cli download gpt2 --local-dir gpt2)

A Hugging Face GPT-2 folder holds
    config.json          n_layer, n_head, n_embd, n_positions, vocab_size,
                         layer_norm_epsilon, activation_function, ...
    model.safetensors    the weights (read with the optional `safetensors` package), or
    pytorch_model.bin    the same, pickled by torch.save (read with weights_only=True);
                         a sharded folder has *.index.json naming the shards.
    vocab.json           the tokenizer: GPT-2's byte-level BPE, <|endoftext|> = id 50256
    merges.txt           (transformers 5 writes one tokenizer.json instead; it is read too)

minigpt's GPT is GPT-2's architecture, so loading is renaming plus one transposition.
GPT-2 (OpenAI's TensorFlow code, kept by Hugging Face) writes its projections as "Conv1D":
y = x W + b with W of shape (in, out). nn.Linear computes y = x Wᵀ + b with W of shape
(out, in). So the four projections of each block (attn.c_attn, attn.c_proj, mlp.c_fc,
mlp.c_proj) are transposed on the way in and on the way out; everything else is copied:

    Hugging Face                        minigpt
    transformer.wte.weight   (V, C)     wte.weight       (and lm_head.weight: tied)
    transformer.wpe.weight   (P, C)     wpe.weight
    transformer.h.{i}.ln_1.*            blocks.{i}.ln_1.*
    transformer.h.{i}.attn.c_attn.weight (C, 3C)  blocks.{i}.attn.c_attn.weight (3C, C)  ᵀ
    transformer.h.{i}.attn.c_proj.weight (C, C)   blocks.{i}.attn.c_proj.weight (C, C)   ᵀ
    transformer.h.{i}.ln_2.*            blocks.{i}.ln_2.*
    transformer.h.{i}.mlp.c_fc.weight   (C, 4C)   blocks.{i}.mlp.c_fc.weight (4C, C)     ᵀ
    transformer.h.{i}.mlp.c_proj.weight (4C, C)   blocks.{i}.mlp.c_proj.weight (C, 4C)   ᵀ
    transformer.ln_f.*                  ln_f.*

The "transformer." prefix is absent in some files (the original gpt2 upload); the buffers
attn.bias and attn.masked_bias (the causal mask, not weights) are dropped.

GPT-2 uses the tanh approximation of GELU ("gelu_new"); minigpt's default is the exact,
erf-based one. The two differ by up to ~1e-3 per activation, enough to break parity, so
the loaded model gets GPTConfig(gelu="tanh") and a saved model says which one it used.
"""

import json
import os
from dataclasses import asdict, dataclass, field

import torch

from minigpt.checkpoint import (
    CHECKPOINT_NAME,
    load_model,
    model_from_checkpoint,
    save_checkpoint,
    write_atomically,
)
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.config import GPTConfig
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder, write_owner_file
from minigpt.runlog import RunFolder
from minigpt.swaps import attention_to_run
from minigpt.tokenizer import BPETokenizer

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
PYTORCH_NAME = "pytorch_model.bin"
WEIGHTS_NAMES = (SAFETENSORS_NAME, PYTORCH_NAME, SAFETENSORS_NAME + ".index.json",
                 PYTORCH_NAME + ".index.json")
VOCAB_NAME, MERGES_NAME = "vocab.json", "merges.txt"  # GPT-2's own tokenizer files
TOKENIZER_JSON_NAME = "tokenizer.json"  # the one file transformers 5 writes instead
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"

# GPT2Config's defaults (transformers fills a missing key with these, so do we)
HF_DEFAULTS = {
    "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
    "n_inner": None, "activation_function": "gelu_new", "resid_pdrop": 0.1, "embd_pdrop": 0.1,
    "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
    "add_cross_attention": False, "tie_word_embeddings": True,
}
# Hugging Face activation names -> GPTConfig.gelu. gelu_new, gelu_fast and
# gelu_pytorch_tanh are three ways of writing the same tanh approximation.
ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh", "gelu": "erf"}
SAVED_ACTIVATION = {"tanh": "gelu_new", "erf": "gelu"}
# settings a GPT-2 config may have that minigpt's model does not compute: (key, what works)
UNSUPPORTED = (
    ("scale_attn_by_inverse_layer_idx", False),
    ("reorder_and_upcast_attn", False),
    ("add_cross_attention", False),
    ("scale_attn_weights", True),
    ("tie_word_embeddings", True),
)
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
BLOCK_TENSORS = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                 "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                 "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")
BUFFERS = ("attn.bias", "attn.masked_bias")  # the causal mask, stored by old versions


def safetensors_torch():
    """The optional safetensors.torch module, or None when it is not installed."""
    try:
        import safetensors.torch
    except ImportError:
        return None
    return safetensors.torch


# ----------------------------------------------------------------------------- reading


def from_pretrained(folder, dropout: float | None = None, attention: str = "manual"):
    """A GPT with the weights of a local Hugging Face GPT-2 folder, in eval mode.

    folder: holds config.json and model.safetensors or pytorch_model.bin (gpt2, gpt2-medium,
    gpt2-large, gpt2-xl or any other GPT-2 shape). dropout: None takes config.json's
    resid_pdrop / embd_pdrop / attn_pdrop (they must agree: minigpt has one dropout rate).
    attention: "manual" or "sdpa" (the same formula). Raises InputError, one line, for
    a missing folder or weights file, a config that is not GPT-2's or asks for something
    minigpt does not compute, and a tensor missing or of the wrong shape (named).
    """
    from minigpt.model import GPT

    config = hf_folder_config(folder, dropout=dropout, attention=attention)
    tensors, source = read_hf_tensors(str(folder))
    state_dict = state_dict_from_hf(tensors, config, source)
    model = GPT(config)
    model.load_state_dict(state_dict)
    return model.eval()


def hf_folder_config(folder, dropout: float | None = None, attention: str = "manual") -> GPTConfig:
    """The GPTConfig of a Hugging Face GPT-2 folder (its config.json), checked."""
    folder = str(folder)
    if not os.path.isdir(folder):
        raise InputError(f"{folder}: no such folder (expected a Hugging Face GPT-2 folder with "
                         f"{CONFIG_NAME} and {SAFETENSORS_NAME} or {PYTORCH_NAME})")
    return config_from_hf(read_hf_config(folder), where=os.path.join(folder, CONFIG_NAME),
                          dropout=dropout, attention=attention)


def read_hf_config(folder) -> dict:
    path = os.path.join(folder, CONFIG_NAME)
    if not os.path.isfile(path):
        raise InputError(f"{path}: not found (a Hugging Face model folder has a config.json)")
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not readable JSON: {error}") from None
    if not isinstance(values, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(values).__name__}")
    return values


def config_from_hf(values: dict, where: str = CONFIG_NAME, dropout: float | None = None,
                   attention: str = "manual") -> GPTConfig:
    """GPTConfig from a Hugging Face GPT-2 config.json (a dict); InputError if it is not one."""
    if attention not in ("manual", "sdpa"):
        raise InputError(f"attention={attention!r}: GPT-2's weights need attention 'manual' or "
                         f"'sdpa' (the same formula); LSH attention has other weights")
    model_type = values.get("model_type")
    if model_type != "gpt2":
        raise InputError(f"{where}: model_type is {model_type!r}, expected 'gpt2' (only GPT-2 "
                         f"checkpoints map onto minigpt's GPT)")
    hf = {**HF_DEFAULTS, **values}
    for key, works in UNSUPPORTED:
        if bool(hf[key]) != works:
            raise InputError(f"{where}: {key}={hf[key]!r} is not supported (minigpt's GPT "
                             f"computes GPT-2 with {key}={works})")
    activation = hf["activation_function"]
    if activation not in ACTIVATIONS:
        raise InputError(f"{where}: activation_function={activation!r} is not supported, "
                         f"expected one of {sorted(ACTIVATIONS)}")
    if hf["n_inner"] is not None and hf["n_inner"] != 4 * hf["n_embd"]:
        raise InputError(f"{where}: n_inner={hf['n_inner']} is not supported (minigpt's MLP is "
                         f"4 * n_embd = {4 * hf['n_embd']} wide)")
    if hf["layer_norm_epsilon"] != 1e-5:
        raise InputError(f"{where}: layer_norm_epsilon={hf['layer_norm_epsilon']} is not "
                         f"supported (minigpt's LayerNorm uses 1e-5, as GPT-2)")
    if dropout is None:
        rates = {hf[key] for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        if len(rates) != 1:
            raise InputError(f"{where}: resid_pdrop, embd_pdrop and attn_pdrop differ "
                             f"({sorted(rates)}); minigpt has one dropout rate: pass dropout=")
        dropout = rates.pop()
    try:
        return GPTConfig(block_size=hf["n_positions"], vocab_size=hf["vocab_size"],
                         n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=hf["n_embd"],
                         dropout=float(dropout), bias=True, attention=attention,
                         gelu=ACTIVATIONS[activation])
    except ValueError as error:
        raise InputError(f"{where}: {error}") from None


def read_hf_tensors(folder) -> tuple[dict, str]:
    """Every tensor of the folder's weights: ({name: tensor}, the file or index read).

    model.safetensors is preferred (as transformers does) when safetensors is installed;
    a sharded folder's model.safetensors.index.json / pytorch_model.bin.index.json names
    the shard of each tensor.
    """
    st = safetensors_torch()
    candidates = [(SAFETENSORS_NAME, "safetensors"), (PYTORCH_NAME, "torch")]
    present = []
    for name, kind in candidates:
        for path in (os.path.join(folder, name), os.path.join(folder, name + ".index.json")):
            if os.path.isfile(path):
                present.append((path, kind))
    usable = [(path, kind) for path, kind in present if kind == "torch" or st is not None]
    if not usable:
        if present:
            raise InputError(f"{present[0][0]}: reading safetensors needs the 'safetensors' "
                             f"package (pip install safetensors)")
        raise InputError(f"{folder}: no weights file (expected {SAFETENSORS_NAME} or "
                         f"{PYTORCH_NAME}, or a sharded *.index.json)")
    path, kind = usable[0]
    if path.endswith(".index.json"):
        shards = shard_files(path)
        tensors = {}
        for shard in shards:
            tensors.update(read_weights_file(os.path.join(folder, shard), kind))
        return tensors, path
    return read_weights_file(path, kind), path


def shard_files(index_path) -> list[str]:
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        return sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{index_path}: not a readable shard index ({error})") from None


def read_weights_file(path, kind) -> dict:
    if not os.path.isfile(path):
        raise InputError(f"{path}: not found (named by the shard index)")
    try:
        if kind == "safetensors":
            tensors = safetensors_torch().load_file(path, device="cpu")
        else:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (any failure to read is the file's problem)
        raise InputError(f"{path}: not a readable {kind} weights file "
                         f"({one_line(error)})") from None
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor)
                                                for t in tensors.values()):
        raise InputError(f"{path}: expected a dict of tensors (a state_dict)")
    return tensors


def hf_shapes(config: GPTConfig) -> dict[str, tuple]:
    """The shape of every tensor of a GPT-2 folder (Hugging Face names, Conv1D layout)."""
    V, P, C = config.vocab_size, config.block_size, config.n_embd
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    block = {"ln_1.weight": (C,), "ln_1.bias": (C,), "attn.c_attn.weight": (C, 3 * C),
             "attn.c_attn.bias": (3 * C,), "attn.c_proj.weight": (C, C), "attn.c_proj.bias": (C,),
             "ln_2.weight": (C,), "ln_2.bias": (C,), "mlp.c_fc.weight": (C, 4 * C),
             "mlp.c_fc.bias": (4 * C,), "mlp.c_proj.weight": (4 * C, C), "mlp.c_proj.bias": (C,)}
    for i in range(config.n_layer):
        shapes.update({f"h.{i}.{name}": shape for name, shape in block.items()})
    return shapes


def state_dict_from_hf(tensors: dict, config: GPTConfig, source: str = "weights") -> dict:
    """Hugging Face GPT-2 tensors -> a minigpt GPT state_dict (renamed, Conv1D transposed)."""
    prefix = "transformer."
    plain = {}  # names without the "transformer." prefix
    lm_head = None
    for name, tensor in tensors.items():
        if name == "lm_head.weight":
            lm_head = (name, tensor)
            continue
        short = name.removeprefix(prefix)
        if short.startswith("h.") and short.split(".", 2)[-1] in BUFFERS:
            continue  # the causal-mask buffers
        plain[short] = (name, tensor)
    wanted = hf_shapes(config)
    missing = [name for name in wanted if name not in plain]
    if missing:
        raise InputError(f"{source}: tensor {prefix + missing[0]!r} is missing ({len(missing)} "
                         f"missing in all)")
    unexpected = [original for short, (original, _) in plain.items() if short not in wanted]
    if unexpected:
        raise InputError(f"{source}: tensor {unexpected[0]!r} has no place in a GPT-2 language "
                         f"model of this config ({len(unexpected)} such in all)")
    for short, shape in wanted.items():
        original, tensor = plain[short]
        if tuple(tensor.shape) != shape:
            raise InputError(f"{source}: tensor {original!r} has shape {tuple(tensor.shape)}, "
                             f"config.json implies {shape}")
    if lm_head is not None and not torch.equal(lm_head[1], plain["wte.weight"][1]):
        raise InputError(f"{source}: lm_head.weight differs from wte.weight; minigpt ties the "
                         f"output layer to the token embedding")
    state_dict = {"wte.weight": plain["wte.weight"][1], "lm_head.weight": plain["wte.weight"][1],
                  "wpe.weight": plain["wpe.weight"][1], "ln_f.weight": plain["ln_f.weight"][1],
                  "ln_f.bias": plain["ln_f.bias"][1]}
    for i in range(config.n_layer):
        for name in BLOCK_TENSORS:
            tensor = plain[f"h.{i}.{name}"][1]
            # Conv1D (in, out) -> Linear (out, in)
            state_dict[f"blocks.{i}.{name}"] = tensor.t() if name in CONV1D else tensor
    return state_dict


# ------------------------------------------------------------- a GPT-2 folder as a checkpoint


def looks_like_hf_folder(path) -> bool:
    """Whether a folder holds a Hugging Face model: a weights file, or a config.json with a
    model_type (a minigpt run folder has a config.json too, but without one)."""
    path = str(path)
    if not os.path.isdir(path):
        return False
    if any(os.path.isfile(os.path.join(path, name)) for name in WEIGHTS_NAMES):
        return True
    try:
        with open(os.path.join(path, CONFIG_NAME), encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(values, dict) and "model_type" in values


def checkpoint_from_hf(folder) -> dict:
    """A Hugging Face GPT-2 folder as the dict load_checkpoint returns for a pre-trained model.

    The same keys as a checkpoint minigpt.train writes: model (the state_dict, renamed and
    transposed as from_pretrained does), step 0, model_config and tokenizer (JSON text;
    the tokenizer is GPT-2's BPE, from vocab.json + merges.txt or tokenizer.json), extra
    with no stage (so 'pretrain') and the folder it came from, and path = the folder.
    The tensors stay on the CPU (model_from_checkpoint copies them into the model).
    Reads config.json first, then the tokenizer, then the weights: a wrong folder is told
    apart before a large file is read. Every problem is a one-line InputError.
    """
    folder = str(folder)
    config = hf_folder_config(folder, attention=attention_to_run("auto"))  # what a run trains with
    tokenizer = tokenizer_from_hf(folder)
    if tokenizer.vocab_size != config.vocab_size:
        raise InputError(f"{folder}: the tokenizer has {tokenizer.vocab_size} tokens but "
                         f"{CONFIG_NAME} has vocab_size {config.vocab_size}; a GPT-2 folder's "
                         f"tokenizer and model must have the same vocabulary")
    tensors, source = read_hf_tensors(folder)
    return {
        "model": state_dict_from_hf(tensors, config, source),
        "step": 0,
        "model_config": json.dumps(config.to_dict()),
        "tokenizer": json.dumps(tokenizer.to_dict(), ensure_ascii=False),
        "extra": json.dumps({"hf_folder": folder}),
        "path": folder,
    }


def tokenizer_from_hf(folder):
    """GPT-2's byte-level BPE tokenizer from a Hugging Face folder, as a BPETokenizer.

    vocab.json + merges.txt (GPT-2's own files) are read first; without them
    tokenizer.json, the single file transformers 5 writes: its "model" holds the same
    vocabulary and merges, its "added_tokens" the special tokens (<|endoftext|>).
    """
    folder = str(folder)
    vocab_path, merges_path = (os.path.join(folder, n) for n in (VOCAB_NAME, MERGES_NAME))
    json_path = os.path.join(folder, TOKENIZER_JSON_NAME)
    if os.path.isfile(vocab_path) and os.path.isfile(merges_path):
        try:
            return BPETokenizer.from_files(folder)
        except (OSError, UnicodeDecodeError, ValueError) as error:  # bad JSON is a ValueError
            raise InputError(f"{folder}: {VOCAB_NAME} and {MERGES_NAME} are not a GPT-2 "
                             f"tokenizer: {one_line(error)}") from None
    if os.path.isfile(json_path):
        return tokenizer_from_json(json_path)
    missing = vocab_path if not os.path.isfile(vocab_path) else merges_path
    raise InputError(f"{missing}: not found (a GPT-2 folder holds its tokenizer as {VOCAB_NAME} "
                     f"and {MERGES_NAME}, or as transformers' {TOKENIZER_JSON_NAME})")


def tokenizer_from_json(path):
    """A BPETokenizer from a Hugging Face tokenizer.json of a byte-level BPE (GPT-2's)."""
    try:
        with open(path, encoding="utf-8") as f:
            model = json.load(f)
        added_tokens, model = model.get("added_tokens") or [], model["model"]
        kind = model.get("type")
    except KeyError as error:
        raise InputError(f"{path}: not a GPT-2 tokenizer (it has no {error} entry)") from None
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as error:  # bad JSON
        raise InputError(f"{path}: not a readable tokenizer.json ({one_line(error)})") from None
    if kind != "BPE":
        raise InputError(f"{path}: a {kind!r} tokenizer, expected GPT-2's byte-level 'BPE'")
    try:
        vocab = dict(model["vocab"])
        for added in added_tokens:  # <|endoftext|>, where the vocab does not list it
            vocab.setdefault(added["content"], added["id"])
        # merges: "Ġ t" strings (tokenizers before 0.20) or ["Ġ", "t"] pairs (newer)
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        return BPETokenizer.from_vocab(vocab, merges)
    except KeyError as error:
        raise InputError(f"{path}: not a GPT-2 tokenizer (it has no {error} entry)") from None
    except (ValueError, TypeError) as error:
        raise InputError(f"{path}: not a GPT-2 tokenizer ({one_line(error)})") from None


def one_line(error: Exception) -> str:
    """An error's message on one line, at most 200 characters (its type when it is empty)."""
    return " ".join(str(error).split())[:200] or type(error).__name__



# ----------------------------------------------------------------------------- writing


def save_pretrained(model, folder, safe_serialization: bool | None = None,
                    bos_token_id: int | None = None, eos_token_id: int | None = None):
    """Write a minigpt GPT as a Hugging Face GPT-2 folder: config.json and the weights.

    safe_serialization: True writes model.safetensors, False pytorch_model.bin; None picks
    safetensors when the package is installed. bos_token_id / eos_token_id go into
    config.json (the tokenizer is not part of the model; by default they are null).
    The other format's weights file, if one is left in the folder, is removed, so that
    transformers cannot read stale weights. Each file is written atomically.
    Refuses (InputError) a model GPT-2 cannot express: attention="lsh", embedding_dim,
    share_layers other than "none", bias=False.
    """
    config = model.config
    hf_config = config_to_hf(config, bos_token_id, eos_token_id)
    if safe_serialization is None:
        safe_serialization = safetensors_torch() is not None
    st = safetensors_torch()
    if safe_serialization and st is None:
        raise InputError("writing model.safetensors needs the 'safetensors' package "
                         "(pip install safetensors), or pass safe_serialization=False")
    tensors = state_dict_to_hf(model.state_dict(), config)
    folder = str(folder)
    os.makedirs(folder, exist_ok=True)
    write_atomically(os.path.join(folder, CONFIG_NAME),
                     data=(json.dumps(hf_config, indent=2) + "\n").encode("utf-8"))
    if safe_serialization:
        name, stale = SAFETENSORS_NAME, PYTORCH_NAME
        data = st.save(tensors, metadata={"format": "pt"})  # transformers checks the format
        write_atomically(os.path.join(folder, name), data=data)
    else:
        name, stale = PYTORCH_NAME, SAFETENSORS_NAME
        write_atomically(os.path.join(folder, name), save=lambda f: torch.save(tensors, f))
    for leftover in (stale, stale + ".index.json", name + ".index.json"):
        path = os.path.join(folder, leftover)
        if os.path.isfile(path):
            os.remove(path)
    return os.path.join(folder, name)


def config_to_hf(config: GPTConfig, bos_token_id=None, eos_token_id=None) -> dict:
    """The config.json of a GPT-2 with this GPTConfig; InputError if GPT-2 cannot express it."""
    refusals = [
        (config.attention == "lsh", "attention='lsh' (Reformer's shared-QK attention)"),
        (config.embedding_dim is not None,
         f"embedding_dim={config.embedding_dim} (ALBERT's factorised embedding)"),
        (config.share_layers != "none",
         f"share_layers={config.share_layers!r} (ALBERT's cross-layer sharing)"),
        (not config.bias, "bias=False (GPT-2 has biases in every Linear and LayerNorm)"),
    ]
    for refused, what in refusals:
        if refused:
            raise InputError(f"cannot save as GPT-2: the model uses {what}, which GPT-2's format "
                             f"cannot express")
    gelu = getattr(config, "gelu", "erf")
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": SAVED_ACTIVATION[gelu],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
    }


def state_dict_to_hf(state_dict: dict, config: GPTConfig) -> dict:
    """A minigpt GPT state_dict -> Hugging Face GPT-2 tensors (Conv1D layout, float32,
    contiguous; the tied lm_head is left out, as transformers writes it)."""
    def out(tensor):
        return tensor.detach().to("cpu", torch.float32).contiguous()

    tensors = {f"transformer.{name}": out(state_dict[name])
               for name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias")}
    for i in range(config.n_layer):
        for name in BLOCK_TENSORS:
            tensor = state_dict[f"blocks.{i}.{name}"]
            tensors[f"transformer.h.{i}.{name}"] = out(tensor.t() if name in CONV1D else tensor)
    return tensors


# ----------------------------------------------------------------------------- converting


@dataclass
class ConvertConfig:
    """Settings of `python -m minigpt.gpt2`: one direction, one output folder."""

    from_hf: str = field(default="", metadata={
        "help": "a Hugging Face GPT-2 folder to convert into a minigpt run (ckpt.pt)"})
    to_hf: str = field(default="", metadata={
        "help": "a minigpt run folder or ckpt.pt (a language model) to write as a Hugging Face "
                "GPT-2 folder"})
    out_dir: str = field(default="", metadata={"help": "the folder to write"})
    weights: str = field(default="auto", metadata={
        "help": "--to-hf's weights file: safetensors, bin (pytorch_model.bin) or auto "
                "(safetensors when the package is installed)",
        "choices": ("auto", "safetensors", "bin")})
    overwrite: bool = field(default=False, metadata={
        "help": "replace what --out-dir holds (without it, an existing model there is refused)"})


def convert_from_hf(folder, out_dir, overwrite=False) -> str:
    """A Hugging Face GPT-2 folder -> a minigpt run folder: ckpt.pt (a 'pretrain' checkpoint,
    model only), tokenizer.json, config.json and report.md. Returns the ckpt.pt path."""
    if check_run_folder(out_dir, "gpt2") and not overwrite:
        raise InputError(f"--out-dir {out_dir}: already holds a converted model; pass "
                         f"--overwrite to replace it, or give another --out-dir")
    checkpoint = checkpoint_from_hf(folder)
    model, tokenizer = model_from_checkpoint(checkpoint)
    run = RunFolder(out_dir, "gpt2")
    run.write_json("config.json", {"from_hf": str(folder), "out_dir": str(out_dir),
                                   "model_config": model.config.to_dict()})
    tokenizer.save(run.file("tokenizer.json"))
    path = run.file(CHECKPOINT_NAME)
    save_checkpoint(path, model, 0, model.config, tokenizer, extra=json.loads(checkpoint["extra"]))
    run.write_text("report.md", f"# GPT-2 from `{folder}`\n\n{describe(model, tokenizer)}\n")
    print(f"{folder} -> {path}: {describe(model, tokenizer)}")
    return path


def convert_to_hf(run, out_dir, weights="auto", overwrite=False) -> str:
    """A minigpt language model (a run folder or ckpt.pt) -> a Hugging Face GPT-2 folder:
    config.json and the weights; with a BPE tokenizer also vocab.json, merges.txt and a
    tokenizer_config.json naming its special tokens (transformers.AutoTokenizer reads them).
    Returns the weights file's path."""
    if check_run_folder(out_dir, "hf") and not overwrite:  # a minigpt run there is refused
        raise InputError(f"--out-dir {out_dir}: already holds a Hugging Face model; pass "
                         f"--overwrite to replace it, or give another --out-dir")
    model, tokenizer, _ = load_model(run, "cpu", needed_by="minigpt.gpt2 --to-hf")
    safe = {"auto": None, "safetensors": True, "bin": False}[weights]
    written = save_pretrained(model, out_dir, safe_serialization=safe,
                              bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)
    write_owner_file(out_dir, "hf")  # run.json: transformers reads none of it
    if tokenizer.kind == "bpe":
        tokenizer.save_files(out_dir)
        names = {i: token for token, i in tokenizer.vocab().items()}
        special = {"bos_token": names[tokenizer.bos_id], "eos_token": names[tokenizer.eos_id],
                   "pad_token": names[tokenizer.pad_id], "unk_token": names[tokenizer.eos_id]}
        tokenizer_config = {"tokenizer_class": "GPT2Tokenizer", "add_prefix_space": False,
                            "model_max_length": model.config.block_size, **special}
        write_atomically(os.path.join(out_dir, TOKENIZER_CONFIG_NAME),
                         (json.dumps(tokenizer_config, indent=2) + "\n").encode("utf-8"))
    else:
        print(f"note: the run's tokenizer is a {tokenizer.kind!r} tokenizer, which GPT-2's "
              f"format cannot hold: {out_dir} gets the model only")
    print(f"{run} -> {written}: {describe(model, tokenizer)}")
    return written


def describe(model, tokenizer) -> str:
    """One line on a model and its tokenizer, for the printed summary and report.md."""
    c = model.config
    return (f"{model.num_parameters():,} parameters: {c.n_layer} layers, {c.n_head} heads, "
            f"n_embd {c.n_embd}, context {c.block_size} tokens, vocabulary {c.vocab_size} "
            f"({tokenizer.kind} tokenizer)")


def main(argv=None):
    parser = parser_from_dataclass(ConvertConfig, __doc__)
    config = ConvertConfig(**given_flags(parser.parse_args(argv)))
    if bool(config.from_hf) == bool(config.to_hf):
        raise InputError("give one of --from-hf FOLDER (a Hugging Face GPT-2 folder to a minigpt "
                         "run) or --to-hf RUN (a minigpt run to a Hugging Face GPT-2 folder)")
    if not config.out_dir:
        raise InputError("--out-dir is required")
    if config.from_hf:
        written = convert_from_hf(config.from_hf, config.out_dir, config.overwrite)
        print(f"next: python -m align.sft --init {config.out_dir} --data examples/sft.jsonl")
    else:
        written = convert_to_hf(config.to_hf, config.out_dir, config.weights, config.overwrite)
        print(f"next: transformers.GPT2LMHeadModel.from_pretrained({config.out_dir!r})")
    return asdict(config) | {"written": written}


if __name__ == "__main__":
    run_main(main)
