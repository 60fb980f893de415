"""The one prompt template, used by SFT, the reward model, DPO and generation alike.

    User: {prompt}
    Assistant: {response}<|eos|>

The prompt part ends with the separator "\\nAssistant: "; the response follows it and ends
with the EOS token, which is a special token id (added when tokenising), never text.
The pre-training corpus writes its dialogues in the same format (without EOS), so a
pre-trained model already knows where an answer starts.

Example:
    >>> format_prompt("What is 2+2?")
    'User: What is 2+2?\\nAssistant: '
    >>> format_prompt("What is 2+2?") + "4"
    'User: What is 2+2?\\nAssistant: 4'
"""

USER_PREFIX = "User: "
SEPARATOR = "\nAssistant: "


def format_prompt(prompt: str) -> str:
    """The text the model reads before it answers."""
    return f"{USER_PREFIX}{prompt}{SEPARATOR}"


def format_dialogue(prompt: str, response: str) -> str:
    """Prompt and response as one text (the EOS token is added separately, as an id)."""
    return format_prompt(prompt) + response
