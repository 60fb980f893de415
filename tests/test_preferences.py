"""Preference pairs labelled by the gold reward through Bradley-Terry: noisy as people's are."""

import json
import random

import pytest
import torch

from align.data import (TruncationStats, read_jsonl, tokenize_pair, tokenizer_fingerprint,
                        write_jsonl)
from align.gold import gold_reward, sigmoid
from align.preferences import label_pairs, main as preferences_main, make_preference_pairs, pair_indices
from minigpt import GPT, ByteTokenizer, InputError, save_checkpoint
from toyworld.template import format_prompt
from tests.conftest import tiny_config


def fresh_counts():
    return {"pairs": 0, "identical_skipped": 0, "empty_skipped": 0}


def test_labels_follow_the_bradley_terry_probability_of_the_gold_reward():
    prompt, good, bad = "What is 2+2?", "2+2 is 4.", "2+2 is 5."
    p_good = sigmoid(gold_reward(prompt, good) - gold_reward(prompt, bad))
    assert 0.9 < p_good < 1.0  # mostly right, not always
    rng, counts = random.Random(0), fresh_counts()
    rows = [row for _ in range(4000) for row in label_pairs(prompt, [good, bad], rng, counts)]
    share = sum(row["chosen"] == good for row in rows) / len(rows)
    assert abs(share - p_good) < 4 * (p_good * (1 - p_good) / len(rows)) ** 0.5
    assert rows[0]["chosen_gold"] == gold_reward(prompt, rows[0]["chosen"])
    first, second = "Lima is a city in Peru.", "Lima is in Peru."
    assert gold_reward("Where is Lima?", first) == gold_reward("Where is Lima?", second)
    tied = [row for _ in range(2000)
            for row in label_pairs("Where is Lima?", [first, second], rng, fresh_counts())]
    assert abs(sum(row["chosen"] == first for row in tied) / len(tied) - 0.5) < 0.05  # a coin flip


def test_identical_and_empty_answers_are_skipped_and_counted():
    counts = fresh_counts()
    rows = label_pairs("hello", ["hi", "hi", "", "Hello.", "Hi there.", "Leave me alone."],
                       random.Random(0), counts)
    assert len(rows) == 1 and counts == {"pairs": 1, "identical_skipped": 1, "empty_skipped": 1}


def test_pairing_all_compares_every_two_answers_once_and_adjacent_shares_none():
    for n in range(2, 7):
        every = pair_indices(n, "all")
        assert sorted(every) == [(i, j) for i in range(n) for j in range(n) if i < j]  # each once
        adjacent = pair_indices(n, "adjacent")
        used = [i for pair in adjacent for i in pair]
        assert len(adjacent) == n // 2 and len(used) == len(set(used))  # independent pairs
    answers = ["Lima is in Peru.", "Lima is in Chile.", "I am not sure.", "Go away, idiot."]
    rows = label_pairs("Where is Lima?", answers, random.Random(0), fresh_counts(), pairing="all")
    assert {frozenset((r["chosen"], r["rejected"])) for r in rows} == {
        frozenset((a, b)) for i, a in enumerate(answers) for b in answers[i + 1:]}
    with pytest.raises(ValueError, match="pairing must be one of"):
        pair_indices(4, "some")


def eos_prone_model(tokenizer, block_size=96):
    """A tiny GPT whose every next-token distribution gives EOS probability about 0.27."""
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=block_size))
    with torch.no_grad():
        e = model.wte.weight[tokenizer.eos_id]
        model.ln_f.weight.zero_()
        model.ln_f.bias.copy_(e / e.norm() * 40)
    return model


def save_eos_prone_sft(tmp_path):
    """An SFT checkpoint in tmp_path/sft whose model ends its answers early; its tokenizer."""
    tokenizer = ByteTokenizer()
    model = eos_prone_model(tokenizer)
    save_checkpoint(tmp_path / "sft" / "ckpt.pt", model, 0, model.config, tokenizer,
                    extra={"stage": "sft"})
    return tokenizer


def test_the_command_reads_a_prompt_file_and_writes_the_sampled_tokens(tmp_path):
    tokenizer = save_eos_prone_sft(tmp_path)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join('{"prompt": "%s"}\n' % p for p in ["hello", "What is 2+2?"] * 6))
    out = tmp_path / "pairs.jsonl"
    rows, counts = preferences_main(["--sft", str(tmp_path / "sft"), "--prompt-file", str(prompts),
                                     "--out", str(out), "--samples", "4", "--max-new-tokens", "4"])
    written = [json.loads(line) for line in open(out)]
    assert written == rows and counts["prompts"] == 12 and counts["answers"] == 48
    assert counts["unfinished_dropped"] > 0 and counts["pairs"] > 0
    for row in written:
        assert row["prompt"] in ("hello", "What is 2+2?") and row["chosen"] != row["rejected"]
        assert row["p_chosen"] == pytest.approx(
            sigmoid(row["chosen_gold"] - row["rejected_gold"]), abs=1e-12)
        ids = row["token_ids"]
        assert ids["tokenizer"] == tokenizer_fingerprint(tokenizer)
        assert ids["prompt"] == tokenizer.encode(format_prompt(row["prompt"]))
        for key in ("chosen", "rejected"):  # finished answers only: each ends with its one EOS
            assert ids[key][-1] == tokenizer.eos_id and tokenizer.eos_id not in ids[key][:-1]
            assert tokenizer.decode(ids[key][:-1], skip_special_tokens=True) == row[key]


def test_pairs_train_on_the_tokens_that_were_sampled_not_on_the_text_encoded_again():
    tokenizer = ByteTokenizer()
    prompt_ids = tokenizer.encode(format_prompt("hello"))
    # 0xC3 alone is not UTF-8: the text reads "\ufffd", which encodes to three other bytes
    chosen, rejected = [ord("H"), ord("i"), tokenizer.eos_id], [0xC3, tokenizer.eos_id]
    row = {"prompt": "hello", "chosen": tokenizer.decode(chosen[:-1]),
           "rejected": tokenizer.decode(rejected[:-1]),
           "token_ids": {"tokenizer": tokenizer_fingerprint(tokenizer), "prompt": prompt_ids,
                         "chosen": chosen, "rejected": rejected}}
    assert tokenizer.encode(row["rejected"]) != rejected[:-1]
    stats = TruncationStats()
    pair = tokenize_pair(tokenizer, row, 128, 64, stats)
    assert pair["rejected"] == (prompt_ids + rejected, [-100] * len(prompt_ids) + rejected)
    assert pair["chosen"][0] == prompt_ids + chosen and stats.from_token_ids == 1
    # another tokenizer's ids are not used: the text is encoded instead (and counted as such)
    foreign = {**row, "token_ids": {**row["token_ids"], "tokenizer": "char-40-0123456789ab"}}
    pair = tokenize_pair(tokenizer, foreign, 128, 64, stats)
    assert pair["rejected"][0] == prompt_ids + tokenizer.encode(row["rejected"]) + [tokenizer.eos_id]
    assert stats.from_token_ids == 1 and stats.rows == 2


def test_written_pairs_still_read_as_plain_text_rows_and_bad_ids_are_one_line_errors(tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": "hello", "chosen": "Hi.", "rejected": "No.",
            "token_ids": {"tokenizer": "byte-259-x", "prompt": [1], "chosen": [2], "rejected": [3]}}
    write_jsonl(path, [good, {"prompt": "hi", "chosen": "Hello.", "rejected": "Bye."}])
    rows = read_jsonl(path, ("prompt", "chosen", "rejected"))
    assert rows[0]["token_ids"]["chosen"] == [2] and "token_ids" not in rows[1]
    write_jsonl(path, [good, {**good, "token_ids": {**good["token_ids"], "chosen": [2, "x"]}}])
    with pytest.raises(InputError, match=r"pairs.jsonl, line 2: 'token_ids'.chosen: expected"):
        read_jsonl(path, ("prompt", "chosen", "rejected"))


def test_bad_settings_and_no_pairs_leave_the_output_file_alone(tmp_path, capsys):
    from minigpt.cli import run_main
    model = GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=96))
    save_checkpoint(tmp_path / "sft" / "ckpt.pt", model, 0, model.config, ByteTokenizer(),
                    extra={"stage": "sft"})
    out = tmp_path / "pairs.jsonl"
    out.write_text('{"prompt": "keep", "chosen": "me", "rejected": "please"}\n')
    for flags, message in ((["--samples", "1"], "--samples >= 2"),
                           (["--temperature", "0"], "--temperature > 0"),
                           (["--out", str(tmp_path)], "is a folder")):
        capsys.readouterr()
        with pytest.raises(SystemExit):
            run_main(preferences_main, ["--sft", str(tmp_path / "sft"), "--out", str(out), *flags])
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err
    assert "keep" in out.read_text()


def test_pairs_from_world_pair_the_worlds_own_answers():
    from align.preferences import pairs_from_world
    from toyworld.world import train_prompts
    prompts = train_prompts(200, seed=0)
    rows = pairs_from_world(prompts, seed=0)
    assert rows == pairs_from_world(prompts, seed=0)  # deterministic
    assert len(rows) >= len(prompts)  # four answers each: two pairs, fewer when two coincide
    agree = sum(row["chosen_gold"] > row["rejected_gold"] for row in rows)
    disagree = sum(row["chosen_gold"] < row["rejected_gold"] for row in rows)
    assert agree > 4 * disagree > 0  # mostly, not always, the better answer wins


# ------------------------------------------------------------ off-topic offers, rude pairs
def fake_samples(quality_of_draw):
    """A stand-in for align.sampling.sample_answers: draw k (seed k) of each prompt is the
    world's answer of quality_of_draw[k] ("cut": an unfinished answer), as π_ref's tokens."""
    from align.sampling import Sample
    from toyworld.world import parse_prompt, write_answer

    def sample(model, tokenizer, prompts, max_new_tokens, temperature, seed=0, device="cpu"):
        quality = quality_of_draw[seed % len(quality_of_draw)]
        samples = []
        for i, prompt in enumerate(prompts):
            rng = random.Random(f"{prompt}:{seed}:{i}")
            text = (write_answer(prompt, "good" if quality == "cut" else quality, rng)
                    if parse_prompt(prompt) else f"Ha {seed}.")
            ids = tokenizer.encode(text) + ([] if quality == "cut" else [tokenizer.eos_id])
            samples.append(Sample(prompt, tokenizer.encode(format_prompt(prompt)), ids, text,
                                  quality != "cut"))
        return samples
    return sample


def heldout_question_set():
    """Every held-out question, computed here from the world's own pool."""
    from toyworld.world import canonical_question, prompt_pool
    return {canonical_question(p) for ps in prompt_pool("heldout").values() for p in ps}


def pairs_with_extras(monkeypatch, prompts, qualities=("good", "wrong", "cut", "unhelpful"), **kw):
    import align.preferences as preferences
    monkeypatch.setattr(preferences, "sample_answers", fake_samples(qualities))
    return preferences.make_preference_pairs(None, ByteTokenizer(), prompts, len(qualities), seed=3,
                                             **kw)


def bradley_terry(prompt, chosen, rejected):
    """P(chosen > rejected) = 1 / (1 + exp(-(r*(chosen) - r*(rejected)))), written out."""
    import math
    return 1 / (1 + math.exp(-(gold_reward(prompt, chosen) - gold_reward(prompt, rejected))))


def test_off_topic_offers_answer_another_question_against_a_finished_sample(monkeypatch):
    from align.gold import judge
    from toyworld.world import parse_prompt, train_prompts
    prompts = train_prompts(300, seed=1)
    rows, counts = pairs_with_extras(monkeypatch, prompts, off_topic_per_prompt=1.5,
                                     rude_per_prompt=0.5, off_topic_against="sample")
    tokenizer = ByteTokenizer()
    offers = [row for row in rows if row["pair_kind"] == "off_topic_offer"]
    assert counts["pairs_by_kind"] == {kind: sum(r["pair_kind"] == kind for r in rows) for kind
                                       in ("same_prompt", "off_topic_offer", "rude_vs_polite",
                                           "right_vs_wrong")}
    assert counts["pairs"] == len(rows) and set(r["pair_kind"] for r in rows) == {
        "same_prompt", "off_topic_offer", "rude_vs_polite"}
    assert 1.3 * len(prompts) < len(offers) < 1.7 * len(prompts)  # 1.5 a prompt on average
    assert {row["offer_source"] for row in offers} == {"another_question", "pleasantry", "name"}
    finished, cut = {}, set()  # prompt -> its finished samples' texts; the cut ones
    for k in range(4):
        for s in fake_samples(("good", "wrong", "cut", "unhelpful"))(None, tokenizer, prompts, 0,
                                                                    1.0, seed=3 + k):
            if s.finished:
                finished.setdefault(s.prompt, set()).add(s.text)
            else:
                cut.add(s.text)
    assert cut - {t for texts in finished.values() for t in texts}  # some cut text is nowhere else
    offer_wins = []
    for row in offers:
        prompt, side = row["prompt"], row["offer_side"]
        offer, answer = row[side], row["rejected" if side == "chosen" else "chosen"]
        verdict = judge(prompt, offer)
        assert (verdict.off_topic or verdict.other_claims) and not (verdict.right or verdict.wrong)
        # it is the good answer to another kind of question
        assert parse_prompt(row["offer_prompt"]).kind != parse_prompt(prompt).kind
        assert judge(row["offer_prompt"], offer).right
        assert answer in finished[prompt]  # one of π_ref's finished samples for this prompt
        assert row["p_chosen"] == pytest.approx(bradley_terry(prompt, row["chosen"], row["rejected"]),
                                                abs=1e-12)
        offer_wins.append((side == "chosen", bradley_terry(prompt, offer, answer)))
        ids = row["token_ids"]  # the sample's tokens as sampled, the offer's as text is encoded
        assert ids[side] == tokenizer.encode(offer) + [tokenizer.eos_id]
        assert ids["rejected" if side == "chosen" else "chosen"][-1] == tokenizer.eos_id
    # the label is drawn with that probability: the offer wins as often as Bradley-Terry says
    wins, expected = sum(w for w, _ in offer_wins), sum(p for _, p in offer_wins)
    spread = sum(p * (1 - p) for _, p in offer_wins) ** 0.5
    assert abs(wins - expected) < 4 * spread + 1


def test_rude_pairs_and_the_defaults(monkeypatch):
    from align.gold import judge
    from toyworld.world import train_prompts
    prompts = train_prompts(200, seed=2) + ["Tell me a joke"]  # one prompt outside the world
    rows, counts = pairs_with_extras(monkeypatch, prompts, rude_per_prompt=8)
    rude = [row for row in rows if row["pair_kind"] == "rude_vs_polite"]
    assert len(rude) == 8 * (len(prompts) - 1) and counts["outside_world"] == 1
    polite_wins = []
    for row in rude:
        chosen, rejected = (judge(row["prompt"], row[k]) for k in ("chosen", "rejected"))
        assert chosen.offensive != rejected.offensive  # one rude answer, one polite
        polite = row["rejected"] if chosen.offensive else row["chosen"]
        assert judge(row["prompt"], polite).right  # the world's good answer
        assert row["p_chosen"] == pytest.approx(bradley_terry(row["prompt"], row["chosen"],
                                                              row["rejected"]), abs=1e-12)
        rude_answer = row["chosen"] if chosen.offensive else row["rejected"]
        polite_wins.append((not chosen.offensive, bradley_terry(row["prompt"], polite, rude_answer)))
    wins, expected = sum(w for w, _ in polite_wins), sum(p for _, p in polite_wins)
    assert expected > 0.8 * len(polite_wins)  # r* prefers the polite answer
    assert abs(wins - expected) < 4 * sum(p * (1 - p) for _, p in polite_wins) ** 0.5 + 1
    # the defaults make today's pairs, and the extra pairs never change the sampled ones
    plain, plain_counts = pairs_with_extras(monkeypatch, prompts)
    assert all(row["pair_kind"] == "same_prompt" for row in plain)
    assert plain_counts["pairs_by_kind"] == {"same_prompt": len(plain), "off_topic_offer": 0,
                                             "rude_vs_polite": 0, "right_vs_wrong": 0}
    assert [row for row in rows if row["pair_kind"] == "same_prompt"] == plain
    with pytest.raises(ValueError, match="off_topic_per_prompt must be a number >= 0"):
        pairs_with_extras(monkeypatch, prompts, off_topic_per_prompt=-1)


def test_right_vs_wrong_pairs_set_the_worlds_good_answer_against_its_wrong_one(monkeypatch):
    """Each pair holds a right and a wrong answer to its own prompt (judge says so, not the
    code that wrote them); the right one wins as often as Bradley-Terry says; and they
    draw from their own random stream: the other extra pairs are the same with or without."""
    from align.gold import judge
    from toyworld.world import parse_prompt, train_prompts
    prompts = train_prompts(200, seed=5)
    rows, counts = pairs_with_extras(monkeypatch, prompts, off_topic_per_prompt=1, rude_per_prompt=1,
                                     wrong_per_prompt=2.5)
    pairs = [row for row in rows if row["pair_kind"] == "right_vs_wrong"]
    assert counts["pairs_by_kind"]["right_vs_wrong"] == len(pairs)
    assert 2.3 * len(prompts) < len(pairs) < 2.7 * len(prompts)  # 2.5 a prompt on average
    assert {parse_prompt(row["prompt"]).kind for row in pairs} >= {"city", "arithmetic", "explain"}
    right_wins = []
    for row in pairs:
        chosen, rejected = (judge(row["prompt"], row[k]) for k in ("chosen", "rejected"))
        assert {(chosen.right, chosen.wrong), (rejected.right, rejected.wrong)} == {
            (True, False), (False, True)}, row  # one right answer to x, one wrong
        assert not (chosen.offensive or rejected.offensive or chosen.off_topic or rejected.off_topic)
        assert row["p_chosen"] == pytest.approx(bradley_terry(row["prompt"], row["chosen"],
                                                              row["rejected"]), abs=1e-12)
        right, wrong = (row["chosen"], row["rejected"]) if chosen.right else (row["rejected"], row["chosen"])
        right_wins.append((chosen.right, bradley_terry(row["prompt"], right, wrong)))
    wins, expected = sum(w for w, _ in right_wins), sum(p for _, p in right_wins)
    assert expected > 0.9 * len(right_wins)  # r* prefers the right answer
    assert abs(wins - expected) < 4 * sum(p * (1 - p) for _, p in right_wins) ** 0.5 + 1
    without, _ = pairs_with_extras(monkeypatch, prompts, off_topic_per_prompt=1, rude_per_prompt=1)
    assert [row for row in rows if row["pair_kind"] != "right_vs_wrong"] == without
    with pytest.raises(ValueError, match="wrong_per_prompt must be a number >= 0"):
        pairs_with_extras(monkeypatch, prompts, wrong_per_prompt=-1)


def stated_operands(answer):
    """{a, b} of an answer that restates a sum ("7+5 is 12.", "7 plus 5 is 12."), else None."""
    import re
    found = re.match(r"(\d+) ?(?:\+|plus) ?(\d+) is", answer)
    return None if found is None else {int(found[1]), int(found[2])}


@pytest.mark.parametrize("misread_share", [0.0, 0.5, 1.0])
def test_a_share_of_the_wrong_twins_of_a_sum_misread_the_question(monkeypatch, misread_share):
    """misread_share of a sum's wrong twins restate it with other operands (read off the
    answer's text, not from the code that wrote it), none at 0."""
    from align.gold import judge
    from toyworld.world import parse_prompt, train_prompts
    prompts = train_prompts(300, seed=6)
    rows, _ = pairs_with_extras(monkeypatch, prompts, wrong_per_prompt=2, misread_share=misread_share)
    misread, sums = 0, 0
    for row in rows:
        if row["pair_kind"] != "right_vs_wrong":
            continue
        question = parse_prompt(row["prompt"])
        if question.kind != "arithmetic":
            continue
        wrong = next(row[k] for k in ("chosen", "rejected") if judge(row["prompt"], row[k]).wrong)
        sums += 1
        stated = stated_operands(wrong)
        misread += stated is not None and stated != set(question.operands)
    assert sums > 100
    assert abs(misread / sums - misread_share) < 0.1, (misread, sums)
    assert misread_share > 0 or misread == 0
    with pytest.raises(ValueError, match="misread_share must be a share from 0 to 1"):
        pairs_with_extras(monkeypatch, prompts, wrong_per_prompt=1, misread_share=1.5)


def test_no_training_pair_mentions_a_held_out_question_and_held_out_offers_stay_held_out(monkeypatch):
    import re
    from toyworld.world import (HELDOUT_CITIES, HELDOUT_TOPICS, TOPICS, canonical_question,
                                heldout_prompts, is_heldout_sum, train_prompts)
    held = heldout_question_set()
    train, heldout = train_prompts(400, seed=4), heldout_prompts(200, seed=4)
    rows, _ = pairs_with_extras(monkeypatch, train, off_topic_per_prompt=2, rude_per_prompt=1,
                                wrong_per_prompt=1)
    assert {row["pair_kind"] for row in rows} == {"same_prompt", "off_topic_offer", "rude_vs_polite",
                                                  "right_vs_wrong"}
    sums = re.compile(r"(\d+) ?(?:\+|plus) ?(\d+)")
    for row in rows:
        assert canonical_question(row["prompt"]) not in held
        if row["pair_kind"] == "off_topic_offer":
            assert canonical_question(row["offer_prompt"]) not in held
        text = " ".join((row["chosen"], row["rejected"], row.get("offer_prompt", ""))).lower()
        assert not [city for city in HELDOUT_CITIES if city.lower() in text]
        assert not [t for t in HELDOUT_TOPICS if t in text or TOPICS[t][0].lower() in text]
        assert not [s for s in sums.findall(text) if is_heldout_sum(int(s[0]), int(s[1]))]
    rows, _ = pairs_with_extras(monkeypatch, heldout, off_topic_per_prompt=2)
    offers = [row for row in rows if row["pair_kind"] == "off_topic_offer"]
    assert len(offers) > 300 and all(canonical_question(row["offer_prompt"]) in held
                                     for row in offers)


def test_the_command_takes_the_extra_pairs_flags(tmp_path):
    save_eos_prone_sft(tmp_path)
    out = tmp_path / "pairs.jsonl"
    rows, counts = preferences_main(["--sft", str(tmp_path / "sft"), "--prompts", "20",
                                     "--out", str(out), "--samples", "4", "--max-new-tokens", "4",
                                     "--off-topic-per-prompt", "1", "--rude-per-prompt", "0.5",
                                     "--wrong-per-prompt", "2"])
    written = [json.loads(line) for line in open(out)]
    assert written == rows and counts["pairs_by_kind"]["rude_vs_polite"] > 0
    assert counts["pairs_by_kind"]["right_vs_wrong"] == 40
    assert counts["pairs_by_kind"]["off_topic_offer"] == 20 - counts["off_topic_no_sample"]
    for flag in ("--rude-per-prompt", "--wrong-per-prompt"):
        with pytest.raises(InputError, match=f"{flag}: expected a number >= 0"):
            preferences_main(["--sft", str(tmp_path / "sft"), "--out", str(tmp_path / "x.jsonl"),
                              flag, "-0.5"])


def test_an_offer_that_answers_the_question_or_repeats_the_sample_is_drawn_again(monkeypatch):
    import align.preferences as preferences
    prompt = "Where is Lima?"
    offers = iter([("name", "x", "Lima is in Peru."), ("name", "x", "Lima is in Chile."),
                   ("pleasantry", "x", "I am fine, thank you."), ("name", "x", "I am Mary.")])
    monkeypatch.setattr(preferences, "draw_offer", lambda p, rng: next(offers))
    sample = fake_samples(("good",))(None, ByteTokenizer(), [prompt], 0, 1.0)[0]
    sample.text = "I am fine, thank you."  # π_ref's own pleasantry: never offered against itself
    counts = {"off_topic_no_sample": 0, "off_topic_skipped": 0}
    rows = preferences.off_topic_pairs(prompt, [sample], 1, random.Random(0), counts,
                                       against="sample")
    assert [row[row["offer_side"]] for row in rows] == ["I am Mary."]
    monkeypatch.setattr(preferences, "draw_offer", lambda p, rng: ("name", "x", "Lima is in Peru."))
    assert preferences.off_topic_pairs(prompt, [sample], 2, random.Random(0), counts,
                                       against="sample") == []
    assert counts == {"off_topic_no_sample": 0, "off_topic_skipped": 2}


def test_by_default_an_offer_is_set_against_the_worlds_good_answer(monkeypatch):
    """The default pairs an offer with a right answer to this question, so the label says,
    almost always, that answering the question beats ignoring it (σ(3 − (−1.5)) ≈ 0.99)."""
    from align.gold import judge
    from toyworld.world import train_prompts
    prompts = train_prompts(200, seed=2)
    rows, _ = pairs_with_extras(monkeypatch, prompts, off_topic_per_prompt=1.0)
    offers = [row for row in rows if row["pair_kind"] == "off_topic_offer"]
    assert len(offers) == 200
    for row in offers:
        side = "rejected" if row["offer_side"] == "chosen" else "chosen"
        assert judge(row["prompt"], row[side]).right  # the answer to this question is right
        assert not judge(row["prompt"], row[row["offer_side"]]).right
        assert "token_ids" not in row  # both texts, encoded as align.data encodes text
    assert sum(row["offer_side"] == "rejected" for row in offers) > 0.9 * len(offers)
    with pytest.raises(ValueError, match="against"):
        make_preference_pairs(None, ByteTokenizer(), prompts[:1], off_topic_per_prompt=1.0,
                              off_topic_against="nonsense")
