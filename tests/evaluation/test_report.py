"""The report: console and markdown figures, aligned tables, and the checks table (how often
each check fired on answerable and on unanswerable questions, and how many right answers,
drafts holding a gold answer, it refused)."""

from __future__ import annotations

import json

from qa.evaluation.report import build_report, format_console, format_markdown, format_table, write_report
from qa.evaluation.runner import evaluate
from qa.types import Answer, Passage, Verdict
from tests.evaluation.scripted import GOLD, TIMINGS, TOKENS, _cite, _item, scripted_run

REFUSAL = "The documents do not say."


class TracedAssistant:
    """Answers with a scripted text, trace and draft per question."""

    def __init__(self, script: dict[str, tuple[str, tuple[Verdict, ...], str | None]]):
        self.script = script

    def retrieve(self, question: str, k: int = 10) -> list[Passage]:
        return [GOLD]

    def ask(self, question: str) -> Answer:
        text, trace, draft = self.script[question]
        return Answer(question=question, text=text, citations=[] if text == REFUSAL else [_cite(1, GOLD)],
                      abstained=text == REFUSAL, passages=[GOLD], timings=TIMINGS, generated_tokens=TOKENS,
                      trace=trace, draft=draft)


def test_checks_table_counts_firings_and_right_answers_refused(tmp_path) -> None:
    items = [_item(("Hanafi",), item_id="refused-right"), _item(("Hanafi",), item_id="refused-wrong"),
             _item(("Hanafi",), item_id="retried"), _item((), unanswerable=True, item_id="none")]
    assistant = TracedAssistant({
        "question refused-right?": (REFUSAL, (Verdict("evidence", "refuse", "unsupported"),),
                                    "Hanafi leads it [1]."),
        "question refused-wrong?": (REFUSAL, (Verdict("evidence", "refuse", "unsupported"),),
                                    "Lavrov leads it [1]."),
        "question retried?": ("Hanafi leads it [1].", (Verdict("kind", "retry", "a name"),
                                                        Verdict("kind", "accept")), "It is led [1]."),
        "question none?": (REFUSAL, (Verdict("evidence", "refuse", "no support"),), "Putin [1]."),
    })
    results = evaluate(assistant, items, progress=False).results
    assert results[0].trace == [{"check": "evidence", "action": "refuse", "detail": "unsupported"}]
    assert [r.draft_right for r in results] == [True, False, False, None]
    report = build_report(results, {"k": 10, "retrieval_only": False})
    assert report.summary["checks"] == {
        "evidence": {"fired_answerable": 2, "answerable": 3, "fired_unanswerable": 1, "unanswerable": 1,
                     "right_refused": 1},
        "kind": {"fired_answerable": 1, "answerable": 3, "fired_unanswerable": 0, "unanswerable": 1,
                 "right_refused": 0}}
    console = format_console(report)
    assert "right answers refused" in console and "evidence" in console
    assert "## Checks" in format_markdown(report)
    json_path, _ = write_report(report, tmp_path)
    rows = json.loads(json_path.read_text())["questions"]
    assert rows[2]["trace"][0] == {"check": "kind", "action": "retry", "detail": "a name"}


def test_a_run_without_verdicts_has_an_empty_checks_table() -> None:
    assistant = TracedAssistant({"question q?": ("Hanafi [1].", (), None)})
    results = evaluate(assistant, [_item()], progress=False).results
    report = build_report(results, {"k": 10, "retrieval_only": False})
    assert report.summary["checks"] == {} and "right answers refused" not in format_console(report)


def test_console_and_markdown_show_figures_and_failed_rows() -> None:
    results = scripted_run().results
    report = build_report(results, {"k": 10, "retrieval_only": False,
                                    "questions_file": "set.jsonl"})
    console = format_console(report)
    assert "hit@10" in console and "66.7%" in console
    assert "Not passed (3):" in console and "answered (should refuse)" in console
    markdown = format_markdown(report)
    assert "| citations | precision | 50.0% | 2 |" in markdown
    assert "### wrong: wrong" in markdown and "- answer: Twelve nations [2]." in markdown
    assert "cited [2] (does not hold gold)" in markdown


def test_format_table_aligns_columns() -> None:
    table = format_table([("a", "long metric", "1.0%", "3"), ("bb", "m", "100.0%", "12")],
                         ("s", "metric", "value", "n"))
    lines = table.splitlines()
    assert lines[0] == "s   metric        value   n"
    assert lines[2] == "a   long metric    1.0%   3"
    assert lines[3] == "bb  m            100.0%  12"
