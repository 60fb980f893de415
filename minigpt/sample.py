"""Generate text from a checkpoint: "generando de forma iterativa el siguiente token".

Run:
    python -m minigpt.sample --ckpt runs/pretrain --prompt "ROMEO:" --max-new-tokens 300
    python -m minigpt.sample --ckpt runs/pretrain --prompt "The" --temperature 0   # greedy
    python -m minigpt.sample --ckpt runs/pretrain --prompt "The" --top-k 10 --top-p 0.9 --seed 7

--ckpt takes a run folder or a ckpt.pt file of a language model: pre-trained, SFT or DPO
(a reward model's checkpoint is refused by name). Generation stops early at the EOS token.
"""

from dataclasses import dataclass, field

import torch

from minigpt.checkpoint import load_model
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.errors import InputError
from minigpt.device import pick_device


@dataclass
class SampleConfig:
    ckpt: str = field(default="runs/pretrain", metadata={"help": "run folder or ckpt.pt file"})
    prompt: str = field(default="\n", metadata={"help": "text to continue"})
    max_new_tokens: int = field(default=200, metadata={"help": "tokens to generate"})
    temperature: float = field(default=1.0, metadata={"help": "0: greedy; <1 sharper, >1 flatter"})
    top_k: int = field(default=0, metadata={"help": "sample among the k most likely tokens; 0: all"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass; 1: no filtering"})
    num_samples: int = field(default=1, metadata={"help": "how many samples"})
    seed: int = field(default=1337, metadata={"help": "random seed"})
    cache: bool = field(default=True, metadata={"help": "use the KV cache"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or mps"})


def main(argv=None):
    parser = parser_from_dataclass(SampleConfig, __doc__)
    config = SampleConfig(**given_flags(parser.parse_args(argv)))
    if config.temperature < 0 or config.top_k < 0 or not 0 < config.top_p <= 1 \
            or config.max_new_tokens < 1 or config.num_samples < 1:
        raise InputError("expected --temperature >= 0, --top-k >= 0 (0: off), 0 < --top-p <= 1, "
                         "--max-new-tokens >= 1 and --num-samples >= 1")
    device = pick_device(config.device)
    model, tokenizer, _ = load_model(config.ckpt, device, needed_by="minigpt.sample")
    try:
        prompt_ids = tokenizer.encode(config.prompt)
    except ValueError as error:
        raise InputError(f"--prompt: {error}") from None
    if not prompt_ids:
        raise InputError("--prompt: give at least one character to continue")
    generator = torch.Generator(device=device).manual_seed(config.seed)
    idx = torch.tensor([prompt_ids], device=device)  # (1, T)
    texts = []
    for number in range(config.num_samples):
        out = model.generate(
            idx, config.max_new_tokens, temperature=config.temperature,
            top_k=config.top_k or None, top_p=config.top_p if config.top_p < 1.0 else None,
            eos_id=tokenizer.eos_id, use_cache=config.cache, generator=generator,
        )  # (1, T + new)
        text = tokenizer.decode(out[0].tolist())
        texts.append(text)
        if config.num_samples > 1:
            print(f"--- sample {number + 1} ---")
        print(text)
    return texts


if __name__ == "__main__":
    run_main(main)
