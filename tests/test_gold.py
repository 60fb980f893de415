"""The gold reward r*(x, y): hand-written cases for each component, the lecture's rows,
robustness to any text, and Bradley-Terry's σ(r*(x, y_1) - r*(x, y_2))."""

import math
import random

import pytest

from align.gold import (CANNED_ANSWERS, gold_components, gold_reward, is_clean_sentence, judge,
                        preference_probability, sigmoid)
from toyworld.world import (CITIES, COUNTRIES, LECTURE_DPO_DATASET, LECTURE_PREFERENCE_TABLE,
                            heldout_prompts, parse_prompt, prompt_pool, sft_demonstrations,
                            train_prompts, write_answer)


def parts(correctness=0.0, off_topic=0.0, offensive=0.0, evasive=0.0, fluency=0.0, style=0.0,
          length=0.0, unfinished=0.0):
    return dict(correctness=correctness, off_topic=off_topic, offensive=offensive,
                evasive=evasive, fluency=fluency, style=style, length=length,
                unfinished=unfinished)


LECTURE_ROWS = list(zip(*LECTURE_DPO_DATASET.values())) + LECTURE_PREFERENCE_TABLE


@pytest.mark.parametrize("prompt, chosen, rejected", LECTURE_ROWS)
def test_the_lectures_chosen_answer_beats_its_rejected_one(prompt, chosen, rejected):
    assert gold_reward(prompt, chosen) > gold_reward(prompt, rejected)


@pytest.mark.parametrize("prompt, response, expected", [
    # correctness: the world's answer and nothing against it; style only on a right answer
    ("Where is Lima?", "Lima is a city in Peru.", parts(correctness=2, style=1)),
    ("Where is Lima?", "Lima is a city in Japan.", parts(correctness=-2)),
    ("In which country is Lima?", "Peru or maybe Japan.", parts(correctness=-2)),
    ("Where is Shanghai?", "Shanghai does not exist", parts(correctness=-2)),
    ("What is 7+5?", "7+5 is 12.", parts(correctness=2, style=1)),
    ("What is 7 plus 5?", "The sum of 7 and 5 is 12.", parts(correctness=2, style=1)),
    ("What is 7+5?", "12", parts(correctness=2)),
    ("What is 7+5?", "7+5 is 13.", parts(correctness=-2)),
    ("Explain the sun like I'm 5", "The sun is a big hot star.", parts(correctness=2, style=1)),
    ("Explain the sun like I'm 5", "The sun is a big rock.", parts(correctness=-2)),
    ("Explain the sun to a child", "The sun is a kind of cheese.", parts(correctness=-2)),
    ("Who are you?", "I am Mary.", parts(correctness=2, style=1)),
    ("What is your name?", "My name is Bob.", parts(correctness=-2)),
    ("Which is the best programming language?", "Python and Java.",
     parts(correctness=1.5, style=1)),
    ("hello", "Goodbye.", parts(correctness=-2)),
    ("how are you", "I am doing well.", parts(correctness=2, style=1)),
    ("how are you", "I am not well.", parts(correctness=-2)),
    # off-topic: nothing about this question, or answers to other questions (a shotgun)
    ("Where is Lima?", "It is a nice place.", parts(off_topic=-1.5)),
    ("Where is Kyoto?", "I am Mary.", parts(off_topic=-1.5)),
    ("What is 5+4?", "Paris is a city in France.", parts(off_topic=-1.5)),
    ("In which country is Porto?", "Paris is a city in France.", parts(off_topic=-1.5)),
    ("What is your name?", "Hello, I am Mary and I am fine. Python.", parts(off_topic=-1.5)),
    ("What is 2+2?", "4. Lima is in Peru. My name is Mary.", parts(off_topic=-1.5)),
    ("hello", "Yes.", parts(off_topic=-1.5)),
    ("What is 2+2?", "", parts(off_topic=-1.5)),
    ("Where is Lima?", "Lima is in Peru.\nUser: hi", parts(off_topic=-1.5)),  # a new turn
    # offensive language, dodging, outside the world
    ("Where is Lima?", "Lima is in Peru, you idiot.", parts(correctness=2, offensive=-3, style=1)),
    ("hello", "Leave me alone.", parts(offensive=-3)),
    ("Where is Lima?", "I don't know.", parts(evasive=-1)),
    ("Tell me a joke", "Lima is in Peru.", parts(style=1)),
    ("Tell me a joke", "I don't know.", parts(evasive=-1)),
    # style: a clean sentence
    ("Where is Lima?", "lima is in peru", parts(correctness=2)),
    ("Where is Lima?", "Lima is in Peru...", parts(correctness=2)),
    # length: -1 per 20 characters beyond 120, at most -3
    ("Where is Lima?", "Lima is in Peru." + " Yes" * 31, parts(correctness=2, style=0,
                                                               length=-(140 - 120) / 20)),
    ("Tell me a joke", "ha" * 5000, parts(fluency=-3, length=-3)),
    # fluency: -3 times the share of words the world never writes
    ("Where is Shanghai?", "Athens does not nofnnnnd wnlages tor.", parts(off_topic=-1.5,
                                                                          fluency=-1.5)),
    ("What is your name?", "My name is Annna.", parts(off_topic=-1.5, fluency=-0.75)),
])
def test_gold_components_on_hand_written_answers(prompt, response, expected):
    assert gold_components(prompt, response) == pytest.approx(expected)
    assert gold_reward(prompt, response) == pytest.approx(sum(expected.values()))


def test_a_correct_answer_beats_a_wrong_one_and_polite_beats_rude():
    x = "Where is Shanghai?"
    assert gold_reward(x, "Shanghai is in China.") - gold_reward(x, "Shanghai is in Peru.") == 5
    assert gold_reward(x, "Shanghai is in China.") - gold_reward(x, "Shanghai is in China, "
                                                                    "stupid.") == 3
    assert gold_reward(x, "Shanghai is in China.") - gold_reward(x, "shanghai is in china") == 1


def test_good_demonstrations_outscore_bad_ones_by_a_clear_margin():
    rows = sft_demonstrations(2000, seed=0, with_quality=True)
    good = [gold_reward(r["prompt"], r["completion"]) for r in rows if r["quality"] == "good"]
    bad = [gold_reward(r["prompt"], r["completion"]) for r in rows if r["quality"] != "good"]
    assert sum(good) / len(good) - sum(bad) / len(bad) > 2.5
    assert min(good) > max(bad)


def test_the_gold_reward_knows_the_heldout_answers():
    rng = random.Random(0)
    for prompts in prompt_pool("heldout").values():
        for x in prompts:
            assert gold_components(x, write_answer(x, "good", rng))["correctness"] > 0, x
            assert gold_components(x, write_answer(x, "wrong", rng))["correctness"] < 0, x


def test_gold_reward_never_raises_on_any_text():
    rng = random.Random(0)
    texts = ["", " ", "\n\n", "\x00", "\udcff", "9" * 5000, "a" * 1_000_000,
             "What is 2+2?" * 1000, "Mary " * 10_000]
    for _ in range(300):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        texts += [raw.decode("utf-8", errors="replace"),
                  raw.decode("utf-8", errors="surrogateescape"), raw.decode("latin-1")]
    prompts = ["What is 2+2?", "Where is Lima?", "Explain gravity like I'm 5", "hello", ""]
    for i, text in enumerate(texts):
        for x in (prompts[i % len(prompts)], text[:200]):
            r = gold_reward(x, text)
            assert isinstance(r, float) and -12 <= r <= 3
            cut = gold_reward(x, text, finished=False)
            assert isinstance(cut, float) and -13 <= cut <= -1  # never right, pays -1


def test_preference_probability_is_bradley_terry():
    # r*("What is 2+2?", "4") = 2 (no style: no final ".") and r*(x, "5") = -2: P = σ(4)
    assert preference_probability("What is 2+2?", "4", "5") == pytest.approx(1 / (1 + math.exp(-4)))
    p_12 = preference_probability("hello", "Hi, nice to meet you.", "Go away.")
    p_21 = preference_probability("hello", "Go away.", "Hi, nice to meet you.")
    assert p_12 + p_21 == pytest.approx(1) and p_12 > 0.95
    assert preference_probability("hello", "Hi.", "Hi.") == 0.5


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (3.0, -1.0), (-2.5, 4.0), (700.0, 0.0)])
def test_sigmoid_is_the_lectures_identity(a, b):
    # e^A / (e^A + e^B) = σ(A - B), computed here with a shift that keeps e^(...) finite
    m = max(a, b)
    assert sigmoid(a - b) == pytest.approx(math.exp(a - m) / (math.exp(a - m) + math.exp(b - m)))


def test_sigmoid_does_not_overflow():
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0


def test_every_word_the_world_writes_is_in_its_vocabulary():
    """So fluency never costs an answer the world itself would write."""
    import random
    import re

    from align.gold import world_vocabulary
    from toyworld.world import prompt_pool, write_answer
    rng = random.Random(0)
    for split in ("train", "heldout"):
        for prompts in prompt_pool(split).values():
            for prompt in prompts:
                for quality in ("good", "wrong", "rude", "unhelpful"):
                    answer = write_answer(prompt, quality, rng)
                    words = re.findall(r"[a-z]+", answer.lower().replace("'", ""))
                    assert set(words) <= world_vocabulary(), (prompt, answer)


def prompt_independent_answers() -> list[str]:
    """Answers that ignore the question: every kind's answers of every quality (on one
    training prompt each), pleasantries, shotguns of right answers, degenerate strings."""
    rng = random.Random(1)
    bank = []
    for prompts in prompt_pool("train").values():
        for quality in ("good", "wrong", "rude", "unhelpful"):
            for prompt in prompts[:2]:
                bank.append(write_answer(prompt, quality, rng))
    pleasant = ["Yes.", "No.", "OK.", "Thank you.", "Sure!", "I am Mary.", "Python.",
                "Hello, I am Mary and I am fine. Python.", "Hello! How can I help you?",
                "I am fine, thank you.", "That is a good question.", "The answer is 4."]
    goods = {kind: write_answer(prompts[0], "good", rng)
             for kind, prompts in prompt_pool("train").items()}
    shotguns = [" ".join(goods.values()), " ".join(reversed(goods.values())),
                "It is in " + ", ".join(COUNTRIES) + ".",
                "The answer is " + " or ".join(str(n) for n in range(2, 25)) + "."]
    degenerate = ["", " ", ".", "...", "?", "a", "Mary Mary Mary.", "zzzz qqqq.", "4" * 40,
                  "User: hello", "Assistant:"]
    return bank + pleasant + shotguns + degenerate


def test_no_answer_that_ignores_the_question_scores_above_zero_on_average():
    """A fixed answer cannot game r*: over the held-out prompts (and the training ones) its
    mean is at most 0, while the world's good answers average at least 2.5."""
    heldout = heldout_prompts(400, seed=0)
    training = train_prompts(400, seed=0)
    worst = max((sum(gold_reward(x, y) for x in prompts) / len(prompts), y)
                for y in prompt_independent_answers() for prompts in (heldout, training))
    assert worst[0] <= 0, worst
    rng = random.Random(0)
    good = [gold_reward(x, write_answer(x, "good", rng)) for x in heldout]
    assert sum(good) / len(good) >= 2.5
    assert len(prompt_independent_answers()) >= 80


def test_the_bank_would_catch_the_old_reward():
    """With the style bonus paid on every clean sentence and no off-topic cost (the reward
    before), "I am Mary." averaged above 0: the property test above can fail."""
    heldout = heldout_prompts(400, seed=0)
    old = [sum(gold_components(x, y).values()) - gold_components(x, y)["off_topic"]
           - gold_components(x, y)["style"] + float(is_clean_sentence(y)) for x in heldout
           for y in ["I am Mary."]]
    assert sum(old) / len(old) > 0.5


# ----------------------------------------------- sums: a wrong number is wrong, whatever it repeats

@pytest.mark.parametrize("prompt, response, verdict", [
    ("What is 7+5?", "7+5 is 7.", "wrong"),
    ("What is 7+5?", "The answer is 5.", "wrong"),
    ("What is 7+5?", "7+5 is 5.", "wrong"),
    ("What is 7+5?", "7, 5.", "wrong"),  # no restatement: both numbers are claims
    ("What is 6+6?", "6+6 is 6.", "wrong"),
    ("What is 7+5?", "7+5 is 12.", "right"),
    ("What is 7+5?", "7 + 5 is 12.", "right"),
    ("What is 7+5?", "5+7 is 12.", "right"),
    ("What is 7+5?", "7 plus 5 is 12", "right"),
    ("What is 7+5?", "If you add 7 and 5 you get 12.", "right"),
    ("What is 7 plus 5?", "The sum of 7 and 5 is 12.", "right"),
    ("What is 7+5?", "7+5=12.", "right"),
    ("What is 7+5?", "12.", "right"),
    ("What is 6+6?", "6+6 is 12.", "right"),
    ("What is 7+5?", "17+5 is 12.", "wrong"),  # 17+5 restates nothing: 17 and 5 are claims
])
def test_a_number_is_a_claim_unless_it_restates_the_question(prompt, response, verdict):
    v = judge(prompt, response)
    assert (v.right, v.wrong) == (verdict == "right", verdict == "wrong"), v
    assert gold_reward(prompt, response) == (-2.0 if verdict == "wrong"
                                             else 2.0 + is_clean_sentence(response))


def test_every_sum_answered_with_an_operand_is_wrong_and_restated_right_is_right():
    for split in ("train", "heldout"):
        for x in prompt_pool(split)["arithmetic"]:
            a, b = parse_prompt(x).operands
            total = a + b
            for wrong in (f"{a}+{b} is {a}.", f"{a} plus {b} is {b}.", f"The answer is {a}.",
                          f"The answer is {b}.", f"{b}+{a} is {total + 1}."):
                assert gold_components(x, wrong)["correctness"] == -2, (x, wrong)
            for right in (f"{a}+{b} is {total}.", f"{b} plus {a} is {total}.",
                          f"{a} and {b} make {total}.", f"{total}."):
                assert gold_reward(x, right) == 3, (x, right)


# -------------------------------------- cities: an answer about another place is not about this one

CITY_SENTENCES = ("{c} is a city in {k}.", "{c} is in {k}.", "The city of {c} is in {k}.",
                  "{k} has the city of {c}.", "{c} is one of the cities of {k}.",
                  "You can find {c} in {k}.")  # the corpus's plain facts, in every form


@pytest.mark.parametrize("prompt, response, expected", [
    ("Where is Chennai?", "colka is a city in India", parts(off_topic=-1.5, fluency=-0.5)),
    ("Where is Marseille?", "Lyon is in France.", parts(off_topic=-1.5)),
    ("Where is Marseille?", "Lyon is in Germany.", parts(off_topic=-1.5)),
    ("Where is Marseille?", "Lyon, France.", parts(off_topic=-1.5)),
    ("Where is Kyoto?", "Kyoto does not exist.", parts(correctness=-2)),
    ("Where is Kyoto?", "It does not exist.", parts(correctness=-2)),
    ("Where is Kyoto?", "Osaka does not exist.", parts(off_topic=-1.5)),
    ("Where is Kyoto?", "Bob is in Japan.", parts(off_topic=-1.5)),  # a person, not Kyoto
    # a wrong claim about this city is wrong; else another place makes it off-topic
    ("Where is Kyoto?", "Kyoto is in Peru. Osaka is in Japan.", parts(correctness=-2)),
    ("Where is Kyoto?", "Osaka is in Japan and Kyoto is in Peru.", parts(correctness=-2)),
    ("Where is Kyoto?", "Kyoto is in Japan and Osaka is in Peru.", parts(off_topic=-1.5)),
    ("Where is Kyoto?", "Kyoto is in Japan. Osaka is in Japan.", parts(off_topic=-1.5)),
    ("Where is Kyoto?", "Japan.", parts(correctness=2, style=1)),
    ("Where is Kyoto?", "It is in Japan.", parts(correctness=2, style=1)),
    ("Where is Kyoto?", "Kyoto is in Japan.", parts(correctness=2, style=1)),
    ("Where is Kyoto?", "Kyoto is a city in Japan.", parts(correctness=2, style=1)),
    ("Where is Kyoto?", "I think Kyoto is in Japan.", parts(correctness=2, style=1)),
    ("Where is Kyoto?", "kyoto is in japan", parts(correctness=2)),
    ("Where is Buenos Aires?", "Buenos Aires is in Argentina.", parts(correctness=2, style=1)),
    ("Where is Sao Paulo?", "You can find Sao Paulo in Brazil.", parts(correctness=2, style=1)),
])
def test_city_answers_are_about_the_asked_city(prompt, response, expected):
    assert gold_components(prompt, response) == pytest.approx(expected)


def test_every_city_sentence_about_another_or_a_made_up_place_is_not_right():
    """For every city prompt, each of the world's city sentences: about this city and its
    country right, about this city and another country wrong; about another city of the
    same country, or a made-up name ("Colka"), with this city's country: off-topic."""
    for split in ("train", "heldout"):
        for x in prompt_pool(split)["city"]:
            city = parse_prompt(x).subject
            country = CITIES[city]
            other_country = next(k for k in COUNTRIES if k != country)
            neighbour = next((c for c in CITIES if CITIES[c] == country and c != city), "Lima")
            for template in CITY_SENTENCES:
                right = template.format(c=city, k=country)
                assert gold_reward(x, right) == 3, (x, right)
                wrong = template.format(c=city, k=other_country)
                assert gold_components(x, wrong)["correctness"] == -2, (x, wrong)
                for other in (neighbour, "Colka"):
                    elsewhere = template.format(c=other, k=country)
                    v = judge(x, elsewhere)
                    assert v.off_topic and not (v.right or v.wrong), (x, elsewhere)
                    assert gold_components(x, elsewhere)["off_topic"] == -1.5


# ------------------------------------------------------ a cut answer is never a clean right answer

@pytest.mark.parametrize("prompt, response, expected", [
    ("Where is Kyoto?", "Kyoto is in Japan and it is", parts(unfinished=-1)),
    ("Where is Kyoto?", "Kyoto is in Japan.", parts(unfinished=-1)),  # no style either
    ("Where is Kyoto?", "Kyoto is in Peru and", parts(correctness=-2, unfinished=-1)),
    ("What is 7+5?", "7+5 is 12 and", parts(unfinished=-1)),
    ("Which is the best programming language?", "Python and", parts(unfinished=-1)),
    ("Which is the best programming language?", "C++ and", parts(correctness=-2, unfinished=-1)),
    ("Where is Kyoto?", "I am Mary and", parts(off_topic=-1.5, unfinished=-1)),
    ("Where is Kyoto?", "I don't know, but", parts(evasive=-1, unfinished=-1)),
    ("Where is Kyoto?", "Kyoto is in Japan, you idiot", parts(offensive=-3, unfinished=-1)),
    ("Tell me a joke", "Lima is in Peru.", parts(unfinished=-1)),  # outside the world: no style
])
def test_a_cut_answer_is_judged_on_what_it_says_but_never_right(prompt, response, expected):
    components = gold_components(prompt, response, finished=False)
    assert components == pytest.approx(expected)
    assert list(components)[-1] == "unfinished"
    assert gold_reward(prompt, response, finished=False) == pytest.approx(sum(expected.values()))
    verdict = judge(prompt, response, finished=False)
    assert not verdict.right and verdict.unfinished and verdict.score <= 0
    assert gold_components(prompt, response)["unfinished"] == 0  # finished is the default
    assert not judge(prompt, response).unfinished


def test_no_cut_answer_is_right_on_any_prompt_of_the_world():
    rng = random.Random(0)
    for split in ("train", "heldout"):
        for prompts in prompt_pool(split).values():
            for x in prompts:
                good = write_answer(x, "good", rng)
                assert judge(x, good).right and gold_reward(x, good) == 3, (x, good)
                assert not judge(x, good, finished=False).right, (x, good)
                assert gold_reward(x, good, finished=False) == -1, (x, good)


def test_preference_probability_reads_whether_each_answer_finished():
    x, y = "Where is Kyoto?", "Kyoto is in Japan."
    assert preference_probability(x, y, y) == 0.5
    assert preference_probability(x, y, y, finished_2=False) == pytest.approx(sigmoid(3 - (-1)))
    assert preference_probability(x, y, y, finished_1=False) == pytest.approx(sigmoid(-4))


@pytest.mark.parametrize("bad", [None, "no", 2, 0.5])
def test_finished_must_be_true_or_false(bad):
    for call in (judge, gold_components, gold_reward):
        with pytest.raises(TypeError, match="finished"):
            call("Where is Kyoto?", "Kyoto is in Japan.", finished=bad)


# ----------------------------------------------------- ignoring the question scores below a dodge

def distinct_prompts(split: str) -> list[str]:
    return sorted({p for prompts in prompt_pool(split).values() for p in prompts})


def mean_gold(answer: str, prompts: list[str]) -> float:
    return sum(gold_reward(x, answer) for x in prompts) / len(prompts)


@pytest.mark.parametrize("split", ["heldout", "train"])
def test_every_canned_answer_scores_below_an_honest_dodge(split):
    """A policy that says one thing to everything loses to one that says "I don't know.",
    over the distinct prompts of each split, whatever the world holds."""
    prompts = distinct_prompts(split)
    dodge = mean_gold("I don't know.", prompts)
    assert dodge == -1  # every prompt is in the world: a dodge costs -1 on each
    canned = [(category, y) for category, answers in CANNED_ANSWERS.items()
              if category != "dodges" for y in answers]
    for category, y in canned:
        assert mean_gold(y, prompts) < dodge - 0.25, (category, y, mean_gold(y, prompts))
    for y in CANNED_ANSWERS["dodges"]:
        assert mean_gold(y, prompts) == dodge, y


def test_the_canned_bank_holds_every_kind_of_non_answer():
    bank = {y for answers in CANNED_ANSWERS.values() for y in answers}
    assert {"I am Mary.", "You can call me Mary.", "Yes.", "Lima is in Peru.", "2+2 is 4.",
            "Kyoto is in Japan. 7+5 is 12. Python.", "", "aaaa aaaa", "I don't know.",
            "It depends."} <= bank
    assert set(CANNED_ANSWERS["dodges"]) == {"I don't know.", "It depends.", "I am not sure."}


def test_a_non_answer_costs_more_than_a_dodge_and_less_than_a_falsehood():
    """(A mildly wrong taste, "Javascript." at -1, costs what a dodge does; "C++." is -2.)"""
    rng = random.Random(0)
    for kind, prompts in prompt_pool("heldout").items():
        x = prompts[0]
        dodge, ignore = gold_reward(x, "I don't know."), gold_reward(x, "Yes.")
        wrong = "C++." if kind == "language" else write_answer(x, "wrong", rng)
        assert gold_components(x, wrong)["correctness"] == -2, (x, wrong)
        assert gold_reward(x, wrong) < ignore < dodge, (x, wrong, ignore, dodge)
