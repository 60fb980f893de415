"""get_batch_logps beyond its exercise's checks (exercises/checks/scoring.py, run against the
reference by tests/test_exercises.py): a closed form, the shape error, half precision."""

import math

import pytest
import torch

from exercises.checks.scoring import random_batch
from minigpt import get_batch_logps


def test_uniform_logits_give_length_times_log_one_over_v():
    logits = torch.zeros(1, 6, 4)
    labels = torch.tensor([[-100, -100, 1, 2, 3, 0]])  # 4 scored tokens
    torch.testing.assert_close(get_batch_logps(logits, labels), torch.tensor([4 * math.log(0.25)]))
    torch.testing.assert_close(get_batch_logps(logits, labels, average_log_prob=True),
                               torch.tensor([math.log(0.25)]))


def test_first_label_is_never_scored_and_shapes_are_checked():
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[3, 1, 2, 4]])
    only_rest = labels.clone()
    only_rest[0, 0] = -100  # the first token has no prediction before it
    assert torch.equal(get_batch_logps(logits, labels), get_batch_logps(logits, only_rest))
    with pytest.raises(ValueError, match="must share batch and sequence"):
        get_batch_logps(logits, labels[:, :3])


def test_half_precision_logits_are_scored_in_float32():
    logits, labels = random_batch()
    half = get_batch_logps(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.double(), get_batch_logps(logits, labels), atol=0.2, rtol=0.02)
