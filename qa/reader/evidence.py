"""Find the reader's evidence quote in the text it claims to copy.

A quote holds when it occurs in its passage after whitespace, quote marks,
dashes and case are normalised; the citation is then that exact character
span of the document, so the highlighted text is the evidence itself. A quote
the reader paraphrased (or invented) is not found, and the evidence check
acts on that.
"""

from __future__ import annotations

from dataclasses import dataclass

_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                       "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                       "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " "})
_TRIM = " \t\n\"'.,;:!?…"


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def normalised(text: str) -> tuple[str, list[int]]:
    """``text`` folded (one space for any run of whitespace, plain quote marks and
    dashes, lower case) and, per folded character, its offset in ``text``."""
    out: list[str] = []
    offsets: list[int] = []
    for i, char in enumerate(text.translate(_FOLD)):
        if char.isspace():
            if out and out[-1] == " ":
                continue
            char = " "
        out.append(char.lower())
        offsets.append(i)
    return "".join(out), offsets


def locate(quote: str, text: str, offset: int = 0) -> Span | None:
    """Where ``quote`` occurs in ``text`` (offsets shifted by ``offset``), or None."""
    needle, _ = normalised(quote.strip(_TRIM))
    needle = needle.strip()
    if len(needle) < 3:
        return None
    haystack, offsets = normalised(text)
    at = haystack.find(needle)
    if at < 0:
        return None
    return Span(offset + offsets[at], offset + offsets[at + len(needle) - 1] + 1)
