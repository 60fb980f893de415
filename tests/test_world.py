"""The toy world: the lecture's examples, the generators, and the held-out split."""

import ast
import os
import random
import re
import time

import pytest

from align.gold import gold_components, is_clean_sentence
from toyworld.template import format_dialogue
from toyworld.world import (CITIES, HELDOUT_CITIES, HELDOUT_TOPICS, KINDS, LECTURE_DPO_DATASET,
                         LECTURE_PREFERENCE_TABLE, LECTURE_PROMPTS, SFT_MIX, SLOPPY_RATE,
                         TOPICS, Question, canonical_question, heldout_prompts, is_heldout_sum, parse_prompt,
                         pretraining_corpus, prompt_pool, sft_demonstrations, train_prompts,
                         write_answer)


@pytest.fixture(scope="module")
def corpus_and_seconds():
    start = time.perf_counter()
    corpus = pretraining_corpus()
    return corpus, time.perf_counter() - start


def corpus_prompts(corpus: str) -> list[str]:
    return re.findall(r"^User: (.*)$", corpus, flags=re.M)


def quality_from_gold(prompt: str, response: str) -> str:
    """What the gold reward's parts say an answer is (independent of the generator)."""
    parts = gold_components(prompt, response)
    if parts["offensive"] < 0:
        return "rude"
    if parts["evasive"] < 0:
        return "unhelpful"
    if parts["correctness"] < 0:
        return "wrong"
    return "good" if parts["correctness"] > 0 else "unclear"


def all_training_prompts() -> set[str]:
    return {p for prompts in prompt_pool("train").values() for p in prompts}


def all_heldout_prompts() -> set[str]:
    return {p for prompts in prompt_pool("heldout").values() for p in prompts}


# ------------------------------------------------------------------ the lecture's examples

def test_lecture_dpo_dataset_is_the_lectures_dict(shared_dir):
    with open(os.path.join(shared_dir, "lecture10.md"), encoding="utf-8") as f:
        lecture = f.read()
    source = re.search(r"dpo_dataset_dict = (\{.*?\n\})", lecture, flags=re.S).group(1)
    assert LECTURE_DPO_DATASET == ast.literal_eval(source)


def test_lecture_preference_table_is_the_lectures_table(shared_dir):
    with open(os.path.join(shared_dir, "lecture10.md"), encoding="utf-8") as f:
        lecture = f.read()
    section = lecture.split("# Modelo Bradley-Terry")[1].split("\n# ")[0]
    rows = [tuple(line.split("\t")) for line in section.splitlines() if line.count("\t") == 2]
    rows = [row for row in rows if "$" not in "".join(row)]  # drop the two header rows
    assert LECTURE_PREFERENCE_TABLE == rows


def test_lecture_prompts_live_in_the_world(corpus_and_seconds):
    corpus, _ = corpus_and_seconds
    lecture_rows = set(LECTURE_DPO_DATASET["prompt"]) | {x for x, _, _ in LECTURE_PREFERENCE_TABLE}
    assert lecture_rows <= set(LECTURE_PROMPTS)
    seen_in_corpus = set(corpus_prompts(corpus))
    for prompt in LECTURE_PROMPTS:
        assert parse_prompt(prompt) is not None, prompt
        assert prompt in all_training_prompts(), prompt
        assert prompt in seen_in_corpus, prompt


# ------------------------------------------------------------------ questions and answers

def test_parse_prompt_knows_the_right_answers():
    assert parse_prompt("Where is Shanghai?") == Question("city", "Shanghai", "China")
    assert parse_prompt("in which country is lima?") == Question("city", "Lima", "Peru")
    assert parse_prompt("What is 2+2?") == Question("arithmetic", "2+2", "4", (2, 2))
    assert parse_prompt("What is 7 plus 5?").answer == "12"
    assert parse_prompt("Explain gravity like I'm 5").subject == "gravity"
    assert parse_prompt("Explain the moon to a child").answer.startswith("The moon is a big rock")
    assert parse_prompt("What is your name?").answer == "Mary"
    assert parse_prompt("Which is the best programming language?").answer == "Python"
    assert parse_prompt("hello").kind == "greeting"
    assert parse_prompt("How are you?").kind == "wellbeing"


@pytest.mark.parametrize("prompt", ["Tell me a joke", "Where is Atlantis?", "", "   ",
                                    "What is 1234567+1?", "Explain love like I'm 5",
                                    "\x00\udcff??", "User: hello\nAssistant: "])
def test_parse_prompt_outside_the_world_is_none(prompt):
    assert parse_prompt(prompt) is None


def test_write_answer_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError, match="outside the toy world"):
        write_answer("Tell me a joke", "good", random.Random(0))
    with pytest.raises(ValueError, match="quality"):
        write_answer("hello", "excellent", random.Random(0))


def test_a_sloppy_answer_has_no_capital_and_no_final_punctuation():
    answer = write_answer("What is your name?", "good", random.Random(0), sloppy=True)
    assert answer[0].islower() and answer[-1] not in ".!?" and "Mary" in answer


# ------------------------------------------------------------------ the pre-training corpus

def test_corpus_is_long_fast_and_ascii(corpus_and_seconds):
    corpus, seconds = corpus_and_seconds
    assert len(corpus) >= 1_000_000
    assert seconds < 2.0
    assert corpus.isascii()  # one byte per character for the byte-level tokenizer


def test_corpus_is_deterministic_and_depends_on_the_seed():
    assert pretraining_corpus(30_000, seed=1) == pretraining_corpus(30_000, seed=1)
    assert pretraining_corpus(30_000, seed=1) != pretraining_corpus(30_000, seed=2)
    assert len(pretraining_corpus(500, seed=3)) >= 500


def test_corpus_paragraphs_are_facts_or_dialogues_in_the_template(corpus_and_seconds):
    corpus, _ = corpus_and_seconds
    paragraphs = corpus.split("\n\n")
    assert paragraphs[-1] == ""  # every paragraph ends with a blank line
    for paragraph in paragraphs[:-1]:
        if paragraph.startswith("User: "):
            prompt, response = paragraph[len("User: "):].split("\nAssistant: ")
            assert paragraph == format_dialogue(prompt, response)
        else:
            assert "\n" not in paragraph and paragraph.endswith(".")


def test_corpus_dialogues_mix_good_and_bad_answers(corpus_and_seconds):
    corpus, _ = corpus_and_seconds
    dialogues = re.findall(r"^User: (.*)\nAssistant: (.*)$", corpus, flags=re.M)
    assert len(dialogues) > 1000
    qualities = [quality_from_gold(x, y) for x, y in dialogues]
    shares = {q: qualities.count(q) / len(qualities) for q in ("good", "wrong", "rude",
                                                               "unhelpful")}
    assert 0.3 < shares["good"] < 0.5
    assert all(0.1 < shares[q] < 0.3 for q in ("wrong", "rude", "unhelpful")), shares


def test_corpus_states_heldout_facts_as_plain_sentences(corpus_and_seconds):
    corpus, _ = corpus_and_seconds
    for city in HELDOUT_CITIES:
        assert f"{city} is a city in {CITIES[city]}." in corpus, city
    for topic in HELDOUT_TOPICS:
        assert TOPICS[topic][0] in corpus, topic
    for a in range(1, 13):
        for b in range(1, 13):
            if is_heldout_sum(a, b):
                assert f"{a}+{b}={a + b}." in corpus or f"{a} plus {b} is {a + b}." in corpus


# ------------------------------------------------------------------ SFT demonstrations

def test_sft_rows_are_short_prompt_completion_pairs():
    rows = sft_demonstrations(500, seed=0)
    for row in rows:
        assert set(row) == {"prompt", "completion"}
        assert isinstance(row["prompt"], str) and isinstance(row["completion"], str)
        assert row["prompt"].strip() and row["completion"].strip()
        assert (row["prompt"] + row["completion"]).isascii()
        assert len(row["prompt"]) <= 60 and len(row["completion"]) <= 140
    completions = sorted(len(row["completion"]) for row in rows)
    assert completions[len(completions) * 9 // 10] <= 60  # most answers are one short line


def test_sft_demonstrations_are_deterministic():
    assert sft_demonstrations(200, seed=5) == sft_demonstrations(200, seed=5)
    assert sft_demonstrations(200, seed=5) != sft_demonstrations(200, seed=6)


def test_sft_mix_is_the_stated_one_and_each_row_is_what_it_says():
    n = 2000
    rows = sft_demonstrations(n, seed=0, with_quality=True)
    for quality, share in SFT_MIX.items():
        assert abs(sum(r["quality"] == quality for r in rows) / n - share) <= 0.01, quality
    # the gold reward's parts, not the generator, say which quality each row has
    mismatches = [r for r in rows
                  if quality_from_gold(r["prompt"], r["completion"]) != r["quality"]]
    assert mismatches == []
    sloppy = sum(not is_clean_sentence(r["completion"]) for r in rows) / n
    assert abs(sloppy - SLOPPY_RATE) < 0.035


def test_no_wording_of_a_right_answer_is_only_ever_right():
    """Where a right answer states a value (a country, a sum, a name, a language), each of
    its wordings, the value taken out, is also a wording of a wrong answer: else a reward
    model learns the wording ("4 plus 5 is") as the mark of a right answer, and pays any
    value said in it. Read off answers the world writes, not off its template table."""
    import toyworld.world as world
    values = {"city": world.COUNTRIES, "name": (world.ASSISTANT_NAME, *world.OTHER_NAMES),
              "language": tuple(world.LANGUAGE_SCORES)}
    rng = random.Random(0)

    def wording(kind, answer):
        if kind == "arithmetic":
            return re.sub(r"\d+(?=\.$)", "<value>", answer)
        for value in sorted(values[kind], key=len, reverse=True):
            answer = answer.replace(value, "<value>")
        return answer

    for kind, prompt in (("city", "Where is Lima?"), ("arithmetic", "What is 3+4?"),
                         ("name", "What is your name?"),
                         ("language", "What is the best programming language?")):
        assert parse_prompt(prompt).kind == kind
        right = {wording(kind, write_answer(prompt, "good", rng)) for _ in range(200)}
        wrong = {wording(kind, write_answer(prompt, "wrong", rng)) for _ in range(400)}
        right = {w for w in right if "<value>" in w}
        assert right and right <= wrong, (kind, right - wrong)


def test_the_world_fingerprint_changes_with_a_template_a_fact_or_a_mix(monkeypatch):
    import toyworld.world as world
    before = world.world_fingerprint()
    assert world.world_fingerprint() == before and re.fullmatch(r"[0-9a-f]{12}", before)
    templates = {**world.ANSWER_TEMPLATES, "name": {**world.ANSWER_TEMPLATES["name"],
                                                   "wrong": ["I am {other_name}."]}}
    for name, value in (("ANSWER_TEMPLATES", templates),
                        ("CITIES", {**world.CITIES, "Lima": "Chile"}),
                        ("SFT_MIX", {"good": 0.5, "wrong": 0.1, "rude": 0.2, "unhelpful": 0.2}),
                        ("misread_answer", lambda prompt, rng: "The answer is 0.")):
        with monkeypatch.context() as patch:
            patch.setattr(world, name, value)
            assert world.world_fingerprint() != before, name
    assert world.world_fingerprint() == before


# ------------------------------------------------------------------ prompts and the held-out split

def test_heldout_prompts_never_appear_as_a_training_prompt(corpus_and_seconds):
    corpus, _ = corpus_and_seconds
    heldout = all_heldout_prompts()
    assert set(heldout_prompts(1000, seed=0)) <= heldout
    assert not heldout & all_training_prompts()
    assert not heldout & set(corpus_prompts(corpus))
    assert not heldout & {row["prompt"] for row in sft_demonstrations(3000, seed=0)}
    assert not heldout & set(train_prompts(3000, seed=0))


def test_no_training_prompt_asks_a_heldout_question():
    for prompt in all_training_prompts():
        q = parse_prompt(prompt)
        assert q.subject not in HELDOUT_CITIES and q.subject not in HELDOUT_TOPICS, prompt
        assert not (q.kind == "arithmetic" and is_heldout_sum(*q.operands)), prompt
    heldout_questions = {(q.kind, q.subject) for q in map(parse_prompt, all_heldout_prompts())
                         if q.kind in ("city", "arithmetic", "explain")}
    assert ("city", "Kyoto") in heldout_questions and ("explain", "thunder") in heldout_questions


def test_canonical_question_takes_the_wording_and_the_order_away():
    assert canonical_question("What is 5+7?") == canonical_question("What is 7 plus 5?") \
        == ("arithmetic", (5, 7))
    assert canonical_question("Where is Kyoto?") == canonical_question("In which country is kyoto?")
    assert canonical_question("Explain thunder to a child") == ("explain", "thunder")
    assert canonical_question("How are you?") == canonical_question("how are you")
    assert canonical_question("Tell me a joke") is None


def test_the_split_holds_out_content_not_strings(corpus_and_seconds):
    """No held-out question, in any wording or order, is asked in the corpus's dialogues,
    the SFT rows or the training prompts; each kind of question is checked."""
    corpus, _ = corpus_and_seconds
    heldout = {canonical_question(p) for p in all_heldout_prompts()}
    assert {kind for kind, _ in heldout} == set(KINDS)
    sources = {"corpus dialogues": corpus_prompts(corpus),
               "SFT rows": [r["prompt"] for r in sft_demonstrations(4000, seed=0)],
               "training prompts": sorted(all_training_prompts()) + train_prompts(3000, seed=0)}
    for source, prompts in sources.items():
        seen = {canonical_question(p) for p in prompts}
        assert None not in seen, source
        assert not heldout & seen, (source, sorted(heldout & seen)[:5])
        for kind in KINDS:  # every kind is trained on too, so the held-out ones are a test
            assert any(k == kind for k, _ in seen), (source, kind)
    # both orders of every held-out sum are held out
    for a in range(1, 13):
        for b in range(1, 13):
            assert is_heldout_sum(a, b) == is_heldout_sum(b, a)


def test_prompt_lists_cover_every_kind_and_are_deterministic():
    for draw in (train_prompts, heldout_prompts):
        prompts = draw(500, seed=0)
        assert len(prompts) == 500
        assert {parse_prompt(p).kind for p in prompts} == set(KINDS)
        assert draw(50, seed=1) == draw(50, seed=1) and draw(50, seed=1) != draw(50, seed=2)


def test_generators_leave_the_global_random_alone():
    random.seed(123)
    expected = random.random()
    random.seed(123)
    pretraining_corpus(2_000)
    sft_demonstrations(20)
    train_prompts(20)
    heldout_prompts(20)
    assert random.random() == expected


def test_evaluation_prompts_are_every_distinct_heldout_prompt_once():
    from toyworld.world import evaluation_prompts, prompt_pool
    everything = evaluation_prompts()
    pool = {p for prompts in prompt_pool("heldout").values() for p in prompts}
    assert len(everything) == len(set(everything)) == len(pool) >= 200
    assert set(everything) == pool
    assert evaluation_prompts(50, seed=3) == evaluation_prompts(seed=3)[:50]  # a prefix
    assert evaluation_prompts(seed=3) != evaluation_prompts(seed=4)  # a seeded order
    train = evaluation_prompts(100, seed=0, split="train")
    assert len(set(train)) == 100 and set(train) <= {p for ps in prompt_pool("train").values()
                                                       for p in ps}


def test_every_template_is_read_back_as_its_question():
    from toyworld.world import CITY_TEMPLATES, EXPLAIN_TEMPLATES, SUM_TEMPLATES
    for template in CITY_TEMPLATES:
        assert parse_prompt(template.format(city="Kyoto")).answer == "Japan"
    for template in SUM_TEMPLATES:
        assert parse_prompt(template.format(a=7, b=5)).answer == "12"
    for template in EXPLAIN_TEMPLATES:
        assert parse_prompt(template.format(topic="an echo")).subject == "an echo"


def test_a_misread_answer_is_wrong_and_never_states_a_sum_of_the_other_split():
    """Every sum question, both splits: the misreading is judged wrong (align.gold), restates
    other operands than the question's, and a training question's misreading states no
    held-out sum (nor a held-out question's a training one)."""
    import re
    from align.gold import judge
    from toyworld.world import is_heldout_sum, misread_answer, parse_prompt, prompt_pool
    rng, answers, misread = random.Random(0), 0, 0
    for split in ("train", "heldout"):
        for prompt in prompt_pool(split)["arithmetic"]:
            operands = set(parse_prompt(prompt).operands)
            for _ in range(10):
                answer = misread_answer(prompt, rng)
                assert judge(prompt, answer).wrong, (prompt, answer)
                stated = re.match(r"(\d+) ?(?:\+|plus) ?(\d+) is (\d+)\.$", answer)
                answers += 1
                if stated is None or {int(stated[1]), int(stated[2])} == operands:
                    continue  # no misreading stays in the split: the world's wrong answer
                misread += 1
                a, b = int(stated[1]), int(stated[2])
                assert is_heldout_sum(a, b) == (split == "heldout"), answer
    assert misread > 0.8 * answers  # held-out sums have fewer held-out neighbours
    with pytest.raises(ValueError, match="takes a sum question"):
        misread_answer("Where is Lima?", rng)
