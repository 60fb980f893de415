"""Text rendering, figures and `python -m gridworld`."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gridworld import (CatGridWorld, greedy_policy, plot_bandit, plot_episode,
                       plot_learning_curves, plot_values, q_learning, render_grid, render_policy,
                       render_values, rollout, save_episode_gif, value_iteration)
from gridworld.__main__ import main

GAMMA = 0.9


@pytest.fixture(scope="module")
def solved():
    env = CatGridWorld()
    V, Q, _ = value_iteration(*env.matrices(), GAMMA)
    return env, V, greedy_policy(Q)


def test_grid_as_letters_and_emoji():
    env = CatGridWorld()
    assert render_grid(env, emoji=False) == "C B . . .\n. . . . .\n. . . . .\n. . T . .\n. . . . M"
    lines = render_grid(env, emoji=True).splitlines()
    assert lines[0].startswith("🐱🧹") and lines[3][2] == "🛁" and lines[4][4] == "🥩"
    moved = render_grid(env, cat_state=env.state(2, 3), emoji=False).splitlines()
    assert moved[0] == ". B . . ." and moved[2] == ". . . C ."


def test_values_and_policy_text(solved):
    env, V, pi = solved
    values = render_values(env, V).splitlines()
    assert values[0].split()[0] == "47.83" and values[3].split()[2] == "T"
    policy = render_policy(env, pi, emoji=False).splitlines()
    # From the start, down is strictly best (right is the broom); the meat ends the map.
    assert policy[0].split()[0] == "v"
    assert policy[4].split() == [">", ">", ">", ">", "M"]
    assert policy[3].split()[2] == "T"
    assert render_policy(env, pi, emoji=True).splitlines()[0].startswith("↓")


def test_figures_are_written(tmp_path, solved):
    env, V, pi = solved
    res = q_learning(env, episodes=20, seed=0, progress=False)
    states = rollout(env, pi, seed=0).states
    paths = [plot_values(env, V, pi, tmp_path / "v.png"),
             plot_learning_curves({"q-learning": res}, tmp_path / "lc.png", v_star=V[0]),
             plot_episode(env, states, tmp_path / "ep.png"),
             plot_bandit(np.array([1.0, 2.0, 0.0, -1.0]), np.full(4, 0.25), tmp_path / "b.png")]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gif = save_episode_gif(env, states, tmp_path / "ep.gif")
    if gif is not None:   # pillow present
        assert gif.read_bytes()[:4] == b"GIF8"


@pytest.mark.parametrize("layout", ["C#\nBM", "C" + "." * 10 + "#\n" + ("." * 12 + "\n") * 10
                                    + "B" * 6 + "T" * 5 + "M"])
def test_figures_of_other_maps(tmp_path, layout):
    """A small map (cells named in words) and a 12 × 12 one (cells get letters), walls too."""
    env = CatGridWorld(layout)
    V, Q, _ = value_iteration(*env.matrices(), GAMMA)
    states = rollout(env, greedy_policy(Q), seed=0).states
    for path in (plot_values(env, V, greedy_policy(Q), tmp_path / "v.png"),
                 plot_episode(env, states, tmp_path / "ep.png", title="an episode")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bandit_figure_takes_in_a_small_marked_beta(tmp_path):
    r, pi_ref = np.array([1.0, 2.0, 1.0, -1.0]), np.array([0.1, 0.2, 0.1, 0.6])
    path = plot_bandit(r, pi_ref, tmp_path / "b.png", mark_beta=0.001)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_solves_the_default_grid(tmp_path, capsys):
    out = main(["--out", str(tmp_path), "--ascii", "--no-figures"])
    text = capsys.readouterr().out
    assert out["v_star"] == pytest.approx(100 * GAMMA ** 7, abs=1e-9)
    assert "V*(start) = 47.8297" in text and "C B . . ." in text
    assert "G_0 = 47.8297 after 8 steps (terminated)" in text   # the episode shown
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["gamma"] == GAMMA and config["algorithm"] == "value-iteration"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["optimal"] is True
    assert (tmp_path / "report.md").exists() and (tmp_path / "tables.npz").exists()


def test_cli_learner_layout_slippery_and_figures(tmp_path, capsys):
    layout = tmp_path / "map.txt"
    layout.write_text("C.B\n..M\n")
    out = main(["--algorithm", "q-learning", "--episodes", "30", "--layout", str(layout),
                "--slippery", "0.1", "--seed", "3", "--out", str(tmp_path / "run")])
    capsys.readouterr()
    files = set(out["files"])
    assert {"values_q-learning.png", "learning_curves.png", "bandit.png"} <= files
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert sum(json.loads(r).get("episode") is not None for r in rows) == 30


def test_cli_help_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "gridworld", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("--algorithm", "--gamma", "--episodes", "--beta", "--seed", "--layout",
                 "--slippery", "--out"):
        assert flag in done.stdout
