"""The shipped question sets stay well-formed and true to their briefings.

A gold answer or source quote that drifts from the text would silently turn
right answers into misses, so every one is checked against the document.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from qa.evaluation.metrics import normalize_answer
from qa.evaluation.questions import load_question_set
from tests.conftest import ROOT

SEED_SET = ROOT / "evals" / "seed.jsonl"
BRIEFING = ROOT / "seeds" / "russia-hosts-taliban-moscow-talks-2021-10-20.txt"
# A held-out set over another briefing: checks that tuning on the seed set generalises.
HELDOUT_SET = ROOT / "evals" / "heldout" / "questions.jsonl"
HELDOUT_BRIEFING = ROOT / "evals" / "heldout" / "docs" / "valdora-port-strike-2024-03-14.txt"
SETS = pytest.mark.parametrize("questions, briefing", [(SEED_SET, BRIEFING), (HELDOUT_SET, HELDOUT_BRIEFING)],
                               ids=["seed", "heldout"])


def _body(briefing: Path = BRIEFING) -> str:
    """The briefing without its header line (date and headline are not body text)."""
    return briefing.read_text(encoding="utf-8").split("\n", 1)[1]


def test_seed_set_parses_cleanly_and_is_big_enough() -> None:
    parsed = load_question_set(SEED_SET)
    assert parsed.bad_lines == []
    assert len(parsed.items) >= 40
    assert sum(i.unanswerable for i in parsed.items) >= 8
    assert len({i.question.lower() for i in parsed.items}) == len(parsed.items)


def test_seed_set_covers_every_kind_of_question() -> None:
    kinds = Counter(i.kind for i in load_question_set(SEED_SET).items)
    for kind in ("name", "number", "date", "place", "paraphrase", "two-sentence", "near miss"):
        assert kinds[kind] >= 3, kind


@SETS
def test_every_source_quote_is_verbatim_in_the_briefing(questions: Path, briefing: Path) -> None:
    body = _body(briefing)
    parsed = load_question_set(questions)
    assert parsed.bad_lines == [] and len(parsed.items) >= 20
    for item in parsed.items:
        assert item.unanswerable or item.sources, f"{item.id} has no source"
        for quote in item.sources:
            assert quote in body, f"{item.id}: source not in the briefing: {quote!r}"


@SETS
def test_a_gold_answer_of_every_answerable_question_is_in_its_source(questions: Path, briefing: Path) -> None:
    """The source quote must hold an answer, or a right answer could cite it and fail."""
    for item in load_question_set(questions).items:
        if item.unanswerable:
            continue
        golds = [normalize_answer(a) for a in item.answers]
        quotes = [f" {normalize_answer(q)} " for q in item.sources]
        assert any(f" {g} " in q for g in golds for q in quotes), \
            f"{item.id}: no gold answer inside its source"


@SETS
def test_unanswerable_questions_have_no_gold(questions: Path, briefing: Path) -> None:
    for item in load_question_set(questions).items:
        if item.unanswerable:
            assert not item.answers and not item.sources, item.id
