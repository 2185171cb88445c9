"""Run a question set through the system and score every question.

``qa eval QUESTIONS.jsonl`` runs every question through the same ``Assistant``
users talk to, so a number here is a number users get. Each question gets a row
with its verdicts (kept in ``report.json`` and ``report.md``) because a metric
only says *that* something got worse; the rows say *which* question and *why*.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from qa.errors import QAError
from qa.evaluation.metrics import (
    Evidence,
    Judge,
    contains_answer,
    exact_match,
    hit_at,
    ndcg_at,
    reciprocal_rank,
    token_f1,
)
from qa.evaluation.questions import QuestionItem
from qa.types import Answer, Citation, Passage, Timings, Turn

# (question, the system's answer) of an earlier turn; the same as qa.pipeline.Turn, which
# is not imported here: the evaluation does not load the answering path until it runs.

NDCG_AT = 10  # nDCG is always reported at 10, whatever -k says, so runs stay comparable
EXCERPT_CHARS = 160


class Answerer(Protocol):
    """The part of ``Assistant`` the evaluation uses (a fake one serves in tests)."""

    def retrieve(self, question: str, k: int = 10) -> list[Passage]: ...

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer: ...


@dataclass
class QuestionResult:
    """One question's row: what the system did and every verdict on it."""

    id: str
    question: str
    answers: list[str]
    unanswerable: bool
    sources: list[str]
    kind: str | None
    conversation: str | None = None  # for a turn of a conversation: its id and 1-based turn
    turn: int = 0
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    first_relevant: int | None = None  # 1-based rank among the retrieved passages
    gold_passages: int | None = None  # passages in the whole index that are relevant
    hit: float | None = None
    hit_at_1: float | None = None
    reciprocal_rank: float | None = None
    ndcg: float | None = None
    answer: str | None = None
    abstained: bool | None = None
    refusal_reason: str | None = None  # why the generated answer was refused, when it was
    trace: list[dict[str, str]] = field(default_factory=list)  # the checks' verdicts, in order
    draft: str | None = None  # the model's text when a check refused or retried it
    draft_right: bool | None = None  # that draft holds a gold answer (answerable questions)
    citations: list[dict[str, Any]] = field(default_factory=list)
    exact_match: float | None = None
    f1: float | None = None
    contains_answer: bool | None = None
    timings: Timings = field(default_factory=Timings)
    generated_tokens: int | None = None  # pieces the model generated (None: not asked)
    error: str | None = None
    verdict: str = ""
    passed: bool = False

    @property
    def right(self) -> bool:
        """An answerable question answered with a gold answer (not refused)."""
        return bool(self.contains_answer) and not self.abstained


@dataclass(frozen=True)
class EvaluationRun:
    """The rows, and warnings about the question set itself (a gold source that no
    indexed passage holds is a typo or a missing document, not a miss)."""

    results: list[QuestionResult]
    warnings: list[str]


def evaluate(assistant: Answerer, items: Sequence[QuestionItem], k: int = 10,
             retrieval_only: bool = False, progress: bool = True,
             corpus: Sequence[Evidence] | None = None) -> EvaluationRun:
    """Run every question; ``corpus`` (all indexed passages) makes nDCG's ideal exact."""
    from tqdm import tqdm

    results, warnings = [], []
    warm_up = getattr(assistant, "warm_up", None)
    if warm_up is not None and not retrieval_only:
        warm_up()  # as the web chat does: the first question is not charged for loading
    bar = tqdm(items, desc="evaluating", unit=" q", file=sys.stderr, disable=not progress)
    histories: dict[str, list[Turn]] = {}
    for item in bar:
        history = histories.setdefault(item.conversation, []) if item.conversation else []
        result = score_question(assistant, item, k, retrieval_only, corpus, history)
        if item.conversation:  # the next turn hears the system's own answer, as a user would
            history.append((item.question, result.answer or ""))
        if result.gold_passages == 0:
            what = "gold source" if item.sources else "gold answer"
            warnings.append(f"{item.id} (line {item.line}): no indexed passage holds its {what}; "
                            "its retrieval is not scored")
        results.append(result)
    return EvaluationRun(results, warnings)


def score_question(assistant: Answerer, item: QuestionItem, k: int, retrieval_only: bool,
                   corpus: Sequence[Evidence] | None = None,
                   history: Sequence[Turn] = ()) -> QuestionResult:
    """One question's row; a follow-up is retrieved for and asked with ``history``."""
    judge = Judge(item)
    result = QuestionResult(id=item.id, question=item.question, answers=list(item.answers),
                            unanswerable=item.unanswerable, sources=list(item.sources),
                            kind=item.kind, conversation=item.conversation, turn=item.turn)
    try:
        started = time.perf_counter()
        passages = assistant.retrieve(_search_query(assistant, item.question, history),
                                      k=max(k, NDCG_AT))
        result.timings = Timings(retrieval=time.perf_counter() - started)
    except QAError as error:
        result.error = str(error)
        passages = []
    _score_retrieval(result, judge, passages, k, corpus)
    if not retrieval_only and result.error is None:
        try:
            answer = assistant.ask(item.question, history=list(history)) if history else \
                assistant.ask(item.question)
            _score_answer(result, judge, answer)
        except QAError as error:
            result.error = str(error)
    result.verdict, result.passed = verdict(result, k, retrieval_only)
    return result


def _search_query(assistant: Answerer, question: str, history: Sequence[Turn]) -> str:
    """What the system searches for: a follow-up's query carries the exchange it continues."""
    rewrite = getattr(assistant, "retrieval_query", None)
    return rewrite(question, history) if history and rewrite else question


def _score_retrieval(result: QuestionResult, judge: Judge, passages: Sequence[Passage], k: int,
                     corpus: Sequence[Evidence] | None) -> None:
    relevance = [judge.relevant(Evidence.from_passage(p)) for p in passages]
    result.retrieved = [_passage_row(p, rel) for p, rel in zip(passages, relevance, strict=True)]
    result.first_relevant = next((i for i, rel in enumerate(relevance, 1) if rel), None)
    if judge.item.unanswerable:
        return
    if corpus is not None:
        result.gold_passages = sum(judge.relevant(e) for e in corpus)
    if result.gold_passages == 0:
        return
    n_relevant = result.gold_passages or max(sum(relevance), 1)
    result.hit = hit_at(relevance, k)
    result.hit_at_1 = hit_at(relevance, 1)
    result.reciprocal_rank = reciprocal_rank(relevance, k)
    result.ndcg = ndcg_at(relevance, NDCG_AT, n_relevant)


def _score_answer(result: QuestionResult, judge: Judge, answer: Answer) -> None:
    result.answer = answer.text
    result.abstained = answer.abstained
    result.refusal_reason = answer.refusal_reason
    result.trace = [asdict(v) for v in answer.trace]
    result.draft = answer.draft
    # The answer's own timings replace the separate retrieve() call's: they are what users wait.
    result.timings, result.generated_tokens = answer.timings, answer.generated_tokens
    result.citations = [_citation_row(c, judge) for c in answer.citations]
    if judge.item.unanswerable:
        return
    if answer.draft is not None:
        result.draft_right = contains_answer(answer.draft, judge.item.answers)
    text = "" if answer.abstained else answer.text
    result.exact_match = exact_match(text, judge.item.answers)
    result.f1 = token_f1(text, judge.item.answers)
    result.contains_answer = contains_answer(text, judge.item.answers)


def _passage_row(passage: Passage, relevant: bool) -> dict[str, Any]:
    return {"chunk_id": passage.chunk_id, "source": passage.source,
            "score": round(float(passage.score), 4), "relevant": relevant,
            "excerpt": excerpt(passage.text)}


def _citation_row(citation: Citation, judge: Judge) -> dict[str, Any]:
    return {"number": citation.number, "chunk_id": citation.chunk_id, "source": citation.source,
            "supports": judge.supports(Evidence.from_citation(citation)),
            "excerpt": excerpt(citation.quote)}


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def verdict(result: QuestionResult, k: int, retrieval_only: bool) -> tuple[str, bool]:
    """A short word for the row and whether the question counts as passed."""
    if result.error is not None:
        return "error", False
    if retrieval_only:
        if result.unanswerable:
            return "unanswerable", True
        if result.hit is None:
            return "not scored", False
        return (f"hit@{k}", True) if result.hit else ("miss", False)
    if result.unanswerable:
        return ("refused", True) if result.abstained else ("answered (should refuse)", False)
    if result.abstained:
        return "refused (wrongly)", False
    return ("right", True) if result.contains_answer else ("wrong", False)


def corpus_of(assistant: Any) -> list[Evidence] | None:
    """Every indexed passage, so nDCG knows how many relevant passages exist."""
    store = getattr(assistant, "store", None)
    if store is None or not hasattr(store, "chunks"):  # an engine-held store is not listed whole
        return None
    evidence = []
    for chunk in store.chunks:
        document = store.documents.get(chunk.doc_id)
        evidence.append(Evidence(chunk.text, document.source if document else "",
                                 document.title if document else "", chunk.doc_id))
    return evidence
