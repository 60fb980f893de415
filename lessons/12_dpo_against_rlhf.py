# %% [markdown]
# # Lesson 12 — DPO against RLHF (DPO, Política óptima)
#
# DPO (lesson 9) and RLHF by RL (lesson 11) aim at the same optimum, the lecture's
# política óptima π*_β(y|x) = π_ref(y|x)·exp(r(x,y)/β)/Z(x), one without a reward model or
# sampling, the other by climbing J_RLHF with r_φ. Which gets more of what we want?
#
# The DPO paper (Rafailov et al. 2023, Fig. 2) answers with one figure. On IMDb, where a
# sentiment classifier serves as the ground-truth reward, it trains DPO, PPO and other
# methods at several settings and plots, for every policy, the reward of its samples
# against its KL(π‖π_ref): DPO's points lie above PPO's at every KL. This lesson reads the
# same figure made on our toy world by `align.frontier`, with the gold reward r* in the
# role of the classifier: DPO and RLHF (RLOO) at several β along training, best-of-N, and
# π*_β itself, estimated from π_ref's samples.

# %%
from lesson_setup import frontier_file, lesson_paths  # lessons/lesson_setup.py

ROOT, SMOKE, OUT = lesson_paths(__file__)  # project root (on sys.path), LESSONS_SMOKE=1?, figures folder

import inspect
import json
import math
import shutil

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import align.frontier
from align.frontier import optimum_rows
from align.frontier_report import (STYLE, comparable, family, gao_fits, gao_lines,
                                   overoptimisation_lines, paired_difference, verdict)
from gridworld import kl, optimal_kl_policy

torch.manual_seed(0)
torch.set_num_threads(1)  # small models: one thread avoids thread-pool overhead on a busy CPU
np.random.seed(0)

# %% [markdown]
# ## What the frontier holds
#
# `align.frontier`'s docstring lists its four families of points and how each is measured.
# Every point is a policy answering the same held-out prompts at temperature 1; its y is
# the mean r* of those answers, its x the KL(π‖π_ref) of the same answers (exact per token,
# `align.kl`), SFT (= π_ref) is the point at KL 0.

# %%
print(align.frontier.__doc__)

# %% [markdown]
# ## Equal KL, not equal β
#
# Each method has its own knob: β for DPO and RLHF, N for best-of-N, and the training step
# moves DPO and RLHF along a curve too. The same β does not mean the same policy: DPO
# fits a fixed set of pairs for a fixed number of steps and never reaches its π*_β, while
# RLHF's KL grows with every step it takes on r_φ. What the two have in common is the
# budget the lecture's J charges for: how far the policy has gone from π_ref. So the
# figure puts every policy at its KL and asks which reaches more r* for the same KL: the
# method whose points lie higher at every KL is better, whatever β produced them.

# %% [markdown]
# ## Best-of-N's KL: the bound log N − (N − 1)/N
#
# Best-of-N trains nothing: draw N answers of π_ref and keep the one r_φ scores highest.
# Its KL from π_ref is usually quoted as log N − (N − 1)/N. That is exact when no two
# answers tie (a continuous π_ref) and an upper bound otherwise (Beirami et al. 2024). On
# a toy with K equally likely answers, sorted by reward, the best of N is answer i with
# probability (i/K)^N − ((i−1)/K)^N, so its KL can be summed: few answers (many ties among
# the N draws) stay below the bound, many answers approach it.

# %%
def best_of_n_kl(K: int, n: int) -> float:
    """KL(best-of-N ‖ π_ref) exactly, for π_ref uniform over K answers of distinct rewards."""
    cdf = np.arange(K + 1) / K
    p_best = cdf[1:] ** n - cdf[:-1] ** n
    return float(kl(p_best, np.full(K, 1.0 / K)))


print("   N   bound log N − (N−1)/N   exact, K = 4   K = 64   K = 4096")
for n in (1, 2, 4, 8, 16):
    print(f"  {n:2d}   {math.log(n) - (n - 1) / n:14.4f}   {best_of_n_kl(4, n):12.4f}   "
          f"{best_of_n_kl(64, n):6.4f}   {best_of_n_kl(4096, n):8.4f}")

# %% [markdown]
# ## π*_β by self-normalised importance sampling
#
# π*_β cannot be sampled: Z(x) sums over every possible answer (the lecture's point). But
# its expectations can be estimated from M answers y_j ~ π_ref: weigh each by
# w_j ∝ exp(r_φ(x, y_j)/β), normalised to sum to 1, and E_{π*}[r*] ≈ Σ_j w_j·r*(x, y_j). The
# estimate lives on M answers, so its KL is at most log M; the effective sample size
# ESS = 1/Σ_j w_j² says how many answers carry it. At small β one answer takes all the
# weight (ESS → 1) and the point says little. So the frontier calls this an *SNIS
# estimate*, not the optimum, and plots a β only when most prompts have an ESS of at
# least 4 and at least a tenth of M (--min-ess, --min-ess-share), and the estimate from
# the first M/2 answers moves less than the width of its interval from the one from all M. `optimum_rows` does this for every prompt:

# %%
print(inspect.getsource(optimum_rows))

# %% [markdown]
# Checked against the exact π*_β on lesson 11's toy, "Where is Lima?" with four answers
# (r_φ overrates "You can call me Mary."): many independent draws of M answers play the
# role of many prompts, and `optimum_rows` estimates E_{π*}[r*] and the KL from them.

# %%
r_phi = np.array([2.0, 3.0, 0.0, -2.0])     # Lima is in Peru. / You can call me Mary. / I don't know. / Go away.
r_star = np.array([3.0, -1.0, -0.5, -3.0])
pi_ref = np.array([0.30, 0.05, 0.40, 0.25])
draws_of_m = 50 if SMOKE else 400
print(f"  β     M    exact E[r*]   SNIS E[r*]   exact KL   SNIS KL (≤ log M)   mean ESS")
for M in (8, 48):
    rng = np.random.default_rng(0)
    candidates = [[{"score": float(r_phi[y]), "gold": float(r_star[y]), "right": float(y == 0)}
                   for y in rng.choice(4, size=M, p=pi_ref)] for _ in range(draws_of_m)]
    betas = (0.1, 0.3, 1.0, 3.0)
    rows = optimum_rows(candidates, [f"draw {i}" for i in range(draws_of_m)], betas,
                        seed=0)  # each draw of M answers: one "prompt"
    for beta, row in zip(betas, rows):
        exact, _ = optimal_kl_policy(r_phi, pi_ref, beta)
        print(f"  {beta:3.1f}  {M:3d}   {exact @ r_star:+10.3f}   {row['gold']:+10.3f}   "
              f"{float(kl(exact, pi_ref)):8.3f}   {row['kl']:8.3f} (≤ {math.log(M):.2f})     "
              f"{row['ess']:6.1f}{'' if row['reliable'] else '  (unreliable: not plotted)'}")

# %% [markdown]
# Two lessons in that table. The estimate is biased when M is small and β small: with
# M = 8 draws, "You can call me Mary." (π_ref 0.05) is missing from most draws, so the
# weight goes to the best answer that was drawn instead, and π*_β looks better by r* than
# it is. And the ESS warns of it: where it is small, a few answers carry the estimate.

# %% [markdown]
# ## The frontier of a pipeline run
#
# This cell reads your own frontier of the default pipeline run (runs/pipeline/frontier,
# made by `python -m align.frontier --run runs/pipeline`, about 14 minutes on 2 CPU cores)
# if there is one, else of your quick run (runs/pipeline-quick/frontier), and writes
# nothing into either. With neither, it makes the quick frontier in this lesson's own
# folder (runs/lessons/12_dpo_against_rlhf/frontier), of your finished pipeline run or, with
# none, of the lessons' own quick run (lesson 11's; trained first if missing), so that your
# own `python -m align.frontier --run runs/pipeline` later finds its folder free. In the
# smoke setting it makes a tiny frontier of its own: the pipeline's smoke preset, two β
# values per method, two steps each, four prompts (`lesson_setup.frontier_file`). Such a
# frontier shows that the code runs and how to read it, not what DPO or RLHF does. The
# first lines below say which frontier it reads.

# %%
FRONTIER = frontier_file(ROOT, OUT, SMOKE)
results = json.loads(FRONTIER.read_text(encoding="utf-8"))
points = results["points"]
settings = json.loads((FRONTIER.parent / "config.json").read_text(encoding="utf-8"))
print(f"\nfrontier: {FRONTIER}")
print(f"  pipeline run {results['run']}, {results['prompts']} held-out prompts, RLHF by "
      f"{results['algorithm'].upper()}, {len(points)} points, {results['seconds']:.0f} s on {results['device']}")
print(f"  DPO β {settings['dpo_betas']} ({settings['dpo_steps']} steps), RLHF β {settings['rlhf_betas']} "
      f"({settings['rlhf_steps']} steps), a point every {settings['eval_every']} steps; best-of-N "
      f"N = {settings['best_of']}; π*_β from M = {settings['optimum_samples']} answers of π_ref per prompt")
for name in ("frontier.png", "overoptimisation.png"):  # the run's own figures, beside this lesson's
    shutil.copy(FRONTIER.parent / name, OUT / f"run_{name}")
    print(f"  figure: {OUT / f'run_{name}'}  (copied from {FRONTIER.parent / name})")
try:  # in a notebook, show the figure here
    from IPython import get_ipython
    from IPython.display import Image, display
    if get_ipython() is not None:
        display(Image(filename=str(OUT / "run_frontier.png")))
except ImportError:
    pass

# %% [markdown]
# ## How to read the figure
#
# frontier.png has r* (mean over the held-out prompts, 95% bootstrap interval) on the y axis
# and KL(π‖π_ref) in nats per answer on the x axis, error bars on both.
#
# - The black star at KL 0 is SFT, π_ref itself: every method starts there.
# - A blue (DPO) or red (RLHF) line is one training run at one β, through its evaluations
#   in step order; a lighter shade is another β. Moving right along a line is the policy
#   spending KL; a good method buys r* with it, so its line climbs.
# - Green triangles joined by a dashed line are best-of-N, N = 1, 2, 4, ...; their x is
#   the bound log N − (N − 1)/N, so the true points lie at or left of where they are
#   drawn. N = 1 is π_ref again, on other samples: its distance from the star is the noise.
# - A hollow marker is a collapsed policy: one answer to more than a tenth of the distinct
#   prompts (`align.breakdown.COLLAPSE_SHARE`, `align.frontier.collapse_check`). Its r* is
#   mostly what that one fixed answer gets, however high it looks, so frontier.md names
#   its answer and leaves it out of the comparison at equal KL: a number a degenerate
#   policy reaches is not alignment.
# - Black diamonds are π*_β, the optimum of J for r_φ (not for r*): where it sits says
#   what J itself is worth with this reward model. Its points with too small an ESS are
#   left out of the figure (the table marks them).
# - Compare methods along a vertical line: at the same KL, higher is better. A point whose
#   interval overlaps another's may not differ at all; frontier.md gives paired intervals
#   (same prompts) for the best point of each method within each KL budget.
#
# overoptimisation.png puts r_φ, what RLHF and best-of-N optimise, on the x axis instead.
# A run that moves right (r_φ rising) without moving up (r* flat or falling) is reward
# over-optimisation, Goodhart's law, as lesson 11 watched it happen.

# %% [markdown]
# ## The table, from frontier.json
#
# Every number below is read from the JSON; nothing is typed in by hand.

# %%
def cell(p, key, low, high):
    return "—" if p.get(key) is None else f"{p[key]:+.2f} [{p[low]:+.2f}, {p[high]:+.2f}]"


print(f"{'method':24} {'setting':8} {'step':>4}  {'KL (nats)':>13}  {'r* [95% CI]':22} {'r_φ':>6}  "
      f"{'right share':19} {'win rate vs SFT':19} distinct  most common answer")
for p in points:
    kl_text = f"≤ {p['kl']:.2f}" if p.get("kl_is_bound") else f"{p['kl']:.2f} ± {p['kl_ci']:.2f}"
    note = ""
    if "ess" in p:
        note = f"   ESS {p['ess']:.1f}" + ("" if p["reliable"] else " (unreliable: not plotted)")
    distinct = "—" if p.get("distinct_answers") is None else p["distinct_answers"]
    if "modal_answer" in p:
        note += (f"  {p['modal_answer'][:30]!r} {p['modal_share']:.0%}"
                 + (" COLLAPSED" if p["collapsed"] else ""))
    print(f"{p['method']:24} {p['setting']:8} {p['step']:4d}  {kl_text:>13}  "
          f"{cell(p, 'gold', 'gold_low', 'gold_high'):22} {p['reward_model_score']:+6.2f}  "
          f"{cell(p, 'right_share', 'right_low', 'right_high'):19} "
          f"{cell(p, 'win_rate', 'win_low', 'win_high'):19} {distinct}{note}")

# %% [markdown]
# ## Your own figure from the JSON
#
# The same points drawn again, simply, collapsed ones left out: on the left r* against KL,
# one colour per family, and for each family the best r* reached with at most that much KL
# (the running maximum of r* over its points sorted by KL), a staircase that is the
# family's frontier proper;
# on the right r_φ against KL, where over-optimisation shows as r_φ climbing with KL
# while r* on the left does not.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
sft = next(p for p in points if family(p["method"]) == "SFT")
for name in ("DPO", "RLHF", "best-of-N", "π*_β"):
    mine = [p for p in points if family(p["method"]) == name and comparable(p)]  # not collapsed
    if not mine:
        continue
    color, marker = STYLE[name]
    open_marker = dict(markerfacecolor="none") if name == "best-of-N" else {}
    label = name + (" (x: the KL bound)" if name == "best-of-N" else "")
    left.plot([p["kl"] for p in mine], [p["gold"] for p in mine], marker, color=color, alpha=0.8,
              label=label, **open_marker)
    right.plot([p["kl"] for p in mine], [p["reward_model_score"] for p in mine], marker, color=color,
               alpha=0.8, label=label, **open_marker)
    by_kl = sorted(mine, key=lambda p: p["kl"])
    left.step([p["kl"] for p in by_kl], np.maximum.accumulate([p["gold"] for p in by_kl]), where="post",
              color=color, lw=1.2, alpha=0.6)
for ax, key in ((left, "gold"), (right, "reward_model_score")):
    ax.plot([0], [sft[key]], "*", color="black", markersize=14, label="SFT (π_ref)")
    ax.set_xlabel("KL(π ‖ π_ref) per answer (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
left.set_ylabel("gold reward r* (mean over held-out prompts)")
left.set_title("r* against KL, per family\n(steps: the best r* each family reaches within that KL)")
right.set_ylabel("r_φ of the same answers")
right.set_title("r_φ against KL: what is optimised keeps rising")
fig.tight_layout()
path = OUT / "frontier_from_json.png"
fig.savefig(path, dpi=120)
plt.close(fig)
print("figure:", path)

# %% [markdown]
# ## Reading the numbers
#
# `align.frontier_report` turns the points into the two statements frontier.md makes:
# which of DPO and RLHF reaches more r* at equal KL (the best point of each within each KL
# budget, their paired difference on the same prompts), and, run by run, whether r_φ kept
# rising while r* fell after its best point. Then Gao et al.'s over-optimisation laws
# (2022), fitted to each family's points with d = √KL: best-of-N R(d) = d(α − β_g·d), RL
# R(d) = d(α − β_g·log d), R the gold reward gained over SFT. β_g > 0 means the curve turns
# down: past its peak d*, more optimisation of r_φ loses gold reward (`align.gao`). Then,
# per family, how far r* and r_φ moved from SFT at its largest KL.

# %%
print("\n".join(verdict(points)))
print()
print("\n".join(overoptimisation_lines(points)))
print()
print("\n".join(gao_lines(gao_fits(points))))
print()
for name in ("DPO", "RLHF", "best-of-N", "π*_β"):
    mine = [p for p in points if family(p["method"]) == name and p.get("reliable", True)]
    if not mine:
        print(f"{name}: no point to read")
        continue
    far = max(mine, key=lambda p: p["kl"])
    best = max(mine, key=lambda p: p["gold"])
    print(f"{name:10}: at its largest KL ({far['kl']:.2f}, {far['setting']} step {far['step']}) "
          f"r_φ {far['reward_model_score'] - sft['reward_model_score']:+.2f} and r* "
          f"{far['gold'] - sft['gold']:+.2f} from SFT; its best r* {best['gold']:+.2f} "
          f"(SFT {sft['gold']:+.2f} [{sft['gold_low']:+.2f}, {sft['gold_high']:+.2f}]) at KL {best['kl']:.2f}")
others = [p for p in points if family(p["method"]) != "SFT" and p.get("reliable", True)]
differences = {id(p): paired_difference(p, sft) for p in others}  # r* − SFT's r*, same prompts
above = [p for p in others if differences[id(p)][1] > 0]
below = [p for p in others if differences[id(p)][2] < 0]
print(f"\nAgainst SFT on the same prompts (paired bootstrap of r*): {len(above)} of the {len(others)} "
      f"plotted points are clearly above, {len(below)} clearly below, the rest cannot be told apart from it.")
n1 = next((p for p in others if p["method"].startswith("best-of-N") and p["setting"] == "N=1"), None)
if n1 is not None:
    estimate, low, high = differences[id(n1)]
    print(f"A yardstick for the noise: best-of-N at N = 1 is π_ref itself, on other samples; it "
          f"differs from the SFT point by {estimate:+.2f} [{low:+.2f}, {high:+.2f}].")
if not above:
    print("On this run no method beats π_ref beyond the noise: read the figure for how to read it, "
          "not for what DPO or RLHF can do (models this small write few real words).")
