"""minigpt: a GPT-2-style language model written out by hand, with everything needed to
pre-train it, generate from it and score sequences with it.

    from minigpt import GPT, GPTConfig, get_batch_logps
"""

from minigpt.checkpoint import load_checkpoint, load_model, save_checkpoint
from minigpt.data import TokenData, read_text_file
from minigpt.errors import InputError
from minigpt.logps import get_batch_logps
from minigpt.model import GPT, GPTConfig, KVCache, pad_left
from minigpt.optim import learning_rate_at, make_optimizer
from minigpt.sampling import sample_next_token, top_k_filter, top_p_filter
from minigpt.tokenizer import ByteTokenizer, CharTokenizer, Tokenizer, load_tokenizer

__all__ = [
    "GPT", "GPTConfig", "KVCache", "pad_left", "get_batch_logps",
    "sample_next_token", "top_k_filter", "top_p_filter",
    "Tokenizer", "CharTokenizer", "ByteTokenizer", "load_tokenizer",
    "TokenData", "read_text_file",
    "make_optimizer", "learning_rate_at",
    "save_checkpoint", "load_checkpoint", "load_model", "InputError",
]
