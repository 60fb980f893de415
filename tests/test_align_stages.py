"""SFT, the reward model and DPO on tiny models: the properties the lecture's formulas promise."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from align.common import load_stage
from align.data import (TruncationStats, collate, pack_sequences, prompt_tokens, response_tokens,
                        sft_example, tokenize_example, write_jsonl)
import align.common
import align.dpo
from align.dpo import (DPOConfig, add_reference_logps, concatenated_forward, dpo_batch, evaluate_dpo,
                       train_dpo)
from align.data import tokenize_pairs
from align.losses import bradley_terry_loss, dpo_loss
from align.reward import (RewardConfig, RewardModel, load_reward_model, score_pairs, score_sequences,
                          train_reward)
from align.sft import SFTConfig, response_loss, train_sft
from minigpt import GPT, ByteTokenizer, get_batch_logps, load_model, save_checkpoint
from minigpt.cli import run_main
from minigpt.errors import InputError
from minigpt.optim import make_optimizer
from tests.conftest import tiny_config

DEMOS = [{"prompt": "hello", "completion": "hi"}, {"prompt": "how are you", "completion": "fine"},
         {"prompt": "2+2?", "completion": "4"}, {"prompt": "name?", "completion": "Mary"}]
PAIRS = [{"prompt": "hello", "chosen": "hi nice to meet you", "rejected": "leave me alone"},
         {"prompt": "how are you", "chosen": "I am fine", "rejected": "I am not fine"},
         {"prompt": "What is your name?", "chosen": "My name is Mary", "rejected": "Whats it to you?"},
         {"prompt": "Best language?", "chosen": "Python", "rejected": "C++"}]


def byte_model(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return GPT(tiny_config(vocab_size=ByteTokenizer().vocab_size, block_size=64)).to(dtype)


@pytest.fixture
def pretrained(tmp_path):
    """A 'pre-trained' checkpoint: a tiny random byte-level GPT."""
    model = byte_model()
    save_checkpoint(tmp_path / "pretrain" / "ckpt.pt", model, 0, model.config, ByteTokenizer())
    return tmp_path / "pretrain"


HELD_OUT_PAIRS = [{"prompt": "Capital of France?", "chosen": "Paris", "rejected": "Rome, I think"},
                  {"prompt": "hello", "chosen": "hello there", "rejected": "go away"},
                  {"prompt": "2+2?", "chosen": "4", "rejected": "5"}]
LOG_2_FLOAT32 = torch.tensor(math.log(2)).item()  # −log σ(0) as the float32 loss computes it


def examples_of(rows):
    return [tokenize_example(ByteTokenizer(), r["prompt"], r["completion"], 64, 32, TruncationStats())
            for r in rows]


def metrics_of(folder):
    return [json.loads(line) for line in open(folder / "metrics.jsonl")]


def evaluation_rows(rows):
    """The rows logged by an evaluation (their names carry eval_ or train_), not by a step."""
    return [row for row in rows if "loss" not in row]


# ------------------------------------------------------------------------------------ SFT
def test_sft_loss_is_the_mean_over_response_tokens_only():
    model = byte_model(dtype=torch.float64).eval()
    examples = examples_of(DEMOS)
    input_ids, labels = collate(examples, ByteTokenizer().pad_id)
    log_probs = F.log_softmax(model(input_ids)[0], dim=-1)
    terms = [-log_probs[b, t, labels[b, t + 1]] for b in range(len(DEMOS))
             for t in range(input_ids.size(1) - 1) if labels[b, t + 1] != -100]
    expected = torch.stack(terms).mean()  # brute force: response tokens (and EOS) only
    loss = response_loss(model, examples, ByteTokenizer().pad_id, "cpu")
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_changing_what_the_prompt_positions_predict_does_not_change_the_loss():
    """The logits that predict prompt tokens get exactly zero gradient."""
    model = byte_model(dtype=torch.float64)
    kept = {}
    model.lm_head.register_forward_hook(lambda m, i, out: kept.update(logits=out) or out.retain_grad())
    examples = examples_of(DEMOS)
    response_loss(model, examples, ByteTokenizer().pad_id, "cpu").backward()
    grad = kept["logits"].grad  # (R, T-1, vocab): a row's position t predicts its token t+1
    packed = pack_sequences(examples, ByteTokenizer().pad_id)  # the rows response_loss made
    T = packed.input_ids.size(1)
    for n, (ids, labels) in enumerate(examples):
        first_response = next(i for i, label in enumerate(labels) if label != -100)
        places = [divmod(int(flat), T) for flat in packed.where[n, :first_response]]  # (row, column)
        assert all(grad[r, c].abs().max() == 0 for r, c in places[:-1])  # predicting prompt tokens
        r, c = places[-1]
        assert grad[r, c].abs().max() > 0  # predicting the first answer token


def test_sft_learns_to_answer_and_to_emit_eos(pretrained, tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", DEMOS)
    summary = train_sft(SFTConfig(init=str(pretrained), data=str(tmp_path / "sft.jsonl"),
                                  out_dir=str(tmp_path / "sft"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=150, learning_rate=3e-3, warmup_iters=10,
                                  eval_interval=150), progress=False)
    assert summary["train_response_loss"] < 0.05
    model, tokenizer, checkpoint = load_model(tmp_path / "sft")
    from align.sampling import generate_responses
    prompts = [d["prompt"] for d in DEMOS]
    answers = generate_responses(model, tokenizer, prompts, max_new_tokens=20, temperature=0.0)
    assert answers == [d["completion"] for d in DEMOS]  # it stops: EOS, not 20 tokens
    assert load_stage(tmp_path / "sft", ("sft",))[1] == "sft"


def test_sft_logs_train_loss_and_held_out_eval_loss_from_step_0(pretrained, tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", DEMOS)
    write_jsonl(tmp_path / "sft_eval.jsonl", DEMOS[:2])
    summary = train_sft(SFTConfig(init=str(pretrained), data=str(tmp_path / "sft.jsonl"),
                                  eval_data=str(tmp_path / "sft_eval.jsonl"), out_dir=str(tmp_path / "sft"),
                                  max_length=64, max_prompt_length=32, batch_size=4, max_iters=4,
                                  learning_rate=3e-3, eval_interval=2), progress=False)
    rows = metrics_of(tmp_path / "sft")
    evaluations = evaluation_rows(rows)
    assert [row["step"] for row in evaluations] == [0, 2, 4]
    assert all(set(row) == {"step", "train_loss", "eval_loss"} for row in evaluations)
    assert all(set(row) == {"step", "loss", "lr"} for row in rows if row not in evaluations)
    start = byte_model().eval()  # the pre-trained model, before any update
    with torch.no_grad():
        initial = response_loss(start, examples_of(DEMOS[:2]), ByteTokenizer().pad_id, "cpu").item()
    assert evaluations[0]["eval_loss"] == pytest.approx(initial, rel=1e-5)
    assert evaluations[-1]["eval_loss"] < evaluations[0]["eval_loss"]
    # the summary keeps its names (align.pipeline reads them)
    assert summary["eval_response_loss"] == evaluations[-1]["eval_loss"]
    assert summary["train_response_loss"] == evaluations[-1]["train_loss"] and summary["step"] == 4


# ------------------------------------------------------------------------------- reward model
def test_reward_does_not_depend_on_right_padding():
    torch.manual_seed(0)
    model = RewardModel(tiny_config(vocab_size=259, block_size=64)).eval()
    ids = examples_of(DEMOS[:1])[0][0]
    from align.data import pad_right
    lengths = torch.tensor([len(ids)] * 3)
    scores = [model(pad_right([ids], 258, len(ids) + extra), lengths[:1]) for extra in (0, 5, 30)]
    assert scores[0].item() == pytest.approx(scores[1].item(), abs=1e-6)
    assert scores[0].item() == pytest.approx(scores[2].item(), abs=1e-6)
    batch = score_sequences(model, [(s, s) for s in (ids, ids[:-3], ids)], 258, "cpu")  # padded
    assert batch[0].item() == pytest.approx(scores[0].item(), abs=1e-6) and batch[0] == batch[2]


def brute_force_reward(model, ids, labels):
    """w·h_EOS + b + λ·(mean over the answer's tokens of log p(token | the tokens before it)),
    each log-prob from the GPT run on that prefix alone, its last position's logits."""
    with torch.no_grad():
        head = model.head(model.gpt.hidden_states(torch.tensor([ids]))[0, -1]).item()
        logps = [torch.log_softmax(model.gpt(torch.tensor([ids[:t]]))[0][0, -1], -1)[ids[t]].item()
                 for t in range(1, len(ids)) if labels[t] != -100]
    return head + model.likelihood_weight.item() * sum(logps) / len(logps)


def test_a_reward_model_that_reads_likelihood_adds_its_trunks_mean_answer_log_prob():
    torch.manual_seed(0)
    model = RewardModel(tiny_config(vocab_size=259, block_size=64), reads_likelihood=True).double()
    with torch.no_grad():
        model.likelihood_weight.fill_(0.7)
    examples = [sft_example(prompt_tokens(ByteTokenizer(), row["prompt"]),
                            response_tokens(ByteTokenizer(), row["prompt"], answer))
                for row in PAIRS for answer in (row["chosen"], row["rejected"])]
    scores = score_sequences(model, examples, 258, "cpu")  # packed
    for n, (ids, labels) in enumerate(examples):
        assert scores[n].item() == pytest.approx(brute_force_reward(model, ids, labels), abs=1e-9)
    pairs = tokenize_pairs(PAIRS, ByteTokenizer(), RewardConfig(max_length=64, max_prompt_length=32),
                           "reward-model")[0]
    chosen, rejected = score_pairs(model, pairs, 258, "cpu")  # packed pairs, shared prefixes once
    for n, pair in enumerate(pairs):
        for side, scored in (("chosen", chosen), ("rejected", rejected)):
            assert scored[n].item() == pytest.approx(brute_force_reward(model, *pair[side]), abs=1e-9)
    bradley_terry_loss(chosen, rejected).backward()
    assert model.likelihood_weight.grad.abs() > 0  # λ is learned
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the log-prob is not rounded to bf16
        assert score_sequences(model.float(), examples, 258, "cpu").dtype == torch.float32
    with pytest.raises(ValueError, match="give the answer's labels"):
        model(torch.tensor([examples[0][0]]), torch.tensor([len(examples[0][0])]))


def test_a_reward_model_that_reads_likelihood_is_trained_saved_and_loaded_as_one(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    config = RewardConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                          out_dir=str(tmp_path / "reward"), max_length=64, max_prompt_length=32,
                          batch_size=4, max_iters=4, learning_rate=1e-3, eval_interval=4,
                          reads_likelihood=True)
    train_reward(config, progress=False)
    model, tokenizer = load_reward_model(tmp_path / "reward")
    assert model.reads_likelihood and model.likelihood_weight.item() != 1.0  # trained from 1
    ids, labels = sft_example(prompt_tokens(tokenizer, "hello"), response_tokens(tokenizer, "hello", "hi"))
    assert score_sequences(model, [(ids, labels)], tokenizer.pad_id, "cpu").item() == pytest.approx(
        brute_force_reward(model, ids, labels), abs=1e-5)
    plain, _ = load_reward_model(train_reward(RewardConfig(**{**config.__dict__, "reads_likelihood": False,
                                                              "out_dir": str(tmp_path / "plain")}),
                                              progress=False)["run"])
    assert not plain.reads_likelihood


def test_reward_model_learns_the_pairs_and_checks_its_init_stage(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    config = RewardConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                          out_dir=str(tmp_path / "reward"), max_length=64, max_prompt_length=32,
                          batch_size=4, max_iters=60, learning_rate=1e-3, eval_interval=60)
    summary = train_reward(config, progress=False)
    assert summary["accuracy"] == 1.0 and summary["margin"] > 1.0
    expected = (r"this is a 'reward' checkpoint \(a reward model: a GPT with a scalar head\); "
                r"align.reward --init needs a language model \('sft' or 'pretrain'\)")
    with pytest.raises(InputError, match=expected):
        train_reward(RewardConfig(**{**config.__dict__, "init": str(tmp_path / "reward")}), progress=False)


def test_reward_model_logs_its_held_out_bradley_terry_loss_from_step_0(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl(tmp_path / "heldout.jsonl", HELD_OUT_PAIRS)
    summary = train_reward(RewardConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                                        eval_data=str(tmp_path / "heldout.jsonl"),
                                        out_dir=str(tmp_path / "reward"), max_length=64,
                                        max_prompt_length=32, batch_size=4, max_iters=4,
                                        learning_rate=1e-3, eval_interval=2), progress=False)
    rows = metrics_of(tmp_path / "reward")
    evaluations = evaluation_rows(rows)
    assert [row["step"] for row in evaluations] == [0, 2, 4]
    names = {"eval_loss", "eval_accuracy", "eval_margin", "eval_gold_agreement", "eval_gold_comparable_pairs"}
    assert all(set(row) == {"step", *names} for row in evaluations)
    assert all(set(row) == {"step", "loss", "lr", "accuracy", "margin"} for row in rows if row not in evaluations)
    # eval_loss is Bradley-Terry on the held-out pairs, here recomputed from the saved r_φ
    model, tokenizer = load_reward_model(tmp_path / "reward")
    held_out, _ = tokenize_pairs(HELD_OUT_PAIRS, tokenizer, RewardConfig(max_length=64, max_prompt_length=32),
                                 "test")
    with torch.no_grad():
        r_w, r_l = score_pairs(model, held_out, tokenizer.pad_id, "cpu")
    assert evaluations[-1]["eval_loss"] == pytest.approx(bradley_terry_loss(r_w, r_l).item(), rel=1e-5)
    assert evaluations[-1]["eval_accuracy"] == pytest.approx((r_w > r_l).double().mean().item())
    # the summary keeps its names (align.pipeline reads them), and gains the held-out loss
    assert summary["evaluated_on"] == "eval"
    for key in ("accuracy", "margin", "gold_agreement", "gold_comparable_pairs", "loss"):
        assert summary[key] == evaluations[-1][f"eval_{key}"]


# ------------------------------------------------------------------------------------ DPO
def dpo_setup(dtype=torch.float64):
    policy = byte_model(dtype=dtype)
    reference = byte_model(dtype=dtype).eval().requires_grad_(False)
    pairs, _ = tokenize_pairs(PAIRS, ByteTokenizer(), DPOConfig(max_length=64, max_prompt_length=32), "test")
    add_reference_logps(reference, pairs, ByteTokenizer().pad_id, "cpu", average_log_prob=False)
    return policy, reference, pairs


@pytest.fixture
def dpo_loss_calls(monkeypatch):
    """Every call align.dpo makes to dpo_loss: the four log-prob inputs and the two rewards."""
    calls = []

    def recording(*args, **kwargs):
        out = dpo_loss(*args, **kwargs)
        calls.append({"logps": [a.detach().clone() for a in args[:4]], "rewards": out[1:]})
        return out

    monkeypatch.setattr(align.dpo, "dpo_loss", recording)
    return calls


def cpu_bf16_autocast(monkeypatch):
    """CPU bf16 autocast stands in for CUDA's: align.dpo and align.common use it as on a GPU."""
    bf16 = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    monkeypatch.setattr(align.dpo, "autocast_for", bf16)
    monkeypatch.setattr(align.common, "autocast_for", bf16)


def test_dpo_loss_is_log_2_when_the_policy_is_the_reference():
    policy, _, pairs = dpo_setup()
    loss, metrics = dpo_batch(policy, pairs, DPOConfig(beta=0.1), ByteTokenizer().pad_id, "cpu")
    assert loss.item() == pytest.approx(math.log(2), abs=1e-12)
    assert metrics["rewards/margins"] == pytest.approx(0.0, abs=1e-12)


def test_one_step_raises_the_chosen_minus_rejected_log_ratio():
    policy, reference, pairs = dpo_setup()
    pad = ByteTokenizer().pad_id

    def log_ratio_gap():
        with torch.no_grad():
            chosen, rejected = concatenated_forward(policy, pairs, pad, "cpu")
        return (chosen - rejected).mean().item()

    before = log_ratio_gap()
    optimizer = make_optimizer(policy, 1e-3, 0.0)
    loss, _ = dpo_batch(policy, pairs, DPOConfig(beta=0.1), pad, "cpu")
    loss.backward()
    optimizer.step()
    assert log_ratio_gap() > before


def test_concatenated_forward_equals_separate_forwards_and_the_cache():
    policy, reference, pairs = dpo_setup()
    chosen, rejected = concatenated_forward(policy, pairs, ByteTokenizer().pad_id, "cpu")
    for i, pair in enumerate(pairs):
        for key, value in (("chosen", chosen[i]), ("rejected", rejected[i])):
            ids, labels = pair[key]
            alone = get_batch_logps(policy(torch.tensor([ids]))[0], torch.tensor([labels]))
            assert value.item() == pytest.approx(alone.item(), abs=1e-10)
            direct = get_batch_logps(reference(torch.tensor([ids]))[0], torch.tensor([labels]))
            assert pair[f"reference_{key}_logps"] == pytest.approx(direct.item(), abs=1e-10)


DPO_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
               "logps/chosen", "logps/rejected")


def test_dpo_run_logs_the_usual_metrics_and_freezes_the_reference(pretrained, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl(tmp_path / "heldout.jsonl", HELD_OUT_PAIRS)
    summary = train_dpo(DPOConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                                  eval_data=str(tmp_path / "heldout.jsonl"),
                                  out_dir=str(tmp_path / "dpo"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=30, learning_rate=1e-3, eval_interval=15),
                        progress=False)
    rows = metrics_of(tmp_path / "dpo")
    evaluations = evaluation_rows(rows)
    steps = [row for row in rows if row not in evaluations]
    assert [row["step"] for row in evaluations] == [0, 15, 30]
    assert all(set(row) == {"step", "eval_loss", *(f"eval_{key}" for key in DPO_METRICS)} for row in evaluations)
    assert all(set(row) == {"step", "loss", "lr", *DPO_METRICS} for row in steps)  # rewards/accuracies kept
    assert steps[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # step 1: π_θ = π_ref
    # the summary keeps its unprefixed names (align.pipeline reads them)
    assert summary["evaluated_on"] == "eval"
    for key in ("loss", *DPO_METRICS):
        assert summary[key] == evaluations[-1][f"eval_{key}"]
    assert summary["rewards/accuracies"] > 0.5 and summary["loss"] < evaluations[0]["eval_loss"]
    for name in ("loss.png", "rewards.png", "accuracies.png", "ckpt.pt"):
        assert (tmp_path / "dpo" / name).exists()


def test_dpo_evaluates_at_step_0_where_the_loss_is_log_2_and_a_tie_is_no_win(pretrained, tmp_path):
    """Before any update π_θ = π_ref: h = 0 for every pair, so −log σ(0) = log 2, and the
    accuracy (share of pairs with r̂(y_w) > r̂(y_l)) is 0, not 0.5: every pair is a tie."""
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl(tmp_path / "heldout.jsonl", HELD_OUT_PAIRS)
    common = dict(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"), max_length=64,
                  max_prompt_length=32, batch_size=4, max_iters=2, eval_interval=2)
    for eval_data, prefix in ((str(tmp_path / "heldout.jsonl"), "eval"), ("", "train")):
        train_dpo(DPOConfig(**common, eval_data=eval_data, out_dir=str(tmp_path / prefix)), progress=False)
        start = metrics_of(tmp_path / prefix)[0]
        assert start["step"] == 0 and "loss" not in start  # an evaluation row, logged first
        assert start[f"{prefix}_loss"] == pytest.approx(math.log(2), abs=1e-6)
        assert start[f"{prefix}_rewards/accuracies"] == 0.0
        assert start[f"{prefix}_rewards/margins"] == 0.0 and start[f"{prefix}_rewards/chosen"] == 0.0


def test_ipo_compares_per_token_mean_logps_and_ipo_summed_the_sums(pretrained, tmp_path, dpo_loss_calls):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    common = dict(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"), max_length=64,
                  max_prompt_length=32, batch_size=4, max_iters=1, eval_interval=1, loss_type="ipo")
    pairs, _ = tokenize_pairs(PAIRS, ByteTokenizer(), DPOConfig(max_length=64, max_prompt_length=32), "test")
    model = byte_model().eval()  # the checkpoint: π_θ = π_ref before the first update

    def one_by_one(average_log_prob):  # log π(y_w|x), log π(y_l|x), each pair in its own forward pass
        with torch.no_grad():
            return [torch.cat([get_batch_logps(model(torch.tensor([p[key][0]]))[0], torch.tensor([p[key][1]]),
                                               average_log_prob=average_log_prob) for p in pairs])
                    for key in ("chosen", "rejected")]

    means, sums = one_by_one(True), one_by_one(False)
    assert not torch.allclose(means[0], sums[0])  # answers of several tokens: the two differ
    for ipo_summed, expected in ((False, means), (True, sums)):
        dpo_loss_calls.clear()
        train_dpo(DPOConfig(**common, ipo_summed=ipo_summed, out_dir=str(tmp_path / f"ipo{ipo_summed}")),
                  progress=False)
        step_0 = dpo_loss_calls[0]["logps"]  # the evaluation at step 0: every pair, in file order
        for got, want in zip(step_0, expected * 2):  # π_θ(y_w), π_θ(y_l), π_ref(y_w), π_ref(y_l)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        step_1 = dpo_loss_calls[1]["logps"]  # a training batch: the same pairs, shuffled
        for got, want in zip(step_1, expected * 2):
            torch.testing.assert_close(got.sort().values, want.sort().values, rtol=1e-5, atol=1e-5)


def test_dpo_flags_say_which_log_probs_the_loss_compares(pretrained, capsys):
    assert not DPOConfig().mean_log_probs and DPOConfig(average_log_prob=True).mean_log_probs
    assert DPOConfig(loss_type="hinge", average_log_prob=True).mean_log_probs
    assert DPOConfig(loss_type="ipo").mean_log_probs  # IPO's default: per-token means
    assert not DPOConfig(loss_type="ipo", ipo_summed=True).mean_log_probs
    with pytest.raises(InputError, match="--ipo-summed goes with --loss-type ipo only"):
        DPOConfig(ipo_summed=True)
    with pytest.raises(InputError, match="--ipo-summed .* and --average-log-prob .* contradict"):
        DPOConfig(loss_type="ipo", ipo_summed=True, average_log_prob=True)
    for argv in (["--ipo-summed"], ["--loss-type", "hinge", "--ipo-summed"],
                 ["--loss-type", "ipo", "--ipo-summed", "--average-log-prob"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            run_main(align.dpo.main, ["--init", str(pretrained), "--data", "x.jsonl", *argv])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and err.startswith("error: --ipo-summed") and "\n" not in err


def test_dpo_batch_refuses_a_reference_cache_of_the_other_kind():
    policy, _, pairs = dpo_setup()  # π_ref's log-probs cached as sums
    with pytest.raises(ValueError, match="cached log-probs are sums but this loss needs means"):
        dpo_batch(policy, pairs, DPOConfig(loss_type="ipo"), ByteTokenizer().pad_id, "cpu")


def test_evaluation_runs_in_the_precision_of_the_cached_reference(monkeypatch, dpo_loss_calls):
    """π_ref's log-probs are cached under autocast (bf16 on CUDA): π_θ = π_ref must then give
    implicit rewards of exactly 0 in evaluation too, not bf16-against-float32 noise."""
    cpu_bf16_autocast(monkeypatch)
    pad = ByteTokenizer().pad_id
    policy, reference = byte_model(), byte_model().eval().requires_grad_(False)  # float32, π_θ = π_ref
    pairs, _ = tokenize_pairs(PAIRS, ByteTokenizer(), DPOConfig(max_length=64, max_prompt_length=32), "test")
    add_reference_logps(reference, pairs, pad, "cpu", average_log_prob=False)
    with torch.no_grad():  # float32: the cache really holds bf16-rounded values
        float32_chosen, _ = concatenated_forward(policy, pairs, pad, "cpu")
    cached = torch.tensor([p["reference_chosen_logps"] for p in pairs])
    assert (float32_chosen - cached).abs().max() > 1e-3

    config = DPOConfig(beta=0.1)
    policy.eval()
    result = evaluate_dpo(policy, pairs, config, pad, "cpu")
    with torch.no_grad():
        loss, metrics = dpo_batch(policy, pairs, config, pad, "cpu")
    for call in dpo_loss_calls:  # evaluate_dpo's batch, then dpo_batch's
        for rewards in call["rewards"]:  # β(log π_θ − log π_ref), chosen and rejected, every pair
            assert rewards.abs().max().item() == 0.0
    for values in (result, {"loss": loss.item(), **metrics}):
        assert values["loss"] == LOG_2_FLOAT32
        assert values["rewards/margins"] == 0.0 and values["rewards/chosen"] == 0.0
        assert values["rewards/rejected"] == 0.0 and values["rewards/accuracies"] == 0.0


def test_a_dpo_run_under_bf16_autocast_starts_at_exactly_log_2(pretrained, tmp_path, monkeypatch):
    cpu_bf16_autocast(monkeypatch)
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl(tmp_path / "heldout.jsonl", HELD_OUT_PAIRS)
    train_dpo(DPOConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                        eval_data=str(tmp_path / "heldout.jsonl"), out_dir=str(tmp_path / "dpo"),
                        max_length=64, max_prompt_length=32, batch_size=4, max_iters=1), progress=False)
    start = metrics_of(tmp_path / "dpo")[0]
    assert start["step"] == 0
    assert start["eval_loss"] == LOG_2_FLOAT32
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert start[f"eval_{key}"] == 0.0, key


def test_the_reference_is_a_frozen_copy_and_its_cached_logps_stay_valid(pretrained):
    from align.dpo import load_policy_and_reference
    policy, reference, tokenizer = load_policy_and_reference(pretrained, "cpu")
    assert not reference.training and not any(p.requires_grad for p in reference.parameters())
    assert policy.config.dropout == 0.0 and all(p.requires_grad for p in policy.parameters())
    pairs, _ = tokenize_pairs(PAIRS, tokenizer, DPOConfig(max_length=64, max_prompt_length=32), "test")
    add_reference_logps(reference, pairs, tokenizer.pad_id, "cpu", average_log_prob=False)
    before = [pair["reference_chosen_logps"] for pair in pairs]
    optimizer = make_optimizer(policy, 1e-2, 0.0)
    for _ in range(3):  # training π_θ must leave π_ref untouched
        loss, _ = dpo_batch(policy, pairs, DPOConfig(), tokenizer.pad_id, "cpu")
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    add_reference_logps(reference, pairs, tokenizer.pad_id, "cpu", average_log_prob=False)
    assert [pair["reference_chosen_logps"] for pair in pairs] == before
    chosen, _ = concatenated_forward(policy, pairs, tokenizer.pad_id, "cpu")
    assert chosen.tolist() != before  # while π_θ moved


@pytest.mark.parametrize("options", [dict(loss_type="ipo"), dict(loss_type="ipo", ipo_summed=True),
                                     dict(loss_type="hinge"),
                                     dict(label_smoothing=0.1), dict(reference_free=True),
                                     dict(average_log_prob=True)])
def test_every_dpo_option_trains_end_to_end(pretrained, tmp_path, options):
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    summary = train_dpo(DPOConfig(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                                  out_dir=str(tmp_path / "dpo"), max_length=64, max_prompt_length=32,
                                  batch_size=4, max_iters=20, learning_rate=1e-3, eval_interval=20,
                                  **options), progress=False)
    rows = metrics_of(tmp_path / "dpo")
    assert rows[0]["step"] == 0 and "train_loss" in rows[0]  # no held-out set: train_ names
    assert summary["evaluated_on"] == "train" and summary["loss"] < rows[0]["train_loss"]
    assert summary["rewards/margins"] > 0  # and the chosen answers gained on the rejected ones


def test_bad_stage_flags_fail_before_an_earlier_run_is_touched(pretrained, tmp_path):
    write_jsonl(tmp_path / "sft.jsonl", DEMOS)
    config = dict(init=str(pretrained), data=str(tmp_path / "sft.jsonl"), out_dir=str(tmp_path / "sft"),
                  max_length=64, max_prompt_length=32, batch_size=4, max_iters=4, eval_interval=2)
    train_sft(SFTConfig(**config), progress=False)
    metrics = (tmp_path / "sft" / "metrics.jsonl").read_bytes()
    for bad, message in ((dict(eval_interval=0), "--eval-interval must be at least 1"),
                         (dict(batch_size=0), "--batch-size must be at least 1"),
                         (dict(max_iters=0), "--max-iters must be at least 1")):
        with pytest.raises(InputError, match=message):
            train_sft(SFTConfig(**{**config, **bad}), progress=False)
    with pytest.raises(InputError, match="--beta must be positive"):
        DPOConfig(beta=0)
    with pytest.raises(InputError, match="--label-smoothing goes with --loss-type sigmoid only"):
        DPOConfig(label_smoothing=0.1, loss_type="hinge")
    assert (tmp_path / "sft" / "metrics.jsonl").read_bytes() == metrics


def stage_run(stage, pretrained, tmp_path, out, **overrides):
    """A tiny SFT, reward-model or DPO run's config (DPO and the reward model from SFT)."""
    write_jsonl(tmp_path / "demos.jsonl", DEMOS)
    write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    write_jsonl(tmp_path / "heldout.jsonl", HELD_OUT_PAIRS)
    common = {**dict(out_dir=str(out), max_length=64, max_prompt_length=32, batch_size=2,
                     max_iters=6, eval_interval=2, warmup_iters=1, learning_rate=1e-3, seed=3),
              **overrides}
    if stage == "sft":
        return train_sft, SFTConfig(init=str(pretrained), data=str(tmp_path / "demos.jsonl"), **common)
    data = dict(init=str(pretrained), data=str(tmp_path / "pairs.jsonl"),
                eval_data=str(tmp_path / "heldout.jsonl"))
    if stage == "reward":
        return train_reward, RewardConfig(**data, **common)
    return train_dpo, DPOConfig(**data, beta=0.5, **common)


@pytest.mark.parametrize("stage", ["sft", "reward", "dpo"])
def test_an_interrupted_stage_resumes_exactly(stage, pretrained, tmp_path, monkeypatch):
    train_stage, config = stage_run(stage, pretrained, tmp_path, tmp_path / "whole")
    train_stage(config, progress=False)

    real_learning_rate_at = align.common.learning_rate_at

    def interrupted_at_step_5(step, *args):  # after the checkpoint at step 4
        if step == 5:
            raise KeyboardInterrupt
        return real_learning_rate_at(step, *args)

    monkeypatch.setattr(align.common, "learning_rate_at", interrupted_at_step_5)
    _, cut = stage_run(stage, pretrained, tmp_path, tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        train_stage(cut, progress=False)
    monkeypatch.setattr(align.common, "learning_rate_at", real_learning_rate_at)
    _, resumed = stage_run(stage, pretrained, tmp_path, tmp_path / "cut", resume=True)
    train_stage(resumed, progress=False)

    whole, again = metrics_of(tmp_path / "whole"), metrics_of(tmp_path / "cut")
    assert [row["step"] for row in again] == [row["step"] for row in whole]  # nothing twice
    for a, b in zip(whole, again):  # every loss and evaluation as in the uninterrupted run
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a), (a, b)
    weights = [torch.load(tmp_path / name / "ckpt.pt", weights_only=True)["model"]
               for name in ("whole", "cut")]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key


def test_a_resume_with_other_settings_is_refused_by_name(pretrained, tmp_path):
    train_stage, config = stage_run("sft", pretrained, tmp_path, tmp_path / "run")
    train_stage(config, progress=False)
    _, changed = stage_run("sft", pretrained, tmp_path, tmp_path / "run", resume=True,
                           learning_rate=3e-3)
    with pytest.raises(InputError, match=r"cannot resume exactly: --learning-rate 0.001 → 0.003"):
        train_stage(changed, progress=False)
    _, fresh = stage_run("sft", pretrained, tmp_path, tmp_path / "nothing-here", resume=True)
    with pytest.raises(InputError, match="no such checkpoint"):
        train_stage(fresh, progress=False)


def test_a_stage_never_replaces_a_run_without_being_asked(pretrained, tmp_path):
    train_stage, config = stage_run("dpo", pretrained, tmp_path, tmp_path / "run")
    train_stage(config, progress=False)
    before = (tmp_path / "run" / "ckpt.pt").read_bytes()
    _, other = stage_run("dpo", pretrained, tmp_path, tmp_path / "run", learning_rate=5e-4)
    with pytest.raises(InputError, match="already holds a run; pass --resume to continue it, "
                                         "--overwrite to replace it"):
        train_stage(other, progress=False)
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() == before
    _, replacing = stage_run("dpo", pretrained, tmp_path, tmp_path / "run", learning_rate=5e-4,
                             overwrite=True)
    train_stage(replacing, progress=False)
    assert (tmp_path / "run" / "ckpt.pt").read_bytes() != before
