"""The frontier's figures and frontier.md (see `align.frontier` for what each point is).

- frontier.png: r* against KL(π‖π_ref), every point with its 95% intervals on both axes;
  the points of one training run are joined in the order they were measured, from SFT
  (KL 0). Best-of-N's KL is the closed-form bound log N − (N − 1)/N (dashed).
- overoptimisation.png: r_φ against r* for the same points. Along a run, a curve that goes
  right (r_φ rises) but not up (r* does not) is reward over-optimisation: the policy found
  what r_φ likes and r* does not.
- frontier.md: the table, then the best r* each method reaches within each KL budget, and
  the verdict computed from it: which method reaches more r* at equal KL, stated only for
  the budgets whose paired interval excludes 0.

A smoke frontier (--quick, or one on a quick or smoke pipeline run) says so on top of
frontier.md and of both figures: its numbers mean nothing.
"""

import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from align.breakdown import COLLAPSE_SHARE  # noqa: E402
from align.gao import MIN_POINTS, fitted_gain, gao_fit  # noqa: E402
from align.report import SMOKE_PRESETS, add_banner, direction  # noqa: E402
from align.stats import paired_bootstrap  # noqa: E402

KL_BUDGETS = (0.5, 1, 2, 4, 8, 16)  # nats per answer
STYLE = {"DPO": ("tab:blue", "o"), "RLHF": ("tab:red", "s"), "best-of-N": ("tab:green", "^"),
         "π*_β": ("black", "D"), "SFT": ("black", "*")}


def family(method: str) -> str:
    """The figure's colour group of a method name ("RLHF (RLOO)" → "RLHF")."""
    return next((name for name in STYLE if method.startswith(name)), method)


def trained(method: str) -> bool:
    return method.startswith(("DPO", "RLHF"))


def runs(points):
    """{(method, setting): [points in step order]} for DPO and RLHF (one run per β);
    {(method, ""): [points in KL order]} for the others (one curve over N or β)."""
    out = {}
    for p in points:
        out.setdefault((p["method"], p["setting"] if trained(p["method"]) else ""), []).append(p)
    return {key: sorted(value, key=lambda p: (p["step"], p["kl"])) for key, value in out.items()}


def plottable(p) -> bool:
    """π*_β points that too few samples carry are not drawn."""
    return p.get("reliable", True)


def comparable(p) -> bool:
    """Points that count in the comparison at equal KL: drawn, and not collapsed onto one
    answer (align.frontier.collapse_check, align.breakdown's rule: one answer to more than a
    tenth of the distinct prompts; its r* is a fixed answer's, not alignment)."""
    return plottable(p) and not p.get("collapsed", False)


def draw(ax, points, x_key, x_err):
    """Each run a line of points with error bars; SFT the origin of every trained run."""
    sft = next(p for p in points if p["method"].startswith("SFT"))
    shades = {}
    for (method, setting), curve in runs(points).items():
        if method.startswith("SFT"):
            continue
        curve = [p for p in curve if plottable(p)]
        if not curve:
            continue
        name = family(method)
        color, marker = STYLE[name]
        shades[name] = shades.get(name, 0) + 1
        alpha = max(1.0 - 0.18 * (shades[name] - 1), 0.35)  # one family, lighter for each β
        line = ([sft] if trained(method) else []) + curve
        xs = [p[x_key] for p in line]
        ys = [p["gold"] for p in line]
        ax.plot(xs, ys, color=color, alpha=alpha, linestyle="--" if name == "best-of-N" else "-",
                linewidth=1.2)
        for kept, suffix in ((True, ""), (False, " (collapsed: hollow)")):
            some = [p for p in curve if comparable(p) == kept]
            if not some:
                continue
            ax.errorbar([p[x_key] for p in some], [p["gold"] for p in some],
                        yerr=[[p["gold"] - p["gold_low"] for p in some],
                              [p["gold_high"] - p["gold"] for p in some]],
                        xerr=[p[x_err] for p in some] if x_err else None, fmt=marker, color=color,
                        alpha=alpha, markersize=7, capsize=2,
                        markerfacecolor=color if kept else "none",
                        label=f"{method} {setting}".strip() + suffix)
    ax.errorbar([sft[x_key]], [sft["gold"]],
                yerr=[[sft["gold"] - sft["gold_low"]], [sft["gold_high"] - sft["gold"]]],
                fmt="*", color="black", markersize=14, capsize=3, label="SFT (π_ref)", zorder=5)


def pipeline_preset(config):
    """The preset of the pipeline run the frontier reads (its config.json); None if unknown."""
    try:
        with open(os.path.join(config.run, "config.json"), encoding="utf-8") as f:
            return json.load(f).get("preset")
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def smoke_reasons(config) -> dict:
    """Why this frontier is a smoke test, {short: long}: --quick (a few steps per β on a few
    prompts), or a pipeline run of a smoke preset under it (a tiny model trained for
    seconds). {} if neither."""
    reasons = {}
    if config.quick:
        reasons["--quick"] = "--quick: a few training steps per β, measured on a few prompts"
    preset = pipeline_preset(config)
    if preset in SMOKE_PRESETS:
        reasons[f"pipeline preset {preset}"] = (f"its pipeline run is preset `{preset}`: a tiny "
                                                f"model trained for seconds")
    return reasons


def draw_gao_fits(ax, points):
    """Each family's fitted law (gao_fits) as a thin dotted curve, up to its farthest point."""
    sft = next(p for p in points if family(p["method"]) == "SFT")
    for name, fit in gao_fits(points).items():
        if fit is None:
            continue
        farthest = max(p["kl"] for p in points if family(p["method"]) == name and comparable(p))
        kl = np.linspace(0.0, farthest, 100)
        ax.plot(kl, sft["gold"] + fitted_gain(fit, kl, fit["form"]), color=STYLE[name][0],
                linestyle=":", linewidth=1.0, label=f"{name}: Gao et al.'s {fit['form']} law, fitted")


def smoke_banner(config) -> list[str]:
    """frontier.md's first lines for a smoke frontier ([] for any other)."""
    reasons = smoke_reasons(config)
    if not reasons:
        return []
    return [f"> **Smoke run ({'; '.join(reasons.values())}): these numbers mean nothing.** Its "
            f"answers are mostly garbled, its intervals wide, and which method leads here is "
            f"noise. Only a default frontier on a default pipeline run (`python -m align.frontier "
            f"--run runs/pipeline`) gives the lecture's results.", ""]


def figure_banner(config) -> str:
    """The line a smoke frontier's figures carry above their titles ("" for any other)."""
    reasons = smoke_reasons(config)
    if not reasons:
        return ""
    return (f"SMOKE RUN ({', '.join(reasons)}): these numbers mean nothing.\n"
            f"Only a default frontier on a default pipeline run gives the lecture's results.")


FIGURES = (  # file, x, its error bar, x label, y label, title
    ("frontier.png", "kl", "kl_ci",
     "KL(π ‖ π_ref) per answer, nats (exact per token; best-of-N: the bound log N − (N−1)/N)",
     "gold reward r* (held-out prompts, mean and 95% CI)",
     "Gold reward against KL: DPO, RLHF, best-of-N and π*_β (the DPO paper's Fig. 2)"),
    ("overoptimisation.png", "reward_model_score", None,
     "r_φ of the same answers (what RLHF and best-of-N optimise)",
     "gold reward r* (mean and 95% CI)",
     "Reward over-optimisation: r_φ keeps rising, does r* follow?"),
)


GAO_FORMS = {"best-of-N": "best-of-N", "RLHF": "RL", "DPO": "RL"}  # family -> the law fitted


def gao_fits(points) -> dict:
    """{family: align.gao.gao_fit of its points, or None}: R = r* − r*(SFT) against KL, over
    the family's points that are compared (not collapsed, carried), every β and step
    together. Gao et al. fit best-of-N and RL; DPO is given the RL form, for comparison."""
    sft = next(p for p in points if family(p["method"]) == "SFT")
    fits = {}
    for name, form in GAO_FORMS.items():
        mine = [p for p in points if family(p["method"]) == name and comparable(p)]
        fit = gao_fit([p["kl"] for p in mine], [p["gold"] - sft["gold"] for p in mine], form)
        fits[name] = None if fit is None else {**fit, "form": form}
    return fits


def gao_lines(fits) -> list[str]:
    """frontier.md's section on the fits: α, β_g, residual and where gold reward peaks."""
    lines = ["## Over-optimisation laws (Gao et al. 2022)", "",
             "R = r* − r*(SFT) against d = √KL, fitted by least squares over each family's "
             "compared points: best-of-N R = d(α − β_g·d), RL R = d(α − β_g·log d) (DPO given "
             "the RL form, for comparison). β_g > 0 is over-optimisation: past d* more KL "
             "loses gold reward.", "",
             "| method | law | points | α | β_g | residual (r*) | peak: d*, KL* (nats) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, fit in fits.items():
        if fit is None:
            lines.append(f"| {name} | {GAO_FORMS[name]} | fewer than {MIN_POINTS} with KL > 0 | "
                         f"— | — | — | not fitted |")
            continue
        peak = ("none (β_g ≤ 0: the curve never turns down)" if fit["d_star"] is None
                else f"{fit['d_star']:.2f}, {fit['kl_star']:.2f}")
        lines.append(f"| {name} | {fit['form']} | {fit['points']} | {fit['alpha']:.3f} | "
                     f"{fit['beta']:.3f} | {fit['residual']:.3f} | {peak} |")
    peaks = [f"{name} at KL ≈ {fit['kl_star']:.2f}" for name, fit in fits.items()
             if fit is not None and fit["d_star"] is not None]
    lines += ["", (f"On these fits gold reward peaks for {', '.join(peaks)} nats; further from "
                   f"π_ref, optimising r_φ loses r*." if peaks else
                   "No fitted curve turns down within these points: no over-optimisation "
                   "measured here.")]
    return lines


def plot_frontier(run, points, config, best_fixed=None):
    """frontier.png and overoptimisation.png (FIGURES), with the r* of the best fixed answer
    of the bank (one answer said to every prompt) as a dotted line: a point below it is
    beaten by a policy that ignores the question. A smoke frontier's say so on top."""
    banner = figure_banner(config)
    for name, x_key, x_err, xlabel, ylabel, title in FIGURES:
        fig, ax = plt.subplots(figsize=(9, 6))
        draw(ax, points, x_key, x_err)
        if best_fixed is not None:
            ax.axhline(best_fixed["gold"], color="grey", linestyle=":",
                       label=f"best fixed answer: {best_fixed['answer']!r} ({best_fixed['gold']:.2f})")
        if x_key == "kl":
            draw_gao_fits(ax, points)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="best")
        add_banner(fig, banner)
        fig.tight_layout()
        fig.savefig(run.file(name), dpi=120)
        plt.close(fig)


def interval(p, key, bounds, digits=2):
    """"value [low, high]" of p[key] and p[bounds_low], p[bounds_high]; "—" where there is none."""
    value, low, high = p.get(key), p.get(f"{bounds}_low"), p.get(f"{bounds}_high")
    if value is None:
        return "—"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def best_within(points, budget):
    """{family: the point of highest r* among those with KL ≤ budget} (`comparable` ones only)."""
    best = {}
    for p in points:
        name = family(p["method"])
        if name == "SFT" or not comparable(p) or p["kl"] > budget:
            continue
        if name not in best or p["gold"] > best[name]["gold"]:
            best[name] = p
    return best


def paired_difference(ours, theirs):
    """ours − theirs in mean r* on the same prompts: (estimate, low, high), paired bootstrap."""
    return paired_bootstrap(ours["gold_per_prompt"], theirs["gold_per_prompt"], "mean_difference")


def leader(low, high):
    """The method ahead at one budget from the paired interval of RLHF − DPO: "RLHF" when it
    lies above 0, "DPO" below 0, None when it includes 0 (the two are not told apart)."""
    return {"up": "RLHF", "down": "DPO"}.get(direction(low, high))


def budgets_text(budgets) -> str:
    """"KL ≤ 1, 2 and 4" (nats)."""
    names = [f"{b:g}" for b in budgets]
    if len(names) == 1:
        return f"KL ≤ {names[0]}"
    return "KL ≤ " + ", ".join(names[:-1]) + " and " + names[-1]


def summary_line(leads: dict, compared: list, prompts: int) -> str:
    """The verdict's bold sentence. A lead is stated only for the budgets whose paired
    interval excludes 0; the others are said to be not told apart at this many prompts.
    leads: {"DPO": [budgets], "RLHF": [budgets]}; compared: every budget with both methods.
    The budgets are nested (KL ≤ 16 holds every point of KL ≤ 8), so one pair of points can
    decide several of them: they are not independent tests."""
    untold = [b for b in compared if b not in leads["DPO"] + leads["RLHF"]]
    n = len(compared)
    if not leads["DPO"] and not leads["RLHF"]:
        return (f"**At {prompts} prompts, DPO and RLHF are not told apart at equal KL**: none of "
                f"the {n} paired intervals excludes 0 (the point estimates are below).")
    for name, other in (("DPO", "RLHF"), ("RLHF", "DPO")):
        if len(leads[name]) == n:
            return (f"**At equal KL, {name} dominates {other} on this run**: more gold reward "
                    f"within every one of the {n} KL budgets, each paired interval excluding 0.")
    if leads["DPO"] and leads["RLHF"]:
        summary = (f"**Neither dominates at equal KL**: RLHF reaches more gold reward within "
                   f"{budgets_text(leads['RLHF'])}, DPO within {budgets_text(leads['DPO'])} "
                   f"(paired intervals excluding 0)")
    else:
        name, other = ("DPO", "RLHF") if leads["DPO"] else ("RLHF", "DPO")
        summary = (f"**At equal KL, {name} reaches more gold reward than {other} within "
                   f"{budgets_text(leads[name])} only** (paired intervals excluding 0)")
    if untold:
        summary += (f"; within {budgets_text(untold)} the paired intervals include 0: not told "
                    f"apart at {prompts} prompts")
    return summary + "."


def verdict(points) -> list[str]:
    """Which of DPO and RLHF reaches more r* at equal KL, budget by budget: the best point of
    each within the budget, their difference with a paired interval (the same prompts). The
    bold sentence follows the intervals (`summary_line`); every point estimate stays below it."""
    lines, leads, compared, prompts = [], {"DPO": [], "RLHF": []}, [], 0
    for budget in KL_BUDGETS:
        best = best_within(points, budget)
        if "DPO" in best and "RLHF" in best:
            compared.append(budget)
            r, d = best["RLHF"], best["DPO"]
            prompts = len(r["gold_per_prompt"])
            estimate, low, high = paired_difference(r, d)
            ahead = leader(low, high)
            if ahead:
                leads[ahead].append(budget)
            lines.append(f"- KL ≤ {budget:g}: RLHF − DPO = {estimate:+.2f} [{low:+.2f}, "
                         f"{high:+.2f}], {f'{ahead} ahead' if ahead else 'not told apart'} "
                         f"(RLHF {r['setting']} step {r['step']}: right "
                         f"{r['right_share']:.2f}, {r['distinct_answers']} distinct answers; DPO "
                         f"{d['setting']} step {d['step']}: right {d['right_share']:.2f}, "
                         f"{d['distinct_answers']} distinct)")
    if not compared:
        return ["DPO and RLHF have no points within a common KL budget: they cannot be compared "
                "here."]
    return [summary_line(leads, compared, prompts), "",
            "Paired differences of mean r* (best point of each within the budget, same prompts, "
            "95% bootstrap):", ""] + lines


def overoptimisation_lines(points) -> list[str]:
    """For each trained run: r_φ and r* from SFT to its last point, from its best-r* point to
    its last (with the paired change of r*), and the verdict. Over-optimised: r_φ rose while
    r* clearly fell after its best point, or the policy ended collapsed onto one answer
    (whatever r* that answer happens to get, it is r_φ's favourite, not alignment)."""
    sft = next(p for p in points if family(p["method"]) == "SFT")
    lines = ["| run | r_φ: SFT → last | r*: SFT → last | r*: best point → last, change [95% CI] "
             "| over-optimised |",
             "| --- | --- | --- | --- | --- |"]
    for (method, setting), curve in runs(points).items():
        if not trained(method):
            continue
        best, last = max(curve, key=lambda p: p["gold"]), curve[-1]
        estimate, low, high = paired_difference(last, best) if last is not best else (0.0, 0.0, 0.0)
        fell = last["reward_model_score"] > best["reward_model_score"] and high < 0
        onto = ", ".join(f"{short(t['answer'])} ({t['share']:.0%})" for t in shown_answers(last))
        verdict_text = (f"yes: collapsed onto {onto}" if last.get("collapsed")
                        else "yes: r* fell" if fell else "no")
        lines.append(f"| {method} {setting} | {sft['reward_model_score']:.2f} → "
                     f"{last['reward_model_score']:.2f} (step {last['step']}) | {sft['gold']:.2f} → "
                     f"{last['gold']:.2f} | step {best['step']} → {last['step']}: {estimate:+.2f} "
                     f"[{low:+.2f}, {high:+.2f}] | {verdict_text} |")
    return lines


def short(text, width=40) -> str:
    """An answer quoted for a table cell: cut to width, no column separator."""
    text = text if len(text) <= width else text[: width - 3] + "..."
    return repr(text.replace("|", "/"))


def shown_answers(p) -> list[dict]:
    """The most common answer, and the next ones also above the collapse threshold, so that
    two answers at 45% each are both shown ([] where the answers are not known: π*_β)."""
    if "modal_answer" not in p:
        return []
    top = p.get("top_answers") or [{"answer": p["modal_answer"], "share": p["modal_share"]}]
    return top[:1] + [t for t in top[1:] if t["share"] > COLLAPSE_SHARE]


def modal(p) -> str:
    """The most common answers and their shares of the distinct prompts ("—" where the
    answers are not known: π*_β)."""
    answers = shown_answers(p)
    if not answers:
        return "—"
    mark = " **collapsed**" if p["collapsed"] else ""
    return ", ".join(f"{short(t['answer'])} ({t['share']:.0%})" for t in answers) + mark


def fixed_answer_line(best_fixed, points) -> list[str]:
    """The best fixed answer's r* and the points that do not beat it ([] for an older run)."""
    if best_fixed is None:
        return []
    below = [f"{p['method']} {p['setting']}".strip() + (f" step {p['step']}" if p["step"] else "")
             for p in points if p["gold_high"] < best_fixed["gold"]]
    return [f"The best fixed answer of the bank, said to every prompt: {best_fixed['answer']!r}, "
            f"mean r* {best_fixed['gold']:.2f} (the dotted line). Points whose whole interval "
            f"lies below it: {', '.join(below) if below else 'none'}.", ""]


def frontier_markdown(results, config) -> str:
    points = results["points"]
    lines = [f"# Frontier: gold reward r* against KL(π‖π_ref) ({results['run']}, "
             f"{results['device']}, {results['seconds']:.0f} s)", "", *smoke_banner(config),
             f"{results['prompts']} held-out prompts (held out by content); every policy answers "
             f"at temperature 1. KL: exact per token on π's own answers (mean ± 95% half-width); "
             f"for best-of-N the bound log N − (N − 1)/N, and in brackets its exact KL over "
             f"each prompt's M draws of π_ref taken as the distribution (a plug-in estimate, "
             f"below the bound); for π*_β the importance-sampling "
             f"estimate. Win rate: against SFT's answers to the same prompts (ties ½, paired "
             f"bootstrap).", "",
             *fixed_answer_line(results.get("best_fixed_answer"), points),
             "![frontier](frontier.png)", "", "![over-optimisation](overoptimisation.png)", "",
             "| method | setting | step | KL (nats) | r* [95% CI] | r_φ | right [95% CI] "
             "| win rate vs SFT [95% CI] | distinct answers | most common answer (share) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in points:
        kl = f"{p['kl']:.2f} ± {p['kl_ci']:.2f}"
        if p.get("kl_is_bound"):
            kl = f"≤ {p['kl']:.2f}" + (f" (plug-in {p['kl_estimate']:.2f} ± {p['kl_estimate_ci']:.2f})"
                                        if p.get("kl_estimate") is not None else "")
        note = ""
        if "ess" in p:
            note = f" (ESS {p['ess']:.1f}{'' if p['reliable'] else ': unreliable, not plotted'})"
            if "ess_quantiles" in p:
                low, median, high = p["ess_quantiles"]
                note = (f" (ESS median {median:.1f}, 10–90% {low:.1f}–{high:.1f}; "
                        f"{p['carried_share']:.0%} of prompts carried; r* from M/2 "
                        f"{p['gold_half_m']:+.2f}{'' if p['reliable'] else ': unreliable, not plotted'})")
        distinct = "—" if p["distinct_answers"] is None else str(p["distinct_answers"])
        lines.append(f"| {p['method']} | {p['setting']}{note} | {p['step']} | {kl} | "
                     f"{interval(p, 'gold', 'gold')} | {p['reward_model_score']:.2f} | "
                     f"{interval(p, 'right_share', 'right')} | {interval(p, 'win_rate', 'win')} | "
                     f"{distinct} | {modal(p)} |")
    lines += ["", "## At equal KL", "",
              "The best r* each method reaches with KL at most the budget:", "",
              "| KL budget (nats) | " + " | ".join(("DPO", "RLHF", "best-of-N", "π*_β")) + " |",
              "| --- | --- | --- | --- | --- |"]
    for budget in KL_BUDGETS:
        best = best_within(points, budget)
        cells = [f"{best[n]['gold']:.2f} [{best[n]['gold_low']:.2f}, {best[n]['gold_high']:.2f}] "
                 f"({best[n]['setting']}, step {best[n]['step']})"
                 if n in best else "—" for n in ("DPO", "RLHF", "best-of-N", "π*_β")]
        lines.append(f"| {budget:g} | " + " | ".join(cells) + " |")
    collapsed = [p for p in points if p.get("collapsed")]
    lines += ["", f"Points left out of this comparison: those too few samples carry (π*_β "
              f"marked unreliable) and the {len(collapsed)} collapsed ones, which give one "
              f"answer to more than {COLLAPSE_SHARE:.0%} of the distinct prompts (two at "
              f"least; align.breakdown); their r* is mostly what that answer gets:", ""]
    lines += [f"- {p['method']} {p['setting']} step {p['step']}: "
              + ", ".join(f"{t['answer']!r} to {t['share']:.0%}" for t in shown_answers(p))
              + f" of the prompts; r* {p['gold']:.2f}, and {p['modal_answer']!r} given to every "
              f"prompt {p['modal_gold']:.2f}" for p in collapsed] or ["- none collapsed"]
    lines += [""] + verdict(points)
    lines += ["", "## Reward over-optimisation", "",
              "Along each run: r_φ rising while r* falls after its best point (a paired interval "
              "below 0), or a policy that ends collapsed onto one answer r_φ overrates, is "
              "over-optimisation of the reward model.", ""]
    lines += overoptimisation_lines(points)
    lines += [""] + gao_lines(gao_fits(points))
    lines += ["", "Time per part (s): " + ", ".join(f"{k} {v:.0f}"
                                                    for k, v in results["timings"].items())]
    return "\n".join(lines) + "\n"
