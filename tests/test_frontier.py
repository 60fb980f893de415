"""The frontier's parts, each against an independent computation; the whole is run on the
quick pipeline in tests/test_pipeline.py."""

import math
from types import SimpleNamespace

import pytest
import torch

from align.frontier import (FrontierConfig, best_of_n_rows, collapse_check, optimum_rows,
                            point_from_lists, read_pipeline_run, table_row)
from align.gold import gold_reward
from align.frontier_report import best_within, frontier_markdown, verdict
from minigpt.errors import InputError
from toyworld.world import heldout_prompts


def answer(score, gold, right=0.0, finished=True, text=None):
    return {"text": text or f"{score}/{gold}", "finished": finished, "score": score, "gold": gold,
            "right": right}


def test_the_optimum_is_exact_when_the_samples_are_pi_ref_itself():
    """If the M answers are π_ref's support, each repeated in proportion to its probability,
    self-normalised importance sampling is exact: π*_β = π_ref·exp(r/β)/Z, computed here
    directly, and KL(π*‖π_ref) = Σ π* log π*/π_ref."""
    pi_ref = torch.tensor([0.5, 0.25, 0.125, 0.125], dtype=torch.float64)
    r = torch.tensor([0.3, 1.0, -0.5, 2.0], dtype=torch.float64)
    gold = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)
    copies = [4, 2, 1, 1]  # 8 samples in the proportions of π_ref
    answers = [answer(float(r[i]), float(gold[i]), right=float(i == 2))
               for i, n in enumerate(copies) for _ in range(n)]
    for beta in (0.3, 1.0, 5.0):
        row = optimum_rows([answers, answers], ["a", "b"], [beta], seed=0, min_ess=1.0)[0]
        pi_star = pi_ref * torch.exp(r / beta)
        pi_star = pi_star / pi_star.sum()
        assert row["gold"] == pytest.approx(float(pi_star @ gold), abs=1e-9)
        assert row["right_share"] == pytest.approx(float(pi_star[2]), abs=1e-9)
        assert row["kl"] == pytest.approx(float((pi_star * (pi_star / pi_ref).log()).sum()),
                                          abs=1e-9)
        assert row["kl"] >= 0
        assert row["reward_model_score"] == pytest.approx(float(pi_star @ r), abs=1e-9)
        # each copy of answer i weighs π*(i)/copies(i): ESS = 1/Σ_j w_j² = 1/Σ_i π*(i)²/copies(i)
        ess = 1 / sum(float(pi_star[i]) ** 2 / n for i, n in enumerate(copies))
        assert row["ess"] == pytest.approx(ess, rel=1e-9)


def test_the_optimum_says_when_too_few_samples_carry_it():
    flat = [[answer(0.0, 1.0) for _ in range(8)]]
    row = optimum_rows(flat, ["a"], [0.1], seed=0, min_ess=4.0)[0]
    # equal weights: every sample counts
    assert row["ess"] == pytest.approx(8.0) and row["carried_share"] == 1 and row["reliable"]
    assert row["kl"] == pytest.approx(0.0, abs=1e-12)  # π* = π_ref when r is flat
    peaked = [[answer(10.0, 1.0)] + [answer(0.0, -1.0) for _ in range(7)]]
    row = optimum_rows(peaked, ["a"], [0.1], seed=0, min_ess=4.0)[0]
    assert row["ess"] < 1.01 and row["carried_share"] == 0 and not row["reliable"]
    assert row["kl"] == pytest.approx(math.log(8), abs=1e-6)  # all weight on one of 8: KL → log M


def test_best_of_n_picks_the_highest_reward_model_score_among_the_first_n_finished_answers():
    candidates = [[answer(0.1, 1.0), answer(0.9, -2.0), answer(5.0, 3.0, finished=False),
                   answer(0.5, 2.0)],
                  [answer(-1.0, -1.0), answer(-2.0, 3.0), answer(-3.0, 0.0), answer(2.0, 1.0)]]
    rows = {row["setting"]: row
            for row in best_of_n_rows(candidates, ["a", "b"], [1, 2, 4], None, 0)}
    assert rows["N=1"]["gold"] == pytest.approx((1.0 + -1.0) / 2)  # the first answer: π_ref itself
    assert rows["N=2"]["gold"] == pytest.approx((-2.0 + -1.0) / 2)
    # the unfinished 5.0 is passed over
    assert rows["N=4"]["gold"] == pytest.approx((-2.0 + 1.0) / 2)
    for n in (1, 2, 4):
        assert rows[f"N={n}"]["kl"] == pytest.approx(math.log(n) - (n - 1) / n)
        assert rows[f"N={n}"]["kl_is_bound"]


def test_a_run_folder_missing_a_stage_is_refused_naming_the_stage_and_the_command(tmp_path):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "ckpt.pt").write_bytes(b"x")
    with pytest.raises(InputError, match=r"no reward/ckpt.pt \(the reward stage\); make it with "
                                         r"`python -m align.pipeline --out-dir"):
        read_pipeline_run(str(tmp_path))


@pytest.mark.parametrize("flags, message", [
    ({"dpo_betas": "0.1,-1"}, "every β must be positive"),
    ({"rlhf_betas": "0.1,x"}, "expected numbers separated by commas"),
    ({"best_of": "0,2"}, "every N must be at least 1"),
])
def test_bad_frontier_settings_are_refused_at_once(flags, message):
    with pytest.raises(InputError, match=message):
        FrontierConfig(**flags)


def point(method, setting, kl, gold_per_prompt, step=50, score=0.0):
    mean = sum(gold_per_prompt) / len(gold_per_prompt)
    return {"method": method, "setting": setting, "step": step, "kl": kl, "kl_ci": 0.0,
            "gold": mean, "gold_low": mean - 0.1, "gold_high": mean + 0.1,
            "reward_model_score": score, "gold_per_prompt": gold_per_prompt, "right_share": 0.1,
            "distinct_answers": 30}


def test_methods_are_compared_at_equal_kl_not_at_equal_beta():
    """RLHF's β = 1 point (KL 0.8) beats DPO's β = 1 point (KL 3), but at KL ≤ 1 it must meet
    DPO's best point with KL ≤ 1, and at KL ≤ 4 DPO's KL-3 point."""
    n = 40
    points = [point("SFT (π_ref)", "", 0.0, [0.0] * n, step=0),
              point("DPO", "β=1", 3.0, [2.0] * n), point("DPO", "β=5", 0.6, [0.2] * n),
              point("RLHF (RLOO)", "β=1", 0.8, [1.0 + 0.01 * (i % 3) for i in range(n)])]
    assert best_within(points, 1)["DPO"]["setting"] == "β=5"
    assert best_within(points, 4)["DPO"]["setting"] == "β=1"
    lines = verdict(points)
    assert lines[0].startswith("**Neither dominates at equal KL**"), lines[0]
    assert any("KL ≤ 1: RLHF − DPO = +0.81" in line for line in lines), lines
    dominated = [p for p in points if p["setting"] != "β=1" or p["method"] != "DPO"]
    assert verdict(dominated)[0].startswith("**At equal KL, RLHF dominates DPO on this run**")


def test_a_policy_that_gives_one_answer_to_most_prompts_is_collapsed_and_not_compared():
    """Its r* is a fixed answer's: RLOO at a small β found "You can call me Mary."; the
    frontier must not count such a point as RLHF reaching more gold reward."""
    prompts = ["Where is Lima?", "What is 2+2?", "What is your name?", "Where is Paris?"]
    check = collapse_check(["You can call me Mary."] * 3 + ["Paris is in France."], prompts)
    assert check["modal_answer"] == "You can call me Mary." and check["modal_share"] == 0.75
    assert check["collapsed"]
    assert check["modal_gold"] == pytest.approx(
        sum(gold_reward(p, "You can call me Mary.") for p in prompts) / 4)
    n = 40
    points = [point("SFT (π_ref)", "", 0.0, [0.0] * n, step=0), point("DPO", "β=1", 1.0, [0.5] * n),
              {**point("RLHF (RLOO)", "β=0.1", 0.9, [0.9] * n), "collapsed": True},
              {**point("RLHF (RLOO)", "β=1", 0.5, [0.2] * n), "collapsed": False}]
    assert best_within(points, 1)["RLHF"]["setting"] == "β=1"
    assert verdict(points)[0].startswith("**At equal KL, DPO dominates RLHF")


def test_the_frontier_flags_a_collapse_by_the_rule_of_align_breakdown():
    """One answer to more than a tenth of the distinct prompts (two at least), counted over
    distinct prompts: a tenth is not more, a question asked twice counts once."""
    prompts = list(dict.fromkeys(heldout_prompts(80, 0)))[:20]
    others = [f"Answer {i}." for i in range(20)]
    assert not collapse_check(["Hi."] * 2 + others[2:], prompts)["collapsed"]  # 2/20: a tenth
    assert collapse_check(["Hi."] * 3 + others[3:], prompts)["collapsed"]  # 3/20
    # "Hi." to one question asked three times (three answers) and to one other: 2 of the 20
    asked = prompts + [prompts[0]] * 2
    check = collapse_check(["Hi."] * 2 + others[2:] + ["Hi."] * 2, asked)
    assert (check["modal_answer"], check["modal_count"], check["modal_share"]) == ("Hi.", 2, 0.1)
    assert not check["collapsed"]
    assert check["modal_gold"] == pytest.approx(sum(gold_reward(p, "Hi.") for p in prompts) / 20)
    assert check["modal_gold"] != pytest.approx(sum(gold_reward(p, "Hi.") for p in asked) / 22)


def test_two_pleasantries_at_45_percent_each_are_collapsed_and_both_reported():
    """The old rule (more than half the prompts) let this policy through as aligned."""
    prompts = list(dict.fromkeys(heldout_prompts(80, 0)))[:20]
    texts = ["I am Mary."] * 9 + ["Hello! How can I help you?"] * 9 + ["4", "Lima is in Peru."]
    sft_point = point_from_lists([0.0] * 20, [0.0] * 20, [0.0] * 20, 20, seed=0, prompts=prompts)
    sft_point.update(texts=[f"answer {i}" for i in range(20)], kl_exact_per_token=0.0,
                     kl_exact_per_token_ci=0.0)
    rl_point = point_from_lists([gold_reward(p, t) for p, t in zip(prompts, texts)], [0.0] * 20,
                                [2.0] * 20, 4, seed=0, prompts=prompts)
    rl_point.update(texts=texts, kl_exact_per_token=1.5, kl_exact_per_token_ci=0.1)
    sft = table_row("SFT (π_ref)", "", 0, sft_point, None, 0, prompts)
    rl = table_row("RLHF (RLOO)", "β=0.1", 20, rl_point, sft_point, 0, prompts)
    assert not sft["collapsed"] and rl["collapsed"]
    assert rl["top_answers"][:2] == [{"answer": "I am Mary.", "share": 0.45},
                                     {"answer": "Hello! How can I help you?", "share": 0.45}]
    assert "RLHF" not in best_within([sft, rl], 16)  # left out of the comparison
    results = {"run": "runs/x", "device": "cpu", "seconds": 1.0, "prompts": 20,
               "points": [sft, rl], "timings": {}}
    text = frontier_markdown(results, SimpleNamespace(quick=False, run="/nonexistent"))
    assert "'I am Mary.' (45%), 'Hello! How can I help you?' (45%) **collapsed**" in text, text
    assert ("- RLHF (RLOO) β=0.1 step 20: 'I am Mary.' to 45%, 'Hello! How can I help you?' to "
            "45% of the prompts") in text, text
    assert "more than 10% of the distinct prompts" in text
    assert "yes: collapsed onto 'I am Mary.' (45%), 'Hello! How can I help you?' (45%)" in text


def brute_force_best_of_n(probabilities, keys, n):
    """Every ordered N-tuple of draws, its probability, and the answer best-of-N keeps (the
    first drawn among the highest keys): the kept answer's distribution π_N, then
    KL(π_N‖π) = Σ_y π_N(y)·log(π_N(y)/π(y))."""
    import itertools
    kept = [0.0] * len(probabilities)
    for draws in itertools.product(range(len(probabilities)), repeat=n):
        chance = math.prod(probabilities[i] for i in draws)
        best = max(keys[i] for i in draws)
        kept[next(i for i in draws if keys[i] == best)] += chance
    return sum(q * math.log(q / p) for q, p in zip(kept, probabilities) if q > 0)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_best_of_n_kl_is_the_kl_of_the_kept_answer_counted_over_every_draw(n):
    from align.kl import best_of_n_kl
    probabilities = [0.4, 0.1, 0.2, 0.05, 0.25]
    keys = [(True, 0.3), (True, 1.0), (True, 0.3), (False, 5.0), (True, -1.0)]  # a tie, an unfinished
    assert best_of_n_kl(probabilities, keys, n) == pytest.approx(
        brute_force_best_of_n(probabilities, keys, n), abs=1e-12)
    distinct = [(True, float(i)) for i in range(5)]
    assert best_of_n_kl(probabilities, distinct, n) == pytest.approx(
        brute_force_best_of_n(probabilities, distinct, n), abs=1e-12)


def test_best_of_n_kl_approaches_the_bound_with_many_answers_and_stays_below_it():
    from align.kl import best_of_n_kl
    for n in (2, 4, 8):
        bound = math.log(n) - (n - 1) / n
        many = best_of_n_kl([1 / 5000] * 5000, list(range(5000)), n)
        few = best_of_n_kl([1 / 4] * 4, list(range(4)), n)
        assert few < many <= bound and bound - many < 1e-3


def test_best_of_n_rows_give_the_plug_in_kl_of_each_prompts_draws_beside_the_bound():
    from align.kl import best_of_n_kl
    candidates = [[answer(0.1, 1.0), answer(0.9, -2.0), answer(5.0, 3.0, finished=False),
                   answer(0.5, 2.0)],
                  [answer(-1.0, -1.0), answer(-1.0, 3.0), answer(-3.0, 0.0), answer(2.0, 1.0)]]
    rows = best_of_n_rows(candidates, ["a", "b"], [2], None, 0)
    each = [brute_force_best_of_n([0.25] * 4, [(a["finished"], a["score"]) for a in c], 2)
            for c in candidates]
    assert rows[0]["kl_estimate"] == pytest.approx(sum(each) / 2, abs=1e-12)
    assert rows[0]["kl_estimate"] < rows[0]["kl"] == pytest.approx(math.log(2) - 1 / 2)
    assert best_of_n_kl([0.25] * 4, [0, 1, 2, 3], 2) == pytest.approx(each[0], abs=1e-12)


def test_the_snis_estimate_against_the_exact_optimum_of_an_enumerable_policy():
    """A categorical π_ref over 300 answers with known r_φ and r*: π*_β = π_ref·e^{r/β}/Z
    exactly, against optimum_rows on draws of M answers (many draws standing for many
    prompts). With M large the estimate is close and marked reliable; with M small and β
    small it is biased low in r* and in KL, few prompts are carried, and it is marked
    unreliable."""
    generator = torch.Generator().manual_seed(0)
    K = 300
    pi_ref = torch.softmax(torch.randn(K, generator=generator, dtype=torch.float64) * 2, 0)
    r = torch.randn(K, generator=generator, dtype=torch.float64)
    gold = r + 0.5 * torch.randn(K, generator=generator, dtype=torch.float64)  # r_φ ≈ r*

    def draws(m, prompts):
        picks = torch.multinomial(pi_ref, m * prompts, replacement=True,
                                  generator=torch.Generator().manual_seed(m))
        return [[answer(float(r[i]), float(gold[i])) for i in picks[p * m:(p + 1) * m].tolist()]
                for p in range(prompts)]
    for beta, m, reliable in ((1.0, 200, True), (0.1, 48, False)):
        pi_star = pi_ref * torch.exp(r / beta)
        pi_star = pi_star / pi_star.sum()
        exact_gold = float(pi_star @ gold)
        exact_kl = float((pi_star * (pi_star / pi_ref).log()).sum())
        row = optimum_rows(draws(m, 40), [str(p) for p in range(40)], [beta], seed=0)[0]
        assert row["reliable"] == reliable, row
        if reliable:
            assert row["gold"] == pytest.approx(exact_gold, abs=0.05)
            assert row["kl"] == pytest.approx(exact_kl, abs=0.05)
            assert row["carried_share"] == 1
        else:
            assert row["gold"] < exact_gold - 0.1 and row["kl"] < exact_kl - 0.5
            assert row["carried_share"] < 0.5
        assert row["ess_quantiles"][0] <= row["ess_quantiles"][1] <= row["ess_quantiles"][2]
