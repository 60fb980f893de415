"""Supervised fine-tuning (sintonización supervisada): learn to answer from demonstrations.

Start from the pre-trained model and keep training it on (prompt, completion) pairs, but
count the loss on the response only:

    L_SFT(θ) = −1/N Σ_{(x, y)} Σ_t log π_θ(y_t | x, y_{<t})     (N response tokens, EOS included)

The prompt's labels are −100, so the model is not trained to write questions, only to
answer them, and to stop: the EOS after each response is a trained target. The
fine-tuned model is π_ref for the reward model and DPO.

metrics.jsonl: each training step logs `loss` (the response loss of its batch) and `lr`;
each evaluation (step 0, the pre-trained model's loss, then every --eval-interval steps
and the last step) logs `train_loss`, the response loss over up to 512 training
demonstrations, and, with --eval-data, `eval_loss`, the held-out response loss.
The summary keeps the names train_response_loss and eval_response_loss.

Run:
    python -m align.sft --init runs/pretrain --data sft.jsonl --out-dir runs/sft
    torchrun --nproc_per_node 2 -m align.sft ...      # 2 processes: align.common's DDP loop
"""

import dataclasses
from dataclasses import dataclass

import torch

from align.common import (StageConfig, checkpoint_to_resume, fit_lengths_to_context,
                          load_stage, require, start_run, train_steps)
from align.data import (SFT_KEYS, TruncationStats, can_pack, collate, pack_sequences,
                        read_jsonl, tokenize_example)
from minigpt.checkpoint import load_weights, model_from_checkpoint
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.runlog import column
from minigpt import distributed
from minigpt.device import pick_device


@dataclass
class SFTConfig(StageConfig):
    out_dir: str = dataclasses.field(default="runs/sft", metadata={"help": "run folder to write"})


def tokenize_demonstrations(rows, tokenizer, config, what="demonstrations"):
    """[(input_ids, labels), ...] for the rows that fit, and the truncation counts."""
    stats = TruncationStats()
    examples = [tokenize_example(tokenizer, row["prompt"], row["completion"], config.max_length,
                                 config.max_prompt_length, stats) for row in rows]
    examples = [example for example in examples if example is not None]
    print(f"SFT {what}: " + stats.summary())
    return examples, stats


def count_response_tokens(examples) -> int:
    """The tokens response_loss averages over: labels[1:] that are not -100 (EOS included)."""
    return sum(sum(1 for label in labels[1:] if label != -100) for _, labels in examples)


def response_loss(model, examples, pad_id, device):
    """Mean −log π_θ(y_t | x, y_<t) over the response tokens of a batch (prompt labels −100).

    The model reads input_ids[:, :-1] and is scored on labels[:, 1:]: each position
    predicts the next token, exactly the shift that get_batch_logps makes. The examples
    are packed into as few rows as hold them (align.data.pack_sequences): the same tokens
    and contexts, so the same mean, without computing padding; a sequence's last token
    has no target in its row. LSH attention reads a mask as padding only: right padding there.
    """
    if not can_pack(model):
        input_ids, labels = collate(examples, pad_id)  # (B, T) each, right-padded
        _, loss = model(input_ids[:, :-1].to(device), targets=labels[:, 1:].to(device))
        return loss
    packed = pack_sequences(examples, pad_id)  # (R, T) each
    targets = packed.labels[:, 1:].clone()  # (R, T-1): the next token in the row ...
    targets[packed.attention_mask[:, 1:] != packed.attention_mask[:, :-1]] = -100  # ... if it is in the same sequence
    _, loss = model(packed.input_ids[:, :-1].to(device), targets=targets.to(device),
                    attention_mask=packed.attention_mask[:, :-1].to(device),
                    position_ids=packed.positions[:, :-1].to(device))
    return loss


@torch.no_grad()
def evaluate_loss(model, examples, pad_id, device, batch_size=64) -> float:
    """Response loss over a whole set, weighted by each batch's number of response tokens."""
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        n = count_response_tokens(batch)
        total += response_loss(model, batch, pad_id, device).item() * n
        count += n
    return total / max(count, 1)


def train_sft(config: SFTConfig, progress=True) -> dict:
    """Fine-tune into config.out_dir; the summary (on rank 0 under torchrun, {} elsewhere)."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    ranks = distributed.start()  # one process, or this one's place under torchrun
    with ranks.together():  # bad input on any rank stops every rank, with its message
        checkpoint, _ = load_stage(require(config.init, "--init"), ("pretrain", "sft"), device,
                                   "align.sft --init")
        model, tokenizer = model_from_checkpoint(checkpoint)
        model.to(device)
        fit_lengths_to_context(config, model.config.block_size)
        resume_from = checkpoint_to_resume(config, "sft", ranks)
        if resume_from is not None:
            load_weights(model, resume_from["model"], resume_from["path"])
        rows = read_jsonl(require(config.data, "--data"), SFT_KEYS)
        train_examples, stats = tokenize_demonstrations(rows, tokenizer, config)
        eval_examples, eval_stats = [], TruncationStats()
        if config.eval_data:
            eval_examples, eval_stats = tokenize_demonstrations(
                read_jsonl(config.eval_data, SFT_KEYS), tokenizer, config, "held-out demonstrations")
        if not train_examples:
            raise InputError(f"{config.data}: no demonstration fits max_length={config.max_length}")
        truncation = {"train": dataclasses.asdict(stats), "held_out": dataclasses.asdict(eval_stats)}
        # only now: bad input above leaves the folder untouched (None on ranks other than 0)
        run = start_run(config, "sft", tokenizer, truncation, resume_from, ranks)
    pad_id = tokenizer.pad_id

    def loss_on_batch(trained, indices):
        batch = [train_examples[i] for i in indices]
        return response_loss(trained, batch, pad_id, device), {}, count_response_tokens(batch)

    def evaluate(step):
        row = {"train_loss": evaluate_loss(model, train_examples[:512], pad_id, device)}
        if eval_examples:
            row["eval_loss"] = evaluate_loss(model, eval_examples, pad_id, device)
        return row

    seconds = train_steps(model, config, loss_on_batch, len(train_examples), run, device, "sft",
                          tokenizer, evaluate, progress, resume_from, ranks)
    if not ranks.is_main:
        return {}
    rows = run.read_metrics()
    plot_sft(run, rows)
    final = [row for row in rows if "train_loss" in row][-1]
    summary = {"run": run.path, "seconds": seconds, "step": final["step"],
               "train_response_loss": final["train_loss"],
               "eval_response_loss": final.get("eval_loss"),
               "truncation": truncation}
    run.write_json("summary.json", summary)
    return summary


def plot_sft(run, rows):
    """loss.png: the batch loss, then the evaluations (from step 0), held-out in front."""
    run.plot("loss.png", {"loss (batch)": column(rows, "loss"),
                          "train_loss (training demonstrations)": column(rows, "train_loss"),
                          "eval_loss (held-out)": column(rows, "eval_loss")},
             title="SFT: loss on response tokens", ylabel="loss (nats per token)", smooth=10,
             evaluation=("train_loss (training demonstrations)", "eval_loss (held-out)"))


def main(argv=None):
    parser = parser_from_dataclass(SFTConfig, __doc__)
    config = SFTConfig(**given_flags(parser.parse_args(argv)))
    ranks = distributed.start()  # under torchrun, rank 0 alone reports a refusal
    with ranks.together():
        check_run_folder(config.out_dir, "sft")  # before any work: no other command's folder
    summary = train_sft(config)
    if not summary:  # a rank other than 0 under torchrun
        return summary
    print(f"run folder: {summary['run']}")
    loss = summary["eval_response_loss"] or summary["train_response_loss"]
    print(f"final SFT response loss {loss:.4f}")
    return summary


if __name__ == "__main__":
    run_main(main, resume_hint="add --resume to the same command to continue from its last checkpoint, exactly")
