"""SFT, the reward model and DPO on tiny models: the properties the lecture's formulas promise."""

import math

import pytest
import torch
import torch.nn.functional as F

from align.common import load_stage
from align.data import TruncationStats, collate, tokenize_example, write_jsonl
from align.dpo import DPOConfig, add_reference_logps, concatenated_forward, dpo_batch, train_dpo
from align.data import tokenize_pairs
from align.reward import RewardConfig, RewardModel, score_sequences, train_reward
from align.sft import SFTConfig, response_loss, train_sft
from minigpt import GPT, ByteTokenizer, load_model, save_checkpoint
from minigpt.errors import InputError
from minigpt.optim import make_optimizer
from tests.conftest import tiny_config

DEMOS = [{"prompt": "hello", "completion": "hi"}, {"prompt": "how are you", "completion": "fine"},
         {"prompt": "2+2?", "completion": "4"}, {"prompt": "name?", "completion": "Mary"}]
PAIRS = [{"prompt": "hello", "chosen": "hi nice to meet you", "rejected": "leave me alone"},
         {"prompt": "how are you", "chosen": "I am fine", "rejected": "I am not fine"},
         {"prompt": "What is your name?", "chosen": "My name is Mary", "rejected": "Whats it to you?"},
         {"prompt": "Best language?", "chosen": "Python", "rejected": "C++"}]


def byte_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64)).to(dtype)


@pytest.fixture
def pretrained(tmp_path):
    """A 'pre-trained' checkpoint: a tiny random byte-level GPT."""
    model = byte_model()
    save_checkpoint(tmp_path / "pretrain" / "ckpt.pt", model, 0, model.config, ByteTokenizer())
    return tmp_path / "pretrain"


def examples_of(rows):
    return [tokenize_example(ByteTokenizer(), r["prompt"], r["completion"], 64, 32, TruncationStats())
            for r in rows]


# ------------------------------------------------------------------------------------ SFT
def test_sft_loss_is_the_mean_over_response_tokens_only():
    model = byte_model(dtype=torch.float64).eval()
    examples = examples_of(DEMOS)
    input_ids, labels = collate(examples, ByteTokenizer().pad_id)
    log_probs = F.log_softmax(model(input_ids)[0], dim=-1)
    terms = [-log_probs[b, t, labels[b, t + 1]] for b in range(len(DEMOS))
             for t in range(input_ids.size(1) - 1) if labels[b, t + 1] != -100]
    expected = torch.stack(terms).mean()  # brute force: response tokens (and EOS) only
    loss = response_loss(model, examples, ByteTokenizer().pad_id, "cpu")
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_changing_what_the_prompt_positions_predict_does_not_change_the_loss():
    """The logits that predict prompt tokens get exactly zero gradient."""
    model = byte_model(dtype=torch.float64)
    kept = {}
    model.lm_head.register_forward_hook(lambda m, i, out: kept.update(logits=out) or out.retain_grad())
    examples = examples_of(DEMOS)
    response_loss(model, examples, ByteTokenizer().pad_id, "cpu").backward()
    grad = kept["logits"].grad  # (B, T-1, vocab): position t predicts token t+1
    for b, (ids, labels) in enumerate(examples):
        first_response = next(i for i, label in enumerate(labels) if label != -100)
        assert grad[b, : first_response - 1].abs().max() == 0  # predicting prompt tokens
        assert grad[b, first_response - 1].abs().max() > 0  # predicting the first answer token


def test_sft_learns_to_answer_and_to_emit_eos(pretrained, tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", DEMOS)
    summary = train_sft(SFTConfig(init=str(pretrained), data=str(tmp_path / "sft.jsonl"),
                                  out_dir=str(tmp_path / "sft"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=150, learning_rate=3e-3, warmup_iters=10,
                                  eval_interval=150), progress=False)
    assert summary["train_response_loss"] < 0.05
    model, tokenizer, checkpoint = load_model(tmp_path / "sft")
    from align.evaluate import generate_responses
    prompts = [d["prompt"] for d in DEMOS]
    answers = generate_responses(model, tokenizer, prompts, max_new_tokens=20, temperature=0.0)
    assert answers == [d["completion"] for d in DEMOS]  # it stops: EOS, not 20 tokens
    assert load_stage(tmp_path / "sft", ("sft",))[1] == "sft"


# ------------------------------------------------------------------------------- reward model
def test_reward_does_not_depend_on_right_padding():
    torch.manual_seed(0)
    model = RewardModel(tiny_config(vocab_size=259, block_size=64)).eval()
    ids = examples_of(DEMOS[:1])[0][0]
    from align.data import pad_right
    lengths = torch.tensor([len(ids)] * 3)
    scores = [model(pad_right([ids], 258, len(ids) + extra), lengths[:1]) for extra in (0, 5, 30)]
    assert scores[0].item() == pytest.approx(scores[1].item(), abs=1e-6)
    assert scores[0].item() == pytest.approx(scores[2].item(), abs=1e-6)
    batch = score_sequences(model, [ids, ids[:-3], ids], 258, "cpu")  # padded to the longest
    assert batch[0].item() == pytest.approx(scores[0].item(), abs=1e-6) and batch[0] == batch[2]


def test_reward_model_learns_the_pairs_and_checks_its_init_stage(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    config = RewardConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                          out_dir=str(tmp_path / "reward"), max_length=64, max_prompt_length=32,
                          batch_size=4, max_iters=60, learning_rate=1e-3, eval_interval=60)
    summary = train_reward(config, progress=False)
    assert summary["accuracy"] == 1.0 and summary["margin"] > 1.0
    with pytest.raises(InputError, match="this is a 'reward' checkpoint; expected one from 'sft' or 'pretrain'"):
        train_reward(RewardConfig(**{**config.__dict__, "init": str(tmp_path / "reward")}), progress=False)


# ------------------------------------------------------------------------------------ DPO
def dpo_setup(dtype=torch.float64):
    policy = byte_model(dtype=dtype)
    reference = byte_model(dtype=dtype).eval().requires_grad_(False)
    pairs, _ = tokenize_pairs(PAIRS, ByteTokenizer(), DPOConfig(max_length=64, max_prompt_length=32), "test")
    add_reference_logps(reference, pairs, ByteTokenizer().pad_id, "cpu", average_log_prob=False)
    return policy, reference, pairs


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference():
    policy, _, pairs = dpo_setup()
    loss, metrics = dpo_batch(policy, pairs, DPOConfig(beta=0.1), ByteTokenizer().pad_id, "cpu")
    assert loss.item() == pytest.approx(math.log(2), abs=1e-12)
    assert metrics["rewards/margins"] == pytest.approx(0.0, abs=1e-12)


def test_one_step_raises_the_chosen_minus_rejected_log_ratio():
    policy, reference, pairs = dpo_setup()
    pad = ByteTokenizer().pad_id

    def log_ratio_gap():
        with torch.no_grad():
            chosen, rejected = concatenated_forward(policy, pairs, pad, "cpu")
        return (chosen - rejected).mean().item()

    before = log_ratio_gap()
    optimizer = make_optimizer(policy, 1e-3, 0.0)
    loss, _ = dpo_batch(policy, pairs, DPOConfig(beta=0.1), pad, "cpu")
    loss.backward()
    optimizer.step()
    assert log_ratio_gap() > before


def test_concatenated_forward_equals_separate_forwards_and_the_cache():
    policy, reference, pairs = dpo_setup()
    chosen, rejected = concatenated_forward(policy, pairs, ByteTokenizer().pad_id, "cpu")
    from minigpt import get_batch_logps
    for i, pair in enumerate(pairs):
        for key, value in (("chosen", chosen[i]), ("rejected", rejected[i])):
            ids, labels = pair[key]
            alone = get_batch_logps(policy(torch.tensor([ids]))[0], torch.tensor([labels]))
            assert value.item() == pytest.approx(alone.item(), abs=1e-10)
            direct = get_batch_logps(reference(torch.tensor([ids]))[0], torch.tensor([labels]))
            assert pair[f"reference_{key}_logps"] == pytest.approx(direct.item(), abs=1e-10)


def test_dpo_run_logs_the_usual_metrics_and_freezes_the_reference(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    summary = train_dpo(DPOConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                                  out_dir=str(tmp_path / "dpo"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=30, learning_rate=1e-3, eval_interval=30),
                        progress=False)
    import json
    rows = [json.loads(line) for line in open(tmp_path / "dpo" / "metrics.jsonl")]
    first = rows[0]
    for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                "rewards/margins", "logps/chosen", "logps/rejected"):
        assert key in first
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)  # step 1: π_θ = π_ref
    assert summary["rewards/accuracies"] == 1.0 and summary["loss"] < 0.6
    assert (tmp_path / "dpo" / "rewards.png").exists() and (tmp_path / "dpo" / "ckpt.pt").exists()


def test_the_reference_is_a_frozen_copy_and_its_cached_logps_stay_valid(pretrained):
    from align.dpo import load_policy_and_reference
    policy, reference, tokenizer = load_policy_and_reference(pretrained, "cpu")
    assert not reference.training and not any(p.requires_grad for p in reference.parameters())
    assert policy.config.dropout == 0.0 and all(p.requires_grad for p in policy.parameters())
    pairs, _ = tokenize_pairs(PAIRS, tokenizer, DPOConfig(max_length=64, max_prompt_length=32), "test")
    add_reference_logps(reference, pairs, tokenizer.pad_id, "cpu", average_log_prob=False)
    before = [pair["reference_chosen_logps"] for pair in pairs]
    optimizer = make_optimizer(policy, 1e-2, 0.0)
    for _ in range(3):  # training π_θ must leave π_ref untouched
        loss, _ = dpo_batch(policy, pairs, DPOConfig(), tokenizer.pad_id, "cpu")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    add_reference_logps(reference, pairs, tokenizer.pad_id, "cpu", average_log_prob=False)
    assert [pair["reference_chosen_logps"] for pair in pairs] == before
    chosen, _ = concatenated_forward(policy, pairs, tokenizer.pad_id, "cpu")
    assert chosen.tolist() != before  # while π_θ moved


@pytest.mark.parametrize("options", [dict(loss_type="ipo"), dict(loss_type="hinge"),
                                     dict(label_smoothing=0.1), dict(reference_free=True),
                                     dict(average_log_prob=True)])
def test_every_dpo_option_trains_end_to_end(pretrained, tmp_path, options):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    summary = train_dpo(DPOConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                                  out_dir=str(tmp_path / "dpo"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=20, learning_rate=1e-3, eval_interval=20,
                                  **options), progress=False)
    import json
    losses = [row["loss"] for row in map(json.loads, open(tmp_path / "dpo" / "metrics.jsonl"))
              if "rewards/margins" in row]
    assert summary["loss"] < losses[0]  # the option's own loss went down on the pairs
    assert summary["rewards/margins"] > 0  # and the chosen answers gained on the rejected ones


def test_bad_stage_flags_fail_before_an_earlier_run_is_touched(pretrained, tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", DEMOS)
    config = dict(init=str(pretrained), data=str(tmp_path / "sft.jsonl"), out_dir=str(tmp_path / "sft"),
                  max_length=64, max_prompt_length=32, batch_size=4, max_iters=4, eval_interval=2)
    train_sft(SFTConfig(**config), progress=False)
    metrics = (tmp_path / "sft" / "metrics.jsonl").read_bytes()
    for bad, message in ((dict(eval_interval=0), "--eval-interval must be at least 1"),
                         (dict(batch_size=0), "--batch-size must be at least 1"),
                         (dict(max_iters=0), "--max-iters must be at least 1")):
        with pytest.raises(InputError, match=message):
            train_sft(SFTConfig(**{**config, **bad}), progress=False)
    with pytest.raises(InputError, match="--beta must be positive"):
        DPOConfig(beta=0)
    with pytest.raises(InputError, match="--label-smoothing goes with --loss-type sigmoid only"):
        DPOConfig(label_smoothing=0.1, loss_type="hinge")
    assert (tmp_path / "sft" / "metrics.jsonl").read_bytes() == metrics
