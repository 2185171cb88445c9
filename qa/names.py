"""Names in English text: people, organisations and places, written as a run of
capitalised words ("Abdul Salam Hanafi", "the European Union", "Russia’s").

The one "is this a name?" heuristic: the near-miss check (qa/checks/english.py) reads
who is named before a verb, and the web chat's example questions (qa/web/examples.py)
ask about the names a briefing keeps coming back to. English only: other scripts
have no capitals, or capitalise other words.
"""

from __future__ import annotations

import re
from collections import Counter

WORD = r"[A-Z][\w’'-]*"  # a capitalised word: "Hanafi", "Al-Qaeda", "Russia’s", "UN"
# Capitalised for another reason: a date, or the first word of a sentence.
_NOT_NAMES_TEXT = """Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March
April May June July August September October November December The A An In On At"""
NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_ADJECTIVE = re.compile(r"(ian|ean|ese|ish)$")  # "Central Asian", "Maltese": not a name
_POSSESSIVE = re.compile(r"[’']s$")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)$")


def run(most: int | None = None, least: int = 1, between: str = r"\s+") -> str:
    """A pattern for ``least`` to ``most`` (None: any number of) capitalised words in a
    row, ``between`` each two."""
    repeat = f"{{{least - 1},}}" if most is None else f"{{{least - 1},{most - 1}}}"
    return rf"(?:{WORD}{between}){repeat}{WORD}"


# A name mentioned in full: two words or more on one line (a heading's last words and the
# next line's first are no name: "Background" + "Our plan").
_MENTION = re.compile(rf"(?<![\w.]){run(6, least=2, between='[ ]')}\b")


def frequent_names(text: str) -> list[str]:
    """Names of two or more capitalised words, most mentioned first (then in order of
    appearance); a later mention may be the last word alone ("Elena Marsh" ... "Marsh
    said"). A name only ever seen at the start of a sentence may just be capitalised words."""
    names: set[str] = set()
    for match in _MENTION.finditer(text):
        at_start = _SENTENCE_START.search(text[max(0, match.start() - 3): match.start()])
        for part, first in _parts(match.group(0)):
            name = _trimmed(part)
            if name and not (first and at_start):
                names.add(name)
    counts = Counter({n: len(re.findall(rf"\b{re.escape(n.split()[-1])}\b", text)) for n in names})
    return sorted(names, key=lambda n: (-counts[n], text.find(n)))


def same_name(one: str, other: str) -> bool:
    """Names agree on a word's first four letters: "Russia" and "Russian President Putin"."""
    prefixes = {w.lower()[:4] for w in one.split() if w.lower() != "the"}
    return any(w.lower()[:4] in prefixes for w in other.split())


def _parts(run_of_words: str) -> list[tuple[str, bool]]:
    """A run split after each possessive ("Taliban’s Islamist State" is the Taliban and an
    Islamist State), each part with whether it begins the run."""
    parts, words = [], []
    for word in run_of_words.split():
        if _POSSESSIVE.search(word):
            parts.append(" ".join([*words, _POSSESSIVE.sub("", word)]))
            words = []
        else:
            words.append(word)
    parts.append(" ".join(words))
    return [(part, i == 0) for i, part in enumerate(parts) if part]


def _trimmed(name: str) -> str | None:
    """The name without leading words that are not part of it ("On Wednesday Russia" ->
    None: one word is left); None for adjectives of place ("Central Asian")."""
    words = name.split()
    while words and words[0] in NOT_NAMES:
        words.pop(0)
    if len(words) < 2 or any(w in NOT_NAMES for w in words) or _ADJECTIVE.search(words[-1]):
        return None
    return " ".join(words)
