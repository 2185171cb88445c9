"""The source as the page itself: a cited PDF page rendered with the cited sentence
highlighted on it, or for other formats the whole document text with the passage
shaded and the sentence marked (the page scrolls it into view).

PDF pages are rendered by pdfium (pypdfium2); the highlight boxes come from pdfium's
own character boxes of the cited sentence, found in the page's text by its words
(pypdf, which extracted the indexed text, and pdfium space and break lines
differently, so the match is on words, not characters).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from qa.types import Document

log = logging.getLogger(__name__)
# pdfium must never run on two threads at once, even on different documents.
_PDFIUM = threading.Lock()

PAGE_SCALE = 1.6  # 72 dpi points -> pixels: sharp enough to read, ~150 KB a page as JPEG
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Span:
    """Where a citation points in its document: the passage and its cited sentence."""

    start: int
    end: int
    highlight_start: int
    highlight_end: int


@dataclass(frozen=True)
class Box:
    """A highlight rectangle in fractions of the page (0..1, from the top left)."""

    left: float
    top: float
    width: float
    height: float


def render_view(document: Document, span: Span) -> str:
    """The viewer's HTML: the cited PDF page as an image with the sentence boxed, or
    the document text with passage and sentence marked."""
    page = document.page_at(span.highlight_start)
    if page is not None and Path(document.source).suffix.lower() == ".pdf":
        try:
            with _PDFIUM:
                return _pdf_page(document, page, document.text[span.highlight_start: span.highlight_end])
        except Exception as error:  # an unreadable or changed file still shows its indexed text
            log.warning("cannot render page %s of %s (%s); showing its text", page, document.source, error)
    return _text_view(document, span)


def _text_view(document: Document, span: Span) -> str:
    text = document.text
    if not 0 <= span.start <= span.highlight_start <= span.highlight_end <= span.end <= len(text):
        return f'<div class="qa-view-text">{_escape(text)}</div>'
    pieces = [_escape(text[: span.start]), '<span class="qa-passage">',
              _escape(text[span.start: span.highlight_start]),
              f'<mark id="qa-view-mark">{_escape(text[span.highlight_start: span.highlight_end])}</mark>',
              _escape(text[span.highlight_end: span.end]), "</span>", _escape(text[span.end:])]
    return f'<div class="qa-view-text">{"".join(pieces)}</div>'


def _pdf_page(document: Document, page: int, sentence: str) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(document.source)
    try:
        pdf_page = pdf[page - 1]
        width, height = pdf_page.get_size()
        image = pdf_page.render(scale=PAGE_SCALE).to_pil().convert("RGB")
        boxes = _sentence_boxes(pdf_page.get_textpage(), sentence, width, height)
    finally:
        pdf.close()
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    marks = "".join(
        f'<div class="qa-page-mark"{" id=qa-view-mark" if i == 0 else ""} style="left:{b.left:.2%};'
        f'top:{b.top:.2%};width:{b.width:.2%};height:{b.height:.2%}"></div>'
        for i, b in enumerate(boxes))
    return (f'<div class="qa-page" data-page="{page}" data-marks="{len(boxes)}">'
            f'<img alt="Page {page} of {_escape(document.title)}" src="data:image/jpeg;base64,{data}">'
            f"{marks}</div>")


def _sentence_boxes(textpage: object, sentence: str, width: float, height: float) -> list[Box]:
    """Boxes of the sentence's characters on the page, found by its run of words."""
    page_text = textpage.get_text_range()  # type: ignore[attr-defined]
    wanted = [w.lower() for w in _WORD.findall(sentence)]
    words = [(m.start(), m.end(), m.group(0).lower()) for m in _WORD.finditer(page_text)]
    if not wanted:
        return []
    for i in range(len(words) - len(wanted) + 1):
        if [w for _, _, w in words[i: i + len(wanted)]] == wanted:
            first, last = words[i][0], words[i + len(wanted) - 1][1]
            return _boxes(textpage, first, last - first, width, height)
    return []


def _boxes(textpage: object, index: int, count: int, width: float, height: float) -> list[Box]:
    rects = textpage.count_rects(index, count)  # type: ignore[attr-defined]
    boxes = []
    for i in range(rects):
        left, bottom, right, top = textpage.get_rect(i)  # type: ignore[attr-defined]
        boxes.append(Box(left / width, 1 - top / height, (right - left) / width, (top - bottom) / height))
    return boxes


def _escape(text: str) -> str:
    return html.escape(text, quote=True)
