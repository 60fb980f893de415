"""The lecture's cat gridworld ("Configuración de RL"), with a Gymnasium-style contract.

    Agente (agent):      the cat
    Estado (state):      the cat's cell (row, col); row 0 is the top row
    Acción (action):     up, down, left, right
    Recompensa (reward): 0 onto an empty cell, −1 onto the broom, −10 onto the bathtub
                         (the cat faints: the episode ends), +100 onto the meat (the
                         episode ends); a move into the wall leaves the cat in place, 0.

Usage:

    >>> env = CatGridWorld()
    >>> s, info = env.reset(seed=0)
    >>> s, r, terminated, truncated, info = env.step(DOWN)
    >>> env.cell(s), r
    ((1, 0), 0.0)

States are integers s = row · n_cols + col, as in Gymnasium's toy-text environments, so
that tables such as V[s], Q[s, a] and π(a|s) = pi[s, a] are plain arrays; `env.cell(s)`
turns one back into (row, col).

The bathtub, and dynamic programming. The lecture says the fainted cat "is put back at
the start". We read that as: the episode ends (terminated=True) and the next episode
starts where every episode starts. So `step` returns the start state together with
terminated=True, and the transition model P marks that transition as terminal: the −10 is
the last reward of the episode and nothing after it counts (its continuation value is 0).
The other reading, "the cat keeps going from the start in the same episode", would make a
bath merely a costly teleport; then the bathtub would not end anything, and the lecture
says it does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
ACTION_NAMES = ("up", "down", "left", "right")
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (Δrow, Δcol) of each action

# One character per cell in a text map.
CAT, EMPTY, BROOM, BATHTUB, MEAT, WALL = "C", ".", "B", "T", "M", "#"
SYMBOLS = {CAT: "cat (gato), the start", EMPTY: "empty cell", BROOM: "broom (escoba)",
           BATHTUB: "bathtub (bañera)", MEAT: "meat (carne)", WALL: "wall (pared)"}
REWARDS = {EMPTY: 0.0, CAT: 0.0, BROOM: -1.0, BATHTUB: -10.0, MEAT: 100.0}
TERMINAL = (BATHTUB, MEAT)  # moving onto these ends the episode
EVENTS = {WALL: "wall", BROOM: "broom", BATHTUB: "bathtub", MEAT: "meat"}  # info["event"]

# The lecture's 5 × 5 grid: cat (0,0), broom (0,1), bathtub (3,2), meat (4,4).
DEFAULT_LAYOUT = """\
CB...
.....
.....
..T..
....M
"""


MAX_CELLS = 400  # 20 × 20: the transition model T is a dense (S, A, S) array


def parse_layout(text: str) -> list[str]:
    """Check a text map and return its rows. Rules: known symbols only (SYMBOLS), rows of
    equal length, at most MAX_CELLS cells, exactly one cat, and some meat the cat can reach
    without crossing a bathtub or a wall.

    Blank lines around the map and spaces or tabs around each row are ignored. Every problem
    raises a ValueError that says where, as an editor counts (line and column from 1) and
    as the grid counts (cell (row, col) from 0), and what was expected:

        >>> parse_layout("CX.\\n..M")
        ValueError: line 1, column 2 (cell (0, 1)): unknown symbol 'X'; expected one of ...
    """
    lines = text.split("\n")
    # (line number, column of the first cell, the cells), for the lines that hold the map
    numbered = [(n + 1, len(line) - len(line.lstrip()), line.strip())
                for n, line in enumerate(lines)]
    while numbered and not numbered[0][2]:
        numbered.pop(0)   # blank lines before the map
    while numbered and not numbered[-1][2]:
        numbered.pop()    # blank lines after it
    if not numbered:
        raise ValueError("empty layout: expected rows of cells such as 'CB...'")

    def where(i: int, j: int) -> str:
        """Row i, column j of the grid, as the text's line and column and as a cell."""
        line, indent, _ = numbered[i]
        return f"line {line}, column {indent + j + 1} (cell ({i}, {j}))"

    rows = [cells for _, _, cells in numbered]
    known = "; ".join(f"'{k}' {v}" for k, v in SYMBOLS.items())
    for i, row in enumerate(rows):
        if len(row) != len(rows[0]):
            raise ValueError(f"line {numbered[i][0]} has {len(row)} cells, line "
                             f"{numbered[0][0]} has {len(rows[0])}: expected every row to have "
                             "the same number of cells (a rectangle)")
        for j, ch in enumerate(row):
            if ch not in SYMBOLS:
                raise ValueError(f"{where(i, j)}: unknown symbol {ch!r}; expected one of: {known}")
    if len(rows) * len(rows[0]) > MAX_CELLS:
        raise ValueError(f"the map has {len(rows)} × {len(rows[0])} = {len(rows) * len(rows[0])} "
                         f"cells: expected at most {MAX_CELLS} (the transition model is a "
                         "dense S × A × S array)")
    cats = [(i, j) for i, row in enumerate(rows) for j, ch in enumerate(row) if ch == CAT]
    if len(cats) != 1:
        at = ": " + "; ".join(where(i, j) for i, j in cats) if cats else ""
        raise ValueError(f"expected exactly one cat '{CAT}' (where the cat starts), found "
                         f"{len(cats)}{at}")
    # Search from the cat through the cells where the episode goes on.
    seen, frontier, meat_reached = {cats[0]}, [cats[0]], False
    while frontier:
        i, j = frontier.pop()
        for di, dj in MOVES:
            a, b = i + di, j + dj
            if 0 <= a < len(rows) and 0 <= b < len(rows[0]) and (a, b) not in seen:
                ch = rows[a][b]
                seen.add((a, b))
                meat_reached |= ch == MEAT
                if ch not in TERMINAL and ch != WALL:
                    frontier.append((a, b))
    if not meat_reached:
        raise ValueError(f"no meat '{MEAT}' reachable from the cat at {where(*cats[0])}: "
                         "expected a path to a meat cell that crosses no bathtub and no wall")
    return rows


def read_layout(path) -> str:
    """The text of a map file, checked, with every error naming the file: a missing or
    unreadable file, bytes that are not UTF-8, an empty file, or a map that breaks a rule
    of parse_layout ('my_map.txt: line 2, column 3 (cell (1, 2)): unknown symbol ...').

        >>> env = CatGridWorld(read_layout("my_map.txt"))
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file: expected a text map such as 'CB...'") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder: expected a text file") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror}): expected a readable "
                         "text file") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: a byte-order mark some editors write is fine
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[line_start:error.start].decode("utf-8", errors="replace")) + 1
        raise ValueError(f"{path}: line {line}, column {column}: byte 0x{data[error.start]:02x} "
                         "is not UTF-8: expected a text file in UTF-8") from None
    if not text.strip():
        raise ValueError(f"{path}: the file is empty: expected rows of cells such as 'CB...'")
    try:
        parse_layout(text)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return text


class CatGridWorld:
    """The cat gridworld: `reset(seed=None) -> (state, info)` and
    `step(action) -> (state, reward, terminated, truncated, info)`.

    layout:    a text map (see DEFAULT_LAYOUT and SYMBOLS).
    slippery:  p, the drunk cat: with probability p the move goes in one of the other three
               directions, chosen uniformly (each p/3). p = 0 is the lecture's grid.
    max_steps: the episode is truncated (truncated=True) after this many steps.

    `P[s][a]` is the full transition model, a list of (prob, next_state, reward,
    terminated), like Gymnasium's toy-text `P`; `matrices()` gives it as arrays for
    vectorised dynamic programming.
    """

    def __init__(self, layout: str = DEFAULT_LAYOUT, slippery: float = 0.0,
                 max_steps: int = 100):
        if not 0.0 <= slippery <= 1.0:
            raise ValueError(f"slippery must be a probability in [0, 1], got {slippery}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        self.rows = parse_layout(layout)
        self.n_rows, self.n_cols = len(self.rows), len(self.rows[0])
        self.n_states, self.n_actions = self.n_rows * self.n_cols, len(ACTION_NAMES)
        self.slippery, self.max_steps = float(slippery), int(max_steps)
        self.start_state = next(s for s in range(self.n_states) if self.symbol(s) == CAT)
        self.P = self._transition_model()
        self.np_random = np.random.default_rng()
        self.s, self.steps, self.done = self.start_state, 0, True  # call reset() first

    @classmethod
    def from_file(cls, path: str, **kwargs) -> "CatGridWorld":
        """The map in a text file (see read_layout for the errors it reports)."""
        return cls(read_layout(path), **kwargs)

    # -- cells and states ------------------------------------------------------------
    def cell(self, s: int) -> tuple[int, int]:
        """State index → (row, col)."""
        return divmod(int(s), self.n_cols)

    def state(self, row: int, col: int) -> int:
        """(row, col) → state index."""
        return row * self.n_cols + col

    def symbol(self, s: int) -> str:
        row, col = self.cell(s)
        return self.rows[row][col]

    def is_absorbing(self, s: int) -> bool:
        """Cells where the cat never takes a step: meat (eaten), bathtub, wall."""
        return self.symbol(s) in TERMINAL or self.symbol(s) == WALL

    # -- the rules -------------------------------------------------------------------
    def _target(self, s: int, a: int) -> str:
        """The symbol of the cell that action a leads to from s (WALL outside the grid)."""
        row, col = self.cell(s)
        r2, c2 = row + MOVES[a][0], col + MOVES[a][1]
        inside = 0 <= r2 < self.n_rows and 0 <= c2 < self.n_cols
        return self.rows[r2][c2] if inside else WALL

    def _move(self, s: int, a: int) -> tuple[int, float, bool]:
        """One deterministic move: (next_state, reward, terminated)."""
        target = self._target(s, a)
        if target == WALL:  # invalid move: the cat stays, reward 0
            return s, 0.0, False
        if target == BATHTUB:  # faints: the episode ends and the cat is back at the start
            return self.start_state, REWARDS[BATHTUB], True
        row, col = self.cell(s)
        return self.state(row + MOVES[a][0], col + MOVES[a][1]), REWARDS[target], target == MEAT

    def _transition_model(self) -> list[list[list[tuple[float, int, float, bool]]]]:
        """P[s][a] = [(prob, next_state, reward, terminated), ...]. Absorbing cells loop
        on themselves with reward 0 and terminated=True, as in Gymnasium's FrozenLake."""
        P = []
        for s in range(self.n_states):
            P.append([])
            for a in range(self.n_actions):
                if self.is_absorbing(s):
                    P[s].append([(1.0, s, 0.0, True)])
                    continue
                outcomes = []
                for b in range(self.n_actions):  # b: the direction the cat really moves
                    prob = 1.0 - self.slippery if b == a else self.slippery / 3
                    if prob > 0.0:
                        outcomes.append((prob, *self._move(s, b)))
                P[s].append(outcomes)
        return P

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """The model P as two arrays, for Bellman backups Q = R + γ·T·V.

        T[s, a, s'] = P(s_{t+1} = s', the episode goes on | s_t = s, a_t = a)  (S, A, S)
        R[s, a]     = E[r_{t+1} | s_t = s, a_t = a]                           (S, A)
        Terminal transitions add their reward to R and nothing to T: what follows them
        is worth 0, so each row of T sums to 1 − P(the episode ends)."""
        T = np.zeros((self.n_states, self.n_actions, self.n_states))
        R = np.zeros((self.n_states, self.n_actions))
        for s in range(self.n_states):
            for a in range(self.n_actions):
                for prob, s2, reward, terminated in self.P[s][a]:
                    R[s, a] += prob * reward
                    if not terminated:
                        T[s, a, s2] += prob
        return T, R

    # -- the Gymnasium-style contract ------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        """Start an episode at the cat's cell; seed the random generator (used only by
        the slippery mode). options={"cell": (row, col)} starts elsewhere (for tests)."""
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.s = self.start_state
        if options and "cell" in options:
            self.s = self.state(*options["cell"])
            if self.is_absorbing(self.s):
                raise ValueError(f"cannot start on {SYMBOLS[self.symbol(self.s)]} "
                                 f"at {options['cell']}: expected a cell where the cat can move")
        self.steps, self.done = 0, False
        return self.s, {"cell": self.cell(self.s), "steps": 0}

    def step(self, action) -> tuple[int, float, bool, bool, dict]:
        """a_t → (s_{t+1}, r_{t+1}, terminated, truncated, info). Accepts 0..3 or a name."""
        a = self._check_action(action)
        if self.done:
            raise RuntimeError("the episode has ended (or never started): "
                               "expected a call to reset() before step()")
        b = a  # the direction the cat really moves
        if self.slippery > 0.0 and self.np_random.random() < self.slippery:
            b = int(self.np_random.choice([d for d in range(self.n_actions) if d != a]))
        event = EVENTS.get(self._target(self.s, b), "move")
        s2, reward, terminated = self._move(self.s, b)
        self.steps += 1
        truncated = not terminated and self.steps >= self.max_steps
        self.s, self.done = s2, terminated or truncated
        info = {"cell": self.cell(s2), "steps": self.steps, "moved": ACTION_NAMES[b],
                "slipped": b != a, "event": event}
        return s2, reward, terminated, truncated, info

    def _check_action(self, action) -> int:
        if isinstance(action, str) and action in ACTION_NAMES:
            return ACTION_NAMES.index(action)
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool) \
                and 0 <= action < self.n_actions:
            return int(action)
        raise ValueError(f"unknown action {action!r}: expected an int 0..3 "
                         f"({', '.join(f'{i}={n}' for i, n in enumerate(ACTION_NAMES))}) "
                         "or one of those names")

    def render(self, emoji: bool | None = None) -> str:
        """The grid as text with the cat where it is now (see gridworld.render)."""
        from .render import render_grid
        return render_grid(self, cat_state=self.s, emoji=emoji)
