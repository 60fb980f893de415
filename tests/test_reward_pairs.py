"""The reward model's evaluation per kind of pair: accuracy for each pair_kind, and r_φ on
off-topic offers against the right answers they were offered against."""

import json

import pytest
import torch
import torch.nn as nn

from align.data import TruncationStats, tokenize_pair, write_jsonl
from align.gold import judge
from align.reward import RewardConfig, evaluate_pairs, load_reward_model, train_reward
from minigpt import GPT, ByteTokenizer, InputError, save_checkpoint
from tests.conftest import tiny_config

TOKENIZER = ByteTokenizer()

# (row, r_φ(chosen), r_φ(rejected), is the non-offer answer right?) with known scores
HAND_MADE = [
    ({"prompt": "What is 2+2?", "chosen": "4.", "rejected": "5."}, 1.0, 0.0, None),
    ({"prompt": "hello", "chosen": "Hi.", "rejected": "Go away."}, 0.2, 0.5, None),
    ({"prompt": "Where is Lima?", "chosen": "Lima is a city in Peru.", "rejected": "Lima is in Chile.",
      "pair_kind": "same_prompt"}, 0.3, 0.3, None),  # a tie is no win
    ({"prompt": "Where is Lima?", "chosen": "Lima is in Peru.", "rejected": "I am Mary.",
      "pair_kind": "off_topic_offer", "offer_side": "rejected"}, 2.0, 0.5, True),
    ({"prompt": "What is 2+2?", "chosen": "Hello! How can I help you?", "rejected": "2+2 is 5.",
      "pair_kind": "off_topic_offer", "offer_side": "chosen"}, 1.5, -1.0, False),
    ({"prompt": "Where is Paris?", "chosen": "Paris is in France.", "rejected": "I am fine, thank you.",
      "pair_kind": "off_topic_offer", "offer_side": "rejected"}, 0.1, 0.9, True),
    ({"prompt": "What is your name?", "chosen": "My name is Mary.", "rejected": "Shut up.",
      "pair_kind": "rude_vs_polite"}, 1.0, -1.0, None),
    ({"prompt": "hi", "chosen": "Hello, nice to meet you.", "rejected": "Leave me alone.",
      "pair_kind": "rude_vs_polite"}, -0.5, 0.25, None),
    ({"prompt": "Where is Lima?", "chosen": "It is in Brazil.", "rejected": "It is in Peru.",
      "pair_kind": "right_vs_wrong"}, 0.0, 1.0, None),  # drawn against r*; r_φ puts Peru above
]


def tokenized(rows):
    return [{**tokenize_pair(TOKENIZER, row, 128, 64, TruncationStats()), "row": row} for row in rows]


class FixedScores(nn.Module):
    """A stand-in reward model: each whole sequence (prompt + answer + EOS) has a fixed score."""

    def __init__(self, pairs, scores):
        super().__init__()
        self.scores = {}
        for pair, (r_w, r_l) in zip(pairs, scores):
            self.scores[tuple(pair["chosen"][0])], self.scores[tuple(pair["rejected"][0])] = r_w, r_l

    def forward(self, input_ids, lengths, labels=None):  # (B, T), (B,) -> (B,); labels unread
        return torch.tensor([self.scores[tuple(ids[:n].tolist())]
                             for ids, n in zip(input_ids, lengths)])


def test_accuracy_per_kind_and_the_off_topic_scores_are_the_counts_by_hand():
    rows = [row for row, *_ in HAND_MADE]
    pairs = tokenized(rows)
    model = FixedScores(pairs, [(r_w, r_l) for _, r_w, r_l, _ in HAND_MADE])
    # the premise: the answers marked right are the ones align.gold's judge calls right
    for row, _, _, right in HAND_MADE:
        if right is not None:
            answer = row["chosen" if row["offer_side"] == "rejected" else "rejected"]
            assert judge(row["prompt"], answer).right == right
    for batch_size in (64, 3):  # batches must not change any figure
        result = evaluate_pairs(model, pairs, TOKENIZER.pad_id, "cpu", batch_size=batch_size)
        wins, offers, rights = {}, [], []
        for row, r_w, r_l, right in HAND_MADE:  # brute force
            kind = row.get("pair_kind", "same_prompt")
            wins.setdefault(kind, []).append(r_w > r_l)
            if kind == "off_topic_offer":
                offer, answer = (r_w, r_l) if row["offer_side"] == "chosen" else (r_l, r_w)
                offers.append(offer)
                if right:
                    rights.append(answer)
        assert result["accuracy_by_pair_kind"] == {
            kind: {"accuracy": pytest.approx(sum(w) / len(w)), "n": len(w)} for kind, w in wins.items()}
        assert result["accuracy_by_pair_kind"]["same_prompt"] == {"accuracy": pytest.approx(1 / 3), "n": 3}
        assert result["off_topic_score"] == pytest.approx(sum(offers) / len(offers))
        assert result["off_topic_score"] == pytest.approx((0.5 + 1.5 + 0.9) / 3)
        assert result["right_score"] == pytest.approx((2.0 + 0.1) / 2)  # not the wrong "2+2 is 5."
        assert result["accuracy"] == pytest.approx(4 / 9)
        # right above wrong, two answers to x itself: 2+2 ("4." over "5.") won, Lima's
        # same-prompt pair (a tie) did not, its right_vs_wrong pair did (Peru above Brazil,
        # whatever the label); "Hi." against "Go away." is no right-against-wrong pair, nor
        # any offer or rude answer
        assert result["right_vs_wrong_by_kind"] == {"arithmetic": {"accuracy": 1.0, "n": 1},
                                                   "city": {"accuracy": 0.5, "n": 2}}


def test_right_above_wrong_counts_the_right_side_whichever_the_label():
    """A pair labelled against r* (the wrong answer chosen, as Bradley-Terry sometimes
    draws) still asks whether r_φ puts the *right* answer above; the metrics row and the
    stage's summary carry the same figures."""
    from align.reward import evaluation_metrics, summary_of_evaluation
    rows = [{"prompt": "What is 3+4?", "chosen": "3+4 is 9.", "rejected": "3+4 is 7."},
            {"prompt": "What is 3 plus 4?", "chosen": "3 plus 4 is 7.", "rejected": "3 plus 4 is 3."},
            {"prompt": "Where is Lima?", "chosen": "Lima is in Chile.", "rejected": "Lima is in Peru."}]
    pairs = tokenized(rows)
    # r_φ: the right 7 above the wrong 9; the right 7 below the wrong 3; Peru above Chile
    model = FixedScores(pairs, [(0.0, 1.0), (0.0, 2.0), (-1.0, 1.0)])
    result = evaluate_pairs(model, pairs, TOKENIZER.pad_id, "cpu")
    assert result["right_vs_wrong_by_kind"] == {"arithmetic": {"accuracy": 0.5, "n": 2},
                                               "city": {"accuracy": 1.0, "n": 1}}
    assert result["accuracy"] == 0.0  # against the labels: every chosen answer scored lower
    flat = {f"eval_{key}": value for key, value in evaluation_metrics(result, True).items()}
    assert flat["eval_right_vs_wrong/arithmetic"] == 0.5
    assert summary_of_evaluation(flat, "eval", 3)["right_vs_wrong_by_kind"] == \
        result["right_vs_wrong_by_kind"]


def test_no_off_topic_pair_gives_no_off_topic_score_and_a_missing_offer_side_is_named():
    rows = [row for row, *_ in HAND_MADE[:3]]
    pairs = tokenized(rows)
    model = FixedScores(pairs, [(r_w, r_l) for _, r_w, r_l, _ in HAND_MADE[:3]])
    result = evaluate_pairs(model, pairs, TOKENIZER.pad_id, "cpu")
    assert result["off_topic_score"] is None and result["right_score"] is None
    assert result["accuracy_by_pair_kind"] == {"same_prompt": {"accuracy": pytest.approx(1 / 3), "n": 3}}
    bad = {key: value for key, value in HAND_MADE[3][0].items() if key != "offer_side"}
    with pytest.raises(InputError, match=r"'off_topic_offer' pair needs 'offer_side'"):
        evaluate_pairs(FixedScores(tokenized([bad]), [(0.0, 0.0)]), tokenized([bad]),
                       TOKENIZER.pad_id, "cpu")


@pytest.fixture
def pretrained(tmp_path):
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=TOKENIZER.vocab_size, block_size=96))
    save_checkpoint(tmp_path / "pretrain" / "ckpt.pt", model, 0, model.config, TOKENIZER)
    return tmp_path / "pretrain"


def stage(pretrained, tmp_path, train_rows, eval_rows, name):
    write_jsonl(tmp_path / f"{name}_train.jsonl", train_rows)
    write_jsonl(tmp_path / f"{name}_eval.jsonl", eval_rows)
    config = RewardConfig(init=str(pretrained), data=str(tmp_path / f"{name}_train.jsonl"),
                          eval_data=str(tmp_path / f"{name}_eval.jsonl"), out_dir=str(tmp_path / name),
                          max_length=96, max_prompt_length=64, batch_size=4, max_iters=2,
                          learning_rate=1e-3, eval_interval=2)
    summary = train_reward(config, progress=False)
    metrics = [json.loads(line) for line in open(tmp_path / name / "metrics.jsonl")]
    return summary, [row for row in metrics if "eval_loss" in row], config


def test_the_stage_logs_and_summarises_each_kind_of_pair(pretrained, tmp_path):
    rows = [row for row, *_ in HAND_MADE]
    summary, evaluations, config = stage(pretrained, tmp_path, rows, rows, "kinds")
    kinds = ("off_topic_offer", "rude_vs_polite", "same_prompt")
    for row in evaluations:
        assert {f"eval_accuracy/{k}" for k in kinds} | {f"eval_pairs/{k}" for k in kinds} <= set(row)
        assert {"eval_off_topic_score", "eval_right_score"} <= set(row)
    # recomputed from the saved r_φ, by hand, on the pairs that fit
    model, tokenizer = load_reward_model(tmp_path / "kinds")
    pairs = tokenized(rows)
    with torch.no_grad():
        scores = [(model(torch.tensor([p["chosen"][0]]), torch.tensor([len(p["chosen"][0])])).item(),
                   model(torch.tensor([p["rejected"][0]]), torch.tensor([len(p["rejected"][0])])).item())
                  for p in pairs]
    wins, offers, rights = {}, [], []
    for (row, _, _, right), (r_w, r_l) in zip(HAND_MADE, scores):
        kind = row.get("pair_kind", "same_prompt")
        wins.setdefault(kind, []).append(r_w > r_l)
        if kind == "off_topic_offer":
            offer, answer = (r_w, r_l) if row["offer_side"] == "chosen" else (r_l, r_w)
            offers.append(offer)
            rights += [answer] if right else []
    assert summary["accuracy_by_pair_kind"] == {
        kind: {"accuracy": pytest.approx(sum(w) / len(w)), "n": len(w)} for kind, w in sorted(wins.items())}
    assert summary["off_topic_score"] == pytest.approx(sum(offers) / len(offers), abs=1e-5)
    assert summary["right_score"] == pytest.approx(sum(rights) / len(rights), abs=1e-5)
    last = evaluations[-1]
    assert last["eval_off_topic_score"] == summary["off_topic_score"]
    assert last["eval_accuracy/off_topic_offer"] == summary["accuracy_by_pair_kind"]["off_topic_offer"]["accuracy"]


def test_pairs_that_name_no_kind_are_one_kind_and_log_no_new_names(pretrained, tmp_path):
    rows = [{key: row[key] for key in ("prompt", "chosen", "rejected")} for row, *_ in HAND_MADE]
    summary, evaluations, _ = stage(pretrained, tmp_path, rows, rows, "plain")
    assert all(not any("/" in key or "score" in key for key in row) for row in evaluations)
    assert summary["accuracy_by_pair_kind"] == {"same_prompt": {"accuracy": summary["accuracy"],
                                                                "n": len(rows)}}
    assert summary["off_topic_score"] is None and summary["right_score"] is None


def test_kinds_are_read_from_the_file_row_by_row_and_bad_ones_named_by_line(tmp_path):
    from align.reward import attach_pair_kinds
    a = {"prompt": "hello", "chosen": "Hi.", "rejected": "Go away."}
    b = {"prompt": "hi", "chosen": "Hello.", "rejected": "Shut up."}
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{**a, "pair_kind": "same_prompt"}, {**b, "pair_kind": "rude_vs_polite"},
                       {**a, "pair_kind": "off_topic_offer", "offer_side": "chosen"}])
    pairs = [{"row": dict(a)}, {"row": dict(a)}]  # b was left out: the pairs are rows 1 and 3
    attach_pair_kinds(pairs, path)
    assert [p["row"].get("pair_kind") for p in pairs] == ["same_prompt", "off_topic_offer"]
    assert pairs[1]["row"]["offer_side"] == "chosen" and "offer_side" not in pairs[0]["row"]
    write_jsonl(path, [a, {**b, "pair_kind": 3}])
    with pytest.raises(InputError, match=r"pairs.jsonl, line 2: 'pair_kind' must be a non-empty string"):
        attach_pair_kinds([{"row": dict(a)}, {"row": dict(b)}], path)
