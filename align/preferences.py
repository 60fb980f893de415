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

π_ref's samples to one prompt only ever compare answers to *that* prompt, so a reward
model trained on them alone never sees an answer to another question and may score an
off-topic pleasantry ("I am fine, thank you." to "Where is Lima?") above a right answer.
π_ref's samples also rarely hold a right and a wrong answer to the same factual question
(it is mostly right, or mostly dodging), so r_φ sees few pairs that turn on a fact alone.
Three more kinds of pair fill these gaps, labelled by the same Bradley-Terry rule; every
row says its "pair_kind":

    same_prompt       two of π_ref's samples to x (the pairs above)
    off_topic_offer   an offer y_o that answers another question (another prompt's good
                      answer, a pleasantry, the assistant's name) against an answer y to
                      x: the world's good answer (off_topic_against="good", the default),
                      or one of π_ref's finished samples ("sample": the pair then lies
                      where the policy is, but against π_ref's many dodges and wrong
                      answers r* itself barely prefers either side, σ(-1 - -1.5) = 0.62,
                      and the pair teaches little); "offer_side" says whether y_o is the
                      chosen or the rejected answer
    rude_vs_polite    the world's good answer to x against its rude answer to x
    right_vs_wrong    the world's good answer to x against its wrong answer to x (mostly
                      the same words around another country, another sum; some wrong
                      answers are their own sentence, "Lima does not exist."): a pair
                      that only a reward model which checks the fact can order, as a
                      person who corrects a wrong answer writes it

An offer never carries held-out content into training: an offer to a prompt whose
question is held out (`toyworld.world.canonical_question`) answers a held-out prompt, and
an offer to any other prompt answers a training prompt.

Run:
    python -m align.preferences --sft runs/sft --out pairs.jsonl --prompts 400 --samples 4
    python -m align.preferences --sft runs/sft --out pairs.jsonl --prompt-file my_prompts.jsonl
    python -m align.preferences --sft runs/sft --out pairs.jsonl --off-topic-per-prompt 0.5 \\
        --rude-per-prompt 0.25 --wrong-per-prompt 2
"""

import functools
import os
import random
from dataclasses import dataclass, field

from align.common import load_stage, require
from align.data import read_jsonl, response_tokens, tokenizer_fingerprint, write_jsonl
from align.sampling import sample_answers
from align.gold import gold_reward, judge, preference_probability
from toyworld.world import (answer_candidates, canonical_question, misread_answer, parse_prompt,
                            prompt_pool, train_prompts, write_answer)
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


def bradley_terry_row(prompt, first, second, rng: random.Random, finished=(True, True)
                      ) -> tuple[dict, bool]:
    """One labelled pair: first is chosen with P(first > second) = σ(r*(x, first) − r*(x, second)).

    finished: whether each answer ended with EOS (a cut one is never right: align.gold).
    Returns the row (prompt, chosen, rejected, their gold rewards, p_chosen: the
    probability of the label that was drawn) and whether first won."""
    p_first = preference_probability(prompt, first, second, finished_1=finished[0],
                                     finished_2=finished[1])
    first_wins = rng.random() < p_first
    chosen, rejected = (first, second) if first_wins else (second, first)
    chosen_finished, rejected_finished = finished if first_wins else finished[::-1]
    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected,
           "chosen_gold": gold_reward(prompt, chosen, finished=chosen_finished),
           "rejected_gold": gold_reward(prompt, rejected, finished=rejected_finished),
           "p_chosen": p_first if first_wins else 1 - p_first}
    return row, first_wins


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
        finished = (s1.finished, s2.finished) if s1 is not None else (True, True)
        row, first_wins = bradley_terry_row(prompt, first, second, rng, finished)
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


PAIR_KINDS = ("same_prompt", "off_topic_offer", "rude_vs_polite", "right_vs_wrong")
# where an off-topic offer comes from -> the kinds of question whose good answer it is
OFFER_SOURCES = {"another_question": ("city", "arithmetic", "explain", "language"),
                 "pleasantry": ("greeting", "wellbeing"),
                 "name": ("name",)}
OFFER_DRAWS = 10  # tries to find an offer that neither answers x nor repeats the sample


@functools.cache
def heldout_questions() -> frozenset:
    """The canonical questions (`canonical_question`) of every held-out prompt."""
    return frozenset(canonical_question(p) for prompts in prompt_pool("heldout").values()
                     for p in prompts)


def split_of(prompt: str) -> str:
    """"heldout" when prompt asks a held-out question in any wording, else "train"."""
    return "heldout" if canonical_question(prompt) in heldout_questions() else "train"


def draw_offer(prompt: str, rng: random.Random) -> tuple[str, str, str]:
    """An answer to another question than prompt's: (its source, the prompt it answers, it).

    The source is drawn uniformly from OFFER_SOURCES (less the one whose kind is prompt's
    own), then a kind of that source, then a prompt of that kind from prompt's own split
    (`split_of`), and the offer is that prompt's good answer: "Paris is in France.",
    "I am fine, thank you.", "I am Mary."."""
    kind = parse_prompt(prompt).kind
    pool = prompt_pool(split_of(prompt))
    sources = {name: [k for k in kinds if k != kind] for name, kinds in OFFER_SOURCES.items()}
    source = rng.choice([name for name, kinds in sources.items() if kinds])
    other = rng.choice(pool[rng.choice(sources[source])])
    return source, other, write_answer(other, "good", rng)


def answers_the_question(prompt: str, answer: str) -> bool:
    """Whether judge reads answer as an answer to prompt's question, right or wrong."""
    verdict = judge(prompt, answer)
    return verdict.right or verdict.wrong


OFF_TOPIC_AGAINST = ("good", "sample")


def off_topic_pairs(prompt, samples, n: int, rng: random.Random, counts: dict,
                    tokenizer=None, against: str = "good") -> list[dict]:
    """n pairs (x, y_o, y): an offer y_o to another question (`draw_offer`) against an
    answer y to x, labelled by Bradley-Terry: the world's good answer (against="good"), or
    one of π_ref's finished, non-empty samples (against="sample").

    An offer that judge reads as answering x (right or wrong), or that equals y, is drawn
    again (at most OFFER_DRAWS times, then the pair is skipped and counted in
    counts["off_topic_skipped"]). Each row says which side the offer is ("offer_side"),
    what it answers ("offer_prompt") and where it came from ("offer_source"); with a
    tokenizer it keeps y's sampled tokens, and y_o's as align.data encodes a text answer.
    """
    if against not in OFF_TOPIC_AGAINST:
        raise ValueError(f"against must be one of {OFF_TOPIC_AGAINST}, got {against!r}")
    finished = [s for s in samples if s.finished and s.text.strip()]
    if against == "sample" and not finished:
        counts["off_topic_no_sample"] += n
        return []
    rows = []
    for _ in range(n):
        sample = rng.choice(finished) if against == "sample" else None
        answer = sample.text if sample else write_answer(prompt, "good", rng)
        for _ in range(OFFER_DRAWS):
            source, other, offer = draw_offer(prompt, rng)
            if offer != answer and not answers_the_question(prompt, offer):
                break
        else:
            counts["off_topic_skipped"] += 1
            continue
        row, offer_wins = bradley_terry_row(prompt, offer, answer, rng)
        row.update(pair_kind="off_topic_offer", offer_side="chosen" if offer_wins else "rejected",
                   offer_prompt=other, offer_source=source)
        if tokenizer is not None and sample is not None:  # else encoded from text
            offer_ids = response_tokens(tokenizer, prompt, offer)
            chosen, rejected = ((offer_ids, sample.answer_ids) if offer_wins
                                else (sample.answer_ids, offer_ids))
            row["token_ids"] = {"tokenizer": tokenizer_fingerprint(tokenizer),
                                "prompt": sample.prompt_ids, "chosen": chosen, "rejected": rejected}
        rows.append(row)
    return rows


# the world's answer of a quality set against its good one -> the kind of pair it makes
TWIN_PAIR_KINDS = {"rude": "rude_vs_polite", "wrong": "right_vs_wrong"}


def twin_pairs(prompt, quality: str, n: int, rng: random.Random, misread_share=0.5) -> list[dict]:
    """n pairs of the world's good answer to x against its answer of another quality to x
    (`write_answer`: "rude" or "wrong", see TWIN_PAIR_KINDS), labelled by Bradley-Terry.
    Encoded from their text when trained on. For a sum, a wrong twin misreads the question
    with probability misread_share (`misread_answer`: "2 plus 1 is 4." to "What is 2+2?"),
    so that r_φ also learns to check the operands an answer restates."""
    rows = []
    misreads = quality == "wrong" and parse_prompt(prompt).kind == "arithmetic"
    for _ in range(n):
        good = write_answer(prompt, "good", rng)
        twin = (misread_answer(prompt, rng) if misreads and rng.random() < misread_share
                else write_answer(prompt, quality, rng))
        row, _ = bradley_terry_row(prompt, good, twin, rng)
        rows.append({**row, "pair_kind": TWIN_PAIR_KINDS[quality]})
    return rows


def how_many(per_prompt: float, rng: random.Random) -> int:
    """A count with mean per_prompt: its whole part, plus one with probability its fraction
    (0.5 gives one pair to about half the prompts, 1.5 one or two)."""
    whole = int(per_prompt)
    return whole + (rng.random() < per_prompt - whole)


def check_per_prompt(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e6:
        raise ValueError(f"{name} must be a number >= 0 (pairs per prompt, on average), "
                         f"got {value!r}")
    return float(value)


UNFINISHED_CHOICES = ("drop", "keep")


def make_preference_pairs(model, tokenizer, prompts, samples_per_prompt=4, seed=0, device="cpu",
                          max_new_tokens=64, temperature=1.0, unfinished="drop",
                          pairing="adjacent", off_topic_per_prompt=0.0, rude_per_prompt=0.0,
                          off_topic_against="good", wrong_per_prompt=0.0, misread_share=0.5):
    """Sample answers from model for each prompt and label pairs of them; returns (rows, counts).

    Each row keeps the sampled token ids. An answer cut by max_new_tokens before the model
    sampled EOS is never given an EOS it did not write: with unfinished="drop" (the
    default) it is left out before pairing and counted in counts["unfinished_dropped"],
    and the finished answers are paired (`pair_indices`); with "keep" it is paired as it was
    sampled, without an EOS (for a model too small to end its answers yet), and counted
    in counts["unfinished_kept"].

    off_topic_per_prompt, rude_per_prompt and wrong_per_prompt (means per prompt, see
    `how_many`; 0 by default) add `off_topic_pairs` and `twin_pairs` (rude, wrong) for
    each prompt of the toy world (prompts outside it have no answers to write, counted in
    counts["outside_world"]). They draw from their own random stream, so the same_prompt
    rows are the same with or without them (and the off-topic and rude ones with or
    without wrong_per_prompt). misread_share: the share of a sum's wrong twins that
    misread the question (`twin_pairs`). counts["pairs"] is every pair, and
    counts["pairs_by_kind"] says how many of each PAIR_KINDS.
    """
    if unfinished not in UNFINISHED_CHOICES:
        raise ValueError(f"unfinished must be one of {UNFINISHED_CHOICES}, got {unfinished!r}")
    pair_indices(2, pairing)  # refuses an unknown pairing before any sampling
    if off_topic_against not in OFF_TOPIC_AGAINST:
        raise ValueError(f"off_topic_against must be one of {OFF_TOPIC_AGAINST}, "
                         f"got {off_topic_against!r}")
    off_topic_per_prompt = check_per_prompt("off_topic_per_prompt", off_topic_per_prompt)
    rude_per_prompt = check_per_prompt("rude_per_prompt", rude_per_prompt)
    wrong_per_prompt = check_per_prompt("wrong_per_prompt", wrong_per_prompt)
    if isinstance(misread_share, bool) or not isinstance(misread_share, (int, float)) \
            or not 0 <= misread_share <= 1:
        raise ValueError(f"misread_share must be a share from 0 to 1, got {misread_share!r}")
    draws = [sample_answers(model, tokenizer, prompts, max_new_tokens, temperature, seed=seed + k,
                            device=device) for k in range(samples_per_prompt)]
    rng, extra_rng = random.Random(seed), random.Random(f"extra pairs:{seed}")
    wrong_rng = random.Random(f"wrong pairs:{seed}")  # its own: the other kinds stay as they were
    counts = {"prompts": len(prompts), "answers": len(prompts) * samples_per_prompt, "pairs": 0,
              "unfinished_dropped": 0, "unfinished_kept": 0, "identical_skipped": 0,
              "empty_skipped": 0, "off_topic_no_sample": 0, "off_topic_skipped": 0,
              "outside_world": 0}
    rows = []
    for i, prompt in enumerate(prompts):
        samples = [draws[k][i] for k in range(samples_per_prompt)]
        cut = sum(not s.finished for s in samples)
        if unfinished == "drop":
            paired = [s for s in samples if s.finished]
            counts["unfinished_dropped"] += cut
        else:
            paired = samples
            counts["unfinished_kept"] += cut
        rows += [{**row, "pair_kind": "same_prompt"} for row in
                 label_pairs(prompt, [s.text for s in paired], rng, counts, paired, tokenizer,
                             pairing)]
        if not (off_topic_per_prompt or rude_per_prompt or wrong_per_prompt):
            continue
        if parse_prompt(prompt) is None:
            counts["outside_world"] += 1
            continue
        rows += off_topic_pairs(prompt, samples, how_many(off_topic_per_prompt, extra_rng),
                                extra_rng, counts, tokenizer, off_topic_against)
        rows += twin_pairs(prompt, "rude", how_many(rude_per_prompt, extra_rng), extra_rng)
        rows += twin_pairs(prompt, "wrong", how_many(wrong_per_prompt, wrong_rng), wrong_rng,
                           misread_share)
    counts["pairs"] = len(rows)
    counts["pairs_by_kind"] = {kind: sum(r["pair_kind"] == kind for r in rows) for kind in PAIR_KINDS}
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
    off_topic_per_prompt: float = field(default=0.0, metadata={
        "help": "off-topic offers per prompt, on average (0.5: one for about half the prompts): "
                "another question's answer, a pleasantry or the assistant's name against one "
                "of π_ref's finished samples"})
    rude_per_prompt: float = field(default=0.0, metadata={
        "help": "pairs of the world's good answer against its rude one per prompt, on average"})
    wrong_per_prompt: float = field(default=0.0, metadata={
        "help": "pairs of the world's good answer against its wrong one per prompt, on average"})
    misread_share: float = field(default=0.5, metadata={
        "help": "share of a sum's wrong answers in those pairs that misread the question "
                "(\"2 plus 1 is 4.\" to \"What is 2+2?\")"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    overwrite: bool = field(default=False, metadata={"help": "replace --out if it exists"})

    def __post_init__(self):
        if self.samples < 2 or self.prompts < 1 or self.max_new_tokens < 0 or self.temperature <= 0:
            raise InputError("expected --samples >= 2 (answers are paired), --prompts >= 1, "
                             "--max-new-tokens >= 0 and --temperature > 0")
        for flag, value in (("--off-topic-per-prompt", self.off_topic_per_prompt),
                            ("--rude-per-prompt", self.rude_per_prompt),
                            ("--wrong-per-prompt", self.wrong_per_prompt)):
            if not 0 <= value < 1e6:
                raise InputError(f"{flag}: expected a number >= 0 (pairs per prompt, on "
                                 f"average), got {value}")
        if not 0 <= self.misread_share <= 1:
            raise InputError(f"--misread-share: expected a share from 0 to 1, got "
                             f"{self.misread_share}")


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
                                         config.unfinished, config.pairing,
                                         config.off_topic_per_prompt, config.rude_per_prompt,
                                         wrong_per_prompt=config.wrong_per_prompt,
                                         misread_share=config.misread_share)
    if not rows:
        raise InputError(f"no pair could be made ({counts['unfinished_dropped']} answers cut by "
                         f"--max-new-tokens left out, the rest identical or empty; "
                         f"--unfinished keep pairs cut answers as sampled); "
                         f"{config.out} is left as it was")
    write_jsonl(config.out, rows)
    kinds = ", ".join(f"{n} {kind}" for kind, n in counts["pairs_by_kind"].items())
    print(f"{counts['pairs']} pairs ({kinds}) from {counts['prompts']} prompts "
          f"({counts['unfinished_dropped']} of {counts['answers']} answers cut by --max-new-tokens "
          f"left out, {counts['unfinished_kept']} kept without EOS; {counts['identical_skipped']} identical and {counts['empty_skipped']} empty "
          f"pairs skipped; "
          f"{counts['label_agrees_with_gold']} labels agree with the gold ranking, "
          f"{counts['gold_ties']} gold ties) -> {config.out}")
    return rows, counts


if __name__ == "__main__":
    run_main(main)
