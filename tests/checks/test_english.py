"""The English near-miss rule that stays (qa/checks/english.py): an act the question
presupposes must be stated of its doer; it catches the near miss and leaves the right
answers beside it."""

import pytest

_PORT = ("The transport ministry has appointed a mediator, retired judge Anselm Roth. Union secretary "
         "Marta Keller said the walkout would last. The labour minister, Piet Olsen, replied. Keller, a "
         "former crane operator, has led the union since 2019.")
_MEDIATOR = ("The transport ministry has appointed a mediator, retired judge Anselm Roth, who met both "
             "sides on Wednesday. Roth said the first meeting had been frank. A second round is planned.")
_STATEMENT = ("One of the goals, according to Russia’s foreign ministry, is to prevent a crisis. Moscow also "
              "stated that an inclusive government would be on the agenda, with participants expected to "
              "issue a joint statement following the meeting.")


@pytest.mark.parametrize("answer, question, cited, unstated", [
    # the near misses: the answer restates the question's act, which the passages never state...
    ("The mediator proposed that both sides meet on Friday [1].",
     "What did the mediator propose at the second meeting?", _MEDIATOR, True),
    # ... or give to someone else: Moscow stated it, no joint statement said it
    ("The joint statement issued after the meeting said that an inclusive government would be on the "
     "agenda [1].", "What did the joint statement issued after the meeting say?", _STATEMENT, True),
    ("Keller said the first meeting had been frank [1].", "What did the mediator say?", _MEDIATOR, True),
    # a wish in other words: "asked banks to offer" is what he wanted
    ("The finance minister wanted lenders to offer payment holidays [1].",
     "What relief did the finance minister want lenders to give?",
     "Finance minister Jonas Petrov asked commercial banks to offer payment holidays.", False),
    # irregular verbs too: "met" is "meet" done, and nobody meets in the first passage
    ("Keller met the union [1].", "Who did Keller meet with?", _PORT, True),
    ("Keller spoke to the minister [1].", "Who did Keller speak to?", _PORT, True),
    # but not light verbs: "held talks" is often "talks in Vellin"
    ("They held their talks in Vellin [1].", "Where did the delegations hold their talks?",
     "The deal came after three days of talks in Vellin.", False),
    ("Roth met both sides on Wednesday [1].", "Who did the mediator meet?", _MEDIATOR, False),
    # the same act by the same doer, named or described beside the name
    ("Roth said the first meeting had been frank [1].", "What did the mediator say?", _MEDIATOR, False),
    ("The mediator said the first meeting had been frank [1].", "What did the mediator say?",
     _MEDIATOR, False),
    ("Russia’s foreign ministry said the goal is to prevent a crisis [1].",
     "What did the Russian foreign ministry say about the goals?", _STATEMENT, False),
    # undecided: the act as a noun, an unnamed doer, or no act of the question restated
    ("Hanafi discussed aid [1].", "What did Hanafi discuss?", "Hanafi led discussions with the EU.", False),
    ("Brandt said 41 ships were waiting [1].", "What did the chief executive say?",
     "The chief executive, Tomas Brandt, called it a blow and said that 41 ships were waiting.", False),
    ("The goal, according to Russia’s foreign ministry, is to prevent a crisis [1].",
     "What did the foreign ministry say about the goal?", _STATEMENT, False),
    ("Moscow will not recognize the Islamist state officially [1].",
     "Will Moscow grant the Islamist state official recognition?", _STATEMENT, False),
    # a follow-up's pronoun: whom "they" stands for is the conversation's, not decidable here
    ("They won it by beating Kestrel Bay 4-3 on penalties [1].", "How did they win it?",
     "Ashfold Athletic won the cup, beating Kestrel Bay 4-3 on penalties.", False),
    # an opening phrase before the subject: no subject read, so no verdict
    ("In March, Russia proposed a ceasefire [1].", "What did Russia propose?",
     "Russia proposed a ceasefire in March.", False),
])
def test_an_act_the_question_presupposes_must_be_stated_by_its_doer(answer, question, cited, unstated):
    from qa.checks.english import unstated_premise

    assert bool(unstated_premise(answer, question, cited)) is unstated


_TALKS = ("Finance minister Jonas Petrov, who met Marsh on Wednesday evening, said the government would "
          "act. The deal followed talks between Norvale's trade minister, Helena Varga, and Tessaria's "
          "commerce secretary, Dmitri Aslan.")


def test_short_irregular_verbs_are_acts_too():
    from qa.checks.english import NOBODY, SOMEONE_ELSE, unstated_premise

    # "pay" has three letters, yet "Russia paid" restates the act nobody states of Russia
    assert unstated_premise("Russia paid one billion euros [1].", "How much did Russia pay?",
                            "Brussels paid one billion euros.") == SOMEONE_ELSE
    assert unstated_premise("Russia paid one billion euros [1].", "How much did Russia pay?",
                            "One billion euros was the sum agreed.") == NOBODY


