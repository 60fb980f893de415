"""The exercises: stubs match their references, the references pass their graders, typical
mistakes fail the right check, and the switch and the student copy do what they say."""

import inspect
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import exercises.__main__
from exercises.__main__ import main, print_report
from exercises.grading import CHECKS, grade, unwritten_exercise
from exercises.registry import EXERCISES, PROJECT_ROOT, load_checks
from exercises.student_copy import MARKER_FILE, check_stub, make_student_copy, strip_solutions
from minigpt.cli import run_main
from exercises.switch import swapped
from minigpt.errors import InputError

load_checks()
NAMES = list(EXERCISES)
IN_STUDENT_COPY = (PROJECT_ROOT / MARKER_FILE).exists()  # there the references are the students' files
SMOKE_ENV = {**os.environ, "LESSONS_SMOKE": "1", "PYTHONPATH": str(PROJECT_ROOT)}


def untouched(name: str) -> bool:
    """The student's file is still a stub (a student may have written it since)."""
    exercise = EXERCISES[name]
    return grade(name, exercise.student_function(), [exercise.student_file]).untouched


def cli(*args, cwd=PROJECT_ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "exercises", *args], cwd=cwd, env=env or SMOKE_ENV,
                          capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------------- the stubs
@pytest.mark.parametrize("name", NAMES)
def test_every_stub_has_its_reference_signature(name):
    exercise = EXERCISES[name]
    student = inspect.signature(exercise.student_function(), eval_str=True)
    reference = inspect.signature(exercise.reference_function(), eval_str=True)
    assert student == reference, f"{exercise.student_file}: {student} differs from {exercise.reference}: {reference}"


@pytest.mark.skipif(IN_STUDENT_COPY, reason="in a student copy the reference is the student's file")
@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_its_own_grader(name):
    report = grade(name, EXERCISES[name].reference_function())
    assert report.passed, [(r.check.description, r.message) for r in report.not_passed]
    assert len(report.results) == len(CHECKS[name]) >= 5
    assert {r.check.kind for r in report.results} >= {"values", "property"} or name == "sft_example"


@pytest.mark.parametrize("name", NAMES)
def test_an_untouched_stub_fails_in_one_clear_line(name, capsys):
    if not untouched(name):
        pytest.skip(f"{EXERCISES[name].student_file} has been edited")
    exercise = EXERCISES[name]
    report = grade(name, exercise.student_function())
    assert report.untouched and not report.passed and len(report.results) == 1
    print_report(exercise, report)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert f"{name}: not implemented yet" in lines[0] and f"{name}.py" in lines[0]
    assert exercise.lesson in lines[0] and exercise.section in lines[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_lesson_section_named_by_a_check_exists(name):
    exercise = EXERCISES[name]
    places = {(exercise.lesson, exercise.section)} | {
        (c.lesson or exercise.lesson, c.section or exercise.section) for c in CHECKS[name]}
    for lesson, section in places:
        text = (PROJECT_ROOT / lesson).read_text(encoding="utf-8")
        assert section in re.findall(r"^# ## (.+)$", text, flags=re.MULTILINE), f"{lesson} has no section {section!r}"


@pytest.mark.skipif(IN_STUDENT_COPY, reason="the copy has no solution blocks")
@pytest.mark.parametrize("name", NAMES)
def test_every_reference_has_exactly_one_solution_block(name):
    source = inspect.getsource(sys.modules[EXERCISES[name].module])
    assert source.count(f"# >>> solution {name}\n") == 1


# ------------------------------------------------------------------- typical mistakes fail
def attention_without_mask(q, k, v, allowed, dropout=None):
    return F.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1) @ v


def attention_without_scaling(q, k, v, allowed, dropout=None):
    return F.softmax((q @ k.transpose(-2, -1)).masked_fill(~allowed, float("-inf")), dim=-1) @ v


def attention_that_needs_a_mask(q, k, v, allowed, dropout=None):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float("-inf"))
    weights = F.softmax(scores, dim=-1)
    return (weights if dropout is None else dropout(weights)) @ v


def step_without_cache(model, idx, cache, attention_mask=None):
    return model(idx, attention_mask=attention_mask)[0][:, -1, :]


def top_p_in_float32_without_the_boundary_token(logits, p):
    sorted_probs, order = torch.sort(F.softmax(logits, dim=-1), dim=-1, descending=True)
    keep = torch.zeros_like(sorted_probs, dtype=torch.bool).scatter(-1, order, sorted_probs.cumsum(-1) < p)
    return logits.masked_fill(~keep, float("-inf"))


def logps_without_shift(logits, labels, average_log_prob=False, label_pad_token_id=-100):
    mask = labels != label_pad_token_id
    per_token = logits.log_softmax(-1).gather(2, labels.clamp(min=0).unsqueeze(2)).squeeze(2)
    return (per_token * mask).sum(-1)


def logps_masking_by_product(logits, labels, average_log_prob=False, label_pad_token_id=-100):
    labels = labels[:, 1:].clone()
    mask = labels != label_pad_token_id
    labels[~mask] = 0
    per_token = logits[:, :-1].log_softmax(-1).gather(2, labels.unsqueeze(2)).squeeze(2)
    total = (per_token * mask).sum(-1)
    return total / mask.sum(-1).clamp(min=1) if average_log_prob else total


def sft_with_shifted_labels(prompt_ids, response_ids, ignore_index=-100):
    labels = [ignore_index] * len(prompt_ids) + list(response_ids)
    return list(prompt_ids) + list(response_ids), labels[1:] + [ignore_index]


def bradley_terry_by_exponentials(chosen_rewards, rejected_rewards):
    e_w, e_l = chosen_rewards.exp(), rejected_rewards.exp()
    return -torch.log(e_w / (e_w + e_l)).mean()


def bradley_terry_swapped(chosen_rewards, rejected_rewards):
    return -F.logsigmoid(rejected_rewards - chosen_rewards).mean()


def dpo_without_beta(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
                     reference_rejected_logps, beta=0.1, label_smoothing=0.0, loss_type="sigmoid",
                     reference_free=False):
    h = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
    return (-F.logsigmoid(h), beta * (policy_chosen_logps - reference_chosen_logps),
            beta * (policy_rejected_logps - reference_rejected_logps))


def value_iteration_one_sweep(T, R, gamma, tol=1e-12, max_iters=100_000):
    Q = R + gamma * T @ R.max(axis=1)
    return Q.max(axis=1), Q, 1


def reinforce_with_the_wrong_sign(theta, states, actions, advantages):
    log_pi = torch.log_softmax(theta[states], dim=-1).gather(1, actions[:, None]).squeeze(1)
    return (advantages * log_pi).sum()


MISTAKES = [  # (exercise, wrong version, words from the descriptions of checks that must fail)
    ("causal_attention", attention_without_mask, ["causality", "inside a GPT"]),
    ("causal_attention", attention_without_scaling, ["per-position loop", "inside a GPT"]),
    ("causal_attention", attention_that_needs_a_mask, ["allowed=None"]),
    ("kv_cache_step", step_without_cache, ["first step", "only the one new token"]),
    ("top_p_filter", top_p_in_float32_without_the_boundary_token,
     ["brute-force nucleus", "most likely token", "p = 1", "only from the nucleus"]),
    ("get_batch_logps", logps_without_shift, ["shift:", "mask:", "on a GPT"]),
    ("get_batch_logps", logps_masking_by_product, ["gives no NaN"]),
    ("sft_example", sft_with_shifted_labels, ["labels are -100", "data pipeline"]),
    ("bradley_terry_loss", bradley_terry_by_exponentials, ["large gaps"]),
    ("bradley_terry_loss", bradley_terry_swapped, ["the mean of", "recovers"]),
    ("dpo_loss", dpo_without_beta, ["the lecture's loss", "detached", "converges to π*"]),
    ("value_iteration", value_iteration_one_sweep, ["100·0.9⁷", "best of all", "Bellman"]),
    ("reinforce_loss", reinforce_with_the_wrong_sign, ["−Σ_t", "likelier", "optimal path"]),
]


@pytest.mark.parametrize("name, wrong, failing", MISTAKES, ids=[m[1].__name__ for m in MISTAKES])
def test_a_typical_mistake_fails_the_checks_that_describe_it(name, wrong, failing):
    report = grade(name, wrong)
    waiting = [r.message for r in report.results if r.status == "todo"]
    if IN_STUDENT_COPY and waiting:  # a check ran the model, which reached another exercise's stub
        pytest.skip(f"a check of {name} reaches an exercise not implemented yet: {waiting[0]}")
    failed = [r.check.description for r in report.not_passed]
    assert not report.passed
    for words in failing:
        assert any(words in d for d in failed), f"no failed check mentions {words!r}: {failed}"


def test_feedback_names_kind_message_section_and_the_line_of_a_crash(tmp_path, capsys):
    student = tmp_path / "causal_attention.py"
    student.write_text("import torch\n\ndef causal_attention(q, k, v, allowed, dropout=None):\n"
                       "    return q @ k  # forgot the transpose\n", encoding="utf-8")
    exercise = EXERCISES["causal_attention"]
    report = grade("causal_attention", attention_without_mask, [student])
    print_report(exercise, report)
    out = capsys.readouterr().out
    assert "FAIL property causality" in out and "must not see later keys" in out
    assert re.search(r"\d of 8 checks passed; reread lessons/02_attention_and_generation.py", out)
    spec_module = {}
    exec(compile(student.read_text(), str(student), "exec"), spec_module)
    crash = grade("causal_attention", spec_module["causal_attention"], [student])
    assert "your code raised RuntimeError" in crash.not_passed[0].message
    assert "causal_attention.py, line 4: return q @ k" in crash.not_passed[0].message


# ---------------------------------------------------------------------------------- switch
def test_swapped_puts_the_function_into_the_model_and_back():
    import minigpt.model
    from minigpt import GPT, GPTConfig
    calls = []

    def counting(q, k, v, allowed, dropout=None):
        calls.append(tuple(q.shape))
        return attention_without_mask(q, k, v, allowed, dropout)

    reference = minigpt.model.causal_attention
    model = GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=2, n_head=2, n_embd=8))
    with swapped("causal_attention", counting):
        model(torch.zeros(1, 5, dtype=torch.long))
    assert calls == [(1, 2, 5, 4)] * 2  # one call per layer
    assert minigpt.model.causal_attention is reference
    model(torch.zeros(1, 5, dtype=torch.long))
    assert len(calls) == 2


CORRECT_ATTENTION = """import math, sys
import torch

def causal_attention(q, k, v, allowed, dropout=None):
    print("student attention", q.shape[2], file=sys.stderr)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if allowed is not None:
        scores = torch.where(allowed, scores, float("-inf"))
    weights = scores.softmax(-1)
    return (weights if dropout is None else dropout(weights)) @ v
"""


def test_run_trains_and_runs_a_lesson_with_the_students_version(tmp_path):
    (tmp_path / "causal_attention.py").write_text(CORRECT_ATTENTION, encoding="utf-8")
    graded = cli("grade", "causal_attention", "--student-dir", str(tmp_path))
    assert graded.returncode == 0 and "all 8 checks passed" in graded.stdout
    trained = cli("run", "--student", "causal_attention", "--student-dir", str(tmp_path), "--",
                  "-m", "minigpt.train", "--max-iters", "2", "--eval-interval", "1", "--eval-iters", "1",
                  "--batch-size", "2", "--block-size", "16", "--out-dir", str(tmp_path / "run"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "your causal_attention" in trained.stderr and "student attention 16" in trained.stderr
    assert (tmp_path / "run" / "ckpt.pt").exists()
    lesson = cli("run", "--student", "causal_attention", "--student-dir", str(tmp_path), "--",
                 "lessons/02_attention_and_generation.py",
                 env={**SMOKE_ENV, "LESSONS_OUT": str(tmp_path / "lesson")})
    assert lesson.returncode == 0, lesson.stderr[-2000:]
    assert "student attention 1" in lesson.stderr  # cached generation steps: one query
    assert "def causal_attention(q, k, v, allowed, dropout=None):\n    print(" in lesson.stdout  # its source shown


def test_run_refuses_a_stub_and_an_unknown_name_in_one_line():
    if not untouched("dpo_loss"):
        pytest.skip("exercises/student/dpo_loss.py has been edited")
    refused = cli("run", "--student", "dpo_loss", "--", "-m", "align.dpo", "--help")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == ("error: dpo_loss is not implemented yet: edit exercises/student/dpo_loss.py "
                                      "(python -m exercises grade dpo_loss)")
    unknown = cli("grade", "attention")
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: no exercise called 'attention'")


def test_a_student_file_that_does_not_load_is_one_line_for_grade_and_run(tmp_path):
    (tmp_path / "reinforce_loss.py").write_text("def reinforce_loss(theta, states, actions, advantages)\n"
                                                "    return 0\n", encoding="utf-8")
    for args in (["grade", "reinforce_loss"], ["run", "--student", "reinforce_loss"]):
        result = cli(*args, "--student-dir", str(tmp_path), "--", "-m", "gridworld") if args[0] == "run" \
            else cli(*args, "--student-dir", str(tmp_path))
        output = (result.stdout + result.stderr).strip()
        assert result.returncode != 0 and "Traceback" not in output and len(output.splitlines()) == 1
        assert "cannot load" in output and "SyntaxError" in output and "reinforce_loss.py" in output


CORRECT_REINFORCE = """import torch

def reinforce_loss(theta, states, actions, advantages):
    dist = torch.distributions.Categorical(logits=theta[states])
    return -(advantages * dist.log_prob(actions)).sum()
"""


def test_run_the_gridworld_command_with_the_students_reinforce(tmp_path):
    (tmp_path / "reinforce_loss.py").write_text(CORRECT_REINFORCE, encoding="utf-8")
    result = cli("run", "--student", "reinforce_loss", "--student-dir", str(tmp_path), "--", "-m", "gridworld",
                 "--algorithm", "reinforce", "--episodes", "100", "--seed", "1", "--no-figures",
                 "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "your reinforce_loss" in result.stderr and "passes 5 of 5 checks" in result.stderr
    assert "47.83" in result.stdout  # V*(start) = 100·0.9⁷, found by the student's REINFORCE


# ---------------------------------------------------------------------------- student copy
@pytest.mark.skipif(IN_STUDENT_COPY, reason="already a student copy")
def test_the_student_copy_has_no_solutions_and_runs_the_students_code(tmp_path):
    copy = tmp_path / "course"
    assert make_student_copy(copy)[0] == len(EXERCISES)
    model_source = (copy / "minigpt" / "model.py").read_text(encoding="utf-8")
    assert "# >>> solution" not in model_source and "masked_fill_(~allowed" not in model_source
    assert "return student_version(q, k, v, allowed, dropout)" in model_source
    assert (copy / MARKER_FILE).exists() and not (copy / "runs").exists()
    for readme in (copy / MARKER_FILE, copy / "README.md"):  # how students test their work
        text = readme.read_text(encoding="utf-8")
        assert "python -m exercises grade all" in text and "exercise NAME not implemented yet" in text
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_losses.py"],
                           cwd=copy, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout[-3000:]  # the stubs' tests are skipped, not failed
    assert re.search(r"SKIPPED \[\d+\] .*exercise dpo_loss not implemented yet", tests.stdout)
    assert re.search(r"\d+ passed, \d+ skipped", tests.stdout) and "Traceback" not in tests.stdout
    (copy / "exercises" / "student" / "causal_attention.py").write_text(CORRECT_ATTENTION, encoding="utf-8")
    forward = subprocess.run(
        [sys.executable, "-c", "import torch; from minigpt import GPT, GPTConfig; "
         "GPT(GPTConfig(block_size=8, vocab_size=10, n_layer=1, n_head=1, n_embd=4))(torch.zeros(1, 3).long())"],
        cwd=copy, capture_output=True, text=True, timeout=120)
    assert forward.returncode == 0 and "student attention 3" in forward.stderr
    with pytest.raises(InputError, match="not an empty folder"):
        make_student_copy(copy)


@pytest.mark.skipif(IN_STUDENT_COPY, reason="in a student copy the references are the students' files")
def test_a_part_left_as_todo_and_a_stub_called_from_a_correct_version(capsys):
    def sigmoid_only(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps,
                     reference_rejected_logps, beta=0.1, label_smoothing=0.0, loss_type="sigmoid",
                     reference_free=False):
        if label_smoothing or loss_type != "sigmoid" or reference_free:
            raise NotImplementedError("exercise dpo_loss, part 2")
        h = (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)
        return (-F.logsigmoid(beta * h), (beta * (policy_chosen_logps - reference_chosen_logps)).detach(),
                (beta * (policy_rejected_logps - reference_rejected_logps)).detach())

    report = grade("dpo_loss", sigmoid_only)
    assert [r.status for r in report.results].count("todo") == 3 and not report.untouched
    assert all(r.status in ("passed", "todo") for r in report.results)
    print_report(EXERCISES["dpo_loss"], report)
    assert "TODO values   loss_type 'ipo'" in capsys.readouterr().out

    def stub_attention(q, k, v, allowed, dropout=None):
        raise NotImplementedError("exercise causal_attention: write softmax(q Kᵀ/√d_k + mask) V")

    correct_step = EXERCISES["kv_cache_step"].reference_function()  # as if a student had written it
    with swapped("causal_attention", stub_attention):
        report = grade("kv_cache_step", correct_step, [Path(inspect.getsourcefile(correct_step))])
    assert not report.untouched and report.results[0].status == "failed"
    assert "a function your code calls is not written yet: exercise causal_attention" in report.results[0].message


def test_strip_solutions_reports_broken_markers():
    with pytest.raises(InputError, match="f.py, line 2: solution block 'dpo_loss' has no"):
        strip_solutions("def dpo_loss(a):\n    # >>> solution dpo_loss\n    return a\n", "f.py")
    with pytest.raises(InputError, match="unknown exercise 'attention'"):
        strip_solutions("def f(a):\n    # >>> solution attention\n    return a\n    # <<< solution\n", "f.py")
    text, names = strip_solutions("def top_p_filter(logits, p):\n    x = 1\n    # >>> solution top_p_filter\n"
                                  "    return logits\n    # <<< solution\n", "f.py")
    assert names == ["top_p_filter"] and "    x = 1\n" in text and "return student_version(logits, p)" in text
    with pytest.raises(InputError, match="not inside a function called top_p_filter"):
        strip_solutions("def outer(a):\n    def inner(b):\n        # >>> solution top_p_filter\n"
                        "        return b\n        # <<< solution\n    return inner\n", "f.py")
    with pytest.raises(InputError, match="must end its function; code follows it"):
        strip_solutions("def top_p_filter(logits, p):\n    # >>> solution top_p_filter\n    x = 1\n"
                        "    # <<< solution\n    return x\n", "f.py")
    text, _ = strip_solutions("def top_p_filter(logits, *rest, p=1, **extra):\n    # >>> solution top_p_filter\n"
                              "    return logits\n    # <<< solution\n", "f.py")
    assert "return student_version(logits, *rest, p=p, **extra)" in text


def test_outside_a_git_checkout_the_copy_walks_the_folder_but_skips_runs_and_caches(tmp_path, monkeypatch):
    import exercises.student_copy as student_copy
    project = tmp_path / "project"
    for name in ("minigpt/model.py", ".ci/run", "runs/x/ckpt.pt", ".pytest_cache/v", "env/pyvenv.cfg",
                 "minigpt/__pycache__/model.pyc", "README.md"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x", encoding="utf-8")

    def no_git(*args, **kwargs):
        raise OSError("git: not found")

    monkeypatch.setattr(student_copy.subprocess, "run", no_git)
    assert student_copy.git_listing(project) is None
    assert sorted(map(str, student_copy.folder_files(project))) == [".ci/run", "README.md", "minigpt/model.py"]
    stubs = project / "exercises" / "student"  # there the stubs are checked in the folder itself
    stubs.mkdir(parents=True)
    for name in NAMES:
        (stubs / f"{name}.py").write_text(f"def {name}(*args):\n    raise NotImplementedError\n", encoding="utf-8")
    texts, edited = student_copy.student_files(project, in_git=False)
    assert len(texts) == len(NAMES) and edited == []
    (stubs / "bradley_terry_loss.py").write_text(SOLVED_BRADLEY_TERRY, encoding="utf-8")
    with pytest.raises(InputError, match=r"bradley_terry_loss.py in this folder: bradley_terry_loss is solved"):
        student_copy.student_files(project, in_git=False)


def test_in_a_git_checkout_the_copy_takes_tracked_files_but_not_untracked_ignored_or_deleted(tmp_path):
    from exercises.student_copy import git_listing

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for name, text in [(".gitignore", "runs/\n"), ("kept.py", "x"), ("gone.py", "x")]:
        (tmp_path / name).write_text(text, encoding="utf-8")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    (tmp_path / "gone.py").unlink()
    (tmp_path / "new_exercise.py").write_text("x", encoding="utf-8")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ckpt.pt").write_text("x", encoding="utf-8")
    tracked, untracked = git_listing(tmp_path)
    assert list(map(str, tracked)) == [".gitignore", "kept.py"] and list(map(str, untracked)) == ["new_exercise.py"]


SOLVED_BRADLEY_TERRY = """import torch.nn.functional as F


def bradley_terry_loss(chosen_rewards, rejected_rewards):
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
"""


@pytest.mark.skipif(IN_STUDENT_COPY, reason="already a student copy")
def test_the_copy_hands_out_the_committed_stubs_and_leaves_out_untracked_files(tmp_path, monkeypatch, capsys):
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    clone = tmp_path / "clone"  # the committed files only
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(clone)], check=True, capture_output=True)
    stub = Path("exercises", "student", "bradley_terry_loss.py")
    committed = (clone / stub).read_text(encoding="utf-8")
    (clone / stub).write_text(SOLVED_BRADLEY_TERRY, encoding="utf-8")  # an instructor tried the exercise
    (clone / "pairs.jsonl").write_text('{"prompt": "p"}\n', encoding="utf-8")  # and made some data
    monkeypatch.setattr(exercises.__main__, "PROJECT_ROOT", clone)  # the command copies the clone
    assert main(["student-copy", str(tmp_path / "course")]) == 0
    printed = capsys.readouterr()
    assert "wrote a student copy" in printed.out
    assert (tmp_path / "course" / stub).read_text(encoding="utf-8") == committed
    assert not (tmp_path / "course" / "pairs.jsonl").exists()
    assert "warning: left out 1 untracked file (the copy takes what git tracks): pairs.jsonl" in printed.err
    assert f"without this working tree's changes to {stub.as_posix()}" in printed.err

    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "solved"],
                   cwd=clone, check=True, capture_output=True)  # a solution committed is refused
    with pytest.raises(InputError, match=r"bradley_terry_loss.py in the last commit \(HEAD\): bradley_terry_loss "
                                         r"is solved, not a stub.*no copy was made"):
        make_student_copy(tmp_path / "course2", root=clone)
    assert not (tmp_path / "course2").exists()


def test_a_stub_is_a_docstring_and_raise_not_implemented_error():
    for name in NAMES:
        if untouched(name):  # the files handed out pass (a student may have written one since)
            check_stub(EXERCISES[name].student_file.read_text(encoding="utf-8"), name, f"{name}.py")
    check_stub('def f(x):\n    """Doc."""\n    raise NotImplementedError\n', "f", "f.py")
    for solved in ('def f(x):\n    """Doc."""\n    return x\n',
                   'def f(x):\n    y = x\n    raise NotImplementedError("part 2")\n',
                   'def f(x):\n    raise ValueError("x")\n'):
        with pytest.raises(InputError, match="f.py: f is solved, not a stub"):
            check_stub(solved, "f", "f.py")
    with pytest.raises(InputError, match="f.py: defines no function called f"):
        check_stub("def g(x):\n    raise NotImplementedError\n", "f", "f.py")


def test_a_stubs_not_implemented_error_names_its_exercise_in_process_and_in_printed_form():
    if not untouched("bradley_terry_loss"):
        pytest.skip("exercises/student/bradley_terry_loss.py has been edited")
    with pytest.raises(NotImplementedError) as raised:
        EXERCISES["bradley_terry_loss"].student_function()(torch.zeros(2), torch.zeros(2))
    assert unwritten_exercise(raised.value) == "bradley_terry_loss"
    printed = "".join(traceback.format_exception(raised.value))  # as a child process prints it
    quoted = AssertionError("the lesson failed:\n" + textwrap.indent(printed, "  "))  # as pytest shows it
    assert unwritten_exercise(quoted) == "bradley_terry_loss"
    another_error_after_it = (printed + "\nDuring handling of the above exception, another exception occurred:"
                              '\n\nTraceback (most recent call last):\n  File "x.py", line 1, in f\n'
                              "ZeroDivisionError: division by zero\n")
    assert unwritten_exercise(AssertionError(another_error_after_it)) is None
    assert unwritten_exercise(NotImplementedError("not from a student file")) is None


# --------------------------------------------------------------- bad input: one line, exit 2
def test_bad_input_to_the_exercises_command_is_one_line_and_exit_status_2(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    inside = PROJECT_ROOT / "runs" / "copy"
    expected = [  # (argv, the start of the one line)
        ("run -- -m nosuch.module".split(),
         "error: python -m exercises run: the following arguments are required: --student"),
        ("run --student causal_attention -- -m nosuch.module".split(), "error: -m nosuch.module: no such module"),
        ("run --student causal_attention -- -m minigpt".split(), "error: -m minigpt: a package with no __main__"),
        ("run --student causal_attention -- -m".split(), "error: -m needs a module name"),
        ("run --student causal_attention -- lessons/nosuch.py".split(), "error: lessons/nosuch.py: no such file"),
        ("run --student causal_attention".split(), "error: run needs a target after --"),
        ("run --student , -- -m gridworld".split(), "error: --student needs exercise names"),
        ("run --student attention -- -m gridworld".split(), "error: no exercise called 'attention'"),
        ("grade attention".split(), "error: no exercise called 'attention'"),
        ("grade".split(), "error: python -m exercises grade: the following arguments are required: NAME"),
        (["grade", "all", "--student-dir", str(tmp_path / "nosuch")], "error: --student-dir"),
        ("teach".split(), "error: python -m exercises: argument command: invalid choice: 'teach'"),
        ([], "error: python -m exercises: the following arguments are required: command"),
        ("list --verbose".split(), "error: python -m exercises: unrecognized arguments: --verbose"),
        ("student-copy".split(), "error: python -m exercises student-copy: the following arguments are required"),
        (["student-copy", str(a_file)], f"error: {a_file}: exists and is not an empty folder"),
        (["student-copy", str(inside)], f"error: {inside}: is inside the project"),
    ]
    for argv, start in expected:
        with pytest.raises(SystemExit) as exited:
            run_main(main, argv)
        printed = capsys.readouterr()
        assert exited.value.code == 2 and printed.out == "", argv
        assert printed.err.startswith(start) and len(printed.err.strip().splitlines()) == 1, (argv, printed.err)


def test_the_issues_command_is_one_line_in_a_real_process():
    result = cli("run", "--", "-m", "nosuch.module")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: python -m exercises run: the following arguments are required: --student "
        "(see python -m exercises run --help)"]


@pytest.mark.skipif(IN_STUDENT_COPY, reason="a student copy always runs the hand-written attention")
def test_runs_take_the_fused_kernel_unless_a_student_attention_is_swapped_in(tmp_path):
    """minigpt.train's default attention is sdpa; with a student's causal_attention in
    place it is manual, and a checkpoint trained with sdpa loads as manual, so the
    student's function is the one that runs (minigpt.swaps.attention_to_run)."""
    from minigpt.checkpoint import model_from_checkpoint, save_checkpoint, load_checkpoint
    from minigpt.model import GPT, GPTConfig, causal_attention
    from minigpt.tokenizer import ByteTokenizer
    from minigpt.train import TrainConfig

    assert TrainConfig().attention == "sdpa" and TrainConfig(attention="manual").attention == "manual"
    config = GPTConfig(vocab_size=ByteTokenizer().vocab_size, block_size=16, n_layer=1, n_head=2,
                       n_embd=8, attention="sdpa")
    save_checkpoint(str(tmp_path / "ckpt.pt"), GPT(config), 0, config, ByteTokenizer())
    calls = []

    def students_attention(q, k, v, allowed, dropout=None):
        calls.append(q.shape)
        return causal_attention(q, k, v, allowed, dropout)

    with swapped("causal_attention", students_attention):
        assert TrainConfig().attention == "manual" and TrainConfig(attention="sdpa").attention == "manual"
        model, _ = model_from_checkpoint(load_checkpoint(str(tmp_path / "ckpt.pt")))
        assert model.config.attention == "manual"
        model(torch.zeros(1, 5, dtype=torch.long))
    assert calls == [(1, 2, 5, 4)]  # the student's function ran, once per layer
    model, _ = model_from_checkpoint(load_checkpoint(str(tmp_path / "ckpt.pt")))
    assert model.config.attention == "sdpa"  # the switch put back: the fused kernel again
