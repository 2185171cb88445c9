"""Near misses: answers the passages support word for word, to questions they do not
answer. Each check must catch its near miss and leave the right answers beside it."""

import pytest


@pytest.mark.parametrize("answer, cited, swapped", [
    # the near miss: Brussels pledged, the answer gives the pledge to Russia
    ("Russia pledged one billion euros [1].", "Brussels has pledged one billion euros. Russia hosted.", True),
    ("Brussels has pledged one billion [1].", "Following it, Brussels has pledged one billion euros.", False),
    # a country for its president: the same name on four letters, as elsewhere
    ("Russia warned that fighters met [1].", "Russian President Vladimir Putin warned that they met.", False),
    ("The EU promised one billion [1].", "Brussels has pledged one billion euros.", False),  # verb absent
    ("Keller offered 3.5% [1].", "The authority has offered a rise of 3.5%.", False),  # doer unnamed
    ("Keller offered 3.5% [1].", "Roth offered 3%. The authority has offered a rise of 3.5%.", False),
    ("Roth offered 3.5% [1].", "Keller offered 3.5% on Monday.", True),
    ("It offered 3.5% [1].", "Keller offered 3.5% on Monday.", False),  # a pronoun is no name
    ("The offer was 3.5% [1].", "Keller offered 3.5% on Monday.", False),  # no named doer claimed
])
def test_a_deed_the_cited_passages_give_to_someone_else(answer, cited, swapped):
    from qa.near_misses import swapped_subject

    assert swapped_subject(answer, cited) is swapped


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
])
def test_an_act_the_question_presupposes_must_be_stated_by_its_doer(answer, question, cited, unstated):
    from qa.near_misses import unstated_premise

    assert unstated_premise(answer, question, cited) is unstated


@pytest.mark.parametrize("answer, question, unattested", [
    # the near miss: the nearest name for a role nobody holds in the documents
    ("The transport minister is Anselm Roth [1].", "Who is the transport minister?", True),
    ("Piet Olsen [1].", "Who is the union secretary?", True),
    # the role set beside the name, before or after it
    ("Piet Olsen [1].", "Who is the labour minister?", False),
    ("Marta Keller [1].", "Who is the secretary of the union?", False),
    ("Anselm Roth [1].", "Who was the mediator?", False),
    ("Retired judge Anselm Roth [1].", "Who was the mediator?", False),  # "Retired" is no name
    ("Retired judge Anselm Roth [1].", "Who was appointed to mediate?", False),  # a deed, not a role
    # other questions, or no name in the answer: undecided
    ("Keller [1].", "Who leads the union?", False),
    ("The documents name no minister [1].", "Who is the transport minister?", False),
])
def test_a_name_given_for_a_role_the_documents_never_give_them(answer, question, unattested):
    from qa.near_misses import role_unattested

    assert role_unattested(answer, question, _PORT) is unattested


@pytest.mark.parametrize("question, unattested", [
    ("Who is the chief executive of Hanul Energy?", True),  # Donovan runs Harrowgate, not Hanul
    ("Who is the chief executive of Harrowgate?", False),
    ("Who is the chief executive of the company?", False),  # no owner named: the role alone decides
])
def test_a_role_of_a_named_owner_needs_the_owner_beside_the_name(question, unattested):
    from qa.near_misses import role_unattested

    documents = ("Harrowgate's chief executive, Claire Donovan, flew to the capital. A Korean battery "
                 "maker, Hanul Energy, has approached the government.")
    assert role_unattested("Claire Donovan [2].", question, documents) is unattested


_TALKS = ("Finance minister Jonas Petrov, who met Marsh on Wednesday evening, said the government would "
          "act. The deal followed talks between Norvale's trade minister, Helena Varga, and Tessaria's "
          "commerce secretary, Dmitri Aslan.")


@pytest.mark.parametrize("answer, question, subject", [
    # the near miss: the answer is the person the question describes
    ("Jonas Petrov [2].", "With whom did the finance minister meet on Wednesday?", "Jonas Petrov"),
    ("Helena Varga [1].", "With whom did Norvale's trade minister negotiate the deal?", "Helena Varga"),
    # the other person; a title set beside someone else's name ("Petrov, who met Marsh") is not theirs
    ("Marsh [2].", "With whom did the finance minister meet on Wednesday?", None),
    ("Dmitri Aslan [1].", "With whom did Norvale's trade minister negotiate the deal?", None),
    ("Helena Varga [1].", "Who did Tessaria's commerce secretary negotiate with?", None),
    # undecided: no subject described, or the answer names someone else too
    ("Jonas Petrov [2].", "Who is the finance minister?", None),
    ("Jonas Petrov met Marsh [2].", "Who did the finance minister meet on Wednesday?", None),
    # an answer that says more than the name answers "what", with the name as its speaker
    ("Finance minister Jonas Petrov said the government would act [2].",
     "What did the finance minister say?", None),
])
def test_an_answer_naming_the_questions_own_person(answer, question, subject):
    from qa.near_misses import names_the_subject

    assert names_the_subject(answer, question, _TALKS) == subject


@pytest.mark.parametrize("answer, question, documents", [
    # a title is read within the sentence: "Marsh met the finance minister" makes her no minister
    ("Governor Marsh [1].", "With whom did the finance minister meet?",
     "Governor Marsh met the finance minister. Marsh said it went well."),
    # an owner is no title: "Harrowgate's chief executive, Claire Donovan"
    ("Harrowgate [1].", "Which company does the chief executive run?",
     "Harrowgate's chief executive, Claire Donovan, flew to the capital."),
])
def test_titles_are_read_beside_the_name_only(answer, question, documents):
    from qa.near_misses import names_the_subject

    assert names_the_subject(answer, question, documents) is None


def test_short_irregular_verbs_are_acts_too():
    from qa.near_misses import unstated_premise

    # "pay" has three letters, yet "Russia paid" restates the act nobody states of Russia
    assert unstated_premise("Russia paid one billion euros [1].", "How much did Russia pay?",
                            "Brussels paid one billion euros.")


@pytest.mark.parametrize("answer, question, someone_else", [
    # the near miss: the question's deed, done by another doer the documents also name
    ("Brussels has pledged one billion euros [1].", "How much aid has Russia pledged?", True),
    ("Brussels has pledged one billion euros [1].", "How much has Brussels pledged?", False),
    ("Russian President Vladimir Putin warned last week [1].", "When did Putin warn of fighters?", False),
    # no named doer in the question, or one the documents never name ("the EU" for Brussels)
    ("Brussels has pledged one billion euros [1].", "Who has pledged one billion euros?", False),
    ("Brussels has pledged one billion euros [1].", "How much has the EU pledged?", False),
])
def test_the_asked_deed_of_another_doer(answer, question, someone_else):
    from qa.near_misses import answers_someone_else

    documents = "Russia hosts the talks. Brussels has pledged one billion euros. Putin warned last week."
    assert answers_someone_else(answer, question, documents) is someone_else
