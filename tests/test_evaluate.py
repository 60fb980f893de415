"""Evaluation statistics and the KL estimate, against hand computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from align.evaluate import mean_and_ci, sample_answers, sample_logps, sequence_kl, win_rate
from minigpt import GPT, ByteTokenizer
from tests.conftest import tiny_config


def test_mean_and_ci_by_hand():
    values = [1.0, 2.0, 3.0, 6.0]
    mean, half = mean_and_ci(values)
    s = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + 0 + (6 - 3) ** 2) / 3)  # sample standard deviation
    assert mean == 3.0 and half == pytest.approx(1.96 * s / 2)
    with pytest.raises(ValueError):
        mean_and_ci([])


def test_win_rate_counts_ties_as_half():
    assert win_rate([3, 1, 2, 0], [1, 1, 5, -1]) == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    with pytest.raises(ValueError):
        win_rate([1], [1, 2])


def models(seed_a=0, seed_b=1):
    tokenizer = ByteTokenizer()
    torch.manual_seed(seed_a)
    a = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=64)).eval()
    torch.manual_seed(seed_b)
    b = GPT(tiny_config(vocab_size=tokenizer.vocab_size, block_size=64)).eval()
    return tokenizer, a, b


def test_sample_logps_score_the_sampled_tokens_themselves():
    tokenizer, model, _ = models()
    samples = sample_answers(model, tokenizer, ["hello", "What is 2+2?"], max_new_tokens=12, seed=3)
    logps = sample_logps(model, samples, tokenizer.pad_id, "cpu")
    for sample, got in zip(samples, logps):
        ids = sample.prompt_ids + sample.answer_ids
        with torch.no_grad():
            log_probs = F.log_softmax(model(torch.tensor([ids]))[0][0], dim=-1)
        expected = sum(log_probs[t - 1, ids[t]].item() for t in range(len(sample.prompt_ids), len(ids)))
        assert got == pytest.approx(expected, abs=1e-4)
        assert len(sample.answer_ids) == 12 or sample.answer_ids[-1] == tokenizer.eos_id
        assert tokenizer.eos_id not in sample.answer_ids[:-1]


def test_kl_of_a_policy_with_itself_is_zero_and_positive_otherwise():
    tokenizer, policy, other = models()
    samples = sample_answers(policy, tokenizer, ["hello"] * 40, max_new_tokens=8, seed=0)
    assert sequence_kl(policy, policy, samples, tokenizer.pad_id, "cpu") == pytest.approx(0.0, abs=1e-6)
    assert sequence_kl(policy, other, samples, tokenizer.pad_id, "cpu") > 0


def test_prompts_too_long_for_the_context_keep_their_end(capsys):
    tokenizer, model, _ = models()
    long_prompt = "x" * 200 + " the end?"
    (sample,) = sample_answers(model, tokenizer, [long_prompt], max_new_tokens=16, seed=0)
    assert len(sample.prompt_ids) == 64 - 16
    assert bytes(sample.prompt_ids).decode().endswith("the end?\nAssistant: ")
    assert "1 of 1 prompts cut" in capsys.readouterr().out
    from minigpt.errors import InputError
    with pytest.raises(InputError, match="leaves no room for a prompt"):
        sample_answers(model, tokenizer, ["hi"], max_new_tokens=64)
