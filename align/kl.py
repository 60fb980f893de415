"""KL(π_θ‖π_ref): how far the aligned policy has moved from the reference, measured on samples.

The RLHF objective keeps π_θ near π_ref with the penalty β·KL(π_θ‖π_ref), and DPO's
implicit reward β·log(π_θ/π_ref) is a log-ratio of the same two policies. For a prompt x
and answers y = (y_1, …, y_T) (ending with EOS when the model wrote one),

    KL(π_θ‖π_ref)(x) = E_{y ~ π_θ(·|x)} [ log π_θ(y|x) − log π_ref(y|x) ]        (definition)

Two estimates of it, both computed on answers y sampled from π_θ itself:

1. `sequence_kl`, the sampled log-ratio. Each answer gives

       k(y) = log π_θ(y|x) − log π_ref(y|x) = Σ_t [log π_θ(y_t|x,y_<t) − log π_ref(y_t|x,y_<t)],

   and the mean of k over answers y ~ π_θ is an unbiased estimate of the KL above: it is
   its definition, with the expectation replaced by a sample mean. A single k(y) may be
   negative (an answer π_ref likes more than π_θ does); only its expectation is ≥ 0.

2. `exact_token_kl`, the per-token form. At each position t of a sampled answer the
   next-token KL is computed exactly, over the whole vocabulary V:

       KL_t(y_<t) = Σ_{v∈V} π_θ(v|x,y_<t) · [log π_θ(v|x,y_<t) − log π_ref(v|x,y_<t)]  ≥ 0,

   and each answer gives Σ_t KL_t(y_<t), summed over the positions of its answer tokens
   (its EOS included when it was sampled). Why the same expectation: the chain rule of KL.
   Since log π(y|x) = Σ_t log π(y_t|x,y_<t),

       KL(π_θ‖π_ref)(x) = Σ_t E_{y_<t ~ π_θ} [ E_{y_t ~ π_θ(·|x,y_<t)} [log π_θ(y_t|·) − log π_ref(y_t|·)] ]
                        = E_{y ~ π_θ} [ Σ_t KL_t(y_<t) ],

   i.e. each sampled term log π_θ(y_t|·) − log π_ref(y_t|·) is replaced by its average over
   the next token given the prefix, which is exactly KL_t. (After an EOS the answer is over
   under both policies, so nothing more is added.) The result is never negative and has, in
   practice, a much smaller variance, since the randomness of the last token drawn at each
   position is averaged out. (For a sum over positions this is what one observes, not a
   theorem: the later prefixes still vary.)

The mean of either is taken over the samples (one per prompt, or several), with the half-
width of its 95% confidence interval, 1.96·s/√n (`align.evaluate.mean_and_ci`).

Caveats:
- Both need y ~ π_θ: temperature 1, no top-k or top-p (`Sample.from_the_policy_itself`).
  On answers drawn otherwise the mean log-ratio is the expectation under another
  distribution q, E_q[log π_θ − log π_ref], which is not KL(π_θ‖π_ref) and may be negative;
  the per-token sum would weigh the prefixes by q instead of π_θ. Both functions refuse such
  samples (ValueError). They cannot check that the samples came from this very `policy`:
  that is the caller's part.
- Answers cut at max_new_tokens (`finished=False`) are scored on the tokens sampled, with
  no EOS they did not sample. What both estimate is then the KL of the truncated
  distribution: of the law of the first max_new_tokens tokens of y under π_θ against the same
  under π_ref. It is at most the full KL(π_θ‖π_ref)(x) (the chain rule again: the full KL adds
  the positions after the cut, each ≥ 0), and equal to it when every answer finishes.
- A prompt longer than the context was cut to its end when sampling (`Sample.prompt_ids`);
  the KL is conditional on the prompt as the models read it.

Example:
    >>> samples = sample_answers(policy, tokenizer, prompts, max_new_tokens=32)  # T = 1
    >>> kl_report(policy, reference, samples, tokenizer.pad_id, "cpu")  # numbers for illustration
    {'kl': 0.41, 'kl_ci': 0.12, 'kl_exact_per_token': 0.39, 'kl_exact_per_token_ci': 0.03, 'n': 200}
"""

import math
from contextlib import contextmanager

import torch

from align.data import collate
from align.evaluate import mean_and_ci
from align.sampling import Sample
from minigpt.logps import get_batch_logps

NOT_FROM_THE_POLICY = (
    "{what}: {bad} of {n} samples were not drawn from π_θ itself ({how}). KL(π_θ‖π_ref) = "
    "E_{{y~π_θ}}[log π_θ(y|x) − log π_ref(y|x)] needs answers sampled at temperature 1 with no "
    "top-k or top-p filtering; on these samples the number would not be KL(π_θ‖π_ref){extra}. "
    "Sample them again with temperature=1.0, top_k=None, top_p=None."
)


def check_from_the_policy_itself(samples: list[Sample], what: str, extra: str = ""):
    """Raise ValueError unless there are samples and every one was drawn from π_θ itself."""
    if not samples:
        raise ValueError(f"{what}: no samples; the KL is a mean over answers y ~ π_θ")
    bad = [s for s in samples if not s.from_the_policy_itself]
    if bad:
        settings = sorted({f"temperature={s.temperature}, top_k={s.top_k}, top_p={s.top_p}"
                           for s in bad})
        raise ValueError(NOT_FROM_THE_POLICY.format(what=what, bad=len(bad), n=len(samples),
                                                    how="; ".join(settings), extra=extra))


@contextmanager
def evaluating(*models):
    """Eval mode (no dropout) inside the block, each model's own mode restored after."""
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def batches(samples: list[Sample], pad_id, device, batch_size):
    """(input_ids, labels), each (B, T), right-padded: prompt + answer, labels only on the answer."""
    for start in range(0, len(samples), batch_size):
        examples = [(s.prompt_ids + s.answer_ids, [-100] * len(s.prompt_ids) + s.answer_ids)
                    for s in samples[start : start + batch_size]]
        input_ids, labels = collate(examples, pad_id)  # labels -100 on prompt and padding
        yield input_ids.to(device), labels.to(device)


@torch.no_grad()
def sample_logps(model, samples: list[Sample], pad_id, device, batch_size=64) -> list[float]:
    """log π(y|x) of each sample's own answer tokens (its EOS counts only if it was sampled)."""
    out = []
    with evaluating(model):
        for input_ids, labels in batches(samples, pad_id, device, batch_size):
            logits, _ = model(input_ids)  # (B, T, vocab)
            out += get_batch_logps(logits, labels).tolist()
    return out


def token_kl(policy_logits, reference_logits, labels) -> torch.Tensor:
    """Σ_t Σ_v π_θ(v|·)(log π_θ(v|·) − log π_ref(v|·)) over the positions whose label counts.

    policy_logits, reference_logits: (B, T, vocab); labels: (B, T) with -100 where a token
    does not count. Shifted as in `get_batch_logps`: the logits at position t predict the
    label at t + 1. Computed in float32 at least (float64 stays float64). Returns (B,).
    """
    mask = labels[:, 1:] != -100  # (B, T-1): the positions that predict an answer token
    dtype = torch.promote_types(policy_logits.dtype, torch.float32)
    log_p = policy_logits[:, :-1].to(dtype).log_softmax(-1)  # (B, T-1, vocab) log π_θ(v|·)
    log_q = reference_logits[:, :-1].to(dtype).log_softmax(-1)  # (B, T-1, vocab) log π_ref(v|·)
    per_position = (log_p.exp() * (log_p - log_q)).sum(-1)  # (B, T-1): KL_t, each ≥ 0
    return torch.where(mask, per_position, 0.0).sum(-1)  # (B,)


@torch.no_grad()
def per_sample_kl(policy, reference, samples: list[Sample], pad_id, device,
                  batch_size=64) -> tuple[list[float], list[float]]:
    """For each sample y ~ π_θ: (log π_θ(y|x) − log π_ref(y|x), Σ_t KL_t(y_<t)).

    One forward pass of each model per batch gives both; no check of how y was sampled.
    """
    log_ratios, token_kls = [], []
    with evaluating(policy, reference):
        for input_ids, labels in batches(samples, pad_id, device, batch_size):
            policy_logits, _ = policy(input_ids)  # (B, T, vocab)
            reference_logits, _ = reference(input_ids)  # (B, T, vocab)
            log_ratio = get_batch_logps(policy_logits, labels) - get_batch_logps(reference_logits, labels)
            log_ratios += log_ratio.tolist()  # (B,)
            token_kls += token_kl(policy_logits, reference_logits, labels).tolist()  # (B,)
    return log_ratios, token_kls


def sequence_kl(policy, reference, samples: list[Sample], pad_id, device,
                batch_size=64) -> tuple[float, float]:
    """KL ≈ mean over y ~ π_θ of log π_θ(y|x) − log π_ref(y|x): (mean, 95% half-width).

    Unbiased; single terms (and, by chance, the mean) may be negative. Refuses samples not
    drawn from π_θ itself (ValueError).
    """
    check_from_the_policy_itself(samples, "sequence_kl", extra=" and may even be negative")
    log_ratios, _ = per_sample_kl(policy, reference, samples, pad_id, device, batch_size)
    return mean_and_ci(log_ratios)


def exact_token_kl(policy, reference, samples: list[Sample], pad_id, device,
                   batch_size=64) -> tuple[float, float]:
    """KL ≈ mean over y ~ π_θ of Σ_t KL(π_θ(·|x,y_<t) ‖ π_ref(·|x,y_<t)): (mean, 95% half-width).

    The same expectation as `sequence_kl` (the chain rule of KL), never negative, lower
    variance. Refuses samples not drawn from π_θ itself (ValueError).
    """
    check_from_the_policy_itself(samples, "exact_token_kl",
                                 extra=" (the prefixes y_<t would be weighed by another distribution)")
    _, token_kls = per_sample_kl(policy, reference, samples, pad_id, device, batch_size)
    return mean_and_ci(token_kls)


def kl_report(policy, reference, samples: list[Sample], pad_id, device, batch_size=64) -> dict:
    """Both estimates with their 95% half-widths, from one pass: the `kl` metric and beside it
    `kl_exact_per_token`. Refuses samples not drawn from π_θ itself (ValueError)."""
    check_from_the_policy_itself(samples, "kl_report", extra=" and may even be negative")
    log_ratios, token_kls = per_sample_kl(policy, reference, samples, pad_id, device, batch_size)
    kl, kl_ci = mean_and_ci(log_ratios)
    exact, exact_ci = mean_and_ci(token_kls)
    return {"kl": kl, "kl_ci": kl_ci, "kl_exact_per_token": exact,
            "kl_exact_per_token_ci": exact_ci, "n": len(samples)}


def best_of_n_kl(probabilities, keys, n: int) -> float:
    """KL(π_N‖π) of best-of-N, exactly, for a categorical π over a finite set of answers.

    probabilities: π(y) of each answer (summing to 1); keys: what best-of-N maximises for
    each (r_φ, or a tuple such as (finished, r_φ)); answers with equal keys tie, and the
    first drawn of them is kept, so a tied group's share is split in proportion to π.
    With the answers' groups sorted by key and F(g) = π(key ≤ g's), the kept answer is in
    group g with probability

        π_N(g) = F(g)^N − F(g−1)^N,     and  KL(π_N‖π) = Σ_g π_N(g) · log(π_N(g) / π(g))

    (within a group π_N/π is constant, so the sum over groups is the sum over answers).
    For many answers, none much likelier than the others, it approaches the bound
    log N − (N − 1)/N, which is the continuous case's exact value; with few answers or
    ties it is smaller.
    """
    groups = {}  # key -> π of the answers with that key
    for p, key in zip(probabilities, keys):
        groups[key] = groups.get(key, 0.0) + float(p)
    kl, below = 0.0, 0.0  # below: F of the groups before this one
    for key in sorted(groups):
        p = groups[key]
        kept = (below + p) ** n - below ** n  # π_N(g)
        if kept > 0:
            kl += kept * math.log(kept / p)
        below += p
    return kl
