"""Measuring alignment: sample answers, score them with the gold reward r*, compare policies.

- `generate_responses`: answers y ~ π(·|x) for many prompts at once (left-padded batches).
- `mean_and_ci`: a mean with its 95% confidence interval, mean ± 1.96·s/√n.
- `win_rate`: how often one policy's answer beats another's on the same prompt (ties ½).
- `sequence_kl`: KL(π_θ‖π_ref) per sequence, estimated from samples y ~ π_θ:
      KL = E_{y ~ π_θ} [ log π_θ(y|x) − log π_ref(y|x) ]
- `best_of_n`: sample N answers from a policy and keep the one the reward model r_φ likes best.
"""

import math

import torch

from align.data import TruncationStats, collate, tokenize_example
from align.reward import score_sequences
from align.template import format_prompt
from minigpt.logps import get_batch_logps
from minigpt.model import pad_left


@torch.no_grad()
def generate_responses(model, tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_k=None,
                       seed=0, device="cpu", batch_size=64) -> list[str]:
    """One sampled answer per prompt: the text after the template's separator, up to EOS."""
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    block = model.config.block_size
    responses = []
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        encoded = [tokenizer.encode(format_prompt(p))[-(block - max_new_tokens):] for p in batch]
        idx, mask = pad_left(encoded, tokenizer.pad_id, device)  # (B, T)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                             eos_id=tokenizer.eos_id, attention_mask=mask, generator=generator)
        for row in out[:, idx.size(1):].tolist():  # the new tokens only
            if tokenizer.eos_id in row:
                row = row[: row.index(tokenizer.eos_id)]
            responses.append(tokenizer.decode(row, skip_special_tokens=True))
    return responses


def mean_and_ci(values) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval), normal approximation."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


def win_rate(ours, theirs) -> float:
    """Share of prompts where our score beats theirs; a tie counts one half."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs))
    return wins / len(ours)


@torch.no_grad()
def sequence_logps(model, tokenizer, prompts, responses, max_length, device, batch_size=64):
    """log π(y|x) summed over the response tokens and EOS, for each (prompt, response)."""
    stats = TruncationStats()
    out = []
    for start in range(0, len(prompts), batch_size):
        examples = [tokenize_example(tokenizer, p, r, max_length, max_length // 2, stats)
                    for p, r in zip(prompts[start : start + batch_size],
                                    responses[start : start + batch_size])]
        input_ids, labels = collate(examples, tokenizer.pad_id)
        logits, _ = model(input_ids.to(device))
        out += get_batch_logps(logits, labels.to(device)).tolist()
    return out


def sequence_kl(policy, reference, tokenizer, prompts, responses, max_length, device) -> float:
    """Mean of log π_θ(y|x) − log π_ref(y|x) over answers sampled from π_θ (≥ 0 on average)."""
    policy_logps = sequence_logps(policy, tokenizer, prompts, responses, max_length, device)
    reference_logps = sequence_logps(reference, tokenizer, prompts, responses, max_length, device)
    return sum(p - r for p, r in zip(policy_logps, reference_logps)) / len(prompts)


@torch.no_grad()
def best_of_n(policy, reward_model, tokenizer, prompts, n, max_length, device, seed=0, **sampling):
    """For each prompt, N sampled answers and the one with the highest r_φ(x, y)."""
    candidates = [generate_responses(policy, tokenizer, prompts, seed=seed + k, device=device,
                                     **sampling) for k in range(n)]  # n lists of len(prompts)
    best = []
    for i, prompt in enumerate(prompts):
        answers = [candidates[k][i] for k in range(n)]
        stats = TruncationStats()
        sequences = [tokenize_example(tokenizer, prompt, a, max_length, max_length // 2, stats)[0]
                     for a in answers]
        scores = score_sequences(reward_model, sequences, tokenizer.pad_id, device)
        best.append(answers[int(scores.argmax())])
    return best
