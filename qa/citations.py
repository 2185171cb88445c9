"""Turn ``[n]`` markers in a generated answer into citations of exact passages.

Marker numbers are kept as the model wrote them (so streamed text and the
final answer agree), markers that name no passage are dropped, and an answer
without any marker cites the passage that best supports it. Each citation
carries the sentence of its passage that best supports the answer, so readers
see the cited part, not only the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.chunking import sentence_spans
from qa.types import Citation, Passage

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOPWORD_TEXT = """
a an the of in on at to for from by with and or but is are was were be been being it its this that
these those as has have had do does did not no will would can could should may might must shall he
she they them his her their we you i what who whom which when where why how than then there here
also about into over after before since during while
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_REFUSAL = re.compile(
    r"(documents?|passages?|text|context|information)\s+(do(es)?\s+not|don't|doesn't)\s+"
    r"(say|contain|mention|provide|specify|state|include|give)"
    r"|\bnot\s+(mentioned|specified|stated|provided|given)\b|\bno (information|mention)\b"
    r"|\bcannot be (determined|answered)\b|\bunknown\b",
    re.IGNORECASE,
)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text)) or not text.strip()


def parse_markers(text: str) -> list[int]:
    """Passage numbers named by the markers, in order, repeats kept."""
    return [int(n) for m in _MARKER.finditer(text) for n in re.split(r"[,;]\s*", m.group(1))]


def resolve_citations(text: str, passages: Sequence[Passage]) -> tuple[str, list[Citation]]:
    """(answer text with valid markers only, citations sorted by number)."""
    order: dict[int, int] = {}  # prompt number -> citation number (the same)

    def renumber(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(passages)]
        for n in valid:
            order.setdefault(n, n)
        unique = list(dict.fromkeys(order[n] for n in valid))
        return "".join(f"[{n}]" for n in unique) if unique else ""

    def replace(match: re.Match[str]) -> str:
        markers = renumber(match)
        return f" {markers}" if markers else ""

    clean = _MARKER.sub(replace, text)
    clean = re.sub(r"\s+([.,;:!?])", r"\1", clean).strip()
    if not order and passages:
        best = max(range(len(passages)), key=lambda i: (support(clean, passages[i].text), -i))
        order[best + 1] = best + 1
        clean = _append_marker(clean, best + 1)
    citations = [_citation(number, passages[n - 1], clean) for n, number in order.items()]
    return clean, sorted(citations, key=lambda c: c.number)


def support(answer: str, passage_text: str) -> float:
    """Share of the answer's content words that the passage contains (0..1)."""
    words = content_words(_MARKER.sub(" ", answer))
    if not words:
        return 0.0
    return len(words & content_words(passage_text)) / len(words)


def best_sentence(answer: str, passage: Passage) -> tuple[int, int, float]:
    """Source span of the passage sentence that best supports ``answer``, and its score."""
    best = (passage.start, passage.end, 0.0)
    for start, end in sentence_spans(passage.text):
        score = support(answer, passage.text[start:end])
        if score > best[2]:
            best = (passage.start + start, passage.start + end, score)
    return best


def _citation(number: int, passage: Passage, answer: str) -> Citation:
    start, end, _ = best_sentence(answer, passage)
    return Citation(number=number, chunk_id=passage.chunk_id, title=passage.title,
                    source=passage.source, quote=passage.text, start=passage.start,
                    end=passage.end, page=passage.page, date=passage.date,
                    highlight_start=start, highlight_end=end,
                    support=round(support(answer, passage.text), 3))


def _append_marker(text: str, number: int) -> str:
    stripped = text.rstrip()
    if stripped and stripped[-1] in ".!?":
        return f"{stripped[:-1]} [{number}]{stripped[-1]}"
    return f"{stripped} [{number}]"
