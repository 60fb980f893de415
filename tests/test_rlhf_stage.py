"""align.rlhf on tiny models: bad input refused in one line before anything is written, the
metrics TRL names, π_θ = π_ref at step 0, the run folder, and an exact resume (RLOO and PPO)."""

import dataclasses
import json
import math

import pytest
import torch

import align.compare
import align.rlhf
import align.rollouts
from align.common import load_stage
from align.compare import evaluate_point, point_metrics
from align.data import write_jsonl
from align.reward import RewardModel, load_reward_model
from align.rlhf import RLHFConfig, train_rlhf
from minigpt import ByteTokenizer, load_model, save_checkpoint
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.errors import InputError
from minigpt.tokenizer import CharTokenizer
from tests.conftest import tiny_config
from tests.test_align_stages import byte_model, metrics_of
from tests.test_collapse import brute_force
from toyworld.world import heldout_prompts, train_prompts

# What every training step logs (the module docstring, TRL's names); PPO adds loss/value_avg.
STEP_METRICS = ("objective/kl", "objective/entropy", "objective/non_score_reward",
                "objective/rlhf_reward", "objective/scores", "objective/gold_scores",
                "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg", "val/ratio",
                "val/num_eos_tokens", "objective/top_answer_share")
EVAL_METRICS = ("eval_gold_reward", "eval_gold_reward_low", "eval_gold_reward_high",
                "eval_scores", "eval_kl", "eval_kl_exact_per_token", "eval_kl_exact_per_token_ci",
                "eval_right_share", "eval_distinct_answers", "eval_unfinished",
                "eval_top_answer", "eval_top_answer_count", "eval_top_answer_share")
TEXT_METRICS = ("eval_top_answer",)
PLOTS = ("rewards.png", "kl.png", "loss.png")
HELDOUT = list(dict.fromkeys(heldout_prompts(8, 0)))  # the stage's eval prompts: distinct ones


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small gain nothing from a second thread, and on a busy machine the threads'
    waiting for each other made this file 20 times slower (10 s against 220 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """Tiny checkpoints the RL stage reads, written directly (training them would only cost
    time): an SFT model, a reward model on its trunk, a reward model with a char tokenizer,
    and prompt files (toy-world prompts)."""
    root = tmp_path_factory.mktemp("rlhf-inputs")
    sft = byte_model()  # a tiny random byte-level GPT: the SFT model, and r_φ's trunk
    save_checkpoint(root / "sft" / "ckpt.pt", sft, 0, sft.config, ByteTokenizer(),
                    extra={"stage": "sft"})
    torch.manual_seed(1)
    reward = RewardModel(sft.config)
    reward.gpt.load_state_dict(sft.state_dict())
    save_checkpoint(root / "reward" / "ckpt.pt", reward, 0, reward.config, ByteTokenizer(),
                    extra={"stage": "reward"})
    reading = RewardModel(sft.config, reads_likelihood=True)  # as the pipeline trains r_φ
    reading.load_state_dict({**reward.state_dict(), "likelihood_weight": torch.tensor(0.8)})
    save_checkpoint(root / "likelihood-reward" / "ckpt.pt", reading, 0, reading.config,
                    ByteTokenizer(), extra={"stage": "reward"})
    chars = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ?.,+0-9")
    torch.manual_seed(0)
    char_reward = RewardModel(tiny_config(vocab_size=chars.vocab_size, block_size=64))
    save_checkpoint(root / "char-reward" / "ckpt.pt", char_reward, 0, char_reward.config, chars,
                    extra={"stage": "reward"})
    write_jsonl(root / "prompts.jsonl", [{"prompt": p} for p in train_prompts(16, 0)])
    write_jsonl(root / "heldout.jsonl", [{"prompt": p} for p in heldout_prompts(8, 0)])
    return root


def rl_config(stages, out, **overrides) -> RLHFConfig:
    values = dict(init=str(stages / "sft"), reward=str(stages / "reward"),
                  data=str(stages / "prompts.jsonl"), eval_data=str(stages / "heldout.jsonl"),
                  out_dir=str(out), rloo_k=2, batch_size=2, max_new_tokens=10, eval_prompts=8,
                  max_iters=4, eval_interval=2, warmup_iters=1, learning_rate=1e-3, min_lr=1e-4,
                  num_ppo_epochs=2, num_mini_batches=2, seed=3, device="cpu")
    values.update(overrides)
    return RLHFConfig(**values)


def rl_argv(stages, out, **overrides) -> list[str]:
    """A command line like rl_config's (two steps), as a user types it."""
    values = dict(init=str(stages / "sft"), reward=str(stages / "reward"),
                  data=str(stages / "prompts.jsonl"), eval_data=str(stages / "heldout.jsonl"),
                  out_dir=str(out), rloo_k=2, batch_size=2, max_new_tokens=10, eval_prompts=8,
                  max_iters=2, eval_interval=2, device="cpu")
    values.update(overrides)
    return [item for name, value in values.items()
            for item in (f"--{name.replace('_', '-')}", str(value))]


def step_rows(rows):
    return [row for row in rows if "objective/kl" in row]


def eval_rows(rows):
    return [row for row in rows if "eval_gold_reward" in row]


# ------------------------------------------------------------------------------ bad input
def bad_inputs(stages, tmp_path):
    no_prompt = tmp_path / "no-prompt.jsonl"
    write_jsonl(no_prompt, [{"prompt": "Where is Lima?"}, {"question": "Where is Lima?"}])
    sft, reward = stages / "sft" / "ckpt.pt", stages / "reward" / "ckpt.pt"
    return [
        (dict(reward=str(stages / "sft")),
         f"{sft}: this is a 'sft' checkpoint (a language model fine-tuned on demonstrations); "
         f"align.rlhf --reward needs a reward model ('reward')"),
        (dict(reward=str(stages / "char-reward")),
         (f"--reward {stages / 'char-reward'}: its tokenizer (char-",
          "differs from the policy's (byte-", "r_φ would read other tokens than π_θ writes")),
        (dict(init=str(stages / "reward")),
         f"{reward}: this is a 'reward' checkpoint (a reward model: a GPT with a scalar head); "
         f"align.rlhf --init needs a language model ('sft' or 'pretrain')"),
        (dict(beta=0), "--beta must be positive"),
        (dict(beta=-1), "--beta must be positive"),
        (dict(rloo_k=1), "--rloo-k 1: RLOO needs at least 2 answers per prompt"),
        (dict(data=str(tmp_path / "nosuch.jsonl")),
         f"{tmp_path / 'nosuch.jsonl'}: no such data file"),
        (dict(eval_data=str(tmp_path / "nosuch.jsonl")), "nosuch.jsonl: no such data file"),
        (dict(data=str(no_prompt)), f"{no_prompt}, line 2: missing key 'prompt'"),
        (dict(reward=""), "--reward is required"),
        (dict(max_new_tokens=64), "--max-new-tokens 64 leaves no room for a prompt"),
        (dict(algorithm="ppo", num_mini_batches=5),
         "--num-mini-batches 5 is more than the 4 rollouts"),
    ]


def test_bad_input_is_one_line_before_the_run_folder_is_made(stages, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default run folder (runs/rlhf) would be made here
    out = tmp_path / "rl"
    for overrides, words in bad_inputs(stages, tmp_path):
        with pytest.raises(SystemExit) as stop:
            run_main(align.rlhf.main, rl_argv(stages, out, **overrides))
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert stop.value.code == 2, (overrides, captured.err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (overrides, captured.err)
        for part in (words,) if isinstance(words, str) else words:
            assert part in lines[0], (overrides, lines[0])
        assert "Traceback" not in captured.err + captured.out
        assert not out.exists(), overrides  # refused before anything was written
        assert not (tmp_path / "runs").exists()


def test_rloo_needs_two_answers_per_prompt_but_ppo_takes_one():
    parser = parser_from_dataclass(RLHFConfig, align.rlhf.__doc__)
    with pytest.raises(InputError, match="--rloo-k 1: RLOO needs at least 2"):
        RLHFConfig(**given_flags(parser.parse_args(["--rloo-k", "1"])))
    config = RLHFConfig(**given_flags(parser.parse_args(["--algorithm", "ppo", "--rloo-k", "1",
                                                         "--batch-size", "4"])))
    assert config.algorithm == "ppo" and config.rloo_k == 1
    with pytest.raises(InputError, match="invalid choice: 'dpo'"):
        parser.parse_args(["--algorithm", "dpo"])


# ------------------------------------------------------------------------------ short runs
def check_run(stages, out, algorithm, config):
    rows = metrics_of(out)
    steps, evaluations = step_rows(rows), eval_rows(rows)
    assert [row["step"] for row in steps] == [1, 2, 3, 4]
    assert [row["step"] for row in evaluations] == [0, 2, 4]
    assert len(rows) == len(steps) + len(evaluations)  # nothing else, nothing twice
    names = {"step", "lr", *STEP_METRICS}
    for row in steps:
        assert names <= set(row), names - set(row)
        assert ("loss/value_avg" in row) == (algorithm == "ppo")
        assert all(math.isfinite(row[name]) for name in names), row
        assert 0 < row["objective/top_answer_share"] <= 1
        assert row["objective/rlhf_reward"] == pytest.approx(
            row["objective/scores"] + row["objective/non_score_reward"], rel=1e-6, abs=1e-6)
        assert row["objective/non_score_reward"] == pytest.approx(
            -config.beta * row["objective/kl"], rel=1e-6, abs=1e-7)
        assert row["objective/entropy"] > 0
        assert isinstance(row["val/num_eos_tokens"], int)
        assert 0 <= row["val/num_eos_tokens"] <= config.batch_size * config.rloo_k
        assert 0.0 <= row["policy/clipfrac_avg"] <= 1.0
        if algorithm == "rloo":  # one on-policy step: ρ = 1 exactly
            assert row["val/ratio"] == 1.0
            assert row["policy/approxkl_avg"] == 0.0 and row["policy/clipfrac_avg"] == 0.0
    # step 1's rollouts come from π_θ = π_ref: the sampled log-ratio is exactly 0
    assert steps[0]["objective/kl"] == 0.0 and steps[0]["objective/non_score_reward"] == 0.0
    for row in evaluations:
        assert set(row) == {"step", *EVAL_METRICS}, set(row) ^ {"step", *EVAL_METRICS}
        assert row["eval_kl_exact_per_token"] >= 0
        low, high = row["eval_gold_reward_low"], row["eval_gold_reward_high"]
        assert low <= row["eval_gold_reward"] <= high
        assert 0 <= row["eval_right_share"] <= 1 and 1 <= row["eval_distinct_answers"] <= 8
        assert isinstance(row["eval_top_answer"], str)
        assert 1 <= row["eval_top_answer_count"] <= len(HELDOUT)
        assert row["eval_top_answer_share"] == row["eval_top_answer_count"] / len(HELDOUT)
    assert evaluations[0]["eval_kl"] == 0.0 and evaluations[0]["eval_kl_exact_per_token"] == 0.0

    checkpoint, stage = load_stage(out, ("rlhf",))
    assert stage == "rlhf" and checkpoint["step"] == 4
    model, tokenizer, _ = load_model(out)
    sft, _, _ = load_model(stages / "sft")
    assert tokenizer.to_dict() == ByteTokenizer().to_dict()
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     sft.state_dict().values()))  # π_θ moved
    for name in PLOTS:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithm"] == algorithm and summary["beta"] == config.beta
    assert summary["evaluated_on"] == "eval"
    for name in EVAL_METRICS:  # the last evaluation, unprefixed
        assert summary[name.removeprefix("eval_")] == evaluations[-1][name], name
    # the tiny random model writes another string to each prompt: no collapse, ever
    assert all(row["eval_top_answer_count"] == 1 for row in evaluations)
    assert summary["collapse"] == {"answer": evaluations[-1]["eval_top_answer"],
                                   "share": 1 / len(HELDOUT), "collapsed": False,
                                   "first_step": None,
                                   "threshold": 0.1}
    saved = json.loads((out / "config.json").read_text())
    assert saved["algorithm"] == algorithm and saved["beta"] == config.beta
    counts = saved["truncation"]
    assert counts["train_prompts"] + counts["train_rows_repeating_a_prompt"] == 16
    assert counts == summary["counts"]
    return rows


def brute_top(prompts, texts):
    """(count, share) of the answer given to the most distinct prompts (tests.test_collapse)."""
    return max(brute_force(prompts, texts).values())


def test_a_short_rloo_run(stages, tmp_path, monkeypatch):
    config = rl_config(stages, tmp_path / "rloo")
    kept, rollouts = [], []
    real_collect = align.rlhf.collect_rollouts

    def collect_and_keep(*args, **kwargs):
        rollouts.append(real_collect(*args, **kwargs))
        return rollouts[-1]

    monkeypatch.setattr(align.rlhf, "collect_rollouts", collect_and_keep)
    train_rlhf(config, progress=False, keep_point=lambda step, point: kept.append((step, point)))
    rows = check_run(stages, tmp_path / "rloo", "rloo", config)
    assert [step for step, _ in kept] == [0, 2, 4]
    prompts = HELDOUT
    for (step, point), row in zip(kept, eval_rows(rows)):  # over the distinct prompts
        assert (row["eval_top_answer_count"], row["eval_top_answer_share"]) == brute_top(
            prompts, point["texts"])
        assert row["eval_top_answer"] in {t.strip() for t in point["texts"]}
    for batch, row in zip(rollouts, step_rows(rows)):  # 2 prompts, k = 2 answers each
        texts = [s.text for s in batch.samples]
        prompts_of_step = [s.prompt for s in batch.samples]
        assert row["objective/top_answer_share"] == brute_top(prompts_of_step, texts)[1]
    assert not (tmp_path / "rloo" / "value.pt").exists()  # RLOO has no value head
    # step 0 is the SFT model itself, measured as align.compare measures any policy
    sft, tokenizer, _ = load_model(stages / "sft")
    reward_model, _ = load_reward_model(stages / "reward")
    point = evaluate_point(sft, sft, reward_model, tokenizer, prompts,
                           config.max_new_tokens, "cpu", seed=config.seed + 2,
                           missing_eos_penalty=config.missing_eos_penalty)
    count, share = brute_top(prompts, point["texts"])
    assert {"step": 0, **point_metrics(point), "eval_top_answer_count": count,
            "eval_top_answer_share": share,
            "eval_top_answer": eval_rows(rows)[0]["eval_top_answer"]} == eval_rows(rows)[0]


def test_a_short_ppo_run(stages, tmp_path):
    config = rl_config(stages, tmp_path / "ppo", algorithm="ppo")
    train_rlhf(config, progress=False)
    check_run(stages, tmp_path / "ppo", "ppo", config)
    value, stage = load_stage(tmp_path / "ppo" / "value.pt", ("value",))
    assert stage == "value" and value["step"] == 4
    reward = torch.load(stages / "reward" / "ckpt.pt", weights_only=True)["model"]
    assert value["model"].keys() == reward.keys()  # V is r_φ's network, trained on
    assert any(not torch.equal(value["model"][k], reward[k]) for k in reward)


def test_ppo_on_a_reward_model_that_reads_likelihood_gives_v_its_trunk_and_head_only(stages, tmp_path):
    """V never reads r_φ's likelihood term, so it has no λ: every parameter it has gets a
    gradient from V (DDP needs that), and it starts as r_φ's trunk and head."""
    config = rl_config(stages, tmp_path / "ppo", algorithm="ppo",
                       reward=str(stages / "likelihood-reward"))
    _, _, reward_model, value_model, _ = align.rlhf.load_models(config, "cpu")
    assert reward_model.reads_likelihood and not value_model.reads_likelihood
    head_and_trunk = {k: v for k, v in reward_model.state_dict().items() if k != "likelihood_weight"}
    assert all(torch.equal(value_model.state_dict()[k], v) for k, v in head_and_trunk.items())
    value_model.values(torch.tensor([[1, 2, 3, 4]])).sum().backward()
    assert all(p.grad is not None for p in value_model.parameters() if p.requires_grad)
    train_rlhf(config, progress=False)  # and a short run goes through
    value, _ = load_stage(tmp_path / "ppo" / "value.pt", ("value",))
    assert value["model"].keys() == head_and_trunk.keys()


# ------------------------------------------------------------------------------ collapse
FIXED = "Hello!"  # 6 bytes and the EOS: within the 10 new tokens of rl_config


def forced_to_answer(real_sampler, text, after_calls=0):
    """The sampler of a policy that answers `text` to every prompt (from its call number
    after_calls on): the real samples, their answer tokens replaced by text + EOS, so that
    every forward pass (log-probs, r_φ, the KL) reads what was 'sampled'."""
    calls = []

    def sample(model, tokenizer, prompts, *args, **kwargs):
        samples = real_sampler(model, tokenizer, prompts, *args, **kwargs)
        calls.append(len(prompts))
        if len(calls) <= after_calls:
            return samples
        ids = tokenizer.encode(text) + [tokenizer.eos_id]
        return [dataclasses.replace(s, answer_ids=ids, text=text, finished=True)
                for s in samples]
    return sample


@pytest.mark.parametrize("algorithm", ["rloo", "ppo"])
def test_a_policy_answering_one_text_is_reported_collapsed_while_it_trains(
        algorithm, stages, tmp_path, monkeypatch, capsys):
    """Rollouts always, evaluations from step 2 on, are one fixed answer: the line is printed
    at steps 2 and 4 (not at step 0, whose answers are the tiny model's own), and the summary
    says collapsed, first at step 2."""
    monkeypatch.setattr(align.rollouts, "sample_answers",
                        forced_to_answer(align.rollouts.sample_answers, FIXED))
    monkeypatch.setattr(align.compare, "sample_answers",
                        forced_to_answer(align.compare.sample_answers, FIXED, after_calls=1))
    monkeypatch.setattr(align.rlhf, "plot_rlhf", lambda *args: None)  # figures: the short runs
    out = tmp_path / "forced"
    summary = train_rlhf(rl_config(stages, out, algorithm=algorithm), progress=False)
    printed = capsys.readouterr().out
    for step in (2, 4):
        assert (f'step {step}: collapsing: "{FIXED}" given to 100% of the {len(HELDOUT)} '
                f'held-out prompts') in printed, printed
    assert "step 0: collapsing" not in printed and printed.count("collapsing") == 2, printed
    assert summary["collapse"] == {"answer": FIXED, "share": 1.0, "collapsed": True,
                                   "first_step": 2, "threshold": 0.1}
    assert json.loads((out / "summary.json").read_text())["collapse"] == summary["collapse"]
    rows = metrics_of(out)
    assert [row["objective/top_answer_share"] for row in step_rows(rows)] == [1.0] * 4
    evaluations = eval_rows(rows)
    assert evaluations[0]["eval_top_answer_count"] == 1  # step 0: the model's own answers
    assert [(row["eval_top_answer"], row["eval_top_answer_count"], row["eval_top_answer_share"])
            for row in evaluations[1:]] == [(FIXED, len(HELDOUT), 1.0)] * 2


def test_the_command_prints_the_most_common_answer(stages, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(align.rollouts, "sample_answers",
                        forced_to_answer(align.rollouts.sample_answers, FIXED))
    monkeypatch.setattr(align.compare, "sample_answers",
                        forced_to_answer(align.compare.sample_answers, FIXED, after_calls=1))
    monkeypatch.setattr(align.rlhf, "plot_rlhf", lambda *args: None)
    align.rlhf.main(rl_argv(stages, tmp_path / "cli"))  # two steps, evaluated at 0 and 2
    assert (f'most common answer: "{FIXED}" given to 100% of the prompts: collapsed (more than '
            f'10%; first at step 2)') in capsys.readouterr().out


# ------------------------------------------------------------------------------ resume
@pytest.mark.parametrize("algorithm", ["rloo", "ppo"])
def test_an_interrupted_rlhf_run_resumes_exactly(algorithm, stages, tmp_path, monkeypatch):
    config = dict(algorithm=algorithm, eval_prompts=4)
    monkeypatch.setattr(align.rlhf, "plot_rlhf", lambda *args: None)  # figures: test_a_short_*_run
    train_rlhf(rl_config(stages, tmp_path / "whole", **config), progress=False)

    real_learning_rate_at = align.rlhf.learning_rate_at

    def interrupted_at_step_3(step, *args):  # after the checkpoint at step 2
        if step == 3:
            raise KeyboardInterrupt
        return real_learning_rate_at(step, *args)

    monkeypatch.setattr(align.rlhf, "learning_rate_at", interrupted_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_rlhf(rl_config(stages, tmp_path / "cut", **config), progress=False)
    monkeypatch.setattr(align.rlhf, "learning_rate_at", real_learning_rate_at)
    assert torch.load(tmp_path / "cut" / "ckpt.pt", weights_only=True)["step"] == 2
    train_rlhf(rl_config(stages, tmp_path / "cut", resume=True, **config), progress=False)

    whole, again = metrics_of(tmp_path / "whole"), metrics_of(tmp_path / "cut")
    assert [row["step"] for row in again] == [row["step"] for row in whole]  # nothing twice
    for a, b in zip(whole, again):  # exactly the floats of the uninterrupted run
        assert a == b, (a, b)
    files = ["ckpt.pt"] + (["value.pt"] if algorithm == "ppo" else [])
    assert (tmp_path / "cut" / "value.pt").exists() == (algorithm == "ppo")
    for name in files:
        saved = [torch.load(tmp_path / run / name, weights_only=True) for run in ("whole", "cut")]
        assert saved[0]["step"] == saved[1]["step"] == 4
        assert saved[0]["model"].keys() == saved[1]["model"].keys()
        for key in saved[0]["model"]:
            assert torch.equal(saved[0]["model"][key], saved[1]["model"][key]), (name, key)
    optimizers = [torch.load(tmp_path / run / "ckpt.pt", weights_only=True)["optimizer"]
                  for run in ("whole", "cut")]
    for a, b in zip(optimizers[0]["state"].values(), optimizers[1]["state"].values()):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_with_another_beta_or_over_a_run_is_refused(stages, tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(align.rlhf, "plot_rlhf", lambda *args: None)
    train_rlhf(rl_config(stages, out, max_iters=1, eval_prompts=2), progress=False)
    before = {name: (out / name).read_bytes()
              for name in ("ckpt.pt", "metrics.jsonl", "config.json")}
    with pytest.raises(InputError, match=r"cannot resume exactly: --beta 0.1 → 0.2 differ"):
        train_rlhf(rl_config(stages, out, max_iters=1, eval_prompts=2, beta=0.2, resume=True),
                   progress=False)
    with pytest.raises(InputError, match="already holds a run; pass --resume to continue it, "
                                         "--overwrite to replace it"):
        train_rlhf(rl_config(stages, out, max_iters=1, eval_prompts=2), progress=False)
    assert {name: (out / name).read_bytes() for name in before} == before  # untouched
    with pytest.raises(InputError, match="no such checkpoint"):
        train_rlhf(rl_config(stages, tmp_path / "nothing-here", resume=True), progress=False)
    assert not (tmp_path / "nothing-here").exists()
