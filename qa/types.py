"""The typed records that flow between the stages of the pipeline.

documents -> chunks -> index -> retrieved passages -> prompt -> answer with citations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

TokenCounter = Callable[[str], int]  # a text's length in the generator's tokens
Turn = tuple[str, str]  # (question, answer) of an earlier exchange


@dataclass(frozen=True)
class Document:
    """A loaded source file. ``text`` is exactly what spans index into."""

    doc_id: str
    title: str
    source: str
    text: str
    content_hash: str
    date: str | None = None
    body_start: int = 0  # the header line (date + headline) is not body text
    page_starts: tuple[int, ...] = ()  # character offset where each page begins (PDF)

    def page_at(self, offset: int) -> int | None:
        """1-based page number holding ``offset``, or None for unpaged files."""
        if not self.page_starts:
            return None
        page = 0
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i
        return page + 1


@dataclass(frozen=True)
class Chunk:
    """A slice of a document: ``text == document.text[start:end]``."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with what the reader needs to cite it."""

    chunk_id: str
    doc_id: str
    text: str
    score: float
    title: str
    source: str
    start: int
    end: int
    page: int | None = None
    date: str | None = None


@dataclass(frozen=True)
class Citation:
    """A ``[number]`` marker of an answer resolved to the exact text it points at.

    ``passage`` is the passage the reader was shown as ``[number]`` (its document,
    title, source and date are the citation's). ``start``/``end`` locate ``quote``
    (the evidence sentence) in that document; ``highlight_start``/``highlight_end``
    the exact evidence, so a reader sees the cited part at a glance; ``chunk_id`` is
    the indexed chunk holding the evidence and ``page`` its page (for the page
    viewer): a passage shown whole spans many chunks and pages.
    """

    number: int
    passage: Passage
    chunk_id: str
    quote: str
    start: int
    end: int
    page: int | None = None
    highlight_start: int | None = None
    highlight_end: int | None = None

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def title(self) -> str:
        return self.passage.title

    @property
    def source(self) -> str:
        return self.passage.source

    @property
    def date(self) -> str | None:
        return self.passage.date


ACCEPT, RETRY, REFUSE = "accept", "retry", "refuse"


@dataclass(frozen=True)
class Verdict:
    """What one check decided about a draft answer, kept in ``Answer.trace`` so a
    maintainer can read why an answer was refused, retried or re-cited."""

    check: str  # the check's name, e.g. "relevance", "evidence"
    action: str  # ACCEPT, RETRY or REFUSE
    detail: str = ""


@dataclass(frozen=True)
class Timings:
    """Seconds from the question's arrival to the end of each step, one clock for all;
    None for a step not reached (no first token when refused before the model, and
    only retrieval in a retrieval-only evaluation)."""

    retrieval: float | None = None
    first_token: float | None = None  # the first visible piece of the draft
    total: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The steps reached, for JSON (the web API)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Answer:
    """The final answer; ``text`` carries ``[n]`` markers matching ``citations``.
    ``passages`` are what the reader was shown (the retrieved ones when it was refused
    before the model); ``generated_tokens`` counts the pieces the model generated, over
    both attempts when it was asked again."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    passages: list[Passage] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    generated_tokens: int = 0
    trace: tuple[Verdict, ...] = ()  # the checks' verdicts, in the order they ran
    draft: str | None = None  # the model's own text when a check refused or retried it

    @property
    def refusal_reason(self) -> str | None:
        """Why a check refused the answer (None: not refused by a check)."""
        refusals = [v for v in self.trace if v.action == REFUSE]
        return f"{refusals[-1].check}: {refusals[-1].detail}" if refusals else None


CHECKING = "checking"  # the draft is complete; its citations and checks are being run
RETRYING = "retrying"  # the draft dodged the question; the model is asked once more


@dataclass(frozen=True)
class Stage:
    """Where an answer being streamed stands, so a reader can mark the draft as a draft:
    yielded by ``Assistant.stream(..., stages=True)`` between the text pieces and the
    final ``Answer`` (which alone is what the system stands behind)."""

    name: str  # CHECKING or RETRYING
