"""align: supervised fine-tuning, a Bradley-Terry reward model and DPO on a toy world whose
gold reward is known, so that alignment can be measured.

    from align import bradley_terry_loss, dpo_loss, gold_reward
    python -m align.pipeline            # the lecture end to end

The stage modules (align.sft, align.reward, align.dpo, align.pipeline) are imported by
name, not here, so that `python -m align.sft` runs them cleanly.
"""

from align.data import read_jsonl, rows_from_dict_of_lists, tokenize_example, tokenize_pair
from align.gold import gold_reward, preference_probability
from align.losses import bradley_terry_loss, dpo_loss
from toyworld.template import format_dialogue, format_prompt
from toyworld.world import LECTURE_DPO_DATASET, LECTURE_PROMPTS

__all__ = [
    "bradley_terry_loss", "dpo_loss", "gold_reward", "preference_probability",
    "format_prompt", "format_dialogue", "read_jsonl", "rows_from_dict_of_lists",
    "tokenize_example", "tokenize_pair", "LECTURE_PROMPTS", "LECTURE_DPO_DATASET",
]
