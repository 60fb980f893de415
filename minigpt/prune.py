"""Magnitude pruning, measured: zeros in the weights, not a smaller model.

Pruning ("poda") sets weights to zero. Global magnitude pruning to sparsity s takes every
weight matrix W of the transformer blocks' nn.Linear layers together and zeroes the
fraction s of their entries with the smallest |w|:

    τ = the ⌊s·N⌉-th smallest |w| over all N pruned weights;   w ← 0 where |w| ≤ τ

(torch.nn.utils.prune.global_unstructured with prune.L1Unstructured; the threshold is
global, so one layer may lose more than another). The library stores W_orig and a 0/1
mask and computes W = W_orig ⊙ mask; prune.remove makes that permanent. Either way the
tensor keeps its shape: the parameter count (numel) and the dense state_dict's bytes do
not change at all. A pruned model is smaller only when stored in a sparse format, e.g.
CSR (compressed sparse rows): nnz values, nnz column indices and rows + 1 row pointers.
With float32 values and PyTorch's int64 indices a nonzero costs 4 + 8 = 12 bytes against
4 for a dense entry, so CSR wins only below density 1/3: past about 67% sparsity (50%
with int32 indices, 8 bytes per nonzero). The table shows where each crossing falls.

What is pruned: the weight matrices of every nn.Linear inside model.blocks (attention's
c_attn and c_proj, the MLP's c_fc and c_proj), each shared module once under ALBERT's
share_layers. Left dense: biases, LayerNorms, the position embedding, ALBERT's embedding
projections, and the tied token embedding / lm_head. That last one is one tensor with two
jobs (row v is token v's input vector and its output scorer), so zeroing an entry prunes
both at once; it is a lookup table rather than one of the blocks' matrices, and it is
exactly where ALBERT saves (see below), so leaving it out keeps the two ideas apart.

How ALBERT really got small (Lan et al. 2019, "ALBERT: A Lite BERT"): no pruning at
all. (1) A factorised embedding: V × E plus E × H instead of V × H, with E ≪ H; (2)
cross-layer parameter sharing: one set of block weights used at every depth. Both remove
parameters, so numel and the file shrink (minigpt's GPTConfig(embedding_dim=...,
share_layers=...)); pruning keeps every parameter and makes some of them zero.

Run:
    python -m minigpt.prune --run runs/pretrain
    python -m minigpt.prune --run runs/pretrain --sparsities 0,0.5,0.9,0.99 --eval-iters 50

--run is a pre-training run folder (minigpt.train's --out-dir: ckpt.pt and config.json).
The validation loss is measured on that run's validation split (its config.json names
the text; the tokenizer is the checkpoint's) with estimate_loss: the same batches for
every sparsity, and with the run's --eval-iters those of its last evaluation. Printed:
one table row per sparsity (share of pruned weights that are zero, nonzero parameters,
numel, dense state_dict bytes, the pruned matrices' bytes dense and as CSR, validation
loss and its change), then two sentences of finding. Written into --out-dir (default
RUN/pruning): pruning.md, pruning.json (the rows), pruning.png and config.json.

Python:
    >>> from minigpt.prune import prune_model, prune_curve
    >>> pruned = prune_model(model, 0.5)   # a copy; half the blocks' matrix entries are 0
    >>> rows = prune_curve(model, data, [0.0, 0.5, 0.9], train_config)
"""

import copy
import dataclasses
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field

import matplotlib
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from tqdm import tqdm

matplotlib.use("Agg")  # write PNG files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

from minigpt.checkpoint import CHECKPOINT_NAME, load_model  # noqa: E402
from minigpt.cli import given_flags, parser_from_dataclass, run_main, show_progress  # noqa: E402
from minigpt.data import TokenData, read_text_file  # noqa: E402
from minigpt.device import pick_device  # noqa: E402
from minigpt.errors import InputError  # noqa: E402
from minigpt.ownership import check_run_folder
from minigpt.runlog import RunFolder  # noqa: E402
from minigpt.train import TrainConfig, builtin_corpus, estimate_loss  # noqa: E402

DEFAULT_SPARSITIES = ",".join(f"{i / 10:g}" for i in range(10))  # 0,0.1,...,0.9


@dataclass
class PruneConfig:
    run: str = field(default="runs/pretrain", metadata={
        "help": "pre-training run folder (minigpt.train's --out-dir: ckpt.pt, config.json)"})
    sparsities: str = field(default=DEFAULT_SPARSITIES, metadata={
        "help": "shares of the blocks' Linear weights to zero, comma-separated, each in [0, 1); "
                "0 (the unpruned baseline) is always measured"})
    eval_iters: int = field(default=0, metadata={
        "help": "validation batches per sparsity (the same batches each time); 0: the run's "
                "own --eval-iters"})
    out_dir: str = field(default="", metadata={"help": "folder to write; empty: RUN/pruning"})
    device: str = field(default="auto", metadata={
        "help": "auto (CUDA if present, else CPU), cpu, cuda or mps"})
    progress: bool = field(default=True, metadata={
        "help": "show a progress bar over the sparsities (never when stderr is not a terminal)"})

    def sparsity_list(self) -> list[float]:
        """The --sparsities values, sorted, with the baseline 0 added when missing."""
        try:
            values = [float(v) for v in self.sparsities.split(",") if v.strip()]
        except ValueError:
            raise InputError(f"--sparsities {self.sparsities!r}: expected numbers separated by "
                             f"commas, e.g. 0,0.5,0.9") from None
        if not values or any(math.isnan(v) for v in values):
            raise InputError(f"--sparsities {self.sparsities!r}: expected numbers separated by "
                             f"commas, e.g. 0,0.5,0.9")
        for value in values:
            if not 0.0 <= value < 1.0:
                raise InputError(f"--sparsities: each sparsity must be in [0, 1) (1 would zero "
                                 f"every weight), got {value:g}")
        return sorted(set(values) | {0.0})


# ---------------------------------------------------------------------- pruning, measured

def prunable_modules(model) -> list[nn.Linear]:
    """Every nn.Linear in the transformer blocks, each once (a module shared by several
    depths, ALBERT's share_layers, is one set of weights)."""
    return [module for module in model.blocks.modules() if isinstance(module, nn.Linear)]


def prune_model(model, amount: float):
    """A copy of model with the fraction `amount` of the blocks' Linear weights zeroed:
    the smallest |w| over all those matrices together (global L1 magnitude), made
    permanent with prune.remove (no mask or weight_orig left). model is not changed."""
    pruned = copy.deepcopy(model)
    targets = [(module, "weight") for module in prunable_modules(pruned)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured,
                              amount=float(amount))  # an int would count weights, not a share
    for module, name in targets:
        prune.remove(module, name)  # weight = weight_orig ⊙ mask, as a plain Parameter again
    return pruned


def dense_bytes(state_dict) -> int:
    """Bytes of torch.save(state_dict), measured in memory (a tensor shared by several
    names, like the tied embedding, is stored once)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getbuffer().nbytes


def sparse_bytes(tensor, index_dtype=torch.int64) -> int:
    """Bytes of a 2-D tensor stored as CSR: its values, column indices and row pointers,
    measured on tensor.to_sparse_csr() (whose indices are int64; int32 converts them)."""
    if tensor.dim() != 2:
        raise ValueError(f"sparse_bytes: CSR needs a matrix, got shape {tuple(tensor.shape)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta state"
        csr = tensor.detach().cpu().to_sparse_csr()
    values = csr.values()  # (nnz,)
    columns = csr.col_indices().to(index_dtype)  # (nnz,)
    row_pointers = csr.crow_indices().to(index_dtype)  # (rows + 1,)
    return sum(t.numel() * t.element_size() for t in (values, columns, row_pointers))


def measure(model) -> dict:
    """What a (pruned) model holds and takes, counted rather than assumed."""
    weights = [module.weight.detach() for module in prunable_modules(model)]
    n_pruned = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    parameters = list(model.parameters())  # the tied and shared tensors once
    return {
        "pruned_weights": n_pruned,
        "zeros": zeros,
        "zero_share": zeros / n_pruned,
        "nonzero_parameters": sum(int(torch.count_nonzero(p)) for p in parameters),
        "parameters": sum(p.numel() for p in parameters),
        "dense_state_dict_bytes": dense_bytes(model.state_dict()),
        "matrices_dense_bytes": sum(w.numel() * w.element_size() for w in weights),
        "matrices_csr_bytes": sum(sparse_bytes(w) for w in weights),
        "matrices_csr_int32_bytes": sum(sparse_bytes(w, torch.int32) for w in weights),
    }


def prune_curve(model, data: TokenData, sparsities, eval_config=None, device="cpu",
                progress=False) -> list[dict]:
    """One row per sparsity: measure(prune_model(model, s)) and estimate_loss's losses.

    eval_config gives estimate_loss its batch_size, block_size, eval_iters and seed (the
    run's TrainConfig: then the batches are those of the run's own evaluations; default:
    TrainConfig's, with the model's block_size). Each sparsity prunes a fresh copy of
    model; val_loss_change is against the first row with sparsity 0 (else the first)."""
    eval_config = eval_config or TrainConfig(block_size=model.config.block_size)
    rows = []
    for sparsity in tqdm(list(sparsities), desc="pruning", disable=not progress,
                         dynamic_ncols=True):
        pruned = prune_model(model, sparsity)
        losses = estimate_loss(pruned, data, eval_config, device)
        rows.append({"sparsity": sparsity, **measure(pruned),
                     "val_loss": losses["val"], "train_loss": losses["train"]})
    base = next((row for row in rows if row["sparsity"] == 0), rows[0])
    for row in rows:
        row["val_loss_change"] = row["val_loss"] - base["val_loss"]
    return rows


# ---------------------------------------------------------------------- report

def first_where(rows, condition):
    return next((row["sparsity"] for row in rows if condition(row)), None)


def findings(rows) -> str:
    """The two sentences the table says."""
    last = rows[-1]
    params = {row["parameters"] for row in rows}
    sizes = {row["dense_state_dict_bytes"] for row in rows}
    same = "the same" if len(params) == 1 and len(sizes) == 1 else "NOT the same (unexpected)"
    csr64 = first_where(rows, lambda r: r["matrices_csr_bytes"] < r["matrices_dense_bytes"])
    csr32 = first_where(rows, lambda r: r["matrices_csr_int32_bytes"] < r["matrices_dense_bytes"])
    tolerable = None  # the last sparsity before the loss first rises by 1% or more
    for row in rows:
        if row["val_loss_change"] >= 0.01 * rows[0]["val_loss"]:
            break
        tolerable = row["sparsity"]

    def pct(s):
        return "no sparsity measured here" if s is None else f"{s:.0%}"
    return (
        f"Pruning zeroed up to {last['zero_share']:.1%} of the {last['pruned_weights']:,} weights "
        f"of the blocks' Linear layers, and the validation loss rose by "
        f"{last['val_loss_change']:+.4f} at sparsity {last['sparsity']:g} (less than 1% up to "
        f"{pct(tolerable)}), yet the parameter count "
        f"({min(params):,}) and the dense state_dict ({min(sizes):,} bytes) are {same} at every "
        f"sparsity: pruning stores zeros, it removes nothing. "
        f"Only a sparse format makes it smaller: CSR of the pruned matrices takes fewer bytes "
        f"than dense from {pct(csr64)} on with int64 indices (12 bytes a nonzero: break-even "
        f"near 67%), from {pct(csr32)} with int32 (near 50%); ALBERT got small with a "
        f"factorised embedding and cross-layer sharing (Lan et al. 2019), not pruning.")


def bytes_cell(csr, dense) -> str:
    cell = f"{csr:,} ({csr / dense:.2f}×)"
    return f"**{cell}**" if csr < dense else cell  # bold: smaller than dense


def table(rows) -> str:
    lines = ["| sparsity | zeros in pruned weights | nonzero params | params (numel) | "
             "state_dict bytes (dense) | pruned matrices: dense bytes | CSR, int64 indices | "
             "CSR, int32 indices | val loss | Δ val loss |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['sparsity']:g} | {r['zero_share']:.2%} | {r['nonzero_parameters']:,} | "
            f"{r['parameters']:,} | {r['dense_state_dict_bytes']:,} | "
            f"{r['matrices_dense_bytes']:,} | "
            f"{bytes_cell(r['matrices_csr_bytes'], r['matrices_dense_bytes'])} | "
            f"{bytes_cell(r['matrices_csr_int32_bytes'], r['matrices_dense_bytes'])} | "
            f"{r['val_loss']:.4f} | {r['val_loss_change']:+.4f} |")
    return "\n".join(lines)


def plot(rows, path):
    """Validation loss against sparsity; beside it, the pruned matrices' bytes."""
    s = [100 * r["sparsity"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.plot(s, [r["val_loss"] for r in rows], "o-", linewidth=2, label="validation loss")
    left.plot(s, [r["train_loss"] for r in rows], "s--", alpha=0.6, label="training loss")
    left.axhline(rows[0]["val_loss"], color="grey", linestyle=":", label="unpruned (val)")
    left.set(title="Loss after global magnitude pruning", xlabel="sparsity of the blocks' "
             "Linear weights (%)", ylabel="loss (nats per token)")
    kib = 1 / 1024
    right.plot(s, [r["matrices_dense_bytes"] * kib for r in rows], "o-",
               label="dense (any sparsity)")
    right.plot(s, [r["matrices_csr_bytes"] * kib for r in rows], "o-", label="CSR, int64 indices")
    right.plot(s, [r["matrices_csr_int32_bytes"] * kib for r in rows], "o--",
               label="CSR, int32 indices")
    for share, label, style in ((2 / 3, "CSR break-even, int64 (density 1/3)", ":"),
                                (1 / 2, "CSR break-even, int32 (density 1/2)", "-.")):
        right.axvline(100 * share, color="grey", linestyle=style, linewidth=1, label=label)
    right.set(title="Stored size of the pruned matrices (float32)", xlabel="sparsity (%)",
              ylabel="KiB")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------- the command

def run_settings(run: str) -> tuple[TrainConfig, int]:
    """The TrainConfig the run was trained with and its token count, from its config.json."""
    path = os.path.join(run, "config.json")
    if not os.path.isfile(path):
        raise InputError(f"--run {run}: no config.json (the file minigpt.train writes beside "
                         f"ckpt.pt); pruning measures the loss on that run's validation text")
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not readable JSON ({error})") from None
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    if not isinstance(saved, dict) or not {"data", "val_fraction", "data_tokens"} <= set(saved):
        raise InputError(f"{path}: not a pre-training run's config (minigpt.train writes data, "
                         f"val_fraction and data_tokens); give --run a minigpt.train run folder")
    return TrainConfig(**{k: v for k, v in saved.items() if k in names}), saved["data_tokens"]


def validation_data(settings: TrainConfig, data_tokens: int, tokenizer, run: str) -> TokenData:
    """The run's text, tokenised and split exactly as minigpt.train did."""
    try:
        text = read_text_file(settings.data) if settings.data else builtin_corpus()
    except InputError as error:
        raise InputError(f"--run {run} was trained on {error}") from None
    source = settings.data or "<built-in corpus: the toy world of toyworld.world>"
    data = TokenData.from_text(text, tokenizer, settings.val_fraction, source)
    if len(data.train) + len(data.val) != data_tokens:
        raise InputError(f"{source}: {len(data.train) + len(data.val)} tokens now, {data_tokens} "
                         f"when --run {run} was trained: the text changed, so its validation "
                         f"split would not be the run's")
    data.check_block_size(settings.block_size)
    return data


def main(argv=None):
    parser = parser_from_dataclass(PruneConfig, __doc__)
    config = PruneConfig(**given_flags(parser.parse_args(argv)))
    sparsities = config.sparsity_list()
    if config.eval_iters < 0:
        raise InputError(f"--eval-iters must not be negative, got {config.eval_iters}")
    if not os.path.isdir(config.run):
        raise InputError(f"--run {config.run}: no such run folder")
    if not os.path.exists(os.path.join(config.run, CHECKPOINT_NAME)):
        raise InputError(f"--run {config.run}: no {CHECKPOINT_NAME} in it; train one with "
                         f"`python -m minigpt.train --out-dir {config.run}`")
    out_dir = config.out_dir or os.path.join(config.run, "pruning")
    check_run_folder(out_dir, "prune")  # before any work: no other command's folder
    device = pick_device(config.device)
    model, tokenizer, _ = load_model(config.run, device, needed_by="minigpt.prune")
    settings, data_tokens = run_settings(config.run)
    if config.eval_iters:
        settings = dataclasses.replace(settings, eval_iters=config.eval_iters)
    data = validation_data(settings, data_tokens, tokenizer, config.run)
    out = RunFolder(out_dir, "prune")
    out.write_json("config.json", {**dataclasses.asdict(config), "sparsity_list": sparsities,
                                   "eval_iters": settings.eval_iters, "device": device})

    print(f"{model.num_parameters():,} parameters, {len(prunable_modules(model))} Linear "
          f"matrices pruned globally, {settings.eval_iters} validation batches of "
          f"{settings.batch_size} × {settings.block_size} tokens, device {device}")
    rows = prune_curve(model, data, sparsities, settings, device,
                       progress=show_progress(config.progress))
    text = findings(rows)
    out.write_json("pruning.json", {"rows": rows})
    out.write_text("pruning.md", "\n".join([
        f"# Magnitude pruning of `{config.run}`", "", table(rows), "",
        "Bold: CSR takes fewer bytes than the dense matrices. Pruned: the weight matrices of "
        "every nn.Linear in the blocks (global L1 magnitude); biases, LayerNorms and the "
        "embeddings stay dense.", "", text, "", "![pruning](pruning.png)", ""]))
    plot(rows, out.file("pruning.png"))
    print(table(rows))
    print()
    print(text)
    print(f"written: {out.file('pruning.md')}, pruning.json, pruning.png")
    return rows


if __name__ == "__main__":
    run_main(main)
