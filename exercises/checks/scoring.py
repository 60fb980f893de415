"""Checks for scoring a sequence (lesson 10) and the SFT label mask (lesson 4).

get_batch_logps is checked against a loop that scores one position at a time in float64;
sft_example against the layout the lecture draws: the prompt masked with -100, the
response kept.
"""

import math

import torch

from exercises.grading import check, expect, expect_close
from exercises.switch import swapped
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import ByteTokenizer


# ------------------------------------------------------------------------- get_batch_logps
def brute_force_logps(logits, labels, average=False, ignore=-100):
    """One position at a time, in float64: Σ_t log softmax(logits[t])[labels[t+1]]."""
    results = []
    for b in range(logits.size(0)):
        total, count = 0.0, 0
        for t in range(logits.size(1) - 1):
            target = int(labels[b, t + 1])
            if target == ignore:
                continue
            row = logits[b, t].double()
            total += (row[target] - torch.logsumexp(row, dim=0)).item()
            count += 1
        results.append(total / count if average and count else (0.0 if average else total))
    return torch.tensor(results, dtype=torch.float64)


def random_batch(seed=0, B=4, T=9, V=11):
    """float64 logits (B, T, V) and labels (B, T) with -100 here and there; row 0 all -100."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, V, (B, T), generator=generator)
    labels[torch.rand(B, T, generator=generator) < 0.3] = -100  # prompt and padding
    labels[0, :] = -100  # a row with nothing to score
    return logits, labels


@check("get_batch_logps", "shape", "returns one number per row: (B,)", section="The function")
def logps_shape(get_batch_logps):
    logits, labels = random_batch()
    out = get_batch_logps(logits, labels)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (logits.size(0),),
           f"expected a tensor of shape (B,) = ({logits.size(0)},), got "
           f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}; "
           "sum over the sequence dimension")


@check("get_batch_logps", "values", "shift: the logits at t score the label at t + 1 (no masking)",
       section="Step 1 — shift")
def logps_shift(get_batch_logps):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 5, dtype=torch.float64, generator=generator)
    labels = torch.randint(0, 5, (2, 6), generator=generator)
    expect_close(get_batch_logps(logits, labels), brute_force_logps(logits, labels),
                 "log-probs with every label counted", atol=1e-10)


@check("get_batch_logps", "values", "mask: labels equal to -100 do not count", section="Step 2 — mask")
def logps_mask(get_batch_logps):
    for seed in range(4):
        logits, labels = random_batch(seed)
        expect_close(get_batch_logps(logits, labels), brute_force_logps(logits, labels),
                     f"sum of log-probs, batch {seed} (with -100 labels)", atol=1e-10)


@check("get_batch_logps", "values", "average_log_prob=True: the mean over the counted tokens",
       section="Step 4 — sum over the response")
def logps_average(get_batch_logps):
    for seed in range(3):
        logits, labels = random_batch(seed)
        expect_close(get_batch_logps(logits, labels, average_log_prob=True),
                     brute_force_logps(logits, labels, average=True),
                     f"mean log-prob, batch {seed}", atol=1e-10)


@check("get_batch_logps", "property", "a row with every label masked gives 0, not NaN (sum and average)",
       section="Step 4 — sum over the response")
def logps_empty_row(get_batch_logps):
    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[1, 3] = 2
    for average in (False, True):
        out = get_batch_logps(logits, labels, average_log_prob=average)
        expect(bool(torch.isfinite(out).all()) and out[0].item() == 0.0,
               f"average_log_prob={average}: a row with no counted token gave {out[0].item()}, expected 0 "
               "(for the average, divide by the count clamped to at least 1)")


@check("get_batch_logps", "property", "a −inf logit at a masked position gives no NaN",
       section="Step 4 — sum over the response")
def logps_minus_infinity_masked(get_batch_logps):
    logits = torch.zeros(1, 4, 5)
    logits[0, 0, 0] = float("-inf")  # the model rules out token 0 after position 0, which is not scored
    labels = torch.tensor([[-100, -100, 3, 1]])  # position 0 predicts a masked label
    out = get_batch_logps(logits, labels)
    expect(bool(torch.isfinite(out).all()) and abs(out.item() - 2 * math.log(0.2)) < 1e-6,
           f"gave {out.tolist()}, expected [{2 * math.log(0.2):.6f}]: a masked position may gather a −inf "
           "log-prob, and 0 · (−inf) is NaN; keep the counted positions with torch.where(mask, logps, 0) "
           "instead of multiplying by the mask")


@check("get_batch_logps", "property", "logits and labels are left unchanged", section="Step 2 — mask")
def logps_no_mutation(get_batch_logps):
    logits, labels = random_batch(5)
    before = logits.clone(), labels.clone()
    get_batch_logps(logits, labels)
    get_batch_logps(logits, labels, average_log_prob=True)
    expect(torch.equal(logits, before[0]), "the logits were changed in place")
    expect(torch.equal(labels, before[1]), "the labels were changed in place (the -100s replaced?): "
           "work on a copy, labels[:, 1:].clone()")


@check("get_batch_logps", "property", "label_pad_token_id chooses which label is masked",
       section="Step 2 — mask")
def logps_pad_id(get_batch_logps):
    logits, labels = random_batch(6)
    relabelled = labels.masked_fill(labels == -100, 99)
    expect_close(get_batch_logps(logits, relabelled, label_pad_token_id=99),
                 brute_force_logps(logits, labels), "log-probs with label_pad_token_id=99", atol=1e-10)


@check("get_batch_logps", "gradient", "the gradient reaches the logits, and none the masked positions",
       section="Step 3 — gather from log_softmax")
def logps_gradient(get_batch_logps):
    logits, labels = random_batch(7)
    leaf = logits.clone().requires_grad_(True)
    get_batch_logps(leaf, labels).sum().backward()
    expect(leaf.grad is not None, "no gradient reached the logits: is something detached?")
    expect(leaf.grad[0].abs().sum().item() == 0, "the all-masked row 0 got a gradient")
    # d/dlogits of log softmax(z)[y] is onehot(y) − softmax(z), at each counted position
    expected = torch.zeros_like(logits)
    for b in range(logits.size(0)):
        for t in range(logits.size(1) - 1):
            if labels[b, t + 1] != -100:
                expected[b, t] = -torch.softmax(logits[b, t], dim=-1)
                expected[b, t, labels[b, t + 1]] += 1
    expect_close(leaf.grad, expected, "∂(Σ log-probs)/∂logits", atol=1e-10)


@check("get_batch_logps", "model", "on a GPT: the sum of log p(next token) taken one step at a time",
       section="Step 4 — sum over the response")
def logps_on_model(get_batch_logps):
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=9, n_layer=1, n_head=2, n_embd=8)).double().eval()
    idx = torch.tensor([[1, 4, 2, 8, 5, 7, 3]])
    labels = idx.clone()
    labels[0, :3] = -100  # the prompt: 3 tokens; the response: 4
    expected = sum(math.log(model.next_token_probs(idx[:, :t])[0, idx[0, t]].item()) for t in range(3, 7))
    with torch.no_grad():
        logits, _ = model(idx)
    expect_close(get_batch_logps(logits, labels), torch.tensor([expected]),
                 "log π(y|x) of a 4-token response", atol=1e-6)


# ----------------------------------------------------------------------------- sft_example
def labels_layout(prompt_ids, response_ids, ignore=-100):
    return [ignore] * len(prompt_ids) + list(response_ids)


@check("sft_example", "shape", "returns two lists, input_ids and labels, of length len(prompt) + len(response)")
def sft_shape(sft_example):
    out = sft_example([5, 6, 7], [8, 9])
    expect(isinstance(out, tuple) and len(out) == 2, f"expected a tuple (input_ids, labels), got {out!r}")
    input_ids, labels = out
    expect(isinstance(input_ids, list) and isinstance(labels, list),
           f"expected two lists of ints, got {type(input_ids).__name__} and {type(labels).__name__}")
    expect(len(input_ids) == len(labels) == 5, f"lengths {len(input_ids)} and {len(labels)}, expected 5 "
           "and 5: one label per input token (the loss does the shift, not you)")


@check("sft_example", "values", "input_ids are the prompt's tokens followed by the response's")
def sft_inputs(sft_example):
    input_ids, _ = sft_example([10, 11, 12, 13], [20, 21, 2])
    expect(input_ids == [10, 11, 12, 13, 20, 21, 2], f"input_ids {input_ids}, expected the model to read "
           "the whole sequence [10, 11, 12, 13, 20, 21, 2]")


@check("sft_example", "values", "labels are -100 on every prompt position and the response's tokens after")
def sft_labels(sft_example):
    for prompt, response in [([10, 11, 12, 13], [20, 21, 2]), ([1], [7]), ([3, 4, 5], [9, 9, 9, 9, 2])]:
        expected = labels_layout(prompt, response)
        _, labels = sft_example(list(prompt), list(response))  # copies: the message shows the inputs
        expect(labels == expected, f"prompt {prompt}, response {response}: labels {labels}, expected "
               f"{expected}" + (" (labels must not be shifted: the loss shifts them)"
                                if labels == expected[1:] + [-100] else ""))


@check("sft_example", "property", "ignore_index sets the masking value, and the inputs are left unchanged")
def sft_ignore_index(sft_example):
    prompt, response = [1, 2], [3, 4]
    _, labels = sft_example(prompt, response, ignore_index=-1)
    expect(labels == [-1, -1, 3, 4], f"with ignore_index=-1 labels are {labels}, expected [-1, -1, 3, 4]")
    expect(prompt == [1, 2] and response == [3, 4], "the prompt or response list was changed in place")


@check("sft_example", "model", "the SFT data pipeline (tokenize_example) masks the prompt with your function",
       section="A batch: right padding, also −100")
def sft_in_pipeline(sft_example):
    from align.data import TruncationStats, prompt_tokens, tokenize_example
    tokenizer = ByteTokenizer()
    with swapped("sft_example", sft_example):
        input_ids, labels = tokenize_example(tokenizer, "hello", "hi there", 64, 48, TruncationStats())
    m = len(prompt_tokens(tokenizer, "hello"))
    expect(labels[:m] == [-100] * m and labels[m:] == input_ids[m:] and input_ids[-1] == tokenizer.eos_id,
           f"for 'hello' → 'hi there' the {m} prompt tokens must be -100 and the response tokens (ending "
           f"with EOS) kept; got labels {labels}")
