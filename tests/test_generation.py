"""Iterative generation: the KV cache, batching with left padding, and sampling filters."""

import pytest
import torch
import torch.nn.functional as F

from minigpt import GPT, KVCache, pad_left, top_k_filter, top_p_filter
from minigpt.sampling import sample_from, sample_next_token
from tests.conftest import tiny_config


def test_cached_logits_equal_recomputed_logits(tiny_model):
    idx = torch.randint(0, 37, (3, 24))
    full, _ = tiny_model(idx)  # (3, 24, 37), every position at once
    cache = KVCache(tiny_model.config.n_layer)
    pieces = [tiny_model(idx[:, :8], kv_cache=cache)[0]]  # the prompt, once
    for t in range(8, 24):  # then one token at a time: q_t against the cached K, V
        pieces.append(tiny_model(idx[:, t : t + 1], kv_cache=cache)[0])
        assert cache.length == t + 1
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)


@torch.no_grad()
def test_a_cache_of_known_length_writes_in_place_and_holds_what_concatenation_holds(tiny_model):
    """KVCache(max_length): one buffer per layer, filled in place; past its length it falls
    back to concatenating. Its keys, values and the logits equal the concatenating cache's."""
    idx = torch.randint(0, 37, (2, 14))
    grown, written = KVCache(tiny_model.config.n_layer), KVCache(tiny_model.config.n_layer, 12)
    for start, end in ((0, 5), (5, 6), (6, 12), (12, 14)):  # the last call passes max_length
        a = tiny_model(idx[:, start:end], kv_cache=grown)[0]
        b = tiny_model(idx[:, start:end], kv_cache=written)[0]
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        for layer in range(tiny_model.config.n_layer):
            assert torch.equal(grown.keys[layer], written.keys[layer])
            assert torch.equal(grown.values[layer], written.values[layer])
        if end <= 12:  # a view of the layer's buffer, no copy of the past
            assert written.keys[0].data_ptr() == written.buffers[0][0].data_ptr()
    assert written.length == 14 and written.buffers[0][0].shape[2] == 12


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_greedy_tokens_are_identical_with_and_without_cache(attention):
    torch.manual_seed(1)
    model = GPT(tiny_config(attention=attention)).eval()
    prompt = torch.randint(0, 37, (2, 5))
    cached = model.generate(prompt, 20, temperature=0.0, use_cache=True)
    recomputed = model.generate(prompt, 20, temperature=0.0, use_cache=False)
    assert cached.shape == (2, 25)
    assert torch.equal(cached, recomputed)
    assert torch.equal(cached[:, :5], prompt)


def test_a_generation_step_gives_the_hand_written_attention_no_mask_unless_there_is_padding(monkeypatch):
    """One new token sees every cached key: without padding the model passes allowed=None
    (nothing to mask: no (1, 1, 1, T_k) tensor to build at every step, nor to negate and
    apply at every layer);
    the prompt gets its causal mask, and a padded batch its padding mask at every step."""
    import minigpt.model

    causal_attention, seen = minigpt.model.causal_attention, []  # (T, T_k, allowed) of every call

    def recording(q, k, v, allowed, dropout=None):
        seen.append((q.size(2), k.size(2), None if allowed is None else allowed.clone()))
        return causal_attention(q, k, v, allowed, dropout)

    monkeypatch.setattr(minigpt.model, "causal_attention", recording)
    torch.manual_seed(0)
    model = GPT(tiny_config(attention="manual", n_layer=2)).eval()
    prompt = torch.randint(0, 37, (1, 5))
    tokens = model.generate(prompt, 4, temperature=0.0)
    prompt_calls, step_calls = seen[:2], seen[2:]
    assert [(T, T_k) for T, T_k, _ in prompt_calls] == [(5, 5)] * 2
    assert all(torch.equal(allowed[0, 0], torch.ones(5, 5, dtype=torch.bool).tril()) for *_, allowed in prompt_calls)
    assert [(T, T_k, allowed) for T, T_k, allowed in step_calls] == [(1, T_k, None) for T_k in (6, 6, 7, 7, 8, 8)]
    assert torch.equal(tokens, model.generate(prompt, 4, temperature=0.0, use_cache=False))

    seen.clear()
    padded, mask = pad_left([[1, 2, 3], [4, 5, 6, 7, 8]], pad_id=0)
    model.generate(padded, 2, temperature=0.0, attention_mask=mask)
    steps = [(T_k, allowed) for T, T_k, allowed in seen if T == 1]
    assert len(steps) == 2 and all(allowed is not None for _, allowed in steps)
    T_k, allowed = steps[0]  # row 0's two padding keys are hidden from its new token
    assert T_k == 6 and allowed.shape == (2, 1, 1, 6)
    assert allowed[0, 0, 0].tolist() == [False, False, True, True, True, True] and bool(allowed[1].all())


@pytest.mark.parametrize("attention", ["manual", "lsh"])
def test_what_generation_returns_and_leaves_behind_trains_like_any_tensor(attention):
    """generate runs under torch.inference_mode; the tokens it returns, and the LSH
    rotations it draws for the prompt's length, must still go into a training step (an
    inference tensor cannot be saved for backward: RL trains on generated tokens; the
    rotations only hash detached keys, so they are never saved)."""
    torch.manual_seed(0)
    lsh = {"lsh_bucket_size": 4} if attention == "lsh" else {}
    model = GPT(tiny_config(attention=attention, **lsh))
    prompt = torch.randint(0, 37, (2, 8))
    out = model.generate(prompt, 8, temperature=1.0)
    assert not out.is_inference() and model.training  # set back to train mode
    _, loss = model(out[:, :8], targets=out[:, 1:9])  # the prompt's length: rotations reused
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_generation_runs_without_onednn_and_puts_the_switch_back(tiny_model):
    """generate switches oneDNN off while it runs (its GELU's set-up costs more than one
    token's MLP) and leaves the switch as it found it: after an error too, and off when
    it was off. An ordinary forward pass keeps oneDNN."""
    seen = []  # torch.backends.mkldnn.enabled at each GELU call
    gelu = tiny_model.blocks[0].mlp.gelu
    hook = gelu.register_forward_hook(lambda *_: seen.append(torch.backends.mkldnn.enabled))
    prompt = torch.randint(0, 37, (2, 5))
    try:
        assert torch.backends.mkldnn.enabled
        tiny_model.generate(prompt, 3, temperature=0.0)
        assert seen == [False] * 3 and torch.backends.mkldnn.enabled
        with pytest.raises(ValueError, match="temperature"):  # raised inside the loop
            tiny_model.generate(prompt, 3, temperature=-1.0)
        assert torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        tiny_model.generate(prompt, 1, temperature=0.0)
        assert not torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = True
        seen.clear()
        tiny_model(prompt)
        assert seen == [True]
    finally:
        torch.backends.mkldnn.enabled = True
        hook.remove()


def test_generating_past_block_size_crops_and_matches_recomputation(tiny_model):
    prompt = torch.randint(0, 37, (1, 30))  # block_size is 32
    cached = tiny_model.generate(prompt, 40, temperature=0.0, use_cache=True)
    recomputed = tiny_model.generate(prompt, 40, temperature=0.0, use_cache=False)
    assert cached.shape == (1, 70)
    assert torch.equal(cached, recomputed)
    # a prompt longer than the context is cropped to its last block_size tokens
    long_prompt = torch.randint(0, 37, (1, 50))
    assert tiny_model.generate(long_prompt, 3, temperature=0.0).shape == (1, 53)


def test_each_greedy_token_is_the_argmax_of_the_uncached_model(tiny_model):
    prompt = torch.randint(0, 37, (1, 4))
    out = tiny_model.generate(prompt, 6, temperature=0.0)
    for t in range(4, 10):
        logits, _ = tiny_model(out[:, :t])
        assert out[0, t] == logits[0, -1].argmax()


@pytest.mark.parametrize("use_cache", [True, False])
def test_batched_generation_equals_one_prompt_at_a_time(tiny_model, use_cache):
    prompts = [[3, 1, 4], [1, 5, 9, 2, 6, 5, 3, 5], [8], [9, 7, 9, 3]]
    idx, mask = pad_left(prompts, pad_id=0)
    batched = tiny_model.generate(idx, 12, temperature=0.0, attention_mask=mask,
                                  use_cache=use_cache)
    T = idx.size(1)
    for row, prompt in enumerate(prompts):
        alone = tiny_model.generate(torch.tensor([prompt]), 12, temperature=0.0)
        assert torch.equal(batched[row, T - len(prompt) :], alone[0])


def test_generation_stops_at_eos_and_fills_finished_rows(tiny_model):
    prompt = torch.randint(0, 37, (3, 4))
    free = tiny_model.generate(prompt, 15, temperature=0.0)
    eos = int(free[0, 6])  # the token row 0 produces third: make it the EOS
    out = tiny_model.generate(prompt, 15, temperature=0.0, eos_id=eos)
    for row in range(3):
        new = out[row, 4:]
        hits = (new == eos).nonzero()
        if len(hits):
            first = int(hits[0])
            assert torch.equal(new[:first], free[row, 4 : 4 + first])
            assert torch.all(new[first:] == eos)  # finished rows are filled with EOS
    assert out.size(1) <= free.size(1)
    one = tiny_model.generate(prompt[:1], 15, temperature=0.0, eos_id=eos)
    first = int((free[0, 4:] == eos).nonzero()[0])  # where row 0 first produces it
    assert torch.equal(one[0], free[0, : 4 + first + 1])  # stopped right after the EOS


@pytest.mark.parametrize("use_cache", [True, False])
def test_finished_rows_leave_the_batch_and_every_row_is_as_if_generated_alone(use_cache):
    torch.manual_seed(0)
    tiny_model = GPT(tiny_config()).eval()
    with torch.no_grad():  # weights of scale 1: greedy answers that vary (an untrained
        for parameter in tiny_model.parameters():  # model at GPT-2's scale repeats one token)
            parameter.normal_(0.0, 1.0)
    prompts = [[3, 1, 4], [1, 5, 9, 2, 6], [8], [9, 7, 9, 3], [2, 7], [1, 8, 2, 8], [4, 5], [6]]
    idx, mask = pad_left(prompts, pad_id=0)
    T = idx.size(1)
    free = tiny_model.generate(idx, 14, temperature=0.0, attention_mask=mask)
    # the EOS: of the tokens the rows produce, the one they first produce at the most
    # different steps, so that rows finish at different steps
    def first_steps(token):
        return {int((row == token).nonzero()[0]) for row in free[:, T:] if (row == token).any()}
    eos = max(free[:, T:].unique().tolist(), key=lambda token: len(first_steps(token)))
    batch_sizes = []  # the rows the model computes at each call
    hook = tiny_model.register_forward_pre_hook(lambda module, args: batch_sizes.append(args[0].size(0)))
    try:
        out = tiny_model.generate(idx, 14, temperature=0.0, attention_mask=mask, eos_id=eos,
                                  use_cache=use_cache)
    finally:
        hook.remove()
    finished_at = []
    for row, prompt in enumerate(prompts):
        alone = tiny_model.generate(torch.tensor([prompt]), 14, temperature=0.0, eos_id=eos)
        new = alone[0, len(prompt):]  # up to and with its EOS, or all 14 tokens
        assert torch.equal(out[row, T : T + len(new)], new)
        assert (out[row, T + len(new):] == eos).all()  # filled with EOS once finished
        finished_at.append(len(new) if new[-1] == eos else None)
    assert len({n for n in finished_at if n is not None}) >= 2  # rows end at different steps
    assert batch_sizes[0] == len(prompts) and min(batch_sizes) < len(prompts)
    assert sorted(batch_sizes, reverse=True) == batch_sizes  # the batch only ever shrinks


def test_sampling_is_reproducible_with_a_seeded_generator(tiny_model):
    prompt = torch.randint(0, 37, (2, 3))
    a = tiny_model.generate(prompt, 10, generator=torch.Generator().manual_seed(7))
    b = tiny_model.generate(prompt, 10, generator=torch.Generator().manual_seed(7))
    c = tiny_model.generate(prompt, 10, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_next_token_probs_is_the_softmax_of_the_last_logits(tiny_model):
    idx = torch.randint(0, 37, (2, 6))
    probs = tiny_model.next_token_probs(idx)
    assert probs.shape == (2, 37)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    torch.testing.assert_close(probs, F.softmax(tiny_model(idx)[0][:, -1], dim=-1))


def test_top_k_keeps_exactly_the_k_largest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5], [5.0, 4.0, 3.0, 2.0, 1.0]])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [[False, True, False, True, False], [True, True, False, False, False]]
    assert torch.equal(top_k_filter(logits, 2)[kept], logits[kept])  # kept values unchanged
    assert torch.isfinite(top_k_filter(logits, 99)).all()  # k beyond the vocabulary: all


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.97, 0.01, 0.01, 0.01]])
    logits = probs.log()
    kept = torch.isfinite(top_p_filter(logits, 0.7)).tolist()
    assert kept == [[False, True, False, True], [True, False, False, False]]  # 0.5+0.3 ≥ 0.7
    kept = torch.isfinite(top_p_filter(logits, 0.9)).tolist()
    assert kept[0] == [False, True, True, True]  # 0.5+0.3 < 0.9, add 0.15
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()
    assert torch.isfinite(top_p_filter(logits, 0.01)).sum(-1).tolist() == [1, 1]  # top token


def test_sampling_only_draws_kept_tokens():
    logits = torch.randn(1, 20).repeat(500, 1)
    draws = sample_next_token(logits, temperature=1.0, top_k=3,
                              generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) <= set(logits[0].topk(3).indices.tolist())
    assert torch.equal(sample_next_token(logits, temperature=0.0), logits.argmax(-1))
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 0.0)
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(logits, 0)


def test_each_token_is_drawn_with_its_probability():
    # three rows: a spread distribution, zeros between and at both ends, and a sure token
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.0],
                          [0.0, 0.5, 0.0, 0.25, 0.25],
                          [0.0, 0.0, 1.0, 0.0, 0.0]])
    n = 40_000
    draws = sample_from(probs.repeat(n, 1), torch.Generator().manual_seed(0)).view(n, 3)  # (n, 3)
    counts = torch.stack([torch.bincount(draws[:, row], minlength=5) for row in range(3)])
    assert (counts[probs == 0] == 0).all()  # a token of probability 0 never comes up
    # each share within 4.5 standard errors of its probability, √(p(1 − p)/n) ≤ 0.0025
    assert torch.allclose(counts / n, probs, atol=4.5 * 0.0025)
    # the same draws as an independent inverse-CDF loop over the same uniform numbers
    generator = torch.Generator().manual_seed(1)
    again = sample_from(probs, generator)
    u = torch.rand(3, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for row in range(3):
        total, cumulative = probs[row].double().sum(), 0.0
        for token, p in enumerate(probs[row].double().tolist()):
            cumulative += p
            if cumulative / total > u[row, 0]:
                break
        assert again[row] == token
    # the same seed, the same tokens
    assert torch.equal(sample_from(probs, torch.Generator().manual_seed(1)), again)


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_cached_logits_with_left_padding_equal_the_unpadded_model(attention):
    torch.manual_seed(2)
    model = GPT(tiny_config(attention=attention)).eval()
    prompts = [[5, 6, 7], [1, 2, 3, 4, 5, 6]]
    idx, mask = pad_left(prompts, pad_id=0)
    cache = KVCache(model.config.n_layer)
    model(idx, attention_mask=mask, kv_cache=cache)
    step = torch.tensor([[9], [9]])
    mask = torch.cat([mask, torch.ones(2, 1, dtype=mask.dtype)], dim=1)
    cached = model(step, attention_mask=mask, kv_cache=cache)[0][:, -1]  # (2, vocab)
    for row, prompt in enumerate(prompts):
        alone = model(torch.tensor([prompt + [9]]))[0][0, -1]
        torch.testing.assert_close(cached[row], alone, rtol=0, atol=1e-5)


def test_batched_generation_past_block_size_and_eos_in_a_padded_batch(tiny_model):
    prompts = [[3, 1, 4], [1, 5, 9, 2, 6, 5, 3, 5]]
    idx, mask = pad_left(prompts, pad_id=0)
    batched = tiny_model.generate(idx, 30, temperature=0.0, attention_mask=mask)  # 38 > 32
    assert batched.shape == (2, 38)
    T = idx.size(1)
    # within block_size the rows equal one-by-one generation
    alone = tiny_model.generate(torch.tensor([prompts[1]]), 24, temperature=0.0)
    assert torch.equal(batched[1, T - 8 : T + 24], alone[0])
    eos = int(batched[0, T + 2])
    with_eos = tiny_model.generate(idx, 30, temperature=0.0, attention_mask=mask, eos_id=eos)
    first = int((batched[0, T:] == eos).nonzero()[0])
    assert torch.equal(with_eos[0, T : T + first + 1], batched[0, T : T + first + 1])
    assert (with_eos[0, T + first :] == eos).all()
