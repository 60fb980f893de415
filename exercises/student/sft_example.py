"""Exercise: the SFT label mask (lesson 4, section "One demonstration, tokenised"; lecture: "Sintonización supervisada").

Replace the TODO with your code, then:
    python -m exercises grade sft_example
    python -m exercises run --student sft_example -- lessons/04_supervised_fine_tuning.py
"""


def sft_example(prompt_ids: list[int], response_ids: list[int], ignore_index: int = -100):
    """(input_ids, labels) for one demonstration: the model reads everything, learns the response.

        input_ids: p_1 … p_m  r_1 … r_n
        labels:    -100 … -100  r_1 … r_n      (ignore_index at the m prompt positions)

    Returns two new lists of length m + n. Do not shift the labels: the loss does that
    (the logits at position t are scored on the label at t + 1).

    TODO: two lines.
    """
    raise NotImplementedError("exercise sft_example: mask the prompt's labels with -100")
