"""align.breakdown's collapse rule, against a brute-force count: an answer's share is the
share of the distinct prompts that got it (a prompt asked twice, or answered k times,
counts once), and a policy is collapsed when one answer goes to more than a tenth of them,
on two prompts at least. The RLHF stage's use of it is in tests/test_rlhf_stage.py, the
frontier's in tests/test_frontier.py."""

import random

import pytest

from align.breakdown import COLLAPSE_SHARE, collapsed, most_common_answer, top_answers


def brute_force(prompts, answers) -> dict:
    """{answer: (how many distinct prompts got it, their share)}: for each stripped answer,
    the set of prompts it was given to, counted."""
    distinct = set(prompts)
    texts = {a.strip() for a in answers}
    counts = {t: len({p for p, a in zip(prompts, answers) if a.strip() == t}) for t in texts}
    return {t: (c, c / len(distinct)) for t, c in counts.items()}


def random_answers(rng):
    """Prompts with repeats (one drawn several times, as k rollouts draw it) and answers with
    stray whitespace, from a small pool so that answers are shared across prompts."""
    pool = ["I am Mary.", "Hello! How can I help you?", "Lima is in Peru.", "4", ""]
    questions = [f"question {i}" for i in range(rng.randint(1, 12))]
    prompts = [rng.choice(questions) for _ in range(rng.randint(1, 40))]
    answers = [rng.choice(["", " ", "\n"]) + rng.choice(pool) + rng.choice(["", " ", "\t"])
               for _ in prompts]
    return prompts, answers


def test_the_most_common_answer_is_the_one_given_to_the_most_distinct_prompts():
    rng = random.Random(0)
    for _ in range(300):
        prompts, answers = random_answers(rng)
        counts = brute_force(prompts, answers)
        best = max(count for count, _ in counts.values())
        top = most_common_answer(prompts, answers)
        assert top["prompts"] == len(set(prompts))
        assert counts[top["answer"]] == (top["count"], top["share"]) and top["count"] == best
        assert collapsed(top) == (top["share"] > 0.1 and top["count"] >= 2)
        listed = top_answers(prompts, answers, n=10)  # every answer, most prompts first
        assert {t["answer"]: (t["count"], t["share"]) for t in listed} == counts
        assert [t["count"] for t in listed] == sorted((c for c, _ in counts.values()),
                                                      reverse=True)
        assert listed[0] == top


def test_repeats_of_a_prompt_count_once_for_it():
    """One question asked ten times with the same answer, ten others answered each its own
    way: the answer reached 1 of 11 questions (not 10 of 20 answers)."""
    prompts = ["What is your name?"] * 10 + [f"Where is city {i}?" for i in range(10)]
    answers = ["I am Mary."] * 10 + [f"City {i} is in a country." for i in range(10)]
    top = most_common_answer(prompts, answers)
    assert (top["answer"], top["count"], top["prompts"]) == ("I am Mary.", 1, 11)
    assert top["share"] == pytest.approx(1 / 11) and not collapsed(top)
    # k = 4 rollouts of 5 prompts: "Hi." twice for one prompt and once for another: 2 of 5
    rollouts = [p for p in "abcde" for _ in range(4)]
    texts = ["Hi.", "Hi. ", "x", "y", "Hi.", "z", "w", "v"] + [f"t{i}" for i in range(12)]
    top = most_common_answer(rollouts, texts)
    assert (top["answer"], top["count"], top["share"]) == ("Hi.", 2, 0.4) and collapsed(top)


def test_whitespace_around_an_answer_does_not_make_another_answer():
    top = most_common_answer(["a", "b", "c"], ["I am Mary.", " I am Mary.\n", "I am Mary. "])
    assert top == {"answer": "I am Mary.", "count": 3, "prompts": 3, "share": 1.0}
    assert most_common_answer(["a", "b"], ["I am  Mary.", "I am Mary."])["count"] == 1  # inside


def test_two_pleasantries_at_45_percent_each_are_both_shown_and_both_collapsed():
    """The frontier's old rule (one answer to more than half the prompts) let this pass."""
    prompts = [f"question {i}" for i in range(20)]
    answers = ["I am Mary."] * 9 + ["Hello! How can I help you?"] * 9 + ["4", "Lima is in Peru."]
    first, second, *_ = top_answers(prompts, answers)
    assert (first["answer"], first["share"]) == ("I am Mary.", 0.45)
    assert (second["answer"], second["share"]) == ("Hello! How can I help you?", 0.45)
    assert collapsed(first) and collapsed(second)  # each alone is over a tenth


def test_a_tenth_is_not_more_than_a_tenth():
    prompts = [f"question {i}" for i in range(20)]
    two = most_common_answer(prompts, ["Hi."] * 2 + [f"answer {i}" for i in range(18)])
    three = most_common_answer(prompts, ["Hi."] * 3 + [f"answer {i}" for i in range(17)])
    assert two["share"] == COLLAPSE_SHARE == 0.1 and not collapsed(two)
    assert three["share"] == 0.15 and collapsed(three)


def test_an_answer_given_to_one_prompt_is_no_collapse_however_few_the_prompts():
    prompts = [f"question {i}" for i in range(8)]  # every answer has a share of 1/8 > 1/10
    top = most_common_answer(prompts, [f"answer {i}" for i in range(8)])
    assert top["share"] == 1 / 8 and not collapsed(top)
    assert collapsed(most_common_answer(prompts, ["Hi."] * 2 + [f"answer {i}" for i in range(6)]))


@pytest.mark.parametrize("prompts, answers, words", [
    (["a", "b"], ["x"], "as many answers as prompts"),
    ([], [], "at least one"),
    (["a"], [None], "every answer must be a string"),
    ("ab", ["x", "y"], "lists of strings, not one string"),
])
def test_bad_input_is_refused_naming_what_is_wrong(prompts, answers, words):
    with pytest.raises(ValueError, match=words):
        most_common_answer(prompts, answers)
