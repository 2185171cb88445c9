"""Example questions for the web chat, drawn from the indexed documents themselves.

A first-time user needs questions the documents can answer. The names a briefing
keeps coming back to (qa/names.py: people, organisations, places written with capitals,
not only at the start of a sentence) are what it is about, so each of the
newest documents gives a question about its most frequent name (or its headline),
and the newest one also a question about its headline. No model runs: the examples change as soon as a
document is added or removed.
"""

from __future__ import annotations

from qa.names import frequent_names
from qa.types import Document

MAX_EXAMPLES = 4
SHORT_TITLE_WORDS = 8  # a longer headline makes a clumsy question


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


def _short(title: str, words: int = 9) -> str:
    parts = title.rstrip(".").split()
    return " ".join(parts[:words]) + ("…" if len(parts) > words else "")
