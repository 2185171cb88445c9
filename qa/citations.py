"""Turn ``[n]`` markers in a generated answer into citations of exact passages.

Marker numbers are kept as the model wrote them (so streamed text and the
final answer agree) and markers that name no passage are dropped; then each
sentence is checked against its passages (``verification``): a wrong marker
is re-cited, a missing one added, an unsupported sentence flagged. Each
citation carries the sentence of its passage that best supports the answer, so
readers see the cited part, not only the passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from qa.ingest.chunking import sentence_spans
from qa.types import Citation, Passage
from qa.verification import Verification, support, verify

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_REFUSAL = re.compile(
    r"(documents?|passages?|text|context|information)\s+(do(es)?\s+not|don't|doesn't)\s+"
    r"(say|contain|mention|provide|specify|state|include|give)"
    r"|\bnot\s+(mentioned|specified|stated|provided|given)\b|\bno (information|mention)\b"
    r"|\bcannot be (determined|answered)\b|\bunknown\b",
    re.IGNORECASE,
)


def strip_markers(text: str) -> str:
    """The answer without its ``[n]`` markers (for follow-up context and scoring)."""
    return _MARKER.sub("", text)


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text)) or not text.strip()


def parse_markers(text: str) -> list[int]:
    """Passage numbers named by the markers, in order, repeats kept."""
    return [int(n) for m in _MARKER.finditer(text) for n in re.split(r"[,;]\s*", m.group(1))]


def resolve_citations(text: str, passages: Sequence[Passage]
                      ) -> tuple[str, list[Citation], Verification]:
    """(answer text with checked markers, citations sorted by number, the check)."""

    def keep_valid(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"[,;]\s*", match.group(1))]
        valid = dict.fromkeys(n for n in numbers if 1 <= n <= len(passages))
        return " " + "".join(f"[{n}]" for n in valid) if valid else ""

    clean = _MARKER.sub(keep_valid, text)
    clean = re.sub(r"\s+([.,;:!?])", r"\1", clean).strip()
    checked = verify(clean, passages)
    citations = [_citation(n, passages[n - 1], _citing(checked.text, n)) for n in sorted(checked.cited)]
    return checked.text, citations, checked


def renumbered(text: str, citations: Sequence[Citation]) -> tuple[str, list[Citation]]:
    """Markers and citations numbered 1, 2, ... in the order the answer first cites them,
    for display: marker numbers are passage numbers, so an answer citing only the
    second passage would otherwise show a lone source "2"."""
    order: dict[int, int] = {}
    for number in [*parse_markers(text), *(c.number for c in citations)]:
        order.setdefault(number, len(order) + 1)

    def renumber(match: re.Match[str]) -> str:
        return re.sub(r"\d+", lambda n: str(order.get(int(n.group(0)), int(n.group(0)))), match.group(0))

    shown = [replace(c, number=order[c.number]) for c in citations]
    return _MARKER.sub(renumber, text), sorted(shown, key=lambda c: c.number)


def _citing(answer: str, number: int) -> str:
    """The answer's sentences that carry marker ``number`` (all of it if none does): the
    highlight goes to the passage sentence backing what this marker cites."""
    spans = sentence_spans(answer) or [(0, len(answer))]
    cited = [answer[a:b] for a, b in spans if number in parse_markers(answer[a:b])]
    return " ".join(cited) or answer


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
