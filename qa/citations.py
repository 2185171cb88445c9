"""``[n]`` markers in answer text: read them, strip them, renumber them for display,
and tell a refusal from an answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from qa.types import Citation

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


