"""RLHF: optimise the lecture's objective directly, by RL on the language model.

    J_RLHF = max_{π_θ} E_{x~D, y~π_θ(y|x)} [ r_φ(x, y) − β·D_KL(π_θ(y|x) ‖ π_ref(y|x)) ]

π_θ starts as the SFT model and π_ref is that model, frozen; r_φ is the Bradley-Terry reward
model of `align.reward`. Each step:

    1. rollouts: k answers y ~ π_θ(·|x) to each of B prompts x ~ D (align.rollouts:
       temperature 1, the KV cache, dropout off), scored by r_φ at the EOS; an answer with
       no EOS within --max-new-tokens gets r_φ − --missing-eos-penalty;
    2. per-token rewards r_t = −β·(log π_θ(y_t|·) − log π_ref(y_t|·)), + r_φ(x, y) on the
       last token; their sum is r_φ − β·log π_θ(y|x)/π_ref(y|x), whose mean over y ~ π_θ is
       J at x (align.rl_losses);
    3. an update, by one of two algorithms:
       rloo  REINFORCE leave-one-out (Ahmadian et al. 2024): return R_i = Σ_t r_t, advantage
             A_i = R_i − mean of the other k − 1 answers' returns, one gradient step on
             −mean_i A_i·log π_θ(y_i|x). The cat's REINFORCE (lesson 5), with an answer as
             the action and the other answers as the baseline.
       ppo   the clipped objective (Schulman et al. 2017): a value head V (initialised from
             r_φ), GAE advantages (γ = 1, λ = 0.95) whitened over the batch, then
             --num-ppo-epochs passes of --num-mini-batches minibatches of the clipped policy
             loss + --vf-coef × the clipped value loss.

metrics.jsonl, each step, named as TRL names them: `objective/kl` (mean Σ_t of
log π_θ − log π_ref over the rollouts), `objective/entropy` (mean −log π_θ(y|x)),
`objective/non_score_reward` (mean −β·Σ_t ...), `objective/scores` (mean r_φ),
`objective/rlhf_reward` (their sum: the sample estimate of J), `policy/approxkl_avg`,
`policy/clipfrac_avg`, `loss/policy_avg`, `loss/value_avg` (PPO only: RLOO has no value
head), `val/ratio`, `val/num_eos_tokens`; and `objective/gold_scores`, the gold reward r*
of the same rollouts, which RL never sees. RLOO makes one update on answers of the very
weights it updates: its ratio is exactly 1, its approxkl and clipfrac exactly 0.
Every --eval-interval steps (and at step 0): π_θ's own answers to the held-out prompts,
`eval_gold_reward` (r*, with a bootstrap interval), `eval_scores` (r_φ), `eval_kl` and
`eval_kl_exact_per_token` (align.kl), `eval_right_share`, `eval_distinct_answers`.

A collapse, π_θ giving one pleasant answer r_φ likes to every prompt, is watched by
align.breakdown's rule: share(a) = |{x : π_θ answered x with a}| / |X| over the distinct
prompts X, collapsed when the most common answer's share exceeds COLLAPSE_SHARE (a tenth)
and it went to two prompts at least.
Each evaluation logs `eval_top_answer` (its text), `eval_top_answer_count` (prompts given
it) and `eval_top_answer_share`, and prints a line `step 50: collapsing: "..." given to
38% of the 128 held-out prompts` beside the bar when the rule says collapsed. Each step
logs `objective/top_answer_share` of its rollouts, a trend to read, not a verdict: with
k answers to each of B prompts, an answer π_θ gives with probability q anywhere reaches
a share near 1 − (1 − q)^k of the prompts, in steps of 1/B (a policy that says "I don't
know." 3% of the time reaches 11% with k = 4), so the printed line and the summary's
`collapse` ({"answer", "share", "collapsed", "first_step", "threshold"}) read the
evaluations only, one answer to each distinct prompt. Under torchrun the rollouts' share
is the mean over ranks of each rank's share among its own prompts.

Under torchrun (minigpt.distributed) each of N ranks takes its --batch-size prompts of
every global batch of N·batch_size, samples and scores its own rollouts (seeded by step
and rank), and DDP averages the gradients of π_θ (and of PPO's value head). RLOO's
baselines stay within one prompt's k answers, so they are those of one process; PPO
whitens the advantages over each rank's rollouts, as TRL does on each process, and its
losses are weighted by every rank's answer tokens. Rank 0 alone evaluates and writes.

Run:
    python -m align.rlhf --init runs/pipeline/sft --reward runs/pipeline/reward \\
        --data runs/pipeline/data/pairs_train.jsonl \\
        --eval-data runs/pipeline/data/pairs_heldout.jsonl
    python -m align.rlhf ... --algorithm ppo --out-dir runs/rlhf-ppo
    torchrun --standalone --nproc_per_node 2 -m align.rlhf ...       # 2 processes
"""

import dataclasses
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from tqdm import tqdm

from align.breakdown import COLLAPSE_SHARE, collapsed, most_common_answer
from align.common import (StageConfig, checkpoint_to_resume, continue_from, load_stage,
                          require, save_stage, shuffled_batches, start_run)
from align.compare import evaluate_point, point_metrics
from align.data import read_jsonl, tokenizer_fingerprint
from align.dpo import load_policy_and_reference
from align.gold import gold_reward
from align.reward import RewardModel, load_reward_model
from align.rl_losses import (gae, kl_penalized_rewards, masked_mean, ppo_clip_loss, rloo_advantages,
                             rloo_loss, value_clip_loss, whiten)
from align.rollouts import collect_rollouts, policy_logprobs
from minigpt import distributed
from minigpt.checkpoint import load_weights, save_checkpoint
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main, show_progress
from minigpt.device import autocast_for, pick_device
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder
from minigpt.optim import learning_rate_at, make_optimizer, set_learning_rate
from minigpt.runlog import column

ALGORITHMS = ("rloo", "ppo")
VALUE_NAME = "value.pt"  # PPO's value head, beside ckpt.pt, written at the same steps


@dataclass
class RLHFConfig(StageConfig):
    """RLHF's settings; the names of TRL's RLOOConfig/PPOConfig where they exist (TRL calls
    β kl_coef)."""

    out_dir: str = field(default="runs/rlhf", metadata={"help": "run folder to write"})
    reward: str = field(default="", metadata={
        "help": "the reward model r_φ (align.reward's run folder)"})
    data: str = field(default="", metadata={
        "help": "training prompts: a JSONL file with a 'prompt' per row (preference pairs do)"})
    eval_data: str = field(default="", metadata={
        "help": "held-out prompts (JSONL with 'prompt'), for r* and the exact KL (optional)"})
    algorithm: str = field(default="rloo", metadata={"help": "rloo or ppo", "choices": ALGORITHMS})
    beta: float = field(default=0.1, metadata={"help": "β of the KL penalty (TRL: kl_coef)"})
    rloo_k: int = field(default=4, metadata={"help": "answers sampled for each prompt"})
    batch_size: int = field(default=16, metadata={
        "help": "prompts per step (rollouts: × --rloo-k)"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest sampled answer"})
    missing_eos_penalty: float = field(default=1.0, metadata={
        "help": "subtracted from r_φ for an answer with no EOS within --max-new-tokens"})
    eval_prompts: int = field(default=0, metadata={"help": "held-out prompts evaluated; 0: all"})
    num_ppo_epochs: int = field(default=4, metadata={"help": "PPO: passes over each rollout batch"})
    num_mini_batches: int = field(default=4, metadata={"help": "PPO: minibatches per pass"})
    cliprange: float = field(default=0.2, metadata={"help": "PPO: ε of the clipped ratio"})
    cliprange_value: float = field(default=0.2, metadata={"help": "PPO: ε_V of the clipped value"})
    vf_coef: float = field(default=0.1, metadata={"help": "PPO: weight of the value loss"})
    gamma: float = field(default=1.0, metadata={"help": "PPO: discount of GAE"})
    lam: float = field(default=0.95, metadata={"help": "PPO: λ of GAE"})
    learning_rate: float = field(default=3e-5, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=3e-6, metadata={"help": "learning rate at the end"})
    warmup_iters: int = field(default=10, metadata={"help": "linear warm-up steps"})
    max_iters: int = field(default=200, metadata={"help": "RL steps (rollout batches)"})
    eval_interval: int = field(default=50, metadata={
        "help": "evaluate and checkpoint every N steps"})

    def __post_init__(self):
        super().__post_init__()
        if self.algorithm not in ALGORITHMS:
            raise InputError(f"--algorithm must be one of {list(ALGORITHMS)}, "
                             f"got {self.algorithm!r}")
        if self.beta <= 0:
            raise InputError(f"--beta must be positive (the KL penalty's weight), got {self.beta}")
        if self.algorithm == "rloo" and self.rloo_k < 2:
            raise InputError(f"--rloo-k {self.rloo_k}: RLOO needs at least 2 answers per prompt "
                             f"(each one's baseline is the mean of the others)")
        check_ranges(self, at_least_one=("rloo_k", "max_new_tokens", "num_ppo_epochs",
                                         "num_mini_batches"),
                     not_negative=("missing_eos_penalty", "eval_prompts", "cliprange",
                                   "cliprange_value", "vf_coef", "gamma", "lam"))
        if self.algorithm == "ppo" and self.num_mini_batches > self.batch_size * self.rloo_k:
            raise InputError(f"--num-mini-batches {self.num_mini_batches} is more than the "
                             f"{self.batch_size * self.rloo_k} rollouts of a step")


def read_prompts(path, flag) -> tuple[list[str], int]:
    """The distinct prompts of a JSONL file, in first-seen order, and how many rows repeated
    an earlier one (preference pairs repeat their prompt): an evaluation over distinct
    prompts counts each question once in its mean, its interval and its distinct answers."""
    rows = read_jsonl(require(path, flag), ("prompt",))
    prompts = list(dict.fromkeys(row["prompt"] for row in rows))
    return prompts, len(rows) - len(prompts)


def load_models(config: RLHFConfig, device):
    """π_θ, π_ref, r_φ (and PPO's value head), checked to fit together, before anything is
    written."""
    policy, reference, tokenizer = load_policy_and_reference(require(config.init, "--init"), device,
                                                             "align.rlhf --init")
    load_stage(require(config.reward, "--reward"), ("reward",), "cpu", "align.rlhf --reward")
    reward_model, reward_tokenizer = load_reward_model(config.reward, device)
    if tokenizer_fingerprint(reward_tokenizer) != tokenizer_fingerprint(tokenizer):
        raise InputError(f"--reward {config.reward}: its tokenizer "
                         f"({tokenizer_fingerprint(reward_tokenizer)}) differs from the policy's "
                         f"({tokenizer_fingerprint(tokenizer)}): r_φ would read other tokens than "
                         f"π_θ writes; train the reward model from this SFT model")
    if config.max_new_tokens >= policy.config.block_size:
        raise InputError(f"--max-new-tokens {config.max_new_tokens} leaves no room for a prompt in "
                         f"the model's context of {policy.config.block_size} tokens")
    reward_model.requires_grad_(False)
    value_model = None
    if config.algorithm == "ppo":
        # V starts as r_φ's trunk and head (not its likelihood term, which V never reads):
        # a copy that PPO trains, without dropout
        value_model = RewardModel(dataclasses.replace(reward_model.config, dropout=0.0)).to(device)
        value_model.load_state_dict({name: weights for name, weights in reward_model.state_dict().items()
                                     if name != "likelihood_weight"})
    return policy, reference, reward_model, value_model, tokenizer


def rollout_metrics(rollouts, logprobs, beta) -> dict:
    """The objective/ metrics of one rollout batch (TRL's names), and r* of the same answers."""
    kl = (logprobs - rollouts.ref_logprobs).sum(-1)  # (N,) log π_θ(y|x)/π_ref(y|x)
    non_score = -beta * kl
    gold = [gold_reward(s.prompt, s.text, finished=s.finished) for s in rollouts.samples]
    top = most_common_answer([s.prompt for s in rollouts.samples],  # over distinct prompts:
                             [s.text for s in rollouts.samples])    # k answers, each prompt once
    return {"objective/kl": kl.mean().item(),
            "objective/entropy": (-logprobs.sum(-1)).mean().item(),
            "objective/non_score_reward": non_score.mean().item(),
            "objective/scores": rollouts.scores.mean().item(),
            "objective/rlhf_reward": (rollouts.scores + non_score).mean().item(),
            "objective/gold_scores": sum(gold) / len(gold),
            "objective/top_answer_share": top["share"],
            "val/num_eos_tokens": int(rollouts.finished.sum().item())}


class ValueHead(nn.Module):
    """PPO's value model as a forward pass, forward(input_ids) = V (B, T), so that DDP,
    which acts in forward, can wrap it (RewardModel's forward is r_φ, its values() V)."""

    def __init__(self, value_model: nn.Module):
        super().__init__()
        self.value_model = value_model

    def forward(self, input_ids):
        return self.value_model.values(input_ids)


def rloo_update(policy, rollouts, config, optimizer, parameters, device) -> dict:
    """One RLOO step: leave-one-out advantages of the returns Σ_t r_t, one gradient step.
    policy: π_θ, or its DDP wrapper (the mean over a rank's N answers, averaged by DDP over
    ranks of equal N, is the mean over all of them)."""
    logprobs, mask = policy_logprobs(policy, rollouts.input_ids, rollouts.labels,
                                     device)  # (N, T-1)
    rewards = kl_penalized_rewards(logprobs.detach(), rollouts.ref_logprobs, rollouts.scores, mask,
                                   config.beta)  # (N, T-1)
    returns = rewards.sum(-1)  # (N,) r_φ − β·log π_θ(y|x)/π_ref(y|x)
    advantages = rloo_advantages(returns.view(-1, config.rloo_k)).view(-1)  # (N,)
    loss = rloo_loss(logprobs.sum(-1), advantages)
    step_optimizer(loss, optimizer, parameters, config.grad_clip)
    return {**rollout_metrics(rollouts, logprobs.detach(), config.beta),
            "policy/approxkl_avg": 0.0, "policy/clipfrac_avg": 0.0,  # on-policy: ρ = 1 exactly
            "loss/policy_avg": loss.item(), "val/ratio": 1.0}


def ppo_update(policy, value_head, rollouts, config, optimizer, parameters, device,
               generator, ranks=distributed.Ranks()) -> dict:
    """One PPO step: GAE on the per-token rewards, then epochs of clipped minibatch updates.

    policy and value_head (a ValueHead): the modules, or their DDP wrappers under torchrun;
    each minibatch's loss, a mean over its answer tokens, is then weighted by this rank's
    share of every rank's tokens (as align.common.train_steps weights SFT's)."""
    mask = rollouts.mask
    rewards = kl_penalized_rewards(rollouts.logprobs, rollouts.ref_logprobs, rollouts.scores, mask,
                                   config.beta)  # (N, T-1)
    advantages, returns = gae(rewards, rollouts.values, mask, config.gamma, config.lam)
    advantages = whiten(advantages, mask)
    n = len(rollouts)
    size = n // config.num_mini_batches
    totals = {"policy/approxkl_avg": 0.0, "policy/clipfrac_avg": 0.0, "loss/policy_avg": 0.0,
              "loss/value_avg": 0.0, "val/clipfrac_avg": 0.0, "val/ratio": 0.0}
    updates = 0
    for _ in range(config.num_ppo_epochs):
        order = torch.randperm(n, generator=generator).to(mask.device)
        for start in range(0, size * config.num_mini_batches, size):
            rows = order[start : start + size]
            batch = rollouts.subset(rows)
            logprobs, _ = policy_logprobs(policy, batch.input_ids, batch.labels, device)
            policy_loss, stats = ppo_clip_loss(logprobs, batch.logprobs, advantages[rows],
                                               batch.mask, config.cliprange)
            with autocast_for(device):
                values = value_head(batch.input_ids)[:, :-1].float()  # (n, T-1)
            value_loss, value_clipfrac = value_clip_loss(values, batch.values, returns[rows],
                                                         batch.mask, config.cliprange_value)
            tokens = batch.mask.sum().item()
            share = ranks.world_size * tokens / ranks.sum(tokens)  # 1.0 with one process
            step_optimizer((policy_loss + config.vf_coef * value_loss) * share, optimizer,
                           parameters, config.grad_clip)
            for key, value in (("policy/approxkl_avg", stats["approxkl"]),
                               ("policy/clipfrac_avg", stats["clipfrac"]),
                               ("loss/policy_avg", policy_loss.item()),
                               ("loss/value_avg", value_loss.item()),
                               ("val/clipfrac_avg", value_clipfrac), ("val/ratio", stats["ratio"])):
                totals[key] += value
            updates += 1
    return {**rollout_metrics(rollouts, rollouts.logprobs, config.beta),
            **{key: value / updates for key, value in totals.items()}}


def step_optimizer(loss, optimizer, parameters, grad_clip):
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def train_rlhf(config: RLHFConfig, progress=True, keep_point=None) -> dict:
    """Run the RL stage into config.out_dir; keep_point(step, point) receives every evaluation
    whole (align.compare.evaluate_point, with its per-prompt lists), for align.frontier."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    ranks = distributed.start()  # one process, or this one's place under torchrun
    with ranks.together():  # bad input on any rank stops every rank, with its message
        policy, reference, reward_model, value_model, tokenizer = load_models(config, device)
        prompts, repeated = read_prompts(config.data, "--data")
        eval_prompts, eval_repeated = (read_prompts(config.eval_data, "--eval-data")
                                       if config.eval_data else (prompts[:128], 0))
        if config.eval_prompts:
            eval_prompts = eval_prompts[: config.eval_prompts]
        prefix = "eval" if config.eval_data else "train"
        resume_from = checkpoint_to_resume(config, "rlhf", ranks)
        if resume_from is not None:
            load_weights(policy, resume_from["model"], resume_from["path"])
            if value_model is not None:
                load_value_head(value_model, config.out_dir, resume_from["step"])
        counts = {"train_prompts": len(prompts), "train_rows_repeating_a_prompt": repeated,
                  "eval_prompts": len(eval_prompts), "eval_rows_repeating_a_prompt": eval_repeated}
        # only now: bad input leaves it untouched (None on ranks other than 0)
        run = start_run(config, "rlhf", tokenizer, counts, resume_from, ranks)
    trained = nn.ModuleDict({"policy": policy, **({"value": value_model} if value_model else {})})
    parameters = [p for p in trained.parameters() if p.requires_grad]
    optimizer = make_optimizer(trained, config.learning_rate, config.weight_decay,
                               device_type=device)
    batches = shuffled_batches(len(prompts), config.batch_size * ranks.world_size,
                               torch.Generator().manual_seed(config.seed))  # global batches
    start_step = continue_from(resume_from, optimizer, batches, device, ranks)  # 0 if new
    policy_trained = ranks.wrap(policy, device)  # DDP wrappers under torchrun, else themselves
    value_trained = ranks.wrap(ValueHead(value_model), device) if value_model else None

    def evaluate(step):
        point = evaluate_point(policy, reference, reward_model, tokenizer, eval_prompts,
                               config.max_new_tokens, device, seed=config.seed + 2,
                               missing_eos_penalty=config.missing_eos_penalty)
        row = {**point_metrics(point, prefix=f"{prefix}_"),
               **top_answer_metrics(eval_prompts, point["texts"], prefix)}
        run.log({"step": step, **row})
        tqdm.write(f"step {step}: r* {row[f'{prefix}_gold_reward']:.3f}, "
                   f"r_φ {row[f'{prefix}_scores']:.3f}, "
                   f"KL {row[f'{prefix}_kl_exact_per_token']:.2f} (exact per token), right "
                   f"{row[f'{prefix}_right_share']:.2f}")
        line = collapse_line(step, row, prefix, len(eval_prompts))
        if line:
            tqdm.write(line)
        if keep_point is not None:
            keep_point(step, point)

    def save(step):
        rng = ranks.random_states(device)  # every rank takes part (sampling has its own
        if not ranks.is_main:              # generators, seeded by step and rank)
            return
        if value_model is not None:  # first the value head, then ckpt.pt: a resume checks both
            save_checkpoint(run.file(VALUE_NAME), value_model, step, value_model.config, tokenizer,
                            extra={"stage": "value"})
        save_stage(run, policy, step, policy.config, tokenizer, "rlhf", config, optimizer, rng,
                   ranks.world_size)

    started = time.time()
    if start_step == 0 and ranks.is_main:
        evaluate(0)
    name = f"RLHF ({config.algorithm.upper()})"
    bar = tqdm(range(start_step + 1, config.max_iters + 1), initial=start_step,
               total=config.max_iters, desc=name, disable=not (show_progress(progress) and ranks.is_main),
               dynamic_ncols=True)
    for step in bar:
        lr = learning_rate_at(step, config.learning_rate, config.min_lr, config.warmup_iters,
                              config.max_iters)
        set_learning_rate(optimizer, lr)
        batch = [prompts[i] for i in ranks.my_slice(next(batches))]
        step_seed = (config.seed * 100_003 + step) * ranks.world_size + ranks.rank  # per rank
        rollouts = collect_rollouts(policy, reference, reward_model, tokenizer,
                                    [p for p in batch for _ in range(config.rloo_k)],
                                    config.max_new_tokens, step_seed, device,
                                    config.missing_eos_penalty, value_model,
                                    with_policy_logprobs=config.algorithm == "ppo")
        policy.train()
        if config.algorithm == "rloo":
            metrics = rloo_update(policy_trained, rollouts, config, optimizer, parameters, device)
        else:
            minibatch_order = torch.Generator().manual_seed(step_seed)
            metrics = ppo_update(policy_trained, value_trained, rollouts, config, optimizer,
                                 parameters, device, minibatch_order, ranks)
        policy.eval()
        metrics = ranks.mean(metrics)  # each rank's rollouts' figures, averaged over ranks
        metrics["val/num_eos_tokens"] *= ranks.world_size  # a count: the ranks' total
        if ranks.is_main:
            run.log({"step": step, "lr": lr, **metrics})
        bar.set_postfix(r_phi=f"{metrics['objective/scores']:.2f}",
                        kl=f"{metrics['objective/kl']:.2f}")
        if step % config.eval_interval == 0 or step == config.max_iters:
            if ranks.is_main:  # the others wait for it in the next backward
                evaluate(step)
            save(step)
    bar.close()
    if not ranks.is_main:
        return {}
    rows = run.read_metrics()
    plot_rlhf(run, rows, prefix, config)
    final = [row for row in rows if f"{prefix}_gold_reward" in row][-1]
    summary = {"run": run.path, "seconds": time.time() - started, "evaluated_on": prefix,
               "algorithm": config.algorithm, "beta": config.beta,
               **{key.removeprefix(prefix + "_"): value for key, value in final.items()
                  if key != "step"},
               "collapse": collapse_summary(rows, prefix), "counts": counts}
    run.write_json("summary.json", summary)
    return summary


def top_answer_metrics(prompts, texts, prefix) -> dict:
    """The evaluation's most common answer (align.breakdown), for metrics.jsonl."""
    top = most_common_answer(prompts, texts)
    return {f"{prefix}_top_answer": top["answer"], f"{prefix}_top_answer_count": top["count"],
            f"{prefix}_top_answer_share": top["share"]}


def row_collapsed(row, prefix) -> bool:
    """align.breakdown's rule on one evaluation row of metrics.jsonl."""
    return collapsed({"share": row[f"{prefix}_top_answer_share"],
                      "count": row[f"{prefix}_top_answer_count"]})


def collapse_line(step, row, prefix, prompts) -> str:
    """The line printed beside the bar when an evaluation is collapsed ("" otherwise)."""
    if not row_collapsed(row, prefix):
        return ""
    answer = row[f"{prefix}_top_answer"]
    shown = answer if len(answer) <= 60 else answer[:57] + "..."
    where = "held-out" if prefix == "eval" else "training"
    return (f'step {step}: collapsing: "{shown}" given to {row[f"{prefix}_top_answer_share"]:.0%} '
            f"of the {prompts} {where} prompts (more than {COLLAPSE_SHARE:.0%})")


def collapse_summary(rows, prefix) -> dict:
    """The summary's "collapse": the last evaluation's most common answer and share, whether
    it is collapsed, and the first evaluated step that was (None if none), read from the
    metrics rows so that a resumed run reports its whole history. All None where no
    evaluation recorded its most common answer (a run written by older code)."""
    evaluations = [row for row in rows if f"{prefix}_top_answer_share" in row]
    if not evaluations:  # a finished run written before these metrics existed: unknown
        return {"answer": None, "share": None, "collapsed": None, "first_step": None,
                "threshold": COLLAPSE_SHARE}
    last = evaluations[-1]
    first = next((row["step"] for row in evaluations if row_collapsed(row, prefix)), None)
    return {"answer": last[f"{prefix}_top_answer"], "share": last[f"{prefix}_top_answer_share"],
            "collapsed": row_collapsed(last, prefix), "first_step": first,
            "threshold": COLLAPSE_SHARE}


def load_value_head(value_model, out_dir, step):
    """PPO's value head as saved beside the checkpoint being resumed, at the same step."""
    checkpoint, _ = load_stage(f"{out_dir}/{VALUE_NAME}", ("value",), "cpu", "align.rlhf --resume")
    if checkpoint["step"] != step:
        raise InputError(f"{checkpoint['path']}: the value head is from step {checkpoint['step']}, "
                         f"the policy from step {step}; the run cannot be resumed exactly")
    load_weights(value_model, checkpoint["model"], checkpoint["path"])


def plot_rlhf(run, rows, prefix, config):
    """rewards.png (r_φ against r*: over-optimisation shows as the two parting), kl.png,
    loss.png."""
    where = "held-out prompts" if prefix == "eval" else "training prompts"
    run.plot("rewards.png",
             {"r_φ of the rollouts (objective/scores)": column(rows, "objective/scores"),
              "r* of the rollouts (objective/gold_scores)": column(rows, "objective/gold_scores"),
              f"r_φ, {where} ({prefix}_scores)": column(rows, f"{prefix}_scores"),
              f"r*, {where} ({prefix}_gold_reward)": column(rows, f"{prefix}_gold_reward")},
             title=f"RLHF ({config.algorithm}, β = {config.beta}): what it optimises (r_φ) and "
                   f"the truth (r*)",
             ylabel="reward", smooth=10,
             evaluation=(f"r_φ, {where} ({prefix}_scores)", f"r*, {where} ({prefix}_gold_reward)"))
    run.plot("kl.png", {"objective/kl (rollouts, sampled log-ratio)": column(rows, "objective/kl"),
                        f"{prefix}_kl_exact_per_token ({where})":
                            column(rows, f"{prefix}_kl_exact_per_token")},
             title="KL(π_θ ‖ π_ref) per answer", ylabel="nats", smooth=10,
             evaluation=(f"{prefix}_kl_exact_per_token ({where})",),
             hlines={"0 (π_θ = π_ref)": 0.0})
    series = {"loss/policy_avg": column(rows, "loss/policy_avg")}
    if config.algorithm == "ppo":
        series["loss/value_avg"] = column(rows, "loss/value_avg")
    run.plot("loss.png", series, title=f"RLHF ({config.algorithm}) losses", ylabel="loss",
             smooth=10)


def main(argv=None):
    parser = parser_from_dataclass(RLHFConfig, __doc__)
    config = RLHFConfig(**given_flags(parser.parse_args(argv)))
    ranks = distributed.start()  # under torchrun, rank 0 alone reports a refusal
    with ranks.together():
        check_run_folder(config.out_dir, "rlhf")  # before any work: no other command's folder
    summary = train_rlhf(config)
    if not summary:  # a rank other than 0 under torchrun
        return summary
    print(f"run folder: {summary['run']} ({summary['seconds']:.0f} s)")
    print(f"{summary['evaluated_on']} prompts: r* {summary['gold_reward']:.3f} "
          f"[{summary['gold_reward_low']:.3f}, {summary['gold_reward_high']:.3f}], "
          f"r_φ {summary['scores']:.3f}, "
          f"KL {summary['kl_exact_per_token']:.2f} ± {summary['kl_exact_per_token_ci']:.2f} nats "
          f"(exact per token), right {summary['right_share']:.2f}, "
          f"{summary['distinct_answers']} distinct answers")
    collapse = summary["collapse"]
    if collapse["answer"] is not None:
        state = (f"collapsed (more than {collapse['threshold']:.0%}; first at step "
                 f"{collapse['first_step']})" if collapse["collapsed"] else
                 "not collapsed" + ("" if collapse["first_step"] is None else
                                    f" (it was at step {collapse['first_step']})"))
        print(f"most common answer: \"{collapse['answer']}\" given to {collapse['share']:.0%} "
              f"of the prompts: {state}")
    return summary


if __name__ == "__main__":
    run_main(main, resume_hint="add --resume to the same command to continue from its last checkpoint, exactly")
