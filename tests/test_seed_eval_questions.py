"""The shipped seed question set stays well-formed and true to the briefing.

A gold answer or source quote that drifts from the text would silently turn
right answers into misses, so every one is checked against the document.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from qa.evaluation import load_question_set, normalize_answer

ROOT = Path(__file__).resolve().parent.parent
SEED_SET = ROOT / "evals" / "seed.jsonl"
BRIEFING = ROOT / "seeds" / "russia-hosts-taliban-moscow-talks-2021-10-20.txt"


def _body() -> str:
    """The briefing without its header line (date and headline are not body text)."""
    return BRIEFING.read_text(encoding="utf-8").split("\n", 1)[1]


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


def test_every_source_quote_is_verbatim_in_the_briefing() -> None:
    body = _body()
    for item in load_question_set(SEED_SET).items:
        assert item.unanswerable or item.sources, f"{item.id} has no source"
        for quote in item.sources:
            assert quote in body, f"{item.id}: source not in the briefing: {quote!r}"


def test_a_gold_answer_of_every_answerable_question_is_in_its_source() -> None:
    """The source quote must hold an answer, or a right answer could cite it and fail."""
    for item in load_question_set(SEED_SET).items:
        if item.unanswerable:
            continue
        golds = [normalize_answer(a) for a in item.answers]
        quotes = [f" {normalize_answer(q)} " for q in item.sources]
        assert any(f" {g} " in q for g in golds for q in quotes), \
            f"{item.id}: no gold answer inside its source"


def test_unanswerable_questions_have_no_gold() -> None:
    for item in load_question_set(SEED_SET).items:
        if item.unanswerable:
            assert not item.answers and not item.sources, item.id
