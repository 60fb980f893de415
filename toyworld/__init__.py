"""toyworld: the small text world in which alignment can be measured.

Its facts (cities and their countries, small sums, things to explain to a child, the
assistant's name and taste), its prompts with a train/held-out split by content, the one
dialogue template, and the text generated from them: the pre-training corpus and the
mixed-quality SFT demonstrations. It imports nothing from the rest of the project, as
`gridworld` does not: `minigpt.train` reads its corpus as the built-in text, and `align`
scores answers in it with the gold reward r* (`align.gold`).

    from toyworld.world import heldout_prompts, parse_prompt, pretraining_corpus
    from toyworld.template import format_prompt
"""
