"""The sentence reader (``reader="sentences"``): what it does with a reply: a second
turn when it dodges what was asked, a refusal when it is a near miss. The generator is
a fake that replies from a script (the real embedder and index are used): what is under test is when the
assistant asks again, what it asks and what it keeps. The real model's behaviour
is measured by `qa eval` (span-01, span-04, none-02 and none-05 of evals/seed.jsonl)."""

from pathlib import Path

import pytest

from qa import Assistant
from qa.index.store import IndexStore
from tests.conftest import FakeGenerator

ROOT = Path(__file__).resolve().parent.parent
ROLE_QUESTION = "What is the job of the official who warned that drug trafficking reached new levels?"


class Scripted(FakeGenerator):
    """Fake: the n-th call gets the n-th reply."""

    def __init__(self, *replies: str):
        super().__init__()
        self.replies = list(replies)

    def stream_chat(self, messages, max_tokens=None, grammar=None):
        self.reply = self.replies[len(self.prompts)]
        yield from super().stream_chat(messages, max_tokens, grammar)


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, embedder, settings):
    index_dir = tmp_path_factory.mktemp("answering") / "index"
    Assistant.from_folder(ROOT / "seeds", index_dir=index_dir, settings=settings)
    return index_dir


def _assistant(built_index, embedder, settings, generator) -> Assistant:
    return Assistant(IndexStore.load(built_index, embedder.name), settings.replace(reader="sentences"),
                     embedder=embedder,
                     generator=generator)


def test_a_name_where_a_job_was_asked_gets_the_second_hop_asked(built_index, embedder, settings):
    fake = Scripted("The official who warned is Sergei Lavrov [1].",
                    "Sergei Lavrov is Russia’s seasoned foreign minister [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask(ROLE_QUESTION)
    assert len(fake.prompts) == 2
    first, second = fake.prompts
    assert second[:len(first)] == first  # the same conversation, so the prefix stays cached
    assert second[-2] == {"role": "assistant", "content": "The official who warned is Sergei Lavrov [1]. "}
    assert second[-1]["content"] == "What is Sergei Lavrov's job?"
    assert not answer.abstained and "foreign minister" in answer.text
    assert answer.citations and "foreign minister" in answer.citations[0].quote
    assert answer.timings["tokens"] == 16  # both replies, 8 pieces each


def test_an_answer_of_the_kind_asked_is_not_asked_again(built_index, embedder, settings):
    fake = Scripted("Sergei Lavrov, Russia’s seasoned foreign minister [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask(ROLE_QUESTION)
    assert len(fake.prompts) == 1 and not answer.abstained


def test_a_second_dodge_is_refused(built_index, embedder, settings):
    fake = Scripted("The Taliban took power [1].", "The Taliban took power in Afghanistan [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask("When did the Taliban take power?")
    assert len(fake.prompts) == 2 and "time or date" in fake.prompts[1][-1]["content"]
    assert answer.abstained


@pytest.mark.parametrize("question, reply, refused", [
    # near misses of the seed set, answered from what is nearby: refused ...
    ("What did the joint statement issued after the Moscow meeting say?",
     "The joint statement issued after the Moscow meeting said that the establishment of an "
     "inclusive government would be on the agenda [1].", True),
    ("How much humanitarian aid has Russia pledged to Afghanistan?",
     "Brussels has pledged one billion euros ($1.2 billion) to avert a humanitarian calamity [1].", True),
    # ... while the same words answer the question the passages do answer
    ("What did Moscow say about the agenda of the meeting?",
     "Moscow stated that the establishment of an inclusive government would be on the agenda [1].", False),
    ("How much has Brussels pledged to avert a humanitarian calamity?",
     "Brussels has pledged one billion euros ($1.2 billion) to avert a humanitarian calamity [1].", False),
])
def test_near_misses_are_refused_and_their_answerable_twins_answered(built_index, embedder, settings,
                                                                   question, reply, refused):
    answer = _assistant(built_index, embedder, settings, Scripted(reply)).ask(question)
    assert answer.abstained is refused


SLOT_QUESTION = "Which extremist group does Russia want action against in Afghanistan?"


def test_an_answer_that_misses_the_slot_is_asked_again_with_the_passage_phrase(built_index, embedder,
                                                                            settings):
    fake = Scripted("The Taliban [1].", "Action against Islamic State fighters [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask(SLOT_QUESTION)
    assert len(fake.prompts) == 2
    first, second = fake.prompts
    assert second[:len(first)] == first
    number = next(i for i, p in enumerate(answer.passages, 1) if "action against Islamic" in p.text)
    quoted = f'Passage [{number}] says "action against Islamic State fighters"'
    assert second[-1]["content"].startswith(quoted)
    assert not answer.abstained and "Islamic State" in answer.text


def test_an_answer_in_the_slot_is_kept(built_index, embedder, settings):
    fake = Scripted("Islamic State fighters [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask(SLOT_QUESTION)
    assert len(fake.prompts) == 1 and not answer.abstained


SUBJECT_QUESTION = "What does Russia’s foreign minister say has reached unprecedented levels?"


def test_an_answer_naming_the_questions_own_person_is_asked_again(built_index, embedder, settings):
    assistant = _assistant(built_index, embedder, settings, Scripted())
    _, _, prompt, _ = assistant.prepare(SUBJECT_QUESTION)
    number = next(i for i, p in enumerate(prompt.passages, 1) if "drug trafficking" in p.text)
    fake = assistant.generator = Scripted("Sergei Lavrov [1].",
                                          f"Drug trafficking from Afghanistan [{number}].")
    answer = assistant.ask(SUBJECT_QUESTION)
    assert len(fake.prompts) == 2
    assert fake.prompts[1][-1]["content"].startswith("Sergei Lavrov is the person the question is about")
    assert not answer.abstained and "Drug trafficking" in answer.text


def test_naming_the_questions_own_person_twice_is_refused(built_index, embedder, settings):
    fake = Scripted("Sergei Lavrov [1].", "Sergei Lavrov [1].")
    answer = _assistant(built_index, embedder, settings, fake).ask(SUBJECT_QUESTION)
    assert len(fake.prompts) == 2 and answer.abstained
