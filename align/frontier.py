"""The frontier: gold reward r* against KL(π‖π_ref), for DPO, RLHF, best-of-N and π*_β.

The DPO paper (Rafailov et al. 2023, Fig. 2) settles "DPO ≈ RLHF, without RL" by plotting,
for every policy, the gold reward of its samples against its KL from π_ref: a method is
better where it reaches more reward for the same KL. Each method trades the two with its
own knob (β for DPO and RLHF, N for best-of-N), so methods are compared at equal KL, never
at equal β. From one pipeline run folder (π_ref = sft/, r_φ = reward/, the pairs in data/):

    DPO           at each --dpo-betas, evaluated every --eval-every steps along training
    RLHF          RLOO (or --algorithm ppo) at each --rlhf-betas, evaluated likewise
    best-of-N     N = 1, 2, 4, 8, 16 answers of π_ref, the one r_φ scores highest; its KL is
                  the usual closed form log N − (N − 1)/N, an upper bound on the true KL
                  (Beirami et al. 2024), marked as such
    π*_β          the lecture's "Política óptima", π*_β(y|x) = π_ref(y|x)·exp(r_φ(x, y)/β)/Z(x),
                  estimated by self-normalised importance sampling from M answers y_j ~ π_ref:
                  w_j = exp(r_φ(x, y_j)/β) / Σ_i exp(r_φ(x, y_i)/β),
                  E_{π*}[r*] ≈ Σ_j w_j r*(x, y_j),
                  KL(π*‖π_ref) = E_{π*}[r_φ]/β − log Z(x)
                               ≈ Σ_j w_j r_φ(x, y_j)/β − log(1/M Σ_j e^{r_φ(x, y_j)/β}).
                  The estimate lives on M answers, so its KL is at most log M, and it is
                  biased (too low in r* and in KL when few answers carry it); its effective
                  sample size 1/Σ_j w_j² says how many answers do. A β is plotted only when
                  most prompts have an ESS of at least --min-ess and --min-ess-share·M,
                  and the estimate from M/2
                  answers moves less than the width of its interval from the one from M;
                  else it is reported as unreliable.

Every point is measured on the same held-out prompts (the distinct prompts among the
pipeline's evaluation prompts, held out by content; at most --eval-prompts of them) with
π's own answers at temperature 1: mean r* with a bootstrap
interval, the right-answer share, r_φ of the same answers, KL exact per token (align.kl),
and the win rate against SFT's answers on the same prompts (paired bootstrap). SFT itself
is the point at KL 0. A point whose answers collapsed (align.breakdown's rule: one answer
to more than a tenth of the distinct prompts, on two at least) is drawn hollow, its most
common answers listed with their shares, and left out of the comparison at equal KL: its r*
is a fixed answer's.

Names: r* is `gold` here (`eval_gold_reward` in a stage's metrics, `objective/gold_scores`
for the rollouts); r_φ of π's answers is `reward_model_score` (`eval_scores`,
`objective/scores` as TRL calls it).

Writes into --out-dir: frontier.png (r* against KL with intervals), overoptimisation.png
(r_φ against r*: where r_φ keeps rising and r* does not), frontier.md (the table, and the
best r* each method reaches within each KL budget), frontier.json, and one run folder per
trained policy (dpo-beta-*, rlhf-*-beta-*).

Run:
    python -m align.frontier --run runs/pipeline  # the default: the longest command here (README)
    python -m align.frontier --run runs/pipeline-quick --quick
"""

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field

import torch

from align.compare import against_fixed_answers, evaluate_point, point_metrics, question_groups
from align.evaluate import mean_and_ci
from align.kl import best_of_n_kl
from align.data import write_jsonl
from align.dpo import DPOConfig, train_dpo
from align.frontier_report import frontier_markdown, gao_fits, plot_frontier
from align.gold import gold_reward
from align.breakdown import COLLAPSE_SHARE, collapsed, right_flags, top_answers
from align.reward import load_reward_model, score_samples
from align.rlhf import RLHFConfig, train_rlhf
from align.sampling import sample_answers
from align.stats import bootstrap_mean, paired_bootstrap
from minigpt.checkpoint import load_model
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.device import pick_device
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder, remove_run_folder, same_path
from minigpt.runlog import RunFolder
from toyworld.world import evaluation_prompts

NEEDED = {"sft/ckpt.pt": "sft", "reward/ckpt.pt": "reward", "data/pairs_train.jsonl": "preferences",
          "data/pairs_heldout.jsonl": "preferences", "config.json": "the run's settings"}

PRESETS = {
    "quick": dict(dpo_betas="0.1,0.5,1,2", rlhf_betas="0.05,0.1,0.3,1", dpo_steps=20, rlhf_steps=20,
                  eval_every=10, eval_prompts=24, best_of="1,2,4", optimum_samples=8),
    "default": dict(dpo_betas="0.1,0.25,0.5,1", rlhf_betas="0.1,0.25,0.5,1", dpo_steps=150,
                    rlhf_steps=150, eval_every=50, eval_prompts=200, best_of="1,2,4,8,16",
                    optimum_samples=48),
}


@dataclass
class FrontierConfig:
    run: str = field(default="runs/pipeline", metadata={
        "help": "a pipeline run folder (python -m align.pipeline): sft/, reward/, data/"})
    out_dir: str = field(default="", metadata={"help": "where to write (default: RUN/frontier)"})
    quick: bool = field(default=False, metadata={"help": "a smoke-test preset (a minute or two)"})
    algorithm: str = field(default="rloo", metadata={
        "help": "RLHF's algorithm", "choices": ("rloo", "ppo")})
    dpo_betas: str = field(default="", metadata={"help": "DPO's β values, comma-separated"})
    rlhf_betas: str = field(default="", metadata={"help": "RLHF's β values, comma-separated"})
    dpo_steps: int = field(default=0, metadata={"help": "DPO steps per β"})
    rlhf_steps: int = field(default=0, metadata={"help": "RLHF steps per β"})
    eval_every: int = field(default=0, metadata={"help": "steps between two points of a curve"})
    eval_prompts: int = field(default=0, metadata={
        "help": "at most this many distinct held-out prompts, every point measured on them"})
    best_of: str = field(default="", metadata={"help": "best-of-N's N values, comma-separated"})
    optimum_samples: int = field(default=0, metadata={
        "help": "M: answers of π_ref per prompt for π*_β"})
    min_ess: float = field(default=4.0, metadata={
        "help": "π*_β: a prompt's estimate counts as carried when its ESS is at least this"})
    min_ess_share: float = field(default=0.1, metadata={
        "help": "π*_β: ... and its ESS/M is at least this"})
    rlhf_learning_rate: float = field(default=1e-4, metadata={"help": "RLHF's peak learning rate"})
    seed: int = field(default=1337, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a frontier of other settings"})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self):
        preset = PRESETS["quick" if self.quick else "default"]
        for name, value in preset.items():
            if getattr(self, name) in ("", 0):
                setattr(self, name, value)
        if not self.out_dir:
            self.out_dir = os.path.join(self.run, "frontier")
        for name in ("dpo_betas", "rlhf_betas"):
            values = self.numbers(name, float)
            if min(values) <= 0:
                raise InputError(f"--{name.replace('_', '-')}: every β must be positive, "
                                 f"got {values}")
        if min(self.numbers("best_of", int)) < 1:
            raise InputError(f"--best-of: every N must be at least 1, got {self.best_of}")
        check_ranges(self, at_least_one=("dpo_steps", "rlhf_steps", "eval_every", "eval_prompts",
                                         "optimum_samples"),
                     not_negative=("min_ess", "min_ess_share", "rlhf_learning_rate"))

    def numbers(self, name, kind) -> list:
        try:
            return [kind(v) for v in getattr(self, name).split(",") if v.strip()]
        except ValueError:
            raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)!r}: expected "
                             f"numbers separated by commas, e.g. 0.1,0.5,1") from None


def read_pipeline_run(run: str) -> dict:
    """The pipeline run's settings, after checking it holds every stage the frontier needs."""
    for name, stage in NEEDED.items():
        if not os.path.exists(os.path.join(run, name)):
            raise InputError(f"--run {run}: no {name} (the {stage} stage); make it with "
                             f"`python -m align.pipeline --out-dir {run}` (stages already done "
                             f"are kept)")
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        saved = json.load(f)
    if "preset_settings" not in saved:
        raise InputError(f"--run {run}: config.json is not a pipeline run's")
    return saved


def open_out_dir(config: FrontierConfig) -> RunFolder:
    """A new folder, or one holding a frontier of the same settings (finished parts are kept);
    one of other settings only with --overwrite. Another command's folder, or one holding
    files the frontier did not write, is refused (minigpt.ownership). --run is recorded
    resolved, and compared as a path: "runs/pipeline" and "/home/me/runs/pipeline" are one
    run, and so is a pipeline run moved together with its frontier."""
    settings = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("overwrite", "progress")}
    # both resolved: a frontier moved with its pipeline run, the project folder and all, is the same
    settings["run"], settings["out_dir"] = os.path.realpath(config.run), os.path.realpath(config.out_dir)

    new_folder = settings["out_dir"]

    def same(name, old, new):
        if name == "out_dir":  # where the frontier is, not what it measures
            return True
        if name == "run" and isinstance(old, str):
            return same_path(old, new, saved.get("out_dir") or new_folder, new_folder)
        return old == new
    if check_run_folder(config.out_dir, "frontier"):
        saved = {}
        saved_file = os.path.join(config.out_dir, "config.json")
        if os.path.exists(saved_file):
            with open(saved_file, encoding="utf-8") as f:
                saved = json.load(f)
        changes = [f"--{k.replace('_', '-')} {saved.get(k)!r} → {v!r}" for k, v in settings.items()
                   if not same(k, saved.get(k), v)]
        if changes and not config.overwrite:
            raise InputError(f"--out-dir {config.out_dir}: holds a frontier of other settings "
                             f"({', '.join(changes[:4])}); pass --overwrite to replace it, or "
                             f"choose another --out-dir")
        if changes:
            remove_run_folder(config.out_dir, "frontier")
    run = RunFolder(config.out_dir, "frontier")
    run.write_json("config.json", settings)
    return run


POINTS_FORMAT = 3  # what a saved point holds; points saved by other code are measured again
# (3: the collapse flag is align.breakdown's rule, with the top answers)


def kept(run: RunFolder, name: str, work):
    """work()'s points, or those a finished earlier run of this code left in NAME/points.json
    (a run folder of the same settings; see open_out_dir)."""
    file = run.file(os.path.join(name, "points.json"))
    if os.path.exists(file):
        with open(file, encoding="utf-8") as f:
            saved = json.load(f)
        if isinstance(saved, dict) and saved.get("format") == POINTS_FORMAT:
            print(f"{name}: done in an earlier run, kept")
            return saved["points"]
        print(f"{name}: points saved by other code, measured again")
    points = work()
    RunFolder(run.file(name)).write_json("points.json", {"format": POINTS_FORMAT, "points": points})
    return points


def collapse_check(texts, prompts) -> dict:
    """align.breakdown's collapse rule on one point's answers (the answer given to the most
    distinct prompts, collapsed when that is more than COLLAPSE_SHARE of them, on two at
    least), its few most common answers with their shares (two pleasantries at 45% each
    both show), and the mean r* the most common answer would get if it were given to every
    prompt: a collapsed policy's r* is that of a fixed answer, which no measure of alignment
    should reward."""
    top = top_answers(prompts, texts)
    distinct = list(dict.fromkeys(prompts))
    answer = top[0]["answer"]
    return {"modal_answer": answer, "modal_count": top[0]["count"], "modal_share": top[0]["share"],
            "modal_gold": sum(gold_reward(p, answer) for p in distinct) / len(distinct),
            "collapsed": collapsed(top[0]), "collapse_threshold": COLLAPSE_SHARE,
            "top_answers": [{"answer": t["answer"], "share": t["share"]} for t in top]}


def table_row(method, setting, step, point, sft, seed, prompts, kl_is_bound=False) -> dict:
    """One line of the frontier: the point's measures, its paired comparison with SFT and
    its collapse check (where its answers are known)."""
    win = (paired_bootstrap(point["gold"], sft["gold"], "win_rate", seed=seed,
                            groups=question_groups(prompts)) if sft else None)
    check = collapse_check(point["texts"], prompts) if point.get("texts") else {"collapsed": False}
    return {"method": method, "setting": setting, "step": step, **check,
            "kl": point["kl_exact_per_token"], "kl_ci": point["kl_exact_per_token_ci"],
            "kl_is_bound": kl_is_bound, "gold": point["gold_mean"],
            "gold_low": point["gold_interval"][0], "gold_high": point["gold_interval"][1],
            "reward_model_score": point["reward_model_score"], "right_share": point["right_share"],
            "right_low": point["right_interval"][0], "right_high": point["right_interval"][1],
            "win_rate": None if win is None else win[0],
            "win_low": None if win is None else win[1], "win_high": None if win is None else win[2],
            "distinct_answers": point["breakdown"]["distinct_answers"],
            "gold_per_prompt": point["gold"]}


def run_frontier(config: FrontierConfig) -> dict:
    saved = read_pipeline_run(config.run)
    run = open_out_dir(config)  # before any work: refused here if it is not the frontier's to write
    device = pick_device(config.device)
    path = lambda name: os.path.join(config.run, name)  # noqa: E731
    preset = saved["preset_settings"]
    seed, max_new_tokens = saved.get("seed", config.seed), saved.get("max_new_tokens", 48)
    reference, tokenizer, _ = load_model(path("sft"), device, "align.frontier (the run's sft/)")
    reward_model, _ = load_reward_model(path("reward"), device)
    # the pipeline's held-out evaluation prompts (toyworld.world.evaluation_prompts: each
    # distinct prompt once), the first --eval-prompts of them
    prompts = evaluation_prompts(preset["eval_prompts"], seed + 2)[: config.eval_prompts]
    write_jsonl(run.file("eval_prompts.jsonl"), [{"prompt": p} for p in prompts])
    started, timings = time.time(), {}
    measure = dict(reward_model=reward_model, tokenizer=tokenizer, prompts=prompts,
                   max_new_tokens=max_new_tokens, device=device, seed=seed + 2)

    def point_of(policy):
        return evaluate_point(policy, reference, **measure)

    clock = time.time()
    sft = point_of(reference)
    rows = [table_row("SFT (π_ref)", "", 0, sft, None, seed, prompts)]
    timings["SFT"] = time.time() - clock

    for beta in config.numbers("dpo_betas", float):  # DPO along training, at each β
        clock = time.time()
        name = f"dpo-beta-{beta:g}"

        def train_one_dpo():
            points = []
            dpo = DPOConfig(init=path("sft"), data=path("data/pairs_train.jsonl"),
                            eval_data=path("data/pairs_heldout.jsonl"), out_dir=run.file(name),
                            overwrite=True, device=config.device, seed=seed,
                            **{**preset["dpo"], "beta": beta, "max_iters": config.dpo_steps,
                               "eval_interval": config.eval_every})
            # r* and the exact KL join DPO's own evaluation rows
            def measure_point(step, policy):
                points.append((step, point_of(policy)))
                return point_metrics(points[-1][1])
            train_dpo(dpo, progress=config.progress, also_evaluate=measure_point)
            return [table_row("DPO", f"β={beta:g}", step, p, sft, seed, prompts)
                    for step, p in points if step > 0]
        rows += kept(run, name, train_one_dpo)
        timings[name] = time.time() - clock

    for beta in config.numbers("rlhf_betas", float):  # RLHF along training, at each β
        clock = time.time()
        name = f"rlhf-{config.algorithm}-beta-{beta:g}"
        method = f"RLHF ({config.algorithm.upper()})"

        def train_one_rlhf():
            points = []
            rl = RLHFConfig(init=path("sft"), reward=path("reward"),
                            data=path("data/pairs_train.jsonl"),
                            eval_data=run.file("eval_prompts.jsonl"), out_dir=run.file(name),
                            overwrite=True, device=config.device, seed=seed,
                            algorithm=config.algorithm,
                            beta=beta, max_iters=config.rlhf_steps, eval_interval=config.eval_every,
                            max_new_tokens=max_new_tokens, learning_rate=config.rlhf_learning_rate,
                            min_lr=config.rlhf_learning_rate / 10)
            train_rlhf(rl, progress=config.progress,
                       keep_point=lambda step, p: points.append((step, p)))
            return [table_row(method, f"β={beta:g}", step, p, sft, seed, prompts)
                    for step, p in points if step > 0]
        rows += kept(run, name, train_one_rlhf)
        timings[name] = time.time() - clock

    clock = time.time()
    candidates = reference_samples(reference, reward_model, tokenizer, prompts, config,
                                   max_new_tokens, device, seed)
    rows += best_of_n_rows(candidates, prompts, config.numbers("best_of", int), sft, seed)
    optimum = optimum_rows(candidates, prompts, config.numbers("rlhf_betas", float), seed,
                           config.min_ess, config.min_ess_share)
    rows += optimum
    timings["best-of-N and π*"] = time.time() - clock

    bank = against_fixed_answers(prompts, {}, seed)  # one answer said to every prompt
    best_fixed = {"answer": bank["best_fixed_answer"],
                  "gold": bank["fixed_answers"][bank["best_fixed_answer"]]}
    results = {"run": config.run, "algorithm": config.algorithm, "prompts": len(prompts),
               "device": device, "seconds": time.time() - started, "timings": timings,
               "best_fixed_answer": best_fixed, "gao_fits": gao_fits(rows),
               "points": rows}  # with each point's r* per prompt, for paired comparisons
    run.write_json("frontier.json", results)
    plot_frontier(run, results["points"], config, best_fixed)
    run.write_text("frontier.md", frontier_markdown(results, config))
    return results


@torch.no_grad()
def reference_samples(reference, reward_model, tokenizer, prompts, config, max_new_tokens, device,
                      seed):
    """M answers y_j ~ π_ref per prompt, with r_φ (less the missing-EOS penalty, as RL is paid),
    r* and right flags: [prompt][j] -> dict."""
    m = max(config.optimum_samples, max(config.numbers("best_of", int)))
    repeated = [p for p in prompts for _ in range(m)]
    samples = sample_answers(reference, tokenizer, repeated, max_new_tokens=max_new_tokens,
                             seed=seed + 7, device=device)
    scores = score_samples(reward_model, samples, tokenizer.pad_id, device,
                           RLHFConfig.missing_eos_penalty).tolist()
    right = right_flags(repeated, [s.text for s in samples], [s.finished for s in samples])
    out = []
    for i, prompt in enumerate(prompts):
        out.append([{"text": samples[i * m + j].text, "finished": samples[i * m + j].finished,
                     "score": scores[i * m + j],
                     "gold": gold_reward(prompt, samples[i * m + j].text,
                                         finished=samples[i * m + j].finished),
                     "right": right[i * m + j]} for j in range(m)])
    return out


def best_of_n_key(answer) -> tuple:
    """What best-of-N maximises: a finished answer before a cut one, then r_φ."""
    return answer["finished"], answer["score"]


def best_of_n_rows(candidates, prompts, ns, sft, seed) -> list[dict]:
    """Best-of-N among the first N answers of π_ref (finished answers first, then r_φ).

    Its KL is given as the bound log N − (N − 1)/N and, beside it, a plug-in estimate:
    align.kl.best_of_n_kl on each prompt's M draws of π_ref taken as the distribution
    (each 1/M), averaged over prompts. The draws see only part of π_ref, so the estimate
    is of a coarser distribution than π_ref itself: it is below the bound, and closer to
    it the more distinct answers π_ref gives."""
    rows = []
    for n in ns:
        chosen = [max(answers[:n], key=best_of_n_key) for answers in candidates]
        gold = [a["gold"] for a in chosen]
        right = [a["right"] for a in chosen]
        point = point_from_lists(gold, right, [a["score"] for a in chosen],
                                 len({a["text"].strip() for a in chosen}), seed, prompts)
        point["texts"] = [a["text"] for a in chosen]
        point["kl_exact_per_token"], point["kl_exact_per_token_ci"] = math.log(n) - (n - 1) / n, 0.0
        row = table_row("best-of-N (r_φ)", f"N={n}", 0, point, sft, seed, prompts,
                        kl_is_bound=True)
        row["kl_estimate"], row["kl_estimate_ci"] = mean_and_ci(
            [best_of_n_kl([1 / len(answers)] * len(answers), [best_of_n_key(a) for a in answers], n)
             for answers in candidates])
        rows.append(row)
    return rows


def snis(answers, beta) -> dict:
    """The self-normalised importance-sampling estimate for one prompt (see the module):
    E_{π*}[r*], E_{π*}[right], E_{π*}[r_φ], KL(π*‖π_ref) and the ESS 1/Σ_j w_j²."""
    logits = torch.tensor([a["score"] / beta for a in answers], dtype=torch.float64)  # (M,)
    w = torch.softmax(logits, 0)  # self-normalised weights
    log_z = torch.logsumexp(logits, 0) - math.log(len(answers))  # log (1/M Σ e^{r/β})
    weighted = lambda key: float(w @ torch.tensor([a[key] for a in answers],  # noqa: E731
                                                  dtype=torch.float64))
    return {"gold": weighted("gold"), "right": weighted("right"), "score": float(w @ (logits * beta)),
            "kl": float(w @ logits - log_z), "ess": float(1.0 / (w ** 2).sum())}


# A prompt's estimate is carried by enough answers when its ESS is at least min_ess and
# at least min_ess_share·M; a β is plotted when most prompts (this share of them) are, and
# when the estimate from the first M/2 answers is less than the width of its interval away
# from the one from all M.
CARRIED_PROMPTS = 0.5


def optimum_rows(candidates, prompts, betas, seed, min_ess=4.0, min_ess_share=0.1) -> list[dict]:
    """π*_β ∝ π_ref·exp(r_φ/β) by self-normalised importance sampling (see the module):
    a biased estimate (the bias shrinks as M grows), so each row says how far to trust it:
    the per-prompt ESS (its mean and 10/50/90% quantiles), the share of prompts it carries
    (ESS ≥ max(min_ess, min_ess_share·M)), and r* from the first M/2 answers beside r*
    from all M."""
    rows = []
    for beta in betas:
        full = [snis(answers, beta) for answers in candidates]
        half = [snis(answers[: max(1, len(answers) // 2)], beta) for answers in candidates]
        point = point_from_lists([f["gold"] for f in full], [f["right"] for f in full],
                                 [f["score"] for f in full], None, seed, prompts)
        point["kl_exact_per_token"], point["kl_exact_per_token_ci"] = mean_and_ci(
            [f["kl"] for f in full])
        row = table_row("π*_β (SNIS estimate)", f"β={beta:g}", 0, point, None, seed, prompts)
        ess = torch.tensor([f["ess"] for f in full], dtype=torch.float64)
        row["ess"] = float(ess.mean())
        row["ess_quantiles"] = [float(q) for q in
                                torch.quantile(ess, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))]
        row["carried_share"] = sum(f["ess"] >= max(min_ess, min_ess_share * len(answers))
                                   for f, answers in zip(full, candidates)) / len(candidates)
        row["gold_half_m"] = sum(h["gold"] for h in half) / len(half)
        row["stable"] = abs(row["gold"] - row["gold_half_m"]) <= row["gold_high"] - row["gold_low"]
        row["reliable"] = row["carried_share"] >= CARRIED_PROMPTS and row["stable"]
        rows.append(row)
    return rows


def point_from_lists(gold, right, scores, distinct, seed, prompts) -> dict:
    groups = question_groups(prompts)  # intervals resample questions, as align.compare's
    mean, low, high = bootstrap_mean(gold, seed=seed, groups=groups)
    right_mean, right_low, right_high = bootstrap_mean(right, seed=seed, groups=groups)
    return {"gold": gold, "gold_mean": mean, "gold_interval": (low, high),
            "right_share": right_mean, "right_interval": (right_low, right_high),
            "reward_model_score": sum(scores) / len(scores),
            "breakdown": {"distinct_answers": distinct}}


def main(argv=None):
    parser = parser_from_dataclass(FrontierConfig, __doc__)
    config = FrontierConfig(**given_flags(parser.parse_args(argv)))
    results = run_frontier(config)
    with open(os.path.join(config.out_dir, "frontier.md"), encoding="utf-8") as f:
        print(f.read())
    print(f"frontier: {config.out_dir} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    run_main(main, resume_hint="run the same command again to continue (finished curves are kept)")
