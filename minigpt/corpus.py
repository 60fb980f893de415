"""The built-in pre-training corpus: simple English made by a seeded generator.

Nothing is downloaded: `builtin_corpus()` writes short facts, sums and two-line
dialogues, the same text for the same seed. It is small enough to learn in a few
minutes on a laptop CPU, and regular enough that a trained model's samples are
visibly better than an untrained one's. Train on any other text with --data FILE.

Example:
    >>> text = builtin_corpus(n_chars=2000)
    >>> len(text) >= 2000 and text == builtin_corpus(n_chars=2000)
    True
"""

import random

CITIES = {
    "Shanghai": "China", "Paris": "France", "Lima": "Peru", "Tokyo": "Japan",
    "Madrid": "Spain", "Cairo": "Egypt", "Bogota": "Colombia", "Rome": "Italy",
    "Quito": "Ecuador", "Berlin": "Germany", "Santiago": "Chile", "Toronto": "Canada",
}
ANIMALS = {"cat": "meows", "dog": "barks", "cow": "moos", "duck": "quacks", "lion": "roars"}
COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "sun": "yellow", "coal": "black"}
NAMES = ["Mary", "Ana", "Luis", "Sam", "Rosa", "Tom", "Lucia", "Omar"]
GREETINGS = [("hello", "hi, nice to meet you."), ("how are you?", "I am fine, thank you."),
             ("good morning", "good morning to you too."), ("thank you", "you are welcome.")]


def _sentence(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        city = rng.choice(list(CITIES))
        return f"{city} is a city in {CITIES[city]}."
    if kind == 1:
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        return f"{a} + {b} = {a + b}."
    if kind == 2:
        animal = rng.choice(list(ANIMALS))
        return f"The {animal} {ANIMALS[animal]}."
    if kind == 3:
        thing = rng.choice(list(COLOURS))
        return f"The {thing} is {COLOURS[thing]}."
    if kind == 4:
        name = rng.choice(NAMES)
        return f"- What is your name?\n- My name is {name}."
    greeting, answer = rng.choice(GREETINGS)
    return f"- {greeting.capitalize()}\n- {answer.capitalize()}"


def builtin_corpus(n_chars: int = 300_000, seed: int = 0) -> str:
    """At least n_chars characters of simple English, one sentence or dialogue per line."""
    rng = random.Random(seed)
    lines, length = [], 0
    while length < n_chars:
        line = _sentence(rng)
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"
