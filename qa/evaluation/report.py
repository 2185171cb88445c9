"""The report of a run: headline figures from the rows, the console table, report.json
and report.md."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.evaluation.metrics import mean, percentile, tokens_per_second
from qa.evaluation.questions import BadLine
from qa.evaluation.runner import QuestionResult, excerpt


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
    if not retrieval_only:
        summary["checks"] = _check_summary(results)
    if any(r.conversation for r in results):
        summary["conversations"] = _conversation_summary(results, retrieval_only)
    summary["latency"] = _latency_summary(results)
    summary["by_type"] = _by_type(results)
    return summary


def _check_summary(results: Sequence[QuestionResult]) -> dict[str, dict[str, int]]:
    """Per check (in the order they first ran): how often it fired (retried or refused) on
    answerable and on unanswerable questions, and how many answers it refused whose draft
    held a gold answer (a right answer turned into a refusal)."""
    answered = [r for r in results if r.error is None and r.abstained is not None]
    names = list(dict.fromkeys(v["check"] for r in answered for v in r.trace))
    answerable = [r for r in answered if not r.unanswerable]
    unanswerable = [r for r in answered if r.unanswerable]
    return {name: {"fired_answerable": sum(_fired(r, name) for r in answerable),
                   "answerable": len(answerable),
                   "fired_unanswerable": sum(_fired(r, name) for r in unanswerable),
                   "unanswerable": len(unanswerable),
                   "right_refused": sum(bool(r.abstained and r.draft_right and _fired(r, name, ("refuse",)))
                                        for r in answerable)}
            for name in names}


def _fired(result: QuestionResult, check: str, actions: tuple[str, ...] = ("retry", "refuse")) -> bool:
    return any(v["check"] == check and v["action"] in actions for v in result.trace)


def _conversation_summary(results: Sequence[QuestionResult], retrieval_only: bool) -> dict[str, Any]:
    """First turns and follow-ups apart: a follow-up is only right when the system kept
    track of the conversation (its own earlier answers are the history)."""
    turns = [r for r in results if r.conversation]
    first = [r for r in turns if r.turn == 1]
    follow_ups = [r for r in turns if r.turn > 1]
    summary: dict[str, Any] = {"conversations": len({r.conversation for r in turns}),
                               "turns": len(turns), "follow_ups": len(follow_ups),
                               "follow_ups_passed": sum(r.passed for r in follow_ups),
                               "first_turns": len(first), "first_turns_passed": sum(r.passed for r in first)}
    if not retrieval_only:
        for name, group in (("first_turns", first), ("follow_ups", follow_ups)):
            answerable = [r for r in group if not r.unanswerable]
            summary[f"{name}_answerable"] = len(answerable)
            summary[f"{name}_right"] = mean(float(r.right) for r in answerable)
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
        values = [v for r in results if (v := getattr(r.timings, name)) is not None]
        summary[name] = {"n": len(values), "p50": percentile(values, 50),
                         "p95": percentile(values, 95)}
    summary["tokens_per_s"] = tokens_per_second(results)
    return summary


def _by_type(results: Sequence[QuestionResult]) -> dict[str, dict[str, int]]:
    groups: dict[str, dict[str, int]] = {}
    for r in results:
        group = groups.setdefault(r.kind or "(none)", {"questions": 0, "passed": 0})
        group["questions"] += 1
        group["passed"] += int(r.passed)
    return dict(sorted(groups.items()))


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
    if "conversations" in s:
        rows += _conversation_rows(s["conversations"])
    lat = s["latency"]
    for name, label in (("retrieval", "retrieval"), ("first_token", "first token"),
                        ("total", "total")):
        if lat[name]["n"]:
            value = f"{_secs(lat[name]['p50'])} / {_secs(lat[name]['p95'])}"
            rows.append(("latency", f"{label} p50 / p95", value, str(lat[name]["n"])))
    if lat["tokens_per_s"] is not None:
        rows.append(("latency", "tokens/s (generation)", f"{lat['tokens_per_s']:.1f}", ""))
    return rows


def check_rows(report: Report) -> list[tuple[str, str, str, str]]:
    """(check, fired on answerable, fired on unanswerable, right answers refused) rows."""
    return [(name, f"{c['fired_answerable']}/{c['answerable']}",
             f"{c['fired_unanswerable']}/{c['unanswerable']}", str(c["right_refused"]))
            for name, c in report.summary.get("checks", {}).items()]


CHECK_HEADERS = ("check", "fired: answerable", "fired: unanswerable", "right answers refused")


def _conversation_rows(c: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, label in (("first_turns", "first turns"), ("follow_ups", "follow-ups")):
        if f"{name}_right" in c:
            rows.append(("conversations", f"{label} right", _pct(c[f"{name}_right"]),
                         str(c[f"{name}_answerable"])))
        rows.append(("conversations", f"{label} passed", f"{c[f'{name}_passed']}/{c[name]}", str(c[name])))
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
    if check_rows(report):
        parts += ["", format_table(check_rows(report), CHECK_HEADERS, numeric_columns=3)]
    failed = [r for r in report.questions if not r.passed]
    if failed:
        parts += ["", f"Not passed ({len(failed)}):"]
        parts += [f"  {r.id:<8} {r.verdict:<24} {excerpt(r.question, 70)}" for r in failed]
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
             *(["## Checks", "", _md_table(CHECK_HEADERS, check_rows(report)), ""]
               if check_rows(report) else []),
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
        lines.append(f"- source: {' / '.join(excerpt(s) for s in result.sources)}")
    if result.answer is not None:
        lines.append(f"- answer: {' '.join(result.answer.split())}")
    for v in result.trace:
        lines.append(f"- check {v['check']}: {v['action']}" + (f" ({v['detail']})" if v["detail"] else ""))
    if result.draft is not None:
        held = "holds gold" if result.draft_right else "does not hold gold"
        lines.append(f"- draft ({held}): {' '.join(result.draft.split())}")
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
