"""The GPT itself: shapes, the attention formula, causality, initialisation, learning."""

import math

import pytest
import torch
import torch.nn.functional as F

from minigpt import GPT, GPTConfig, pad_left
from minigpt.model import attention_allowed
from tests.conftest import tiny_config


def test_forward_shapes_and_loss(tiny_model):
    idx = torch.randint(0, 37, (3, 10))
    logits, loss = tiny_model(idx)
    assert logits.shape == (3, 10, 37)
    assert loss is None
    logits, loss = tiny_model(idx, targets=idx)
    assert loss.shape == () and torch.isfinite(loss)


def test_invalid_configs_give_clear_errors():
    with pytest.raises(ValueError, match="n_embd=30 is not divisible by n_head=4"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="attention must be one of"):
        GPTConfig(attention="flash")
    with pytest.raises(ValueError, match="dropout"):
        GPTConfig(dropout=1.5)
    with pytest.raises(ValueError, match="n_layer must be a positive integer"):
        GPTConfig(n_layer=0)


def test_sequence_longer_than_block_size_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="longer than block_size=32"):
        tiny_model(torch.zeros(1, 33, dtype=torch.long))


def test_manual_attention_matches_the_fused_kernel_in_float64():
    torch.manual_seed(0)
    manual = GPT(tiny_config(attention="manual")).double().eval()
    fused = GPT(tiny_config(attention="sdpa")).double().eval()
    fused.load_state_dict(manual.state_dict())
    idx = torch.randint(0, 37, (4, 32))
    torch.testing.assert_close(manual(idx)[0], fused(idx)[0], rtol=0, atol=1e-12)
    # with left padding (an explicit mask) too
    idx, mask = pad_left([[1, 2, 3], [4, 5, 6, 7, 8, 9, 10]], pad_id=0)
    torch.testing.assert_close(manual(idx, attention_mask=mask)[0],
                               fused(idx, attention_mask=mask)[0], rtol=0, atol=1e-12)


def test_attention_is_the_slide_formula_for_one_head():
    """softmax(Q Kᵀ/√d_k + causal mask) V, written independently with a Python loop."""
    torch.manual_seed(0)
    model = GPT(tiny_config(n_head=1, n_layer=1)).double().eval()
    attention = model.blocks[0].attn
    x = torch.randn(1, 5, 32, dtype=torch.float64)
    q, k, v = attention.c_attn(x).split(32, dim=2)  # (1, 5, 32) each, one head: d_k = 32
    rows = []
    for t in range(5):  # the query at position t sees keys 0..t
        scores = torch.stack([q[0, t] @ k[0, j] / math.sqrt(32) for j in range(t + 1)])
        weights = torch.softmax(scores, dim=0)
        rows.append(sum(weights[j] * v[0, j] for j in range(t + 1)))
    expected = attention.c_proj(torch.stack(rows).unsqueeze(0))
    allowed = attention_allowed(0, 5, None)
    torch.testing.assert_close(attention(x, allowed), expected, rtol=0, atol=1e-12)


def test_changing_a_future_token_changes_no_earlier_logits(tiny_model):
    idx = torch.randint(0, 37, (2, 20))
    changed = idx.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 37
    before, after = tiny_model(idx)[0], tiny_model(changed)[0]
    assert torch.equal(before[:, :12], after[:, :12])
    assert not torch.allclose(before[:, 12:], after[:, 12:])


def test_left_padding_with_a_mask_gives_the_unpadded_logits(tiny_model):
    tokens = [5, 6, 7, 8]
    idx, mask = pad_left([tokens, [1, 2, 3, 4, 5, 6, 7]], pad_id=0)  # row 0 has 3 pads
    padded = tiny_model(idx, attention_mask=mask)[0][0, 3:]
    alone = tiny_model(torch.tensor([tokens]))[0][0]
    torch.testing.assert_close(padded, alone, rtol=0, atol=1e-5)


def test_loss_at_initialisation_is_about_ln_vocab():
    torch.manual_seed(0)
    vocab = 259
    model = GPT(tiny_config(vocab_size=vocab)).eval()
    idx = torch.randint(0, vocab, (8, 32))
    _, loss = model(idx, targets=torch.randint(0, vocab, (8, 32)))
    assert abs(loss.item() - math.log(vocab)) < 0.05


def test_gpt2_initialisation_and_tied_embeddings():
    torch.manual_seed(0)
    config = tiny_config(n_layer=8, n_embd=64, n_head=4, vocab_size=500)
    model = GPT(config)
    assert model.lm_head.weight is model.wte.weight  # tied: one matrix
    expected_proj_std = 0.02 / math.sqrt(2 * config.n_layer)
    for block in model.blocks:
        for proj in (block.attn.c_proj, block.mlp.c_proj):
            assert abs(proj.weight.std().item() - expected_proj_std) < 0.15 * expected_proj_std
            assert torch.all(proj.bias == 0)
    assert abs(model.blocks[0].mlp.c_fc.weight.std().item() - 0.02) < 0.002
    assert abs(model.wte.weight.std().item() - 0.02) < 0.002
    n_unique = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert model.num_parameters() == n_unique


def test_ignored_targets_do_not_count(tiny_model):
    idx = torch.randint(0, 37, (2, 8))
    targets = torch.randint(0, 37, (2, 8))
    targets[:, :4] = -100
    logits, loss = tiny_model(idx, targets)
    expected = F.cross_entropy(logits[:, 4:].reshape(-1, 37), targets[:, 4:].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(tiny_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    idx = torch.randint(0, 37, (4, 16))
    x, y = idx[:, :-1], idx[:, 1:]
    for _ in range(300):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_dropout_is_active_in_training_and_off_in_eval():
    torch.manual_seed(0)
    model = GPT(tiny_config(dropout=0.5))
    idx = torch.randint(0, 37, (2, 8))
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3 * model.config.n_layer + 1  # attention weights, two residual branches; embeddings
    # with p = 0 there is nothing to call: a generated token passes no do-nothing module
    plain = GPT(tiny_config(dropout=0.0))
    assert not any(isinstance(m, (torch.nn.Dropout, torch.nn.Identity)) for m in plain.modules())
