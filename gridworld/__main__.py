"""python -m gridworld: solve the lecture's cat gridworld and show what the agent learned.

    python -m gridworld                                   # value iteration, default grid
    python -m gridworld --algorithm q-learning --episodes 300 --seed 1
    python -m gridworld --algorithm all --slippery 0.1    # every algorithm, a drunk cat
    python -m gridworld --layout my_map.txt --ascii       # your own map, letters only

Prints the grid, the values V(s), the policy as arrows, one episode a_t ~ π(·|s_t), and
the bandit at the start cell (π* = π_ref·exp(r/β)/Z, computed exactly). Writes one run
folder: config.json, metrics.jsonl, tables.npz, PNG figures (and a GIF), report.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from .env import ACTION_NAMES, DEFAULT_LAYOUT, MAX_CELLS, CatGridWorld, read_layout
from .learning import q_learning, reinforce, sarsa
from .planning import (bellman_residual, kl_objective, optimal_kl_policy, policy_evaluation_exact,
                       policy_iteration, reward_from_policy, soft_value_iteration, value_iteration)
from .policies import greedy_policy, rollout
from .render import (can_print, plot_bandit, plot_episode, plot_learning_curves, plot_values,
                     render_grid, render_policy, render_values, save_episode_gif)

PLANNERS = ("value-iteration", "policy-iteration", "soft-value-iteration")
LEARNERS = ("q-learning", "sarsa", "reinforce")
ALGORITHMS = PLANNERS + LEARNERS


class InputError(ValueError):
    """Bad input from the user, a flag or the layout file. main raises it; run_main prints
    it as one line, `error: ...`, and exits with status 2, never a traceback. (The twin of
    minigpt.errors.InputError and minigpt.cli.run_main: gridworld imports nothing from the
    rest of the project, DESIGN.md, so it keeps its own few lines.)"""


def run_main(main, argv=None):
    """Run main(argv); report an InputError as one line and exit with status 2."""
    try:
        return main(argv)
    except InputError as error:
        print("error: " + " ".join(str(error).splitlines()), file=sys.stderr)  # one line
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a refusal raises an InputError (one line) instead of printing the usage
    and exiting. argparse says "argument --gamma: ..."; we say "--gamma: ..."."""

    def error(self, message):
        if message.startswith("argument "):
            raise InputError(message.removeprefix("argument "))
        raise InputError(f"{message}: expected the flags that python -m gridworld --help lists")


def number(kind, low, high=math.inf, low_open=False, high_open=False):
    """An argparse type: the flag's text as kind (int or float), accepted only inside the
    interval from low to high, '[' or ']' where an end belongs to it, '(' or ')' where it
    does not. The refusal says what was expected and what came:

        --gamma: expected a number in [0, 1), got '1.5'
    """
    left = "(" if low_open else "["
    right = ")" if high_open or high == math.inf else "]"
    interval = f"{left}{low}, {'∞' if high == math.inf else high}{right}"   # e.g. [0, 1)
    what = "a whole number" if kind is int else "a number"

    def convert(text: str):
        try:
            x = kind(text)
        except ValueError:  # not a number at all
            x = None
        above_low = x is not None and (x > low if low_open else x >= low)
        below_high = x is not None and (x < high if high_open else x <= high)
        if not (above_low and below_high):  # nan is neither
            raise argparse.ArgumentTypeError(f"expected {what} in {interval}, got {text!r}")
        return x

    return convert


def one_of(names):
    """An argparse type: one of the names, or a refusal that lists them."""
    def convert(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(names)}; got {text!r}")
        return text
    return convert


def parse_args(argv=None) -> argparse.Namespace:
    """Every flag is checked here, before any work: a value out of its range is refused
    with one line that names the flag and says what was expected."""
    p = ArgumentParser(prog="python -m gridworld", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d = " (default: %(default)s)"
    p.add_argument("--algorithm", type=one_of(ALGORITHMS + ("all",)), default="value-iteration",
                   metavar="{" + ",".join(ALGORITHMS + ("all",)) + "}",
                   help="what solves the grid; 'all' runs each and compares them" + d)
    p.add_argument("--gamma", type=number(float, 0, 1, high_open=True), default=0.9,
                   help="discount factor γ in [0, 1)" + d)
    p.add_argument("--episodes", type=number(int, 1), default=1000,
                   help="episodes for the learners, at least 1" + d)
    p.add_argument("--alpha", type=number(float, 0, 1, low_open=True), default=0.1,
                   help="Q-learning/SARSA step size α in (0, 1]" + d)
    p.add_argument("--epsilon", type=number(float, 0, 1), default=0.1,
                   help="Q-learning/SARSA exploration ε in [0, 1]" + d)
    p.add_argument("--lr", type=number(float, 0, 10, low_open=True), default=0.1,
                   help="REINFORCE learning rate (Adam) in (0, 10]" + d)
    p.add_argument("--beta", type=number(float, 0.001, 1000), default=1.0,
                   help="β of the KL penalty (soft value iteration and the bandit), in "
                        "[0.001, 1000]" + d)
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0,
                   help="seed of the agent and the environment, in [0, 2^32 − 1]" + d)
    p.add_argument("--layout", default=None,
                   help="text map file in UTF-8, one character per cell: C cat, . empty, "
                        "B broom, T bathtub, M meat, # wall; at most "
                        f"{MAX_CELLS} cells (default: the lecture's 5x5 grid)")
    p.add_argument("--slippery", type=number(float, 0, 1), default=0.0,
                   help="drunk cat: probability p in [0, 1] that a move goes in another "
                        "direction" + d)
    p.add_argument("--max-steps", type=number(int, 1), default=100,
                   help="steps before truncation, at least 1" + d)
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/gridworld/<algorithm>-seed<seed>)")
    p.add_argument("--ascii", action="store_true", help="letters and ^v<> instead of emoji")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/GIF figures")
    p.add_argument("--progress", action="store_true", help="show a progress bar while learning")
    return p.parse_args(argv)


def load_layout(path) -> str:
    """The map's text: the lecture's grid, or the --layout file, checked (env.read_layout)."""
    if path is None:
        return DEFAULT_LAYOUT
    try:
        return read_layout(path)
    except ValueError as error:
        raise InputError(f"--layout {error}") from None


# What a gridworld run folder holds. Like every command of the project, the gridworld writes
# only into a folder of its own: its run.json says so (minigpt.ownership explains the
# convention; the gridworld stands alone, so it checks its folder here, in a few lines).
OWN_FILES = ("run.json", "config.json", "metrics.jsonl", "tables.npz", "report.md", "values_*.png",
             "episode_*.png", "learning_curves.png", "bandit.png", "episode.gif")
OWNER = {"kind": "gridworld", "command": "python -m gridworld"}


def run_json_kind(folder: Path) -> str | None:
    """The kind a folder's run.json names ("another tool's" for one not of this project)."""
    marker = folder / "run.json"
    if not marker.is_file():
        return None
    try:
        kind = json.loads(marker.read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    return kind if isinstance(kind, str) else "another tool's"


def refuse_others_folder(path: Path):
    """An InputError for a folder inside another command's run folder, or one holding
    another command's run or files the gridworld never writes."""
    for parent in path.resolve().parents:
        if run_json_kind(parent) is not None:
            raise InputError(f"--out {path}: lies inside {parent}, a run folder of "
                             f"{run_json_kind(parent)} (its run.json); choose a folder outside it")
    if not path.is_dir():
        return
    kind = run_json_kind(path)
    if kind not in (None, OWNER["kind"]):
        raise InputError(f"--out {path}: holds another command's run (run.json: {kind}); the "
                         "gridworld writes only its own run folders: choose another --out")
    stray = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir()
                   if (p.is_dir() and any(p.iterdir()))
                   or (p.is_file() and not any(fnmatch.fnmatchcase(p.name, own) for own in OWN_FILES)))
    if stray:
        raise InputError(f"--out {path}: holds files the gridworld did not write "
                         f"({', '.join(stray[:4])}); move them out, or choose another --out")


def make_out_dir(path) -> Path:
    """The run folder, made (with its parents) if it is not there yet; refused if it holds
    another command's run or files the gridworld does not write."""
    refuse_others_folder(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"--out {path}: cannot make the folder ({error.strerror}): expected "
                         "a folder you can write to") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"--out {path}: cannot write there: expected a folder you can write to")
    (path / "run.json").write_text(json.dumps(OWNER, indent=2) + "\n", encoding="utf-8")
    return path


def solve(name: str, env, model, args) -> dict:
    """Run one algorithm; return its policy π, the exact values V^π (soft values for soft
    value iteration), its table and learning result, and a note on how it went."""
    T, R = model
    out = {"table": None, "result": None}
    if name == "value-iteration":
        V, Q, sweeps = value_iteration(T, R, args.gamma)
        out.update(pi=greedy_policy(Q), V=V, table=Q, note=f"{sweeps} sweeps")
    elif name == "policy-iteration":
        pi, V, steps = policy_iteration(T, R, args.gamma)
        out.update(pi=pi, V=V, note=f"{steps} improvements")
    elif name == "soft-value-iteration":
        V, Q, pi = soft_value_iteration(T, R, args.gamma, args.beta)
        v_greedy = policy_evaluation_exact(T, R, greedy_policy(Q), args.gamma)[env.start_state]
        out.update(pi=pi, V=V, table=Q,
                   note=f"β = {args.beta}; V(s) shows V_soft(s) = β·log Z(s); π* is "
                        f"stochastic, its argmax has V(start) = {v_greedy:.4f}")
    else:
        learn = {"q-learning": q_learning, "sarsa": sarsa, "reinforce": reinforce}[name]
        kwargs = dict(lr=args.lr) if name == "reinforce" else dict(alpha=args.alpha,
                                                                  epsilon=args.epsilon)
        res = learn(env, episodes=args.episodes, gamma=args.gamma, seed=args.seed,
                    progress=args.progress, **kwargs)
        note = "greedy policy of the table"
        if name == "sarsa":
            note += " (SARSA values its own ε-greedy moves: it may keep off the bathtub)"
        out.update(pi=greedy_policy(res.table), V=None, table=res.table, result=res, note=note)
    V_pi = policy_evaluation_exact(T, R, out["pi"], args.gamma)  # exact V^π of the policy
    out["v_start_of_pi"] = float(V_pi[env.start_state])
    out["V"] = V_pi if out["V"] is None else out["V"]
    return out


def describe_episode(env, traj, gamma: float) -> str:
    lines = ["  t  s_t      a_t     r_{t+1}"]
    for t, (s, a, r) in enumerate(zip(traj.states, traj.actions, traj.rewards)):
        lines.append(f"{t:3d}  {str(env.cell(s)):8} {ACTION_NAMES[a]:7} {r:7.1f}")
    end = "terminated" if traj.terminated else "truncated"
    lines.append(f"  G_0 = {traj.ret(gamma):.4f} after {len(traj.actions)} steps ({end})")
    return "\n".join(lines)


def bandit_at_start(env, Q_star, args) -> tuple[str, np.ndarray, np.ndarray]:
    """The one-step version of the RLHF objective at the start cell: x = the start (the
    prompt), y = the first move (the answer), r(y) = Q*(start, y), π_ref uniform."""
    r, pi_ref = Q_star[env.start_state], np.full(env.n_actions, 1.0 / env.n_actions)
    pi_star, log_Z = optimal_kl_policy(r, pi_ref, args.beta)
    r_back = reward_from_policy(pi_star, pi_ref, args.beta, log_Z)
    lines = [f"Bandit at the start, β = {args.beta}: y = first move, r(y) = Q*(start, y), "
             "π_ref uniform",
             "  y       r(y)    π_ref   π*(y)    β·log(π*/π_ref) + β·log Z"]
    for y, name in enumerate(ACTION_NAMES):
        lines.append(f"  {name:6} {r[y]:7.3f}   {pi_ref[y]:.3f}   {pi_star[y]:.4f}   "
                     f"{r_back[y]:8.3f}")
    lines.append(f"  β·log Z = {args.beta * log_Z:.4f} = E_π*[r] − β·KL(π*‖π_ref) = "
                 f"{kl_objective(pi_star, r, pi_ref, args.beta):.4f}")
    return "\n".join(lines), r, pi_ref


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)            # every flag checked first ...
    layout = load_layout(args.layout)  # ... and the map ...
    out_dir = make_out_dir(Path(args.out or f"runs/gridworld/{args.algorithm}-seed{args.seed}"))
    env = CatGridWorld(layout, slippery=args.slippery, max_steps=args.max_steps)  # ... then work
    emoji = not args.ascii and can_print("🐱🧹🛁🥩⬜⬛↑↓←→")
    if not can_print("γπβ→×") and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # an ASCII terminal: '?' for γ, π, β
    model = env.matrices()

    print(f"== Cat gridworld {env.n_rows}×{env.n_cols}, γ = {args.gamma}, "
          f"slippery p = {args.slippery}, seed {args.seed} ==")
    print(render_grid(env, emoji=emoji))
    V_star, Q_star, sweeps = value_iteration(*model, args.gamma)
    v_star = float(V_star[env.start_state])
    print(f"V*(start) = {v_star:.4f} (value iteration, {sweeps} sweeps, Bellman residual "
          f"{bellman_residual(*model, V_star, args.gamma):.1e})")
    if layout == DEFAULT_LAYOUT and args.slippery == 0:
        print(f"  closed form: 8 moves, the meat's +100 discounted by γ^7: "
              f"100·{args.gamma}^7 = {100 * args.gamma ** 7:.4f}")

    names = ALGORITHMS if args.algorithm == "all" else (args.algorithm,)
    solved, summary, metrics = {}, [], []
    for name in names:
        sol = solved[name] = solve(name, env, model, args)
        optimal = abs(sol["v_start_of_pi"] - v_star) < 1e-6
        row = {"algorithm": name, "v_start": sol["v_start_of_pi"], "v_star": v_star,
               "optimal": optimal, "note": sol["note"]}
        if sol["result"] is not None:
            res = sol["result"]
            row["episodes_to_optimal"] = res.episodes_to_optimal(v_star)
            metrics += [{"algorithm": name, "episode": i + 1, "return": g, "greedy_value": v}
                        for i, (g, v) in enumerate(zip(res.returns, res.greedy_values))]
            n = row["episodes_to_optimal"]
            row["note"] += (f"; optimal from episode {n} on" if n else
                            f"; not optimal after {len(res.returns)} episodes")
        summary.append(row)
        traj = rollout(env, sol["pi"], seed=args.seed)
        sol["episode"] = traj
        print(f"\n== {name}: {row['note']} ==")
        print("V(s):\n" + render_values(env, sol["V"]))
        print("policy, argmax_a π(a|s):\n" + render_policy(env, sol["pi"], emoji=emoji))
        print(f"V^π(start) = {sol['v_start_of_pi']:.4f}  (V*(start) = {v_star:.4f}, "
              f"{'optimal' if optimal else 'not optimal'})")
        print(f"One episode, a_t ~ π(·|s_t), seed {args.seed}:\n"
              + describe_episode(env, traj, args.gamma))

    bandit_text, r, pi_ref = bandit_at_start(env, Q_star, args)
    print("\n" + bandit_text)
    if len(names) > 1:
        print("\n== Summary ==")
        for row in summary:
            print(f"  {row['algorithm']:21} V^π(start) = {row['v_start']:8.4f}  {row['note']}")

    files = write_run(out_dir, args, argv, layout, env, solved, summary, metrics, r, pi_ref,
                      v_star)
    print(f"\nWrote {out_dir}: {', '.join(files)}")
    return {"v_star": v_star, "summary": summary, "out": str(out_dir), "files": files}


def write_run(out_dir, args, argv, layout, env, solved, summary, metrics, r, pi_ref, v_star):
    """config.json, metrics.jsonl, tables.npz, figures and report.md in one folder."""
    (out_dir / "config.json").write_text(json.dumps({**vars(args), "layout_text": layout},
                                                    indent=2))
    with open(out_dir / "metrics.jsonl", "w") as f:
        for line in metrics + summary:
            f.write(json.dumps(line) + "\n")
    tables = {f"{k}_{name.replace('-', '_')}": v for name, sol in solved.items()
              for k, v in (("V", sol["V"]), ("pi", sol["pi"]), ("table", sol["table"]))
              if v is not None}
    np.savez(out_dir / "tables.npz", **tables)
    files = ["config.json", "metrics.jsonl", "tables.npz"]
    if not args.no_figures:
        for name, sol in solved.items():
            files.append(plot_values(env, sol["V"], sol["pi"], out_dir / f"values_{name}.png",
                                     title=f"{name}: V(s) and argmax π(a|s)").name)
            files.append(plot_episode(env, sol["episode"].states, out_dir / f"episode_{name}.png",
                                      title=f"{name}: one episode, a_t ~ π(·|s_t), seed "
                                            f"{args.seed}").name)
        learned = {n: s["result"] for n, s in solved.items() if s["result"] is not None}
        if learned:
            files.append(plot_learning_curves(learned, out_dir / "learning_curves.png",
                                              v_star=v_star).name)
        first = next(iter(solved.values()))
        gif = save_episode_gif(env, first["episode"].states, out_dir / "episode.gif")
        files += [gif.name] if gif else []
        files.append(plot_bandit(r, pi_ref, out_dir / "bandit.png", mark_beta=args.beta).name)
    report = ["# Cat gridworld run", "", f"`python -m gridworld {' '.join(argv)}`", "",
              f"V*(start) = {v_star:.4f} (value iteration)", "",
              "| algorithm | V^π(start) | optimal | note |", "| --- | --- | --- | --- |"]
    report += [f"| {s['algorithm']} | {s['v_start']:.4f} | {s['optimal']} | {s['note']} |"
               for s in summary]
    report += ["", "Files: " + ", ".join(files + ["report.md"])]
    (out_dir / "report.md").write_text("\n".join(report) + "\n")
    return files + ["report.md"]


if __name__ == "__main__":
    run_main(main)
