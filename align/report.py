"""The pipeline's figures and its report.md: every stage's result, and the evaluation with
its breakdown and intervals (see `align.compare`)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from align.breakdown import VERDICTS
from align.probe import SUMS, format_table  # noqa: E402
from align.expected import MEASURED_ON, compare_with_expected  # noqa: E402
from align.stats import proportion_interval  # noqa: E402
from minigpt.runlog import RunFolder, column, running_mean  # noqa: E402
from toyworld.world import COUNTRIES, TOPICS  # noqa: E402

# stage folder, its training-loss key, its evaluation-loss keys (the first one present),
# title, y-axis label
LOSS_PANELS = [("pretrain", "loss", ("val_loss",), "pre-training: next-token loss",
                "loss (nats per token)"),
               ("sft", "loss", ("eval_loss", "eval_response_loss", "train_loss"),
                "SFT: response loss", "loss (nats per response token)"),
               ("reward", "loss", ("eval_loss", "train_loss"), "reward model: Bradley-Terry loss",
                "loss (nats per pair)"),
               ("dpo", "loss", ("eval_loss", "eval/loss", "train_loss"), "DPO loss",
                "loss (nats per pair)")]
SMOOTH = 10  # the running mean's window over training batches, stated in every legend

# Presets whose models are too small and too briefly trained for their numbers to mean anything
SMOKE_PRESETS = ("quick", "smoke")


def is_smoke(preset) -> bool:
    return preset in SMOKE_PRESETS


def figure_banner(preset) -> str:
    """The line a smoke run's figures carry above their titles ("" for any other preset)."""
    if not is_smoke(preset):
        return ""
    return (f"SMOKE RUN (preset {preset}): these numbers mean nothing.\n"
            f"A tiny model trained for seconds; only a default run's are the lecture's results.")


def add_banner(fig, banner: str):
    """A smoke run's banner (figure_banner's, or the frontier's) as the figure's suptitle,
    above any suptitle it already has; nothing for "". Called before tight_layout, which
    leaves room for it."""
    if not banner:
        return
    below = fig.get_suptitle()
    fig.suptitle(banner + (f"\n{below}" if below else ""), color="darkred", fontweight="bold")


def smoothed(values, width=SMOOTH):
    """Running mean over the last `width` values (minigpt.runlog.running_mean)."""
    return running_mean(values, width)


def first_column(rows, keys):
    """(steps, values, key) of the first key the rows have; ([], [], None) if none."""
    for key in keys:
        steps, values = column(rows, key)
        if steps:
            return steps, values, key
    return [], [], None


def evaluated_on(key) -> str:
    """What an evaluation row was measured on, from its name (align.common's prefixes)."""
    return "training rows" if key.startswith("train_") else "held out"


def batch_curve(ax, steps, values, label):
    """One point per training batch: faint, under its running mean (the one in the legend)."""
    (raw,) = ax.plot(steps, values, linewidth=0.8, alpha=0.3)
    ax.plot(steps, smoothed(values), color=raw.get_color(), linewidth=1.5,
            label=f"{label} (mean of {SMOOTH})")


def plot_losses(run: RunFolder, preset=None):
    """losses.png: each stage's training loss per batch (faint, and its running mean) and its
    evaluation loss (thick, in front), from step 0, before any update."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.4))
    for ax, (stage, key, evaluation_keys, title, ylabel) in zip(axes, LOSS_PANELS):
        rows = RunFolder(run.file(stage)).read_metrics()
        batch_curve(ax, *column(rows, key), "training batches")
        steps, values, found = first_column(rows, evaluation_keys)
        if found:
            ax.plot(steps, values, "o-", linewidth=2.5, markersize=5, zorder=3,
                    label=f"{evaluated_on(found)} ({found})")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Loss of each stage: training batches (faint; the line is their running mean of "
                 f"{SMOOTH}) and the evaluation (dots), from step 0 = before any update")
    add_banner(fig, figure_banner(preset))
    fig.tight_layout()
    fig.savefig(run.file("losses.png"), dpi=100)
    plt.close(fig)


def plot_dpo(run: RunFolder, preset=None):
    """dpo_rewards.png: DPO's implicit rewards and accuracy, training batches and held out."""
    rows = RunFolder(run.file("dpo")).read_metrics()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        batch_curve(left, *column(rows, key), f"{key}, training batches")
    steps, values, found = first_column(rows, ("eval_rewards/margins", "eval/rewards/margins",
                                               "train_rewards/margins"))
    if found:
        left.plot(steps, values, "o-", linewidth=2.5, markersize=5, zorder=3,
                  label=f"{found} ({evaluated_on(found)})")
    left.axhline(0, color="grey", linestyle=":", linewidth=1)
    left.set_title("DPO implicit rewards r̂ = β·log π_θ(y|x)/π_ref(y|x)")
    left.set_ylabel("implicit reward r̂")
    batch_curve(right, *column(rows, "rewards/accuracies"), "training batches")
    steps, values, found = first_column(rows, ("eval_rewards/accuracies", "eval/rewards/accuracies",
                                               "train_rewards/accuracies"))
    if found:
        right.plot(steps, values, "o-", linewidth=2.5, markersize=5, zorder=3,
                   label=f"{found} ({evaluated_on(found)}; at step 0 every pair ties: no wins)")
    right.axhline(0.5, color="grey", linestyle=":", label="chance (0.5)")
    right.set_title("DPO: share of pairs with r̂(y_w) > r̂(y_l)")
    right.set_ylabel("share of pairs")
    right.set_ylim(-0.02, 1.02)
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    add_banner(fig, figure_banner(preset))
    fig.tight_layout()
    fig.savefig(run.file("dpo_rewards.png"), dpi=100)
    plt.close(fig)


def plot_gold(run: RunFolder, comparison: dict, preset=None):
    """gold_reward.png: mean r* with its 95% interval, by policy, sampled and greedy side by side.

    comparison is `align.compare.compare_policies`'s result: for each answering mode, each
    policy's summary (gold_mean, gold_interval, ...). Best-of-N picks among sampled answers
    only, so it has no greedy bar.
    """
    modes = {"sampled": ("sampled (T = 1)", "tab:blue"), "greedy": ("greedy (T = 0)", "tab:orange")}
    names = list(comparison["sampled"])  # SFT, DPO, best-of-N
    width = 0.38
    fig, ax = plt.subplots(figsize=(11, 4.5))
    labelled = set()  # each mode named once in the legend
    for i, name in enumerate(names):
        present = [mode for mode in modes if name in comparison[mode]]
        for j, mode in enumerate(present):
            summary = comparison[mode][name]
            mean, (low, high) = summary["gold_mean"], summary["gold_interval"]
            x = i + (j - (len(present) - 1) / 2) * width  # the bars of one policy side by side
            label, color = modes[mode]
            ax.bar(x, mean, width=width * 0.95, color=color, yerr=[[mean - low], [high - mean]],
                   capsize=5, label=None if mode in labelled else label)
            labelled.add(mode)
            end = low if mean < 0 else high  # write the numbers past the end of the error bar
            ax.annotate(f"{mean:.2f}\n[{low:.2f}, {high:.2f}]", (x, end), ha="center", fontsize=8,
                        va="top" if mean < 0 else "bottom",
                        xytext=(0, -3 if mean < 0 else 3), textcoords="offset points")
    best_fixed = max(comparison["fixed_answers"].items(), key=lambda item: item[1])
    ax.axhline(best_fixed[1], color="red", linestyle="--", linewidth=1,
               label=f"best fixed answer {best_fixed[0]!r} ({best_fixed[1]:.2f})")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(names)), [name if name in comparison["greedy"] else f"{name}\n(sampled only)"
                                      for name in names])
    ax.margins(y=0.15)  # room for the numbers
    ax.set_xlabel("policy")
    ax.set_ylabel("mean gold reward r* (95% interval)")
    ax.set_title(f"Gold reward r* on {comparison['prompts']} held-out prompts "
                 "(r* ∈ [-12, 3]; higher is better)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    add_banner(fig, figure_banner(preset))
    fig.tight_layout()
    fig.savefig(run.file("gold_reward.png"), dpi=100)
    plt.close(fig)


def plot_components(run: RunFolder, comparison: dict, preset=None):
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
    left.set_xlabel("component of r*")
    left.set_title("Components of r* (they add up to the mean r*)")
    right.set_xticks(range(len(VERDICTS)), [v.replace("_", "-") for v in VERDICTS])
    right.set_ylabel("share of answers")
    right.set_ylim(0, 1)
    right.set_xlabel("verdict of the gold reward on the answer")
    right.set_title("What the sampled answers are")
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    add_banner(fig, figure_banner(preset))
    fig.tight_layout()
    fig.savefig(run.file("gold_components.png"), dpi=100)
    plt.close(fig)


def plot_pipeline(run: RunFolder, comparison: dict, preset: str):
    """losses.png, dpo_rewards.png, gold_reward.png, gold_components.png; a smoke preset's
    figures say so above their titles (`figure_banner`)."""
    plot_losses(run, preset)
    plot_dpo(run, preset)
    plot_gold(run, comparison, preset)
    plot_components(run, comparison, preset)


def interval(estimate, low, high, digits=3) -> str:
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def total(truncation: dict, key: str) -> int:
    """A count summed over the training and held-out sets."""
    return sum(counts.get(key, 0) for counts in truncation.values())


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def prompts_counted(evaluation: dict) -> str:
    """"221 distinct held-out prompts, 58 questions (...)": how many prompts the tables
    average and how many questions the intervals resample. (An older run drew prompts with
    repeats and counted each draw as independent: that is said too.)"""
    n, distinct = evaluation["prompts"], evaluation.get("distinct_prompts")
    questions = evaluation.get("distinct_questions")
    if questions is not None and distinct == n:
        return (f"{n} distinct held-out prompts asking {questions} distinct questions; the "
                f"intervals resample the questions")
    if distinct is None or distinct == n:
        return f"{n} held-out prompts"
    return (f"{n} held-out prompts ({distinct} distinct questions, drawn with repeats; the "
            f"intervals count each of the {n} as independent, so they are too narrow)")


def evaluation_lines(evaluation: dict) -> list[str]:
    """The tables of `align.compare`'s results."""
    lines = [f"## Held-out evaluation ({prompts_counted(evaluation)}, held out by content)", "",
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
              + "; ".join(f"{a!r} {v:.2f}" for a, v in evaluation["fixed_answers"].items()) + ".",
              *fixed_answer_lines(evaluation)]
    return lines


def fixed_answer_lines(evaluation: dict) -> list[str]:
    """Each policy against the best answer that ignores the question, said to every prompt."""
    if "minus_best_fixed" not in evaluation:
        return []
    best = evaluation["best_fixed_answer"]
    return ["", f"Against the best fixed answer, {best!r} said to every prompt (mean r* "
                f"{evaluation['fixed_answers'][best]:.2f}): policy − it, sampled answers, paired "
                f"95% interval: " + "; ".join(f"{name} {signed(*d)}"
                                              for name, d in evaluation["minus_best_fixed"].items())
            + "."]


def knowledge_lines(results) -> list[str]:
    """The knowledge probe's table (align.probe): stored facts beside right answers."""
    if "knowledge" not in results:
        return []
    tables = {(name, split): table for split, by_model in results["knowledge"].items()
              for name, table in by_model.items()}
    return ["## Stored or used: the knowledge probe", "",
            "\"stored\": the model ranks the true plain sentence (\"Kyoto is in Japan.\") above "
            "every false variant; \"right\": its greedy answer to the prompts asking those facts "
            "is right; \"right given stored\": the same among the prompts whose fact is stored. "
            "Stored but not right is knowledge the model has and does not use.", "",
            *format_table(tables), "", *reward_knowledge_lines(results)]


def reward_knowledge_lines(results) -> list[str]:
    """Does r_φ use the facts? (align.probe.reward_facts), held-out beside training."""
    by_split = results.get("reward_knowledge")
    if not by_split:
        return []

    def shares(split, field):
        found = [f"{kind} {row[field]:.2f}" for kind, row in by_split.get(split, {}).items()
                 if row[field] is not None]
        return ", ".join(found) or "none probed"
    weight = results.get("reward_likelihood_weight")
    reads = ("" if weight is None else
             f" This r_φ reads its trunk's likelihood of the answer beside its head: "
             f"r_φ = w·h_EOS + b + λ·(1/|y|)·log π_φ(y|x), λ = {weight:.2f} after training "
             f"(from 1).")
    chance = (f"{len(COUNTRIES) - 1} other countries, {len(SUMS) - 1} other sums, "
              f"{len(TOPICS) - 1} other topics")
    return [f"Does r_φ use the facts? It scores the true sentence above every false variant, "
            f"given as the answer, for held-out facts: {shares('heldout', 'right_first')} "
            f"(training facts: {shares('train', 'right_first')}); the right sum above both "
            f"sums one off: held-out {shares('heldout', 'above_near_miss')} (training "
            f"{shares('train', 'above_near_miss')}). Chance is one in the number of variants "
            f"({chance}) and, for the near misses, about a third. A reward model that ranks "
            f"training facts and not held-out ones has learnt the answers it was shown, not "
            f"to check them.{reads}", ""]


def reward_kind_lines(results) -> list[str]:
    """r_φ's held-out accuracy per kind of pair, and its mean score on off-topic offers."""
    by_kind = results.get("reward_accuracy_by_pair_kind")
    if not by_kind:
        return []
    line = ("r_φ's held-out accuracy by kind of pair: " + "; ".join(
        f"{kind.replace('_', ' ')} {row['accuracy']:.3f} ({row['n']} pairs)"
        for kind, row in by_kind.items()) + ".")
    off, right = results.get("reward_off_topic_score"), results.get("reward_right_score")
    if off is not None and right is not None:
        line += (f" Its mean score on answers to another question offered instead: {off:+.2f}, "
                 f"on right answers in the same pairs: {right:+.2f}.")
    right_vs_wrong = results.get("reward_right_vs_wrong_by_kind")
    if right_vs_wrong:
        tallies = "; ".join(f"{kind} {row['accuracy']:.2f} ({row['n']} pairs)"
                            for kind, row in right_vs_wrong.items())
        line += (" Right above wrong, a right and a wrong answer to the same held-out "
                 "question (π_ref's samples and the world's pairs; does r_φ use the fact?): "
                 + tallies + ".")
    return [line]


def smoke_banner(results) -> list[str]:
    """The report's first lines for a smoke preset: its numbers mean nothing, and why; [] for
    any other preset. SFT's own greedy and sampled r* are quoted so the reader sees it."""
    if not is_smoke(results["preset"]):
        return []
    sft_greedy = results["evaluation"]["greedy"]["SFT"]["gold_mean"]
    sft_sampled = results["evaluation"]["sampled"]["SFT"]["gold_mean"]
    return [f"> **Smoke run (preset `{results['preset']}`): these numbers mean nothing.** A tiny "
            f"model trained for seconds cannot answer yet: its greedy answers typically repeat one "
            f"word (\"is is is …\"), which r* rates as off-topic (−1, what a dodge costs), above "
            f"its garbled sampled answers (this run: SFT's greedy answers r* {sft_greedy:.2f}, its "
            f"sampled ones {sft_sampled:.2f}); no difference below says anything about alignment. "
            f"Only a default run's numbers (`python -m align.pipeline`) are the lecture's results.",
            ""]


def and_join(words) -> str:
    """"a", "a and b", "a, b and c"."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def direction(low, high):
    """"up" when a 95% interval of a difference lies above 0, "down" below 0, else None: the
    interval does not tell the difference from no difference."""
    return "up" if low > 0 else "down" if high < 0 else None


def signed(estimate, low, high) -> str:
    return f"{estimate:+.2f} [{low:+.2f}, {high:+.2f}]"


def compared_policies(evaluation) -> list[str]:
    """The policies compared with SFT on sampled answers, from the paired keys ("DPO − SFT")."""
    return [key.removesuffix(" − SFT") for key in evaluation["paired"]
            if key.endswith(" − SFT")]


def largest_moves(evaluation, name, count=2) -> str:
    """"wrong 0.45 → 0.25, offensive 0.12 → 0.03": the verdicts whose share of the sampled
    answers moved most from SFT to this policy (point estimates), what a gain is made of."""
    ours = evaluation["sampled"][name]["breakdown"]["shares"]
    base = evaluation["sampled"]["SFT"]["breakdown"]["shares"]
    verdicts = sorted(VERDICTS, key=lambda v: -abs(ours[v] - base[v]))[:count]
    return ", ".join(f"{v.replace('_', '-')} {base[v]:.2f} → {ours[v]:.2f}" for v in verdicts)


def gold_sentence(evaluation) -> str:
    """Which policies gain or lose mean r* against SFT, each with its paired interval: a gain
    or a loss is named only where the interval excludes 0, with the verdict shares that
    moved most beside it."""
    said = {"up": [], "down": [], None: []}
    for name in compared_policies(evaluation):
        estimate, low, high = evaluation["paired"][f"{name} − SFT"]["gold_difference"]
        change = direction(low, high)
        mix = f" (answers: {largest_moves(evaluation, name)})" if change else ""
        said[change].append(f"{name} {signed(estimate, low, high)}{mix}")
    parts = []
    if said["up"]:
        parts.append(f"gain{'s' if len(said['up']) == 1 else ''} over SFT: {and_join(said['up'])}")
    if said["down"]:
        parts.append(f"fall{'s' if len(said['down']) == 1 else ''} below SFT: "
                     f"{and_join(said['down'])}")
    if said[None]:
        parts.append(f"not told apart from SFT (the interval includes 0): {and_join(said[None])}")
    return (f"Mean gold reward r* against SFT on the same {prompts_counted(evaluation)} "
            f"(sampled answers, difference with its paired 95% interval): "
            + "; ".join(parts) + ".")


def share_difference(ours, theirs):
    """(d, low, high): ours − theirs of two shares, each {"right", "n"}, with Newcombe's 95%
    interval (Wilson's interval of each share, combined). It treats the two as independent:
    for two policies that tend to be right on the same prompts it is wider than a paired
    interval, so a change it supports is one a paired interval would support too."""
    p, q = ours["right"] / ours["n"], theirs["right"] / theirs["n"]
    p_low, p_high = proportion_interval(p, ours["n"])
    q_low, q_high = proportion_interval(q, theirs["n"])
    d = p - q
    return (d, d - ((p - p_low) ** 2 + (q_high - q) ** 2) ** 0.5,
            d + ((p_high - p) ** 2 + (q - q_low) ** 2) ** 0.5)


# How the right-answer share is read: held-out facts one by one, the assistant's own
# questions together (toyworld.world.KINDS); any other kind under its own name.
KIND_GROUPS = {"cities": ("city",), "sums": ("arithmetic",), "topics": ("explain",),
               "the assistant's own questions (name, language, greeting, wellbeing)":
                   ("name", "language", "greeting", "wellbeing")}


def kind_groups(right_by_kind) -> dict:
    """{group: {"right", "n"}} of one policy's breakdown["right_by_kind"], pooled by KIND_GROUPS."""
    named = {kind for kinds in KIND_GROUPS.values() for kind in kinds}
    groups = {**KIND_GROUPS, **{kind: (kind,) for kind in right_by_kind if kind not in named}}
    pooled = {}
    for group, kinds in groups.items():
        counts = [right_by_kind[k] for k in kinds if k in right_by_kind]
        if counts:
            pooled[group] = {"right": sum(c["right"] for c in counts),
                             "n": sum(c["n"] for c in counts)}
    return pooled


def moved(ours, theirs) -> str | None:
    """"up", "down" or None for a share of ours against theirs (`share_difference`)."""
    return direction(*share_difference(ours, theirs)[1:])


def change_label(changes: dict) -> str:
    """"improved by DPO and RLHF", "fell for DPO", "not improved by any policy", ... from
    {policy: "up" | "down" | None}."""
    ups = [name for name, change in changes.items() if change == "up"]
    downs = [name for name, change in changes.items() if change == "down"]
    parts = ([f"improved by {and_join(ups)}"] if ups else []) + \
            ([f"fell for {and_join(downs)}"] if downs else [])
    return ", ".join(parts) or "not improved by any policy"


def kinds_sentence(evaluation) -> str:
    """The right-answer share of each kind of question, SFT against each policy (sampled):
    a kind is called improved (or fallen) only where the interval of its change excludes 0."""
    names = [n for n in compared_policies(evaluation) if n in evaluation["sampled"]]
    sft = kind_groups(evaluation["sampled"]["SFT"]["breakdown"]["right_by_kind"])
    policies = {n: kind_groups(evaluation["sampled"][n]["breakdown"]["right_by_kind"])
                for n in names}
    by_label = {}
    for group, base in sft.items():
        changes = {n: moved(policies[n][group], base) for n in names}
        shares = ", ".join(f"{policies[n][group]['right'] / policies[n][group]['n']:.2f}"
                           for n in names)
        by_label.setdefault(change_label(changes), []).append(
            f"{group} {base['right'] / base['n']:.2f} → {shares} ({base['n']} asked)")
    return (f"Right answers by kind of held-out question, sampled, SFT → {', '.join(names)} (a "
            f"change counts only where an unpaired 95% interval of it excludes 0): "
            + "; ".join(f"{label}: {and_join(groups)}" for label, groups in by_label.items()) + ".")


def off_topic_sentence(evaluation) -> str:
    """How the share of answers that ignore the question moved, SFT against each policy."""
    sampled = evaluation["sampled"]
    names = [n for n in compared_policies(evaluation) if n in sampled]

    def counts(name):
        breakdown = sampled[name]["breakdown"]
        return {"right": round(breakdown["shares"]["off_topic"] * breakdown["n"]),
                "n": breakdown["n"]}

    words = {"up": "rose beyond the noise for", "down": "fell beyond the noise for",
             None: "moved within the noise for"}
    said = {}
    for name in names:
        said.setdefault(moved(counts(name), counts("SFT")), []).append(
            f"{name} ({sampled[name]['breakdown']['shares']['off_topic']:.2f})")
    return (f"The share of off-topic answers, which ignore the question (sampled, SFT "
            f"{sampled['SFT']['breakdown']['shares']['off_topic']:.2f}), "
            + "; ".join(f"{words[change]} {and_join(items)}" for change, items in said.items())
            + ".")


AIM = 0.5  # the stated aim: right on at least half of the held-out questions, greedy


def aim_note(share, low, high) -> str:
    """What the interval adds to a share read against AIM: a point estimate on one side of
    one half whose interval reaches the other side is not a clear verdict."""
    if share >= AIM > low:
        return " (its interval reaches below one half)"
    if share < AIM <= high:
        return " (its interval reaches one half)"
    return ""


def aim_sentence(evaluation) -> str:
    """Whether DPO and RLHF (greedy) are right on at least AIM of the held-out questions."""
    greedy = evaluation["greedy"]
    names = [n for n in ("DPO", "RLHF") if n in greedy]
    met = [n for n in names if greedy[n]["right_share"] >= AIM]
    if len(names) == 1:
        verb = "is met" if met else "is not met"
    elif len(met) == len(names):
        verb = f"is met by both {and_join(names)}"
    elif not met:
        verb = f"is met by neither {' nor '.join(names)}"
    else:
        verb = f"is met by {and_join(met)} only"
    shares = "; ".join(f"{n} {interval(greedy[n]['right_share'], *greedy[n]['right_interval'], 2)}"
                       f"{aim_note(greedy[n]['right_share'], *greedy[n]['right_interval'])}"
                       for n in names)
    return (f"The stated aim, right on at least half of the held-out questions (greedy), {verb}: "
            f"{shares}.")


def findings(results) -> list[str]:
    """The report's opening: what the evaluation found, each sentence written from its numbers."""
    evaluation = results["evaluation"]
    return ["What this run found:", ""] + [
        f"- {sentence}" for sentence in (gold_sentence(evaluation), kinds_sentence(evaluation),
                                         off_topic_sentence(evaluation), aim_sentence(evaluation))
    ] + [""]


def expected_lines(results) -> list[str]:
    """A default run's headline figures against the range the measured runs gave
    (`align.expected`); [] for another preset, whose figures have no expected range."""
    if results.get("preset") != "default":
        return []
    lines = ["## Against the expected range", "",
             "| figure | this run | expected range | verdict |", "| --- | --- | --- | --- |"]
    for row in compare_with_expected(results):
        value = "—" if row["value"] is None else f"{row['value']:.2f}"
        lines.append(f"| {row['label']} | {value} | {row['low']:g} to {row['high']:g} | "
                     f"{row['verdict']} |")
    return lines + ["", f"The ranges come from {MEASURED_ON}. \"within\": this run behaves like "
                        f"those; \"outside\": look closer (a changed flag, another version of the "
                        f"code, or a bug).", ""]


LECTURE_COLUMNS = {"SFT": "SFT (π_ref)", "DPO": "DPO (π_θ)", "RLHF": "RLHF (π_θ, RL)"}


def rlhf_rows(results) -> list[str]:
    """The RLHF stage's lines of the stage table (none for a run made before it existed)."""
    if "rlhf" not in results:
        return []
    rl, trend = results["rlhf"], results["rlhf_scores_start_end"]
    scores, gold, kl = trend["objective/scores"], trend["objective/gold_scores"], trend["objective/kl"]
    return [f"| RLHF ({rl['algorithm']}, β = {rl['beta']:g}) | rollouts' r_φ, first → last tenth of "
            f"training | {scores[0]:.3f} → {scores[1]:.3f} |",
            f"| RLHF ({rl['algorithm']}, β = {rl['beta']:g}) | rollouts' r* (never seen by RL), first → "
            f"last tenth | {gold[0]:.3f} → {gold[1]:.3f} |",
            f"| RLHF ({rl['algorithm']}, β = {rl['beta']:g}) | rollouts' KL (sampled log-ratio), first → "
            f"last tenth | {kl[0]:.2f} → {kl[1]:.2f} nats |", *collapse_rows(rl)]


def collapse_rows(rl: dict) -> list[str]:
    """The RLHF stage's collapse watch: its last evaluation's most common answer."""
    watch = rl.get("collapse")
    if not watch or watch.get("answer") is None:
        return []
    verdict = (f"collapsed (first at step {watch['first_step']})" if watch["collapsed"]
               else f"not collapsed (more than {watch['threshold']:.0%} would be)")
    return [f"| RLHF ({rl['algorithm']}, β = {rl['beta']:g}) | most common answer at the last "
            f"evaluation | {cell(repr(watch['answer']))}, {watch['share']:.0%} of the prompts: "
            f"{verdict} |"]


def write_report(run: RunFolder, results: dict, lecture: dict, lecture_prompts):
    """report.md: a smoke preset's banner, what the run found (`findings`), a default run's
    figures against their expected range, then every stage's table and the evaluation's."""
    start, end = results["dpo_train_accuracy_start_end"]
    evaluation = results["evaluation"]
    pairs, heldout = results["pairs"], results["heldout_pairs"]
    lines = [
        f"# Lecture 10 end to end (preset `{results['preset']}`, {results['device']}, "
        f"{results['seconds']:.0f} s)", "",
        *smoke_banner(results), *findings(results), *expected_lines(results),
        "## Every stage", "",
        "| stage | measure | value |", "| --- | --- | --- |",
        f"| pre-training | validation loss (nats per token) | {results['pretrain_val_loss']:.4f} |",
        f"| SFT | held-out response loss | {results['sft_response_loss']:.4f} |",
        f"| reward model r_φ | held-out accuracy (r_φ(y_w) > r_φ(y_l)) | {results['reward_accuracy']:.3f} |",
        f"| reward model r_φ | agreement with the gold ranking ({results['reward_comparable_pairs']} "
        f"held-out pairs whose r* differ) | {results['reward_gold_agreement']:.3f} |",
        f"| DPO | implicit-reward accuracy, {results['dpo_heldout_pairs']} held-out pairs [95% CI] | "
        f"{interval(results['dpo_heldout_accuracy'], *results['dpo_heldout_accuracy_interval'])} |",
        f"| DPO | implicit-reward accuracy, training batches (first → last tenth) | "
        f"{start:.3f} → {end:.3f} |",
        *rlhf_rows(results), "", *reward_kind_lines(results), "",
        *evaluation_lines(evaluation), "", *knowledge_lines(results),
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
        "| prompt | " + " | ".join(LECTURE_COLUMNS[n] for n in lecture) + " |",
        "| --- | " + " | ".join("---" for _ in lecture) + " |",
    ]
    for i, prompt in enumerate(lecture_prompts):
        lines.append("| " + " | ".join(cell(c) for c in [prompt] + [lecture[n][i] for n in lecture])
                     + " |")
    lines += ["", "![losses](losses.png)", "", "![DPO rewards](dpo_rewards.png)", "",
              *(["![RLHF: r_φ and r*](rlhf/rewards.png)", ""] if "rlhf" in results else []),
              "![gold reward](gold_reward.png)", "", "![gold components](gold_components.png)", ""]
    run.write_text("report.md", "\n".join(lines))
