"""The cat gridworld's rules (DESIGN.md, "The cat gridworld"), checked against a separate,
hand-written statement of the same rules rather than against the environment's own code."""

import numpy as np
import pytest

from gridworld import ACTION_NAMES, DOWN, LEFT, RIGHT, UP, CatGridWorld, read_layout

START, BROOM, BATHTUB, MEAT = (0, 0), (0, 1), (3, 2), (4, 4)
DELTAS = {UP: (-1, 0), DOWN: (1, 0), LEFT: (0, -1), RIGHT: (0, 1)}


def lecture_rule(cell, action):
    """The lecture's rules for the default 5×5 grid, written out independently:
    (next cell, reward, terminated)."""
    row, col = cell[0] + DELTAS[action][0], cell[1] + DELTAS[action][1]
    if not (0 <= row < 5 and 0 <= col < 5):
        return cell, 0.0, False          # into the wall: stay, 0
    if (row, col) == BATHTUB:
        return START, -10.0, True        # faints, episode over, back at the start
    if (row, col) == MEAT:
        return MEAT, 100.0, True
    if (row, col) == BROOM:
        return BROOM, -1.0, False
    return (row, col), 0.0, False


def open_cells():
    return [(r, c) for r in range(5) for c in range(5) if (r, c) not in (BATHTUB, MEAT)]


def test_default_layout_is_the_lectures_grid():
    env = CatGridWorld()
    assert (env.n_rows, env.n_cols, env.n_actions) == (5, 5, 4)
    assert env.cell(env.start_state) == START
    assert env.symbol(env.state(*BROOM)) == "B"
    assert env.symbol(env.state(*BATHTUB)) == "T"
    assert env.symbol(env.state(*MEAT)) == "M"
    assert ACTION_NAMES == ("up", "down", "left", "right")


@pytest.mark.parametrize("cell", open_cells())
def test_step_and_model_follow_the_rules_everywhere(cell):
    env = CatGridWorld()
    for a in range(4):
        next_cell, reward, terminated = lecture_rule(cell, a)
        assert env.P[env.state(*cell)][a] == [(1.0, env.state(*next_cell), reward, terminated)]
        env.reset(options={"cell": cell})
        s, r, term, trunc, info = env.step(a)
        assert (env.cell(s), r, term, trunc) == (next_cell, reward, terminated, False)
        assert info["cell"] == next_cell


def test_named_transitions_of_the_lecture():
    env = CatGridWorld()
    s, info = env.reset(seed=0)
    assert (s, info["cell"]) == (0, START)
    assert env.step("up")[:3] == (0, 0.0, False)                         # wall: stay, 0
    assert env.step("right")[:3] == (env.state(*BROOM), -1.0, False)     # broom: −1
    assert env.step("up")[:3] == (env.state(*BROOM), 0.0, False)         # wall from broom: 0
    assert env.step("right")[:3] == (env.state(0, 2), 0.0, False)        # moves on
    env.reset(options={"cell": (2, 2)})
    s, r, terminated, truncated, info = env.step(DOWN)                   # into the bathtub
    assert (s, r, terminated, truncated, info["event"]) == (0, -10.0, True, False, "bathtub")
    env.reset(options={"cell": (4, 3)})
    assert env.step(RIGHT)[:3] == (env.state(*MEAT), 100.0, True)


def test_gymnasium_contract_types():
    env = CatGridWorld()
    out = env.reset(seed=3)
    assert isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)
    step = env.step(DOWN)
    assert len(step) == 5
    s, r, terminated, truncated, info = step
    assert isinstance(s, int) and isinstance(r, float) and isinstance(info, dict)
    assert isinstance(terminated, bool) and isinstance(truncated, bool)


def test_errors_say_what_was_expected():
    env = CatGridWorld()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(DOWN)                                   # before reset
    env.reset()
    for bad in (4, -1, "jump", 1.5, None, True):
        with pytest.raises(ValueError, match="expected an int 0..3"):
            env.step(bad)
    env.reset(options={"cell": (4, 3)})
    env.step(RIGHT)                                      # eats the meat
    with pytest.raises(RuntimeError, match="reset"):
        env.step(LEFT)
    with pytest.raises(ValueError, match="slippery"):
        CatGridWorld(slippery=1.5)
    with pytest.raises(ValueError, match="cannot start"):
        env.reset(options={"cell": MEAT})


def test_truncation_after_max_steps():
    env = CatGridWorld(max_steps=3)
    env.reset()
    flags = [env.step(UP)[2:4] for _ in range(3)]        # three bumps into the top wall
    assert flags == [(False, False), (False, False), (False, True)]
    with pytest.raises(RuntimeError):
        env.step(UP)


@pytest.mark.parametrize("text, message", [
    ("CB.\n.C.\n..M", "exactly one cat 'C' .*found 2: line 1, column 1 .*; line 2, column 2"),
    ("...\n..M", "exactly one cat 'C' .*found 0"),
    ("CX.\n..M", "line 1, column 2 \\(cell \\(0, 1\\)\\): unknown symbol 'X'; expected one of"),
    ("\n  C.\n  .X\n", "line 3, column 4 \\(cell \\(1, 1\\)\\): unknown symbol 'X'"),
    ("C B\n..M", "unknown symbol ' '"),
    ("C..\n..\n..M", "line 2 has 2 cells, line 1 has 3: expected"),
    ("C.T\n.TM", "no meat 'M' reachable from the cat at line 1, column 1"),
    ("C#M", "no meat 'M' reachable"),
    ("C..\n...", "no meat 'M' reachable"),
    ("C" + "." * 399 + "M", "401 cells: expected at most 400"),
    ("", "empty layout"),
    (" \n\n", "empty layout"),
])
def test_bad_layouts_get_clear_errors(text, message):
    with pytest.raises(ValueError, match=message):
        CatGridWorld(text)


def test_layout_margins_are_ignored():
    env = CatGridWorld("\n  CB \r\n  .M\t\n\n")   # blank lines, indents, CRLF, trailing tab
    assert env.rows == ["CB", ".M"]


@pytest.mark.parametrize("content, message", [
    (None, "nosuch.txt: no such file"),
    (b"", "map.txt: the file is empty"),
    (b"CB.\n.\xff.M\n", "map.txt: line 2, column 2: byte 0xff is not UTF-8"),
    (b"CB.M\n.X.M\n", "map.txt: line 2, column 2 \\(cell \\(1, 1\\)\\): unknown symbol 'X'"),
    (b"..B\n..M\n", "map.txt: expected exactly one cat"),
])
def test_layout_file_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / ("nosuch.txt" if content is None else "map.txt")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_layout(path)
    with pytest.raises(ValueError, match=message):
        CatGridWorld.from_file(str(path))
    with pytest.raises(ValueError, match="is a folder"):
        read_layout(tmp_path)


def test_layout_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "map.txt"
    path.write_bytes("CBM\n".encode("utf-8-sig"))   # as some Windows editors save it
    assert CatGridWorld.from_file(str(path)).rows == ["CBM"]


def test_custom_layout_from_file(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("#C.\n.BM\n")
    env = CatGridWorld.from_file(str(path))
    assert (env.n_rows, env.n_cols) == (2, 3) and env.cell(env.start_state) == (0, 1)
    env.reset()
    assert env.step(LEFT)[:3] == (env.start_state, 0.0, False)   # '#' is a wall
    assert env.step(DOWN)[:3] == (env.state(1, 1), -1.0, False)  # broom
    assert env.step(RIGHT)[:3] == (env.state(1, 2), 100.0, True)  # meat


def test_slippery_model_probabilities():
    p = 0.3
    env = CatGridWorld(slippery=p)
    for cell in open_cells():
        s = env.state(*cell)
        for a in range(4):
            outcomes = env.P[s][a]
            assert sum(prob for prob, *_ in outcomes) == pytest.approx(1.0, abs=1e-12)
            # Each direction b is taken with 1 − p (b = a) or p/3 (b ≠ a).
            expected = {}
            for b in range(4):
                nxt, r, t = lecture_rule(cell, b)
                key = (env.state(*nxt), r, t)
                expected[key] = expected.get(key, 0.0) + (1 - p if b == a else p / 3)
            got = {}
            for prob, s2, r, t in outcomes:
                got[(s2, r, t)] = got.get((s2, r, t), 0.0) + prob
            assert got.keys() == expected.keys()
            for key in got:
                assert got[key] == pytest.approx(expected[key], abs=1e-12)


def test_slippery_steps_match_the_model_statistically():
    p, n = 0.3, 4000
    env = CatGridWorld(slippery=p)
    env.reset(seed=123)
    counts = {}
    for _ in range(n):
        env.reset(options={"cell": (1, 1)})   # all four moves lead to different cells
        s2 = env.step(RIGHT)[0]
        counts[env.cell(s2)] = counts.get(env.cell(s2), 0) + 1
    expected = {(1, 2): 1 - p, (0, 1): p / 3, (2, 1): p / 3, (1, 0): p / 3}
    assert counts.keys() == expected.keys()
    for cell, q in expected.items():
        sigma = np.sqrt(q * (1 - q) / n)
        assert abs(counts[cell] / n - q) < 4 * sigma


def test_seeding_reproduces_slippery_episodes():
    def moves(seed):
        env = CatGridWorld(slippery=0.5)
        env.reset(seed=seed)
        return [env.step(RIGHT if i % 2 else DOWN)[0] for i in range(6)]
    assert moves(7) == moves(7)
    assert any(moves(7) != moves(s) for s in range(8, 12))


def test_matrices_hold_rewards_and_continuations():
    env = CatGridWorld(slippery=0.2)
    T, R = env.matrices()
    assert T.shape == (25, 4, 25) and R.shape == (25, 4)
    for s in range(25):
        for a in range(4):
            p_end = sum(prob for prob, _, _, done in env.P[s][a] if done)
            assert T[s, a].sum() == pytest.approx(1.0 - p_end, abs=1e-12)
            assert R[s, a] == pytest.approx(sum(prob * r for prob, _, r, _ in env.P[s][a]))
    det_T, det_R = CatGridWorld().matrices()
    s = CatGridWorld().state(2, 2)
    assert det_T[s, DOWN].sum() == 0.0 and det_R[s, DOWN] == -10.0   # the bath ends it
