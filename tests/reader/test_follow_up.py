"""A follow-up rewritten as a question of its own before it is searched, read and
judged. Where the test is about what the pipeline does with a rewrite (used,
dropped), the model is scripted: a real one cannot be made to invent a name on
demand; what the default model writes for a pronoun is tested on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import Assistant
from qa.generators import make_generator
from qa.index.store import IndexStore
from qa.reader.follow_up import FollowUpRewriter
from tests.reader.test_document_reader import QUESTION, Scripted

ROOT = Path(__file__).resolve().parents[2]
HISTORY = [(QUESTION, "Abdul Salam Hanafi leads the delegation [1].")]


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, settings):
    index_dir = tmp_path_factory.mktemp("follow_up") / "index"
    Assistant.from_folder(ROOT / "seeds", index_dir=index_dir, settings=settings)
    return index_dir


def _assistant(built_index, embedder, settings, fake, rewrite=True) -> Assistant:
    chosen = settings.replace(cold_documents="whole", judge="evidence", rewrite_follow_ups=rewrite)
    return Assistant(IndexStore.load(built_index, embedder.name), chosen, embedder=embedder, generator=fake)


def test_a_follow_up_is_read_and_judged_as_its_rewrite_and_the_trace_says_so(built_index, embedder, settings):
    fake = Scripted("What is Abdul Salam Hanafi's role?", "He is a major figure in the Taliban [1].", "yes")
    answer = _assistant(built_index, embedder, settings, fake).ask("What is his role?", HISTORY)
    rewrite, read, judged = (prompt[-1]["content"] for prompt in fake.prompts)
    assert rewrite.endswith("Last question: What is his role?") and "Abdul Salam Hanafi leads" in rewrite
    assert "Question: What is Abdul Salam Hanafi's role?" in read
    assert "Question: What is Abdul Salam Hanafi's role?" in judged
    assert answer.question == "What is his role?" and not answer.abstained
    assert answer.trace[0].check == "follow_up" and "read as" in answer.trace[0].detail


def test_a_rewrite_that_brings_in_a_word_from_nowhere_is_dropped(built_index, embedder, settings):
    fake = Scripted("What is Mullah Baradar's role?", "He is a major figure in the Taliban [1].", "yes")
    answer = _assistant(built_index, embedder, settings, fake).ask("What is his role?", HISTORY)
    assert "Question: What is his role?" in fake.prompts[1][-1]["content"]  # as asked, beside the exchange
    assert "dropped" in answer.trace[0].detail and "Mullah" in answer.trace[0].detail


def test_a_question_that_stands_on_its_own_or_rewriting_off_costs_no_model_call(built_index, embedder,
                                                                                 settings):
    fake = Scripted("Abdul Salam Hanafi leads the delegation [1].", "yes")
    _assistant(built_index, embedder, settings, fake).ask(QUESTION, HISTORY)
    fake_off = Scripted("He is a major figure in the Taliban [1].", "yes")
    _assistant(built_index, embedder, settings, fake_off, rewrite=False).ask("What is his role?", HISTORY)
    assert len(fake.prompts) == len(fake_off.prompts) == 2  # the reader and the judge only


@pytest.mark.slow
def test_the_default_model_puts_the_name_in_place_of_the_pronoun(settings):
    rewriter = FollowUpRewriter(make_generator(settings), settings.reader.prompts_dir)
    rewrite = rewriter.run("When did he arrive in Moscow?", HISTORY)
    assert rewrite.rewritten and "Hanafi" in rewrite.standalone and "Moscow" in rewrite.standalone
    unchanged = rewriter.run("How many nations will attend the Moscow talks?", HISTORY)
    assert unchanged.standalone == "How many nations will attend the Moscow talks?"
