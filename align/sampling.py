"""Sampling answers y ~ π(·|x): the one place where preferences, evaluation and RL sample.

Each answer is kept as the very tokens the model read and wrote (`Sample`), with the
text beside them for reading, and with the settings it was drawn with: a log-prob or a
KL computed later refers to exactly those tokens and that distribution. A sampled
answer that ran into `max_new_tokens` before the model wrote EOS is `finished=False`;
it is never given an EOS it did not sample.

Example:
    >>> samples = sample_answers(model, tokenizer, ["What is 2+2?"], max_new_tokens=16)
    >>> samples[0].text, samples[0].finished
    ('4.', True)
"""

from dataclasses import dataclass

import torch

from align.data import answer_takes_the_space, prompt_tokens
from minigpt.errors import InputError
from minigpt.model import pad_left


@dataclass
class Sample:
    """One sampled answer, as the tokens the model read and wrote."""

    prompt: str  # the prompt x as text (before the template)
    prompt_ids: list[int]  # the templated prompt as the model read it (its end, if it was cut)
    answer_ids: list[int]  # the sampled tokens, ending with EOS only if the model sampled it
    text: str  # the answer as text, up to the EOS
    finished: bool  # True when the model sampled EOS; False when max_new_tokens cut it
    temperature: float = 1.0  # how it was drawn: KL(π_θ‖π_ref) needs T = 1, no top-k/top-p
    top_k: int | None = None
    top_p: float | None = None

    @property
    def from_the_policy_itself(self) -> bool:
        """Drawn from π itself (T = 1, no filtering), so E over samples is E_{y~π}."""
        return self.temperature == 1.0 and self.top_k is None and self.top_p in (None, 1.0)


@torch.no_grad()
def sample_answers(model, tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_k=None,
                   top_p=None, seed=0, device="cpu", batch_size=64) -> list[Sample]:
    """One answer y ~ π(·|x) per prompt, in left-padded batches with the KV cache.

    temperature 0 is greedy. A prompt longer than block_size - max_new_tokens keeps its
    end; how many were cut is printed.
    """
    keep = model.config.block_size - max_new_tokens
    if keep < 1:
        raise InputError(f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in the "
                         f"model's context of {model.config.block_size} tokens")
    generator = torch.Generator(device=device).manual_seed(seed)
    space_opens_answer = answer_takes_the_space(tokenizer)
    samples, cut = [], 0
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        try:
            encoded = [prompt_tokens(tokenizer, p) for p in batch]
        except ValueError as error:  # a character outside a char tokenizer's vocabulary
            raise InputError(f"prompts: {error}") from None
        cut += sum(len(ids) > keep for ids in encoded)
        encoded = [ids[-keep:] for ids in encoded]
        idx, mask = pad_left(encoded, tokenizer.pad_id, device)  # (B, T)
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                             top_p=top_p, eos_id=tokenizer.eos_id, attention_mask=mask,
                             generator=generator)
        for prompt, prompt_ids, row in zip(batch, encoded, out[:, idx.size(1):].tolist()):
            finished = tokenizer.eos_id in row
            if finished:
                row = row[: row.index(tokenizer.eos_id) + 1]  # up to and with the first EOS
            text = tokenizer.decode([i for i in row if i != tokenizer.eos_id],
                                    skip_special_tokens=True)
            if space_opens_answer:  # the template's space, which the answer's first token took
                text = text.removeprefix(" ")
            samples.append(Sample(prompt, prompt_ids, row, text, finished, temperature, top_k, top_p))
    if cut:
        print(f"sampling: {cut} of {len(prompts)} prompts cut to their last {keep} tokens")
    return samples


def generate_responses(model, tokenizer, prompts, max_new_tokens=64, temperature=1.0, top_k=None,
                       top_p=None, seed=0, device="cpu", batch_size=64) -> list[str]:
    """One sampled answer per prompt, as text (see `sample_answers`)."""
    return [s.text for s in sample_answers(model, tokenizer, prompts, max_new_tokens, temperature,
                                           top_k, top_p, seed, device, batch_size)]
