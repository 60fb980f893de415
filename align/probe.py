"""Does the model know the fact, or only fail to say it? The knowledge probe.

A model that answers "Where is Kyoto?" wrongly may never have *stored* where Kyoto is, or
may have stored it and fail to *extract* it when asked (Allen-Zhu & Li 2023, "Physics of
Language Models 3.1"). The two need different cures (more or more varied pre-training
text, against fine-tuning that teaches how to answer), so the probe tells them apart
without asking the question at all. It reads the log-probability that the model gives to
the plain sentence stating the fact, written as the pre-training corpus writes facts,
against the same sentence with each false value in its place:

    stored(Kyoto) ⇔ log π("Kyoto is in Japan.") > log π("Kyoto is in k.")  for every k ≠ Japan
    stored(7+5)   ⇔ log π("7 plus 5 is 12.")   > log π("7 plus 5 is s.")  for every s ≠ 12
    stored(echo)  ⇔ log π("An echo is a sound that bounces back to you.")
                     > log π("An echo" + the rest of another topic's explanation)

log π(sentence) is the summed log-probability of its tokens after a paragraph break
(`minigpt.get_batch_logps`), so the sentences compared differ only in the value. Each
fact is probed once, however many prompts ask it (a+b and b+a are one fact). Beside
"stored" the report puts "right": the share of the prompts asking those facts that a
policy answers right (`align.gold.judge`), and "right given stored": the same share
among the prompts whose fact is stored. Stored but not right is knowledge that is not
used; not stored is knowledge that is not there.

The same question can be asked of the reward model: does r_φ *use* the facts its trunk
(the SFT model) has stored? `reward_facts` scores the prompt's answer in the probe's
sentence, true and with each false value, and counts how often r_φ ranks the true one
first; for a sum, also how often it ranks the right sum above both sums one off ("7 plus
6 is 12." and "... 14.": for a held-out sum, the right answers of training neighbours).
A reward model that scores the right answer first for training facts and not for
held-out ones has learnt the answers it was shown, not to check them, and RL on it
cannot teach the held-out facts.

The assistant's own questions (its name, its taste, greetings, well-being) are not facts
of the world the corpus states, so the probe leaves them out.

Run:
    python -m align.probe --run runs/pipeline          # pretrain/, sft/, dpo/, rlhf/

Example:
    >>> true, false = fact_statements(parse_prompt("Where is Kyoto?"))
    >>> true, false[0]
    ('Kyoto is in Japan.', 'Kyoto is in Argentina.')
"""

import os
from dataclasses import dataclass, field

import torch

from align.data import prompt_tokens, response_tokens, sft_example
from align.gold import judge
from align.reward import score_sequences
from align.sampling import generate_responses
from minigpt.checkpoint import load_model
from minigpt.cli import parser_from_dataclass, run_main
from minigpt.device import pick_device
from minigpt.errors import InputError
from minigpt.logps import get_batch_logps
from toyworld.world import (COUNTRIES, OPERANDS, TOPICS, Question, canonical_question,
                            parse_prompt, prompt_pool)

PROBED_KINDS = ("city", "arithmetic", "explain")
CONTEXT = "\n\n"  # a sentence is probed where the corpus starts one: after a paragraph break
SUMS = range(2 * min(OPERANDS), 2 * max(OPERANDS) + 1)  # every sum the world can ask for


def sum_sentence(a: int, b: int, total: int) -> str:
    """The probe's plain sentence for a sum: "7 plus 5 is 12." (true or false)."""
    return f"{a} plus {b} is {total}."


def fact_statements(question: Question) -> tuple[str, list[str]] | None:
    """(the true plain sentence, its false variants) for a fact; None for other kinds."""
    if question.kind == "city":
        sentence = lambda country: f"{question.subject} is in {country}."  # noqa: E731
        return sentence(question.answer), [sentence(k) for k in COUNTRIES if k != question.answer]
    if question.kind == "arithmetic":
        a, b = question.operands
        return sum_sentence(a, b, a + b), [sum_sentence(a, b, s) for s in SUMS if s != a + b]
    if question.kind == "explain":
        subject = question.subject[0].upper() + question.subject[1:]  # "An echo"
        rest = {topic: text[len(topic):] for topic, (text, _) in TOPICS.items()}  # " is a ..."
        true = subject + rest[question.subject]
        return true, [subject + tail for topic, tail in rest.items() if topic != question.subject]
    return None


@torch.no_grad()
def sentence_logps(model, tokenizer, sentences: list[str], device="cpu", batch_size=128):
    """log π(sentence | CONTEXT) for each sentence: (len(sentences),) float tensor."""
    context = tokenizer.encode(CONTEXT)
    out = []
    model.eval()
    for start in range(0, len(sentences), batch_size):
        rows = [context + tokenizer.encode(s) for s in sentences[start:start + batch_size]]
        width = max(map(len, rows))
        idx = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):  # right padding: causal attention never looks at it
            idx[i, :len(row)] = torch.tensor(row)
            labels[i, len(context):len(row)] = torch.tensor(row[len(context):])
        logits, _ = model(idx.to(device))  # (B, T, vocab)
        out.append(get_batch_logps(logits.float(), labels.to(device)).cpu())
    return torch.cat(out)


def asked_facts(prompts) -> dict:
    """{canonical question: (the first prompt asking it, its Question)} for world facts."""
    facts = {}
    for prompt in prompts:
        question = parse_prompt(prompt)
        if question is not None and question.kind in PROBED_KINDS:
            facts.setdefault(canonical_question(prompt), (prompt, question))
    return facts


NEAR_MISSES = (-1, 1)  # a sum one off


@torch.no_grad()
def reward_facts(reward_model, tokenizer, prompts, device="cpu", batch_size=128) -> dict:
    """Does r_φ use the facts? Per kind, over the facts the prompts ask (one prompt each):
    {"facts": n, "right_first": share of facts where r_φ(x, true sentence) is above
    r_φ(x, every false variant), "above_near_miss": for sums, the share where it is above
    both NEAR_MISSES (else None)}. A tie is no win. (1+1 and 12+12 have one near miss
    among the world's sums, and are compared with that one.)"""
    facts, sequences, statements = asked_facts(prompts), [], []
    for prompt, question in facts.values():
        true, false = fact_statements(question)
        statements.append((true, false, len(sequences)))
        context = prompt_tokens(tokenizer, prompt)
        sequences += [sft_example(context, response_tokens(tokenizer, prompt, answer))
                      for answer in (true, *false)]
    reward_model.eval()
    scores = torch.cat([score_sequences(reward_model, sequences[i:i + batch_size],
                                        tokenizer.pad_id, device).float().cpu()
                        for i in range(0, len(sequences), batch_size)] or [torch.zeros(0)])
    tallies = {}  # kind -> [facts, right first, above near misses]
    for (_, question), (true, false, start) in zip(facts.values(), statements):
        score = dict(zip((true, *false), scores[start:start + 1 + len(false)].tolist()))
        tally = tallies.setdefault(question.kind, [0, 0, 0])
        tally[0] += 1
        tally[1] += all(score[true] > score[answer] for answer in false)
        if question.kind == "arithmetic":
            a, b = question.operands
            misses = [sum_sentence(a, b, a + b + d) for d in NEAR_MISSES]
            tally[2] += all(score[true] > score[miss] for miss in misses if miss in score)
    return {kind: {"facts": n, "right_first": first / n,
                   "above_near_miss": near / n if kind == "arithmetic" else None}
            for kind, (n, first, near) in tallies.items()}


def probe_facts(model, tokenizer, prompts, device="cpu") -> dict:
    """{canonical question: {"kind", "stored", "margin"}} for the facts the prompts ask.

    margin = log π(true sentence) − max over false variants of log π(false sentence):
    positive when the fact is stored.
    """
    facts = {key: question for key, (_, question) in asked_facts(prompts).items()}
    sentences, spans = [], []
    for question in facts.values():
        true, false = fact_statements(question)
        spans.append((len(sentences), 1 + len(false)))
        sentences += [true, *false]
    logps = sentence_logps(model, tokenizer, sentences, device) if sentences else torch.zeros(0)
    result = {}
    for (key, question), (start, count) in zip(facts.items(), spans):
        scores = logps[start:start + count]  # the true sentence first
        margin = (scores[0] - scores[1:].max()).item()
        result[key] = {"kind": question.kind, "stored": margin > 0, "margin": margin}
    return result


def share(flags) -> float | None:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else None


def knowledge_table(facts: dict, prompts=None, answers=None) -> dict:
    """Per kind: facts probed, stored share; with answers (one per prompt), the right share
    over the prompts asking those facts and the right share among those whose fact is stored
    (and among those not stored)."""
    answered = []  # (the fact a prompt asks, whether its answer is right), probed facts only
    if answers is not None:
        for p, a in zip(prompts, answers):
            fact = facts.get(canonical_question(p))
            if fact is not None:
                answered.append((fact, judge(p, a).right))
    table = {}
    for kind in PROBED_KINDS:
        stored = [f["stored"] for f in facts.values() if f["kind"] == kind]
        if not stored:
            continue
        row = {"facts": len(stored), "stored": share(stored)}
        if answers is not None:
            asked = [(fact["stored"], right) for fact, right in answered if fact["kind"] == kind]
            row.update(prompts=len(asked), right=share(r for _, r in asked),
                       right_given_stored=share(r for s, r in asked if s),
                       right_given_not_stored=share(r for s, r in asked if not s))
        table[kind] = row
    return table


def knowledge_report(models: dict, tokenizer, heldout: list[str], heldout_answers: dict,
                     train: list[str], max_new_tokens: int, device="cpu") -> dict:
    """{"heldout": {model name: knowledge_table}, "train": {...}} for the pipeline's report.

    heldout_answers: {model name: greedy answers to the held-out prompts}, already sampled
    by the evaluation; the training prompts' greedy answers are sampled here. A model with
    no answers (the pre-trained one, which never learned to end an answer) gets the stored
    share only.
    """
    report = {"heldout": {}, "train": {}}
    for name, model in models.items():
        report["heldout"][name] = knowledge_table(probe_facts(model, tokenizer, heldout, device),
                                                  heldout, heldout_answers.get(name))
        answers = None
        if name in heldout_answers:
            answers = generate_responses(model, tokenizer, train, max_new_tokens, temperature=0.0,
                                         device=device)
        report["train"][name] = knowledge_table(probe_facts(model, tokenizer, train, device),
                                                train, answers)
    return report


def probe_prompts(split: str) -> list[str]:
    """Every distinct prompt of a split that asks a fact of the world."""
    return sorted({p for kind in PROBED_KINDS for p in prompt_pool(split)[kind]})


def format_table(tables: dict) -> list[str]:
    """Markdown rows: one per (model, split, kind)."""
    def cell(value):
        return "–" if value is None else f"{value:.2f}"
    lines = ["| model | prompts | kind | facts | stored | right | right given stored | "
             "right given not stored |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for (name, split), table in tables.items():
        for kind, row in table.items():
            lines.append(f"| {name} | {split} | {kind} | {row['facts']} | {cell(row['stored'])} | "
                         f"{cell(row.get('right'))} | {cell(row.get('right_given_stored'))} | "
                         f"{cell(row.get('right_given_not_stored'))} |")
    return lines


@dataclass
class ProbeConfig:
    run: str = field(default="runs/pipeline", metadata={
        "help": "pipeline run folder (its pretrain/, sft/, dpo/, rlhf/ are probed)"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest greedy answer"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})


def probe_run(config: ProbeConfig) -> dict:
    """The knowledge table of each model of a run, on held-out and training facts."""
    device = pick_device(config.device)
    stages = [s for s in ("pretrain", "sft", "dpo", "rlhf")
              if os.path.exists(os.path.join(config.run, s, "ckpt.pt"))]
    if not stages:
        raise InputError(f"--run {config.run}: no pretrain/, sft/, dpo/ or rlhf/ checkpoint in it")
    tables = {}
    for stage in stages:
        model, tokenizer, _ = load_model(os.path.join(config.run, stage), device)
        for split in ("heldout", "train"):
            prompts = probe_prompts(split)
            facts = probe_facts(model, tokenizer, prompts, device)
            answers = None
            if stage != "pretrain":  # a pre-trained model never learned to end an answer
                answers = generate_responses(model, tokenizer, prompts, config.max_new_tokens,
                                             temperature=0.0, device=device)
            tables[(stage, split)] = knowledge_table(facts, prompts, answers)
    return tables


def main(argv=None):
    parser = parser_from_dataclass(ProbeConfig, __doc__)
    config = ProbeConfig(**vars(parser.parse_args(argv)))
    tables = probe_run(config)
    print("\n".join(format_table(tables)))
    return tables


if __name__ == "__main__":
    run_main(main)
