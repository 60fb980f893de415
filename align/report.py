"""The pipeline's figures and its report.md: one table with every stage's result."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minigpt.runlog import RunFolder, column  # noqa: E402


def plot_pipeline(run: RunFolder, gold: dict):
    """losses.png (one panel per stage), dpo_rewards.png, gold_reward.png."""
    stages = [("pretrain", "loss", "pre-training: next-token loss"),
              ("sft", "loss", "SFT: response loss"),
              ("reward", "loss", "reward model: Bradley-Terry loss"),
              ("dpo", "loss", "DPO loss")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.5))
    for ax, (stage, key, title) in zip(axes, stages):
        steps, values = column(RunFolder(run.file(stage)).read_metrics(), key)
        ax.plot(steps, values, linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(run.file("losses.png"), dpi=100)
    plt.close(fig)

    rows = RunFolder(run.file("dpo")).read_metrics()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        left.plot(*column(rows, key), label=key, linewidth=1)
    left.plot(*column(rows, "eval/rewards/margins"), "o-", label="held-out margins")
    left.set_title("DPO implicit rewards β·log π_θ(y|x)/π_ref(y|x)")
    right.plot(*column(rows, "rewards/accuracies"), label="training batch", linewidth=1, alpha=0.6)
    right.plot(*column(rows, "eval/rewards/accuracies"), "o-", label="held-out pairs")
    right.axhline(0.5, color="grey", linestyle=":", label="chance")
    right.set_title("DPO: share of pairs with r̂(y_w) > r̂(y_l)")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("dpo_rewards.png"), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    low = min(min(v) for v in gold.values())
    high = max(max(v) for v in gold.values())
    bins = [low + (high - low) * i / 20 for i in range(21)] if high > low else 10
    for name, values in gold.items():
        ax.hist(values, bins=bins, alpha=0.45, label=f"{name} (mean {sum(values) / len(values):.2f})")
    ax.set_xlabel("gold reward r*(x, y) on held-out prompts")
    ax.set_ylabel("answers")
    ax.set_title("Gold reward of sampled answers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.file("gold_reward.png"), dpi=100)
    plt.close(fig)


def fmt_ci(mean_ci) -> str:
    mean, half = mean_ci
    return f"{mean:.3f} ± {half:.3f}" if not math.isnan(half) else f"{mean:.3f}"


def total(truncation: dict, key: str) -> int:
    """A count summed over the training and held-out sets."""
    return sum(counts[key] for counts in truncation.values())


def write_report(run: RunFolder, results: dict, lecture: dict, lecture_prompts):
    difference = results["gold_difference_dpo_minus_sft"]
    low, high = difference[0] - difference[1], difference[0] + difference[1]
    start, end = results["dpo_train_accuracy_start_end"]
    lines = [
        f"# Lecture 10 end to end (preset `{results['preset']}`, {results['device']}, "
        f"{results['seconds']:.0f} s)", "",
        "| stage | measure | value |", "| --- | --- | --- |",
        f"| pre-training | validation loss (nats per byte) | {results['pretrain_val_loss']:.4f} |",
        f"| SFT | held-out response loss | {results['sft_response_loss']:.4f} |",
        f"| reward model r_φ | held-out accuracy (r_φ(y_w) > r_φ(y_l)) | {results['reward_accuracy']:.3f} |",
        f"| reward model r_φ | agreement with the gold ranking ({results['reward_comparable_pairs']} "
        f"held-out pairs whose r* differ) | {results['reward_gold_agreement']:.3f} |",
        f"| DPO | implicit-reward accuracy, held-out pairs | {results['dpo_heldout_accuracy']:.3f} |",
        f"| DPO | implicit-reward accuracy, training batches (first → last tenth) | "
        f"{start:.3f} → {end:.3f} |",
    ]
    for name, mean_ci in results["gold"].items():
        lines.append(f"| evaluation | mean gold reward r*, {name} (95% CI) | {fmt_ci(mean_ci)} |")
    lines += [
        f"| evaluation | DPO − SFT gold reward (95% CI) | {fmt_ci(difference)} "
        f"[{low:.3f}, {high:.3f}] |",
        f"| evaluation | DPO win rate against SFT (ties ½) | {results['dpo_win_rate']:.3f} |",
        f"| evaluation | mean per-sequence KL(π_θ‖π_ref) | {results['kl']:.3f} nats |",
        "",
        f"Preference pairs: {results['pairs']['pairs']} for training, "
        f"{results['heldout_pairs']['pairs']} held out; skipped for identical answers: "
        f"{results['pairs']['identical_skipped']} + {results['heldout_pairs']['identical_skipped']}, "
        f"for an empty answer: {results['pairs']['empty_skipped']} + "
        f"{results['heldout_pairs']['empty_skipped']}. Training labels that agree with the gold "
        f"ranking: {results['pairs']['label_agrees_with_gold']} (gold ties: "
        f"{results['pairs']['gold_ties']}).",
        "Truncation (training + held-out rows): " + "; ".join(
            f"{stage} {total(t, 'prompt_truncated')} prompts cut, "
            f"{total(t, 'response_truncated')} responses cut, {total(t, 'dropped')} dropped of "
            f"{total(t, 'rows')}" for stage, t in results["truncation"].items()),
        "Stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results["timings"].items()),
        "", "## The lecture's prompts (greedy answers)", "",
        "| prompt | SFT (π_ref) | DPO (π_θ) |", "| --- | --- | --- |",
    ]
    for i, prompt in enumerate(lecture_prompts):
        cells = [prompt] + [lecture[name][i] for name in ("SFT", "DPO")]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    lines += ["", "![losses](losses.png)", "", "![DPO rewards](dpo_rewards.png)", "",
              "![gold reward](gold_reward.png)", ""]
    run.write_text("report.md", "\n".join(lines))
