"""Side by side with transformers: the same weights generating in `GPT2LMHeadModel.generate`
and in `GPT.generate`, in one process, the implementations taking turns.

    python -m minigpt.bench --compare transformers              # batch 1 and 8, 512 new tokens
    python -m minigpt.bench --compare transformers --compare-batches 1,8,64 --repeats 5

Optional: it needs `pip install transformers safetensors` (the gpt2 extra); the project
never depends on them, and without them this mode stops with that one line.

A machine's speed drifts by tens of percent from one minute to the next, so figures taken
one after the other, or on another day, are not comparable. Here every repeat runs each
implementation once, in turn, on the same prompts, and each keeps its fastest repeat (the
one least disturbed by anything else on the machine: minigpt.bench.fastest_tokens_per_s). The model is the bench's (the default
GPTConfig unless told otherwise), written once by `GPT.save_pretrained` and read back by
transformers with its two attentions, "eager" (the formula by hand) and "sdpa" (the fused
kernel), against this project's "manual" and "sdpa". Greedy generation must give the same
tokens in all four; a row that does not is reported, never hidden. Sampling draws at
temperature 1 without top-k or top-p on both sides (transformers' generation config
otherwise keeps its top_k = 50), each from its own random numbers.
"""

import tempfile

import torch

from minigpt.bench import fastest_tokens_per_s
from minigpt.errors import InputError
from minigpt.model import GPT, GPTConfig


def import_transformers():
    """transformers, or a one-line InputError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise InputError("--compare transformers needs the optional packages transformers and "
                         "safetensors: pip install transformers safetensors") from None
    return transformers


def parse_batches(text: str) -> list[int]:
    """'1,8' -> [1, 8]; a one-line InputError naming --compare-batches otherwise."""
    try:
        batches = [int(word) for word in text.split(",") if word.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise InputError(f"--compare-batches {text!r}: expected batch sizes ≥ 1 separated by "
                         f"commas, e.g. 1,8")
    return batches


def compare_with_transformers(model_config: GPTConfig, batches: list[int], prompt_tokens: int,
                              new_tokens: int, repeats: int, seed: int = 0) -> list[dict]:
    """Generation tokens/s of transformers (eager, sdpa) and of this project (manual, sdpa)
    on the same weights, greedy and sampled, at each batch size; one dict per row, with
    `same_tokens` (greedy: all four gave the same tokens) and `ratio` (the project's
    faster attention over transformers' faster one). Prints a table as it goes."""
    transformers = import_transformers()
    torch.manual_seed(seed)
    ours = {kind: GPT(GPTConfig(**{**model_config.to_dict(), "attention": kind})).eval()
            for kind in ("manual", "sdpa")}
    ours["sdpa"].load_state_dict(ours["manual"].state_dict())
    with tempfile.TemporaryDirectory() as folder:
        ours["manual"].save_pretrained(folder)
        theirs = {kind: transformers.GPT2LMHeadModel.from_pretrained(
            folder, attn_implementation=kind).eval() for kind in ("eager", "sdpa")}

    def hf_run(model, prompt, sampled):
        settings = transformers.GenerationConfig(
            max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=sampled,
            top_k=0 if sampled else None, top_p=1.0, temperature=1.0, pad_token_id=0,
            eos_token_id=None, bos_token_id=None)
        with torch.no_grad():
            return model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                  generation_config=settings)

    def our_run(model, prompt, sampled):
        return model.generate(prompt, new_tokens, temperature=1.0 if sampled else 0.0)

    print(f"\ngeneration side by side with transformers {transformers.__version__}: "
          f"{prompt_tokens}-token prompts + {new_tokens} new tokens, fastest of {repeats} "
          f"repeats taken in turn (tokens/s)")
    print(f"  {'batch':>5} {'mode':<8} {'HF eager':>9} {'HF sdpa':>9} {'ours manual':>12} "
          f"{'ours sdpa':>10} {'ours / HF':>10}  same greedy tokens")
    rows = []
    for batch in batches:
        prompt = torch.randint(model_config.vocab_size, (batch, prompt_tokens))
        for mode in ("greedy", "sampled"):
            sampled = mode == "sampled"
            runs = {"hf_eager": lambda: hf_run(theirs["eager"], prompt, sampled),
                    "hf_sdpa": lambda: hf_run(theirs["sdpa"], prompt, sampled),
                    "ours_manual": lambda: our_run(ours["manual"], prompt, sampled),
                    "ours_sdpa": lambda: our_run(ours["sdpa"], prompt, sampled)}
            same = None
            if not sampled:
                outputs = [run() for run in runs.values()]
                same = all(torch.equal(out, outputs[0]) for out in outputs)
            speed = fastest_tokens_per_s(runs, batch * new_tokens, repeats)
            ratio = (max(speed["ours_manual"], speed["ours_sdpa"])
                     / max(speed["hf_eager"], speed["hf_sdpa"]))
            rows.append({"batch": batch, "mode": mode, **speed, "ratio": ratio,
                         "same_tokens": same})
            print(f"  {batch:>5} {mode:<8} {speed['hf_eager']:>9,.0f} {speed['hf_sdpa']:>9,.0f} "
                  f"{speed['ours_manual']:>12,.0f} {speed['ours_sdpa']:>10,.0f} {ratio:>9.2f}x  "
                  f"{'-' if same is None else same}")
    return rows
