"""ALBERT's two savings, measured on our GPT: what sharing and a factorised embedding buy.

The lecture's last slide says ALBERT is "5 times smaller than BERT with the same
performance, due to compression via pruning". ALBERT (Lan et al. 2019) prunes nothing;
it gets small in two other ways, both options of GPTConfig:

    factorised embedding   V·E + E·H parameters instead of V·H   (embedding_dim = E < H)
    cross-layer sharing    one block's weights applied at all L depths   (share_layers)

This command trains the variants below for the same number of steps, on the same data,
from the same seed with the same batches, and puts in one table what each one costs and
saves (H = n_embd, L = n_layer, V = vocab_size, T = block_size):

    baseline          share none, E = H (GPT-2)
    share-all         one block (its LayerNorms too) at every depth
    share-attention   one attention sub-layer at every depth, MLPs per depth
    share-mlp         one MLP at every depth, attention per depth
    control-1-layer   unshared, n_layer = 1, same width: the parameter-matched control.
                      share-all stores exactly one Block, the embeddings and the final
                      LayerNorm; so does the 1-layer model: the same tensors of the same
                      shapes, hence the same num_parameters to the last one. It applies
                      that block once instead of L times.
    embed-E           no sharing, factorised embedding of width E (default E = 32, 64);
                      any E < H may be asked for by name (embed-16)

Columns: unique parameters (num_parameters: what is stored, differentiated and updated);
parameters applied (each block counted at every depth it runs at: the compute side);
FLOPs per token of forward + backward (`flops_per_token`); training tokens/s (a few extra
steps of the trained model on one fixed batch, median of repeats, the variants timed in
turn); memory: state bytes (parameters + gradients + AdamW's two moments,
minigpt.memory.state_bytes) and activation bytes of one step (minigpt.memory.
activation_bytes); the validation loss after the same number of steps (minigpt.train's
summary) and its difference from the baseline.

Run:
    python -m minigpt.albert                                  # toy corpus, 500 steps each
    python -m minigpt.albert --data ../shared/data/tinyshakespeare.txt --device cuda
    python -m minigpt.albert --variants share-all,embed-16 --max-iters 100

Each variant is one minigpt.train run folder under --out-dir (default runs/albert). A
variant whose folder holds a finished run of exactly the same settings (its summary.json,
written last, records them) is reused, not retrained; --overwrite retrains every one.
--out-dir gets albert.md (table and finding), albert.json (the rows), albert.png
(validation loss against unique parameters) and config.json.

Python:
    >>> from minigpt.albert import AlbertConfig, run_albert, flops_per_token
    >>> rows = run_albert(AlbertConfig(variants="share-all", max_iters=100))
"""

import dataclasses
import json
import os
import statistics
import time
from dataclasses import dataclass, field

import matplotlib
import torch
from tqdm import tqdm

matplotlib.use("Agg")  # write PNG files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

from minigpt.bench import synchronize  # noqa: E402
from minigpt.checkpoint import load_model  # noqa: E402
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main, show_progress  # noqa: E402
from minigpt.data import TokenData, read_text_file  # noqa: E402
from minigpt.device import autocast_for, pick_device  # noqa: E402
from minigpt.errors import InputError  # noqa: E402
from minigpt.memory import activation_bytes, state_bytes  # noqa: E402
from minigpt.model import GPTConfig  # noqa: E402
from minigpt.optim import make_optimizer  # noqa: E402
from minigpt.ownership import check_run_folder
from minigpt.runlog import RunFolder  # noqa: E402
from minigpt.tokenizer import TOKENIZER_KINDS, make_tokenizer  # noqa: E402
from minigpt.train import TrainConfig, builtin_corpus, train  # noqa: E402

TRAIN = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
# variant name -> the TrainConfig fields it changes from the baseline ("embed-E" besides)
FIXED_VARIANTS = {
    "baseline": {},
    "share-all": {"share_layers": "all"},
    "share-attention": {"share_layers": "attention"},
    "share-mlp": {"share_layers": "mlp"},
    "control-1-layer": {"n_layer": 1},
}
DEFAULT_VARIANTS = ",".join([*FIXED_VARIANTS, "embed-32", "embed-64"])
SUMMARY_NAME = "summary.json"  # written into a variant's folder once its training finished
# BERT-base's embedding, as ALBERT's paper compares it (Lan et al. 2019, section 3.1)
BERT_V, BERT_H, ALBERT_E = 30_000, 768, 128


@dataclass
class AlbertConfig:
    data: str = field(default="", metadata={"help": "UTF-8 text file; empty: the built-in corpus "
                                                    "(the toy world's, as minigpt.train)"})
    out_dir: str = field(default="runs/albert", metadata={
        "help": "folder for the table, plot and one run folder per variant"})
    variants: str = field(default=DEFAULT_VARIANTS, metadata={
        "help": "comma-separated variants: baseline, share-all, share-attention, share-mlp, "
                "control-1-layer, embed-E (E < --n-embd); the baseline is always trained"})
    tokenizer: str = field(default=TRAIN["tokenizer"], metadata={"help": "tokenizer kind",
                                                                 "choices": TOKENIZER_KINDS})
    n_layer: int = field(default=TRAIN["n_layer"], metadata={"help": "depth L of every variant "
                                                                     "but the control's 1"})
    n_head: int = field(default=TRAIN["n_head"], metadata={"help": "attention heads"})
    n_embd: int = field(default=TRAIN["n_embd"], metadata={"help": "model width H"})
    block_size: int = field(default=TRAIN["block_size"], metadata={"help": "context length T"})
    batch_size: int = field(default=TRAIN["batch_size"], metadata={"help": "sequences per step"})
    max_iters: int = field(default=500, metadata={
        "help": "optimiser steps, the same for every variant"})
    learning_rate: float = field(default=TRAIN["learning_rate"], metadata={
        "help": "peak learning rate"})
    min_lr: float = field(default=TRAIN["min_lr"], metadata={
        "help": "learning rate at the last step"})
    warmup_iters: int = field(default=TRAIN["warmup_iters"], metadata={
        "help": "linear warm-up steps"})
    eval_iters: int = field(default=TRAIN["eval_iters"], metadata={
        "help": "batches per loss estimate (the same batches for every variant)"})
    timing_steps: int = field(default=5, metadata={"help": "training steps per timed repeat"})
    timing_repeats: int = field(default=3, metadata={
        "help": "timed repeats (the median is reported)"})
    seed: int = field(default=TRAIN["seed"], metadata={
        "help": "random seed (initialisation and batches)"})
    device: str = field(default="auto", metadata={
        "help": "auto (CUDA if present, else CPU), cpu, cuda or mps"})
    overwrite: bool = field(default=False, metadata={
        "help": "retrain every variant, even one whose folder holds a finished run of these "
                "settings"})
    progress: bool = field(default=True, metadata={
        "help": "progress bars over the variants and steps (never when stderr is not a terminal)"})

    def __post_init__(self):
        check_ranges(self, at_least_one=("n_layer", "n_head", "n_embd", "block_size",
                                         "batch_size", "max_iters", "eval_iters", "timing_steps",
                                         "timing_repeats"),
                     not_negative=("warmup_iters",))
        for name in self.variant_list():
            self.train_config(name)  # the model's own checks (n_embd % n_head, ...) as flags

    def variant_list(self) -> list[str]:
        """The --variants names, each once, the baseline first (the differences are from it)."""
        names = [name.strip() for name in self.variants.split(",") if name.strip()]
        for name in names:
            embedding_dim(name, self.n_embd)  # an unknown name or a bad E is an InputError
        return list(dict.fromkeys(["baseline", *names]))

    def train_config(self, name: str) -> TrainConfig:
        """minigpt.train's settings for one variant: evaluation at step 0 and at the end
        only, no samples, its own run folder."""
        changes = dict(FIXED_VARIANTS.get(name, {}))
        if name.startswith("embed-"):
            changes["embedding_dim"] = embedding_dim(name, self.n_embd)
        shared = {k: getattr(self, k) for k in ("data", "tokenizer", "n_layer", "n_head", "n_embd",
                                                "block_size", "batch_size", "max_iters",
                                                "learning_rate", "min_lr", "warmup_iters",
                                                "eval_iters", "seed", "device")}
        return TrainConfig(**{**shared, **changes, "out_dir": os.path.join(self.out_dir, name),
                              "eval_interval": self.max_iters, "sample_tokens": 0,
                              "overwrite": True})


def embedding_dim(name: str, n_embd: int) -> int | None:
    """E of a variant name: None (E = H) for the fixed variants, E for "embed-E"."""
    if name in FIXED_VARIANTS:
        return None
    if name.startswith("embed-") and name[len("embed-"):].isdigit():
        E = int(name[len("embed-"):])
        if not 1 <= E < n_embd:
            raise InputError(f"--variants {name}: E must be from 1 to --n-embd - 1 = {n_embd - 1} "
                             f"(E = H = {n_embd} is the baseline); "
                             f"leave it out of --variants")
        return E
    raise InputError(f"--variants: unknown variant {name!r}; choose from "
                     f"{', '.join(FIXED_VARIANTS)} or embed-E with E < --n-embd (embed-32)")


# ---------------------------------------------------------------------- what is counted

def flops_per_token(config: GPTConfig, T: int) -> int:
    """Floating-point operations of forward + backward per token, for sequences of T tokens.

        FLOPs/token = 6·N_applied + 12·L·H·T

    N_applied: the weights of the matrix products one token goes through, each block
    counted at every depth it runs at (so sharing changes nothing here):
        per depth    H·3H (c_attn: Q, K, V) + H·H (c_proj) + H·4H + 4H·H (the MLP) = 12·H²
        factorised   E·H (embed_in) + H·E (embed_out), only when E < H
        output       V·E (the tied lm_head; E = H without factorisation)
    Embedding lookups are not matrix products (a row is read, nothing multiplied), and
    biases and LayerNorms are O(H) per token: none of them is counted. A matrix product
    costs 2 FLOPs per weight per token forward and 4 backward (the gradients of its input
    and of its weight): 6·N_applied.
    Attention: per depth, the scores q Kᵀ and the weighted values A·V take 2·H·T FLOPs each
    per token forward (over all heads together, every query against all T keys, the causal
    mask not halving it): 4·H·T forward, 3× that with the backward, 12·L·H·T in all.
    This is the PaLM paper's (appendix B) and nanoGPT's estimate_mfu convention. LSH
    attention attends to chunks, not to all T keys: not covered (a ValueError).
    """
    if config.attention == "lsh":
        raise ValueError("flops_per_token counts full attention (every query against T keys); "
                         "attention='lsh' attends within chunks and is not covered")
    H, L, V = config.n_embd, config.n_layer, config.vocab_size
    E = config.embedding_dim or H
    per_depth = H * 3 * H + H * H + H * 4 * H + 4 * H * H  # c_attn, c_proj, c_fc, mlp.c_proj
    projections = 2 * E * H if E < H else 0
    n_applied = L * per_depth + projections + V * E
    return 6 * n_applied + 12 * L * H * T


def applied_parameters(model) -> int:
    """Parameters with each block counted at every depth it runs at (the compute side):
    everything outside the blocks once (the tied embedding once), plus each depth's block.
    Equals num_parameters() without sharing; with it, the unshared model's count."""
    in_blocks = {id(p) for p in model.blocks.parameters()}
    outside = sum(p.numel() for p in model.parameters() if id(p) not in in_blocks)
    return outside + sum(p.numel() for block in model.blocks for p in block.parameters())


# ---------------------------------------------------------------------- training, reused

def run_signature(train_config: TrainConfig, device: str, data_tokens: int) -> dict:
    """What decides a variant's result: every training setting but where it is written,
    the device it ran on, and the size of its data."""
    values = dataclasses.asdict(train_config)
    for name in ("out_dir", "overwrite", "resume", "allow_changes", "stop_after"):
        values.pop(name)
    values["data"] = os.path.realpath(values["data"]) if values["data"] else ""
    return {**values, "device": device, "data_tokens": data_tokens}


def finished_summary(train_config: TrainConfig, signature: dict) -> dict | None:
    """minigpt.train's summary of the finished run in the variant's folder, if it was made
    with exactly these settings; else None (then the variant is trained)."""
    path = os.path.join(train_config.out_dir, SUMMARY_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("signature") != signature:
        return None
    summary = saved.get("summary", {})
    return summary if summary.get("step") == train_config.max_iters else None


def train_variant(train_config: TrainConfig, signature: dict, overwrite: bool,
                  progress: bool) -> tuple[dict, bool]:
    """(train's summary, reused?): the finished run of the same settings, or a new one."""
    summary = None if overwrite else finished_summary(train_config, signature)
    if summary is not None:
        return summary, True
    run = RunFolder(train_config.out_dir)
    if os.path.exists(run.file(SUMMARY_NAME)):
        os.remove(run.file(SUMMARY_NAME))  # a stale summary never describes the new run
    summary = train(train_config, progress=progress)
    run.write_json(SUMMARY_NAME, {"signature": signature, "summary": summary})
    return summary, False


# ---------------------------------------------------------------------- measured

def one_step_activation_bytes(model, batch, device) -> tuple[int, str]:
    """minigpt.memory.activation_bytes of one forward + backward on the batch."""
    x, y = batch

    def forward_backward():
        with autocast_for(device):
            _, loss = model(x, y)
        loss.backward()

    model.zero_grad(set_to_none=True)
    measured = activation_bytes(forward_backward, device, model)
    model.zero_grad(set_to_none=True)
    return measured


def training_tokens_per_s(models: dict, batch, config: AlbertConfig, device: str) -> dict:
    """Training tokens/s of each model: timing_steps steps (forward, backward, clipping,
    AdamW) on one fixed batch, median of timing_repeats. The models take turns in each
    repeat, so a change in the machine's load falls on all of them alike."""
    x, y = batch
    optimizers = {name: make_optimizer(model, config.learning_rate, TRAIN["weight_decay"],
                                       (TRAIN["beta1"], TRAIN["beta2"]), device)
                  for name, model in models.items()}

    def steps(name):
        model, optimizer = models[name], optimizers[name]
        for _ in range(config.timing_steps):
            with autocast_for(device):
                _, loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    times = {name: [] for name in models}
    for name in models:
        steps(name)  # warm-up: AdamW's moments are allocated at the first step
    for _ in range(config.timing_repeats):
        for name in models:
            synchronize(device)
            started = time.perf_counter()
            steps(name)
            synchronize(device)
            times[name].append(time.perf_counter() - started)
    tokens = config.timing_steps * x.numel()
    return {name: tokens / statistics.median(seconds) for name, seconds in times.items()}


def load_data(config: AlbertConfig) -> tuple[TokenData, object]:
    """The text tokenised and split exactly as minigpt.train does it."""
    text = read_text_file(config.data) if config.data else builtin_corpus()
    tokenizer = make_tokenizer(config.tokenizer, text)
    source = config.data or "<built-in corpus: the toy world of toyworld.world>"
    data = TokenData.from_text(text, tokenizer, TRAIN["val_fraction"], source)
    data.check_block_size(config.block_size)
    return data, tokenizer


def run_albert(config: AlbertConfig) -> list[dict]:
    """Train (or reuse) each variant, measure it, write albert.md, albert.json, albert.png
    and config.json into config.out_dir; returns one row per variant, the baseline first."""
    names = config.variant_list()
    check_run_folder(config.out_dir, "albert")  # before any work: no other command's folder
    device = pick_device(config.device)
    data, tokenizer = load_data(config)  # bad data: an error before any folder is made
    data_tokens = len(data.train) + len(data.val)
    out = RunFolder(config.out_dir, "albert")
    out.write_json("config.json", {**dataclasses.asdict(config), "variant_list": names,
                                   "device": device, "vocab_size": tokenizer.vocab_size,
                                   "threads": torch.get_num_threads()})
    show = show_progress(config.progress)

    trained = {}  # name -> (summary, reused)
    for name in tqdm(names, desc="ALBERT variants", disable=not show, dynamic_ncols=True):
        train_config = config.train_config(name)
        signature = run_signature(train_config, device, data_tokens)
        trained[name] = train_variant(train_config, signature, config.overwrite, show)
        tqdm.write(f"{name}: val loss {trained[name][0]['val_loss']:.4f}"
                   + (" (reused a finished run)" if trained[name][1] else ""))

    batch = data.get_batch("train", config.batch_size, config.block_size,
                           torch.Generator().manual_seed(config.seed), device)
    models, rows = {}, []
    for name in names:
        summary, reused = trained[name]
        model, _, checkpoint = load_model(config.train_config(name).out_dir, device,
                                          needed_by="minigpt.albert")
        if checkpoint["step"] != config.max_iters:
            raise InputError(f"{checkpoint['path']}: saved at step {checkpoint['step']}, expected "
                             f"{config.max_iters}; pass --overwrite to retrain it")
        model.train()
        models[name] = model
        measured_bytes, measured_how = one_step_activation_bytes(model, batch, device)
        rows.append({
            "variant": name, "share_layers": model.config.share_layers,
            "n_layer": model.config.n_layer,
            "embedding_dim": model.config.embedding_dim or model.config.n_embd,
            "n_embd": model.config.n_embd, "vocab_size": model.config.vocab_size,
            "unique_parameters": model.num_parameters(),
            "applied_parameters": applied_parameters(model),
            "flops_per_token": flops_per_token(model.config, config.block_size),
            "state_bytes": state_bytes(model),
            "activation_bytes": measured_bytes, "activation_measure": measured_how,
            "steps": summary["step"], "train_loss": summary["train_loss"],
            "val_loss": summary["val_loss"], "train_seconds": summary["seconds"],
            "reused": reused, "run": config.train_config(name).out_dir})
    speeds = training_tokens_per_s(models, batch, config, device)
    for row in rows:
        row["tokens_per_s"] = speeds[row["variant"]]
        row["val_loss_change"] = row["val_loss"] - rows[0]["val_loss"]

    out.write_json("albert.json", {"rows": rows})
    out.write_text("albert.md", report(rows, config, device, tokenizer.kind))
    plot(rows, out.file("albert.png"))
    return rows


# ---------------------------------------------------------------------- written out

def table(rows) -> str:
    lines = [("| variant | depths | shared | E | unique params | params applied | "
              "FLOPs/token (fwd+bwd) | train tokens/s | state bytes | activation bytes | "
              "val loss | Δ val loss |"),
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['n_layer']} | {r['share_layers']} | {r['embedding_dim']} | "
            f"{r['unique_parameters']:,} | {r['applied_parameters']:,} | "
            f"{r['flops_per_token']:,} | {r['tokens_per_s']:,.0f} | {r['state_bytes']:,} | "
            f"{r['activation_bytes']:,} | {r['val_loss']:.4f} | {r['val_loss_change']:+.4f} |")
    return "\n".join(lines)


def findings(rows) -> str:
    """Three lines: what sharing saves and what it does not; its cost in loss at equal
    steps; why the factorised embedding saves little here, and what it saves in BERT."""
    by = {r["variant"]: r for r in rows}
    base = rows[0]
    lines = []
    shared = [r for r in rows if r["share_layers"] != "none"]
    if shared:
        s = by.get("share-all", shared[0])
        same_flops = "the same" if all(r["flops_per_token"] == base["flops_per_token"]
                                       for r in shared) else "NOT the same (unexpected)"
        lines.append(
            f"Sharing saves parameters and optimiser memory, not compute or activation memory: "
            f"{s['variant']} stores {s['unique_parameters']:,} unique parameters against the "
            f"baseline's {base['unique_parameters']:,} "
            f"({base['unique_parameters'] / s['unique_parameters']:.1f}× fewer) and needs "
            f"{s['state_bytes']:,} state bytes (parameters, gradients, AdamW) against "
            f"{base['state_bytes']:,}, yet the FLOPs per token of every shared variant are "
            f"{same_flops} as the baseline's ({base['flops_per_token']:,}: it still applies "
            f"{s['applied_parameters']:,} parameters per token), its activations take "
            f"{s['activation_bytes']:,} bytes against {base['activation_bytes']:,} "
            f"({s['activation_bytes'] / base['activation_bytes'] - 1:+.1%}) and it trains at "
            f"{s['tokens_per_s']:,.0f} tokens/s against {base['tokens_per_s']:,.0f}.")
    if shared or "control-1-layer" in by:
        parts = [f"{r['variant']} {r['val_loss_change']:+.4f}" for r in shared]
        text = (f"At equal steps ({base['steps']}), against the baseline's val loss "
                f"{base['val_loss']:.4f}")
        if parts:
            text += ", the shared variants differ by " + ", ".join(parts)
        control, share_all = by.get("control-1-layer"), by.get("share-all")
        if control is not None:
            text += (f"; the unshared 1-layer control, with exactly "
                     f"{control['unique_parameters']:,} parameters (share-all's count: one "
                     f"block, the same embeddings), {control['val_loss_change']:+.4f}")
            if share_all is not None:
                gap = control["val_loss"] - share_all["val_loss"]
                ratio = share_all["flops_per_token"] / control["flops_per_token"]
                if gap > 0:
                    text += (f" (so applying the shared block at all {share_all['n_layer']} depths "
                             f"buys {gap:.4f} nats over applying it once, for {ratio:.1f}× "
                             f"the FLOPs)")
                else:
                    text += (f" (so applying the shared block at all {share_all['n_layer']} depths "
                             f"does not beat applying it once: {-gap:.4f} nats worse, despite "
                             f"{ratio:.1f}× the FLOPs)")
        lines.append(text + ".")
    factorised = [r for r in rows if r["embedding_dim"] < r["n_embd"]]
    if factorised:
        V = base["vocab_size"]
        parts = [f"E={r['embedding_dim']} {r['unique_parameters'] - base['unique_parameters']:+,} "
                 f"parameters ({r['unique_parameters'] / base['unique_parameters'] - 1:+.1%}, "
                 f"Δ val loss {r['val_loss_change']:+.4f})" for r in factorised]
        bert_full = BERT_V * BERT_H
        bert_factorised = BERT_V * ALBERT_E + ALBERT_E * BERT_H
        lines.append(
            f"The factorised embedding saves little here: V = {V} tokens is tiny next to "
            f"BERT's 30k vocabulary, so the saving (V + P)·(H − E) is largely or wholly "
            f"offset by the "
            f"projections' 2·E·H + H + E: {'; '.join(parts)} against the baseline's "
            f"{base['unique_parameters']:,}. In BERT-base terms (V = {BERT_V:,}, H = {BERT_H}, "
            f"E = {ALBERT_E}, as ALBERT's paper counts it): V·H = {bert_full:,} against "
            f"V·E + E·H = {bert_factorised:,}, a saving of {bert_full - bert_factorised:,} "
            f"parameters ({1 - bert_factorised / bert_full:.0%} of the embedding).")
    return "\n".join(lines)


def report(rows, config: AlbertConfig, device: str, tokenizer_kind: str) -> str:
    base = rows[0]
    reused = [r["variant"] for r in rows if r["reused"]]
    return "\n".join([
        "# ALBERT's factorised embedding and cross-layer sharing, measured", "",
        f"Data: `{config.data or 'built-in corpus'}`, tokenizer `{tokenizer_kind}` (V = "
        f"{base['vocab_size']}). Model: L = {config.n_layer} layers, {config.n_head} heads, "
        f"H = {config.n_embd}, T = {config.block_size}, batch {config.batch_size}, "
        f"{config.max_iters} steps for every variant (same seed, same batches), device "
        f"{device}, {torch.get_num_threads()} threads."
        + (f" Reused finished runs: {', '.join(reused)}." if reused else ""), "",
        table(rows), "",
        ("FLOPs/token: 6·N_applied (matrix products, each shared block at every depth; the "
         "output layer V·E, no embedding lookups) + 12·L·H·T (attention scores and weighted "
         f"values), see `minigpt.albert.flops_per_token`. Train tokens/s: {config.timing_steps} "
         f"steps on one fixed batch, median of {config.timing_repeats}. State bytes: "
         "parameters + gradients + AdamW's two moments. Activation bytes: one step, "
         f"{base['activation_measure']}."), "",
        "## Finding", "", findings(rows), "",
        "![validation loss against unique parameters](albert.png)", ""])


def plot(rows, path):
    """Validation loss against unique parameters, one labelled point per variant."""
    kinds = {"baseline": ("baseline (share none, E = H)", "*", 14),
             "shared": ("cross-layer sharing", "o", 9),
             "control": ("unshared 1-layer control", "s", 9),
             "factorised": ("factorised embedding (E < H)", "^", 9)}

    def kind(row):
        if row["variant"] == "baseline":
            return "baseline"
        if row["share_layers"] != "none":
            return "shared"
        return "factorised" if row["embedding_dim"] < row["n_embd"] else "control"

    fig, ax = plt.subplots(figsize=(8, 5))
    for key, (label, marker, size) in kinds.items():
        picked = [r for r in rows if kind(r) == key]
        if picked:
            ax.plot([r["unique_parameters"] for r in picked], [r["val_loss"] for r in picked],
                    marker, markersize=size, linestyle="none", label=label)
    for r in rows:
        ax.annotate(r["variant"], (r["unique_parameters"], r["val_loss"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.axhline(rows[0]["val_loss"], color="grey", linestyle=":", linewidth=1,
               label="baseline's validation loss")
    ax.set(title=f"Validation loss after {rows[0]['steps']} steps against unique parameters",
           xlabel="unique parameters (num_parameters)", ylabel="validation loss (nats per token)")
    ax.margins(x=0.12, y=0.1)  # room for the labels of the outermost points
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = parser_from_dataclass(AlbertConfig, __doc__)
    config = AlbertConfig(**given_flags(parser.parse_args(argv)))
    rows = run_albert(config)
    print(table(rows))
    print()
    print(findings(rows))
    print(f"written: {os.path.join(config.out_dir, 'albert.md')}, albert.json, albert.png")
    return rows


if __name__ == "__main__":
    run_main(main, resume_hint="run the same command again to continue (finished variants are kept)")
