"""Example questions for the web chat, drawn from the indexed documents themselves.

A first-time user needs questions the documents can answer. The names a briefing
keeps coming back to (people, organisations, places written with capitals, at least
twice, not only at the start of a sentence) are what it is about, so each of the
newest documents gives a question about its most frequent name (or its headline),
and the newest one also a question about its headline. No model runs: the examples change as soon as a
document is added or removed.
"""

from __future__ import annotations

import re
from collections import Counter

from qa.types import Document

MAX_EXAMPLES = 4
# Two to four capitalised words ("Abdul Salam Hanafi", "European Union"), joined by spaces.
_NAME = re.compile(r"(?<![\w.])(?:[A-Z][a-z]+(?:-[A-Z][a-z]+)?)(?: [A-Z][a-z]+(?:-[A-Z][a-z]+)?){1,3}\b")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+|\n)$")
_WEEKDAYS = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
             "January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December", "The", "A", "An", "In", "On", "At"}


def example_questions(documents: list[Document], limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to ``limit`` questions, one per document, newest first (undated ones last): about
    the name it mentions most, or else about its headline; then the newest one's headline."""
    newest = sorted(documents, key=lambda d: d.date or "", reverse=True)
    questions: list[str] = []
    for document in newest[:limit]:
        names = frequent_names(document.text[document.body_start:])
        questions.append(f"What does the briefing say about {names[0]}?" if names
                         else _about(document))
    if newest:
        questions.append(_about(newest[0]))
    return list(dict.fromkeys(questions))[:limit]


def _about(document: Document) -> str:
    return f"What is “{_short(document.title)}” about?"


def frequent_names(text: str) -> list[str]:
    """Names of two or more capitalised words, most mentioned first; a later mention may
    be the last word alone ("Elena Marsh" ... "Marsh said"). A name only ever seen at the
    start of a sentence may just be capitalised words; one mentioned once is a side note."""
    names: set[str] = set()
    for match in _NAME.finditer(text):
        name = _trimmed(match.group(0))
        if name and not _SENTENCE_START.search(text[max(0, match.start() - 3): match.start()]):
            names.add(name)
    counts = Counter({n: len(re.findall(rf"\b{re.escape(n.split()[-1])}\b", text)) for n in names})
    kept = [n for n, c in counts.items() if c >= 2]
    return sorted(kept, key=lambda n: (-counts[n], -len(n)))


def _trimmed(name: str) -> str | None:
    """Leading words that are not part of a name ("On Wednesday Russia" -> None)."""
    words = name.split()
    while words and words[0] in _WEEKDAYS:
        words.pop(0)
    if len(words) < 2 or any(w in _WEEKDAYS for w in words):
        return None
    return " ".join(words)


def _short(title: str, words: int = 9) -> str:
    parts = title.rstrip(".").split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")
