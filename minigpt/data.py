"""Pre-training data: one long text, tokenised, split, and cut into random blocks.

Pre-training is next-token prediction on plain text: a block of block_size + 1
consecutive tokens gives an input x = tokens[i : i+T] and a target y = tokens[i+1 : i+T+1]
(each position's target is the token that follows it).

Example:
    >>> from minigpt.tokenizer import CharTokenizer
    >>> data = TokenData.from_text("hello world " * 100, CharTokenizer.from_text("helo wrd"))
    >>> x, y = data.get_batch("train", batch_size=2, block_size=8)
    >>> x.shape, bool((x[:, 1:] == y[:, :-1]).all())
    (torch.Size([2, 8]), True)
"""

import os

import torch

from minigpt.errors import InputError


def read_text_file(path) -> str:
    """Read a UTF-8 text file; a missing, empty or non-UTF-8 file gets a clear error."""
    path = str(path)
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, expected a UTF-8 text file")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such data file")
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) == 0:
        raise InputError(f"{path}: the data file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(
            f"{path}: not UTF-8 text (byte {error.start}, line {line}: {raw[error.start:error.start + 1]!r}); "
            f"convert it to UTF-8 first"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: the data file holds only white space")
    return text


class TokenData:
    """Token ids of a corpus, split into a training part and a validation part."""

    def __init__(self, train: torch.Tensor, val: torch.Tensor, source: str = "<text>"):
        self.train, self.val, self.source = train, val, source

    @classmethod
    def from_text(cls, text, tokenizer, val_fraction=0.1, source="<text>"):
        """Encode text and split it: the first (1 - val_fraction) for training, the rest for val."""
        if not 0.0 < val_fraction < 1.0:
            raise InputError(f"val_fraction must be in (0, 1), got {val_fraction}")
        try:
            ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
        except ValueError as error:
            raise InputError(f"{source}: {error}") from None
        n_train = int(len(ids) * (1.0 - val_fraction))
        return cls(ids[:n_train], ids[n_train:], source)

    def check_block_size(self, block_size: int):
        """Both splits need at least block_size + 1 tokens to cut one (x, y) block."""
        for split in ("train", "val"):
            n = len(getattr(self, split))
            if n < block_size + 1:
                raise InputError(
                    f"{self.source}: the {split} split has {n} tokens, fewer than one block "
                    f"(block_size + 1 = {block_size + 1}); use a longer file or a smaller "
                    f"--block-size"
                )

    def get_batch(self, split, batch_size, block_size, generator=None, device="cpu", rank=0,
                  world_size=1):
        """Random contiguous blocks: x (B, T) and y (B, T), y shifted by one token.

        Of world_size ranks (minigpt.distributed), each draws the same world_size·B starts
        and keeps its own B, rank·B … rank·B + B − 1: together, one process's batch of
        world_size·B."""
        ids = self.train if split == "train" else self.val
        starts = torch.randint(len(ids) - block_size, (world_size * batch_size,),
                               generator=generator)
        starts = starts[rank * batch_size : (rank + 1) * batch_size]  # (B,)
        x = torch.stack([ids[i : i + block_size] for i in starts.tolist()])  # (B, T)
        y = torch.stack([ids[i + 1 : i + 1 + block_size] for i in starts.tolist()])  # (B, T)
        return x.to(device), y.to(device)
