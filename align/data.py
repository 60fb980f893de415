"""Alignment data: reading and checking JSONL, tokenising with the template, -100 labels.

Two formats, as TRL reads them:
    SFT demonstrations   {"prompt": "...", "completion": "..."}        one JSON object a line
    preference pairs     {"prompt": "...", "chosen": "...", "rejected": "..."}
A preference row written by `align.preferences` also holds "token_ids" (the prompt's and
both answers' tokens as π_ref sampled them, with the tokenizer's fingerprint); a stage
with the same tokenizer trains on those tokens, not on the text encoded again.
Preference pairs also load from the lecture's dict of lists (`dpo_dataset_dict`).

Tokenising a (prompt, response) for training:
    input_ids = tokens(format_prompt(prompt)) + tokens(response) + [EOS]
    labels    = [-100] * len(prompt tokens)   + tokens(response) + [EOS]
so the loss and the log-probabilities count the response and its EOS only. Padding is
added on the right with labels -100 (never masked by comparing with the pad id: the pad
id may equal the EOS id, and the EOS target must be trained).

Too long? The prompt keeps its end (at most max_prompt_length tokens), then the response
is cut to fit max_length. Every truncated or dropped row is counted in a TruncationStats
and reported, never silent.

Example:
    >>> tok = ByteTokenizer()
    >>> stats = TruncationStats()
    >>> ids, labels = tokenize_example(tok, "hi", "yo", 64, 32, stats)
    >>> tok.decode(ids), labels[-3:] == [ord("y"), ord("o"), tok.eos_id]
    ('User: hi\\nAssistant: yo<|eos|>', True)
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass

import torch

from align.common import require
from toyworld.template import SEPARATOR, format_prompt
from minigpt.checkpoint import write_atomically
from minigpt.errors import InputError
from minigpt.config import GPTConfig
from minigpt.model import DiagonalBlocks

SFT_KEYS = ("prompt", "completion")
PREFERENCE_KEYS = ("prompt", "chosen", "rejected")
TOKEN_ID_KEYS = ("prompt", "chosen", "rejected")  # inside a row's optional "token_ids"


def tokenizer_fingerprint(tokenizer) -> str:
    """A short name for exactly this tokenizer (kind and vocabulary): token ids saved under
    one fingerprint are only read back by a tokenizer with the same one."""
    digest = hashlib.sha256(json.dumps(tokenizer.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"{tokenizer.kind}-{tokenizer.vocab_size}-{digest[:12]}"


# ----------------------------------------------------------------------------- reading
def read_jsonl(path, keys) -> list[dict]:
    """Read a JSONL file whose rows each hold the given string keys, non-empty.

    Errors name the file and line: bad JSON, a row that is not an object, a missing key,
    a value that is not a string, an empty text.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such data file")
    rows = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        rows.append(check_row(row, keys, f"{path}, line {number}"))
    if not rows:
        raise InputError(f"{path}: no rows; expected one JSON object a line with keys {list(keys)}")
    return rows


def check_row(row, keys, where: str) -> dict:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object with keys {list(keys)}, "
                         f"got {type(row).__name__}")
    for key in keys:
        if key not in row:
            raise InputError(f"{where}: missing key {key!r} (expected keys {list(keys)}, "
                             f"found {sorted(row)})")
        if not isinstance(row[key], str):
            raise InputError(f"{where}: {key!r} must be a string, got {type(row[key]).__name__}")
        if not row[key].strip():
            raise InputError(f"{where}: {key!r} is empty")
    checked = {key: row[key] for key in keys}
    if "token_ids" in row:  # the tokens a preference pair was sampled as (align.preferences)
        checked["token_ids"] = check_token_ids(row["token_ids"], where)
    return checked


def check_token_ids(value, where: str) -> dict:
    """{"tokenizer": fingerprint, "prompt": [ids], "chosen": [ids], "rejected": [ids]}."""
    expected = f"'token_ids' must be an object with 'tokenizer' and lists of token ids {list(TOKEN_ID_KEYS)}"
    if not isinstance(value, dict) or not isinstance(value.get("tokenizer"), str):
        raise InputError(f"{where}: {expected}")
    for key in TOKEN_ID_KEYS:
        ids = value.get(key)
        if not isinstance(ids, list) or not ids or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise InputError(f"{where}: 'token_ids'.{key}: expected a non-empty list of token ids "
                             f"(integers >= 0)")
    return {key: value[key] for key in ("tokenizer", *TOKEN_ID_KEYS)}


def rows_from_dict_of_lists(columns: dict, keys=PREFERENCE_KEYS, source="dict") -> list[dict]:
    """The lecture's dict of lists ({"prompt": [...], "chosen": [...], ...}) as rows."""
    missing = [key for key in keys if key not in columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {missing}; expected {list(keys)}")
    lengths = {key: len(columns[key]) for key in keys}
    if len(set(lengths.values())) != 1:
        raise InputError(f"{source}: columns have different lengths {lengths}")
    return [check_row({key: columns[key][i] for key in keys}, keys, f"{source}, row {i}")
            for i in range(lengths[keys[0]])]


def write_jsonl(path, rows: list[dict]):
    """Write rows as JSON lines, atomically."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_atomically(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- tokenising
@dataclass
class TruncationStats:
    """How many rows were shortened or dropped to fit max_length."""

    rows: int = 0
    prompt_truncated: int = 0
    response_truncated: int = 0
    dropped: int = 0
    from_token_ids: int = 0  # pairs read as their sampled token ids (the rest from text)

    def summary(self, what: str = "rows") -> str:
        ids = f", {self.from_token_ids} read as their sampled token ids" if self.from_token_ids else ""
        return (f"{self.rows} {what}: {self.prompt_truncated} with the prompt's start cut, "
                f"{self.response_truncated} with the response's end cut, {self.dropped} dropped "
                f"(no room for any response token){ids}")


def answer_takes_the_space(tokenizer) -> bool:
    """Does this tokenizer write a space and the word after it as one token (a byte-level
    BPE, as GPT-2's: " I", " Kyoto")? Then the template's last space belongs to the answer.

    The prompt ends in "Assistant: ". In running text, the pre-training corpus included,
    such a tokenizer reads "Assistant: Kyoto is" as "Assistant", ":", " Kyoto", " is": the
    space opens the answer's first token. Encoding the prompt alone would end it in a lone
    " " that running text never has, and the answer would then start with "Kyoto" (no
    space), a split the pre-trained model never saw. So for these tokenizers the prompt's
    tokens stop before that space and the answer's tokens start with it; the char and byte
    tokenizers split anywhere and keep the space in the prompt.
    """
    try:
        separator, joined = tokenizer.encode(SEPARATOR), tokenizer.encode(SEPARATOR + "I")
    except ValueError:  # a char vocabulary without "I": it splits between characters anyway
        return False
    return joined[: len(separator)] != separator


def prompt_tokens(tokenizer, prompt: str) -> list[int]:
    """The prompt's tokens as the model reads them before it answers (and before it
    generates): the template, without its last space when the answer takes it."""
    text = format_prompt(prompt)
    if answer_takes_the_space(tokenizer):
        text = text.removesuffix(" ")
    return tokenizer.encode(text)


def response_tokens(tokenizer, prompt: str, response: str) -> list[int]:
    """The response's tokens plus EOS, as the model meets them after the prompt's tokens:
    the tokens of prompt + response that follow `prompt_tokens` (for a BPE that joins a
    space to the next word, the first one carries the template's space: " Kyoto"). In the
    rare case where the two do not split there (a response that starts with a character
    the separator's last token would merge with), the response is encoded on its own.
    """
    ids_prompt = prompt_tokens(tokenizer, prompt)
    ids_full = tokenizer.encode(format_prompt(prompt) + response)
    if ids_full[: len(ids_prompt)] == ids_prompt:
        return ids_full[len(ids_prompt):] + [tokenizer.eos_id]
    space = " " if answer_takes_the_space(tokenizer) else ""
    return tokenizer.encode(space + response) + [tokenizer.eos_id]


def truncate_to_fit(prompt_ids, responses, max_length, max_prompt_length, stats: TruncationStats):
    """Cut the prompt's start, then the responses' ends, to fit max_length; None to drop."""
    stats.rows += 1
    longest = max(len(r) for r in responses)
    if len(prompt_ids) + longest > max_length and len(prompt_ids) > max_prompt_length:
        prompt_ids = prompt_ids[-max_prompt_length:]  # keep the end: the question and separator
        stats.prompt_truncated += 1
    room = max_length - len(prompt_ids)
    if room < 1:
        stats.dropped += 1
        return None
    if longest > room:
        stats.response_truncated += 1
        responses = [r[:room] for r in responses]
    return prompt_ids, responses


def sft_example(prompt_ids: list[int], response_ids: list[int], ignore_index: int = -100):
    """The SFT prompt mask: (input_ids, labels) for one prompt and its response.

    The model reads the whole sequence, input_ids = prompt + response; the loss counts only
    the response, so labels repeat the response's tokens and put ignore_index (-100, which
    F.cross_entropy and get_batch_logps skip) at every prompt position:

        input_ids: p_1 … p_m  r_1 … r_n
        labels:    -100 … -100  r_1 … r_n

    The labels are not shifted here: the loss shifts them (position t predicts token t+1).
    """
    # >>> solution sft_example
    input_ids = list(prompt_ids) + list(response_ids)
    labels = [ignore_index] * len(prompt_ids) + list(response_ids)
    return input_ids, labels
    # <<< solution


def tokenize_example(tokenizer, prompt, response, max_length, max_prompt_length, stats):
    """(input_ids, labels) for one demonstration, or None if it had to be dropped."""
    try:
        fitted = truncate_to_fit(prompt_tokens(tokenizer, prompt), [response_tokens(tokenizer, prompt, response)],
                     max_length, max_prompt_length, stats)
    except ValueError as error:  # a character outside a char tokenizer's vocabulary
        raise InputError(f"prompt {prompt[:40]!r}: {error}") from None
    if fitted is None:
        return None
    prompt_ids, (response_ids,) = fitted
    return sft_example(prompt_ids, response_ids)


def tokenize_pair(tokenizer, row, max_length, max_prompt_length, stats):
    """Chosen and rejected sequences of one preference pair, sharing one (cut) prompt.

    A row with "token_ids" from this very tokenizer is read as those tokens, exactly as
    π_ref sampled them (the EOS only where it was sampled); any other row is encoded from
    its text with the template, and an EOS is appended to each response.
    """
    saved = row.get("token_ids")
    if saved is not None and saved["tokenizer"] == tokenizer_fingerprint(tokenizer):
        if max(max(saved[key]) for key in TOKEN_ID_KEYS) >= tokenizer.vocab_size:
            raise InputError(f"prompt {row['prompt'][:40]!r}: a token id is outside the "
                             f"vocabulary of {tokenizer.vocab_size}")
        prompt_ids, responses = list(saved["prompt"]), [list(saved["chosen"]), list(saved["rejected"])]
        stats.from_token_ids += 1
    else:
        try:
            prompt_ids = prompt_tokens(tokenizer, row["prompt"])
            responses = [response_tokens(tokenizer, row["prompt"], row[k]) for k in ("chosen", "rejected")]
        except ValueError as error:
            raise InputError(f"prompt {row['prompt'][:40]!r}: {error}") from None
    fitted = truncate_to_fit(prompt_ids, responses, max_length, max_prompt_length, stats)
    if fitted is None:
        return None
    prompt_ids, (chosen, rejected) = fitted
    return {"chosen": sft_example(prompt_ids, chosen), "rejected": sft_example(prompt_ids, rejected)}


def pad_right(sequences: list[list[int]], value: int, length: int | None = None) -> torch.Tensor:
    """Stack token lists into (B, T_max), padding on the right with value."""
    length = length or max(len(s) for s in sequences)
    out = torch.full((len(sequences), length), value, dtype=torch.long)
    for row, tokens in enumerate(sequences):
        out[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    return out


@dataclass
class PackedBatch:
    """Several sequences packed into fewer rows, none split, with no attention across them.

    input_ids, labels, positions: (R, L). pack_sequences: L = the longest sequence's
    length; pack_pairs: R = 1 and L = all the pairs' tokens.
    attention_mask: for the model. pack_sequences: (R, L), 0 for padding and k ≥ 1 for
    the row's k-th sequence (a token attends to earlier tokens of its own sequence only);
    pack_pairs: one row (R = 1, no padding) and a minigpt.model.DiagonalBlocks, one block
    per pair, the keys each of its tokens may see.
    positions: each sequence counts its own positions from 0, as alone in a row.
    where: (N, T) for the N sequences in their order, T the longest one's length:
    where[n, t] is the flat index (row · L + column) of sequence n's t-th token (its last
    token's, past its end: so where[:, -1] is where each sequence ends).
    """
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor | DiagonalBlocks
    positions: torch.Tensor
    where: torch.Tensor

    def unpack(self, per_token: torch.Tensor) -> torch.Tensor:
        """(R, L, ...) computed on the packed rows -> (N, T, ...), T = where.size(1): one row
        per sequence, as pad_right would have laid them out (what stands past a sequence's
        end is filler)."""
        flat = per_token.reshape(-1, *per_token.shape[2:])  # (R·L, ...)
        return flat[self.where.to(flat.device)]  # (N, T, ...)


def can_pack(model) -> bool:
    """Whether a model (or DDP(model)) takes packed rows: a minigpt GPT (or a model built on
    one, with its GPTConfig as `config`) with any attention but LSH's, which reads a mask as
    real/padding only (so its batches stay right-padded). A module without a GPTConfig
    may take token ids alone: it gets padded rows."""
    config = getattr(getattr(model, "module", model), "config", None)
    return isinstance(config, GPTConfig) and config.attention != "lsh"


def first_fit_decreasing(lengths: list[int]) -> tuple[list[list[int]], int]:
    """Pack items of these lengths into as few rows as the longest item's length L: each
    item, longest first, goes into the first row with room for it. Returns (the items'
    indices in each row, L)."""
    L = max(lengths)
    rows: list[list[int]] = []
    room: list[int] = []
    for n in sorted(range(len(lengths)), key=lambda n: -lengths[n]):
        row = next((r for r in range(len(rows)) if room[r] >= lengths[n]), None)
        if row is None:
            rows.append([]), room.append(L)
            row = len(rows) - 1
        rows[row].append(n)
        room[row] -= lengths[n]
    return rows, L


def pack_sequences(examples, pad_id: int) -> PackedBatch:
    """[(input_ids, labels), ...] -> a PackedBatch: padding-free batching.

    Rows are as long as the longest sequence, filled first-fit decreasing. Padded rows
    would spend the model's work on padding: for the DPO pairs of examples/pairs.jsonl,
    over a third of it at 8 pairs a batch (a quarter once packed).
    """
    lengths = [len(ids) for ids, _ in examples]
    rows, L = first_fit_decreasing(lengths)
    shape = (len(rows), L)
    input_ids, labels = torch.full(shape, pad_id), torch.full(shape, -100)
    segments, positions = torch.zeros(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.long)
    where_rows = [None] * len(examples)  # (N, L): each sequence's tokens in the (R·L) layout
    for r, members in enumerate(rows):
        ids_row, labels_row, segments_row, positions_row = [], [], [], []
        for k, n in enumerate(members, start=1):
            ids, target = examples[n]
            start = len(ids_row)
            ids_row += ids
            labels_row += target
            segments_row += [k] * len(ids)
            positions_row += range(len(ids))
            flat = list(range(r * L + start, r * L + start + len(ids)))
            where_rows[n] = flat + flat[-1:] * (L - len(ids))  # its last token again over padding
        for tensor, values in ((input_ids, ids_row), (labels, labels_row),
                               (segments, segments_row), (positions, positions_row)):
            tensor[r, : len(values)] = torch.tensor(values, dtype=torch.long)
    where = torch.tensor(where_rows, dtype=torch.long)
    return PackedBatch(input_ids, labels, segments, positions, where)


def shared_prefix(a: list[int], b: list[int]) -> int:
    """How many first tokens two token lists have in common."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def pack_pairs(pairs, pad_id: int) -> PackedBatch:
    """Preference pairs {"chosen": (ids, labels), "rejected": ...} -> a PackedBatch of their
    2B sequences (chosen ones, then rejected ones), each pair's common prefix stored once.

    A pair's chosen and rejected answers follow the same prompt, and under causal
    attention the prefix they share (the prompt, and any first answer tokens they agree
    on) has the same hidden states in both: one copy, then both rests, as one block

        [ shared prefix | rest of chosen | rest of rejected ]

    where the rest of the rejected answer sees the prefix and itself, never the chosen
    rest, and both rests count their positions on from the end of the prefix. The blocks
    stand one after the other in a single row with no padding at all, and the attention
    is computed block by block (minigpt.model.DiagonalBlocks). For examples/pairs.jsonl
    that computes a third fewer tokens than pack_sequences (prompts are about half of
    each sequence), and at 8 pairs a batch a quarter fewer than filling rows as long as
    the longest pair, first-fit (mostly one pair a row, the rest padding). pad_id is
    never written (there is no padding): it is there to call it as pack_sequences.
    """
    units = []  # (prefix length, chosen, rejected) per pair
    for pair in pairs:
        chosen, rejected = pair["chosen"], pair["rejected"]
        units.append((shared_prefix(chosen[0], rejected[0]), chosen, rejected))
    ids_row, labels_row, positions_row, blocks = [], [], [], []
    longest = max(len(p[side][0]) for p in pairs for side in ("chosen", "rejected"))
    where_rows = [None] * (2 * len(pairs))  # (2B, longest) as pad_right lays them out
    for n, (P, chosen, rejected) in enumerate(units):
        start = len(ids_row)  # the block's first column
        length = len(chosen[0]) + len(rejected[0]) - P
        allowed = torch.zeros((length, length), dtype=torch.bool)  # (query, key) in the block
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        ids_row += chosen[0][:P]  # the shared prefix, once
        labels_row += chosen[1][:P]
        positions_row += range(P)
        allowed[:P, :P] = causal[:P, :P]
        end = P  # within the block
        for sequence, (ids, target) in ((n, chosen), (len(pairs) + n, rejected)):
            rest = len(ids) - P  # this answer's rest: block columns end … end + rest − 1
            ids_row += ids[P:]
            labels_row += target[P:]
            positions_row += range(P, len(ids))
            allowed[end:end + rest, :P] = True  # it sees the prefix
            allowed[end:end + rest, end:end + rest] = causal[:rest, :rest]
            # the sequence's tokens in the row: prefix, then its rest, then its last one
            # again over the padding pad_right would add
            flat = [*range(start, start + P), *range(start + end, start + end + rest)]
            where_rows[sequence] = flat + flat[-1:] * (longest - len(flat))
            end += rest
        blocks.append(allowed)
    input_ids, labels, positions = (torch.tensor([row], dtype=torch.long)  # (1, T) each
                                    for row in (ids_row, labels_row, positions_row))
    where = torch.tensor(where_rows, dtype=torch.long)
    return PackedBatch(input_ids, labels, DiagonalBlocks(blocks), positions, where)


def collate(examples, pad_id: int, length: int | None = None):
    """[(input_ids, labels), ...] -> input_ids (B, T), labels (B, T) with -100 on padding."""
    return (pad_right([ids for ids, _ in examples], pad_id, length),
            pad_right([labels for _, labels in examples], -100, length))


def tokenize_pairs(rows, tokenizer, config, what):
    """Tokenised pairs that fit config.max_length (each keeps its row), and the counts."""
    stats = TruncationStats()
    pairs = []
    for row in rows:
        pair = tokenize_pair(tokenizer, row, config.max_length, config.max_prompt_length, stats)
        if pair is not None:
            pairs.append({**pair, "row": row})
    print(f"{what}: " + stats.summary("pairs"))
    return pairs, stats


def load_pairs(config, tokenizer, stage: str):
    """Training pairs (config.data), held-out pairs (config.eval_data, optional), truncation counts."""
    pairs, stats = tokenize_pairs(read_jsonl(require(config.data, "--data"), PREFERENCE_KEYS), tokenizer, config,
                                  f"{stage} training pairs")
    eval_pairs, eval_stats = [], TruncationStats()
    if config.eval_data:
        eval_pairs, eval_stats = tokenize_pairs(read_jsonl(config.eval_data, PREFERENCE_KEYS),
                                                tokenizer, config, f"{stage} held-out pairs")
    if not pairs:
        raise InputError(f"{config.data}: no pair fits --max-length {config.max_length}")
    return pairs, eval_pairs, {"train": asdict(stats), "held_out": asdict(eval_stats)}
