"""Rollouts: answers y ~ π_θ(·|x) and everything RL reads about them, in one batch.

For N answers (k per prompt), `collect_rollouts` samples with `align.sampling` (the KV
cache, left-padded batches, temperature 1 and no top-k/top-p, so the log-probs and the KL
refer to π_θ itself; dropout is off), then lays prompt + answer out right-padded, (N, T),
and computes in one forward pass each:

    logprobs      (N, T-1)  log π_θ(y_t|x, y_<t) of each sampled token (the π_θ that sampled)
    ref_logprobs  (N, T-1)  log π_ref(y_t|x, y_<t), π_ref frozen
    values        (N, T-1)  V(s_t) of PPO's value head (None for RLOO)
    scores        (N,)      r_φ(x, y) read at the EOS, as the reward model was trained; an
                            answer cut at max_new_tokens (no EOS) is something r_φ never saw:
                            its score is r_φ − missing_eos_penalty (TRL's rule)

Column t of the (N, T-1) tensors is the prediction made at position t of the next token,
as in `minigpt.logps.token_logps`; `mask` is True where that token is an answer token.

Run (rollout speed against the pipeline's sampling, tokens per second):
    python -m align.rollouts --init runs/pipeline/sft --batch-size 64
"""

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from align.data import can_pack, collate, pack_sequences
from align.dpo import load_policy_and_reference
from align.reward import RewardModel, score_samples
from align.sampling import Sample, sample_answers
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.device import autocast_for, pick_device
from minigpt.logps import token_logps
from toyworld.world import train_prompts


@dataclass
class Rollouts:
    samples: list[Sample]  # N answers: the tokens, the text, finished or not
    input_ids: torch.Tensor  # (N, T) prompt + answer, right-padded
    labels: torch.Tensor  # (N, T) the answer's tokens, -100 on the prompt and the padding
    mask: torch.Tensor  # (N, T-1) True where the next token is an answer token
    logprobs: torch.Tensor | None  # (N, T-1) log π_θ_old(y_t|·), 0 off the answer
    ref_logprobs: torch.Tensor  # (N, T-1) log π_ref(y_t|·), 0 off the answer
    scores: torch.Tensor  # (N,) r_φ(x, y), less the penalty for a missing EOS
    finished: torch.Tensor  # (N,) bool: the answer ends with a sampled EOS
    values: torch.Tensor | None = None  # (N, T-1) V(s_t) (PPO)

    def __len__(self):
        return len(self.samples)

    def subset(self, rows: torch.Tensor) -> "Rollouts":
        """The rollouts at these rows (PPO's minibatches)."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return Rollouts([self.samples[i] for i in rows.tolist()], pick(self.input_ids),
                        pick(self.labels), pick(self.mask), pick(self.logprobs),
                        pick(self.ref_logprobs), pick(self.scores), pick(self.finished),
                        pick(self.values))


def layout(samples: list[Sample], pad_id, device):
    """(input_ids (N, T), labels (N, T)): prompt + answer right-padded, labels on the answer
    only."""
    examples = [(s.prompt_ids + s.answer_ids, [-100] * len(s.prompt_ids) + s.answer_ids)
                for s in samples]
    input_ids, labels = collate(examples, pad_id)  # labels -100 on prompt and padding
    return input_ids.to(device), labels.to(device)


def policy_logprobs(model, input_ids, labels, device):
    """(log π(y_t|·) (N, T-1), mask (N, T-1)) under the precision of every RL forward pass.

    input_ids, labels: (N, T) right-padded as `layout` makes them. The model runs on the
    N sequences packed into rows (align.data.pack_sequences: no padding computed, no
    attention from one sequence to another), or on the padded rows as they are for LSH
    attention, which reads a mask as padding only: the same log-probs up to float rounding.
    """
    with autocast_for(device):
        if not can_pack(model):
            logits, _ = model(input_ids)  # (N, T, vocab)
        else:
            # each sequence ends with its answer's last token: the last label that counts
            lengths = labels.size(1) - (labels != -100).flip(1).int().argmax(1)  # (N,)
            packed = pack_sequences([(ids[:n], target[:n]) for ids, target, n in zip(
                input_ids.tolist(), labels.tolist(), lengths.tolist())], pad_id=0)  # filler, never read
            logits, _ = model(packed.input_ids.to(device),
                              attention_mask=packed.attention_mask.to(device),
                              position_ids=packed.positions.to(device))  # (R, L, vocab)
            logits = packed.unpack(logits)  # (N, L, vocab): one row per sequence again
    # Packed, L is the longest of these N and may be shorter than T (a minibatch of
    # rollouts): the columns past it hold no counted token, and come back as zeros
    per_token, mask = token_logps(logits, labels[:, : logits.size(1)])  # (N, L-1)
    missing = labels.size(1) - logits.size(1)
    return F.pad(per_token, (0, missing)), F.pad(mask, (0, missing))  # (N, T-1) each


@torch.no_grad()
def collect_rollouts(policy, reference, reward_model, tokenizer, prompts: list[str],
                     max_new_tokens, seed, device, missing_eos_penalty=1.0, value_model=None,
                     batch_size=64, with_policy_logprobs=True) -> Rollouts:
    """Sample one answer per entry of `prompts` (repeat a prompt k times for k answers) and
    score it: π_θ's and π_ref's token log-probs, r_φ, and PPO's values (see the module).

    with_policy_logprobs=False leaves `logprobs` empty for a caller that takes them from
    its own forward pass of the same weights (RLOO's single gradient step)."""
    samples = sample_answers(policy, tokenizer, prompts, max_new_tokens=max_new_tokens,
                             temperature=1.0, seed=seed, device=device, batch_size=batch_size)
    input_ids, labels = layout(samples, tokenizer.pad_id, device)
    ref_logprobs, mask = policy_logprobs(reference, input_ids, labels, device)
    logprobs = None
    if with_policy_logprobs:
        was_training = policy.training
        policy.eval()
        logprobs, _ = policy_logprobs(policy, input_ids, labels, device)
        policy.train(was_training)
    with autocast_for(device):  # all N in one batch, at the last real token
        scores = score_samples(reward_model, samples, tokenizer.pad_id, device,
                               missing_eos_penalty, batch_size=len(samples))  # (N,)
    finished = torch.tensor([s.finished for s in samples], device=device)
    values = None
    if value_model is not None:
        with autocast_for(device):
            values = value_model.values(input_ids)[:, :-1].float()  # (N, T-1): V before token t+1
        values = torch.where(mask, values, 0.0)
    return Rollouts(samples, input_ids, labels, mask, logprobs, ref_logprobs, scores, finished,
                    values)


@dataclass
class RolloutSpeedConfig:
    init: str = field(default="runs/pipeline/sft", metadata={
        "help": "an SFT run folder or ckpt.pt"})
    batch_size: int = field(default=64, metadata={"help": "answers sampled at once"})
    prompts: int = field(default=256, metadata={"help": "answers to time"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest answer"})
    repeats: int = field(default=3, metadata={"help": "timings of each, the fastest kept"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})


def rollout_speed(config: RolloutSpeedConfig) -> dict:
    """Tokens per second: the pipeline's sampling (one answer per prompt) against RL rollouts
    (k = 4 answers per prompt, with π_θ's and π_ref's log-probs and r_φ), same batch size.

    Each is timed --repeats times, in turn, on other seeds; the fastest of each is kept, so
    that a moment of another process's load does not decide the ratio."""
    device = pick_device(config.device)
    policy, reference, tokenizer = load_policy_and_reference(config.init, device,
                                                             "align.rollouts --init")
    prompts = train_prompts(config.prompts, 0)
    repeated = [p for p in prompts[: config.prompts // 4] for _ in range(4)]  # k = 4 a prompt
    scorer = reference_scorer(policy)
    runs = {
        "pipeline sampling": lambda seed: sample_answers(
            policy, tokenizer, prompts, config.max_new_tokens, seed=seed, device=device,
            batch_size=config.batch_size),
        "RL rollouts (generation only)": lambda seed: sample_answers(
            policy, tokenizer, repeated, config.max_new_tokens, seed=seed, device=device,
            batch_size=config.batch_size),
        "RL rollouts (with scoring)": lambda seed: collect_rollouts(
            policy, reference, scorer, tokenizer, repeated, config.max_new_tokens, seed, device,
            batch_size=config.batch_size).samples,
    }
    timings = {}
    for repeat in range(config.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            samples = run(repeat)
            seconds = time.perf_counter() - start
            tokens = sum(len(s.answer_ids) for s in samples)
            if name not in timings or tokens / seconds > timings[name]["tokens_per_second"]:
                timings[name] = {"tokens": tokens, "seconds": seconds,
                                 "tokens_per_second": tokens / seconds}
    return timings


def reference_scorer(policy):
    """A reward model of π_θ's own size (untrained head) for timing the scoring pass, one
    that reads its likelihood as the pipeline's does."""
    scorer = RewardModel(policy.config, reads_likelihood=True).to(next(policy.parameters()).device).eval()
    scorer.gpt.load_state_dict(policy.state_dict())
    return scorer


def main(argv=None):
    parser = parser_from_dataclass(RolloutSpeedConfig, __doc__)
    timings = rollout_speed(RolloutSpeedConfig(**given_flags(parser.parse_args(argv))))
    base = timings["pipeline sampling"]["tokens_per_second"]
    for name, t in timings.items():
        print(f"{name:32s} {t['tokens']:6d} tokens in {t['seconds']:6.2f} s: "
              f"{t['tokens_per_second']:8.0f} tokens/s ({t['tokens_per_second'] / base:.2f}×)")
    return timings


if __name__ == "__main__":
    run_main(main)
