"""Score the system on a question set: retrieval, answers, citations, refusals, latency.

``qa eval QUESTIONS.jsonl`` runs every question through the same ``Assistant``
users talk to, so a number here is a number users get. Each question gets a row
with its verdicts (kept in ``report.json`` and ``report.md``) because a metric
only says *that* something got worse; the rows say *which* question and *why*.

Judging is by text, never by a model: a passage is relevant when it holds the
question's gold ``source`` (a document name or a quote of the passage) or, when
no source is given, one of its gold answers; an answer is right when it contains
a gold answer. Both comparisons use SQuAD-style normalisation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from qa.citations import strip_markers
from qa.errors import QAError
from qa.settings import Settings
from qa.types import Answer, Citation, Passage

NDCG_AT = 10  # nDCG is always reported at 10, whatever -k says, so runs stay comparable
EXCERPT_CHARS = 160


class QuestionSetError(QAError):
    """The question set cannot be read, or holds no usable question."""


# -- question sets -----------------------------------------------------------------


@dataclass(frozen=True)
class QuestionItem:
    """One line of a question set. ``sources`` are document names or passage quotes."""

    id: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool = False
    sources: tuple[str, ...] = ()
    kind: str | None = None  # free-form "type" label, used to break results down
    line: int = 0


@dataclass(frozen=True)
class BadLine:
    """A line that was skipped, with why, so the author can fix it."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class QuestionSet:
    items: list[QuestionItem]
    bad_lines: list[BadLine]


def load_question_set(path: str | Path) -> QuestionSet:
    """Parse a JSONL file; a bad line is recorded and skipped, never fatal."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise QuestionSetError(f"Cannot read the question set {path}: {error}") from error
    return parse_question_set(text.splitlines())


def parse_question_set(lines: Iterable[str]) -> QuestionSet:
    """Items and bad lines of JSONL text; blank lines and ``#`` comments are skipped."""
    items: list[QuestionItem] = []
    bad: list[BadLine] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = parse_item(json.loads(line), number)
        except json.JSONDecodeError as error:
            bad.append(BadLine(number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        except ValueError as error:
            bad.append(BadLine(number, str(error)))
            continue
        if item.id in first_seen:
            bad.append(BadLine(number, f"duplicate id {item.id!r} (first on line "
                                       f"{first_seen[item.id]})"))
            continue
        first_seen[item.id] = number
        items.append(item)
    return QuestionSet(items, bad)


def parse_item(raw: Any, line: int = 0) -> QuestionItem:
    """Validate one decoded line; ``ValueError`` says what is wrong in the user's terms."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    item_id = raw.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or str(item_id) == "":
        raise ValueError("'id' must be a non-empty string or number")
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    unanswerable = raw.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    answers = _string_list(raw.get("answers", []), "answers")
    if not unanswerable and not answers:
        raise ValueError("'answers' must list at least one acceptable answer "
                         "(or set \"unanswerable\": true)")
    source = raw.get("source")
    sources = () if source is None else _string_list(source, "source")
    kind = raw.get("type")
    return QuestionItem(id=str(item_id), question=question.strip(), answers=answers,
                        unanswerable=unanswerable, sources=sources,
                        kind=kind if isinstance(kind, str) else None, line=line)


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple of the non-blank ones."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"'{name}' must be a string or a list of strings")
    return tuple(v for v in values if v.strip())


# -- answer metrics ----------------------------------------------------------------

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
        return cls(citation.quote, citation.source, citation.title,
                   citation.chunk_id.rpartition(":")[0])

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


# -- running a question set -------------------------------------------------------------


class Answerer(Protocol):
    """The part of ``Assistant`` the evaluation uses (a fake one serves in tests)."""

    def retrieve(self, question: str, k: int = 10) -> list[Passage]: ...

    def ask(self, question: str) -> Answer: ...


@dataclass
class QuestionResult:
    """One question's row: what the system did and every verdict on it."""

    id: str
    question: str
    answers: list[str]
    unanswerable: bool
    sources: list[str]
    kind: str | None
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
    citations: list[dict[str, Any]] = field(default_factory=list)
    exact_match: float | None = None
    f1: float | None = None
    contains_answer: bool | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    verdict: str = ""
    passed: bool = False

    @property
    def right(self) -> bool:
        """An answerable question answered with a gold answer (not refused)."""
        return bool(self.contains_answer) and not self.abstained


@dataclass
class Report:
    config: dict[str, Any]
    summary: dict[str, Any]
    questions: list[QuestionResult]
    bad_lines: list[BadLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "summary": self.summary,
                "bad_lines": [asdict(b) for b in self.bad_lines], "warnings": self.warnings,
                "questions": [asdict(q) for q in self.questions]}


def evaluate(assistant: Answerer, items: Sequence[QuestionItem], k: int = 10,
             retrieval_only: bool = False, progress: bool = True,
             corpus: Sequence[Evidence] | None = None) -> tuple[list[QuestionResult], list[str]]:
    """Run every question; ``corpus`` (all indexed passages) makes nDCG's ideal exact.

    Returns the rows and warnings about the question set itself (a gold source
    that no indexed passage holds is a typo or a missing document, not a miss).
    """
    from tqdm import tqdm

    results, warnings = [], []
    warm_up = getattr(assistant, "warm_up", None)
    if warm_up is not None and not retrieval_only:
        warm_up()  # as the web chat does: the first question is not charged for loading
    bar = tqdm(items, desc="evaluating", unit=" q", file=sys.stderr, disable=not progress)
    for item in bar:
        result = score_question(assistant, item, k, retrieval_only, corpus)
        if result.gold_passages == 0:
            what = "gold source" if item.sources else "gold answer"
            warnings.append(f"{item.id} (line {item.line}): no indexed passage holds its {what}; "
                            "its retrieval is not scored")
        results.append(result)
    return results, warnings


def score_question(assistant: Answerer, item: QuestionItem, k: int, retrieval_only: bool,
                   corpus: Sequence[Evidence] | None = None) -> QuestionResult:
    judge = Judge(item)
    result = QuestionResult(id=item.id, question=item.question, answers=list(item.answers),
                            unanswerable=item.unanswerable, sources=list(item.sources),
                            kind=item.kind)
    try:
        started = time.perf_counter()
        passages = assistant.retrieve(item.question, k=max(k, NDCG_AT))
        result.timings["retrieval"] = time.perf_counter() - started
    except QAError as error:
        result.error = str(error)
        passages = []
    _score_retrieval(result, judge, passages, k, corpus)
    if not retrieval_only and result.error is None:
        try:
            _score_answer(result, judge, assistant.ask(item.question))
        except QAError as error:
            result.error = str(error)
    result.verdict, result.passed = verdict(result, k, retrieval_only)
    return result


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
    # The answer's own timings replace the separate retrieve() call's: they are what users wait.
    result.timings = {name: float(value) for name, value in answer.timings.items()}
    result.citations = [_citation_row(c, judge) for c in answer.citations]
    if judge.item.unanswerable:
        return
    text = "" if answer.abstained else answer.text
    result.exact_match = exact_match(text, judge.item.answers)
    result.f1 = token_f1(text, judge.item.answers)
    result.contains_answer = contains_answer(text, judge.item.answers)


def _passage_row(passage: Passage, relevant: bool) -> dict[str, Any]:
    return {"chunk_id": passage.chunk_id, "source": passage.source,
            "score": round(float(passage.score), 4), "relevant": relevant,
            "excerpt": _excerpt(passage.text)}


def _citation_row(citation: Citation, judge: Judge) -> dict[str, Any]:
    return {"number": citation.number, "chunk_id": citation.chunk_id, "source": citation.source,
            "supports": judge.supports(Evidence.from_citation(citation)),
            "excerpt": _excerpt(citation.quote)}


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
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


# -- summary --------------------------------------------------------------------------------


def summarize(results: Sequence[QuestionResult], k: int, retrieval_only: bool) -> dict[str, Any]:
    """Every headline figure of the report, computed from the rows alone."""
    answerable = [r for r in results if not r.unanswerable]
    summary: dict[str, Any] = {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(results) - len(answerable),
        "passed": sum(r.passed for r in results),
        "errors": sum(r.error is not None for r in results),
        "retrieval": _retrieval_summary(answerable, k),
    }
    if not retrieval_only:
        summary["answers"] = _answer_summary(answerable)
        summary["citations"] = _citation_summary(answerable)
        summary["refusals"] = _refusal_summary(results)
    summary["latency"] = _latency_summary(results)
    summary["by_type"] = _by_type(results)
    return summary


def _retrieval_summary(answerable: Sequence[QuestionResult], k: int) -> dict[str, Any]:
    scored = [r for r in answerable if r.hit is not None]
    return {"k": k, "scored": len(scored), "hit_at_k": mean(r.hit for r in scored),
            "hit_at_1": mean(r.hit_at_1 for r in scored),
            "mrr": mean(r.reciprocal_rank for r in scored),
            "ndcg_at_10": mean(r.ndcg for r in scored)}


def _answer_summary(answerable: Sequence[QuestionResult]) -> dict[str, Any]:
    return {"scored": len(answerable),
            "exact_match": mean(r.exact_match or 0.0 for r in answerable),
            "f1": mean(r.f1 or 0.0 for r in answerable),
            "contains_answer": mean(float(r.right) for r in answerable)}


def _citation_summary(answerable: Sequence[QuestionResult]) -> dict[str, Any]:
    """Precision over the citations of answerable questions (unanswerable ones have no
    right passage: answering them is counted under refusals); recall over right answers."""
    citations = [c for r in answerable for c in r.citations]
    right = [r for r in answerable if r.right]
    return {"citations": len(citations),
            "precision": mean(float(c["supports"]) for c in citations),
            "right_answers": len(right),
            "recall": mean(float(any(c["supports"] for c in r.citations)) for r in right)}


def _refusal_summary(results: Sequence[QuestionResult]) -> dict[str, Any]:
    unanswerable = [r for r in results if r.unanswerable and r.error is None]
    answerable = [r for r in results if not r.unanswerable and r.error is None]
    return {"unanswerable": len(unanswerable),
            "unanswerable_refused": mean(float(bool(r.abstained)) for r in unanswerable),
            "answerable": len(answerable),
            "answerable_refused": mean(float(bool(r.abstained)) for r in answerable)}


def _latency_summary(results: Sequence[QuestionResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in ("retrieval", "first_token", "total"):
        values = [r.timings[name] for r in results if name in r.timings]
        summary[name] = {"n": len(values), "p50": percentile(values, 50),
                         "p95": percentile(values, 95)}
    summary["tokens_per_s"] = tokens_per_second([r.timings for r in results])
    return summary


def tokens_per_second(timings: Iterable[dict[str, float]]) -> float | None:
    """Generation speed after the first token, pooled over answers.

    Pooling (total tokens / total time) keeps one-token answers, whose own
    rate is 0/0, from skewing the figure.
    """
    tokens = seconds = 0.0
    for t in timings:
        if "first_token" in t and "total" in t and t.get("tokens", 0) > 1:
            tokens += t["tokens"] - 1
            seconds += t["total"] - t["first_token"]
    return tokens / seconds if seconds > 0 else None


def _by_type(results: Sequence[QuestionResult]) -> dict[str, dict[str, int]]:
    groups: dict[str, dict[str, int]] = {}
    for r in results:
        group = groups.setdefault(r.kind or "(none)", {"questions": 0, "passed": 0})
        group["questions"] += 1
        group["passed"] += int(r.passed)
    return dict(sorted(groups.items()))


# -- output -------------------------------------------------------------------------------


def build_report(results: list[QuestionResult], config: dict[str, Any],
                 bad_lines: Sequence[BadLine] = (), warnings: Sequence[str] = ()) -> Report:
    summary = summarize(results, config.get("k", 10), config.get("retrieval_only", False))
    return Report(config, summary, results, list(bad_lines), list(warnings))


def summary_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """(section, metric, value, n) rows shared by the console and markdown tables."""
    s = report.summary
    r = s["retrieval"]
    rows = [("retrieval", f"hit@{r['k']}", _pct(r["hit_at_k"]), str(r["scored"])),
            ("retrieval", "hit@1", _pct(r["hit_at_1"]), str(r["scored"])),
            ("retrieval", f"MRR@{r['k']}", _num(r["mrr"]), str(r["scored"])),
            ("retrieval", "nDCG@10", _num(r["ndcg_at_10"]), str(r["scored"]))]
    if "answers" in s:
        a, c, f = s["answers"], s["citations"], s["refusals"]
        rows += [("answers", "exact match", _pct(a["exact_match"]), str(a["scored"])),
                 ("answers", "token F1", _num(a["f1"]), str(a["scored"])),
                 ("answers", "contains a gold answer", _pct(a["contains_answer"]),
                  str(a["scored"])),
                 ("citations", "precision", _pct(c["precision"]), str(c["citations"])),
                 ("citations", "recall (of right answers)", _pct(c["recall"]),
                  str(c["right_answers"])),
                 ("refusals", "unanswerable refused", _pct(f["unanswerable_refused"]),
                  str(f["unanswerable"])),
                 ("refusals", "answerable wrongly refused", _pct(f["answerable_refused"]),
                  str(f["answerable"]))]
    lat = s["latency"]
    for name, label in (("retrieval", "retrieval"), ("first_token", "first token"),
                        ("total", "total")):
        if lat[name]["n"]:
            value = f"{_secs(lat[name]['p50'])} / {_secs(lat[name]['p95'])}"
            rows.append(("latency", f"{label} p50 / p95", value, str(lat[name]["n"])))
    if lat["tokens_per_s"] is not None:
        rows.append(("latency", "tokens/s (generation)", f"{lat['tokens_per_s']:.1f}", ""))
    return rows


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str],
                 numeric_columns: int = 2) -> str:
    """Plain aligned columns; the last ``numeric_columns`` right-aligned so digits line up."""
    table = [list(headers), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.rjust(w) if i >= len(headers) - numeric_columns else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_console(report: Report) -> str:
    s, config = report.summary, report.config
    mode = "retrieval only" if config.get("retrieval_only") else "full (retrieval + generation)"
    head = (f"{config.get('questions_file', 'questions')}: {s['questions']} questions "
            f"({s['answerable']} answerable, {s['unanswerable']} unanswerable), {mode}; "
            f"passed {s['passed']}/{s['questions']}")
    parts = [head, "", format_table(summary_rows(report), ("section", "metric", "value", "n"))]
    failed = [r for r in report.questions if not r.passed]
    if failed:
        parts += ["", f"Not passed ({len(failed)}):"]
        parts += [f"  {r.id:<8} {r.verdict:<24} {_excerpt(r.question, 70)}" for r in failed]
    for note in [*map(str, report.bad_lines), *report.warnings]:
        parts.append(f"warning: {note}")
    return "\n".join(parts)


def format_markdown(report: Report) -> str:
    s, config = report.summary, report.config
    lines = ["# Evaluation report", "",
             f"- question set: `{config.get('questions_file')}` ({s['questions']} questions, "
             f"{s['answerable']} answerable, {s['unanswerable']} unanswerable; "
             f"{len(report.bad_lines)} bad lines skipped)",
             f"- mode: {'retrieval only' if config.get('retrieval_only') else 'full'}, "
             f"k={config.get('k')}; run {config.get('started')}",
             f"- passed: {s['passed']}/{s['questions']}", "", "## Summary", "",
             _md_table(("section", "metric", "value", "n"), summary_rows(report)), "",
             "## By question type", "",
             _md_table(("type", "questions", "passed"),
                       [(t, str(g["questions"]), str(g["passed"]))
                        for t, g in s["by_type"].items()])]
    if report.bad_lines or report.warnings:
        lines += ["", "## Warnings", ""]
        lines += [f"- {note}" for note in [*map(str, report.bad_lines), *report.warnings]]
    failed = [r for r in report.questions if not r.passed]
    lines += ["", f"## Not passed ({len(failed)})", ""]
    for result in failed:
        lines += _md_details(result)
    retrieval_only = bool(config.get("retrieval_only"))
    headers = ("id", "type", "question", "top passage" if retrieval_only else "answer",
               "citations", "first relevant", "verdict")
    rows = [_md_row(r, retrieval_only) for r in report.questions]
    lines += ["## All questions", "", _md_table(headers, rows), ""]
    return "\n".join(lines)


def _md_details(result: QuestionResult) -> list[str]:
    gold = "(unanswerable)" if result.unanswerable else "; ".join(result.answers)
    lines = [f"### {result.id}: {result.verdict}", "", f"- question: {result.question}",
             f"- gold: {gold}"]
    if result.sources:
        lines.append(f"- source: {' / '.join(_excerpt(s) for s in result.sources)}")
    if result.answer is not None:
        lines.append(f"- answer: {' '.join(result.answer.split())}")
    for c in result.citations:
        mark = "holds gold" if c["supports"] else "does not hold gold"
        lines.append(f"- cited [{c['number']}] ({mark}): {c['excerpt']}")
    rank = result.first_relevant or "none"
    lines.append(f"- first relevant passage: {rank} of {len(result.retrieved)} retrieved")
    if result.retrieved and not result.unanswerable:
        lines.append(f"- top passage: {result.retrieved[0]['excerpt']}")
    if result.error:
        lines.append(f"- error: {result.error}")
    return [*lines, ""]


def _md_row(result: QuestionResult, retrieval_only: bool) -> list[str]:
    citations = " ".join(f"[{c['number']}]{'✓' if c['supports'] else '✗'}"
                         for c in result.citations)
    if retrieval_only:
        answer = result.retrieved[0]["excerpt"] if result.retrieved else ""
    else:
        answer = " ".join((result.answer or "").split())
    return [result.id, result.kind or "", result.question, answer, citations,
            str(result.first_relevant or "-"), result.verdict]


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_report(report: Report, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "report.json", folder / "report.md"
    json_path.write_text(json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    md_path.write_text(format_markdown(report), encoding="utf-8")
    return json_path, md_path


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}s"


# -- command line -------------------------------------------------------------------------


def run_from_cli(args: argparse.Namespace, settings: Settings) -> int:
    """``qa eval``: load the set, open (or build) the index, score, print, write reports."""
    question_set = load_question_set(args.questions)
    for bad in question_set.bad_lines:
        print(f"warning: {args.questions}: {bad} (skipped)", file=sys.stderr)
    if not question_set.items:
        raise QuestionSetError(f"No usable question in {args.questions}; "
                               "each line needs an id, a question and answers.")
    k = max(1, int(args.k))
    config = {"questions_file": str(args.questions), "docs": args.docs,
              "index": str(args.index_dir) if args.index_dir else None, "k": k,
              "retrieval_only": bool(args.retrieval_only),
              "started": datetime.now(UTC).isoformat(timespec="seconds"),
              "settings": {"top_k": settings.top_k, "candidates": settings.candidates,
                           "min_relevance": settings.min_relevance,
                           "generator": settings.generator_path or "default",
                           "embedder": settings.embedder_path or "default"}}
    with open_for_eval(args, settings) as assistant:
        results, warnings = evaluate(assistant, question_set.items, k, args.retrieval_only,
                                     corpus=corpus_of(assistant))
    report = build_report(results, config, question_set.bad_lines, warnings)
    json_path, md_path = write_report(report, Path(args.out))
    print(format_console(report))
    print(f"\nReport: {json_path} and {md_path}")
    return 0


@contextlib.contextmanager
def open_for_eval(args: argparse.Namespace, settings: Settings) -> Iterator[Any]:
    """The Assistant to score: ``--docs`` indexes into a scratch folder unless ``--index``
    names one, so an evaluation never rewrites the user's everyday index by surprise."""
    from qa.answering import Assistant
    from qa.cli import progress_bar

    if not args.docs:
        yield Assistant.open(settings.index_dir, settings=settings)
        return
    with contextlib.ExitStack() as stack:
        index_dir = args.index_dir or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="qa-eval-index-"))
        yield Assistant.from_folder(args.docs, index_dir, settings=settings,
                                    progress=progress_bar())


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
