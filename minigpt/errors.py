"""The one error type for problems with the user's input (files, flags, checkpoints).

Commands catch it and print its message as one line, `error: ...`, instead of a
traceback: the message names the file or flag and says what was expected.
"""


class InputError(ValueError):
    """Bad input from the user: a missing, empty, corrupted or mismatched file, or a bad flag."""
