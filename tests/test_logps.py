"""get_batch_logps: the lecture's shift, mask, gather and sum, against a brute-force loop."""

import math

import pytest
import torch

from minigpt import get_batch_logps


def brute_force_logps(logits, labels, average=False, ignore=-100):
    """One position at a time, in float64: Σ_t log softmax(logits[t])[labels[t+1]]."""
    results = []
    for b in range(logits.size(0)):
        total, count = 0.0, 0
        for t in range(logits.size(1) - 1):
            target = int(labels[b, t + 1])
            if target == ignore:
                continue
            row = logits[b, t].double()
            total += (row[target] - torch.logsumexp(row, dim=0)).item()
            count += 1
        results.append(total / count if average and count else (0.0 if average else total))
    return torch.tensor(results, dtype=torch.float64)


def random_batch(seed=0, B=4, T=9, V=11):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, V, (B, T), generator=generator)
    labels[torch.rand(B, T, generator=generator) < 0.3] = -100  # prompt and padding
    labels[0, :] = -100  # a row with nothing to score
    return logits, labels


@pytest.mark.parametrize("average", [False, True])
def test_matches_a_brute_force_loop(average):
    for seed in range(5):
        logits, labels = random_batch(seed)
        got = get_batch_logps(logits, labels, average_log_prob=average)
        torch.testing.assert_close(got, brute_force_logps(logits, labels, average),
                                   rtol=0, atol=1e-10)


def test_never_changes_its_inputs():
    logits, labels = random_batch()
    logits_before, labels_before = logits.clone(), labels.clone()
    get_batch_logps(logits, labels)
    get_batch_logps(logits, labels, average_log_prob=True)
    assert torch.equal(logits, logits_before) and torch.equal(labels, labels_before)


def test_an_all_masked_row_gives_zero_not_nan():
    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[1, 3] = 2
    for average in (False, True):
        out = get_batch_logps(logits, labels, average_log_prob=average)
        assert out[0] == 0 and not torch.isnan(out).any()


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


def test_custom_pad_id_and_half_precision_and_gradients():
    logits, labels = random_batch()
    relabelled = labels.masked_fill(labels == -100, 99)
    torch.testing.assert_close(get_batch_logps(logits, relabelled, label_pad_token_id=99),
                               get_batch_logps(logits, labels))
    half = get_batch_logps(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half.double(), get_batch_logps(logits, labels), atol=0.2, rtol=0.02)
    leaf = logits.clone().requires_grad_()
    get_batch_logps(leaf, labels).sum().backward()
    assert leaf.grad[0].abs().sum() == 0  # the all-masked row gets no gradient
    assert leaf.grad[1:].abs().sum() > 0


def test_a_minus_infinity_at_a_masked_position_gives_no_nan():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 0] = float("-inf")  # a token the model rules out, at a position that is not scored
    labels = torch.tensor([[-100, 0, 2]])  # position 0 would predict token 0: masked
    labels_masked = labels.clone()
    labels_masked[0, 1] = -100
    out = get_batch_logps(logits, labels_masked)
    assert torch.isfinite(out).all() and out.item() == pytest.approx(math.log(0.25))
