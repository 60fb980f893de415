"""The gold reward r*(x, y) of the toy world: "a good answer", written as a program.

"Modelo de recompensa para los LLMs" says nobody can write down a universally accepted
reward for text. In the toy world of `toyworld.world` we can, and that is what lets us
*measure* alignment, as the DPO paper measured it with a sentiment classifier. r*(x, y)
is the sum of six components, one per goal of "Alineación de IA":

    component     value                                              goal
    correctness   +2 right, -2 wrong, 0 nothing checkable            answer correctly
    offensive     -3 if any offensive phrase (insult, dismissal)     no offensive language
    evasive       -1 if the answer dodges ("I don't know")           be helpful
    fluency       -3 × the share of unknown (made-up) words           plain, real words
    style         +1 for one clean sentence (see `style_score`)      a particular style
    length        -1 per 20 characters beyond 120, at most -3        no rambling

correctness: an answer is right when it states the world's answer and nothing that
contradicts it, wrong when it states any other answer (another country, another number,
"does not exist", another name, another topic's key word...), and 0 when it states none.
The question "which is the best programming language?" is a matter of taste: its
correctness is the mean of `LANGUAGE_SCORES` (Python +2, Java +1, Javascript -1, C++ -2)
over the languages the answer names. A prompt outside the world gets correctness 0, so
only style and manners count there.

fluency: a policy pushed far from π_ref can drift into made-up words ("Athens does not
nofnnnnd"), which states nothing wrong and so would otherwise cost nothing. Known words
are those the world writes and everyday English (`world_vocabulary`), so the world's own
answers, good or bad, lose nothing here. (The phrase lists are simple: "I am fine, not
bad." reads as unwell, because "bad" is on the unwell list.)

So r* lies in [-12, 3]: a good answer scores 3, a wrong one -1, a dodge 0, a rude one 0
or less. Margins of a few units make Bradley-Terry labels mostly, not always, right:
P(y_w > y_l) = σ(r*(x, y_w) - r*(x, y_l)), e.g. σ(3 - 0) ≈ 0.95. r* never raises: model
samples may be empty, garbage or very long.

Example:
    >>> gold_reward("Where is Lima?", "Lima is a city in Peru.")
    3.0
    >>> gold_components("Where is Lima?", "Lima is in Japan, you idiot.")
    {'correctness': -2.0, 'offensive': -3.0, 'evasive': 0.0, 'fluency': 0.0, 'style': 1.0, 'length': 0.0}
    >>> round(preference_probability("What is 2+2?", "4", "5"), 3)  # σ(2 - (-2))
    0.982
"""

import functools
import math
import re

from toyworld.world import (ASSISTANT_NAME, COUNTRIES, LANGUAGE_SCORES, NONSENSE, OTHER_NAMES,
                         TOPICS, Question, parse_prompt, pretraining_corpus)

CORRECT, WRONG = 2.0, -2.0
OFFENSIVE_PENALTY = -3.0
EVASIVE_PENALTY = -1.0
FLUENCY_PENALTY = -3.0  # times the share of unknown words
STYLE_BONUS = 1.0
LENGTH_LIMIT, CHARS_PER_POINT, MAX_LENGTH_PENALTY = 120, 20, 3.0

# Phrases are matched on lower-case text without apostrophes ("What's" -> "whats").
OFFENSIVE = ["stupid", "idiot", "idiots", "dumb", "shut up", "loser", "go away",
             "leave me alone", "whats it to you", "nobody cares", "who cares"]
EVASIVE = ["i dont know", "no idea", "ask someone else", "why do you want to know",
           "look it up", "i am not sure", "im not sure", "never heard of", "too hard to explain",
           "very complicated", "it depends"]
NO_SUCH_PLACE = ["does not exist", "doesnt exist", "is not real"]
NO_NAME = ["dont have a name", "do not have a name", "have no name"]
FRIENDLY = ["hi", "hello", "hey", "nice to meet you", "good morning", "good evening",
            "welcome", "how can i help"]
FAREWELL = ["goodbye", "bye", "good night"]
WELL = ["fine", "good", "well", "great", "ok"]
UNWELL = ["not fine", "not good", "not well", "not great", "not ok", "sad", "terrible", "bad",
          "awful"]


def _phrases(phrases) -> re.Pattern:
    """A regex for any of the phrases as whole words (also "c++", which \\b cannot do)."""
    alternatives = "|".join(re.escape(p.lower()) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})(?![a-z0-9])")


_OFFENSIVE, _EVASIVE = _phrases(OFFENSIVE), _phrases(EVASIVE)
_COUNTRY, _NO_SUCH_PLACE = _phrases(COUNTRIES), _phrases(NO_SUCH_PLACE)
_NAME, _NO_NAME = _phrases([ASSISTANT_NAME, *OTHER_NAMES]), _phrases(NO_NAME)
_LANGUAGE = _phrases(LANGUAGE_SCORES)
_FRIENDLY, _FAREWELL = _phrases(FRIENDLY), _phrases(FAREWELL)
_WELL, _UNWELL = _phrases(WELL), _phrases(UNWELL)
_NONSENSE = [thing.split()[-1] for thing in NONSENSE]  # "a famous restaurant" -> "restaurant"
# topic -> (its key words, the words of a wrong explanation: other topics' keys, nonsense)
_TOPIC_RES = {topic: (_phrases(keys),
                      _phrases([k for other, (_, ks) in TOPICS.items() if other != topic
                                for k in ks] + _NONSENSE))
              for topic, (_, keys) in TOPICS.items()}
_NUMBER = re.compile(r"[0-9]+")
_WORD = re.compile(r"[a-z]+")


def _normalise(text: str) -> str:
    return text.lower().replace("'", "").replace("\u2019", "")


def _right_and_wrong(q: Question, text: str) -> tuple[bool, bool]:
    """Does the normalised answer state the right answer? Does it state a wrong one?"""
    if q.kind == "city":
        countries = set(_COUNTRY.findall(text))
        return (q.answer.lower() in countries,
                bool(countries - {q.answer.lower()}) or bool(_NO_SUCH_PLACE.search(text)))
    if q.kind == "arithmetic":
        # Numbers other than the operands are claims about the sum ("7+5 is 12": 12).
        # Very long digit strings are wrong claims too (and int() of them may raise).
        numbers = {int(d) if len(d) <= 9 else -1 for d in _NUMBER.findall(text)}
        claims = numbers - set(q.operands)
        return int(q.answer) in claims, bool(claims - {int(q.answer)})
    if q.kind == "explain":
        keys, wrong_words = _TOPIC_RES[q.subject]
        return bool(keys.search(text)), bool(wrong_words.search(text))
    if q.kind == "name":
        names = set(_NAME.findall(text))
        return (ASSISTANT_NAME.lower() in names,
                bool(names - {ASSISTANT_NAME.lower()}) or bool(_NO_NAME.search(text)))
    if q.kind == "greeting":
        return bool(_FRIENDLY.search(text)), bool(_FAREWELL.search(text))
    if q.kind == "wellbeing":  # "not fine" is unwell, so remove the unwell phrases first
        return bool(_WELL.search(_UNWELL.sub(" ", text))), bool(_UNWELL.search(text))
    return False, False


def correctness_score(prompt: str, response: str) -> float:
    """+2 right, -2 wrong (also when it hedges with a wrong answer), 0 nothing checkable."""
    q = parse_prompt(prompt)
    if q is None:
        return 0.0
    text = _normalise(response)
    if q.kind == "language":
        by_lower = {name.lower(): score for name, score in LANGUAGE_SCORES.items()}
        scores = [by_lower[name] for name in _LANGUAGE.findall(text)]
        return sum(scores) / len(scores) if scores else 0.0
    right, wrong = _right_and_wrong(q, text)
    return WRONG if wrong else CORRECT if right else 0.0


# Everyday English beyond the world's own words, so a plain answer the world would not
# write itself ("Maybe it is a nice place.") is not taken for made-up words.
COMMON_WORDS = """a about after again all also always am an and any are around as at away back
be because been before being best big both but by can come could day did do does down each even
every few find first for from get give go good great had has have he her here him his how i if in
into is it its just know last like little long look make many may maybe me more most much must my
never new next no not now of off old on once one only or other our out over own people place
please really right said same say see she should so some still such sum sure take tell than thank
thanks that the their them then there these they thing think this those time to too two up us
use very want was way we well were what when where which who why will with would yes yet you
your equals makes plus minus zero one two three four five six seven eight nine ten eleven twelve
thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty""".split()


@functools.lru_cache(maxsize=1)
def world_vocabulary() -> frozenset:
    """Every word the toy world writes (read off its corpus), plus COMMON_WORDS."""
    corpus_words = _WORD.findall(_normalise(pretraining_corpus(300_000, seed=0)))
    return frozenset(corpus_words) | frozenset(COMMON_WORDS)


def fluency_score(response: str) -> float:
    """FLUENCY_PENALTY × (words not in the world's vocabulary) / (words); 0 with no words."""
    words = _WORD.findall(_normalise(response))
    unknown = sum(word not in world_vocabulary() for word in words)
    if unknown == 0:
        return 0.0
    return FLUENCY_PENALTY * unknown / len(words)


def style_score(response: str) -> float:
    """+1 for one clean sentence: it starts with a capital letter or a digit, ends with
    ".", "!" or "?" (not "..."), and has only printable characters (so no line break)."""
    text = response.strip()
    clean = (text[:1].isascii() and (text[:1].isupper() or text[:1].isdigit())
             and text.endswith((".", "!", "?")) and not text.endswith("..")
             and text.isprintable())
    return STYLE_BONUS if clean else 0.0


def length_penalty(response: str) -> float:
    """-1 per CHARS_PER_POINT characters beyond LENGTH_LIMIT, at most MAX_LENGTH_PENALTY."""
    extra = max(0, len(response.strip()) - LENGTH_LIMIT)
    return 0.0 - min(MAX_LENGTH_PENALTY, extra / CHARS_PER_POINT)  # 0.0 - 0 is 0.0, not -0.0


def gold_components(prompt: str, response: str) -> dict[str, float]:
    """The parts of r*(x, y), in the order of the module's table; they sum to gold_reward."""
    prompt, response = str(prompt), str(response)
    text = _normalise(response)
    return {
        "correctness": float(correctness_score(prompt, response)),
        "offensive": OFFENSIVE_PENALTY if _OFFENSIVE.search(text) else 0.0,
        "evasive": EVASIVE_PENALTY if _EVASIVE.search(text) else 0.0,
        "fluency": fluency_score(response),
        "style": style_score(response),
        "length": float(length_penalty(response)),
    }


def gold_reward(prompt: str, response: str) -> float:
    """r*(x, y): the gold reward of answer y to prompt x (see the module's table)."""
    return float(sum(gold_components(prompt, response).values()))


def sigmoid(z: float) -> float:
    """σ(z) = 1 / (1 + e^(-z)), written so that e^(...) never overflows."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def preference_probability(prompt: str, y1: str, y2: str) -> float:
    """Bradley-Terry: P(y1 > y2 | x) = e^r1 / (e^r1 + e^r2) = σ(r*(x, y1) - r*(x, y2))."""
    return sigmoid(gold_reward(prompt, y1) - gold_reward(prompt, y2))
