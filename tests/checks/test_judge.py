"""The model judge with the real default model: its P(yes) separates an answer its
evidence states from the same sentence's fact given for another question (a near
miss), and the threshold is what refuses."""

import re

import pytest

from qa.checks import Draft
from qa.checks.judge import ModelJudge
from qa.generators import make_generator
from qa.reader.reply import Reply
from qa.types import ACCEPT, REFUSE

EVIDENCE = "The dockers' union, led by Ana Ruiz, called the strike over pay on 3 March."


@pytest.fixture(scope="module")
def generator(settings):
    return make_generator(settings)


def _draft(question: str, answer: str) -> Draft:
    reply = Reply(answer=answer, number=1, quote=EVIDENCE)
    return Draft(question=question, about=question, passages=(), reply=reply, evidence=None,
                 evidence_sentence=EVIDENCE, documents={})


def _p_yes(verdict) -> float:
    return float(re.search(r"P\(yes\) ([0-9.]+)", verdict.detail).group(1))


@pytest.mark.slow
def test_the_judge_grades_a_stated_answer_above_a_near_miss(generator, settings):
    judge = ModelJudge(generator, settings.reader.prompts_dir)
    stated = judge.run(_draft("Who leads the dockers' union?", "Ana Ruiz leads it."))
    near_miss = judge.run(_draft("Who leads the employers' federation?", "Ana Ruiz leads it."))
    assert stated.action == ACCEPT and near_miss.action == REFUSE
    strict = ModelJudge(generator, settings.reader.prompts_dir, min_yes=min(1.0, _p_yes(stated) + 0.01))
    assert strict.run(_draft("Who leads the dockers' union?", "Ana Ruiz leads it.")).action == REFUSE


def test_the_mean_odds_of_an_even_split_is_even_and_certainty_is_clamped():
    from qa.checks.judge import _mean_odds

    assert _mean_odds(0.9, 0.1) == pytest.approx(0.5)
    assert _mean_odds(0.8, 0.8) == pytest.approx(0.8)
    assert 0 < _mean_odds(0.0, 0.0) < 1e-5 and 1 - 1e-5 < _mean_odds(1.0, 1.0) < 1
