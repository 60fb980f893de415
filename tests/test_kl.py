"""KL(π_θ‖π_ref) from samples, against the exact KL enumerated over every possible answer.

A GPT with a vocabulary of 3 tokens, a one-token prompt and answers of at most 2 tokens
has only 9 (or, with an EOS, 7) possible answers y: the exact
    KL(π_θ‖π_ref) = Σ_y π_θ(y) (log π_θ(y) − log π_ref(y))
is a finite sum, computed here from each model's softmax on each full sequence in float64,
independently of align.kl.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from align.kl import (exact_token_kl, kl_report, per_sample_kl, sample_logps, sequence_kl,
                      token_kl)
from align.sampling import Sample, sample_answers
from minigpt import GPT, ByteTokenizer, GPTConfig
from tests.conftest import tiny_config

PROMPT = [0]  # one prompt token
EOS = PAD = 2  # in the EOS test, token 2 ends an answer; the pad id equals the EOS id
TWO_TOKEN_ANSWERS = [[a, b] for a in range(3) for b in range(3)]  # all 9
ANSWERS_WITH_EOS = [[EOS]] + [[a, b] for a in (0, 1) for b in range(3)]  # all 7 when EOS = 2 ends


def tiny_gpt(seed, dropout=0.0) -> GPT:
    """Vocabulary 3; weights N(0, 0.3²) so that two seeds give clearly different policies."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=3, block_size=8, n_layer=1, n_head=1, n_embd=8, dropout=dropout))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model.eval()


def sample(answer, finished=False, temperature=1.0, top_k=None, top_p=None) -> Sample:
    return Sample("x", list(PROMPT), list(answer), "", finished, temperature, top_k, top_p)


def samples_for(answers, eos=None):
    return [sample(a, finished=eos is not None and a[-1] == eos) for a in answers]


def brute_force_log_prob(model, answer) -> float:
    """log π(y|x) = Σ_t log softmax(logits)[t-1, w_t] over the answer tokens, in float64."""
    ids = PROMPT + list(answer)
    with torch.no_grad():
        log_probs = F.log_softmax(model(torch.tensor([ids]))[0][0].double(), dim=-1)  # (T, 3)
    return sum(log_probs[t - 1, ids[t]].item() for t in range(len(PROMPT), len(ids)))


def exact_kl(policy, reference, answers):
    """(Σ_y π_θ(y)(log π_θ(y) − log π_ref(y)), the probabilities π_θ(y)) over every answer y."""
    probs = [math.exp(brute_force_log_prob(policy, y)) for y in answers]
    assert sum(probs) == pytest.approx(1.0, abs=1e-9)  # the answers are every possible one
    kl = sum(p * (brute_force_log_prob(policy, y) - brute_force_log_prob(reference, y))
             for p, y in zip(probs, answers))
    return kl, probs


@pytest.fixture(scope="module")
def policies():
    return tiny_gpt(1), tiny_gpt(2)  # π_θ, π_ref


@pytest.mark.parametrize("answers, eos", [(TWO_TOKEN_ANSWERS, None), (ANSWERS_WITH_EOS, EOS)],
                         ids=["two-token-answers", "answers-ending-at-eos"])
def test_both_estimators_have_the_exact_kl_as_expectation(policies, answers, eos):
    policy, reference = policies
    exact, probs = exact_kl(policy, reference, answers)
    log_ratios, token_kls = per_sample_kl(policy, reference, samples_for(answers, eos), PAD, "cpu")
    expected_log_ratio = sum(p * k for p, k in zip(probs, log_ratios))
    expected_token_kl = sum(p * k for p, k in zip(probs, token_kls))
    print(f"\n{len(answers)} answers: exact KL {exact:.6f}, E[log-ratio] {expected_log_ratio:.6f}, "
          f"E[per-token KL] {expected_token_kl:.6f}")
    assert exact > 0.1  # the two policies really differ
    assert expected_log_ratio == pytest.approx(exact, abs=1e-5)  # (b)
    assert expected_token_kl == pytest.approx(exact, abs=1e-5)  # (a): the chain rule of KL
    assert min(token_kls) >= 0.0 and min(log_ratios) < 0.0  # one answer π_ref prefers


def test_per_token_kl_of_one_answer_by_hand(policies):
    """KL of the next token after the prompt, plus after the prompt and y_1 (EOS counted)."""
    policy, reference = policies

    def next_token_kl(prefix):
        with torch.no_grad():
            p = F.log_softmax(policy(torch.tensor([prefix]))[0][0, -1].double(), -1)
            q = F.log_softmax(reference(torch.tensor([prefix]))[0][0, -1].double(), -1)
        return (p.exp() * (p - q)).sum().item()

    answers = [[1, 0], [1, EOS], [EOS]]
    _, got = per_sample_kl(policy, reference, samples_for(answers, EOS), PAD, "cpu")
    by_hand = [next_token_kl(PROMPT) + next_token_kl(PROMPT + [1])] * 2 + [next_token_kl(PROMPT)]
    assert got == pytest.approx(by_hand, abs=1e-6)


def test_monte_carlo_estimates_fall_in_their_intervals_and_per_token_is_tighter(policies):
    policy, reference = policies
    exact, probs = exact_kl(policy, reference, TWO_TOKEN_ANSWERS)
    generator = torch.Generator().manual_seed(0)
    draws = torch.multinomial(torch.tensor(probs), 4000, replacement=True, generator=generator)
    samples = [sample(TWO_TOKEN_ANSWERS[i]) for i in draws.tolist()]  # y ~ π_θ
    report = kl_report(policy, reference, samples, PAD, "cpu", batch_size=1000)
    kl, kl_half = report["kl"], report["kl_ci"]
    token, token_half = report["kl_exact_per_token"], report["kl_exact_per_token_ci"]
    print(f"\nexact KL {exact:.4f}; sampled {kl:.4f} ± {kl_half:.4f}; "
          f"per-token {token:.4f} ± {token_half:.4f} (n = {report['n']})")
    assert report["n"] == 4000
    assert abs(kl - exact) < 3 * kl_half
    assert abs(token - exact) < 3 * token_half
    assert token_half < kl_half / 2


def test_kl_report_holds_both_estimates(policies):
    policy, reference = policies
    samples = samples_for(ANSWERS_WITH_EOS, EOS)
    report = kl_report(policy, reference, samples, PAD, "cpu")
    kl, kl_half = sequence_kl(policy, reference, samples, PAD, "cpu")
    token, token_half = exact_token_kl(policy, reference, samples, PAD, "cpu")
    assert report == pytest.approx({"kl": kl, "kl_ci": kl_half, "kl_exact_per_token": token,
                                    "kl_exact_per_token_ci": token_half, "n": 7})


def test_kl_of_a_policy_with_itself_is_exactly_zero(policies):
    policy, _ = policies
    samples = samples_for(ANSWERS_WITH_EOS, EOS) * 3
    assert sequence_kl(policy, policy, samples, PAD, "cpu") == (0.0, 0.0)
    assert exact_token_kl(policy, policy, samples, PAD, "cpu") == (0.0, 0.0)


def test_padding_and_batching_do_not_change_the_numbers(policies):
    """Answers of different lengths in one right-padded batch, pad id = EOS id: as one by one."""
    policy, reference = policies
    samples = samples_for([[EOS], [1, 1], [0, EOS], [EOS], [1, 0]], EOS)
    together = per_sample_kl(policy, reference, samples, PAD, "cpu", batch_size=64)
    one_by_one = per_sample_kl(policy, reference, samples, PAD, "cpu", batch_size=1)
    assert together[0] == pytest.approx(one_by_one[0], abs=1e-6)
    assert together[1] == pytest.approx(one_by_one[1], abs=1e-6)
    assert sample_logps(policy, samples, PAD, "cpu") == pytest.approx(
        [brute_force_log_prob(policy, s.answer_ids) for s in samples], abs=1e-5)


def test_token_kl_counts_only_labelled_positions():
    logits_p = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0))
    logits_q = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([[-100, 1, 2, -100], [-100, -100, -100, -100]])  # positions 0 and 1 count
    p, q = logits_p.double().log_softmax(-1), logits_q.double().log_softmax(-1)
    by_hand = sum((p[0, t].exp() * (p[0, t] - q[0, t])).sum().item() for t in (0, 1))
    got = token_kl(logits_p, logits_q, labels)
    assert got.tolist() == pytest.approx([by_hand, 0.0], abs=1e-6)


def test_dropout_is_off_while_scoring_and_the_mode_is_restored():
    policy = tiny_gpt(1, dropout=0.5).train()
    samples = samples_for(TWO_TOKEN_ANSWERS)
    first, second = (sample_logps(policy, samples, PAD, "cpu") for _ in range(2))
    assert first == second and policy.training
    assert first == pytest.approx([brute_force_log_prob(policy.eval(), y) for y in TWO_TOKEN_ANSWERS],
                                  abs=1e-5)


@pytest.mark.parametrize("how", [dict(temperature=0.7), dict(top_k=2), dict(top_p=0.9)],
                         ids=["temperature-0.7", "top-k-2", "top-p-0.9"])
@pytest.mark.parametrize("estimate", [sequence_kl, exact_token_kl, kl_report],
                         ids=lambda f: f.__name__)
def test_samples_not_from_the_policy_itself_are_refused(policies, how, estimate):
    policy, reference = policies
    samples = samples_for(TWO_TOKEN_ANSWERS) + [sample([0, 1], **how)]
    with pytest.raises(ValueError, match=r"1 of 10 samples were not drawn from π_θ itself") as error:
        estimate(policy, reference, samples, PAD, "cpu")
    assert "would not be KL(π_θ‖π_ref)" in str(error.value)
    assert "temperature=1.0, top_k=None, top_p=None" in str(error.value)
    if estimate is not exact_token_kl:
        assert "may even be negative" in str(error.value)


def test_top_p_one_is_the_policy_itself_and_no_samples_is_an_error(policies):
    policy, reference = policies
    kl, _ = sequence_kl(policy, reference, [sample([0, 1], top_p=1.0)] * 2, PAD, "cpu")
    assert kl == pytest.approx(brute_force_log_prob(policy, [0, 1])
                               - brute_force_log_prob(reference, [0, 1]), abs=1e-5)
    with pytest.raises(ValueError, match="no samples"):
        exact_token_kl(policy, reference, [], PAD, "cpu")


# ------------------------------------------------------- with sampled answers (byte tokenizer)
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


def test_kl_of_sampled_answers_is_zero_with_itself_and_positive_otherwise():
    tokenizer, policy, other = models()
    samples = sample_answers(policy, tokenizer, ["hello"] * 40, max_new_tokens=8, seed=0)
    assert sequence_kl(policy, policy, samples, tokenizer.pad_id, "cpu")[0] == pytest.approx(0.0, abs=1e-6)
    assert exact_token_kl(policy, policy, samples, tokenizer.pad_id, "cpu")[0] == pytest.approx(0.0, abs=1e-6)
    assert sequence_kl(policy, other, samples, tokenizer.pad_id, "cpu")[0] > 0
    assert exact_token_kl(policy, other, samples, tokenizer.pad_id, "cpu")[0] > 0
    greedy = sample_answers(policy, tokenizer, ["hello"] * 2, max_new_tokens=8, temperature=0.0)
    with pytest.raises(ValueError, match="temperature=0.0"):
        sequence_kl(policy, other, greedy, tokenizer.pad_id, "cpu")
