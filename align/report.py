"""The pipeline's figures and its report.md: every stage's result, and the evaluation with
its breakdown and intervals (see `align.compare`)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from align.breakdown import VERDICTS  # noqa: E402
from minigpt.runlog import RunFolder, column  # noqa: E402

# stage folder, its training-loss key, its held-out-loss keys (the first one present), title
LOSS_PANELS = [("pretrain", "loss", ("val_loss",), "pre-training: next-token loss"),
               ("sft", "loss", ("eval_loss", "eval_response_loss"), "SFT: response loss"),
               ("reward", "loss", ("eval_loss",), "reward model: Bradley-Terry loss"),
               ("dpo", "loss", ("eval_loss", "eval/loss"), "DPO loss")]


def smoothed(values, width=10):
    """Running mean over the last `width` values (a noisy per-batch curve made readable)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - width] if i >= width else 0.0)
        out.append(total / min(i + 1, width))
    return out


def first_column(rows, keys):
    for key in keys:
        steps, values = column(rows, key)
        if steps:
            return steps, values
    return [], []


def plot_losses(run: RunFolder):
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for ax, (stage, key, held_out_keys, title) in zip(axes, LOSS_PANELS):
        rows = RunFolder(run.file(stage)).read_metrics()
        ax.plot(*column(rows, key), linewidth=1, alpha=0.5, label="training batches")
        steps, values = first_column(rows, held_out_keys)
        ax.plot(steps, values, "o-", linewidth=2, label="held out (step 0 = before training)",
                zorder=3)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("losses.png"), dpi=100)
    plt.close(fig)


def plot_dpo(run: RunFolder):
    rows = RunFolder(run.file("dpo")).read_metrics()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        steps, values = column(rows, key)
        left.plot(steps, smoothed(values), label=f"{key} (training, mean of 10)", linewidth=1)
    left.plot(*first_column(rows, ("eval_rewards/margins", "eval/rewards/margins")), "o-",
              label="held-out margins", zorder=3)
    left.set_title("DPO implicit rewards r̂ = β·log π_θ(y|x)/π_ref(y|x)")
    left.set_ylabel("implicit reward")
    steps, values = column(rows, "rewards/accuracies")
    right.plot(steps, smoothed(values), linewidth=1, alpha=0.7,
               label="training batches (mean of 10)")
    right.plot(*first_column(rows, ("eval_rewards/accuracies", "eval/rewards/accuracies")), "o-",
               linewidth=2, label="held-out pairs (at step 0 every pair ties: no wins)", zorder=3)
    right.axhline(0.5, color="grey", linestyle=":", label="chance")
    right.set_title("DPO: share of pairs with r̂(y_w) > r̂(y_l)")
    right.set_ylabel("share of pairs")
    right.set_ylim(0, 1)
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("dpo_rewards.png"), dpi=100)
    plt.close(fig)


def plot_gold(run: RunFolder, comparison: dict):
    """gold_reward.png: mean r* with its interval, by policy, sampled and greedy side by side."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    names = list(comparison["sampled"])
    for offset, mode in ((-0.2, "sampled"), (0.2, "greedy")):
        xs, means, errors = [], [], [[], []]
        for i, name in enumerate(names):
            if name not in comparison[mode]:
                continue
            summary = comparison[mode][name]
            low, high = summary["gold_interval"]
            xs.append(i + offset)
            means.append(summary["gold_mean"])
            errors[0].append(summary["gold_mean"] - low)
            errors[1].append(high - summary["gold_mean"])
        label = "sampled (T = 1)" if mode == "sampled" else "greedy (T = 0)"
        ax.bar(xs, means, width=0.38, yerr=errors, capsize=4, label=label)
    best_fixed = max(comparison["fixed_answers"].items(), key=lambda item: item[1])
    ax.axhline(best_fixed[1], color="red", linestyle="--", linewidth=1,
               label=f"best fixed answer {best_fixed[0]!r}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("mean gold reward r* (95% interval)")
    ax.set_title(f"Gold reward on {comparison['prompts']} held-out prompts (r* ∈ [-12, 3])")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("gold_reward.png"), dpi=100)
    plt.close(fig)


def plot_components(run: RunFolder, comparison: dict):
    """gold_components.png: what each policy's r* is made of, and what its answers are."""
    sampled = comparison["sampled"]
    names = list(sampled)
    components = list(next(iter(sampled.values()))["breakdown"]["components"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 4.5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        breakdown = sampled[name]["breakdown"]
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(components))]
        left.bar(xs, [breakdown["components"][c] for c in components], width=width, label=name)
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(VERDICTS))]
        right.bar(xs, [breakdown["shares"][v] for v in VERDICTS], width=width, label=name)
    left.set_xticks(range(len(components)), components)
    left.axhline(0, color="black", linewidth=0.8)
    left.set_ylabel("mean over held-out prompts")
    left.set_title("Components of r* (they add up to the mean r*)")
    right.set_xticks(range(len(VERDICTS)), [v.replace("_", "-") for v in VERDICTS])
    right.set_ylabel("share of answers")
    right.set_ylim(0, 1)
    right.set_title("What the sampled answers are")
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run.file("gold_components.png"), dpi=100)
    plt.close(fig)


def plot_pipeline(run: RunFolder, comparison: dict):
    """losses.png, dpo_rewards.png, gold_reward.png, gold_components.png."""
    plot_losses(run)
    plot_dpo(run)
    plot_gold(run, comparison)
    plot_components(run, comparison)


def interval(estimate, low, high, digits=3) -> str:
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def total(truncation: dict, key: str) -> int:
    """A count summed over the training and held-out sets."""
    return sum(counts.get(key, 0) for counts in truncation.values())


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def evaluation_lines(evaluation: dict) -> list[str]:
    """The tables of `align.compare`'s results."""
    lines = [f"## Held-out evaluation ({evaluation['prompts']} prompts, held out by content)", "",
             "| policy | answers | mean r* [95% CI] | right [95% CI] | wrong | offensive | evasive "
             "| off-topic | distinct answers | cut at max tokens |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for mode in ("sampled", "greedy"):
        for name, s in evaluation[mode].items():
            shares = s["breakdown"]["shares"]
            lines.append(
                f"| {name} | {mode} | {interval(s['gold_mean'], *s['gold_interval'])} | "
                f"{interval(s['right_share'], *s['right_interval'], digits=2)} | "
                + " | ".join(f"{shares[v]:.2f}" for v in VERDICTS[1:])
                + f" | {s['breakdown']['distinct_answers']} | {s['unfinished']} |")
    components = list(next(iter(evaluation["sampled"].values()))["breakdown"]["components"])
    lines += ["", "Mean of each component of r* (sampled answers):", "",
              "| policy | " + " | ".join(components) + " |",
              "| --- |" + " --- |" * len(components)]
    for name, s in evaluation["sampled"].items():
        lines.append(f"| {name} | " + " | ".join(f"{s['breakdown']['components'][c]:.3f}"
                                                 for c in components) + " |")
    kinds = list(next(iter(evaluation["sampled"].values()))["breakdown"]["right_by_kind"])
    lines += ["", "Right-answer share by kind of question (right / asked):", "",
              "| policy | answers | " + " | ".join(kinds) + " |",
              "| --- | --- |" + " --- |" * len(kinds)]
    for mode in ("sampled", "greedy"):
        for name, s in evaluation[mode].items():
            by_kind = s["breakdown"]["right_by_kind"]
            lines.append(f"| {name} | {mode} | " + " | ".join(
                f"{by_kind[k]['share']:.2f} ({by_kind[k]['right']}/{by_kind[k]['n']})"
                if k in by_kind else "–" for k in kinds) + " |")
    lines += ["", "Paired comparisons on the same prompts (bootstrap over prompts, 95%):", "",
              "| comparison | mean r* difference | win rate (ties ½) | right-share difference |",
              "| --- | --- | --- | --- |"]
    for name, p in evaluation["paired"].items():
        lines.append(f"| {name} | {interval(*p['gold_difference'])} | {interval(*p['win_rate'])} | "
                     f"{interval(*p['right_share_difference'])} |")
    lines += ["", "| policy | KL(π_θ‖π_ref), sampled log-ratio | KL, exact per token | answers |",
              "| --- | --- | --- | --- |"]
    for name, kl in evaluation["kl"].items():
        lines.append(f"| {name} | {kl['kl']:.3f} ± {kl['kl_ci']:.3f} nats | "
                     f"{kl['kl_exact_per_token']:.3f} ± {kl['kl_exact_per_token_ci']:.3f} nats | "
                     f"{kl['n']} |")
    lines += ["", "What answers that ignore the question get on the same prompts (mean r*): "
              + "; ".join(f"{a!r} {v:.2f}" for a, v in evaluation["fixed_answers"].items()) + "."]
    return lines


def write_report(run: RunFolder, results: dict, lecture: dict, lecture_prompts):
    start, end = results["dpo_train_accuracy_start_end"]
    evaluation = results["evaluation"]
    dpo_greedy = evaluation["greedy"]["DPO"]["right_share"]
    pairs, heldout = results["pairs"], results["heldout_pairs"]
    lines = [
        f"# Lecture 10 end to end (preset `{results['preset']}`, {results['device']}, "
        f"{results['seconds']:.0f} s)", "",
        "| stage | measure | value |", "| --- | --- | --- |",
        f"| pre-training | validation loss (nats per byte) | {results['pretrain_val_loss']:.4f} |",
        f"| SFT | held-out response loss | {results['sft_response_loss']:.4f} |",
        f"| reward model r_φ | held-out accuracy (r_φ(y_w) > r_φ(y_l)) | {results['reward_accuracy']:.3f} |",
        f"| reward model r_φ | agreement with the gold ranking ({results['reward_comparable_pairs']} "
        f"held-out pairs whose r* differ) | {results['reward_gold_agreement']:.3f} |",
        f"| DPO | implicit-reward accuracy, {results['dpo_heldout_pairs']} held-out pairs [95% CI] | "
        f"{interval(results['dpo_heldout_accuracy'], *results['dpo_heldout_accuracy_interval'])} |",
        f"| DPO | implicit-reward accuracy, training batches (first → last tenth) | "
        f"{start:.3f} → {end:.3f} |", "",
        f"The aim: the aligned policy answers at least half of the held-out questions right "
        f"(greedy). DPO greedy: **{dpo_greedy:.2f}**"
        f" ({'met' if dpo_greedy >= 0.5 else 'not met'}).", "",
        *evaluation_lines(evaluation), "",
        f"Preference pairs: {pairs['pairs']} for training, {heldout['pairs']} held out; answers "
        f"cut by max_new_tokens (no EOS sampled) left out before pairing: "
        f"{pairs['unfinished_dropped']} of {pairs['answers']} + {heldout['unfinished_dropped']} of "
        f"{heldout['answers']}, kept as sampled (without EOS): {pairs['unfinished_kept']} + "
        f"{heldout['unfinished_kept']}; skipped for identical answers: {pairs['identical_skipped']} + "
        f"{heldout['identical_skipped']}, for an empty answer: {pairs['empty_skipped']} + "
        f"{heldout['empty_skipped']}. Training labels that agree with the gold ranking: "
        f"{pairs['label_agrees_with_gold']} (gold ties: {pairs['gold_ties']}). The reward model "
        f"and DPO train on the sampled token ids.",
        "Truncation (training + held-out rows): " + "; ".join(
            f"{stage} {total(t, 'prompt_truncated')} prompts cut, "
            f"{total(t, 'response_truncated')} responses cut, {total(t, 'dropped')} dropped of "
            f"{total(t, 'rows')}" for stage, t in results["truncation"].items()),
        "Stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results["timings"].items()),
        "", "## The lecture's prompts (greedy answers)", "",
        "| prompt | SFT (π_ref) | DPO (π_θ) |", "| --- | --- | --- |",
    ]
    for i, prompt in enumerate(lecture_prompts):
        lines.append("| " + " | ".join(cell(c) for c in [prompt] + [lecture[n][i] for n in ("SFT", "DPO")])
                     + " |")
    lines += ["", "![losses](losses.png)", "", "![DPO rewards](dpo_rewards.png)", "",
              "![gold reward](gold_reward.png)", "", "![gold components](gold_components.png)", ""]
    run.write_text("report.md", "\n".join(lines))
