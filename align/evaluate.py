"""Measuring alignment: sample answers, score them with the gold reward r*, compare policies.

- `sample_answers` / `generate_responses`: answers y ~ π(·|x) for many prompts at once
  (left-padded batches), as tokens and text.
- `mean_and_ci`: a mean with its 95% confidence interval, mean ± 1.96·s/√n.
- `win_rate`: how often one policy's answer beats another's on the same prompt (ties ½).
- `sequence_kl`: KL(π_θ‖π_ref) per sequence, estimated from samples y ~ π_θ, scored on
  the exact tokens sampled:   KL = E_{y ~ π_θ} [ log π_θ(y|x) − log π_ref(y|x) ]
- `best_of_n`: sample N answers from a policy and keep the one the reward model r_φ likes best.
"""

import math
from dataclasses import dataclass

import torch

from align.data import collate
from align.reward import score_sequences
from toyworld.template import format_prompt
from minigpt.errors import InputError
from minigpt.logps import get_batch_logps
from minigpt.model import pad_left


@dataclass
class Sample:
    """One sampled answer, kept as the very tokens the model read and wrote."""

    prompt_ids: list[int]  # the prompt as the model read it (its end, if it had to be cut)
    answer_ids: list[int]  # the sampled tokens, with the EOS only if the model sampled it
    text: str  # the answer as text, up to the EOS


@torch.no_grad()
def sample_answers(model, tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_k=None,
                   seed=0, device="cpu", batch_size=64) -> list[Sample]:
    """One answer y ~ π(·|x) per prompt, in left-padded batches.

    A prompt longer than block_size - max_new_tokens keeps its end; how many were cut is
    printed.
    """
    keep = model.config.block_size - max_new_tokens
    if keep < 1:
        raise InputError(f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in the "
                         f"model's context of {model.config.block_size} tokens")
    generator = torch.Generator(device=device).manual_seed(seed)
    samples, cut = [], 0
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        try:
            encoded = [tokenizer.encode(format_prompt(p)) for p in batch]
        except ValueError as error:  # a character outside a char tokenizer's vocabulary
            raise InputError(f"prompts: {error}") from None
        cut += sum(len(ids) > keep for ids in encoded)
        encoded = [ids[-keep:] for ids in encoded]
        idx, mask = pad_left(encoded, tokenizer.pad_id, device)  # (B, T)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                             eos_id=tokenizer.eos_id, attention_mask=mask, generator=generator)
        for prompt_ids, row in zip(encoded, out[:, idx.size(1):].tolist()):  # new tokens only
            if tokenizer.eos_id in row:
                row = row[: row.index(tokenizer.eos_id) + 1]  # up to and with the first EOS
            text = tokenizer.decode([i for i in row if i != tokenizer.eos_id], skip_special_tokens=True)
            samples.append(Sample(prompt_ids, row, text))
    if cut:
        print(f"sampling: {cut} of {len(prompts)} prompts cut to their last {keep} tokens")
    return samples


def generate_responses(model, tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_k=None,
                       seed=0, device="cpu", batch_size=64) -> list[str]:
    """One sampled answer per prompt, as text (see `sample_answers`)."""
    return [s.text for s in sample_answers(model, tokenizer, prompts, max_new_tokens, temperature,
                                           top_k, seed, device, batch_size)]


def mean_and_ci(values) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval), normal approximation."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_and_ci needs at least one value")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


def win_rate(ours, theirs) -> float:
    """Share of prompts where our score beats theirs; a tie counts one half."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError("win_rate needs two equally long, non-empty lists of scores")
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs))
    return wins / len(ours)


@torch.no_grad()
def sample_logps(model, samples: list[Sample], pad_id, device, batch_size=64) -> list[float]:
    """log π(y|x) of each sample's own answer tokens (its EOS counts only if it was sampled)."""
    out = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        examples = [(s.prompt_ids + s.answer_ids, [-100] * len(s.prompt_ids) + s.answer_ids)
                    for s in batch]
        input_ids, labels = collate(examples, pad_id)  # (B, T), labels -100 on prompt and padding
        logits, _ = model(input_ids.to(device))
        out += get_batch_logps(logits, labels.to(device)).tolist()
    return out


def sequence_kl(policy, reference, samples: list[Sample], pad_id, device) -> float:
    """Mean of log π_θ(y|x) − log π_ref(y|x) over answers y sampled from π_θ (KL ≥ 0)."""
    policy_logps = sample_logps(policy, samples, pad_id, device)
    reference_logps = sample_logps(reference, samples, pad_id, device)
    return sum(p - r for p, r in zip(policy_logps, reference_logps)) / len(samples)


@torch.no_grad()
def best_of_n(policy, reward_model, tokenizer, prompts, n, device, seed=0, **sampling) -> list[str]:
    """For each prompt, N sampled answers and the one with the highest r_φ(x, y)."""
    candidates = [sample_answers(policy, tokenizer, prompts, seed=seed + k, device=device, **sampling)
                  for k in range(n)]  # n lists of len(prompts)
    block, eos = reward_model.config.block_size, tokenizer.eos_id
    best = []
    for i in range(len(prompts)):
        answers = [candidates[k][i] for k in range(n)]
        sequences = []
        for s in answers:  # scored as in training: prompt + answer + EOS (if there is room)
            sequence = s.prompt_ids + s.answer_ids
            if sequence[-1] != eos and len(sequence) < block:
                sequence = sequence + [eos]
            sequences.append(sequence)
        scores = score_sequences(reward_model, sequences, tokenizer.pad_id, device)
        best.append(answers[int(scores.argmax())].text)
    return best
