"""The options of the lecture's last slide as GPT options: ALBERT's factorised embedding and
cross-layer sharing, Reformer's LSH attention inside the model (minigpt.lsh's own formulas
are tested in tests/test_lsh.py)."""

import itertools
import json
import os

import pytest
import torch

from minigpt import GPT, GPTConfig
from minigpt.checkpoint import load_model, save_checkpoint
from minigpt.errors import InputError
from minigpt.optim import make_optimizer
from minigpt.tokenizer import ByteTokenizer
from minigpt.train import TrainConfig, main as train_main, train
from tests.conftest import tiny_config
from toyworld.world import pretraining_corpus

SHARE_MODES = ("none", "all", "attention", "mlp")


def expected_parameters(config: GPTConfig) -> int:
    """The closed form of GPT's docstring, written out again: V·E + P·E embeddings, the two
    projections when E < H, per block a + f + 4H (its two LayerNorms), the final LayerNorm."""
    V, P, L, H = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    E = config.embedding_dim or H
    k = 2 if config.attention == "lsh" else 3
    embeddings = V * E + P * E
    projections = (E * H + H) + (H * E + E) if E < H else 0
    a = H * k * H + k * H + H * H + H  # c_attn and c_proj
    f = H * 4 * H + 4 * H + 4 * H * H + H  # c_fc and c_proj
    norms = 4 * H  # ln_1 and ln_2
    blocks = {"none": L * (a + f + norms), "all": a + f + norms,
              "attention": a + L * (f + norms), "mlp": f + L * (a + norms)}[config.share_layers]
    return embeddings + projections + blocks + 2 * H


@pytest.mark.parametrize("share, E, attention", list(itertools.product(
    SHARE_MODES, (None, 8, 32), ("manual", "lsh"))))
def test_parameter_counts_match_the_closed_form(share, E, attention):
    config = tiny_config(n_layer=3, share_layers=share, embedding_dim=E, attention=attention)
    model = GPT(config)
    assert model.num_parameters() == expected_parameters(config)
    # and counting by hand, each distinct tensor once, agrees with num_parameters
    distinct = {id(p): p.numel() for p in model.parameters()}
    assert sum(distinct.values()) == model.num_parameters()


def test_with_E_equal_to_H_and_no_sharing_the_model_is_todays():
    torch.manual_seed(0)
    today = GPT(tiny_config()).eval()
    for options in (dict(embedding_dim=32), dict(embedding_dim=None, share_layers="none")):
        model = GPT(tiny_config(**options)).eval()
        assert model.state_dict().keys() == today.state_dict().keys()
        model.load_state_dict(today.state_dict())
        idx = torch.randint(0, 37, (2, 12))
        assert torch.equal(model(idx)[0], today(idx)[0])


def test_a_factorised_embedding_is_E_wide_and_goes_through_both_projections():
    torch.manual_seed(0)
    model = GPT(tiny_config(embedding_dim=8)).double().eval()
    assert model.wte.weight.shape == (37, 8) and model.wpe.weight.shape == (32, 8)
    assert model.lm_head.weight is model.wte.weight
    idx = torch.randint(0, 37, (2, 10))
    # the same logits computed by hand from the modules: E → H in, blocks, H → E, wteᵀ
    x = model.embed_in(model.wte(idx) + model.wpe(torch.arange(10)))
    allowed = torch.ones(10, 10, dtype=torch.bool).tril().view(1, 1, 10, 10)
    for block in model.blocks:
        x = block(x, allowed)
    expected = model.embed_out(model.ln_f(x)) @ model.wte.weight.T
    torch.testing.assert_close(model(idx)[0], expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("share", ("all", "attention", "mlp"))
def test_a_shared_weight_gets_the_sum_of_every_depths_gradient_and_moves_as_one(share):
    """Independent computation: an unshared model whose blocks all start from the shared
    weights computes the same function; the shared tensor's gradient is the sum over depths
    of the unshared copies' gradients, and after one AdamW step every depth still holds
    the same (moved) weights."""
    torch.manual_seed(0)
    shared = GPT(tiny_config(n_layer=3, share_layers=share)).double()
    unshared = GPT(tiny_config(n_layer=3)).double()
    unshared.load_state_dict(shared.state_dict())  # the state_dict names every depth
    idx = torch.randint(0, 37, (2, 12))
    loss_shared = shared(idx, targets=idx)[1]
    loss_unshared = unshared(idx, targets=idx)[1]
    torch.testing.assert_close(loss_shared, loss_unshared, rtol=0, atol=1e-12)
    loss_shared.backward()
    loss_unshared.backward()
    part = {"all": "", "attention": "attn.", "mlp": "mlp."}[share]
    names = [n for n, _ in shared.blocks[0].named_parameters() if n.startswith(part)]
    assert names
    for name in names:
        shared_grad = dict(shared.blocks[0].named_parameters())[name].grad
        summed = sum(dict(block.named_parameters())[name].grad for block in unshared.blocks)
        torch.testing.assert_close(shared_grad, summed, rtol=0, atol=1e-12)

    before = {k: v.clone() for k, v in shared.state_dict().items()}
    make_optimizer(shared, 1e-2, 0.1).step()
    after = shared.state_dict()
    for name in names:
        values = [after[f"blocks.{depth}.{name}"] for depth in range(3)]
        assert not torch.equal(values[0], before[f"blocks.0.{name}"])  # it moved
        assert all(v.data_ptr() == values[0].data_ptr() for v in values)  # one tensor, all depths


def test_the_residual_projections_are_scaled_by_the_depth_also_when_shared():
    torch.manual_seed(0)
    model = GPT(tiny_config(n_layer=8, n_embd=256, n_head=4, share_layers="all"))
    std = model.blocks[0].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / (2 * 8) ** 0.5) < 0.001  # 1/√(2·8), not 1/√2


@pytest.mark.parametrize("options", [
    dict(share_layers="all"), dict(share_layers="attention", embedding_dim=8),
    dict(share_layers="mlp"), dict(attention="lsh", lsh_bucket_size=8, lsh_n_hashes=3),
    dict(attention="lsh", lsh_n_buckets=4, share_layers="all", embedding_dim=16),
], ids=["all", "attention-E8", "mlp", "lsh", "lsh-all-E16"])
def test_checkpoints_save_and_load_every_option(tmp_path, options):
    torch.manual_seed(0)
    tokenizer = ByteTokenizer()
    config = tiny_config(vocab_size=tokenizer.vocab_size, n_layer=3, **options)
    model = GPT(config).eval()
    save_checkpoint(tmp_path / "ckpt.pt", model, 0, config, tokenizer)
    loaded, _, _ = load_model(tmp_path)
    assert loaded.config == config
    idx = torch.randint(0, tokenizer.vocab_size, (2, 20))
    assert torch.equal(loaded(idx)[0], model(idx)[0])
    if options.get("share_layers") == "all":  # one block's tensors in the file, not three
        unshared = GPT(tiny_config(vocab_size=tokenizer.vocab_size, n_layer=3,
                                   **{**options, "share_layers": "none"}))
        save_checkpoint(tmp_path / "unshared" / "ckpt.pt", unshared, 0, unshared.config, tokenizer)
        blocks = sum(p.numel() * 4 for p in unshared.blocks[0].parameters())
        saved = os.path.getsize(tmp_path / "ckpt.pt")
        assert os.path.getsize(tmp_path / "unshared" / "ckpt.pt") - saved > 1.9 * blocks


def test_weights_saved_with_other_sharing_are_refused_by_name(tmp_path):
    tokenizer = ByteTokenizer()
    unshared = GPT(tiny_config(vocab_size=tokenizer.vocab_size, n_layer=2))
    shared_config = tiny_config(vocab_size=tokenizer.vocab_size, n_layer=2, share_layers="mlp")
    # a checkpoint whose config says "mlp shared" but whose weights differ by depth
    save_checkpoint(tmp_path / "ckpt.pt", unshared, 0, shared_config, tokenizer)
    with pytest.raises(InputError, match=r"'blocks.1.mlp.c_fc.weight' differs from "
                                         r"'blocks.0.mlp.c_fc.weight'.*other sharing"):
        load_model(tmp_path)


@pytest.mark.parametrize("options, message", [
    (dict(share_layers="ffn"), "share_layers must be one of ('none', 'all', 'attention', 'mlp')"),
    (dict(embedding_dim=64), "embedding_dim must be an integer from 1 to n_embd=32"),
    (dict(embedding_dim=0), "embedding_dim must be an integer from 1 to n_embd=32"),
    (dict(attention="lsh", lsh_n_buckets=5), "lsh_n_buckets must be an even integer"),
    (dict(attention="lsh", lsh_bucket_size=64), "lsh_bucket_size=64 does not fit the block_size=32"),
    (dict(attention="lsh", lsh_n_hashes=0), "lsh_n_hashes must be a positive integer"),
    (dict(attention="sdpa", lsh_n_hashes=4), "lsh_n_hashes only applies to attention='lsh'"),
])
def test_bad_options_are_one_line_errors_naming_the_field(options, message):
    with pytest.raises(ValueError) as error:
        tiny_config(**options)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("argv, message", [
    (["--share-layers", "ffn"], "invalid choice: 'ffn'"),
    (["--embedding-dim", "256"], "--embedding-dim must be an integer from 1 to n_embd=128"),
    (["--lsh-n-buckets", "4"], "--lsh-n-buckets only applies to attention='lsh'"),
    (["--attention", "lsh", "--lsh-n-buckets", "3"], "--lsh-n-buckets must be an even integer"),
    (["--attention", "lsh", "--lsh-bucket-size", "128"], "--lsh-bucket-size=128 does not fit"),
])
def test_the_training_command_refuses_bad_options_in_one_line(tmp_path, capsys, argv, message):
    from minigpt.cli import run_main
    with pytest.raises(SystemExit):
        run_main(train_main, ["--out-dir", str(tmp_path / "run"), *argv])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err


@pytest.mark.parametrize("options", [dict(share_layers="all", embedding_dim=8),
                                     dict(attention="lsh", lsh_bucket_size=32)], ids=["albert", "lsh"])
def test_the_kv_cache_is_indexed_by_depth_and_generation_works(options):
    """With a shared block, the cache still keeps one (K, V) per depth: cached generation
    equals recomputing the prefix. With LSH, the two agree while the whole sequence fits
    one chunk (then LSH is exact shared-QK attention, as the cached steps are)."""
    torch.manual_seed(0)
    model = GPT(tiny_config(n_layer=3, **options)).eval()
    prompt = torch.randint(0, 37, (2, 5))
    cached = model.generate(prompt, 20, temperature=0.0, use_cache=True)
    recomputed = model.generate(prompt, 20, temperature=0.0, use_cache=False)
    assert torch.equal(cached, recomputed)


def test_lsh_generation_with_several_chunks_runs_and_is_causal_in_one_chunk():
    torch.manual_seed(0)
    model = GPT(tiny_config(attention="lsh", lsh_bucket_size=4, lsh_n_hashes=2)).eval()
    out = model.generate(torch.randint(0, 37, (2, 6)), 20, temperature=1.0,
                         generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 26)
    # one chunk over the sequence: changing a future token leaves earlier logits alone
    exact = GPT(tiny_config(attention="lsh", lsh_bucket_size=32)).double().eval()
    idx = torch.randint(0, 37, (1, 20))
    changed = idx.clone()
    changed[0, 15] = (idx[0, 15] + 1) % 37
    torch.testing.assert_close(exact(idx)[0][:, :15], exact(changed)[0][:, :15], rtol=0, atol=1e-12)


@pytest.mark.parametrize("flags", [["--attention", "lsh", "--lsh-bucket-size", "8"],
                                   ["--share-layers", "all", "--embedding-dim", "8"]],
                         ids=["lsh", "albert"])
def test_the_training_command_trains_each_option(tmp_path, flags):
    data = tmp_path / "corpus.txt"
    data.write_text(pretraining_corpus(n_chars=20_000), encoding="utf-8")
    summary = train_main(["--data", str(data), "--out-dir", str(tmp_path / "run"),
                          "--block-size", "32", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
                          "--batch-size", "8", "--max-iters", "60", "--warmup-iters", "5",
                          "--eval-interval", "60", "--eval-iters", "4", "--sample-tokens", "20",
                          "--learning-rate", "3e-3", "--device", "cpu", *flags])
    rows = [json.loads(line) for line in open(os.path.join(summary["run"], "metrics.jsonl"))]
    first, last = next(row["val_loss"] for row in rows if "val_loss" in row), summary["val_loss"]
    assert last < first - 0.5, (first, last)


def test_a_factorised_embedding_starts_at_gpt2s_scale():
    """E → H must not shrink the residual stream: at initialisation the lifted embeddings
    have about the std of the unfactorised ones (0.02), and the vectors handed to the tied
    output layer about ln_f's (1)."""
    torch.manual_seed(0)
    model = GPT(tiny_config(n_embd=256, n_head=4, embedding_dim=16, vocab_size=512))
    idx = torch.randint(0, 512, (8, 32))
    with torch.no_grad():
        lifted = model.embed_in(model.wte(idx) + model.wpe(torch.arange(32)))
        handed = model.embed_out(torch.randn(8, 32, 256))
    assert 0.02 * 0.8 < lifted.std().item() / 2 ** 0.5 < 0.02 * 1.25  # wte + wpe: √2 · 0.02
    assert 0.8 < handed.std().item() < 1.25
