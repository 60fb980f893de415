"""The lecture end to end: pre-training → SFT → preference data → reward model → DPO and RLHF.

    toy world corpus ─► pre-training ─► SFT on mixed-quality demonstrations = π_ref
    π_ref samples, labelled by the gold reward r* through Bradley-Terry ─► preference pairs
    pairs ─► reward model r_φ (Bradley-Terry)        pairs + frozen π_ref ─► DPO policy π_θ
    r_φ + frozen π_ref ─► RLHF policy (RLOO on J_RLHF, per-token KL penalty, align.rlhf)
    held-out prompts ─► gold reward r* of SFT, DPO and best-of-N (r_φ) answers, sampled and
        greedy, with the breakdown (right / wrong / offensive / evasive / off-topic shares,
        r* components, distinct answers, right answers by kind), paired bootstrap intervals
        for DPO − SFT, RLHF − SFT and best-of-N − SFT, and KL(π_θ‖π_ref) sampled and exact
        per token

Run:
    python -m align.pipeline                   # the default: about 7 minutes on 2 CPU cores
    python -m align.pipeline --quick            # under a minute: a smoke test
    python -m align.pipeline --preset small     # about 6 minutes: the end-to-end test's run
    python -m align.pipeline --preset gpu --device cuda

β: the lecture's example uses DPOConfig(beta=0.1). Here log π(y|x) sums the log-probs of
an answer's tokens, and the smaller β is, the further DPO may push π_θ from π_ref (its
implicit reward is β·log π_θ/π_ref, so the same preference margin needs a log-ratio 1/β
times larger), into made-up words that the gold reward punishes; β = 0.5 keeps π_θ near
π_ref. Try --beta 0.1 to see the drift.

The world is sized to the model. The pre-trained model must *store* each fact (the corpus
states every city, sum and topic in several wordings, held-out ones included) and SFT must
teach it to *use* them: to answer a question it was never asked about a fact it read.
`align.probe` measures both, and the report shows them side by side.

What a default run measures, and how far that moves from one machine or seed to another,
is in the README ("The lecture end to end") and in align/expected.py, whose ranges the
report sets each default run's figures against.

One run folder (--out-dir) holds data/, pretrain/, sft/, reward/, dpo/, rlhf/ (each with its
checkpoint, metrics and plots), the figures losses.png, dpo_rewards.png, gold_reward.png
and gold_components.png, samples.jsonl, results.json, and report.md with the tables.
Each preset has its own default folder (runs/pipeline, runs/pipeline-quick, ...).

Nothing is lost or overwritten: every stage's settings are checked before pre-training
starts; a rerun into a folder of the same settings keeps the finished stages (stages.json)
and continues an interrupted one from its last checkpoint, exactly; a folder of other
settings is refused, naming them, unless --overwrite; a failed new run leaves no folder.
No other command's folder, nor one holding files the pipeline did not write, is ever
written or deleted (minigpt.ownership); the folder's place is no setting: a moved run
folder resumes. A folder whose settings differ only for stages it has not run yet (a stage added to the
pipeline since, say) keeps what it has done and runs those stages with the new settings.
"""

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field

import torch

from align.breakdown import kind_of
from align.compare import compare_policies
from align.data import read_jsonl, write_jsonl
from align.probe import knowledge_report, reward_facts
from align.dpo import DPOConfig, train_dpo
from align.preferences import make_preference_pairs
from align.report import plot_pipeline, write_report
from align.reward import RewardConfig, load_reward_model, train_reward
from align.rlhf import RLHFConfig, train_rlhf
from align.sampling import generate_responses
from align.sft import SFTConfig, train_sft
from align.stats import proportion_interval
from align.common import checkpoint_to_resume, fit_lengths_to_context
from minigpt import swaps
from minigpt.checkpoint import load_checkpoint, load_model
from minigpt.cli import check_ranges, given_flags, parser_from_dataclass, run_main
from minigpt.device import pick_device
from minigpt.errors import InputError
from minigpt.ownership import check_run_folder, remove_run_folder, same_path
from minigpt.runlog import RunFolder, column
from minigpt.train import FREE_ON_RESUME as FREE_ON_RESUME_TRAIN, TrainConfig, train
from toyworld.world import (LECTURE_PROMPTS, evaluation_prompts, heldout_prompts,
                            pretraining_corpus, sft_demonstrations, train_prompts,
                            world_fingerprint)

# The tokenizer every preset pre-trains with (a preset's "pretrain" settings may override
# it): a byte-level BPE learned on the run's own corpus, so that a city, a number or a
# common word is one or a few tokens. A fact is then a short pattern over a few tokens, and
# a step of pre-training reads about three times the text it reads in bytes.
TOKENIZER = dict(tokenizer="bpe", vocab_size=1024)
# Extra preference pairs per prompt (align.preferences), written by the world beside π_ref's
# samples: an answer to another question offered against π_ref's answer to this one, and a
# polite answer against its rude twin, so that r_φ learns that ignoring the question is not
# a good answer; a right answer against its wrong twin, so that r_φ learns to check the
# fact. A preset may change them under "preferences".
EXTRA_PAIRS = dict(off_topic_per_prompt=3.0, rude_per_prompt=0.5, wrong_per_prompt=4.0,
                   misread_share=0.5)
# r_φ reads its trunk's likelihood of the answer beside the scalar head (align.reward's
# RewardModel): with the head alone it learns which numbers came with which operands in
# the pairs, and ranks a held-out sum's near misses above it. A preset may change it.
REWARD_MODEL = dict(reads_likelihood=True)


def with_defaults(preset: dict) -> dict:
    """A preset with the defaults it relies on filled in: EXTRA_PAIRS under "preferences"
    and REWARD_MODEL under "reward", less what the preset changes."""
    return {**preset, "preferences": {**EXTRA_PAIRS, **preset.get("preferences", {})},
            "reward": {**REWARD_MODEL, **preset["reward"]}}

# Each preset: the toy world's sizes and every stage's settings.
PRESETS = {
    "quick": dict(
        corpus_chars=150_000, sft_rows=600, pair_prompts=48, heldout_pairs_prompts=24,
        samples_per_prompt=4, eval_prompts=32, best_of=2,
        unfinished="keep",  # its tiny model seldom writes EOS yet: keep cut answers as sampled
        pretrain=dict(n_layer=2, n_head=2, n_embd=64, block_size=128, batch_size=16,
                      max_iters=150, warmup_iters=20, eval_interval=75, eval_iters=5),
        sft=dict(max_iters=60, batch_size=16, eval_interval=30),
        reward=dict(max_iters=40, batch_size=16, eval_interval=20),
        dpo=dict(max_iters=40, batch_size=16, eval_interval=20, learning_rate=3e-4),
        rlhf=dict(max_iters=6, batch_size=8, rloo_k=2, eval_interval=3, eval_prompts=8,
                  learning_rate=3e-4),
    ),
    # Seconds: every stage's code path, with models too small to write words (the lessons'
    # smoke setting).
    "smoke": dict(
        corpus_chars=20_000, sft_rows=100, pair_prompts=8, heldout_pairs_prompts=8,
        samples_per_prompt=2, eval_prompts=8, best_of=2, unfinished="keep",
        pretrain=dict(n_layer=1, n_head=2, n_embd=32, block_size=96, batch_size=8, max_iters=20,
                      warmup_iters=2, eval_interval=20, eval_iters=2),
        sft=dict(max_iters=10, batch_size=8, eval_interval=10),
        reward=dict(max_iters=10, batch_size=8, eval_interval=10),
        dpo=dict(max_iters=2, batch_size=8, eval_interval=2),
        rlhf=dict(max_iters=1, batch_size=2, rloo_k=2, eval_interval=1, eval_prompts=4),
    ),
    # Large enough that DPO's effect can be measured, small enough for the test suite.
    "small": dict(
        corpus_chars=600_000, sft_rows=2000, pair_prompts=400, heldout_pairs_prompts=300,
        samples_per_prompt=4, eval_prompts=120, best_of=2,
        pretrain=dict(n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=16,
                      max_iters=700, warmup_iters=50, eval_interval=350, eval_iters=5),
        sft=dict(max_iters=120, batch_size=32, eval_interval=60),
        reward=dict(max_iters=150, batch_size=32, eval_interval=50),
        # a weaker π_ref drifts into made-up words sooner: a few small DPO steps
        dpo=dict(max_iters=40, batch_size=32, eval_interval=20, learning_rate=5e-5,
                 warmup_iters=10),
        # the end-to-end test measures DPO; RLHF runs every code path, briefly
        rlhf=dict(max_iters=6, batch_size=8, rloo_k=4, eval_interval=6, eval_prompts=16,
                  learning_rate=5e-5),
    ),
    "default": dict(
        corpus_chars=1_000_000, sft_rows=4000, pair_prompts=1000, heldout_pairs_prompts=300,
        samples_per_prompt=4, eval_prompts=300, best_of=4,
        # every two of the 4 samples (6 pairs, not 2): three times the training pairs at no
        # extra sampling
        pairing="all",
        # 2500 pre-training steps: with fewer, the probe finds some held-out sums not yet
        # stored (sums are the last facts learnt); SFT at a low learning rate, which teaches
        # the answer's form while it keeps what pre-training stored; DPO's 300 steps of 32
        # pairs see about every training pair once (the README gives the measurements)
        pretrain=dict(n_layer=4, n_head=4, n_embd=128, block_size=128, batch_size=12,
                      max_iters=2500, warmup_iters=100, learning_rate=3e-3, min_lr=3e-4,
                      eval_interval=500, eval_iters=10),
        sft=dict(max_iters=300, batch_size=32, eval_interval=100, learning_rate=1.5e-4,
                 min_lr=1.5e-5),
        reward=dict(max_iters=400, batch_size=32, eval_interval=100, learning_rate=1.5e-4,
                    min_lr=1.5e-5),
        dpo=dict(max_iters=300, batch_size=32, eval_interval=100, learning_rate=1.5e-4,
                 min_lr=1.5e-5),
        rlhf=dict(max_iters=100, batch_size=16, rloo_k=4, eval_interval=50, eval_prompts=128,
                  learning_rate=1.25e-4, min_lr=3.75e-6),
    ),
    "gpu": dict(
        corpus_chars=3_000_000, sft_rows=20000, pair_prompts=4000, heldout_pairs_prompts=500,
        samples_per_prompt=4, eval_prompts=1000, best_of=8,
        pretrain=dict(n_layer=6, n_head=6, n_embd=384, block_size=128, batch_size=64,
                      max_iters=4000, warmup_iters=200, eval_interval=500, eval_iters=20),
        sft=dict(max_iters=1500, batch_size=64, eval_interval=250),
        reward=dict(max_iters=1000, batch_size=64, eval_interval=250),
        dpo=dict(max_iters=1000, batch_size=64, eval_interval=100),
        rlhf=dict(max_iters=500, batch_size=32, rloo_k=4, eval_interval=100, eval_prompts=256,
                  learning_rate=1e-4),
    ),
}


@dataclass
class PipelineConfig:
    preset: str = field(default="default", metadata={"help": "sizes and steps of every stage",
                                                      "choices": tuple(PRESETS)})
    out_dir: str = field(default="", metadata={
        "help": "run folder to write (default: runs/pipeline, or runs/pipeline-PRESET for "
                "another preset, so a quick run never replaces a default one)"})
    beta: float = field(default=0.5, metadata={"help": "DPO's β (see the module's docstring)"})
    rlhf_beta: float = field(default=0.25, metadata={
        "help": "RLHF's β, the weight of its per-token KL penalty (see align.rlhf)"})
    max_new_tokens: int = field(default=48, metadata={"help": "longest sampled answer"})
    seed: int = field(default=1337, metadata={"help": "random seed"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})
    quick: bool = field(default=False, metadata={"help": "the same as --preset quick"})
    resume: bool = field(default=False, metadata={
        "help": "continue the run in --out-dir with its saved settings (a rerun with the same "
                "settings into the same folder resumes too)"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a pipeline run of other settings in --out-dir"})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})

    def __post_init__(self):
        if self.quick:
            self.preset = "quick"
        if self.preset not in PRESETS:
            raise InputError(f"--preset must be one of {list(PRESETS)}, got {self.preset!r}")
        if not self.out_dir:
            self.out_dir = "runs/pipeline" if self.preset == "default" else f"runs/pipeline-{self.preset}"
        check_ranges(self, at_least_one=("max_new_tokens",))
        if self.resume and self.overwrite:
            raise InputError("--resume continues a run and --overwrite replaces it: give one")


# Settings that do not change what a run computes: a run may be resumed with other values
# (out_dir is where the run is, so a moved run folder still resumes).
FREE_ON_RESUME = ("progress", "resume", "overwrite", "quick", "out_dir")
STAGES = ("data", "pretrain", "sft", "preferences", "reward", "dpo", "rlhf", "evaluation")
STAGE_FLAGS = {"beta": "dpo", "rlhf_beta": "rlhf"}  # flags that shape one stage only


def stage_configs(config: PipelineConfig, path) -> dict:
    """Every stage's settings, built (and so checked) before any work starts: a bad --beta
    is refused at once, not after ten minutes of pre-training."""
    preset = with_defaults(PRESETS[config.preset])
    block = preset["pretrain"]["block_size"]
    lengths = dict(max_length=block, max_prompt_length=block // 2, device=config.device,
                   seed=config.seed)
    configs = {
        "pretrain": TrainConfig(data=path("data/corpus.txt"), out_dir=path("pretrain"),
                                seed=config.seed, device=config.device, sample_tokens=0,
                                **{**TOKENIZER, **preset["pretrain"]}),
        "sft": SFTConfig(init=path("pretrain"), data=path("data/sft_train.jsonl"),
                         eval_data=path("data/sft_eval.jsonl"), out_dir=path("sft"),
                         **lengths, **preset["sft"]),
        "reward": RewardConfig(init=path("sft"), data=path("data/pairs_train.jsonl"),
                               eval_data=path("data/pairs_heldout.jsonl"), out_dir=path("reward"),
                               **lengths, **preset["reward"]),
        "dpo": DPOConfig(init=path("sft"), data=path("data/pairs_train.jsonl"),
                         eval_data=path("data/pairs_heldout.jsonl"), out_dir=path("dpo"),
                         beta=config.beta, **lengths, **preset["dpo"]),
        "rlhf": RLHFConfig(init=path("sft"), reward=path("reward"), data=path("data/pairs_train.jsonl"),
                           eval_data=path("data/eval_prompts.jsonl"), out_dir=path("rlhf"),
                           beta=config.rlhf_beta, max_new_tokens=config.max_new_tokens,
                           **lengths, **preset["rlhf"]),
    }
    for name in ("sft", "reward", "dpo", "rlhf"):
        fit_lengths_to_context(configs[name], block)
    pick_device(config.device)  # an unavailable device is refused now too
    return configs


def saved_settings(config: PipelineConfig) -> dict:
    """What config.json records, and what a rerun must match to resume: the flags that
    shape the run and the preset's settings as the code defines them now."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in FREE_ON_RESUME}
    # the defaults it relies on too, and the world its data stage wrote (under that stage's
    # name: compared once the stage has run)
    preset = {**with_defaults(PRESETS[config.preset]), "data": {"world": world_fingerprint()}}
    return json.loads(json.dumps({**settings, "preset_settings": preset,
                                  # a student's function swapped in (python -m exercises run)
                                  "student_versions": swaps.active()}))


def setting_changes(saved: dict, wanted: dict, prefix="") -> list[str]:
    """["--beta 0.5 → 1.0", "preset settings: dpo.max_iters 300 → 400", ...]: flags are
    named as typed, other entries (student_versions) as they are."""
    flags = {f.name for f in dataclasses.fields(PipelineConfig)}
    changes = []
    for key in sorted(set(saved) | set(wanted)):
        old, new = saved.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += setting_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            name = f"--{key.replace('_', '-')}" if not prefix and key in flags else prefix + key
            changes.append(f"{name} {old!r} → {new!r}")
    return changes


def open_run_folder(config: PipelineConfig) -> tuple[RunFolder, dict]:
    """The run folder and the stages already done in it ({stage: {"seconds", "result"}}).

    An empty or missing folder starts a new run. A folder holding a pipeline run of the same
    settings resumes it, --overwrite or not. A pipeline run of other settings is refused (its
    work is not replaced without asking) unless --overwrite; another command's folder, or
    one holding files the pipeline did not write, is always refused (minigpt.ownership),
    since the pipeline never deletes what it did not write."""
    out = config.out_dir
    wanted = saved_settings(config)
    if check_run_folder(out, "pipeline"):  # a pipeline run, holding nothing but its own files
        saved = read_json_or_none(os.path.join(out, "config.json"))
        if saved is not None:
            saved.setdefault("student_versions", {})  # a folder written before they were recorded
        if saved is None or "preset_settings" not in saved:  # replaced by an older version's command
            if not config.overwrite:
                raise InputError(f"--out-dir {out}: holds a pipeline run whose config.json is "
                                 f"{'missing' if saved is None else 'not a pipeline run’s'} "
                                 f"(another command wrote over it), so it cannot be resumed; "
                                 f"pass --overwrite to run it again, or choose another --out-dir")
            saved = {}
        # settings of stages this folder has not run yet may differ: those stages run anew
        not_run = {name for name in STAGES
                   if name not in (read_json_or_none(os.path.join(out, "stages.json")) or {})}
        flags = [k for k in wanted if k != "preset_settings" and STAGE_FLAGS.get(k) not in not_run]
        changes = setting_changes({k: saved.get(k) for k in flags}, {k: wanted[k] for k in flags})
        if not changes:  # the same flags, but the code's preset has changed since
            keep = lambda preset: {k: v for k, v in (preset or {}).items() if k not in not_run}  # noqa: E731
            changes = setting_changes(keep(saved.get("preset_settings")),
                                      keep(wanted["preset_settings"]), "preset settings: ")
        if len(changes) > 4:
            changes = changes[:4] + [f"{len(changes) - 4} more"]
        finished = os.path.exists(os.path.join(out, "results.json"))
        if changes and config.overwrite:
            remove_run_folder(out, "pipeline")  # only what the pipeline wrote
        elif changes:
            raise InputError(f"{out}: holds a {'finished' if finished else 'unfinished'} pipeline "
                             f"run of other settings ({', '.join(changes)}); pass --overwrite "
                             f"to replace it, or choose another --out-dir")
    elif config.resume:
        raise InputError(f"--resume: {out} holds no pipeline run to continue")
    run = RunFolder(out, "pipeline")
    done = read_json_or_none(run.file("stages.json")) or {}
    run.write_json("config.json", {**dataclasses.asdict(config), **wanted})
    return run, done


def read_json_or_none(file):
    if not os.path.exists(file):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{file}: not valid JSON; remove it or choose another --out-dir") from None


def stage_outputs(stage: str, path) -> list[str]:
    """The files a finished stage leaves; a stage whose files are missing is redone."""
    data = [path(f"data/{name}")
            for name in ("corpus.txt", "sft_train.jsonl", "sft_eval.jsonl", "eval_prompts.jsonl")]
    pairs = [path("data/pairs_train.jsonl"), path("data/pairs_heldout.jsonl")]
    checkpoints = {name: [path(f"{name}/ckpt.pt")] for name in ("pretrain", "sft", "reward", "dpo", "rlhf")}
    return {"data": data, "preferences": pairs, **checkpoints,
            "evaluation": [path("results.json"), path("report.md")]}[stage]


def resumable_pretraining(train_config: TrainConfig) -> dict | None:
    """An interrupted pre-training's checkpoint when it continues exactly this configuration
    (minigpt.train's exact resume), else None: pre-training then starts afresh."""
    file = os.path.join(train_config.out_dir, "ckpt.pt")
    if not os.path.exists(file):
        return None
    try:
        checkpoint = load_checkpoint(file)
        saved = json.loads(checkpoint["extra"]).get("train_config", {})
    except (InputError, KeyError, ValueError):
        return None  # a broken checkpoint is not worth keeping: start again
    wanted = dataclasses.asdict(train_config)
    def same_setting(name, old, new):  # the corpus is the run's own: the same file if moved with it
        if name == "data":
            return same_path(old or "", new, saved.get("out_dir", train_config.out_dir),
                             train_config.out_dir)
        return old == new
    same = all(same_setting(k, saved.get(k), v) for k, v in wanted.items()
               if k not in FREE_ON_RESUME_TRAIN)
    return checkpoint if same and "optimizer" in checkpoint else None


def resumable(stage_config, stage: str) -> bool:
    """Whether an interrupted SFT, reward or DPO stage left a checkpoint that continues
    this configuration exactly."""
    try:
        resumed = dataclasses.replace(stage_config, resume=True, overwrite=False)
        return checkpoint_to_resume(resumed, stage) is not None
    except InputError:  # none, an older one without optimizer state, other settings
        return False


def run_pipeline(config: PipelineConfig) -> dict:
    """Run every stage into config.out_dir (resuming what an earlier run left; see
    open_run_folder) and return the results that results.json holds."""
    preset, device, seed = PRESETS[config.preset], pick_device(config.device), config.seed
    path = lambda name: os.path.join(config.out_dir, name)  # noqa: E731
    configs = stage_configs(config, path)
    existed = os.path.isdir(config.out_dir)
    run, done = open_run_folder(config)
    started = time.time()
    redo = False  # once a stage is redone, every later stage (which reads its output) is too

    def stage(name, work):
        nonlocal redo
        if not redo and name in done and all(map(os.path.exists, stage_outputs(name, path))):
            print(f"{name}: done in an earlier run ({done[name]['seconds']:.0f} s), kept")
            return done[name]["result"]
        continuing = not redo  # an interrupted stage continues only if nothing before it changed
        redo = True
        clock = time.time()
        result = work(continuing)
        done[name] = {"seconds": time.time() - clock, "result": result}
        run.write_json("stages.json", done)
        return result

    try:
        return stages(config, configs, preset, device, seed, path, stage, run, done, started)
    except BaseException:
        if not existed and not any(os.path.exists(path(f"{name}/ckpt.pt"))
                                   for name in ("pretrain", "sft", "reward", "dpo", "rlhf")):
            shutil.rmtree(config.out_dir, ignore_errors=True)  # a failed new run leaves nothing
        raise


def stages(config, configs, preset, device, seed, path, stage, run, done, started) -> dict:
    """The stages in order; `stage(name, work)` runs work(continuing) unless an earlier run
    did; continuing says that every earlier stage was kept, so the stage may continue
    from its own checkpoint (align.common.checkpoint_to_resume: exactly, or not at all)."""
    # 0. the toy world's data
    def make_data(continuing):
        os.makedirs(path("data"), exist_ok=True)
        with open(path("data/corpus.txt"), "w", encoding="utf-8") as f:
            f.write(pretraining_corpus(preset["corpus_chars"], seed))
        demonstrations = sft_demonstrations(preset["sft_rows"], seed)
        n_eval = max(len(demonstrations) // 10, 1)
        write_jsonl(path("data/sft_train.jsonl"), demonstrations[n_eval:])
        write_jsonl(path("data/sft_eval.jsonl"), demonstrations[:n_eval])
        # the held-out prompts every evaluation scores, each distinct prompt once: the RLHF
        # stage's evaluations (their first rlhf.eval_prompts) and the final one (all)
        write_jsonl(path("data/eval_prompts.jsonl"),
                    [{"prompt": p} for p in evaluation_prompts(preset["eval_prompts"], seed + 2)])
        return {"sft_rows": len(demonstrations), "sft_eval_rows": n_eval}
    stage("data", make_data)

    # 1. pre-training (minigpt.train), byte-level so any text of the world encodes;
    #    an interrupted pre-training continues from its last checkpoint, exactly
    def pretrain(continuing):
        checkpoint = resumable_pretraining(configs["pretrain"]) if continuing else None
        if checkpoint is not None:
            print(f"pretrain: continuing from step {checkpoint['step']}")
        train_config = dataclasses.replace(configs["pretrain"], resume=checkpoint is not None,
                                           overwrite=checkpoint is None)
        return train(train_config, checkpoint, progress=config.progress)
    pretrained = stage("pretrain", pretrain)

    # 2. supervised fine-tuning: π_ref
    def fine_tune(stage_name, train_stage):
        def work(continuing):
            stage_config = dataclasses.replace(configs[stage_name], overwrite=True)  # its own folder
            if continuing and resumable(stage_config, stage_name):
                print(f"{stage_name}: continuing from its last checkpoint")
                stage_config = dataclasses.replace(stage_config, resume=True, overwrite=False)
            return train_stage(stage_config, progress=config.progress)
        return stage(stage_name, work)
    sft = fine_tune("sft", train_sft)

    # 3. preference pairs from π_ref's samples, labelled by r* through Bradley-Terry
    sampling = dict(max_new_tokens=config.max_new_tokens, device=device)
    unfinished = preset.get("unfinished", "drop")
    extras = with_defaults(preset)["preferences"]

    def make_pairs(continuing):
        reference, tokenizer, _ = load_model(path("sft"), device)
        pairs, pair_counts = make_preference_pairs(reference, tokenizer,
                                                   train_prompts(preset["pair_prompts"], seed),
                                                   preset["samples_per_prompt"], seed, **sampling,
                                                   unfinished=unfinished,
                                                   pairing=preset.get("pairing", "adjacent"),
                                                   **extras)
        heldout_pairs, heldout_counts = make_preference_pairs(
            reference, tokenizer, heldout_prompts(preset["heldout_pairs_prompts"], seed + 1),
            preset["samples_per_prompt"], seed + 1, **sampling, unfinished=unfinished, **extras)
        if not pairs or not heldout_pairs:
            raise InputError(f"π_ref's samples made no preference pair ({pair_counts} {heldout_counts}); "
                             f"a model that never writes EOS within --max-new-tokens needs more SFT")
        write_jsonl(path("data/pairs_train.jsonl"), pairs)
        write_jsonl(path("data/pairs_heldout.jsonl"), heldout_pairs)
        return {"train": pair_counts, "heldout": heldout_counts}
    pair_counts = stage("preferences", make_pairs)

    # 4. reward model r_φ, 5. DPO
    reward = fine_tune("reward", train_reward)
    dpo = fine_tune("dpo", train_dpo)
    # 6. RLHF: RLOO on J_RLHF with the reward model, from the SFT model
    rlhf = fine_tune("rlhf", train_rlhf)

    # 7. evaluation on held-out prompts with the gold reward (align.compare)
    def evaluate(continuing):
        clock = time.time()
        reference, tokenizer, _ = load_model(path("sft"), device)
        policy, _, _ = load_model(path("dpo"), device)
        rl_policy, _, _ = load_model(path("rlhf"), device)
        reward_model, _ = load_reward_model(path("reward"), device)
        prompts = [row["prompt"] for row in read_jsonl(path("data/eval_prompts.jsonl"), ("prompt",))]
        comparison = compare_policies(reference, {"DPO": policy, "RLHF": rl_policy}, reward_model,
                                      tokenizer, prompts, preset["best_of"], config.max_new_tokens,
                                      device, seed=seed)
        lecture = {name: generate_responses(model, tokenizer, LECTURE_PROMPTS, temperature=0.0,
                                            **sampling)
                   for name, model in (("SFT", reference), ("DPO", policy), ("RLHF", rl_policy))}
        # Stored or used? The knowledge probe on every model, held-out and training facts
        pretrained_model, _, _ = load_model(path("pretrain"), device)
        greedy_heldout = {name: summary["texts"] for name, summary in comparison["greedy"].items()}
        train_prompts_probed = evaluation_prompts(preset["eval_prompts"], seed + 3, "train")
        knowledge = knowledge_report({"pretrained": pretrained_model, "SFT": reference,
                                      "DPO": policy, "RLHF": rl_policy}, tokenizer,
                                     prompts, greedy_heldout, train_prompts_probed,
                                     config.max_new_tokens, device)
        # ... and does r_φ use them? The same facts, as answers it ranks
        reward_knowledge = {split: reward_facts(reward_model, tokenizer, split_prompts, device)
                            for split, split_prompts in (("heldout", prompts),
                                                         ("train", train_prompts_probed))}
        timings = {**{name: done[name]["seconds"] for name in STAGES if name in done},
                   "evaluation": time.time() - clock}  # this stage is not in `done` yet
        results = {
            "preset": config.preset, "device": device, "seconds": time.time() - started,
            "timings": timings,
            "pretrain_val_loss": pretrained["val_loss"],
            "sft_response_loss": sft["eval_response_loss"],
            "reward_accuracy": reward["accuracy"], "reward_gold_agreement": reward["gold_agreement"],
            "reward_comparable_pairs": reward["gold_comparable_pairs"],
            "reward_accuracy_by_pair_kind": reward.get("accuracy_by_pair_kind"),
            "reward_right_vs_wrong_by_kind": reward.get("right_vs_wrong_by_kind"),
            "reward_likelihood_weight": reward.get("likelihood_weight"),
            "reward_off_topic_score": reward.get("off_topic_score"),
            "reward_right_score": reward.get("right_score"),
            "knowledge": knowledge, "reward_knowledge": reward_knowledge,
            "dpo_heldout_accuracy": dpo["rewards/accuracies"],
            "dpo_heldout_pairs": heldout_pairs_used(dpo["truncation"]),
            "dpo_heldout_accuracy_interval": proportion_interval(
                dpo["rewards/accuracies"], heldout_pairs_used(dpo["truncation"])),
            "dpo_train_accuracy_start_end": train_accuracy_start_end(path("dpo")),
            "rlhf": {key: rlhf.get(key) for key in ("algorithm", "beta", "gold_reward", "scores",
                                                     "kl_exact_per_token", "right_share",
                                                     "collapse")},
            "rlhf_scores_start_end": rlhf_scores_start_end(path("rlhf")),
            "evaluation": without_texts(comparison),
            "pairs": pair_counts["train"], "heldout_pairs": pair_counts["heldout"],
            "truncation": {"sft": sft["truncation"], "reward": reward["truncation"],
                           "dpo": dpo["truncation"]},
        }
        rows = []
        for i, prompt in enumerate(prompts):
            row = {"prompt": prompt, "kind": kind_of(prompt)}
            for mode in ("sampled", "greedy"):
                for name, summary in comparison[mode].items():
                    row[f"{mode}/{name}"] = summary["texts"][i]
                    row[f"gold/{mode}/{name}"] = summary["gold"][i]
            rows.append(row)
        write_jsonl(path("samples.jsonl"), rows)
        run.write_json("results.json", {**results, "lecture_answers": lecture})
        plot_pipeline(run, comparison, config.preset)
        write_report(run, results, lecture, LECTURE_PROMPTS)
        return results
    return stage("evaluation", evaluate)


def heldout_pairs_used(truncation: dict) -> int:
    """How many held-out pairs a stage evaluated on (those that fit max_length)."""
    return truncation["held_out"]["rows"] - truncation["held_out"]["dropped"]


def without_texts(comparison: dict) -> dict:
    """The comparison without per-prompt lists (those go to samples.jsonl)."""
    out = {key: value for key, value in comparison.items() if key not in ("sampled", "greedy")}
    for mode in ("sampled", "greedy"):
        out[mode] = {name: {k: v for k, v in summary.items() if k not in ("gold", "right", "texts")}
                     for name, summary in comparison[mode].items()}
    return out


def train_accuracy_start_end(dpo_dir) -> tuple[float, float]:
    """DPO's batch implicit-reward accuracy over the first and last tenth of training."""
    _, values = column(RunFolder(dpo_dir).read_metrics(), "rewards/accuracies")
    tenth = max(len(values) // 10, 1)
    return sum(values[:tenth]) / tenth, sum(values[-tenth:]) / tenth


def rlhf_scores_start_end(rlhf_dir) -> dict:
    """RLHF's r_φ and r* of the rollouts, mean over the first and last tenth of training."""
    rows = RunFolder(rlhf_dir).read_metrics()
    out = {}
    for key in ("objective/scores", "objective/gold_scores", "objective/kl"):
        _, values = column(rows, key)
        tenth = max(len(values) // 10, 1)
        out[key] = (sum(values[:tenth]) / tenth, sum(values[-tenth:]) / tenth)
    return out


def main(argv=None):
    parser = parser_from_dataclass(PipelineConfig, __doc__)
    flags = given_flags(parser.parse_args(argv))
    config = PipelineConfig(**flags)
    if config.resume:  # the saved run's settings, unless typed (a typed change is refused)
        saved = read_json_or_none(os.path.join(config.out_dir, "config.json")) or {}
        names = {f.name for f in dataclasses.fields(PipelineConfig)} - set(FREE_ON_RESUME)
        config = PipelineConfig(**{**{k: v for k, v in saved.items() if k in names}, **flags})
    torch.manual_seed(config.seed)
    results = run_pipeline(config)
    print(open(os.path.join(config.out_dir, "report.md"), encoding="utf-8").read())
    print(f"run folder: {config.out_dir} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    run_main(main, resume_hint="run the same command again to continue where it stopped (finished stages are kept)")
