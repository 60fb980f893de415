"""Reports that conclude: report.md opens with what the run found, written from its own
numbers, and never states a gain, a loss or a lead that its intervals do not support; a
smoke run's report and figures say that their numbers mean nothing.

Every results dict here is built by hand, so each sentence can be checked against the
numbers it was written from.
"""

import json
from types import SimpleNamespace

import pytest

from align.expected import MEASURED_ON, compare_with_expected
from align.frontier_report import frontier_markdown, plot_frontier, verdict
from align.report import (aim_sentence, findings, gold_sentence, kinds_sentence,
                          off_topic_sentence, plot_pipeline, write_report)
from align.stats import proportion_interval
from minigpt.runlog import RunFolder
from tests.test_report import dpo_rows, stage_rows, write_stage

BEST = "best-of-4 (r_φ)"
# 300 held-out prompts: the kinds of toyworld.world, about as often as it asks them
ASKED = {"city": 75, "arithmetic": 75, "explain": 45, "name": 30, "language": 30, "greeting": 22,
         "wellbeing": 23}


def summary(gold_mean, right, off_topic=0.2):
    """One policy's summary (align.compare.summarise, without texts): right = {kind: right
    answers} out of ASKED; every answer neither right nor off-topic is wrong."""
    n = sum(ASKED.values())
    right_share = sum(right.values()) / n
    shares = {"right": right_share, "wrong": 1 - right_share - off_topic, "offensive": 0.0,
              "evasive": 0.0, "off_topic": off_topic}
    return {"gold_mean": gold_mean, "gold_interval": (gold_mean - 0.2, gold_mean + 0.2),
            "right_share": right_share, "right_interval": proportion_interval(right_share, n),
            "unfinished": 0,
            "breakdown": {"n": n, "shares": shares,
                          "components": {"correctness": gold_mean, "style": 0.0},
                          "distinct_answers": 200,
                          "right_by_kind": {kind: {"right": right.get(kind, 0), "n": asked,
                                                   "share": right.get(kind, 0) / asked}
                                            for kind, asked in ASKED.items()}}}


def facts_and_own(cities, sums, topics, own):
    """Right answers by kind: the three kinds of facts, and the assistant's own questions
    spread over its four kinds."""
    spread = [own // 4 + (i < own % 4) for i in range(4)]
    return {"city": cities, "arithmetic": sums, "explain": topics,
            **dict(zip(("name", "language", "greeting", "wellbeing"), spread))}


def paired(estimate, low, high):
    return {"gold_difference": (estimate, low, high), "win_rate": (0.5, 0.4, 0.6),
            "right_share_difference": (0.0, -0.05, 0.05)}


def evaluation(differences, sampled, greedy_right=(75, 60)):
    """differences: {policy: (estimate, low, high)} of mean r* against SFT (sampled);
    sampled: {policy: summary}, SFT's included; greedy_right: DPO's and RLHF's right answers
    out of 300, greedy."""
    greedy = {"SFT": summary(-1.0, facts_and_own(3, 2, 3, 20))}
    for name, right in zip(("DPO", "RLHF"), greedy_right):
        greedy[name] = summary(0.0, facts_and_own(0, 0, 0, right))
    return {"prompts": 300, "sampled": sampled, "greedy": greedy,
            "paired": {f"{name} − SFT": paired(*d) for name, d in differences.items()},
            "kl": {name: {"kl": 2.0, "kl_ci": 0.2, "kl_exact_per_token": 2.0,
                          "kl_exact_per_token_ci": 0.2, "n": 300} for name in ("DPO", "RLHF")},
            "fixed_answers": {"I am Mary.": -0.6, "Yes.": -1.0}}


def default_like(**changes):
    """A default run's shape: DPO and RLHF gain, best-of-N does not; their gain is the
    assistant's own questions and manners, not held-out facts; RLHF answers off-topic more."""
    differences = {"DPO": (0.83, 0.60, 1.05), "RLHF": (1.00, 0.78, 1.22), BEST: (0.10, -0.08, 0.28)}
    sampled = {"SFT": summary(-1.2, facts_and_own(3, 2, 3, 19), off_topic=0.15),
               "DPO": summary(-0.4, facts_and_own(4, 2, 4, 41), off_topic=0.20),
               "RLHF": summary(-0.2, facts_and_own(3, 1, 3, 45), off_topic=0.39),
               BEST: summary(-1.1, facts_and_own(5, 3, 4, 22), off_topic=0.16)}
    differences.update(changes.pop("differences", {}))
    sampled.update(changes.pop("sampled", {}))
    return evaluation(differences, sampled, **changes)


def parts(sentence, after):
    """{label: text} of a sentence "preamble<after>label: items; label: items."."""
    body = sentence.split(after, 1)[1].rstrip(".")
    return dict(part.split(": ", 1) for part in body.split("; "))


def label_of(labelled: dict, name: str) -> str:
    (label,) = [label for label, text in labelled.items() if name in text]
    return label


def gold_labels(evaluation):
    return parts(gold_sentence(evaluation), "paired 95% interval): ")


def test_a_gain_is_stated_only_where_its_paired_interval_excludes_0():
    labelled = gold_labels(default_like())
    assert label_of(labelled, "DPO") == label_of(labelled, "RLHF") == "gain over SFT"
    assert "DPO +0.83 [+0.60, +1.05]" in labelled["gain over SFT"]
    assert label_of(labelled, BEST).startswith("not told apart from SFT")
    assert f"{BEST} +0.10 [-0.08, +0.28]" in labelled[label_of(labelled, BEST)]


def test_a_policy_worse_than_sft_is_never_called_improved():
    labelled = gold_labels(default_like(differences={"DPO": (-0.40, -0.62, -0.18)}))
    assert label_of(labelled, "DPO") == "falls below SFT"
    assert "DPO -0.40 [-0.62, -0.18]" in labelled["falls below SFT"]
    assert "DPO" not in labelled["gains over SFT"] and "RLHF" in labelled["gains over SFT"]


def test_an_interval_containing_0_is_never_called_a_gain_whatever_its_estimate():
    labelled = gold_labels(default_like(differences={"DPO": (0.30, -0.01, 0.61),
                                                     "RLHF": (-0.30, -0.61, 0.01)}))
    assert not any("gain" in label or "below" in label for label in labelled), labelled
    assert all(name in labelled[label_of(labelled, name)] for name in ("DPO", "RLHF", BEST))


def kinds_labels(evaluation):
    return parts(kinds_sentence(evaluation), "excludes 0): ")


def test_a_gain_all_in_the_assistants_own_questions_is_not_a_gain_on_held_out_facts():
    labelled = kinds_labels(default_like())
    facts = labelled["not improved by any policy"]
    for group in ("cities 0.04 → 0.05, 0.04, 0.07 (75 asked)", "sums", "topics"):
        assert group in facts, facts
    assert "own questions" not in facts
    # 19 → 41 (DPO) and 45 (RLHF) of 105 lie beyond the noise; best-of-N's 22 does not
    own = label_of(labelled, "own questions")
    assert own == "improved by DPO and RLHF", labelled
    assert "0.18 → 0.39, 0.43, 0.21 (105 asked)" in labelled[own]


def test_a_kind_that_rose_by_one_answer_is_not_called_improved_and_a_fall_is_named():
    rose = summary(-0.4, facts_and_own(3, 3, 3, 41), off_topic=0.2)  # one more sum than SFT
    labelled = kinds_labels(default_like(sampled={"DPO": rose}))
    assert label_of(labelled, "sums") == "not improved by any policy"
    fell = summary(-0.4, facts_and_own(3, 2, 3, 2), off_topic=0.2)  # 19 → 2 of 105
    labelled = kinds_labels(default_like(sampled={"DPO": fell}))
    assert label_of(labelled, "own questions") == "improved by RLHF, fell for DPO"


def test_the_off_topic_share_is_said_to_rise_only_beyond_the_noise():
    sentence = off_topic_sentence(default_like())
    assert "(sampled, SFT 0.15)" in sentence
    assert "rose beyond the noise for RLHF (0.39)" in sentence  # 45 → 117 of 300
    assert f"moved within the noise for DPO (0.20) and {BEST} (0.16)" in sentence  # 45 → 60, 48
    assert "fell" not in sentence
    fewer = summary(-0.4, facts_and_own(4, 2, 4, 41), off_topic=0.05)  # 45 → 15 of 300
    assert "fell beyond the noise for DPO (0.05)" in off_topic_sentence(
        default_like(sampled={"DPO": fewer}))


@pytest.mark.parametrize("greedy_right, verb", [
    ((75, 60), "is met by neither DPO nor RLHF"),
    ((160, 60), "is met by DPO only"),
    ((150, 180), "is met by both DPO and RLHF"),
])
def test_the_aim_is_read_for_dpo_and_rlhf_alike(greedy_right, verb):
    sentence = aim_sentence(default_like(greedy_right=greedy_right))
    assert verb in sentence, sentence
    assert f"DPO {greedy_right[0] / 300:.2f} [" in sentence
    assert f"RLHF {greedy_right[1] / 300:.2f} [" in sentence


def test_an_aim_met_by_its_point_estimate_alone_says_its_interval_reaches_below_half():
    sentence = aim_sentence(default_like(greedy_right=(151, 60)))  # 0.503 [0.45, 0.56]
    assert "is met by DPO only" in sentence
    assert "DPO 0.50 [0.45, 0.56] (its interval reaches below one half)" in sentence


def full_results(preset, evaluation):
    """Everything write_report reads, around a hand-built evaluation."""
    counts = {key: 0 for key in ("unfinished_dropped", "unfinished_kept", "identical_skipped",
                                  "empty_skipped", "label_agrees_with_gold", "gold_ties")}
    return {"preset": preset, "device": "cpu", "seconds": 1.0, "timings": {"data": 0.1},
            "pretrain_val_loss": 0.35, "sft_response_loss": 0.5, "reward_accuracy": 0.7,
            "reward_gold_agreement": 0.85, "reward_comparable_pairs": 200,
            "dpo_heldout_accuracy": 0.6, "dpo_heldout_pairs": 200,
            "dpo_heldout_accuracy_interval": (0.53, 0.67),
            "dpo_train_accuracy_start_end": (0.5, 0.7),
            "rlhf": {"algorithm": "rloo", "beta": 0.5},
            "rlhf_scores_start_end": {"objective/scores": (0.0, 1.0),
                                      "objective/gold_scores": (-1.0, 0.0),
                                      "objective/kl": (0.0, 2.0)},
            "evaluation": evaluation, "pairs": {"pairs": 10, "answers": 20, **counts},
            "heldout_pairs": {"pairs": 5, "answers": 10, **counts}, "truncation": {"sft": {}}}


def report(tmp_path, preset, evaluation=None, results=None) -> str:
    """The report of results (by default full_results of preset around evaluation)."""
    write_report(RunFolder(tmp_path), results or full_results(preset, evaluation or default_like()),
                 {"SFT": ["Hi."], "DPO": ["Hello!"], "RLHF": ["Hello."]}, ["hello"])
    return (tmp_path / "report.md").read_text(encoding="utf-8")


def test_the_report_opens_under_its_title_with_what_it_found(tmp_path):
    lines = report(tmp_path, "default").splitlines()
    assert lines[0].startswith("# Lecture 10 end to end")
    opening = lines[2:lines.index("## Against the expected range")]
    assert "\n".join(opening).strip() == "\n".join(findings(full_results("default",
                                                                          default_like()))).strip()
    assert sum(line.startswith("- ") for line in opening) == 4
    assert not any("mean nothing" in line for line in lines)


@pytest.mark.parametrize("preset", ["quick", "smoke"])
def test_a_smoke_report_says_first_that_its_numbers_mean_nothing_and_why(tmp_path, preset):
    text = report(tmp_path, preset)
    banner = text.splitlines()[2]
    assert banner.startswith(f"> **Smoke run (preset `{preset}`): these numbers mean nothing.**")
    for why in ("tiny model", "is is is", "r* rates as off-topic", "greedy answers r* -1.00",
                "sampled ones -1.20", "Only a default run's numbers"):
        assert why in banner, why
    assert "## Against the expected range" not in text  # a smoke run has no expected range


def with_every_expected_figure(results: dict) -> dict:
    """full_results and the figures of align.expected it lacks: the knowledge probe's
    held-out sums, the best fixed answer's differences, r_φ per kind of pair and on the
    facts (align.probe.reward_facts), the collapse watch."""
    evaluation = {**results["evaluation"],
                  "fixed_answers": {"I don't know.": -1.0}, "best_fixed_answer": "I don't know.",
                  "minus_best_fixed": {name: [1.0, 0.6, 1.4] for name in ("SFT", "DPO", "RLHF")}}
    sums = {"facts": 20, "stored": 0.95, "prompts": 60, "right": 0.7,
            "right_given_stored": 0.72, "right_given_not_stored": 0.33}
    return {**results, "evaluation": evaluation,
            "knowledge": {"heldout": {"SFT": {"arithmetic": sums}}},
            "reward_accuracy_by_pair_kind": {"off_topic_offer": {"accuracy": 0.93, "n": 90},
                                             "right_vs_wrong": {"accuracy": 0.77, "n": 120}},
            "reward_likelihood_weight": 1.034,
            "reward_knowledge": {split: {"arithmetic": {"facts": 21, "right_first": first,
                                                        "above_near_miss": near},
                                         "city": {"facts": 24, "right_first": 0.17,
                                                  "above_near_miss": None}}
                                 for split, first, near in (("heldout", 0.0, 0.05),
                                                            ("train", 0.14, 0.52))},
            "rlhf": {**results["rlhf"], "collapse": {"answer": "Hello.", "share": 0.04,
                                                     "collapsed": False, "first_step": None,
                                                     "threshold": 0.1}}}


def test_a_default_report_sets_its_figures_against_the_expected_range(tmp_path):
    results = with_every_expected_figure(full_results("default", default_like()))
    text = report(tmp_path, "default", results=results)
    rows = compare_with_expected(results)
    for row in rows:
        value = "—" if row["value"] is None else f"{row['value']:.2f}"
        assert f"| {row['label']} | {value} | {row['low']:g} to {row['high']:g} | " \
               f"{row['verdict']} |" in text
    assert {row["verdict"] for row in rows} <= {"within", "outside"}
    assert MEASURED_ON in text
    assert ("for held-out facts: arithmetic 0.00, city 0.17 (training facts: arithmetic 0.14, "
            "city 0.17); the right sum above both sums one off: held-out arithmetic 0.05 "
            "(training arithmetic 0.52)") in text
    assert "r_φ = w·h_EOS + b + λ·(1/|y|)·log π_φ(y|x), λ = 1.03 after training" in text
    assert "## Against the expected range" not in report(tmp_path, "small")


def test_a_figure_far_outside_any_expected_range_is_marked_outside(tmp_path):
    """DPO 5 nats of r* below SFT: no default run measured anything like it."""
    worse = default_like(differences={"DPO": (-5.0, -5.2, -4.8)})
    (row,) = [row for row in compare_with_expected(full_results("default", worse))
              if row["value"] == -5.0]
    assert row["verdict"] == "outside"
    assert f"| {row['label']} | -5.00 | {row['low']:g} to {row['high']:g} | outside |" in \
        report(tmp_path, "default", worse)


@pytest.mark.parametrize("preset, smoke", [("quick", True), ("smoke", True), ("default", False),
                                           ("small", False)])
def test_a_smoke_runs_figures_carry_the_banner_and_no_other_run_does(tmp_path, figures, preset,
                                                                      smoke):
    run = RunFolder(tmp_path)
    for stage, key in (("pretrain", "val_loss"), ("sft", "eval_loss"), ("reward", "eval_loss")):
        write_stage(run, stage, stage_rows(key))
    write_stage(run, "dpo", dpo_rows())
    plot_pipeline(run, default_like(), preset)
    assert len(figures) == 4
    for figure in figures:
        title = figure.get_suptitle()
        assert ("SMOKE RUN" in title and "mean nothing" in title) == smoke, title
    losses = figures[0].get_suptitle()
    assert "Loss of each stage" in losses  # the figure's own title stays, under the banner


# The frontier's verdict: RLHF − DPO at equal KL, budget by budget (align.frontier_report)

N = 40  # prompts of the hand-built frontier points


def point(method, setting, kl, gold_per_prompt, step=50):
    mean = sum(gold_per_prompt) / len(gold_per_prompt)
    return {"method": method, "setting": setting, "step": step, "kl": kl, "kl_ci": 0.1,
            "kl_is_bound": False, "gold": mean, "gold_low": mean - 0.1, "gold_high": mean + 0.1,
            "reward_model_score": 0.0, "gold_per_prompt": gold_per_prompt, "right_share": 0.1,
            "right_low": 0.0, "right_high": 0.2, "win_rate": 0.5, "win_low": 0.4,
            "win_high": 0.6, "distinct_answers": 30, "collapsed": False, "modal_answer": "Hi.",
            "modal_share": 0.1, "modal_gold": -1.0}


def noisy(mean):
    """N per-prompt r*, their mean `mean`, spread ±1 around it: a paired difference of two such
    lists of nearby means has an interval about ±0.3 wide."""
    return [mean + (1.0 if i % 2 else -1.0) for i in range(N)]


SFT = point("SFT (π_ref)", "", 0.0, [0.0] * N, step=0)
DPO_NEAR = point("DPO", "β=1", 0.4, [0.0] * N)  # in every budget, KL ≤ 0.5 to 16


def bold(lines) -> str:
    return lines[0].split("**")[1]


def test_a_lead_no_interval_supports_is_never_stated_and_the_estimates_stay_visible():
    """The bug of issue 26: RLHF ahead by its estimate within all 6 budgets, no interval
    excluding 0, and the bold sentence said "RLHF reaches more gold reward"."""
    lines = verdict([SFT, DPO_NEAR, point("RLHF (RLOO)", "β=1", 0.4, noisy(0.05))])
    assert bold(lines) == f"At {N} prompts, DPO and RLHF are not told apart at equal KL"
    assert "none of the 6 paired intervals excludes 0" in lines[0]
    for word in ("reaches more", "dominates", "ahead"):
        assert word not in lines[0]
    estimates = [line for line in lines if line.startswith("- KL ≤ ")]
    assert len(estimates) == 6
    assert all("RLHF − DPO = +0.05 [" in line and "not told apart" in line for line in estimates)


def test_a_lead_every_interval_supports_is_stated_for_every_budget():
    lines = verdict([SFT, DPO_NEAR, point("RLHF (RLOO)", "β=1", 0.4, [1.0] * N)])
    assert bold(lines) == "At equal KL, RLHF dominates DPO on this run"
    assert "each paired interval excluding 0" in lines[0]
    assert all("RLHF ahead" in line for line in lines if line.startswith("- KL ≤ "))


def test_a_lead_within_some_budgets_names_them_and_the_rest_are_not_told_apart():
    rlhf = point("RLHF (RLOO)", "β=1", 0.4, [1.0] * N)
    dpo_far = point("DPO", "β=0.1", 3.0, [v - 0.05 for v in noisy(1.0)])  # KL ≤ 4 and above
    lines = verdict([SFT, DPO_NEAR, dpo_far, rlhf])
    assert bold(lines) == "At equal KL, RLHF reaches more gold reward than DPO within KL ≤ 0.5, " \
                          "1 and 2 only"
    assert "within KL ≤ 4, 8 and 16 the paired intervals include 0: not told apart at 40 " \
           "prompts" in lines[0]
    assert any(line.startswith("- KL ≤ 4: RLHF − DPO = +0.05 [") for line in lines)


def test_leads_both_ways_say_which_budgets_each_method_wins():
    rlhf = point("RLHF (RLOO)", "β=1", 0.4, [1.0] * N)
    dpo_far = point("DPO", "β=0.1", 3.0, [v - 0.05 for v in noisy(1.0)])
    dpo_farther = point("DPO", "β=0.05", 6.0, [2.0] * N)  # KL ≤ 8 and 16
    lines = verdict([SFT, DPO_NEAR, dpo_far, dpo_farther, rlhf])
    assert bold(lines).startswith("Neither dominates at equal KL")
    assert "RLHF reaches more gold reward within KL ≤ 0.5, 1 and 2, DPO within KL ≤ 8 and 16" \
           in lines[0]
    assert "within KL ≤ 4 the paired intervals include 0" in lines[0]


# A smoke frontier says so (align.frontier_report.frontier_markdown and plot_frontier)

def frontier_config(tmp_path, quick, pipeline_preset):
    """What the frontier's report reads of its config: --quick, and the pipeline run's folder."""
    (tmp_path / "config.json").write_text(json.dumps({"preset": pipeline_preset}))
    return SimpleNamespace(quick=quick, run=str(tmp_path))


FRONTIER_CASES = [(True, "default", True), (False, "quick", True), (False, "smoke", True),
                  (True, "quick", True), (False, "default", False)]


@pytest.mark.parametrize("quick, pipeline_preset, smoke", FRONTIER_CASES)
def test_a_smoke_frontier_md_says_first_that_its_numbers_mean_nothing(tmp_path, quick,
                                                                      pipeline_preset, smoke):
    points = [SFT, DPO_NEAR, point("RLHF (RLOO)", "β=1", 0.4, noisy(0.05))]
    results = {"run": str(tmp_path), "device": "cpu", "seconds": 1.0, "prompts": N,
               "points": points, "timings": {"SFT": 1.0}}
    text = frontier_markdown(results, frontier_config(tmp_path, quick, pipeline_preset))
    third = text.splitlines()[2]
    assert ("these numbers mean nothing" in text) == smoke
    assert third.startswith("> **Smoke run (") == smoke, third
    assert ("--quick" in third) == (quick and smoke)
    assert (f"preset `{pipeline_preset}`" in third) == (pipeline_preset != "default")


@pytest.mark.parametrize("quick, pipeline_preset, smoke", FRONTIER_CASES)
def test_a_smoke_frontiers_figures_carry_the_banner(tmp_path, figures, quick, pipeline_preset,
                                                    smoke):
    points = [SFT, DPO_NEAR, point("RLHF (RLOO)", "β=1", 0.4, noisy(0.05))]
    plot_frontier(RunFolder(tmp_path), points, frontier_config(tmp_path, quick, pipeline_preset))
    assert len(figures) == 2
    for figure in figures:
        title = figure.get_suptitle()
        assert ("SMOKE RUN" in title and "mean nothing" in title) == smoke, title
        assert figure.axes[0].get_title()  # the figure's own title stays


def test_the_reward_line_gives_right_above_wrong_per_kind_of_question():
    from align.report import reward_kind_lines
    results = {"reward_accuracy_by_pair_kind": {"same_prompt": {"accuracy": 0.7, "n": 50}},
               "reward_right_vs_wrong_by_kind": {"arithmetic": {"accuracy": 0.4, "n": 30},
                                                 "city": {"accuracy": 0.9, "n": 10}}}
    line, = reward_kind_lines(results)
    assert "same prompt 0.700 (50 pairs)" in line
    assert "arithmetic 0.40 (30 pairs); city 0.90 (10 pairs)." in line
    assert "Right above wrong" not in reward_kind_lines(
        {"reward_accuracy_by_pair_kind": results["reward_accuracy_by_pair_kind"]})[0]
