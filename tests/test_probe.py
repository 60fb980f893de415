"""The knowledge probe: which facts a model has stored, against which it answers right."""

import math

import pytest
import torch

from align import probe
from align.probe import (fact_statements, knowledge_table, probe_facts, probe_prompts,
                         sentence_logps)
from minigpt import GPT, ByteTokenizer
from tests.conftest import tiny_config
from toyworld.world import (COUNTRIES, TOPICS, canonical_question, parse_prompt, prompt_pool)


def test_each_fact_has_one_true_sentence_and_every_false_value_beside_it():
    true, false = fact_statements(parse_prompt("Where is Kyoto?"))
    assert true == "Kyoto is in Japan."
    assert sorted(false) == sorted(f"Kyoto is in {k}." for k in COUNTRIES if k != "Japan")
    true, false = fact_statements(parse_prompt("What is 7 plus 5?"))
    assert true == "7 plus 5 is 12." and "7 plus 5 is 12." not in false
    assert "7 plus 5 is 13." in false and "7 plus 5 is 7." in false
    true, false = fact_statements(parse_prompt("Explain an echo to a child"))
    assert true == TOPICS["an echo"][0]
    assert len(false) == len(TOPICS) - 1 and all(f.startswith("An echo ") for f in false)
    assert "An echo is a muscle that pumps blood." in false  # the heart's, said of an echo
    assert fact_statements(parse_prompt("What is your name?")) is None


def brute_force_logp(model, tokenizer, sentence):
    """log π(sentence | "\\n\\n"), one token at a time, each from its own forward pass."""
    ids = tokenizer.encode(probe.CONTEXT + sentence)
    start = len(tokenizer.encode(probe.CONTEXT))
    total = 0.0
    for t in range(start, len(ids)):
        logits, _ = model(torch.tensor([ids[:t]]))
        total += torch.log_softmax(logits[0, -1].double(), -1)[ids[t]].item()
    return total


def test_sentence_logps_are_each_sentences_own_log_probability():
    """Batched and right-padded, each sentence scores as it does alone, token by token."""
    torch.manual_seed(0)
    tokenizer = ByteTokenizer()
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=64)).eval()
    sentences = ["Kyoto is in Japan.", "7 plus 5 is 12.", "Rain is drops of water."]
    batched = sentence_logps(model, tokenizer, sentences, batch_size=2)
    for value, sentence in zip(batched.tolist(), sentences):
        assert value == pytest.approx(brute_force_logp(model, tokenizer, sentence), abs=1e-4)


def test_a_fact_is_stored_when_its_true_sentence_beats_every_false_one(monkeypatch):
    """With sentence scores set by hand: stored iff the true one is above all others, the
    margin is true − best false, and a+b and b+a are one fact, probed once."""
    scores = {"Kyoto is in Japan.": -3.0, "Kyoto is in Peru.": -2.5,  # a false one wins
              "7 plus 5 is 12.": -1.0, "5 plus 7 is 12.": -1.0}
    calls = []

    def fake_logps(model, tokenizer, sentences, device="cpu"):
        calls.append(len(sentences))
        return torch.tensor([scores.get(s, -10.0) for s in sentences])
    monkeypatch.setattr(probe, "sentence_logps", fake_logps)
    facts = probe_facts(None, None, ["Where is Kyoto?", "In which country is Kyoto?",
                                     "What is 7+5?", "What is 5 plus 7?", "hello"])
    assert set(facts) == {("city", "Kyoto"), ("arithmetic", (5, 7))}
    assert facts[("city", "Kyoto")]["stored"] is False
    assert facts[("city", "Kyoto")]["margin"] == pytest.approx(-0.5)
    assert facts[("arithmetic", (5, 7))]["stored"] is True
    assert facts[("arithmetic", (5, 7))]["margin"] == pytest.approx(9.0)
    assert calls == [len(COUNTRIES) + len(probe.SUMS)]  # each fact's sentences, once


def test_the_table_counts_right_answers_among_stored_and_not_stored_facts():
    facts = {("city", "Kyoto"): {"kind": "city", "stored": True, "margin": 1.0},
             ("city", "Lima"): {"kind": "city", "stored": False, "margin": -1.0},
             ("explain", "rain"): {"kind": "explain", "stored": True, "margin": 2.0}}
    prompts = ["Where is Kyoto?", "In which country is Kyoto?", "Where is Lima?",
               "Explain rain to a child", "hello"]
    answers = ["Kyoto is in Japan.", "I don't know.", "Lima is in Peru.",
               "Rain is drops of water that fall from clouds.", "hi"]
    table = knowledge_table(facts, prompts, answers)
    assert table["city"] == {"facts": 2, "stored": 0.5, "prompts": 3, "right": 2 / 3,
                             "right_given_stored": 0.5, "right_given_not_stored": 1.0}
    assert table["explain"]["right_given_stored"] == 1.0
    assert table["explain"]["right_given_not_stored"] is None
    assert "arithmetic" not in table
    assert knowledge_table(facts)["city"] == {"facts": 2, "stored": 0.5}  # no answers: stored only


def test_probe_prompts_cover_every_fact_of_a_split_and_nothing_else():
    for split in ("heldout", "train"):
        prompts = probe_prompts(split)
        wanted = {canonical_question(p) for kind in probe.PROBED_KINDS
                  for p in prompt_pool(split)[kind]}
        assert {canonical_question(p) for p in prompts} == wanted
        assert len(set(prompts)) == len(prompts)


def test_a_model_that_learned_one_fact_has_it_stored_and_not_the_others():
    """An honest end to end check: a tiny byte model trained only on "Kyoto is in Japan."
    has Kyoto stored; Lima (never seen with its country) is not."""
    torch.manual_seed(0)
    tokenizer = ByteTokenizer()
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=64))
    ids = torch.tensor([tokenizer.encode(probe.CONTEXT + "Kyoto is in Japan.")])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    facts = probe_facts(model, tokenizer, ["Where is Kyoto?", "Where is Lima?"])
    assert facts[("city", "Kyoto")]["stored"]
    assert facts[("city", "Kyoto")]["margin"] > math.log(2)
    assert not facts[("city", "Lima")]["stored"]  # it says "Japan" of every city


class RuleReward(torch.nn.Module):
    """A stand-in r_φ that scores each sequence by rule(prompt, answer), both read back from
    its token ids (the template's parts, EOS cut off): no GPTConfig, so it is given
    right-padded rows and lengths."""

    def __init__(self, tokenizer, rule):
        super().__init__()
        self.tokenizer, self.rule = tokenizer, rule

    def forward(self, input_ids, lengths, labels=None):  # (B, T), (B,) -> (B,); labels unread
        from toyworld.template import SEPARATOR, USER_PREFIX
        scores = []
        for ids, n in zip(input_ids, lengths):
            text = self.tokenizer.decode(ids[:n - 1].tolist())
            prompt, answer = text.removeprefix(USER_PREFIX).split(SEPARATOR.strip(), 1)
            scores.append(float(self.rule(prompt.strip(), answer.strip())))
        return torch.tensor(scores)


def test_reward_facts_count_where_r_phi_puts_the_right_answer_first():
    """Against rules whose ranking is known: the judge's verdict for the prompt scored
    (right first everywhere), scorers that prefer a sum one off or two off, and a
    constant (a tie is no win)."""
    import re
    from align.gold import judge
    tokenizer = ByteTokenizer()
    prompts = ["Where is Lima?", "Where is Paris?", "What is 3+4?", "What is 4 plus 3?",
               "What is 5+6?", "Explain gravity like I'm 5", "What is your name?"]

    def judged(prompt, answer):  # 1 when right for the prompt it is scored against
        return float(judge(prompt, answer).right)

    def sum_rule(preferred):  # "a plus b is s." by the table preferred(a + b) -> score
        def rule(prompt, answer):
            found = re.fullmatch(r"(\d+) plus (\d+) is (\d+)\.", answer)
            if not found:
                return judged(prompt, answer)
            a, b, s = map(int, found.groups())
            return preferred(a + b).get(s, 0.0)
        return rule

    def shares(rule):
        return probe.reward_facts(RuleReward(tokenizer, rule), tokenizer, prompts)
    assert shares(judged) == {
        "city": {"facts": 2, "right_first": 1.0, "above_near_miss": None},
        "arithmetic": {"facts": 2, "right_first": 1.0, "above_near_miss": 1.0},
        "explain": {"facts": 1, "right_first": 1.0, "above_near_miss": None}}
    for off in (-1, 1):  # a near miss first: neither first nor above both near misses
        result = shares(sum_rule(lambda right: {right + off: 1.0, right: 0.5}))
        assert result["arithmetic"] == {"facts": 2, "right_first": 0.0, "above_near_miss": 0.0}
        assert result["city"]["right_first"] == 1.0
    result = shares(sum_rule(lambda right: {right + 2: 1.0, right: 0.5}))  # two off: no near miss
    assert result["arithmetic"] == {"facts": 2, "right_first": 0.0, "above_near_miss": 1.0}
    assert all(row["right_first"] == 0.0 for row in shares(lambda p, a: 0.0).values())
