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
from minigpt.model import GPT, GPTConfig, attention_allowed, positions_in_sequence


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
    assert int((packed.segments > 0).sum()) == sum(lengths)
    assert torch.equal(packed.input_ids[packed.segments == 0], torch.full(((packed.segments == 0).sum(),), 99))
    assert bool((packed.labels[packed.segments == 0] == -100).all())
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
            brute[i, j] = (j <= i and mask[0, i] == mask[0, j] and mask[0, j] != 0) or i == j
    assert torch.equal(allowed, brute)


@pytest.mark.parametrize("attention", ["manual", "sdpa"])
def test_packed_logits_equal_each_sequence_alone(attention):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                          attention=attention)).double().eval()
    examples = random_examples(9, seed=1)
    packed = pack_sequences(examples, pad_id=0)
    logits, _ = model(packed.input_ids, attention_mask=packed.segments, position_ids=packed.positions)
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
    assert abs(float(packed_loss) - total / count) < 1e-10


def test_reward_scores_packed_equal_each_sequence_alone():
    from align.reward import RewardModel, score_sequences
    torch.manual_seed(0)
    model = RewardModel(GPTConfig(vocab_size=20, block_size=32, n_layer=2, n_head=2, n_embd=16,
                                  attention="sdpa")).double()
    sequences = [ids for ids, _ in random_examples(11, seed=4)]
    scores = score_sequences(model, sequences, pad_id=0, device="cpu")
    for n, ids in enumerate(sequences):
        alone = model(torch.tensor([ids]), torch.tensor([len(ids)]))
        assert abs(float(scores[n]) - float(alone)) < 1e-10
