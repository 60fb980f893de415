"""The small example files in examples/, so that each stage runs alone, without the pipeline.

    python -m align.examples                 # writes them again into examples/ (they ship)
    python -m align.examples --out-dir mine  # or elsewhere

Every file is generated from the toy world (toyworld.world) with a fixed seed, so a test
can check that the shipped files are exactly what this module writes:

    corpus.txt           100,000 characters of the pre-training corpus (minigpt.train --data)
    sft.jsonl            400 demonstrations {"prompt", "completion"}, of mixed quality as in
    sft_eval.jsonl        the pipeline; 40 more, for --eval-data
    prompts.jsonl        50 training prompts {"prompt"} (align.preferences --prompt-file)
    pairs.jsonl          400 preference pairs {"prompt", "chosen", "rejected", ...} of the
    pairs_heldout.jsonl   world's own answers, labelled by Bradley-Terry on r*
                          (align.preferences.pairs_from_world); 100 on held-out prompts

These are text rows, the format TRL reads; the pipeline's own pairs also keep the token ids
π_ref sampled. Your own data in the same format works the same way.
"""

import os
from dataclasses import dataclass, field

from align.data import write_jsonl
from align.preferences import pairs_from_world
from minigpt.checkpoint import write_atomically
from minigpt.cli import given_flags, parser_from_dataclass, run_main
from minigpt.errors import InputError
from minigpt.ownership import refuse_others_run_folder
from toyworld.world import heldout_prompts, pretraining_corpus, sft_demonstrations, train_prompts

SEED = 0
CORPUS_CHARS = 100_000


def example_files() -> dict:
    """{file name: its rows (a list of dicts) or its text}, the same on every machine."""
    demonstrations = sft_demonstrations(440, SEED)
    return {
        "corpus.txt": pretraining_corpus(CORPUS_CHARS, SEED)[:CORPUS_CHARS],
        "sft.jsonl": demonstrations[:400],
        "sft_eval.jsonl": demonstrations[400:],
        "prompts.jsonl": [{"prompt": prompt} for prompt in train_prompts(50, SEED)],
        "pairs.jsonl": first_pairs(train_prompts(400, SEED), 400),
        "pairs_heldout.jsonl": first_pairs(heldout_prompts(100, SEED + 1), 100),
    }


def first_pairs(prompts, n) -> list[dict]:
    """The first n labelled pairs of the world's answers to the prompts (two per prompt)."""
    rows = pairs_from_world(prompts, SEED)
    if len(rows) < n:
        raise ValueError(f"only {len(rows)} pairs from {len(prompts)} prompts, expected {n}")
    return rows[:n]


def write_examples(out_dir) -> list[str]:
    """Write every example file into out_dir; returns their paths."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out-dir {out_dir}: is a file, expected a folder")
    refuse_others_run_folder(out_dir, "--out-dir", is_folder=True)  # no other command's run folder
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, content in example_files().items():
        path = os.path.join(out_dir, name)
        if isinstance(content, str):
            write_atomically(path, content.encode("utf-8"))
        else:
            write_jsonl(path, content)
        written.append(path)
    return written


@dataclass
class ExamplesConfig:
    out_dir: str = field(default="examples", metadata={"help": "folder to write the files into"})


def main(argv=None):
    parser = parser_from_dataclass(ExamplesConfig, __doc__)
    config = ExamplesConfig(**given_flags(parser.parse_args(argv)))
    for path in write_examples(config.out_dir):
        print(path)


if __name__ == "__main__":
    run_main(main)
