"""Preference pairs made as the DPO paper made them: sample from π_ref, let a judge compare.

For each prompt x, sample K answers from the SFT model (π_ref), pair them up, and label
each pair with the Bradley-Terry probability of the gold reward r*:

    P(y_1 > y_2) = σ(r*(x, y_1) − r*(x, y_2))

y_1 becomes "chosen" with that probability, so labels are noisy as people's are: two
answers of similar quality are close to a coin flip. Pairs of identical answers, and
pairs with an empty answer (EOS at once), are skipped and counted; answers that ran into
--max-new-tokens without EOS are left out before pairing, and counted. Rows are saved as
JSONL with prompt, chosen, rejected as text (TRL's format, for reading and for other
tools), the gold rewards and the labelling probability, and "token_ids": the very tokens
π_ref sampled, which the reward model and DPO train on (text is only re-encoded for rows
without them, such as a user's own data).

Run:
    python -m align.preferences --sft runs/sft --out pairs.jsonl --prompts 400 --samples 4
    python -m align.preferences --sft runs/sft --out pairs.jsonl --prompt-file my_prompts.jsonl
"""

import os
import random
from dataclasses import dataclass, field

from align.common import load_stage, require
from align.data import read_jsonl, tokenizer_fingerprint, write_jsonl
from align.sampling import sample_answers
from align.gold import gold_reward, preference_probability
from toyworld.world import answer_candidates, train_prompts
from minigpt.checkpoint import model_from_checkpoint
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.errors import InputError
from minigpt.device import pick_device
from minigpt.ownership import refuse_others_run_folder


PAIRING_CHOICES = ("adjacent", "all")


def pair_indices(n: int, pairing: str = "adjacent") -> list[tuple[int, int]]:
    """Which of n answers are compared: "adjacent" pairs 1st with 2nd, 3rd with 4th, ...
    (n // 2 pairs, no answer in two of them: independent pairs, as held-out data needs);
    "all" compares every two answers, n(n − 1)/2 pairs (three times as many from K = 4
    samples, at no extra sampling cost; pairs that share an answer are not independent)."""
    if pairing == "adjacent":
        return [(i, i + 1) for i in range(0, n - 1, 2)]
    if pairing == "all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise ValueError(f"pairing must be one of {PAIRING_CHOICES}, got {pairing!r}")


def label_pairs(prompt, answers, rng: random.Random, counts: dict, samples=None,
                tokenizer=None, pairing: str = "adjacent") -> list[dict]:
    """Pair answers (see `pair_indices`) and label each pair by Bradley-Terry.

    answers are texts; samples (optional, one `Sample` per answer) are the tokens they were
    sampled as, kept in each row under "token_ids" so that training reads exactly them.
    """
    rows = []
    samples = samples if samples is not None else [None] * len(answers)
    for i, j in pair_indices(len(answers), pairing):
        (first, s1), (second, s2) = (answers[i], samples[i]), (answers[j], samples[j])
        if first == second:
            counts["identical_skipped"] += 1
            continue
        if not first.strip() or not second.strip():  # an answer that was EOS at once
            counts["empty_skipped"] += 1
            continue
        p_first = preference_probability(prompt, first, second)
        first_wins = rng.random() < p_first
        chosen, rejected = (first, second) if first_wins else (second, first)
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected,
               "chosen_gold": gold_reward(prompt, chosen),
               "rejected_gold": gold_reward(prompt, rejected),
               "p_chosen": p_first if first_wins else 1 - p_first}
        if s1 is not None:
            chosen_sample, rejected_sample = (s1, s2) if first_wins else (s2, s1)
            row["token_ids"] = {"tokenizer": tokenizer_fingerprint(tokenizer),
                                "prompt": s1.prompt_ids, "chosen": chosen_sample.answer_ids,
                                "rejected": rejected_sample.answer_ids}
        rows.append(row)
        counts["pairs"] += 1
    return rows


def pairs_from_world(prompts, seed=0) -> list[dict]:
    """Pairs of the world's own answers (one of each quality per prompt, shuffled, paired
    two by two), labelled by Bradley-Terry as above: quick data with no model to sample."""
    rng = random.Random(seed)
    counts = {"pairs": 0, "identical_skipped": 0, "empty_skipped": 0}
    rows = []
    for prompt in prompts:
        answers = list(answer_candidates(prompt, rng).values())
        rng.shuffle(answers)
        rows += label_pairs(prompt, answers, rng, counts)
    return rows


UNFINISHED_CHOICES = ("drop", "keep")


def make_preference_pairs(model, tokenizer, prompts, samples_per_prompt=4, seed=0, device="cpu",
                          max_new_tokens=64, temperature=1.0, unfinished="drop",
                          pairing="adjacent"):
    """Sample answers from model for each prompt and label pairs of them; returns (rows, counts).

    Each row keeps the sampled token ids. An answer cut by max_new_tokens before the model
    sampled EOS is never given an EOS it did not write: with unfinished="drop" (the
    default) it is left out before pairing and counted in counts["unfinished_dropped"],
    and the finished answers are paired (`pair_indices`); with "keep" it is paired as it was
    sampled, without an EOS (for a model too small to end its answers yet), and counted
    in counts["unfinished_kept"].
    """
    if unfinished not in UNFINISHED_CHOICES:
        raise ValueError(f"unfinished must be one of {UNFINISHED_CHOICES}, got {unfinished!r}")
    pair_indices(2, pairing)  # refuses an unknown pairing before any sampling
    draws = [sample_answers(model, tokenizer, prompts, max_new_tokens, temperature, seed=seed + k,
                            device=device) for k in range(samples_per_prompt)]
    rng = random.Random(seed)
    counts = {"prompts": len(prompts), "answers": len(prompts) * samples_per_prompt, "pairs": 0,
              "unfinished_dropped": 0, "unfinished_kept": 0, "identical_skipped": 0,
              "empty_skipped": 0}
    rows = []
    for i, prompt in enumerate(prompts):
        samples = [draws[k][i] for k in range(samples_per_prompt)]
        cut = sum(not s.finished for s in samples)
        if unfinished == "drop":
            samples = [s for s in samples if s.finished]
            counts["unfinished_dropped"] += cut
        else:
            counts["unfinished_kept"] += cut
        rows += label_pairs(prompt, [s.text for s in samples], rng, counts, samples, tokenizer,
                            pairing)
    counts["label_agrees_with_gold"] = sum(r["chosen_gold"] > r["rejected_gold"] for r in rows)
    counts["gold_ties"] = sum(r["chosen_gold"] == r["rejected_gold"] for r in rows)
    return rows, counts


@dataclass
class PreferenceConfig:
    sft: str = field(default="runs/sft", metadata={"help": "SFT run folder or ckpt.pt (π_ref)"})
    out: str = field(default="runs/preferences/pairs.jsonl", metadata={"help": "JSONL file to write"})
    prompts: int = field(default=400, metadata={"help": "how many training prompts of the toy world"})
    prompt_file: str = field(default="", metadata={"help": "JSONL with a 'prompt' per line to use instead of the toy world's"})
    samples: int = field(default=4, metadata={"help": "answers sampled per prompt"})
    pairing: str = field(default="adjacent", metadata={
        "help": "adjacent: 1st with 2nd, 3rd with 4th (independent pairs); all: every two answers",
        "choices": PAIRING_CHOICES})
    max_new_tokens: int = field(default=0, metadata={
        "help": "longest answer in tokens; 0: half of the model's context"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    unfinished: str = field(default="drop", metadata={
        "help": "answers cut by --max-new-tokens before EOS: drop them, or keep them as sampled "
                "(never with an EOS they did not write)", "choices": UNFINISHED_CHOICES})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    overwrite: bool = field(default=False, metadata={"help": "replace --out if it exists"})

    def __post_init__(self):
        if self.samples < 2 or self.prompts < 1 or self.max_new_tokens < 0 or self.temperature <= 0:
            raise InputError("expected --samples >= 2 (answers are paired), --prompts >= 1, "
                             "--max-new-tokens >= 0 and --temperature > 0")


def main(argv=None):
    parser = parser_from_dataclass(PreferenceConfig, __doc__)
    config = PreferenceConfig(**given_flags(parser.parse_args(argv)))
    if os.path.isdir(config.out):
        raise InputError(f"--out {config.out}: is a folder, expected a JSONL file name")
    refuse_others_run_folder(config.out, "--out")  # never into another command's run folder
    if os.path.exists(config.out) and not config.overwrite:
        raise InputError(f"--out {config.out}: already exists; pass --overwrite to replace it, "
                         f"or another --out")
    device = pick_device(config.device)
    checkpoint, _ = load_stage(require(config.sft, "--sft"), ("sft", "pretrain"), device,
                               "align.preferences --sft")
    model, tokenizer = model_from_checkpoint(checkpoint)
    max_new_tokens = config.max_new_tokens or model.config.block_size // 2
    if config.prompt_file:
        prompts = [row["prompt"] for row in read_jsonl(config.prompt_file, ("prompt",))]
    else:
        prompts = train_prompts(config.prompts, config.seed)
    rows, counts = make_preference_pairs(model.to(device), tokenizer, prompts, config.samples,
                                         config.seed, device, max_new_tokens, config.temperature,
                                         config.unfinished, config.pairing)
    if not rows:
        raise InputError(f"no pair could be made ({counts['unfinished_dropped']} answers cut by "
                         f"--max-new-tokens left out, the rest identical or empty; "
                         f"--unfinished keep pairs cut answers as sampled); "
                         f"{config.out} is left as it was")
    write_jsonl(config.out, rows)
    print(f"{counts['pairs']} pairs from {counts['prompts']} prompts "
          f"({counts['unfinished_dropped']} of {counts['answers']} answers cut by --max-new-tokens "
          f"left out, {counts['unfinished_kept']} kept without EOS; {counts['identical_skipped']} identical and {counts['empty_skipped']} empty "
          f"pairs skipped; "
          f"{counts['label_agrees_with_gold']} labels agree with the gold ranking, "
          f"{counts['gold_ties']} gold ties) -> {config.out}")
    return rows, counts


if __name__ == "__main__":
    run_main(main)
