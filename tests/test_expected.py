"""align.expected: a default run's figures against the range measured runs gave."""

import pytest

from align.expected import EXPECTED, compare_with_expected, read_figure


def results_with(value_of, preset="default") -> dict:
    """A results.json holding value_of(name) at each figure's place."""
    results = {"preset": preset}
    for name, (_, _, _, where) in EXPECTED.items():
        node = results
        for key in where[:-1]:
            node = node.setdefault(key, {} if not isinstance(where[where.index(key) + 1], int) else [])
        if isinstance(node, list):
            node.extend([value_of(name), -9, 9])
        else:
            node[where[-1]] = value_of(name)
    return results


def test_a_figure_is_within_at_its_ends_and_outside_beyond_them():
    for at in ("low", "high"):
        rows = compare_with_expected(results_with(
            lambda name: EXPECTED[name][1] if at == "low" else EXPECTED[name][2]))
        assert {row["verdict"] for row in rows} == {"within"}, rows
    rows = compare_with_expected(results_with(lambda name: EXPECTED[name][2] + 0.01))
    assert {row["verdict"] for row in rows} == {"outside"}
    rows = compare_with_expected(results_with(lambda name: EXPECTED[name][1] - 0.01))
    assert {row["verdict"] for row in rows} == {"outside"}


def test_read_figure_finds_each_entry_and_says_missing_for_an_older_run():
    results = results_with(lambda name: 0.5)
    assert all(read_figure(results, where) == 0.5 for *_, where in EXPECTED.values())
    del results["evaluation"]["kl"]
    rows = {row["name"]: row["verdict"] for row in compare_with_expected(results)}
    assert rows["dpo_kl"] == rows["rlhf_kl"] == "missing"


@pytest.mark.parametrize("preset", ["quick", "smoke", "small", "gpu"])
def test_another_preset_is_not_compared(preset):
    rows = compare_with_expected(results_with(lambda name: EXPECTED[name][1], preset))
    assert {row["verdict"] for row in rows} == {"not comparable"}


def test_every_range_is_a_range():
    for name, (label, low, high, where) in EXPECTED.items():
        assert low < high and label and where, name
