"""evals/boolq.py: the BoolQ converter and side-by-side scoring of three retrievers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa.evaluation.questions import load_question_set
from tests.evaluation.scripts import load_script

# -- BoolQ converter and side-by-side scoring (evals/boolq.py) --------------------------------


def _boolq_module():
    return load_script("boolq")


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
