"""DPO: align the policy directly on preference pairs, with no reward model and no RL.

    L_DPO(π_θ; π_ref) = −E_{(x, y_w, y_l) ~ D} [ log σ( β log π_θ(y_w|x)/π_ref(y_w|x)
                                                     − β log π_θ(y_l|x)/π_ref(y_l|x) ) ]

π_θ starts as a copy of the SFT model; π_ref is the SFT model itself, frozen (eval mode,
no gradients). Each log π(y|x) is a sum of per-token log-probabilities over the response
(minigpt.get_batch_logps, the lecture's "¿Cómo calculamos las log-probs?"), except:

  --loss-type ipo     log π(y|x) is the mean per-token log-prob, for π_θ and π_ref alike
                      (IPO's paper and TRL): IPO fits h to the target 1/(2β), and on sums
                      that target would mean something different at every answer length.
                      --ipo-summed keeps IPO on summed log-probs.
  --average-log-prob  the mean for the sigmoid and hinge losses too; β then weighs a
                      per-token log-ratio, so a β tuned on sums is far too small here.

Because π_ref never changes, its log-probabilities are computed once for the whole
dataset and cached, under the same precision (autocast_for) as every forward pass of
π_θ that is compared with them: training steps and evaluation alike, so π_θ = π_ref gives
implicit rewards of exactly 0 and a loss of exactly log 2. Chosen and rejected answers go
through π_θ in one concatenated forward pass.

metrics.jsonl: each training step logs `loss`, `rewards/chosen`, `rewards/rejected`,
`rewards/accuracies`, `rewards/margins`, `logps/chosen`, `logps/rejected` (TRL's names);
each evaluation (step 0, every --eval-interval steps, the last step) logs the same with
the `eval_` prefix on the held-out pairs (`eval_loss`, `eval_rewards/accuracies`, ...),
or with the `train_` prefix on the first 256 training pairs when there is no --eval-data.
A tie r̂(y_w) = r̂(y_l) is not a win: at step 0 the accuracy is 0, not 0.5.

Run:
    python -m align.dpo --init runs/sft --data pairs.jsonl --eval-data heldout_pairs.jsonl --beta 0.1
"""

import copy
import dataclasses
from dataclasses import dataclass, field

import torch

from align.common import (StageConfig, checkpoint_to_resume, fit_lengths_to_context,
                          load_stage, require, start_run, train_steps)
from align.data import can_pack, load_pairs, pack_pairs, pad_right
from align.losses import DPO_LOSS_TYPES, dpo_loss
from minigpt.checkpoint import load_weights, model_from_checkpoint
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.logps import get_batch_logps
from minigpt.runlog import column
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder
from minigpt.model import GPT
from minigpt import distributed
from minigpt.device import autocast_for, pick_device


@dataclass
class DPOConfig(StageConfig):
    """DPO's settings; `DPOConfig(beta=0.1)` is the lecture's example.

    Which log π(y|x) the loss sees (`mean_log_probs`): the sum over response tokens for
    sigmoid and hinge, the per-token mean for ipo; --average-log-prob switches sigmoid and
    hinge to the mean, --ipo-summed switches ipo to the sum.
    """

    out_dir: str = field(default="runs/dpo", metadata={"help": "run folder to write"})
    beta: float = field(default=0.1, metadata={"help": "β: how far π_θ may move from π_ref"})
    loss_type: str = field(default="sigmoid", metadata={
        "help": "sigmoid (the lecture's), ipo (on mean token log-probs) or hinge",
        "choices": DPO_LOSS_TYPES})
    label_smoothing: float = field(default=0.0, metadata={"help": "conservative DPO: P(label flipped)"})
    reference_free: bool = field(default=False, metadata={"help": "take π_ref as uniform"})
    average_log_prob: bool = field(default=False, metadata={
        "help": "sigmoid/hinge: mean instead of sum of token log-probs (β then weighs a per-token "
                "log-ratio: a β tuned on sums is too small); ipo uses the mean already"})
    ipo_summed: bool = field(default=False, metadata={
        "help": "ipo on summed token log-probs instead of IPO's per-token mean (its target "
                "1/(2β) then means something different at every answer length)"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=1e-5, metadata={"help": "learning rate at the end"})

    def __post_init__(self):
        super().__post_init__()
        if self.beta <= 0:
            raise InputError(f"--beta must be positive, got {self.beta}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise InputError(f"--label-smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing > 0 and self.loss_type != "sigmoid":
            raise InputError("--label-smoothing goes with --loss-type sigmoid only")
        if self.ipo_summed and self.loss_type != "ipo":
            raise InputError("--ipo-summed goes with --loss-type ipo only")
        if self.ipo_summed and self.average_log_prob:
            raise InputError("--ipo-summed (sums) and --average-log-prob (means) contradict each other; "
                             "give one")

    @property
    def mean_log_probs(self) -> bool:
        """True: log π(y|x) is the mean per-token log-prob; False: the sum over the response."""
        if self.loss_type == "ipo":
            return not self.ipo_summed
        return self.average_log_prob


def concatenated_forward(model, pairs, pad_id, device, average_log_prob=False, pack=True):
    """log π(y_w|x) and log π(y_l|x) for a batch of pairs, in one forward pass.

    The 2B sequences (chosen ones, then rejected ones) are packed into one row, each
    pair's shared prompt once (align.data.pack_pairs: no padding, no attention across
    pairs nor from one answer to the other), and the logits are laid out
    again one row per sequence, (2B, T), for get_batch_logps. With pack=False, and always with LSH attention
    (it reads a mask as padding only), the 2B sequences are right-padded to one length
    instead, one per row. Either way the same log-probabilities, up to float rounding.
    Returns (chosen_logps (B,), rejected_logps (B,)).
    """
    sequences = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    labels = pad_right([labels for _, labels in sequences], -100).to(device)  # (2B, T)
    if not (pack and can_pack(model)):
        input_ids = pad_right([ids for ids, _ in sequences], pad_id).to(device)  # (2B, T)
        logits, _ = model(input_ids)  # (2B, T, vocab)
    else:
        packed = pack_pairs(pairs, pad_id)
        logits, _ = model(packed.input_ids.to(device), attention_mask=packed.attention_mask.to(device),
                          position_ids=packed.positions.to(device))  # (1, Σ L_b, vocab): one row
        logits = packed.unpack(logits)  # (2B, T, vocab)
    logps = get_batch_logps(logits, labels, average_log_prob=average_log_prob)  # (2B,)
    return logps[: len(pairs)], logps[len(pairs):]


# Pairs per forward pass when caching π_ref and when evaluating: the same batches of the
# same pairs give π_θ = π_ref bit for bit the same log-probs (other shapes may round apart).
FORWARD_BATCH_SIZE = 64


@torch.no_grad()
def add_reference_logps(reference, pairs, pad_id, device, average_log_prob,
                        batch_size=FORWARD_BATCH_SIZE):
    """Compute log π_ref(y_w|x), log π_ref(y_l|x) once per pair and keep them in the pair.

    average_log_prob: the per-token mean instead of the sum (DPOConfig.mean_log_probs);
    recorded in the pair, so dpo_batch refuses to compare π_θ's sums with π_ref's means.
    """
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        with autocast_for(device):  # the precision of every π_θ forward pass in dpo_batch
            chosen, rejected = concatenated_forward(reference, batch, pad_id, device, average_log_prob)
        for pair, c, r in zip(batch, chosen.tolist(), rejected.tolist()):
            pair["reference_chosen_logps"], pair["reference_rejected_logps"] = c, r
            pair["reference_mean_log_probs"] = bool(average_log_prob)


def dpo_batch(policy, pairs, config, pad_id, device):
    """The DPO loss of a batch and the metrics people read (named as in TRL).

    π_θ runs under autocast_for(device), the precision π_ref's cached log-probs were
    computed in (bf16 on CUDA), in training and in evaluation alike.
    """
    mean = config.mean_log_probs
    if any(p.get("reference_mean_log_probs", mean) != mean for p in pairs):
        raise ValueError(f"π_ref's cached log-probs are {'sums' if mean else 'means'} but this "
                         f"loss needs {'means' if mean else 'sums'}: call add_reference_logps with "
                         f"average_log_prob={mean} (config.mean_log_probs)")
    with autocast_for(device):
        policy_chosen, policy_rejected = concatenated_forward(policy, pairs, pad_id, device, mean)
    as_tensor = dict(dtype=policy_chosen.dtype, device=device)
    reference_chosen = torch.tensor([p["reference_chosen_logps"] for p in pairs], **as_tensor)
    reference_rejected = torch.tensor([p["reference_rejected_logps"] for p in pairs], **as_tensor)
    losses, chosen_rewards, rejected_rewards = dpo_loss(
        policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=config.beta,
        label_smoothing=config.label_smoothing, loss_type=config.loss_type,
        reference_free=config.reference_free)
    metrics = {
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "logps/chosen": policy_chosen.detach().mean().item(),
        "logps/rejected": policy_rejected.detach().mean().item(),
    }
    return losses.mean(), metrics


@torch.no_grad()
def evaluate_dpo(policy, pairs, config, pad_id, device, batch_size=FORWARD_BATCH_SIZE) -> dict:
    """Mean loss and implicit-reward metrics over a whole set of pairs (unprefixed names).

    Under the precision of π_ref's cache (dpo_batch): with π_θ = π_ref every implicit reward
    is exactly 0, the loss is log 2 and the accuracy 0 (a tie is not a win).
    """
    totals, n = {}, 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        loss, metrics = dpo_batch(policy, batch, config, pad_id, device)
        for key, value in {"loss": loss.item(), **metrics}.items():
            totals[key] = totals.get(key, 0.0) + value * len(batch)
        n += len(batch)
    return {key: value / n for key, value in totals.items()}


def load_policy_and_reference(init, device, needed_by="align.dpo --init"):
    """π_θ (trainable) and π_ref (a frozen copy) from an SFT checkpoint.

    Dropout is switched off (as TRL does by default): π_θ then computes exactly what
    π_ref computes until its first update, so the loss starts at log 2.
    """
    checkpoint, _ = load_stage(init, ("sft", "pretrain"), device, needed_by)
    trained, tokenizer = model_from_checkpoint(checkpoint)
    policy = GPT(dataclasses.replace(trained.config, dropout=0.0))
    policy.load_state_dict(trained.state_dict())
    policy.to(device)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    return policy, reference, tokenizer


def train_dpo(config: DPOConfig, progress=True, also_evaluate=None) -> dict:
    """Run DPO into config.out_dir. also_evaluate(step, policy) -> {name: value}, when given,
    runs at every evaluation and its (prefixed) numbers join the row (align.frontier measures
    r* and the exact KL there)."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    ranks = distributed.start()  # one process, or this one's place under torchrun
    with ranks.together():  # bad input on any rank stops every rank, with its message
        policy, reference, tokenizer = load_policy_and_reference(require(config.init, "--init"),
                                                                 device)
        fit_lengths_to_context(config, policy.config.block_size)
        resume_from = checkpoint_to_resume(config, "dpo", ranks)
        if resume_from is not None:  # π_θ as it was; π_ref is the --init model, as always
            load_weights(policy, resume_from["model"], resume_from["path"])
        pairs, eval_pairs, stats = load_pairs(config, tokenizer, "DPO")
        # only now: bad input above leaves the folder untouched (None on ranks other than 0)
        run = start_run(config, "dpo", tokenizer, stats, resume_from, ranks)
    pad_id = tokenizer.pad_id
    for subset in (pairs, eval_pairs):  # each set in the batches evaluate_dpo will use
        add_reference_logps(reference, subset, pad_id, device, config.mean_log_probs)

    def loss_on_batch(trained, indices):
        batch = [pairs[i] for i in indices]
        return (*dpo_batch(trained, batch, config, pad_id, device), len(batch))

    prefix = "eval" if eval_pairs else "train"  # no held-out pairs: evaluate on training pairs

    def evaluate(step):
        result = evaluate_dpo(policy, eval_pairs or pairs[:256], config, pad_id, device)
        row = {f"{prefix}_{key}": value for key, value in result.items()}
        return {**row, **(also_evaluate(step, policy) if also_evaluate is not None else {})}

    seconds = train_steps(policy, config, loss_on_batch, len(pairs), run, device, "dpo",
                          tokenizer, evaluate, progress, resume_from, ranks)
    if not ranks.is_main:
        return {}
    rows = run.read_metrics()
    plot_dpo(run, rows, prefix)
    final = [row for row in rows if f"{prefix}_loss" in row][-1]
    summary = {"run": run.path, "seconds": seconds, "evaluated_on": prefix,
               **{key.removeprefix(prefix + "_"): value for key, value in final.items() if key != "step"},
               "truncation": stats}
    run.write_json("summary.json", summary)
    return summary


def plot_dpo(run, rows, prefix="eval", window=10):
    """loss.png, rewards.png, accuracies.png: training batches, then the evaluation in front.

    prefix: "eval" (held-out pairs) or "train" (training pairs, when there is no held-out
    set). The evaluation curves start at step 0, where π_θ = π_ref. One batch holds only
    batch_size pairs, so its accuracy jumps by 1/batch_size (and is 0 at step 1, where
    every pair ties); each batch curve is drawn faint under its running mean over `window`
    batches, and the evaluation, over all its pairs, thick and in front.
    """
    where = "held-out pairs" if prefix == "eval" else "training pairs"
    run.plot("loss.png", {"DPO loss (batch)": column(rows, "loss"),
                          f"{prefix}_loss ({where})": column(rows, f"{prefix}_loss")},
             title="DPO loss (step 0: π_θ = π_ref, log 2 ≈ 0.693 for the sigmoid loss)",
             ylabel="loss (nats)", evaluation=(f"{prefix}_loss ({where})",), smooth=window)
    run.plot("rewards.png", {"rewards/chosen": column(rows, "rewards/chosen"),
                             "rewards/rejected": column(rows, "rewards/rejected"),
                             "rewards/margins": column(rows, "rewards/margins"),
                             f"{prefix}_rewards/margins ({where})": column(rows, f"{prefix}_rewards/margins")},
             title="DPO implicit rewards r̂ = β·log π_θ(y|x)/π_ref(y|x)", ylabel="implicit reward r̂",
             evaluation=(f"{prefix}_rewards/margins ({where})",), smooth=window,
             hlines={"0 (π_θ = π_ref)": 0.0})
    run.plot("accuracies.png", {"rewards/accuracies (batch)": column(rows, "rewards/accuracies"),
                                f"{prefix}_rewards/accuracies ({where})":
                                    column(rows, f"{prefix}_rewards/accuracies")},
             title="DPO: share of pairs with r̂(y_w) > r̂(y_l) (a tie is no win)",
             ylabel="share of pairs", evaluation=(f"{prefix}_rewards/accuracies ({where})",),
             smooth=window, hlines={"chance (0.5)": 0.5}, ylim=(-0.02, 1.02))


def main(argv=None):
    parser = parser_from_dataclass(DPOConfig, __doc__)
    config = DPOConfig(**given_flags(parser.parse_args(argv)))
    ranks = distributed.start()  # under torchrun, rank 0 alone reports a refusal
    with ranks.together():
        check_run_folder(config.out_dir, "dpo")  # before any work: no other command's folder
    summary = train_dpo(config)
    if not summary:  # a rank other than 0 under torchrun
        return summary
    print(f"run folder: {summary['run']}")
    where = summary["evaluated_on"]  # eval: held-out pairs; train: training pairs
    print(f"{where} pairs: {where}_loss {summary['loss']:.4f}, implicit-reward accuracy "
          f"{summary['rewards/accuracies']:.3f}, margin {summary['rewards/margins']:.3f}")
    return summary


if __name__ == "__main__":
    run_main(main, resume_hint="add --resume to the same command to continue from its last checkpoint, exactly")
