"""The figures a student reads: what each one draws, checked on its matplotlib Axes.

Each plotting function saves its figure and closes it; here `plt.close` is replaced by a
list's append, so the test can open the figure and look at its lines, bars and labels.
"""

from itertools import pairwise

import pytest
from matplotlib.container import BarContainer

from align.dpo import plot_dpo as plot_dpo_stage
from align.report import SMOOTH, plot_dpo, plot_gold, plot_losses, smoothed
from minigpt.runlog import RunFolder


def write_stage(run: RunFolder, stage: str, rows: list[dict]):
    folder = RunFolder(run.file(stage))
    for row in rows:
        folder.log(row)


def stage_rows(eval_key: str, steps=20, every=10, batch_metrics=None):
    """An evaluation row at step 0 and every `every` steps, a training row at every step."""
    rows = [{"step": 0, eval_key: 1.0}]
    for step in range(1, steps + 1):
        rows.append({"step": step, "loss": 1.0 / step, **(batch_metrics or {})})
        if step % every == 0:
            rows.append({"step": step, eval_key: 1.0 / step + 0.1})
    return rows


def dpo_rows(steps=20, every=10, prefix="eval"):
    """DPO's metrics: every pair ties at step 0 and 1; a batch of 16 wins 0 or 16 pairs after."""
    rows = [{"step": 0, f"{prefix}_loss": 0.693, f"{prefix}_rewards/accuracies": 0.0,
             f"{prefix}_rewards/margins": 0.0}]
    for step in range(1, steps + 1):
        accuracy = 0.0 if step == 1 else float(step % 2)  # the noise of a small batch
        rows.append({"step": step, "loss": 0.693 / step, "rewards/accuracies": accuracy,
                     "rewards/chosen": -0.1 * step, "rewards/rejected": -0.2 * step,
                     "rewards/margins": 0.1 * step})
        if step % every == 0:
            rows.append({"step": step, f"{prefix}_loss": 0.6, f"{prefix}_rewards/accuracies": 0.7,
                         f"{prefix}_rewards/margins": 0.5})
    return rows


def line_labelled(ax, text):
    lines = [line for line in ax.get_lines() if text in line.get_label()]
    assert len(lines) == 1, [line.get_label() for line in ax.get_lines()]
    return lines[0]


def test_smoothed_is_the_running_mean_over_the_last_values():
    assert smoothed([0.0, 1.0, 0.0, 1.0, 1.0], width=2) == [0.0, 0.5, 0.5, 0.5, 1.0]
    assert smoothed([3.0, 5.0], width=10) == [3.0, 4.0]  # fewer values than the window


def test_losses_png_draws_every_stages_evaluation_from_step_0_with_labelled_axes(tmp_path, figures):
    run = RunFolder(tmp_path)
    write_stage(run, "pretrain", stage_rows("val_loss"))
    write_stage(run, "sft", stage_rows("eval_loss"))
    write_stage(run, "reward", stage_rows("train_loss"))  # a stage without a held-out set
    write_stage(run, "dpo", stage_rows("eval_loss"))
    plot_losses(run)
    assert (tmp_path / "losses.png").stat().st_size > 0
    (figure,) = figures
    axes = figure.axes
    assert len(axes) == 4
    for ax, key in zip(axes, ("val_loss", "eval_loss", "train_loss", "eval_loss")):
        assert ax.get_ylabel().startswith("loss"), ax.get_title()
        assert ax.get_xlabel() == "step"
        evaluation = line_labelled(ax, key)
        assert list(evaluation.get_xdata()) == [0, 10, 20]  # step 0 is drawn
        assert evaluation.get_marker() == "o"
        batches = line_labelled(ax, f"mean of {SMOOTH}")
        assert list(batches.get_ydata()) == pytest.approx(smoothed([1.0 / s for s in range(1, 21)]))
        assert evaluation.get_zorder() > batches.get_zorder()
    assert "held out" in line_labelled(axes[1], "eval_loss").get_label()
    assert "training rows" in line_labelled(axes[2], "train_loss").get_label()


def comparison():
    """The shape of `align.compare.compare_policies`'s result that plot_gold reads."""
    def summary(mean):
        return {"gold_mean": mean, "gold_interval": (mean - 0.3, mean + 0.2)}
    return {"prompts": 32,
            "sampled": {"SFT": summary(-1.9), "DPO": summary(-1.0), "best-of-4 (r_φ)": summary(-0.9)},
            "greedy": {"SFT": summary(-1.5), "DPO": summary(-0.5)},
            "fixed_answers": {"I am Mary.": -0.6, "Yes.": -1.0}}


def test_gold_reward_png_puts_each_policy_and_mode_in_its_own_bar_with_its_interval(tmp_path, figures):
    plot_gold(RunFolder(tmp_path), comparison())
    (figure,) = figures
    (ax,) = figure.axes
    containers = [c for c in ax.containers if isinstance(c, BarContainer)]
    bars = [patch for container in containers for patch in container.patches]
    assert sorted(round(bar.get_height(), 6) for bar in bars) == sorted([-1.9, -1.0, -0.9, -1.5, -0.5])
    spans = sorted((bar.get_x(), bar.get_x() + bar.get_width()) for bar in bars)
    assert all(right <= next_left for (_, right), (next_left, _) in pairwise(spans)), \
        "no two bars overlap"
    error_bars = [container.errorbar for container in containers if container.errorbar is not None]
    assert len(error_bars) == 5, "every bar carries its 95% interval"
    segments = [segment for errorbar in error_bars for segment in errorbar.lines[2][0].get_segments()]
    assert sorted(round(float(min(s[:, 1])), 6) for s in segments) == sorted(
        round(m - 0.3, 6) for m in (-1.9, -1.0, -0.9, -1.5, -0.5))  # the intervals' low ends
    labels = [label.get_text() for label in ax.get_xticklabels()]
    assert labels[:2] == ["SFT", "DPO"] and "sampled only" in labels[2]
    assert ax.get_ylabel() and ax.get_title()
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any("sampled" in t for t in legend) and any("greedy" in t for t in legend)


def test_dpo_rewards_png_smooths_the_batches_and_draws_the_held_out_curve_in_front(tmp_path, figures):
    run = RunFolder(tmp_path)
    write_stage(run, "dpo", dpo_rows())
    plot_dpo(run)
    (figure,) = figures
    left, right = figure.axes
    for ax in (left, right):
        assert ax.get_ylabel() and ax.get_title()
    batches = line_labelled(right, f"mean of {SMOOTH}")
    accuracies = [0.0] + [float(step % 2) for step in range(2, 21)]
    assert list(batches.get_ydata()) == pytest.approx(smoothed(accuracies))
    held_out = line_labelled(right, "eval_rewards/accuracies")
    assert list(held_out.get_xdata()) == [0, 10, 20]
    assert held_out.get_zorder() > batches.get_zorder()
    assert held_out.get_linewidth() > batches.get_linewidth()


@pytest.mark.parametrize("prefix", ["eval", "train"])
def test_the_dpo_stage_plots_smooth_the_batches_and_put_the_evaluation_in_front(tmp_path, figures,
                                                                                prefix):
    run = RunFolder(tmp_path)
    plot_dpo_stage(run, dpo_rows(prefix=prefix), prefix)
    assert [name for name in ("loss.png", "rewards.png", "accuracies.png")
            if (tmp_path / name).stat().st_size > 0] == ["loss.png", "rewards.png", "accuracies.png"]
    loss, rewards, accuracies = (figure.axes[0] for figure in figures)
    for ax, key in ((loss, "_loss"), (rewards, "_rewards/margins"), (accuracies, "_rewards/accuracies")):
        assert ax.get_ylabel() and ax.get_title()
        evaluation = line_labelled(ax, prefix + key)
        assert list(evaluation.get_xdata()) == [0, 10, 20]
        assert evaluation.get_marker() == "o"
        for line in ax.get_lines():
            if "running mean" in line.get_label():
                assert evaluation.get_zorder() > line.get_zorder()
                assert evaluation.get_linewidth() > line.get_linewidth()
    smoothed_accuracy = line_labelled(accuracies, "running mean of 10")
    assert smoothed_accuracy.get_ydata()[0] == pytest.approx(0.0)  # step 1: every pair ties
    assert max(smoothed_accuracy.get_ydata()[9:]) < 0.6  # batches of 0 and 1 average near 0.5
    assert "chance" in " ".join(line.get_label() for line in accuracies.get_lines())
