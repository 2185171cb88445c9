"""Example questions for the web chat, drawn from the indexed documents themselves.

A first-time user needs questions the documents can answer. The names a briefing
keeps coming back to (people, organisations, places written with capitals, not only
at the start of a sentence) are what it is about, so each of the
newest documents gives a question about its most frequent name (or its headline),
and the newest one also a question about its headline. No model runs: the examples change as soon as a
document is added or removed.
"""

from __future__ import annotations

import re
from collections import Counter

from qa.types import Document

MAX_EXAMPLES = 4
SHORT_TITLE_WORDS = 8  # a longer headline makes a clumsy question
# Two to six capitalised words ("Abdul Salam Hanafi", "European Union"), joined by spaces.
_NAME = re.compile(r"(?<![\w.])(?:[A-Z][a-z]+(?:-[A-Z][a-z]+)?)(?: [A-Z][a-z]+(?:-[A-Z][a-z]+)?){1,5}\b")
_ADJECTIVE = re.compile(r"(ian|ean|ese|ish)$")  # "Central Asian", "Maltese": not a name
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)$")
_WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
             "January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December", "The", "A", "An", "In", "On", "At"}


def example_questions(documents: list[Document], limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` questions, newest documents first (undated ones last): about the name
    each mentions most (or else its headline), then the newest one's headline, then the
    next names of each."""
    newest = sorted(documents, key=lambda d: d.date or "", reverse=True)[:limit]
    names = [frequent_names(d.text[d.body_start:])[:3] for d in newest]
    questions = [_about_name(n[0]) if n else _about(d) for d, n in zip(newest, names, strict=True)]
    if newest and len(newest[0].title.split()) <= SHORT_TITLE_WORDS:
        questions.append(_about(newest[0]))
    questions += [_about_name(name) for more in names for name in more[1:]]
    return list(dict.fromkeys(questions))[:limit]


def _about_name(name: str) -> str:
    return f"What do the briefings say about {name}?"


def _about(document: Document) -> str:
    return f"What is “{_short(document.title)}” about?"


def frequent_names(text: str) -> list[str]:
    """Names of two or more capitalised words, most mentioned first (then in order of
    appearance); a later mention may be the last word alone ("Elena Marsh" ... "Marsh
    said"). A name only ever seen at the start of a sentence may just be capitalised words."""
    names: set[str] = set()
    for match in _NAME.finditer(text):
        name = _trimmed(match.group(0))
        if name and not _SENTENCE_START.search(text[max(0, match.start() - 3): match.start()]):
            names.add(name)
    counts = Counter({n: len(re.findall(rf"\b{re.escape(n.split()[-1])}\b", text)) for n in names})
    return sorted(names, key=lambda n: (-counts[n], text.find(n)))


def _trimmed(name: str) -> str | None:
    """The name without leading words that are not part of it ("On Wednesday Russia" ->
    None: one word is left); None for adjectives of place ("Central Asian")."""
    words = name.split()
    while words and words[0] in _WEEKDAYS:
        words.pop(0)
    if len(words) < 2 or any(w in _WEEKDAYS for w in words) or _ADJECTIVE.search(words[-1]):
        return None
    return " ".join(words)


def _short(title: str, words: int = 9) -> str:
    parts = title.rstrip(".").split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")
