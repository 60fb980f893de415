"""align.compare's intervals resample questions, and policies are read against the bank."""

import pytest

from align.compare import FIXED_ANSWERS, against_fixed_answers, question_groups, summarise
from align.gold import CANNED_ANSWERS, gold_reward
from align.sampling import Sample
from align.stats import bootstrap_mean, paired_bootstrap

PROMPTS = ["Where is Kyoto?", "In which country is Kyoto?", "Which country is Kyoto in?",
           "What is 7+5?", "What is 5 plus 7?", "How much is 7+5?", "Where is Lima?",
           "Explain an echo to a child", "hello", "What should I call you?"]
ANSWERS = ["It is in Japan.", "It is in Japan.", "It is in Japan.", "The answer is 13.",
           "The answer is 13.", "The answer is 13.", "I am Mary.", "I don't know.", "hi",
           "I am Mary."]


def samples(texts, finished=None):
    finished = finished or [True] * len(texts)
    return [Sample(p, [], [], t, f) for p, t, f in zip(PROMPTS, texts, finished)]


def test_the_intervals_resample_the_questions_not_their_wordings():
    summary = summarise(PROMPTS, samples(ANSWERS), seed=4)
    gold = [gold_reward(p, a) for p, a in zip(PROMPTS, ANSWERS)]
    assert summary["gold"] == gold
    groups = question_groups(PROMPTS)
    assert len(set(groups)) == 6  # Kyoto, 5+7, Lima, an echo, hello, the name wording
    mean, low, high = bootstrap_mean(gold, seed=4, groups=groups)
    assert summary["gold_mean"] == pytest.approx(mean)
    assert summary["gold_interval"] == pytest.approx((low, high))
    assert summary["gold_interval"] != pytest.approx(bootstrap_mean(gold, seed=4)[1:])


def test_a_cut_answer_is_scored_as_cut():
    cut = summarise(PROMPTS, samples(ANSWERS, [False] + [True] * 9), seed=0)
    assert cut["gold"][0] == gold_reward(PROMPTS[0], ANSWERS[0], finished=False) < 0
    assert cut["right"][0] == 0.0 and cut["unfinished"] == 1


def test_each_policy_is_read_against_the_best_answer_of_the_bank():
    assert set(FIXED_ANSWERS) == {a for answers in CANNED_ANSWERS.values() for a in answers}
    sampled = {"SFT": summarise(PROMPTS, samples(ANSWERS), seed=0)}
    out = against_fixed_answers(PROMPTS, sampled, seed=0)
    means = {a: sum(gold_reward(p, a) for p in PROMPTS) / len(PROMPTS) for a in FIXED_ANSWERS}
    assert out["fixed_answers"] == pytest.approx(means)
    assert out["best_fixed_answer"] == max(means, key=means.get)
    best = [gold_reward(p, out["best_fixed_answer"]) for p in PROMPTS]
    assert out["minus_best_fixed"]["SFT"] == pytest.approx(paired_bootstrap(
        sampled["SFT"]["gold"], best, seed=0, groups=question_groups(PROMPTS)))
