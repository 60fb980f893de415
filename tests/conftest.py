"""Shared fixtures: small models that run in milliseconds on a CPU."""

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

from minigpt import GPT, GPTConfig  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


def tiny_config(**overrides) -> GPTConfig:
    values = dict(block_size=32, vocab_size=37, n_layer=2, n_head=4, n_embd=32, dropout=0.0)
    values.update(overrides)
    return GPTConfig(**values)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return GPT(tiny_config()).eval()


@pytest.fixture
def shared_dir():
    """The ../shared folder beside the checkout; tests that need it skip without it."""
    if not os.path.isdir(SHARED):
        pytest.skip("../shared is not present (a user's fresh clone has none)")
    return SHARED
