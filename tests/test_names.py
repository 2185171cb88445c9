"""The one "is this a name?" heuristic (qa/names.py), read by the near-miss check and
the web chat's example questions."""

import re

from qa import names


def test_frequent_names_are_runs_of_capitals_not_dates_sentence_starts_or_adjectives():
    text = "The bank said Governor Elena Marsh spoke. Later Marsh said no. On Monday Kestrel rose."
    assert names.frequent_names(text) == ["Governor Elena Marsh"]
    text = ("Talks with the European Union resumed. Officials from Central Asian states came, and "
            "the Taliban’s Islamic Emirate sent Abdul Salam Hanafi. Hanafi’s aides met the European Union.")
    assert names.frequent_names(text) == ["European Union", "Abdul Salam Hanafi", "Islamic Emirate"]
    assert names.frequent_names("") == []


def test_a_run_of_capitalised_words_has_the_length_asked_for():
    subject = re.compile(rf"({names.run(2)}) said")
    assert subject.search("so Foreign Minister Lavrov said").group(1) == "Minister Lavrov"
    assert re.fullmatch(names.run(least=2), "Russia’s Foreign Ministry")
    assert not re.fullmatch(names.run(least=2), "Moscow")


def test_names_are_the_same_when_a_word_agrees_on_its_first_four_letters():
    assert names.same_name("Russia", "Russian President Putin")
    assert names.same_name("the mediator Roth", "Anselm Roth")
    assert not names.same_name("The joint statement", "Moscow")
