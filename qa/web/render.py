"""HTML for the web chat: answers with their numbered sources, each openable in context.

Everything here is a pure function of an ``Answer`` and the source texts, so it is
tested without a browser. The chat renders messages as Markdown with inline HTML:
the HTML produced here never contains a blank line or leading indentation (either
would end the HTML block and let Markdown reinterpret the rest), and every piece of
document or model text is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.citations import renumbered
from qa.types import CHECKING, RETRYING, Answer, Citation

# Characters of surrounding text shown before and after a cited passage: less before,
# so the passage shows near the top of the opened source without scrolling.
CONTEXT_BEFORE = 700
CONTEXT_AFTER = 1500
# A run of [n] markers, possibly split by one punctuation mark ("it [1]. [2]"), with the
# word before it and the punctuation after it, which stay on one line with the badges.
_MARKER_RUN = re.compile(r"(\S*?)\s*(\[\d+\](?:\s*[.,;:]?\s*\[\d+\])*)([.,;:!?]?)")
DRAFT_LABELS = {
    None: "Draft: not yet checked against the sources",
    CHECKING: "Checking the draft against the sources…",
    RETRYING: "The draft's evidence is not in the documents; asking the model again…",
}
WITHDRAWN = "The draft answer was withdrawn: its checks against the sources failed."
RETRIED = "Answered on a second try: the first draft's evidence was not in the documents."
WHY = "Why: {reason}"  # the check that refused an answer, in one line

DocumentText = Callable[[str], str | None]  # chunk_id -> full source text, if still indexed


def render_answer(answer: Answer, document_text: DocumentText, note: str = "") -> str:
    """The checked answer: its text, then its sources numbered from 1 (or a refusal).
    ``note`` says how it came about when the draft shown before was not it."""
    note_html = f'<div class="qa-note">{_escape(note)}</div>' if note else ""
    if answer.abstained:
        return _done(f'<div class="qa-refusal"><strong>Not in the documents.</strong> '
                     f"{_escape(answer.text)}</div>{note_html}")
    text, citations = renumbered(answer.text, answer.citations)
    body = f'<div class="qa-answer">{_with_marker_badges(text)}</div>{note_html}'
    if not citations:
        return _done(body)
    sources = "".join(render_source(c, document_text(c.chunk_id)) for c in citations)
    return _done(f'{body}<div class="qa-sources"><div class="qa-sources-title">Sources</div>'
                 f"{sources}</div>")


def render_draft(text: str, stage: str | None = None, struck: str = "") -> str:
    """The draft as it streams (with a cursor), labelled as a draft; once complete, while
    it is checked, or asked again (struck through: it will not be the answer). ``struck``
    is a first draft the model was asked to redo, shown struck above the second."""
    label = f'<div class="qa-draft-label">{_escape(DRAFT_LABELS[stage])}</div>'
    cursor = '<span class="qa-cursor">▍</span>' if stage is None else ""
    state = {None: "qa-streaming", CHECKING: "qa-checking", RETRYING: "qa-retrying"}[stage]
    first = f'<div class="qa-answer qa-struck">{_escape(struck)}</div>' if struck else ""
    return (f'<div class="qa-draft {state}">{label}{first}'
            f'<div class="qa-answer">{_escape(text)}{cursor}</div></div>')


def render_status(text: str) -> str:
    """A transient line in place of the answer (searching, queued)."""
    return f'<div class="qa-status">{_escape(text)}</div>'


def render_error(message: str) -> str:
    return _done(f'<div class="qa-error"><strong>Cannot answer:</strong> {_escape(message)}</div>')


def render_source(citation: Citation, full_text: str | None) -> str:
    """One numbered source card: title, date, page, file, quote with the cited part marked,
    the surrounding text inline, and a link that opens the document (page) itself."""
    meta = " · ".join(_escape(m) for m in source_meta(citation))
    head = (f'<div class="qa-source-head"><span class="qa-num">{citation.number}</span>'
            f'<span class="qa-title">{_escape(citation.title)}</span></div>'
            f'<div class="qa-meta">{meta}</div>')
    quote = f'<blockquote class="qa-quote">{_marked_quote(citation, flat=True)}</blockquote>'
    context = ""
    if full_text is not None and _offsets_match(citation, full_text):
        span = _highlight_span(citation) or (citation.start, citation.end)
        what = f"page {citation.page}" if citation.page else "the document"
        opener = (f'<a class="qa-open-page" href="#" data-chunk="{_escape(citation.chunk_id)}" '
                  f'data-start="{citation.start}" data-end="{citation.end}" data-hs="{span[0]}" '
                  f'data-he="{span[1]}">Open {what}</a>')
        context = (f'<details class="qa-context"><summary>Show the surrounding text</summary>'
                   f'<div class="qa-context-text">{_context(citation, full_text)}</div></details>'
                   f'<div class="qa-source-links">{opener}</div>')
    return (f'<div class="qa-source" data-number="{citation.number}">{head}{quote}{context}</div>')


def source_meta(citation: Citation) -> list[str]:
    """Date, page and file name, whichever are known."""
    parts = [citation.date or "undated"]
    if citation.page:
        parts.append(f"page {citation.page}")
    parts.append(Path(citation.source).name)
    return parts


def source_record(citation: Citation) -> dict[str, Any]:
    """A citation as plain data for the API (no server paths)."""
    quote = citation.quote
    highlight = None
    if citation.highlight_start is not None and citation.highlight_end is not None:
        highlight = quote[citation.highlight_start - citation.start: citation.highlight_end - citation.start]
    return {"number": citation.number, "title": citation.title, "date": citation.date,
            "page": citation.page, "file": Path(citation.source).name, "quote": quote,
            "highlight": highlight, "start": citation.start, "end": citation.end,
            "chunk_id": citation.chunk_id}


# -- internals -----------------------------------------------------------------------


def _done(content: str) -> str:
    """Marks a finished reply (answer, refusal or error), as opposed to one still streaming."""
    return f'<div class="qa-done">{content}</div>'


def _escape(text: str) -> str:
    """Escaped, with line breaks as <br> so no blank line ends the HTML block."""
    escaped = html.escape(text, quote=True)
    escaped = re.sub(r"\n\s*\n", "<br><br>", escaped)
    return escaped.replace("\n", "<br>")


def _with_marker_badges(text: str) -> str:
    """Each run of markers as one set of clickable badges (repeats dropped), kept on one
    line with the word before it and the punctuation after it."""

    def badges(match: re.Match[str]) -> str:
        word, run, after = match.groups()
        numbers = dict.fromkeys(re.findall(r"\d+", run))
        punctuation = ("".join(re.findall(r"\][\s]*([.,;:])", run)) + after)[:1]
        cites = "".join(f'<sup class="qa-cite" role="link" tabindex="0" data-cite="{n}" '
                        f'title="Go to source {n}">{n}</sup>' for n in numbers)
        return f'<span class="qa-nowrap">{word}{cites}{punctuation}</span>'

    return _MARKER_RUN.sub(badges, _escape(text))


def _highlight_span(citation: Citation) -> tuple[int, int] | None:
    """The cited sentence in document offsets, clipped to the passage."""
    hs, he = citation.highlight_start, citation.highlight_end
    if hs is None or he is None:
        return None
    hs, he = max(hs, citation.start), min(he, citation.end)
    return (hs, he) if hs < he else None


def _marked(text: str, offset: int, span: tuple[int, int] | None) -> str:
    """``text`` (which starts at document ``offset``) with ``span`` wrapped in <mark>."""
    if span is None:
        return _escape(text)
    a, b = span[0] - offset, span[1] - offset
    if a < 0 or b > len(text):
        return _escape(text)
    return f"{_escape(text[:a])}<mark>{_escape(text[a:b])}</mark>{_escape(text[b:])}"


def _marked_quote(citation: Citation, flat: bool = False) -> str:
    """The quote with its cited part marked; ``flat`` runs paragraphs together (cards)."""
    marked = _marked(citation.quote, citation.start, _highlight_span(citation))
    return re.sub(r"(<br>)+", " ", marked) if flat else marked


def _offsets_match(citation: Citation, full_text: str) -> bool:
    """The document may have changed since the answer; only show context that agrees."""
    return full_text[citation.start: citation.end] == citation.quote


def _context(citation: Citation, text: str) -> str:
    """The passage in its surrounding paragraphs, passage shaded, cited part marked."""
    begin, finish = _window(text, citation.start, citation.end)
    before = _escape(text[begin: citation.start])
    after = _escape(text[citation.end: finish])
    passage = _marked_quote(citation)
    lead = "… " if begin > 0 else ""
    tail = " …" if finish < len(text) else ""
    return f'{lead}{before}<span class="qa-passage">{passage}</span>{after}{tail}'


def _window(text: str, start: int, end: int) -> tuple[int, int]:
    """The text around ``start:end``, snapped to paragraph boundaries when possible."""
    begin = max(0, start - CONTEXT_BEFORE)
    if begin > 0:
        paragraph = text.find("\n\n", begin, start)
        begin = paragraph + 2 if paragraph != -1 else begin
    finish = min(len(text), end + CONTEXT_AFTER)
    if finish < len(text):
        paragraph = text.rfind("\n\n", end, finish)
        finish = paragraph if paragraph != -1 else finish
    return begin, finish
