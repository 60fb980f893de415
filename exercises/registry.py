"""The exercises: which reference function each one rewrites, where the student's file is,
and which lesson section to reread.

Each student file, exercises/student/<name>.py (or <name>.py in the folder that
$EXERCISES_STUDENT_DIR names), defines a function called <name> with the
reference's signature. Its checks live in exercises/checks/.
"""

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from minigpt.errors import InputError

EXERCISES_DIR = Path(__file__).resolve().parent
STUDENT_DIR = EXERCISES_DIR / "student"
PROJECT_ROOT = EXERCISES_DIR.parent
STUDENT_DIR_VARIABLE = "EXERCISES_STUDENT_DIR"  # another folder of student files (an instructor's)


def student_dir() -> Path:
    """exercises/student, or the folder named by $EXERCISES_STUDENT_DIR (--student-dir)."""
    return Path(os.environ.get(STUDENT_DIR_VARIABLE) or STUDENT_DIR)
CHECK_MODULES = ("exercises.checks.generation", "exercises.checks.scoring",
                 "exercises.checks.preferences", "exercises.checks.rl", "exercises.checks.rlhf",
                 "exercises.checks.lsh")
RLHF_USED_BY = ("python -m align.rlhf (RLOO: kl_penalized_rewards, rloo_advantages; PPO: "
                "kl_penalized_rewards, gae, ppo_clip_loss), the pipeline's RLHF stage")


@dataclass(frozen=True)
class Exercise:
    name: str  # the function's name, also the student file's name
    title: str
    reference: str  # "module:function" of the reference implementation
    lesson: str  # the lesson file to reread
    section: str  # its section (a "## " heading)
    used_by: str  # what runs it once the switch is on

    @property
    def module(self) -> str:
        return self.reference.split(":")[0]

    @property
    def student_file(self) -> Path:
        return student_dir() / f"{self.name}.py"

    def reference_function(self):
        module, function = self.reference.split(":")
        return getattr(importlib.import_module(module), function)

    def student_function(self):
        """The student's function, loaded afresh from the student's file."""
        path = self.student_file
        if not path.is_file():
            raise InputError(f"{path}: no such file; it should define {self.name}")
        spec = importlib.util.spec_from_file_location(f"student_{self.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not hasattr(module, self.name):
            raise InputError(f"{path}: defines no function called {self.name}")
        return getattr(module, self.name)


EXERCISES = {e.name: e for e in [
    Exercise("causal_attention", "Causal attention: softmax(q Kᵀ/√d_k + mask) V",
             "minigpt.model:causal_attention", "lessons/02_attention_and_generation.py",
             "One new token, by hand",
             "every GPT with attention='manual' (the default): training, generation, DPO"),
    Exercise("kv_cache_step", "One generation step with a KV cache",
             "minigpt.model:kv_cache_step", "lessons/02_attention_and_generation.py",
             "The KV cache", "GPT.generate(use_cache=True): sampling, lessons, evaluation"),
    Exercise("top_p_filter", "Top-p (nucleus) sampling",
             "minigpt.sampling:top_p_filter", "lessons/01_language_model.py",
             "Choosing the next token: greedy, temperature, top-k, top-p",
             "GPT.generate(top_p=...), python -m minigpt.sample --top-p"),
    Exercise("get_batch_logps", "Sequence log-probabilities: shift, mask, gather, sum",
             "minigpt.logps:get_batch_logps", "lessons/10_log_probs.py", "Step 1 — shift",
             "DPO (policy and reference log-probs), evaluation"),
    Exercise("sft_example", "The SFT label mask (−100 on the prompt)",
             "align.data:sft_example", "lessons/04_supervised_fine_tuning.py",
             "One demonstration, tokenised", "SFT, reward-model and DPO data"),
    Exercise("bradley_terry_loss", "The Bradley-Terry loss of the reward model",
             "align.losses:bradley_terry_loss", "lessons/07_reward_model_bradley_terry.py",
             "The Bradley-Terry loss", "python -m align.reward, the pipeline's reward model"),
    Exercise("dpo_loss", "The DPO loss (and its variants)",
             "align.losses:dpo_loss", "lessons/09_dpo.py", "The loss, as the code computes it",
             "python -m align.dpo, the pipeline's DPO stage"),
    Exercise("value_iteration", "Value iteration on the cat gridworld",
             "gridworld.planning:value_iteration", "lessons/05_rl_with_the_cat.py",
             "Value iteration (iteración de valores)", "python -m gridworld"),
    Exercise("reinforce_loss", "The REINFORCE update",
             "gridworld.learning:reinforce_loss", "lessons/05_rl_with_the_cat.py",
             "REINFORCE (gradiente de la política)",
             "python -m gridworld --algorithm reinforce"),
    Exercise("kl_penalized_rewards", "Per-token rewards: −β·log π_θ/π_ref on every token, + r_φ on the last",
             "align.rl_losses:kl_penalized_rewards", "lessons/11_rlhf_by_rl.py",
             "Per-token rewards: the KL penalty on every token", RLHF_USED_BY),
    Exercise("rloo_advantages", "RLOO: each answer's baseline is the mean of the other answers",
             "align.rl_losses:rloo_advantages", "lessons/11_rlhf_by_rl.py",
             "RLOO: the other answers as the baseline", RLHF_USED_BY),
    Exercise("gae", "GAE: Â_t = Σ_l (γλ)^l δ_{t+l}, from a value head",
             "align.rl_losses:gae", "lessons/11_rlhf_by_rl.py",
             "GAE: advantages from a value head", RLHF_USED_BY),
    Exercise("ppo_clip_loss", "PPO's clipped surrogate loss",
             "align.rl_losses:ppo_clip_loss", "lessons/11_rlhf_by_rl.py",
             "PPO's clipped objective", RLHF_USED_BY),
    Exercise("lsh_buckets", "LSH buckets: argmax([xR; −xR])",
             "minigpt.lsh:lsh_buckets", "lessons/13_efficient_transformers.py",
             "LSH attention by hand",
             "every GPT with attention='lsh': python -m minigpt.train --attention lsh"),
]}


def load_checks():
    """Import the check modules, which register their checks in grading.CHECKS."""
    for module in CHECK_MODULES:
        importlib.import_module(module)


def find(name: str) -> Exercise:
    if name not in EXERCISES:
        raise InputError(f"no exercise called {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]
