"""The slot a question's preposition points at, found in passages by position."""

import pytest

from qa.slots import asked_slot, fills

RUSSIA = ("On Wednesday, Russia will host the Taliban in Moscow for talks in order to press for "
          "action against Islamic State fighters who it claims have massed in Afghanistan.")
HANAFI = ("Deputy Prime Minister Abdul Salam Hanafi, who led discussions with the European Union and "
          "the United States last week, leads the Taliban delegation. These came after meetings "
          "between the Taliban and Turkish authorities in Ankara.")
UNION = "The Harbour Workers' Union is asking for 8% more pay. Talks resumed on Tuesday."


@pytest.mark.parametrize("question, passages, number, filler", [
    # stranded: the preposition ends the question or comes before an adjunct
    ("Which extremist group does Russia want action against in Afghanistan?", [RUSSIA], 1,
     "Islamic State fighters"),
    ("What wage rise is the union asking for?", ["No word on pay.", UNION], 2, "8% more pay"),
    # fronted: the preposition hangs on a word of the rest of the question
    ("With whom did Hanafi hold the discussions that came after the Taliban's meetings with "
     "Turkish authorities in Ankara?", [HANAFI], 1, "the European Union and the United States"),
    ("On which day did the talks resume?", [UNION], 1, "Tuesday"),
])
def test_the_words_after_the_question_phrase_are_the_slot(question, passages, number, filler):
    slot = asked_slot(question, passages)
    assert slot is not None and (slot.passage, slot.filler) == (number, filler)
    assert slot.phrase.endswith(filler) and slot.phrase in passages[number - 1]


@pytest.mark.parametrize("question, passages", [
    ("Who leads the Taliban delegation?", [HANAFI]),  # no preposition left without its object
    ("Is Russia hosting the Taliban?", [RUSSIA]),  # not a wh-question
    ("Which group does Russia want action against?", [HANAFI]),  # the phrase is not in the passages
    ("Did Putin say which group Russia wants action against?", [RUSSIA]),  # answered yes or no
    ("Who is the head of this delegation?", ["Hanafi is the head of the Taliban delegation."]),
    # "on" belongs to "host", not to "Moscow", the object of "in"; names never hold the slot
    ("On which day of the week will Russia host the Taliban in Moscow?",
     ["Moscow has welcomed their representatives in Moscow on multiple occasions."]),
    # the phrase's object only repeats the question: "the air base" for "which air base"
    ("From which air base will the helicopters fly in?",
     ["The minister sent four helicopters from the air base at Dunmore."]),
    # the phrase sits in a sentence about something else (no other word of the question)
    ("Which ministry did Governor Marsh request troops and helicopters from?",
     ["Governor Marsh asked the defence ministry for troops.",
      "Quint sent four helicopters from the air base at Dunmore."]),
])
def test_no_slot_without_the_question_phrase(question, passages):
    assert asked_slot(question, passages) is None


def test_an_answer_fills_the_slot_with_any_of_its_words():
    slot = asked_slot("Which extremist group does Russia want action against?", [RUSSIA])
    assert fills("Islamic State [1].", slot) and fills("IS fighters, who massed in Afghanistan.", slot)
    assert not fills("The Taliban [1].", slot)


def test_words_the_question_holds_do_not_fill_the_slot():
    slot = asked_slot("Which air base will the helicopters fly from?",
                      ["The minister said the helicopters will fly from Dunmore air base."])
    assert slot is not None and slot.filler == "Dunmore air base"
    assert not fills("From the air base [1].", slot) and fills("From Dunmore [1].", slot)
