"""The reward model (modelo de recompensa) r_φ(x, y), trained with Bradley-Terry.

People are bad at giving answers an absolute score but good at comparing two. From
pairs (x, y_w, y_l), where y_w was preferred, fit a scalar r_φ with

    L(φ) = −E_{(x, y_w, y_l) ~ D} [ log σ(r_φ(x, y_w) − r_φ(x, y_l)) ]      (align.losses)

r_φ is the GPT trunk (initialised from the SFT model) with a linear head that reads the
hidden state of the last real token of prompt + response (its EOS): that position has
seen the whole answer. Padding after it cannot change the score (attention is causal).
With --reads-likelihood r_φ also adds λ times the mean log-probability its own trunk gives
the answer's tokens (RewardModel says why; the pipeline's r_φ does).

metrics.jsonl: each training step logs `loss` (Bradley-Terry on the batch), `accuracy`
and `margin`; each evaluation (step 0, every --eval-interval steps, the last step) logs
`eval_loss`, `eval_accuracy`, `eval_margin`, `eval_gold_agreement` and
`eval_gold_comparable_pairs` on the held-out pairs, or the same with the `train_` prefix
on the first 256 training pairs when there is no --eval-data. A tie r_w = r_l is no win.

Pairs say what they compare ("pair_kind", see align.preferences): two of π_ref's samples
(same_prompt), an answer to another question against one to this one (off_topic_offer),
a rude answer against a polite one (rude_vs_polite), a wrong answer against a right one
(right_vs_wrong). One accuracy over all of them can hide the failures that matter: r_φ
paying an off-topic pleasantry, or never checking the fact. So when the pairs name
their kinds, each evaluation also logs `eval_accuracy/<kind>` and `eval_pairs/<kind>`
(how many), and, given off-topic pairs, r_φ's mean score on the offers,
`eval_off_topic_score`, beside its mean on the right answers they were offered against,
`eval_right_score` (right as `align.gold.judge` says): a reward model that cannot be paid
by a pleasantry keeps the first well below the second.

Run:
    python -m align.reward --init runs/sft --data pairs.jsonl --eval-data heldout_pairs.jsonl
"""

import dataclasses
import json
import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from align.common import (StageConfig, checkpoint_to_resume, fit_lengths_to_context,
                          load_stage, require, start_run, train_steps)
from align.data import (PREFERENCE_KEYS, can_pack, load_pairs, pack_pairs, pack_sequences,
                        pad_right, sft_example)
from align.gold import gold_reward, judge
from align.losses import bradley_terry_loss
from minigpt.checkpoint import load_weights, model_from_checkpoint
from minigpt.logps import get_batch_logps
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.model import GPT
from minigpt.runlog import column
from minigpt import distributed
from minigpt.device import pick_device
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder


class RewardModel(nn.Module):
    """r_φ(x, y): GPT hidden states → the last real token's vector → one number.

    With reads_likelihood, r_φ also reads how likely its own trunk finds the answer:

        r_φ(x, y) = w·h_EOS + b + λ · (1/|y|) Σ_t log π_φ(y_t | x, y_<t)

    where π_φ is the trunk with its output layer (the language model it was initialised
    from, trained on with the head) and λ is learned (from 1). Why: the hidden state at
    the EOS need not say whether "7+6 is 13." states the sum the trunk expected, and a
    head fitted to the pairs can learn which numbers came with which operands in them
    instead; the trunk's likelihood of the number is where that knowledge sits (it is
    what DPO's implicit reward β·log π_θ/π_ref reads, and what align.probe measures).
    Unlike DPO's, the term has no reference: it pays for whatever the trunk finds likely,
    so RL on it also pulls π_θ towards π_ref's most likely answers (sharper, fewer of
    them), held back by the KL term and by the head.
    """

    def __init__(self, config, reads_likelihood=False):
        super().__init__()
        self.config = config
        self.gpt = GPT(config)
        self.head = nn.Linear(config.n_embd, 1)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(config.n_embd + 1))
        nn.init.zeros_(self.head.bias)
        self.likelihood_weight = nn.Parameter(torch.ones(())) if reads_likelihood else None  # λ

    @property
    def reads_likelihood(self) -> bool:
        return self.likelihood_weight is not None

    def forward(self, input_ids, lengths=None, attention_mask=None, position_ids=None,
                read_at=None, labels=None, where=None):
        """r_φ of each sequence, read at its last token. Returns r (N,).

        input_ids (B, T) right-padded, one sequence per row, and lengths (B,) its real
        tokens; or packed rows (align.data's PackedBatch, see `score_packed`) with its
        attention_mask, position_ids, and read_at (N,): where each sequence's last token
        sits, as a flat index row · T + column (one sequence per row: row · T + length − 1).
        A model that reads_likelihood needs labels (N, T'): each sequence's answer tokens,
        -100 elsewhere, as align.data.sft_example writes them, one sequence per row; for
        packed rows, where (N, T') lays the logits out so (PackedBatch.where).
        """
        hidden = self.gpt.hidden_states(input_ids, attention_mask, position_ids)  # (B, T, C)
        B, T, C = hidden.shape
        if read_at is None:
            read_at = torch.arange(B, device=input_ids.device) * T + lengths - 1  # (B,)
        last = hidden.reshape(B * T, C)[read_at]  # (N, C)
        reward = self.head(last).squeeze(-1)  # (N,)
        if not self.reads_likelihood:
            return reward
        if labels is None:
            raise ValueError("this r_φ reads log π_φ(y|x): give the answer's labels")
        logits = self.gpt.output_layer(hidden)  # (B, T, vocab)
        if where is not None:  # packed rows -> one sequence per row
            logits = logits.reshape(B * T, -1)[where]  # (N, T', vocab)
        mean_logp = get_batch_logps(logits, labels, average_log_prob=True)  # (N,)
        return reward + self.likelihood_weight * mean_logp  # float32 under bf16 autocast too

    def values(self, input_ids):
        """The head read at every position: (B, T). PPO's value head V(s_t) is this network
        initialised from r_φ's trunk and head, so at an answer's EOS it starts out as r_φ
        without the likelihood term (align.rlhf builds it without one)."""
        return self.head(self.gpt.hidden_states(input_ids)).squeeze(-1)  # (B, T)


def score_sequences(model: RewardModel, examples, pad_id, device):
    """r_φ for [(input_ids, labels), ...] (prompt + response + EOS, and the response's
    labels, align.data.sft_example), in one batch: packed into as few rows as hold them
    (align.data.pack_sequences), or right-padded for LSH attention, which reads a mask as
    padding only. The same scores either way, up to float rounding."""
    labels = pad_right([target for _, target in examples], -100).to(device)  # (N, T)
    if not can_pack(model):
        input_ids = pad_right([ids for ids, _ in examples], pad_id).to(device)
        lengths = torch.tensor([len(ids) for ids, _ in examples], device=device)
        return model(input_ids, lengths, labels=labels)  # (B,)
    return score_packed(model, pack_sequences(examples, pad_id), labels, device)  # (B,)


def score_packed(model: RewardModel, packed, labels, device):
    """r_φ of every sequence of a PackedBatch (align.data), read where each one ends;
    labels (N, T): the sequences' labels one per row (pad_right), for the likelihood."""
    return model(packed.input_ids.to(device), attention_mask=packed.attention_mask.to(device),
                 position_ids=packed.positions.to(device),
                 read_at=packed.where[:, -1].to(device), labels=labels,
                 where=packed.where.to(device))  # (N,)


@torch.no_grad()
def score_samples(model: RewardModel, samples, pad_id, device, missing_eos_penalty=0.0,
                  batch_size=64) -> torch.Tensor:
    """r_φ(x, y) of sampled answers (align.sampling.Sample), read at the EOS as r_φ was
    trained, in batches; an answer cut before EOS is something r_φ never saw: it gets
    r_φ − missing_eos_penalty (RL's rule, TRL's too). Returns (N,) float32."""
    scores = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        raw = score_sequences(model, [sft_example(s.prompt_ids, s.answer_ids) for s in batch],
                              pad_id, device).float()  # (B,)
        finished = torch.tensor([s.finished for s in batch], device=raw.device)
        scores.append(torch.where(finished, raw, raw - missing_eos_penalty))
    return torch.cat(scores)  # (N,)


def score_pairs(model: RewardModel, pairs, pad_id, device):
    """r_φ(x, y_w) and r_φ(x, y_l) for a batch of pairs, chosen and rejected in one forward
    pass: each pair's shared prompt computed once (align.data.pack_pairs), or for LSH
    attention all 2B sequences right-padded (score_sequences)."""
    sequences = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    if can_pack(model):
        labels = pad_right([target for _, target in sequences], -100).to(device)  # (2B, T)
        rewards = score_packed(model, pack_pairs(pairs, pad_id), labels, device)  # (2B,)
    else:
        rewards = score_sequences(model, sequences, pad_id, device)  # (2B,)
    return rewards[: len(pairs)], rewards[len(pairs):]  # (B,), (B,)


DEFAULT_PAIR_KIND = "same_prompt"  # a row without "pair_kind": two answers to its own prompt
ANSWERS_TO_ONE_PROMPT = (DEFAULT_PAIR_KIND, "right_vs_wrong")  # both answers are to x itself
PAIR_ROW_KEYS = ("pair_kind", "offer_side")  # what evaluate_pairs reads beside the texts
OFFER_SIDES = ("chosen", "rejected")


def check_pair_kind(row: dict, where: str):
    """A row's optional "pair_kind" is a non-empty string; an off_topic_offer row says
    which of its answers is the offer ("offer_side": "chosen" or "rejected")."""
    kind = row.get("pair_kind", DEFAULT_PAIR_KIND)
    if not isinstance(kind, str) or not kind.strip():
        raise InputError(f"{where}: 'pair_kind' must be a non-empty string, got {kind!r}")
    if kind == "off_topic_offer" and row.get("offer_side") not in OFFER_SIDES:
        raise InputError(f"{where}: an 'off_topic_offer' pair needs 'offer_side': 'chosen' or "
                         f"'rejected' (which answer is the offer), got {row.get('offer_side')!r}")


def attach_pair_kinds(pairs, path):
    """Copy each row's "pair_kind" and "offer_side" from the JSONL file onto its tokenised pair.

    align.data keeps a row's texts and token ids only. The pairs are the file's rows in
    order, less those too long to fit, so each pair is the next row of the file with the
    same prompt, chosen and rejected text.
    """
    with open(path, encoding="utf-8") as f:
        lines = [(number, json.loads(line)) for number, line in enumerate(f, start=1)
                 if line.strip()]
    at = 0
    for pair in pairs:
        row = pair["row"]
        while at < len(lines) and any(lines[at][1][key] != row[key] for key in PREFERENCE_KEYS):
            at += 1
        if at == len(lines):
            raise InputError(f"{path}: changed while it was read (a pair has no row)")
        number, written = lines[at]
        at += 1
        row.update({key: written[key] for key in PAIR_ROW_KEYS if key in written})
        check_pair_kind(row, f"{path}, line {number}")


def mean_or_none(values):
    return sum(values) / len(values) if values else None


@torch.no_grad()
def evaluate_pairs(model, pairs, pad_id, device, batch_size=64) -> dict:
    """Bradley-Terry loss, accuracy P(r_w > r_l), mean margin r_w − r_l, agreement with r*,
    the accuracy per kind of pair, and r_φ on off-topic offers against right answers.

    Unprefixed names (the stage adds eval_ or train_). Agreement counts the pairs whose
    gold rewards differ: does r_φ order them as r* does?
    accuracy_by_pair_kind: {kind: {"accuracy", "n"}}, the share of r_w > r_l among the n
    pairs of each kind (a row without "pair_kind" is same_prompt).
    right_vs_wrong_by_kind: {question kind: {"accuracy", "n"}} over the pairs of two
    answers to their own prompt (π_ref's samples, same_prompt, and the world's
    right_vs_wrong) where judge calls one answer right and the other wrong: does r_φ put
    the right one above? (Does it *use* the fact, as align.probe asks of a policy?)
    off_topic_score: the mean of r_φ(x, y_o) over the off-topic offers y_o;
    right_score: the mean of r_φ(x, y) over the answers y they were offered against that
    judge(x, y) calls right. None where there is nothing to average.
    """
    loss_sum, correct, margins, agree, comparable = 0.0, 0, [], 0, 0
    by_kind, offer_scores, right_scores = {}, [], []  # kind -> [wins, pairs]
    right_vs_wrong = {}  # question kind -> [wins of the right answer, pairs]
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        chosen, rejected = score_pairs(model, batch, pad_id, device)
        loss_sum += bradley_terry_loss(chosen, rejected).item() * len(batch)
        correct += (chosen > rejected).sum().item()
        margins += (chosen - rejected).tolist()
        for number, (pair, r_w, r_l) in enumerate(zip(batch, chosen.tolist(), rejected.tolist()),
                                                  start=start):
            row = pair["row"]
            gold_w = gold_reward(row["prompt"], row["chosen"])
            gold_l = gold_reward(row["prompt"], row["rejected"])
            if gold_w != gold_l:
                comparable += 1
                agree += (r_w > r_l) == (gold_w > gold_l)
            check_pair_kind(row, f"pair {number} (prompt {row['prompt'][:40]!r})")
            kind = row.get("pair_kind", DEFAULT_PAIR_KIND)
            tally = by_kind.setdefault(kind, [0, 0])
            tally[0] += r_w > r_l
            tally[1] += 1
            if kind in ANSWERS_TO_ONE_PROMPT:
                verdict_w = judge(row["prompt"], row["chosen"])
                verdict_l = judge(row["prompt"], row["rejected"])
                if (verdict_w.right and verdict_l.wrong) or (verdict_w.wrong and verdict_l.right):
                    tally = right_vs_wrong.setdefault(verdict_w.kind, [0, 0])
                    tally[0] += (r_w > r_l) if verdict_w.right else (r_l > r_w)
                    tally[1] += 1
            if kind == "off_topic_offer":  # the offer on one side, an answer to x on the other
                offer, answer, answer_score = ((r_w, row["rejected"], r_l)
                                               if row["offer_side"] == "chosen"
                                               else (r_l, row["chosen"], r_w))
                offer_scores.append(offer)
                if judge(row["prompt"], answer).right:
                    right_scores.append(answer_score)
    return {"loss": loss_sum / max(len(pairs), 1), "accuracy": correct / max(len(pairs), 1),
            "margin": sum(margins) / max(len(margins), 1),
            "gold_agreement": agree / max(comparable, 1), "gold_comparable_pairs": comparable,
            "accuracy_by_pair_kind": {kind: {"accuracy": wins / n, "n": n}
                                      for kind, (wins, n) in sorted(by_kind.items())},
            "right_vs_wrong_by_kind": {kind: {"accuracy": wins / n, "n": n}
                                       for kind, (wins, n) in sorted(right_vs_wrong.items())},
            "off_topic_score": mean_or_none(offer_scores), "right_score": mean_or_none(right_scores)}


# the nested tallies of evaluate_pairs -> the metric names each is logged under, flat:
# accuracy_by_pair_kind as accuracy/<kind> and pairs/<kind>, right_vs_wrong_by_kind as
# right_vs_wrong/<question kind> and right_vs_wrong_pairs/<question kind>
TALLY_METRICS = {"accuracy_by_pair_kind": ("accuracy/", "pairs/"),
                 "right_vs_wrong_by_kind": ("right_vs_wrong/", "right_vs_wrong_pairs/")}


def evaluation_metrics(result: dict, by_kind: bool) -> dict:
    """evaluate_pairs' result as flat metrics (unprefixed): each tally of TALLY_METRICS
    under its names when by_kind (plain TRL rows log TRL's names only), and no None."""
    flat = {key: value for key, value in result.items()
            if key not in TALLY_METRICS and value is not None}
    if by_kind:
        for name, (share_name, count_name) in TALLY_METRICS.items():
            for kind, tally in result[name].items():
                flat[share_name + kind], flat[count_name + kind] = tally["accuracy"], tally["n"]
    return flat


def summary_of_evaluation(final: dict, prefix: str, n_pairs: int) -> dict:
    """The last evaluation's metrics row (`evaluation_metrics`, prefixed) as evaluate_pairs
    returns it: unprefixed, the tallies nested again (pairs that name no kind are one kind,
    same_prompt, of n_pairs pairs), the off-topic scores None if absent."""
    values = {key.removeprefix(prefix + "_"): value for key, value in final.items() if key != "step"}
    tallies = {}
    for name, (share_name, count_name) in TALLY_METRICS.items():
        kinds = [key.removeprefix(share_name) for key in list(values) if key.startswith(share_name)]
        tallies[name] = {kind: {"accuracy": values.pop(share_name + kind),
                                "n": values.pop(count_name + kind)} for kind in kinds}
    tallies["accuracy_by_pair_kind"] = (tallies["accuracy_by_pair_kind"] or
                                        {DEFAULT_PAIR_KIND: {"accuracy": values["accuracy"],
                                                             "n": n_pairs}})
    return {**values, **tallies, "off_topic_score": values.get("off_topic_score"),
            "right_score": values.get("right_score")}


def load_reward_model(path, device="cpu"):
    """A trained RewardModel and its tokenizer from a reward-stage checkpoint."""
    checkpoint, _ = load_stage(path, ("reward",), device, "a reward-model reader")
    gpt, tokenizer = model_from_checkpoint(checkpoint, weights=False)
    model = RewardModel(gpt.config, reads_likelihood="likelihood_weight" in checkpoint["model"])
    load_weights(model, checkpoint["model"], checkpoint["path"])
    return model.to(device).eval(), tokenizer


@dataclass
class RewardConfig(StageConfig):
    out_dir: str = dataclasses.field(default="runs/reward", metadata={"help": "run folder to write"})
    learning_rate: float = dataclasses.field(default=1e-4, metadata={"help": "peak learning rate"})
    min_lr: float = dataclasses.field(default=1e-5, metadata={"help": "learning rate at the end"})
    reads_likelihood: bool = dataclasses.field(default=False, metadata={
        "help": "r_φ adds λ·(1/|y|)·log π_φ(y|x), its trunk's mean log-prob of the answer, "
                "λ learned (see RewardModel)"})


def train_reward(config: RewardConfig, progress=True) -> dict:
    """Train r_φ into config.out_dir; the summary (on rank 0 under torchrun, {} elsewhere)."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    ranks = distributed.start()  # one process, or this one's place under torchrun
    with ranks.together():  # bad input on any rank stops every rank, with its message
        checkpoint, _ = load_stage(require(config.init, "--init"), ("sft", "pretrain"), device,
                                   "align.reward --init")
        trunk, tokenizer = model_from_checkpoint(checkpoint)
        model = RewardModel(trunk.config, config.reads_likelihood)
        model.gpt.load_state_dict(trunk.state_dict())
        fit_lengths_to_context(config, trunk.config.block_size)
        resume_from = checkpoint_to_resume(config, "reward", ranks)
        if resume_from is not None:
            load_weights(model, resume_from["model"], resume_from["path"])
        model.to(device)
        train_pairs, eval_pairs, stats = load_pairs(config, tokenizer, "reward-model")
        attach_pair_kinds(train_pairs, config.data)
        if eval_pairs:
            attach_pair_kinds(eval_pairs, config.eval_data)
        # only now: bad input above leaves the folder untouched (None on ranks other than 0)
        run = start_run(config, "reward", tokenizer, stats, resume_from, ranks)
    pad_id = tokenizer.pad_id

    def loss_on_batch(trained, indices):
        batch = [train_pairs[i] for i in indices]
        # chosen and rejected in one forward pass: (2B,) scores, then split
        r_w, r_l = score_pairs(trained, batch, pad_id, device)
        metrics = {"accuracy": (r_w > r_l).float().mean().item(),
                   "margin": (r_w - r_l).mean().item()}
        return bradley_terry_loss(r_w, r_l), metrics, len(batch)

    prefix = "eval" if eval_pairs else "train"  # no held-out pairs: evaluate on training pairs
    evaluated = eval_pairs or train_pairs[:256]
    by_kind = any("pair_kind" in pair["row"] for pair in evaluated)  # else one kind: accuracy

    def evaluate(step):
        result = evaluation_metrics(evaluate_pairs(model, evaluated, pad_id, device), by_kind)
        return {f"{prefix}_{key}": value for key, value in result.items()}

    seconds = train_steps(model, config, loss_on_batch, len(train_pairs), run, device, "reward",
                          tokenizer, evaluate, progress, resume_from, ranks)
    if not ranks.is_main:
        return {}
    rows = run.read_metrics()
    plot_reward(run, rows, prefix)
    final = [row for row in rows if f"{prefix}_loss" in row][-1]
    summary = {"run": run.path, "seconds": seconds, "evaluated_on": prefix,
               **summary_of_evaluation(final, prefix, len(evaluated)), "truncation": stats,
               "likelihood_weight": model.likelihood_weight.item() if model.reads_likelihood else None}
    run.write_json("summary.json", summary)
    return summary


def plot_reward(run, rows, prefix="eval"):
    """loss.png and accuracy.png: training batches, then the evaluation (from step 0) in front."""
    where = "held-out" if prefix == "eval" else "training pairs"
    run.plot("loss.png", {"Bradley-Terry loss (batch)": column(rows, "loss"),
                          f"{prefix}_loss ({where})": column(rows, f"{prefix}_loss")},
             title="Reward model: −log σ(r_w − r_l) (log 2 ≈ 0.693: no preference)",
             ylabel="loss (nats)", evaluation=(f"{prefix}_loss ({where})",), smooth=10,
             hlines={"log 2 (no preference)": 0.693})
    evaluations = {f"{prefix}_gold_agreement ({where}, with r*)": column(rows, f"{prefix}_gold_agreement"),
                   f"{prefix}_accuracy ({where})": column(rows, f"{prefix}_accuracy")}
    kinds = sorted({key for row in rows for key in row if key.startswith(f"{prefix}_accuracy/")})
    evaluations.update({f"{key} ({where})": column(rows, key) for key in kinds})
    run.plot("accuracy.png", {"accuracy (batch)": column(rows, "accuracy"), **evaluations},
             title="Reward model: share of pairs with r_w > r_l (a tie is no win)",
             ylabel="share of pairs", smooth=10, ylim=(-0.02, 1.02), hlines={"chance (0.5)": 0.5},
             evaluation=tuple(evaluations))


def main(argv=None):
    parser = parser_from_dataclass(RewardConfig, __doc__)
    config = RewardConfig(**given_flags(parser.parse_args(argv)))
    ranks = distributed.start()  # under torchrun, rank 0 alone reports a refusal
    with ranks.together():
        check_run_folder(config.out_dir, "reward")  # before any work: no other command's folder
    summary = train_reward(config)
    if not summary:  # a rank other than 0 under torchrun
        return summary
    print(f"run folder: {summary['run']}")
    print(f"{summary['evaluated_on']} accuracy {summary['accuracy']:.3f}, margin {summary['margin']:.3f}, "
          f"agreement with the gold ranking {summary['gold_agreement']:.3f} "
          f"({summary['gold_comparable_pairs']} pairs)")
    if summary["likelihood_weight"] is not None:
        print(f"λ, the weight of log π_φ(y|x) in r_φ: {summary['likelihood_weight']:.3f} (from 1)")
    print("accuracy by kind of pair: " + ", ".join(
        f"{kind} {tally['accuracy']:.3f} ({tally['n']} pairs)"
        for kind, tally in summary["accuracy_by_pair_kind"].items()))
    if summary["off_topic_score"] is not None:
        right = summary["right_score"]
        print(f"mean r_φ on off-topic offers {summary['off_topic_score']:.3f}, on the right answers "
              f"they were offered against {'none' if right is None else format(right, '.3f')}")
    return summary


if __name__ == "__main__":
    run_main(main, resume_hint="add --resume to the same command to continue from its last checkpoint, exactly")
