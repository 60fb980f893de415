"""Seeing the gridworld: text for the terminal, PNG (and GIF) figures for files.

Terminal: the grid with emoji (🐱 gato, 🧹 escoba, 🛁 bañera, 🥩 carne), or with the text
map's letters (C, B, T, M) where the terminal cannot print emoji; values V(s); the greedy
policy as arrows.

    >>> env = CatGridWorld()
    >>> print(render_grid(env, emoji=False))
    C B . . .
    . . . . .
    . . . . .
    . . T . .
    . . . . M

Figures use matplotlib's object API (`Figure`, never pyplot), so no window ever opens
and the global backend is left alone: every figure is drawn by Agg into a file.
"""

from __future__ import annotations

import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .env import ACTION_NAMES, BATHTUB, BROOM, CAT, EMPTY, MEAT, MOVES, WALL
from .planning import optimal_kl_policy

EMOJI = {CAT: "🐱", BROOM: "🧹", BATHTUB: "🛁", MEAT: "🥩", EMPTY: "⬜", WALL: "⬛"}
ARROWS = "↑↓←→"   # in the order of ACTION_NAMES: up, down, left, right
ASCII_ARROWS = "^v<>"
LABELS = {BROOM: "escoba −1", BATHTUB: "bañera −10", MEAT: "carne +100"}
COLORS = {EMPTY: "#ffffff", CAT: "#ffffff", BROOM: "#e8c27a", BATHTUB: "#8fc7ef",
          MEAT: "#f19c8f", WALL: "#555555"}


def can_print(text: str, stream=None) -> bool:
    """Whether the stream's encoding can write text (a terminal set to ASCII cannot)."""
    encoding = getattr(stream or sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _cells(env, emoji: bool, cat_state: int | None) -> list[list[str]]:
    """The map's symbols, the cat drawn at cat_state (its start cell is an empty cell)."""
    grid = [[EMPTY if ch == CAT else ch for ch in row] for row in env.rows]
    if cat_state is not None:
        row, col = env.cell(cat_state)
        grid[row][col] = CAT
    return [[EMOJI[ch] if emoji else ch for ch in row] for row in grid]


def render_grid(env, cat_state: int | None = None, emoji: bool | None = None) -> str:
    """The grid with the cat at cat_state (default: its start)."""
    emoji = can_print("".join(EMOJI.values())) if emoji is None else emoji
    cat_state = env.start_state if cat_state is None else cat_state
    sep = "" if emoji else " "  # an emoji is two columns wide already
    return "\n".join(sep.join(row) for row in _cells(env, emoji, cat_state))


def render_values(env, V: np.ndarray) -> str:
    """V(s) in a grid; cells where the cat never stands show their letter instead."""
    lines = []
    for row in range(env.n_rows):
        cells = []
        for col in range(env.n_cols):
            s = env.state(row, col)
            cells.append(f"{env.symbol(s):>7}" if env.is_absorbing(s) else f"{V[s]:7.2f}")
        lines.append(" ".join(cells))
    return "\n".join(lines)


def render_policy(env, pi: np.ndarray, emoji: bool | None = None) -> str:
    """The most likely action argmax_a π(a|s) of every cell, as an arrow."""
    emoji = can_print("".join(EMOJI.values()) + ARROWS) if emoji is None else emoji
    arrows = ARROWS if emoji else ASCII_ARROWS
    symbols = _cells(env, emoji, cat_state=None)
    lines = []
    for row in range(env.n_rows):
        cells = []
        for col in range(env.n_cols):
            s = env.state(row, col)
            arrow = arrows[int(np.argmax(pi[s]))] + (" " if emoji else "")
            cells.append(symbols[row][col] if env.is_absorbing(s) else arrow)
        lines.append(" ".join(cells))
    return "\n".join(lines)


# -- figures -----------------------------------------------------------------------

def _draw_grid(ax, env, cat_state: int | None = None, labels: bool = True):
    """Coloured cells, their names, and the cat as an orange disc."""
    for row in range(env.n_rows):
        for col in range(env.n_cols):
            ch = env.rows[row][col]
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor=COLORS[ch],
                                   edgecolor="black", lw=0.5))
            if labels and ch in LABELS:
                ax.text(col, row - 0.35, LABELS[ch], ha="center", va="center", fontsize=6,
                        zorder=4)
    if cat_state is not None:
        row, col = env.cell(cat_state)
        ax.scatter([col], [row], s=300, c="#f5a623", edgecolors="black", zorder=3)
        ax.text(col, row, "C", ha="center", va="center", fontsize=9, zorder=4)
    ax.set_xlim(-0.5, env.n_cols - 0.5)
    ax.set_ylim(env.n_rows - 0.5, -0.5)  # row 0 on top
    ax.set_aspect("equal")
    ax.set_xticks(range(env.n_cols))
    ax.set_yticks(range(env.n_rows))


def plot_values(env, V: np.ndarray, pi: np.ndarray, path, title: str = "V(s) and π(s)"):
    """Heatmap of V(s) with an arrow for argmax_a π(a|s) in each cell the cat can stand on."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    _draw_grid(ax, env)
    absorbing = np.array([env.is_absorbing(s) for s in range(env.n_states)])
    grid = np.ma.masked_array(V, absorbing).reshape(env.n_rows, env.n_cols)
    image = ax.imshow(grid, cmap="viridis", alpha=0.85, zorder=2)
    fig.colorbar(image, ax=ax, label="V(s)")
    for s in np.flatnonzero(~absorbing):
        row, col = env.cell(s)
        d_row, d_col = MOVES[int(np.argmax(pi[s]))]
        ax.annotate("", xy=(col + 0.3 * d_col, row + 0.3 * d_row), xytext=(col, row),
                    arrowprops=dict(arrowstyle="->", color="white", lw=1.5), zorder=3)
        ax.text(col, row + 0.35, f"{V[s]:.1f}", ha="center", va="center", fontsize=7,
                color="white", zorder=3)
    ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def moving_average(x, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (of fewer at the start)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=float))])  # c[i] = x[0] + ... + x[i-1]
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def plot_learning_curves(results: dict, path, v_star: float | None = None, window: int = 20):
    """Left: the return G_0 of each episode (moving average). Right: the exact value
    V^π(start) of the greedy policy after each episode. results: name → LearningResult."""
    fig = Figure(figsize=(10, 4))
    left, right = fig.subplots(1, 2)
    for name, res in results.items():
        left.plot(moving_average(res.returns, window), label=name)
        right.plot(res.greedy_values, label=name)
    for ax in (left, right):
        if v_star is not None:
            ax.axhline(v_star, color="black", ls="--", lw=1, label="V*(start)")
        ax.set_xlabel("episode")
        ax.legend()
    left.set_ylabel(f"return G_0 (moving average of {window})")
    right.set_ylabel("V^π(start) of the greedy policy")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_episode(env, states, path, max_frames: int = 12):
    """An episode as a filmstrip: one small grid per time step (the first max_frames)."""
    frames = list(states)[:max_frames]
    fig = Figure(figsize=(2 * len(frames), 2.3))
    axes = np.atleast_1d(fig.subplots(1, len(frames)))
    for t, (ax, s) in enumerate(zip(axes, frames)):
        _draw_grid(ax, env, cat_state=s, labels=False)
        ax.set_title(f"t = {t}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def save_episode_gif(env, states, path, fps: int = 3):
    """The episode as an animated GIF, with matplotlib's PillowWriter; returns None
    (and writes nothing) when pillow is not installed."""
    try:
        import PIL  # noqa: F401  (matplotlib depends on pillow, so normally present)
    except ImportError:
        return None
    from matplotlib.animation import FuncAnimation, PillowWriter
    fig = Figure(figsize=(3, 3))
    FigureCanvasAgg(fig)  # the Agg canvas the writer grabs frames from
    ax = fig.subplots()

    def draw(t):
        ax.clear()
        _draw_grid(ax, env, cat_state=states[t])
        ax.set_title(f"t = {t}")

    FuncAnimation(fig, draw, frames=len(states)).save(path, writer=PillowWriter(fps=fps))
    return path


def plot_bandit(r: np.ndarray, pi_ref: np.ndarray, path, betas=None, names=ACTION_NAMES,
                mark_beta: float | None = None):
    """π*(y) = π_ref(y)·exp(r(y)/β)/Z against β: small β → all mass on argmax r (greedy),
    large β → π_ref (the KL term wins). mark_beta draws a vertical line at one β."""
    betas = np.logspace(-1, 3, 200) if betas is None else np.asarray(betas)
    pi_star = np.array([optimal_kl_policy(r, pi_ref, b)[0] for b in betas])  # (B, Y)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for y, name in enumerate(names):
        line, = ax.plot(betas, pi_star[:, y], label=f"π*({name})  r = {r[y]:.2f}")
        ax.axhline(pi_ref[y], color=line.get_color(), ls=":", lw=1)
    if mark_beta is not None:
        ax.axvline(mark_beta, color="gray", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("β")
    ax.set_ylabel("π*(y)")
    ax.set_title("π*(y) ∝ π_ref(y)·exp(r(y)/β)   (dotted: π_ref)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
