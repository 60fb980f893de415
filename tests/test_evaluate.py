"""Evaluation statistics against hand computations (the KL estimates: tests/test_kl.py)."""

import math

import pytest
import torch

from align.evaluate import mean_and_ci, win_rate
from align.sampling import sample_answers
from tests.test_kl import models


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
