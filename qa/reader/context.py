"""The context stage: which text the reader sees, chosen once per question.

Briefings are short, so the reader gets the best-ranked document whole: an
answer two sentences away from the retrieved chunk (a diagnosis after a side
remark, the second hop of a question) is then in view. Whole documents are
ranked by their best chunk. A document too long for the budget, or one whose
prefill is not cached yet when ``whole`` says so, is shown as windows: its
retrieved chunks merged with their neighbours, in document order. Other
documents enter only with a chunk scoring close to the best one, as windows,
after the first document, so the first document's cached prefill still serves.
Every passage is an exact span of its document: citations point at the text read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from qa.retrieve.hybrid import merge_neighbours
from qa.types import Document, Passage, TokenCounter


@dataclass(frozen=True)
class ContextPlan:
    """How much the reader may see: the token budget of all documents together, the
    budget of a window, and how close (in cosine) another document's best chunk must come
    to the best one to be shown too."""

    budget: int = 1800
    window_budget: int = 320
    other_margin: float = 0.05
    max_documents: int = 3


@dataclass(frozen=True)
class Context:
    """The passages the reader sees, numbered from 1; ``whole`` names the doc_ids shown whole."""

    passages: tuple[Passage, ...]
    whole: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.passages)


def build_context(ranked: Sequence[Passage], documents: Mapping[str, Document],
                  count_tokens: TokenCounter, plan: ContextPlan,
                  show_whole: Callable[[Document], bool] = lambda _: True) -> Context:
    """``ranked``: relevant passages in fused-rank order. ``show_whole(document)`` says
    whether a document may be shown whole (for example: its prefill is cached)."""
    by_document: dict[str, list[Passage]] = {}
    for passage in ranked:
        if passage.doc_id in documents:
            by_document.setdefault(passage.doc_id, []).append(passage)
    if not by_document:
        return Context(())
    best = max(p.score for p in ranked)
    chosen = [d for i, d in enumerate(by_document)
              if i == 0 or max(p.score for p in by_document[d]) >= best - plan.other_margin]
    passages: list[Passage] = []
    whole: set[str] = set()
    left = plan.budget
    for position, doc_id in enumerate(chosen[: plan.max_documents]):
        document, hits = documents[doc_id], by_document[doc_id]
        if position == 0 and show_whole(document):
            cost = count_tokens(document.text)
            if cost <= left:
                passages.append(whole_document(document, hits[0]))
                whole.add(doc_id)
                left -= cost
                continue
        window = windows(hits, documents, count_tokens, min(plan.window_budget, left))
        passages.extend(window)
        left -= sum(count_tokens(p.text) for p in window)
        if left <= 0:
            break
    return Context(tuple(passages), frozenset(whole))


def whole_document(document: Document, best: Passage) -> Passage:
    """The document as one passage; it keeps the id, rank and score of its best chunk."""
    return replace(best, text=document.text, start=0, end=len(document.text), page=None)


def windows(hits: list[Passage], documents: Mapping[str, Document], count_tokens: TokenCounter,
            budget: int) -> list[Passage]:
    """The best chunks of one document within ``budget`` tokens, overlaps merged, in
    document order (so the text reads as written)."""
    kept: list[Passage] = []
    used = 0
    for passage in hits:
        cost = count_tokens(passage.text)
        if kept and used + cost > budget:
            break
        kept.append(passage)
        used += cost
    merged = merge_neighbours(_with_neighbours(kept, documents), documents)
    return sorted(merged, key=lambda p: p.start)


def _with_neighbours(hits: list[Passage], documents: Mapping[str, Document]) -> list[Passage]:
    """Chunks that touch are one span: merge_neighbours joins overlaps, and adjacent chunks
    share their boundary offset, so widen each by one character to join them too."""
    widened = []
    for passage in hits:
        text = documents[passage.doc_id].text
        start, end = max(0, passage.start - 1), min(len(text), passage.end + 1)
        widened.append(replace(passage, start=start, end=end, text=text[start:end]))
    return widened
