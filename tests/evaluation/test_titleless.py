"""evals/titleless.py: title-less document retrieval through ``Assistant.retrieve``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.evaluation.scripts import load_script


def _module():
    return load_script("titleless")


XSUM_LINES = [
    {"id": "1", "summary": "A zoo in Leeds has welcomed twin red panda cubs.",
     "document": "Keepers at the city's zoo said the two cubs were born in June.\nThey are healthy."},
    {"id": "2", "summary": "The price of copper fell sharply on Monday.",
     "document": "Metal traders sold copper after weak factory figures from China.\nPrices fell 4%."},
    {"id": "3", "summary": "A lifeboat crew rescued two kayakers off the Cornish coast.",
     "document": "The pair were spotted clinging to their boats near Newquay.\nBoth are safe."},
]
BOOLQ_LINES = [
    {"question": "is the eiffel tower in paris", "title": "Eiffel Tower", "answer": "True",
     "passage": "The Eiffel Tower is a wrought-iron lattice tower  in Paris, France."},
    {"question": "do penguins live at the north pole", "title": "Penguin", "answer": "False",
     "passage": "Penguins live almost exclusively in the Southern Hemisphere."},
]


def _write(path: Path, lines: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_each_summary_finds_its_article_and_each_passage_is_a_file(tmp_path: Path) -> None:
    titleless = _module()
    xsum = titleless.read_xsum(_write(tmp_path / "x.jsonl", XSUM_LINES), limit=2)
    assert [q.doc_name for q in xsum.queries] == ["xsum-1", "xsum-2"]
    assert list(xsum.documents) == ["xsum-1", "xsum-2"] and "copper" in xsum.queries[1].text
    boolq = titleless.read_boolq(_write(tmp_path / "b.jsonl", BOOLQ_LINES), limit=1)
    assert len(boolq.queries) == 1 and len(boolq.documents) == 2  # every passage, no title
    assert boolq.documents[boolq.queries[0].doc_name].startswith("The Eiffel Tower is a")


def test_scores_from_ranks() -> None:
    score = _module().summarize("s", [1, 2, None], documents=3, seconds=0.3)
    assert score.ndcg_at_10 == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert (score.hit_at_1, score.recall_at_10) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert score.mrr_at_10 == pytest.approx(0.5) and score.ms_per_query == pytest.approx(100.0)


def test_the_script_indexes_plain_files_and_ranks_through_retrieve(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    titleless = _module()
    out = tmp_path / "out"
    assert titleless.main(["--sets", "xsum", "--out", str(out),
                           "--xsum-file", str(_write(tmp_path / "x.jsonl", XSUM_LINES))]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["scores"][0]["queries"] == 3 and report["scores"][0]["hit_at_1"] == 1.0
    assert sorted(p.name for p in (out / "xsum" / "docs").iterdir()) == [
        "xsum-1.txt", "xsum-2.txt", "xsum-3.txt"]
    assert "nDCG@10" in capsys.readouterr().out


def test_a_qa_eval_set_ranks_the_document_holding_its_source(tmp_path: Path) -> None:
    titleless = _module()
    docs = tmp_path / "docs"
    docs.mkdir()
    for line in XSUM_LINES:
        (docs / f"article_{line['id']}.txt").write_text(line["document"] + "\n")
    questions = _write(tmp_path / "questions.jsonl", [
        {"id": "q1", "question": "Where were the kayakers found?", "answers": ["near Newquay"],
         "source": "spotted clinging to their boats"},
        {"id": "q2", "question": "Why did copper fall?", "answers": ["weak factory figures"]},
        {"id": "q3", "question": "Who won the cup?", "answers": [], "unanswerable": True}])
    out = tmp_path / "out"
    assert titleless.main(["--sets", "--out", str(out),
                           "--question-set", str(questions), str(docs)]) == 0
    score = json.loads((out / "report.json").read_text())["scores"][0]
    assert (score["queries"], score["documents"]) == (2, 3)  # the unanswerable one is left out
    assert score["hit_at_1"] == 1.0
