"""What a policy's answers are made of: the breakdown to read beside a mean gold reward.

A mean r* alone can be reached by a degenerate policy (one fixed answer, a dodge, a
collapse onto a pleasant phrase). So every evaluation also reports, over the same
prompts:

- the share of answers that are right, wrong, offensive, evasive and off-topic
  (`align.gold.judge`; a rude right answer is both right and offensive);
- the mean of each component of r* (they add up to the mean r*);
- the number of distinct answers (a collapse shows as a small number);
- the right-answer share by kind of question (cities, sums, topics, ...).

Example:
    >>> b = answer_breakdown(["Where is Lima?", "What is 2+2?"], ["Lima is in Peru.", "I am Mary."])
    >>> b["shares"]["right"], b["shares"]["off_topic"], b["distinct_answers"]
    (0.5, 0.5, 2)
"""

from align.gold import gold_components, judge
from toyworld.world import KINDS, parse_prompt

VERDICTS = ("right", "wrong", "offensive", "evasive", "off_topic")


def answer_breakdown(prompts, answers) -> dict:
    """Shares of each verdict, mean of each r* component, distinct answers, right by kind."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError("answer_breakdown needs as many answers as prompts, and at least one")
    verdicts = [judge(p, a) for p, a in zip(prompts, answers)]
    components = [gold_components(p, a) for p, a in zip(prompts, answers)]
    n = len(prompts)
    by_kind = {}
    for verdict in verdicts:
        kind = verdict.kind or "outside the world"
        right, total = by_kind.get(kind, (0, 0))
        by_kind[kind] = (right + verdict.right, total + 1)
    order = [k for k in KINDS if k in by_kind] + [k for k in by_kind if k not in KINDS]
    return {
        "n": n,
        "shares": {name: sum(getattr(v, name) for v in verdicts) / n for name in VERDICTS},
        "components": {name: sum(c[name] for c in components) / n for name in components[0]},
        "distinct_answers": len({a.strip() for a in answers}),
        "right_by_kind": {kind: {"right": by_kind[kind][0], "n": by_kind[kind][1],
                                 "share": by_kind[kind][0] / by_kind[kind][1]} for kind in order},
    }


def right_flags(prompts, answers) -> list[float]:
    """1.0 for each right answer, else 0.0 (for intervals on the right-answer share)."""
    return [float(judge(p, a).right) for p, a in zip(prompts, answers)]


def kind_of(prompt: str) -> str:
    """The kind of question a prompt asks ("outside the world" when it asks none)."""
    q = parse_prompt(prompt)
    return q.kind if q else "outside the world"
