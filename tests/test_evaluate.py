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


def test_best_of_n_keeps_each_prompts_finished_answer_that_r_phi_scores_highest(monkeypatch):
    import align.compare
    from align.compare import best_of_n_samples
    from align.reward import RewardModel
    from align.sampling import Sample

    tokenizer, policy, _ = models()
    torch.manual_seed(5)
    reward_model = RewardModel(policy.config).eval()
    prompts = ["hello", "What is 2+2?", "Where is Paris?", "hi"]
    generator = torch.Generator().manual_seed(0)
    candidates = [[Sample(prompt, tokenizer.encode(prompt),
                          torch.randint(32, 127, (2 + k + i,), generator=generator).tolist(), "", True)
                   for i, prompt in enumerate(prompts)] for k in range(3)]  # [k][i]
    scores = torch.tensor([[reward_model(torch.tensor([s.prompt_ids + s.answer_ids]),
                                         torch.tensor([len(s.prompt_ids + s.answer_ids)])).item()
                            for s in answers] for answers in candidates])  # (3, prompts), one at a time
    top = scores.argmax(0)
    for i in range(3):  # r_φ's favourite was cut at max_new_tokens: the best finished one wins
        candidates[int(top[i])][i].finished = False
    for k in range(3):  # every answer to the last prompt was cut: r_φ's favourite wins
        candidates[k][3].finished = False
    expected = [candidates[int(scores[:, i].masked_fill(torch.arange(3) == top[i], -1e9).argmax())][i]
                for i in range(3)] + [candidates[int(top[3])][3]]
    monkeypatch.setattr(align.compare, "sample_answers",
                        lambda model, tok, ps, seed, **kw: candidates[seed - 4])
    best = best_of_n_samples(policy, reward_model, tokenizer, prompts, 3, "cpu", seed=4)
    assert all(picked is wanted for picked, wanted in zip(best, expected))
