"""Metrics: how right an answer is, which passages are relevant, ranking and latency figures.

Judging is by text, never by a model: a passage is relevant when it holds the
question's gold ``source`` (a document name or a quote of the passage) or, when
no source is given, one of its gold answers; an answer is right when it contains
a gold answer. Both comparisons use SQuAD-style normalisation.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from qa.citations import strip_markers
from qa.evaluation.questions import QuestionItem
from qa.types import Citation, Passage, Timings

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation, made Unicode-aware.

    Lower case, punctuation and symbols removed (so "2,000" == "2000" and
    "Russia’s" == "Russia's"), dashes turned into spaces (so "mid-August"
    contains "august"), articles dropped, whitespace collapsed.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    chars = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Pd":
            chars.append(" ")
        elif category[0] not in "PS":
            chars.append(char)
    text = _ARTICLES.sub(" ", "".join(chars))
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    predicted = normalize_answer(strip_markers(prediction))
    return float(any(predicted == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer."""
    predicted = normalize_answer(strip_markers(prediction)).split()
    return max((_f1(predicted, normalize_answer(g).split()) for g in golds), default=0.0)


def _f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    remaining = list(gold)
    common = 0
    for token in predicted:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def contains_answer(text: str, golds: Sequence[str]) -> bool:
    """A gold answer appears in ``text`` as whole words ("10" is not in "100")."""
    haystack = f" {normalize_answer(strip_markers(text))} "
    return any(_holds(haystack, normalize_answer(g)) for g in golds)


def _holds(padded_haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in padded_haystack


# -- relevance -----------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What a judge needs of a passage, whether it was retrieved or cited."""

    text: str
    source: str
    title: str
    doc_id: str = ""

    @classmethod
    def from_passage(cls, passage: Passage) -> Evidence:
        return cls(passage.text, passage.source, passage.title, passage.doc_id)

    @classmethod
    def from_citation(cls, citation: Citation) -> Evidence:
        return cls(citation.quote, citation.source, citation.title, citation.doc_id)

    @cached_property
    def padded(self) -> str:
        return f" {normalize_answer(self.text)} "


class Judge:
    """Decides, for one question, which passages hold its gold source or answer."""

    def __init__(self, item: QuestionItem):
        self.item = item
        self._answers = [normalize_answer(a) for a in item.answers]
        self._quotes = [normalize_answer(s) for s in item.sources]

    @property
    def by_source(self) -> bool:
        return bool(self.item.sources)

    def holds_answer(self, evidence: Evidence) -> bool:
        return any(_holds(evidence.padded, a) for a in self._answers)

    def holds_source(self, evidence: Evidence) -> bool:
        """The passage is from the named document, or contains the quoted text."""
        for source, quote in zip(self.item.sources, self._quotes, strict=True):
            if _names_document(source, evidence) or _holds(evidence.padded, quote):
                return True
        return False

    def relevant(self, evidence: Evidence) -> bool:
        """Retrieval relevance: the gold source when given, else a gold answer."""
        if self.item.unanswerable:
            return False
        return self.holds_source(evidence) if self.by_source else self.holds_answer(evidence)

    def supports(self, evidence: Evidence) -> bool:
        """Citation correctness: the cited passage holds the gold answer or the source."""
        if self.item.unanswerable:
            return False
        return self.holds_answer(evidence) or self.holds_source(evidence)


def _names_document(source: str, evidence: Evidence) -> bool:
    source = source.strip()
    if source in (evidence.source, evidence.title, evidence.doc_id):
        return True
    path = Path(evidence.source)
    return source == path.name or (("/" in source or "\\" in source)
                                   and Path(source).resolve() == path.resolve())


# -- ranking and latency metrics ---------------------------------------------------------


def hit_at(relevance: Sequence[bool], k: int) -> float:
    """1.0 when a relevant passage is among the first ``k``."""
    return float(any(relevance[:k]))


def reciprocal_rank(relevance: Sequence[bool], k: int) -> float:
    """1/rank of the first relevant passage within ``k``, else 0."""
    for rank, relevant in enumerate(relevance[:k], start=1):
        if relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(relevance: Sequence[bool], k: int, n_relevant: int) -> float:
    """Binary-relevance nDCG@k; the ideal ranking puts all ``n_relevant`` passages first."""
    dcg = sum(1.0 / math.log2(rank + 1) for rank, rel in enumerate(relevance[:k], 1) if rel)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, n_relevant) + 1))
    return dcg / ideal if ideal else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile with linear interpolation (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None



class Generated(Protocol):
    """An answer's timings and token count (an ``Answer`` or an evaluation row)."""

    @property
    def timings(self) -> Timings: ...

    @property
    def generated_tokens(self) -> int | None: ...


def tokens_per_second(answers: Iterable[Generated]) -> float | None:
    """Generation speed after the first token, pooled over answers.

    Pooling (total tokens / total time) keeps one-token answers, whose own
    rate is 0/0, from skewing the figure.
    """
    tokens = seconds = 0.0
    for answer in answers:
        t, count = answer.timings, answer.generated_tokens or 0
        if t.first_token is not None and t.total is not None and count > 1:
            tokens += count - 1
            seconds += t.total - t.first_token
    return tokens / seconds if seconds > 0 else None
