import pytest

from qa.citations import is_refusal, parse_markers, resolve_citations
from qa.types import Passage


def _passage(n: int, text: str) -> Passage:
    return Passage(chunk_id=f"d:{n}", doc_id="d", text=text, score=0.5, title="T", source="s.txt",
                   start=n * 100, end=n * 100 + len(text))


PASSAGES = [
    _passage(0, "Sergei Lavrov is expected to speak at the event."),
    _passage(1, "Abdul Salam Hanafi leads the Taliban delegation. He met EU officials."),
    _passage(2, "Brussels pledged one billion euros."),
]


def test_parse_markers_handles_lists():
    assert parse_markers("A [1] and B [2, 3][3].") == [1, 2, 3, 3]


def test_markers_map_to_passages_and_unknown_markers_are_dropped():
    text, citations, _ = resolve_citations("Hanafi leads it [2][7]. Brussels pledged euros [3].", PASSAGES)
    assert text == "Hanafi leads it [2]. Brussels pledged euros [3]."
    assert [(c.number, c.chunk_id) for c in citations] == [(2, "d:1"), (3, "d:2")]


def test_answer_without_marker_cites_best_supporting_passage():
    text, citations, _ = resolve_citations("Abdul Salam Hanafi leads the delegation.", PASSAGES)
    assert text == "Abdul Salam Hanafi leads the delegation [2]."
    assert citations[0].chunk_id == "d:1"


def test_highlight_points_at_the_supporting_sentence():
    _, citations, _ = resolve_citations("Hanafi leads the Taliban delegation [2].", PASSAGES)
    citation = citations[0]
    passage = PASSAGES[1]
    offset = passage.start
    highlighted = passage.text[citation.highlight_start - offset : citation.highlight_end - offset]
    assert highlighted == "Abdul Salam Hanafi leads the Taliban delegation."


def test_refusal_detection():
    assert is_refusal("The documents do not say.")
    assert is_refusal("The passages don't mention his age.")
    assert not is_refusal("Hanafi leads the delegation [2].")


def test_wrong_marker_is_recited_to_the_supporting_passage():
    text, citations, check = resolve_citations("Brussels pledged one billion euros [1].", PASSAGES)
    assert text == "Brussels pledged one billion euros [3]."
    assert [c.chunk_id for c in citations] == ["d:2"]
    assert check.unsupported == []


def test_sentence_no_passage_supports_is_flagged():
    _, _, check = resolve_citations("Lavrov is 71 years old and lives in Paris [1].", PASSAGES)
    assert check.unsupported == ["Lavrov is 71 years old and lives in Paris."]
    assert check.support < 0.5


def test_invented_number_lowers_support():
    _, _, right = resolve_citations("Brussels pledged one billion euros [3].", PASSAGES)
    _, _, wrong = resolve_citations("Brussels pledged 7 billion euros [3].", PASSAGES)
    assert right.support == 1.0 and wrong.support < right.support


def test_question_about_names_the_documents_never_mention():
    from qa.verification import mentions_any_name

    text = "Russia hosts the Taliban in Moscow. Brussels pledged one billion euros."
    assert not mentions_any_name("What is the capital of France?", text)
    assert mentions_any_name("What is the EU's pledge worth?", text)  # EU ~ euros: lenient
    assert mentions_any_name("Which Russian city hosts the talks?", text)
    assert mentions_any_name("how many nations attend?", text)  # no names: no opinion


def test_an_answer_that_only_restates_the_question_adds_nothing_unless_yes_no():
    from qa.verification import adds_information

    assert not adds_information("The talks are held in Moscow [1].", "Where in Moscow are the talks held?")
    assert adds_information("The talks are held at the Kremlin [1].", "Where in Moscow are the talks held?")
    assert adds_information("Russia stays in contact with the Taliban [2].",
                            "Though Russia bans the Taliban, does it stay in contact with them?")


def test_an_answer_that_dodges_a_when_or_how_many_question_is_caught():
    from qa.verification import answers_the_kind

    assert not answers_the_kind("The Taliban took power [1].", "When did the Taliban take power?")
    assert answers_the_kind("In mid-August [1].", "When did the Taliban take power?")
    assert answers_the_kind("Last week [2].", "On which day did Putin warn?")
    assert not answers_the_kind("Hanafi leads the delegation [1].", "How many people are in the delegation?")
    assert answers_the_kind("After nearly two decades [1].", "How long were soldiers in Afghanistan?")
    assert answers_the_kind("Sergei Lavrov [1].", "Who is Russia's foreign minister?")


def test_a_name_where_a_job_was_asked_is_caught_and_the_name_found():
    from qa.near_misses import name_added
    from qa.verification import answers_the_kind, asked_kind

    question = "What is the job of the official who warned about drug trafficking?"
    assert asked_kind(question) == "role" and asked_kind("What post does Hanafi hold?") == "role"
    assert asked_kind("Who is Russia's foreign minister?") is None
    # restating "the official" gives no job; a job the question did not hold does
    assert not answers_the_kind("The official who warned is Sergei Lavrov [2].", question)
    assert answers_the_kind("Sergei Lavrov is Russia's foreign minister [1].", question)
    assert answers_the_kind("Deputy Prime Minister [1].", "What post does Hanafi hold?")
    assert name_added("The official who warned is Sergei Lavrov [2].", question) == "Sergei Lavrov"
    assert name_added("It was the official [2].", question) is None


@pytest.mark.parametrize("question, yes_no", [
    ("Although Russia lists the Taliban as terrorists, does it keep in touch?", True),
    ("Will Moscow grant the Taliban official recognition?", True),
    ("Isn't Hanafi a minister?", True),
    ("And did they meet again?", True),
    ("What, if anything, did Russia say?", False),
    ("Who, according to the briefing, leads the delegation?", False),
    ("Can you tell me who leads the delegation?", False),
    ("How many people are in the delegation?", False),
])
def test_yes_no_questions(question, yes_no):
    from qa.verification import is_yes_no

    assert is_yes_no(question) is yes_no


@pytest.mark.parametrize("answer, question, answers_it", [
    ("Two days later [1].", "When did the delegation arrive?", True),
    ("Once the deal is signed [1].", "When will troops leave?", True),
    ("Twice [1].", "How many times did they meet?", True),
    ("Fifteen delegates [1].", "How many delegates attended?", True),
    ("The minister said sanctions stay [1].", "When asked about sanctions, what did the minister say?", True),
    ("The Taliban took power [1].", "When did the Taliban take power?", False),
    # a month, a year, a percentage or a sum asked: any time or count will not do
    ("In March 2021 [1].", "In which month did the update fail?", True),
    ("2021 [1].", "In which month did the update fail?", False),
    ("In 1987 [1].", "In which year were the embankments built?", True),
    ("In the spring [1].", "What year were the embankments built?", False),
    ("By 12% [1].", "By what percentage did shares fall?", True),
    ("Shares fell sharply [1].", "By what percentage did shares fall?", False),
    ("One billion euros [1].", "How much money has Brussels pledged?", True),
    ("They asked for compensation twice [1].", "How much compensation did the farmers ask for?", False),
    # an occupation is an open class: "a florist" answers it, the name alone does not
    ("Hanna Ruiz is a florist [1].", "What is the occupation of the woman who heads the association?", True),
    ("Hanna Ruiz [1].", "What is the occupation of the woman who heads the association?", False),
    ("Hanna Ruiz took a stand [1].", "What is the occupation of the woman who heads the association?", False),
    # counted answers other than digits; "how much longer" asks for a time; "by how much" for a sum
    ("A few more weeks [1].", "How much longer will the strike last?", True),
    ("No aid [1].", "How much aid did Russia send?", True),
    ("By two euros [1].", "By how much did the price rise?", True),
])
def test_answer_kinds(answer, question, answers_it):
    from qa.verification import answers_the_kind

    assert answers_the_kind(answer, question) is answers_it
