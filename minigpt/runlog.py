"""The run folder every command writes: config, metrics, plots, report.

    RUN/config.json     the resolved configuration (every flag's final value)
    RUN/metrics.jsonl   one JSON object per line, each with a "step"
    RUN/*.png           plots made from the metrics
    RUN/report.md       a short summary in Markdown
    RUN/ckpt.pt         the checkpoint (minigpt.checkpoint)
    RUN/run.json        whose folder it is (minigpt.ownership): no other command writes here

Example:
    >>> run = RunFolder("runs/demo")
    >>> run.log({"step": 1, "loss": 2.5})
    >>> run.read_metrics()
    [{'step': 1, 'loss': 2.5}]
"""

import json
import os

import matplotlib

matplotlib.use("Agg")  # write PNG files; never open a window
import matplotlib.pyplot as plt  # noqa: E402

from minigpt.checkpoint import write_atomically  # noqa: E402
from minigpt.errors import InputError  # noqa: E402
from minigpt.ownership import write_owner_file  # noqa: E402


def running_mean(values, width: int) -> list[float]:
    """The mean of the last `width` values at each point (fewer at the start): a noisy
    per-batch curve made readable."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - width] if i >= width else 0.0)
        out.append(total / min(i + 1, width))
    return out


class RunFolder:
    def __init__(self, path, kind: str | None = None):
        """Open (and make) the folder; kind: the kind of run a command writes into it
        (minigpt.ownership.KINDS), recorded in run.json. Without kind the folder is only read."""
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        if kind is not None:
            write_owner_file(self.path, kind)

    def file(self, name) -> str:
        return os.path.join(self.path, name)

    def write_json(self, name, values: dict):
        write_atomically(self.file(name), json.dumps(values, indent=2, ensure_ascii=False).encode())

    def write_text(self, name, text: str):
        write_atomically(self.file(name), text.encode("utf-8"))

    def log(self, row: dict):
        """Append one metrics row (flushed at once, so a crash loses nothing logged)."""
        with open(self.file("metrics.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict]:
        if not os.path.exists(self.file("metrics.jsonl")):
            return []
        with open(self.file("metrics.jsonl"), encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        rows = []
        for number, line in enumerate(lines, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):  # only a last line cut short by a crash is expected
                    raise InputError(f"{self.file('metrics.jsonl')}, line {number}: not JSON") from None
                print(f"warning: {self.file('metrics.jsonl')}: ignoring its last line, cut short")
        return rows

    def keep_metrics_up_to(self, step: int):
        """On resume: drop rows logged after the checkpoint's step (they will be redone)."""
        rows = [row for row in self.read_metrics() if row["step"] <= step]
        write_atomically(self.file("metrics.jsonl"),
                         "".join(json.dumps(row) + "\n" for row in rows).encode())

    def plot(self, name, series: dict, title: str, ylabel: str = "loss", log_y: bool = False,
             evaluation=(), smooth: int = 0, hlines: dict | None = None, ylim=None):
        """One figure: series maps a label to (steps, values); saved as RUN/name.

        evaluation: the labels of the series measured every eval_interval steps (held-out
        or training pairs); they are drawn in front: thick, with markers. smooth > 1: every
        other series (one point per training batch) is drawn faint, under its running mean
        over the last `smooth` batches, and the legend says so. hlines maps a label to the
        height of a dotted reference line (chance, log 2); ylim = (low, high) fixes the y-axis.
        """
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, (steps, values) in series.items():
            if not steps:
                continue  # a metric this run did not record
            if label in evaluation:  # a few points, each over many examples: in front
                ax.plot(steps, values, "o-", label=label, linewidth=2.5, markersize=5, zorder=3)
            elif smooth > 1:  # one point per batch: noisy, so its running mean on top
                (raw,) = ax.plot(steps, values, linewidth=0.8, alpha=0.3)
                ax.plot(steps, running_mean(values, smooth), color=raw.get_color(),
                        linewidth=1.5, label=f"{label}, running mean of {smooth} (faint: each batch)")
            else:
                many = len(steps) > 50
                ax.plot(steps, values, label=label, alpha=0.5 if many else 1.0,
                        linewidth=1 if many else 2, marker=None if many else "o")
        for label, y in (hlines or {}).items():
            ax.axhline(y, color="grey", linestyle=":", linewidth=1, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(self.file(name), dpi=100)
        plt.close(fig)

def column(rows: list[dict], key: str):
    """(steps, values) of the rows that have key."""
    picked = [(row["step"], row[key]) for row in rows if key in row]
    return [s for s, _ in picked], [v for _, v in picked]
