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
# widened to a round number; a user's default run is expected inside it. Three runs are
# few: a run just outside one range is no proof of a bug, a run outside several is worth a
# look.
MEASURED_ON = ("2026-12-08, the default preset on torch 2.13, one 2-core CPU, seeds 1337, "
               "1 and 2 (3 runs)")

# name: (what it is, low, high, where results.json holds it)
EXPECTED = {
    "pretrain_val_loss": ("pre-training validation loss (nats per token)", 0.80, 0.88,
                          ("pretrain_val_loss",)),
    "sft_sums_stored": ("held-out sums the SFT model has stored (share, knowledge probe)",
                        0.75, 1.0, ("knowledge", "heldout", "SFT", "arithmetic", "stored")),
    "sft_gold": ("SFT's mean r* (sampled)", -1.8, -0.8,
                 ("evaluation", "sampled", "SFT", "gold_mean")),
    "dpo_gold": ("DPO's mean r* (sampled)", -0.1, 1.0,
                 ("evaluation", "sampled", "DPO", "gold_mean")),
    "rlhf_gold": ("RLHF's mean r* (sampled)", 0.4, 1.8,
                  ("evaluation", "sampled", "RLHF", "gold_mean")),
    "dpo_minus_sft": ("DPO − SFT, mean r* (sampled, paired)", 1.1, 2.1,
                      ("evaluation", "paired", "DPO − SFT", "gold_difference", 0)),
    "rlhf_minus_sft": ("RLHF − SFT, mean r* (sampled, paired)", 1.6, 2.9,
                       ("evaluation", "paired", "RLHF − SFT", "gold_difference", 0)),
    "dpo_minus_best_fixed": ("DPO − the best fixed answer, mean r* (sampled, paired)", 0.9, 2.0,
                             ("evaluation", "minus_best_fixed", "DPO", 0)),
    "rlhf_minus_best_fixed": ("RLHF − the best fixed answer, mean r* (sampled, paired)", 1.4,
                              2.9, ("evaluation", "minus_best_fixed", "RLHF", 0)),
    "sft_greedy_right": ("SFT's right-answer share (greedy)", 0.4, 0.7,
                         ("evaluation", "greedy", "SFT", "right_share")),
    "dpo_greedy_right": ("DPO's right-answer share (greedy)", 0.65, 0.9,
                         ("evaluation", "greedy", "DPO", "right_share")),
    "rlhf_greedy_right": ("RLHF's right-answer share (greedy)", 0.7, 1.0,
                          ("evaluation", "greedy", "RLHF", "right_share")),
    "rlhf_greedy_sums_right": ("RLHF's right-answer share on held-out sums (greedy)", 0.7, 1.0,
                               ("evaluation", "greedy", "RLHF", "breakdown", "right_by_kind",
                                "arithmetic", "share")),
    "dpo_heldout_accuracy": ("DPO's implicit-reward accuracy on held-out pairs", 0.84, 0.94,
                             ("dpo_heldout_accuracy",)),
    "reward_gold_agreement": ("reward model's agreement with the gold ranking", 0.88, 0.98,
                              ("reward_gold_agreement",)),
    "reward_off_topic_accuracy": ("reward model's accuracy on held-out off-topic offers", 0.85,
                                  0.98, ("reward_accuracy_by_pair_kind", "off_topic_offer",
                                         "accuracy")),
    "reward_right_vs_wrong_accuracy": ("reward model's accuracy on held-out right-vs-wrong pairs",
                                       0.9, 1.0, ("reward_accuracy_by_pair_kind", "right_vs_wrong",
                                                  "accuracy")),
    "reward_sums_above_near_miss": ("held-out sums where r_φ puts the right sum above both sums "
                                    "one off (a third by chance)", 0.5, 1.0,
                                    ("reward_knowledge", "heldout", "arithmetic",
                                     "above_near_miss")),
    "rlhf_top_answer_share": ("RLHF's most common answer, share of the prompts (a tenth is a "
                              "collapse)", 0.0, 0.1, ("rlhf", "collapse", "share")),
    "dpo_kl": ("KL(π_θ‖π_ref) of DPO, exact per token (nats)", 1.4, 2.1,
               ("evaluation", "kl", "DPO", "kl_exact_per_token")),
    "rlhf_kl": ("KL(π_θ‖π_ref) of RLHF, exact per token (nats)", 1.0, 2.1,
                ("evaluation", "kl", "RLHF", "kl_exact_per_token")),
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
