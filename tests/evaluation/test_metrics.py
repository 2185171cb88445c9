"""Metric arithmetic on known inputs, and judging which passages hold the gold."""

from __future__ import annotations

import math

import pytest

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
from qa.types import Answer, Timings
from tests.evaluation.scripted import _item

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
    answers = [Answer("q", "a", timings=Timings(first_token=1.0, total=3.0), generated_tokens=5),
               Answer("q", "a", timings=Timings(first_token=0.5, total=1.5), generated_tokens=3),
               Answer("q", "a", timings=Timings(first_token=1.0, total=1.0), generated_tokens=1),
               Answer("q", "a", timings=Timings(retrieval=0.1, total=0.1))]  # refused before the model
    assert tokens_per_second(answers) == pytest.approx((4 + 2) / (2.0 + 1.0))
    assert tokens_per_second([]) is None


# -- judging passages ---------------------------------------------------------------------


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
