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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from .env import ACTION_NAMES, BATHTUB, BROOM, CAT, EMPTY, MEAT, MOVES, WALL
from .planning import optimal_kl_policy

EMOJI = {CAT: "🐱", BROOM: "🧹", BATHTUB: "🛁", MEAT: "🥩", EMPTY: "⬜", WALL: "⬛"}
ARROWS = "↑↓←→"   # in the order of ACTION_NAMES: up, down, left, right
ASCII_ARROWS = "^v<>"
LABELS = {BROOM: ("escoba", "broom", "−1"), BATHTUB: ("bañera", "bathtub", "−10"),
          MEAT: ("carne", "meat", "+100"), WALL: ("pared", "wall", "")}  # (name, English, reward)
COLORS = {EMPTY: "#ffffff", CAT: "#ffffff", BROOM: "#e8c27a", BATHTUB: "#8fc7ef",
          MEAT: "#f19c8f", WALL: "#555555"}
START_COLOR, CAT_COLOR = "#d62728", "#f5a623"   # the start cell's outline, the cat's disc


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
#
# A grid figure is laid out from one number, the side of a cell in inches: the grid's
# axes get exactly n_cols·cell × n_rows·cell inches, so a cell is 72·cell points and every
# text size is a fraction of it. Labels stay readable on a 1 × 3 map and on a 20 × 20
# one; cells under 60 points get letters (B, T, M), which the legend explains.

def _cell_inches(env, grid_inches: float, smallest: float, largest: float) -> float:
    """The side of a cell: the grid's longer side takes grid_inches, kept in [smallest, largest]."""
    return float(np.clip(grid_inches / max(env.n_rows, env.n_cols), smallest, largest))


def _grid_axes(fig, env, cell: float, left: float, bottom: float):
    """Axes of exactly n_cols·cell × n_rows·cell inches, at (left, bottom) inches in fig."""
    width, height = fig.get_size_inches()
    return fig.add_axes((left / width, bottom / height,
                         env.n_cols * cell / width, env.n_rows * cell / height))


def _draw_grid(ax, env, cell_pt: float, cat_state: int | None = None, ticks: bool = True):
    """Coloured cells and their labels, the start cell outlined in red, the cat as an
    orange disc. cell_pt: the side of a cell in points. The broom's label sits at the top
    of its cell, where the cat standing on it does not hide it."""
    named = cell_pt >= 60   # room for "bañera −10"; smaller cells get the map's letter
    for row in range(env.n_rows):
        for col in range(env.n_cols):
            ch = env.rows[row][col]
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor=COLORS[ch],
                                   edgecolor="black", lw=0.5, zorder=1))
            if ch == BROOM:
                name, _, reward = LABELS[ch]
                ax.text(col, row - (0.32 if named else 0.36), f"{name} {reward}" if named else ch,
                        ha="center", va="center", fontsize=(0.14 if named else 0.22) * cell_pt,
                        zorder=6,
                        bbox=dict(facecolor=COLORS[BROOM], edgecolor="none", pad=0.5))
            elif ch in (BATHTUB, MEAT):
                name, _, reward = LABELS[ch]
                ax.text(col, row, f"{name}\n{reward}" if named else ch, ha="center",
                        va="center", fontsize=(0.17 if named else 0.4) * cell_pt, zorder=6)
    row, col = env.cell(env.start_state)
    ax.add_patch(Rectangle((col - 0.45, row - 0.45), 0.9, 0.9, fill=False,
                           edgecolor=START_COLOR, lw=0.06 * cell_pt, zorder=5))
    if named:
        ax.text(col, row - 0.32, "start", ha="center", va="center", color=START_COLOR,
                fontsize=0.14 * cell_pt, fontweight="bold", zorder=6,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
    if cat_state is not None:
        row, col = env.cell(cat_state)
        ax.scatter([col], [row], s=(0.5 * cell_pt) ** 2, c=CAT_COLOR, edgecolors="black",
                   zorder=7)
        ax.text(col, row, CAT, ha="center", va="center", fontsize=0.3 * cell_pt, zorder=8)
    ax.set_xlim(-0.5, env.n_cols - 0.5)
    ax.set_ylim(env.n_rows - 0.5, -0.5)  # row 0 on top
    ax.set_aspect("equal")
    if ticks:
        ax.set_xticks(range(env.n_cols))
        ax.set_yticks(range(env.n_rows))
        ax.set_xlabel("col")
        ax.set_ylabel("row")
    else:
        ax.set_xticks([])
        ax.set_yticks([])


def grid_legend(env, cat: bool = False) -> list:
    """Legend entries: the symbols on this map, the start cell and, if drawn, the cat."""
    handles = []
    for ch in (BROOM, BATHTUB, MEAT, WALL):
        if any(ch in row for row in env.rows):
            name, english, reward = LABELS[ch]
            handles.append(Patch(facecolor=COLORS[ch], edgecolor="black", lw=0.5,
                                 label=f"{ch}  {name} ({english}) {reward}".rstrip()))
    handles.append(Patch(facecolor="none", edgecolor=START_COLOR, lw=2,
                         label=f"start ({CAT} in the map)"))
    if cat:
        handles.append(Line2D([], [], ls="none", marker="o", markersize=10, label="the cat",
                              markerfacecolor=CAT_COLOR, markeredgecolor="black"))
    return handles


def _ink_on(rgba) -> str:
    """Black or white, whichever reads better on a background colour (by its luminance)."""
    red, green, blue = rgba[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def plot_values(env, V: np.ndarray, pi: np.ndarray, path, title: str = "V(s) and π(s)"):
    """Heatmap of V(s): in each cell the cat can stand on, an arrow for argmax_a π(a|s)
    and the value; the start cell outlined; a legend for the cells."""
    cell = _cell_inches(env, 5.5, 0.45, 1.1)           # 1.1 inch for the lecture's 5 × 5
    cell_pt, grid_w, grid_h = 72 * cell, env.n_cols * cell, env.n_rows * cell
    fig = Figure(figsize=(grid_w + 1.0, grid_h))      # 1 inch on the right: the colour bar
    ax = _grid_axes(fig, env, cell, left=0, bottom=0)
    color_bar = fig.add_axes(((grid_w + 0.25) / (grid_w + 1.0), 0, 0.2 / (grid_w + 1.0), 1))
    _draw_grid(ax, env, cell_pt)
    absorbing = np.array([env.is_absorbing(s) for s in range(env.n_states)])
    grid = np.ma.masked_array(V, absorbing).reshape(env.n_rows, env.n_cols)
    image = ax.imshow(grid, cmap="viridis", alpha=0.85, zorder=2)
    fig.colorbar(image, cax=color_bar, label="V(s)")
    for s in np.flatnonzero(~absorbing):
        row, col = env.cell(s)
        ink = _ink_on(image.cmap(image.norm(V[s])))
        d_row, d_col = MOVES[int(np.argmax(pi[s]))]
        ax.annotate("", xy=(col + 0.18 * d_col, row + 0.18 * d_row),
                    xytext=(col - 0.18 * d_col, row - 0.18 * d_row), zorder=3,
                    arrowprops=dict(arrowstyle="-|>", color=ink, lw=0.03 * cell_pt,
                                    mutation_scale=0.25 * cell_pt))
        ax.text(col, row + 0.32, f"{V[s]:.1f}", ha="center", va="center",
                fontsize=0.17 * cell_pt, color=ink, zorder=3)
    handles = grid_legend(env)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.6 / grid_h),
              ncol=min(len(handles), 3), fontsize=9, frameon=False)
    ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


# Several lines in one plot: each its own dash and marker, each a little thinner than
# the one before and drawn above it, so lines that lie on top of each other (two
# actions with the same reward, two learners that both find V*) all stay visible.
LINE_STYLES = ("-", "--", "-.", (0, (4, 1, 1, 1, 1, 1)))   # solid, dashed, dash-dot, dash-dot-dot
MARKERS = ("o", "s", "^", "D")


def _distinct(i: int, n_points: int) -> dict:
    """Plot keywords for line i of several, with markers at staggered points."""
    every = max(n_points // 8, 1)
    return dict(ls=LINE_STYLES[i % 4], marker=MARKERS[i % 4], markersize=6,
                lw=max(3.0 - 0.6 * i, 1.0), zorder=3 + i,
                markevery=(i * every // 4 % every, every))


def moving_average(x, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (of fewer at the start)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=float))])  # c[i] = x[0] + ... + x[i-1]
    i = np.arange(1, len(x) + 1)
    lo = np.maximum(i - window, 0)
    return (c[i] - c[lo]) / (i - lo)


def plot_learning_curves(results: dict, path, v_star: float | None = None, window: int = 20):
    """Left: the return G_0 of each episode (moving average). Right: the exact value
    V^π(start) of the greedy policy after each episode. results: name → LearningResult."""
    fig = Figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    for i, (name, res) in enumerate(results.items()):
        episodes = np.arange(1, len(res.returns) + 1)
        left.plot(episodes, moving_average(res.returns, window), label=name,
                  **_distinct(i, len(episodes)))
        right.plot(episodes, res.greedy_values, label=name, **_distinct(i, len(episodes)))
    for ax in (left, right):
        if v_star is not None:
            ax.axhline(v_star, color="black", ls=":", lw=1.2, label="V*(start)", zorder=10)
        ax.set_xlabel("episode")
        ax.legend(loc="best", fontsize=9)
    left.set_title("What the agent got while learning")
    left.set_ylabel(f"return G_0 (moving average of {window})")
    right.set_title("What its greedy policy is worth")
    right.set_ylabel("V^π(start) of the greedy policy")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def plot_episode(env, states, path, max_frames: int = 12,
                 title: str = "One episode, a_t ~ π(·|s_t)"):
    """An episode as a filmstrip: one small grid per time step (the first max_frames), up
    to six to a row, the cat as an orange disc; a legend for the cells below."""
    frames = list(states)[:max_frames]
    if len(states) > max_frames:
        title += f"  (the first {max_frames} of {len(states)} states)"
    cell = _cell_inches(env, 2.4, 0.2, 0.48)
    grid_w, grid_h = env.n_cols * cell, env.n_rows * cell
    gap_x, gap_y = 0.25, 0.45                          # inches; room for "t = ..."
    per_row = max(1, min(len(frames), 6, int(16 / (grid_w + gap_x))))  # at most 16 inches wide
    n_strips = -(-len(frames) // per_row)              # ceil(len(frames) / per_row)
    fig = Figure(figsize=(per_row * (grid_w + gap_x), n_strips * (grid_h + gap_y)))
    for t, s in enumerate(frames):
        strip, place = divmod(t, per_row)
        ax = _grid_axes(fig, env, cell, left=place * (grid_w + gap_x),
                        bottom=(n_strips - 1 - strip) * (grid_h + gap_y))
        _draw_grid(ax, env, 72 * cell, cat_state=s, ticks=False)
        ax.set_title(f"t = {t}", fontsize=10)
    fig.suptitle(title, y=1.0, va="bottom")
    handles = grid_legend(env, cat=True)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), fontsize=9,
               ncol=min(len(handles), 3), frameon=False)
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
    cell = _cell_inches(env, 3.0, 0.2, 0.6)
    grid_w, grid_h = env.n_cols * cell, env.n_rows * cell
    fig = Figure(figsize=(max(grid_w, 3.0) + 0.4, grid_h + 1.25))  # title above, legend below
    FigureCanvasAgg(fig)  # the Agg canvas the writer grabs frames from
    ax = _grid_axes(fig, env, cell, left=(max(grid_w, 3.0) + 0.4 - grid_w) / 2, bottom=0.8)
    fig.legend(handles=grid_legend(env, cat=True), loc="lower center", ncol=2, fontsize=7,
               frameon=False)

    def draw(t):
        ax.clear()
        _draw_grid(ax, env, 72 * cell, cat_state=states[t], ticks=False)
        ax.set_title(f"t = {t}")

    FuncAnimation(fig, draw, frames=len(states)).save(path, writer=PillowWriter(fps=fps))
    return path


def plot_bandit(r: np.ndarray, pi_ref: np.ndarray, path, betas=None, names=ACTION_NAMES,
                mark_beta: float | None = None):
    """π*(y) = π_ref(y)·exp(r(y)/β)/Z against β: small β → all mass on argmax r (greedy),
    large β → π_ref (the KL term wins). mark_beta draws a vertical line at one β. Answers
    with equal rewards have equal curves: the line styles keep both visible."""
    if betas is None:       # 0.1 to 1000, widened to take in mark_beta
        low, high = 0.1, 1000.0
        if mark_beta is not None:
            low, high = min(low, mark_beta / 3), max(high, mark_beta * 3)
        betas = np.logspace(np.log10(low), np.log10(high), 200)
    betas = np.asarray(betas)
    pi_star = np.array([optimal_kl_policy(r, pi_ref, b)[0] for b in betas])  # (B, Y)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    for y, name in enumerate(names):
        ax.plot(betas, pi_star[:, y], label=f"π*({name}),  r = {r[y]:.2f}",
                **_distinct(y, len(betas)))
    # π_ref: one dotted line for each of its values, named by the answers that share it
    for value in np.unique(pi_ref):
        share = [name for name, p in zip(names, pi_ref) if p == value]
        who = "every y" if len(share) == len(names) else ", ".join(share)
        ax.axhline(value, color="gray", ls=":", lw=1.5, zorder=2)
        ax.annotate(f"π_ref = {value:.2f}: {who}", xy=(0.01, value), va="bottom", fontsize=9,
                    xycoords=("axes fraction", "data"), xytext=(0, 3),
                    textcoords="offset points", color="dimgray")
    ax.plot([], [], color="gray", ls=":", lw=1.5, label="π_ref(y), dotted")
    if mark_beta is not None:
        ax.axvline(mark_beta, color="gray", lw=1, label=f"β = {mark_beta:g}")
    ax.set_xscale("log")
    ax.set_xlabel("β (log scale)")
    ax.set_ylabel("π*(y)")
    ax.set_title("π*(y) = π_ref(y)·exp(r(y)/β) / Z, against β")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=9)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
