"""Padding-free batches: several sequences packed into one row compute what each computes alone.

align.data.pack_sequences lays the sequences out; the model's attention_mask keeps them
apart (minigpt.model.attention_allowed) and positions_in_sequence restarts their
positions. The checks compare against each sequence run alone, unpadded, in float64.
"""

import random

import pytest
import torch

from align.data import collate, pack_sequences
from align.dpo import concatenated_forward
from minigpt.model import GPT, DiagonalBlocks, GPTConfig, KVCache, attention_allowed, positions_in_sequence


def random_examples(n, seed=0, vocab=20, longest=17):
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        length = rng.randint(2, longest)
        ids = [rng.randrange(vocab) for _ in range(length)]
        prompt = rng.randint(1, length - 1)
        examples.append((ids, [-100] * prompt + ids[prompt:]))
    return examples


def test_packing_keeps_every_token_once_in_rows_no_longer_than_the_longest():
    examples = random_examples(30)
    packed = pack_sequences(examples, pad_id=99)
    R, L = packed.input_ids.shape
    lengths = [len(ids) for ids, _ in examples]
    assert L == max(lengths)
    assert R < len(examples)  # fewer rows than pad_right's one per sequence
    assert R >= -(-sum(lengths) // L)  # and no fewer than the tokens need
    # every sequence comes back, in its order, from the flat positions `where` names
    ids, labels = collate(examples, pad_id=99)
    unpacked_ids = packed.unpack(packed.input_ids.unsqueeze(-1)).squeeze(-1)
    unpacked_labels = packed.unpack(packed.labels.unsqueeze(-1)).squeeze(-1)
    for n, length in enumerate(lengths):
        assert torch.equal(unpacked_ids[n, :length], ids[n, :length])
        assert torch.equal(unpacked_labels[n, :length], labels[n, :length])
    # each real token is used by exactly one sequence; the rest of the rows is padding
    used = torch.cat([packed.where[n, :length] for n, length in enumerate(lengths)])
    assert used.unique().numel() == sum(lengths)
    assert int((packed.attention_mask > 0).sum()) == sum(lengths)
    assert torch.equal(packed.input_ids[packed.attention_mask == 0], torch.full(((packed.attention_mask == 0).sum(),), 99))
    assert bool((packed.labels[packed.attention_mask == 0] == -100).all())
    # positions restart at 0 for every sequence
    for n, length in enumerate(lengths):
        flat_positions = packed.positions.reshape(-1)[packed.where[n, :length]]
        assert torch.equal(flat_positions, torch.arange(length))


def test_positions_in_sequence_count_within_each_run():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 2, 2, 2], [1, 1, 1, 1, 1]])
    assert positions_in_sequence(mask)[0, 2:].tolist() == [0, 1, 2]
    assert positions_in_sequence(mask)[1].tolist() == [0, 1, 0, 1, 2]
    assert positions_in_sequence(mask)[2].tolist() == [0, 1, 2, 3, 4]


def test_a_token_of_a_packed_row_sees_exactly_the_earlier_tokens_of_its_sequence():
    mask = torch.tensor([[1, 1, 2, 2, 2, 0]])
    allowed = attention_allowed(0, 6, mask)[0, 0]  # (T, T_k)
    brute = torch.zeros(6, 6, dtype=torch.bool)
    for i in range(6):
        for j in range(6):
            same = mask[0, i] == mask[0, j] or mask[0, i] == 0  # padding (never used) sees every real key
            brute[i, j] = (j <= i and same and mask[0, j] != 0) or i == j
    assert torch.equal(allowed, brute)


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_packed_logits_equal_each_sequence_alone(attention):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                          attention=attention)).double().eval()
    examples = random_examples(9, seed=1)
    packed = pack_sequences(examples, pad_id=0)
    logits, _ = model(packed.input_ids, attention_mask=packed.attention_mask, position_ids=packed.positions)
    per_sequence = packed.unpack(logits)  # (N, L, vocab)
    for n, (ids, _) in enumerate(examples):
        alone, _ = model(torch.tensor([ids]))  # (1, len, vocab): the sequence by itself
        assert torch.allclose(per_sequence[n, : len(ids)], alone[0], atol=1e-10, rtol=0)


def test_dpo_log_probs_packed_equal_padded():
    torch.manual_seed(0)
    examples = random_examples(12, seed=2)
    pairs = [{"chosen": examples[2 * i], "rejected": examples[2 * i + 1]} for i in range(6)]
    packed_model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                                 attention="sdpa")).double()
    chosen, rejected = concatenated_forward(packed_model, pairs, pad_id=0, device="cpu")
    # the padded layout, by hand: every sequence alone in a padded row
    ids, labels = collate([p["chosen"] for p in pairs] + [p["rejected"] for p in pairs], pad_id=0)
    logits, _ = packed_model(ids)
    from minigpt.logps import get_batch_logps
    expected = get_batch_logps(logits, labels)
    assert torch.allclose(torch.cat([chosen, rejected]), expected, atol=1e-10, rtol=0)
    # the gradient flows through the unpacking to the same weights
    (chosen.sum() - rejected.sum()).backward()
    assert packed_model.wte.weight.grad.abs().sum() > 0


def test_rl_token_log_probs_packed_equal_each_sequence_alone():
    from align.rollouts import policy_logprobs
    from minigpt.logps import token_logps

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                          attention="sdpa")).double()
    examples = random_examples(10, seed=3)
    ids, labels = collate(examples, pad_id=0)  # (N, T) right-padded, as align.rollouts lays them out
    ids, labels = torch.cat([ids, torch.zeros(10, 3, dtype=torch.long)], 1), \
        torch.cat([labels, torch.full((10, 3), -100)], 1)  # wider than the longest: a minibatch
    per_token, mask = policy_logprobs(model, ids, labels, "cpu")  # (N, T-1)
    assert per_token.shape == mask.shape == (10, ids.size(1) - 1)
    for n, (sequence, target) in enumerate(examples):
        alone, _ = model(torch.tensor([sequence]))
        expected, counted = token_logps(alone, torch.tensor([target]))  # (1, len-1)
        width = len(sequence) - 1
        assert torch.equal(mask[n, :width], counted[0]) and not mask[n, width:].any()
        assert torch.allclose(per_token[n, :width], expected[0], atol=1e-10, rtol=0)
        assert (per_token[n, width:] == 0).all()
    per_token.sum().backward()  # the gradient reaches the weights through the unpacking
    assert model.wte.weight.grad.abs().sum() > 0


def test_lsh_refuses_packed_rows():
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=1, n_head=2, n_embd=16,
                          attention="lsh", lsh_bucket_size=4))
    with pytest.raises(ValueError, match="packed"):
        model(torch.zeros(1, 8, dtype=torch.long), attention_mask=torch.tensor([[1, 1, 1, 2, 2, 2, 2, 2]]))


def test_sft_loss_packed_equals_padded():
    from align.sft import response_loss
    torch.manual_seed(0)
    examples = random_examples(10, seed=3)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                          attention="sdpa")).double()
    packed_loss = response_loss(model, examples, pad_id=0, device="cpu")
    # by hand: the mean of −log p over every response token, each sequence alone
    total, count = 0.0, 0
    for ids, labels in examples:
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]))
        logp = torch.log_softmax(logits[0, :-1], dim=-1)  # (len-1, vocab)
        for t, label in enumerate(labels[1:]):
            if label != -100:
                total -= float(logp[t, label])
                count += 1
    assert abs(float(packed_loss.detach()) - total / count) < 1e-10


@pytest.mark.parametrize("reads_likelihood", [False, True])
def test_reward_scores_packed_equal_each_sequence_alone(reads_likelihood):
    from align.reward import RewardModel, score_sequences
    torch.manual_seed(0)
    model = RewardModel(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                                  attention="sdpa"), reads_likelihood).double()
    examples = random_examples(11, seed=4)
    scores = score_sequences(model, examples, pad_id=0, device="cpu")
    for n, (ids, labels) in enumerate(examples):
        alone = model(torch.tensor([ids]), torch.tensor([len(ids)]), labels=torch.tensor([labels]))
        assert abs(float(scores[n].detach()) - float(alone.detach())) < 1e-10


def random_pairs(n, seed=0, vocab=20):
    """Pairs whose answers share a prompt and sometimes their first answer tokens too."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt = [rng.randrange(vocab) for _ in range(rng.randint(1, 8))]
        common = [rng.randrange(vocab) for _ in range(rng.choice([0, 0, 2]))]
        answers = [common + [rng.randrange(vocab) for _ in range(rng.randint(1, 9))] for _ in range(2)]
        chosen, rejected = ((prompt + a, [-100] * len(prompt) + a) for a in answers)
        pairs.append({"chosen": chosen, "rejected": rejected})
    return pairs


def test_pair_packing_stores_each_shared_prefix_once_and_gives_every_sequence_back():
    from align.data import pack_pairs, shared_prefix
    pairs = random_pairs(12, seed=5)
    packed = pack_pairs(pairs, pad_id=99)
    sequences = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    needed = sum(len(p["chosen"][0]) + len(p["rejected"][0]) - shared_prefix(p["chosen"][0], p["rejected"][0])
                 for p in pairs)
    assert int((packed.input_ids != 99).sum()) == needed < sum(len(ids) for ids, _ in sequences)
    assert packed.input_ids.shape == (1, needed)  # one row, no padding
    assert isinstance(packed.attention_mask, DiagonalBlocks)
    assert packed.attention_mask.lengths == [len(p["chosen"][0]) + len(p["rejected"][0])
                                             - shared_prefix(p["chosen"][0], p["rejected"][0]) for p in pairs]
    ids, labels = collate(sequences, pad_id=99)
    unpacked = packed.unpack(packed.input_ids.unsqueeze(-1)).squeeze(-1)
    for n, (sequence, _) in enumerate(sequences):
        assert torch.equal(unpacked[n, : len(sequence)], ids[n, : len(sequence)])
        flat_positions = packed.positions.reshape(-1)[packed.where[n, : len(sequence)]]
        assert torch.equal(flat_positions, torch.arange(len(sequence)))


@pytest.mark.parametrize("attention,reads_likelihood",
                         [("manual", False), ("sdpa", False), ("sdpa", True)])
def test_pair_packed_log_probs_and_rewards_equal_each_sequence_alone(attention, reads_likelihood):
    from align.reward import RewardModel, score_pairs
    from minigpt.logps import get_batch_logps
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=20, block_size=64, n_layer=2, n_head=2, n_embd=16, attention=attention)
    pairs = random_pairs(10, seed=6)
    policy = GPT(config).double()
    chosen, rejected = concatenated_forward(policy, pairs, pad_id=0, device="cpu")
    reward_model = RewardModel(config, reads_likelihood).double()
    r_chosen, r_rejected = score_pairs(reward_model, pairs, pad_id=0, device="cpu")
    with torch.no_grad():
        for n, pair in enumerate(pairs):
            for side, logp, reward in (("chosen", chosen, r_chosen), ("rejected", rejected, r_rejected)):
                ids, labels = pair[side]
                logits, _ = policy(torch.tensor([ids]))
                alone = get_batch_logps(logits, torch.tensor([labels]))
                assert abs(float(logp[n]) - float(alone)) < 1e-10
                alone_reward = reward_model(torch.tensor([ids]), torch.tensor([len(ids)]),
                                            labels=torch.tensor([labels]))
                assert abs(float(reward[n]) - float(alone_reward)) < 1e-10
    (chosen.sum() - rejected.sum()).backward()  # gradients flow through the shared prefix
    assert policy.wte.weight.grad.abs().sum() > 0


def random_blocks(lengths, seed):
    """Boolean (L, L) masks of any pattern (queries that see later keys, or only themselves)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(n, n, generator=generator) < 0.5 for n in lengths]


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_diagonal_blocks_attend_as_the_whole_rows_mask_says(attention):
    """DiagonalBlocks computes attention block by block; the same row with its whole
    (1, T, T) mask written out (the blocks on the diagonal, False elsewhere) computes it
    at once. Same logits and gradients, float64; and a block never reads another's tokens."""
    torch.manual_seed(0)
    lengths = [3, 7, 1, 5]
    blocks = DiagonalBlocks(random_blocks(lengths, seed=1))
    dense = blocks.dense()  # (1, 16, 16), checked against the blocks one entry at a time
    starts = [0, 3, 10, 11]
    for i in range(16):
        for j in range(16):
            b = max(n for n, start in enumerate(starts) if start <= i)
            inside = starts[b] <= j < starts[b] + lengths[b]
            assert bool(dense[0, i, j]) == (inside and bool(blocks.allowed[b][i - starts[b], j - starts[b]]))
    config = GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16, attention=attention)
    weights = GPT(config).double().state_dict()
    ids = torch.arange(16).remainder(20).view(1, 16)
    positions = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 0, 0, 1, 2, 3, 4]])
    results = []  # (logits, gradients) with each mask
    for mask in (blocks, dense):
        model = GPT(config).double()
        model.load_state_dict(weights)
        logits, _ = model(ids, attention_mask=mask, position_ids=positions)
        logits.pow(2).sum().backward()
        results.append((logits.detach(), gradients(model)))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-12, rtol=0)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-10, rtol=0)
    # changing the tokens of block 1 changes its logits only
    model.eval()
    changed = ids.clone()
    changed[0, 3:10] = 19 - changed[0, 3:10]
    with torch.no_grad():
        before, _ = model(ids, attention_mask=blocks, position_ids=positions)
        after, _ = model(changed, attention_mask=blocks, position_ids=positions)
    moved = (before - after).abs().amax(dim=-1)[0] > 0  # (16,)
    assert moved[3:10].all() and not moved[:3].any() and not moved[10:].any()


def test_diagonal_blocks_refuse_what_they_cannot_mask():
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=1, n_head=2, n_embd=16))
    blocks = DiagonalBlocks(random_blocks([3, 5], seed=2))
    positions = torch.arange(8).view(1, 8)
    model(torch.zeros(1, 8, dtype=torch.long), attention_mask=blocks, position_ids=positions)  # fine
    for ids, kwargs, problem in (
            (torch.zeros(2, 8, dtype=torch.long), {"position_ids": positions.repeat(2, 1)}, "got 2 rows"),
            (torch.zeros(1, 8, dtype=torch.long), {}, "got no position_ids"),
            (torch.zeros(1, 9, dtype=torch.long), {"position_ids": torch.arange(9).view(1, 9)},
             "got blocks of 8 tokens in all for a row of 9"),
            (torch.zeros(1, 8, dtype=torch.long), {"position_ids": positions, "kv_cache": KVCache(1)},
             "got a KV cache")):
        with pytest.raises(ValueError, match=f"DiagonalBlocks masks one row.*{problem}"):
            model(ids, attention_mask=blocks, **kwargs)
    lsh = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=1, n_head=2, n_embd=16,
                        attention="lsh", lsh_bucket_size=4))
    with pytest.raises(ValueError, match="got attention 'lsh'"):
        lsh(torch.zeros(1, 8, dtype=torch.long), attention_mask=blocks, position_ids=positions)
    with pytest.raises(ValueError, match="block 1 must be a square"):
        DiagonalBlocks([torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 3, dtype=torch.bool)])


def gradients(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


@pytest.mark.parametrize("stage", ["sft", "reward", "reward reading likelihood", "dpo"])
def test_packed_batches_give_the_gradients_of_padded_ones(stage):
    """The training steps see the same function: the gradients of each stage's loss agree
    with those of the padded layout (float64), so packing changes no update."""
    from align.losses import bradley_terry_loss
    from align.reward import RewardModel, score_pairs
    from align.sft import response_loss
    from minigpt.logps import get_batch_logps

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=20, block_size=64, n_layer=2, n_head=2, n_embd=16, attention="sdpa")
    reward = stage.startswith("reward")
    model = (RewardModel(config, stage == "reward reading likelihood") if reward
             else GPT(config)).double()
    pairs = random_pairs(8, seed=7)
    sequences = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    ids, labels = collate(sequences, pad_id=0)

    def packed_loss():
        if stage == "sft":
            return response_loss(model, sequences, 0, "cpu")
        if reward:
            return bradley_terry_loss(*score_pairs(model, pairs, 0, "cpu"))
        chosen, rejected = concatenated_forward(model, pairs, 0, "cpu")
        return -(chosen - rejected).sigmoid().log().mean()

    def padded_loss():
        if stage == "sft":
            _, loss = model(ids[:, :-1], targets=labels[:, 1:])
            return loss
        if reward:
            rewards = model(ids, torch.tensor([len(s) for s, _ in sequences]), labels=labels)
            return bradley_terry_loss(rewards[:8], rewards[8:])
        logps = get_batch_logps(model(ids)[0], labels)
        return -(logps[:8] - logps[8:]).sigmoid().log().mean()

    packed_loss().backward()
    packed = gradients(model).clone()
    model.zero_grad(set_to_none=True)
    padded_loss().backward()
    assert torch.allclose(packed, gradients(model), atol=1e-10, rtol=0)
    assert packed.abs().max() > 0
