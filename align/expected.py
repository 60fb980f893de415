"""What a default pipeline run should measure, and how far it may move.

A run of `python -m align.pipeline` is not reproduced to the last digit on another machine:
two CPUs that round a sum in another order send training down another path after a few
hundred steps, and a seed does the same on purpose. So a figure quoted anywhere in the
project (README, lessons, reports) comes with the range that the runs listed in
`MEASURED_ON` gave, and `compare_with_expected` tells a user whether their own run lies
within it: "within" says the run behaves like the ones measured; "outside" says look
closer (another preset, another version of the code, a changed flag, or a bug).

Example:
    >>> results = json.load(open("runs/pipeline/results.json"))
    >>> for row in compare_with_expected(results):
    ...     print(row["label"], row["value"], row["low"], row["high"], row["verdict"])
"""

# Where the ranges come from. Each range is the lowest and highest value these runs gave,
# widened to a round number; a user's default run is expected inside it.
MEASURED_ON = ("2026-12-06/07: the default preset, seed 1337 on three 2-core CPU machines "
               "and seeds 1 and 2 on one of them (torch 2.13)")

# name: (what it is, low, high, how to read it from results.json)
EXPECTED = {
    "dpo_minus_sft": ("DPO − SFT, mean r* (sampled, paired)", 0.6, 1.0,
                      ("evaluation", "paired", "DPO − SFT", "gold_difference", 0)),
    "rlhf_minus_sft": ("RLHF − SFT, mean r* (sampled, paired)", 0.8, 1.1,
                       ("evaluation", "paired", "RLHF − SFT", "gold_difference", 0)),
    "reward_gold_agreement": ("reward model's agreement with the gold ranking", 0.8, 0.92,
                              ("reward_gold_agreement",)),
    "rlhf_off_topic": ("RLHF answers that ignore the question (share)", 0.25, 0.45,
                       ("evaluation", "sampled", "RLHF", "breakdown", "shares", "off_topic")),
}


def read_figure(results: dict, where: tuple):
    """results[where[0]][where[1]]...; None when the run has no such entry (an older run)."""
    value = results
    for key in where:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def compare_with_expected(results: dict) -> list[dict]:
    """For each figure of EXPECTED: {"name", "label", "value", "low", "high", "verdict"}, the
    verdict "within", "outside" or "missing" (the run has no such figure). Only a default
    run (results["preset"] == "default") is compared: another preset's figures have no
    expected range, and every verdict is then "not comparable"."""
    comparable = results.get("preset") == "default"
    rows = []
    for name, (label, low, high, where) in EXPECTED.items():
        value = read_figure(results, where)
        if not comparable:
            verdict = "not comparable"
        elif value is None:
            verdict = "missing"
        else:
            verdict = "within" if low <= value <= high else "outside"
        rows.append({"name": name, "label": label, "value": value, "low": low, "high": high,
                     "verdict": verdict})
    return rows
