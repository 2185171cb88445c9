"""The document reader around the model: what it shows, how it checks the evidence,
when it asks again and what the answer records. The generator is scripted where
the test is about when the reader retries or refuses (a real model cannot be made
to misquote on demand); the prefix states are tested on the real tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa import Assistant
from qa.generation import Generator
from qa.index.store import IndexStore
from qa.types import ACCEPT, REFUSE, RETRY, RETRYING, Answer, Stage
from tests.conftest import FakeGenerator

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Who leads the Taliban delegation?"
RIGHT = 'Answer: Abdul Salam Hanafi leads the delegation.\nEvidence [1]: "Abdul Salam Hanafi, a major figure'
WRONG = ('Answer: Abdul Salam Hanafi leads the delegation.\n'
         'Evidence [1]: "Hanafi is the head of the delegation"')


class Scripted(FakeGenerator):
    """Fake: the n-th call gets the n-th reply, whatever the grammar."""

    def __init__(self, *replies: str):
        super().__init__()
        self.replies = list(replies)

    def stream_chat(self, messages, max_tokens=None, grammar=None, keep_state=True):
        self.reply = self.replies[len(self.prompts)]
        yield from super().stream_chat(messages, max_tokens, grammar)


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, settings):
    index_dir = tmp_path_factory.mktemp("reader") / "index"
    Assistant.from_folder(ROOT / "seeds", index_dir=index_dir, settings=settings)
    return index_dir


def _ask(built_index, embedder, settings, generator, question=QUESTION, judge="off") -> tuple[Answer, list]:
    chosen = settings.replace(cold_documents="whole", judge=judge)
    assistant = Assistant(IndexStore.load(built_index, embedder.name), chosen, embedder=embedder,
                          generator=generator)
    pieces = list(assistant.stream(question, stages=True))
    return pieces[-1], pieces[:-1]


def test_the_whole_briefing_is_shown_and_the_citation_is_the_quoted_span(built_index, embedder, settings):
    fake = Scripted(RIGHT + '"')
    answer, pieces = _ask(built_index, embedder, settings, fake)
    document = next(iter(IndexStore.load(built_index, embedder.name).documents.values()))
    assert " ".join(document.text.split()[-12:]) in " ".join(fake.prompts[0][-1]["content"].split())
    assert answer.text == "Abdul Salam Hanafi leads the delegation [1]."
    citation = answer.citations[0]
    highlighted = document.text[citation.highlight_start:citation.highlight_end]
    assert highlighted == "Abdul Salam Hanafi, a major figure"
    assert document.text[citation.start:citation.end] == citation.quote and citation.doc_id == document.doc_id
    assert "leads the Taliban" in citation.quote
    assert [v.check for v in answer.trace][:2] == ["reader", "evidence"]
    assert all(v.action == ACCEPT for v in answer.trace)
    streamed = "".join(p for p in pieces if isinstance(p, str))
    assert streamed.strip() == "Abdul Salam Hanafi leads the delegation." and "Evidence" not in streamed


def test_a_misquoted_draft_is_asked_again_visibly_and_then_accepted(built_index, embedder, settings):
    fake = Scripted(WRONG, RIGHT + '"')
    answer, pieces = _ask(built_index, embedder, settings, fake)
    assert Stage(RETRYING) in pieces and len(fake.prompts) == 2
    assert fake.prompts[1][: len(fake.prompts[0])] == fake.prompts[0]  # same conversation: prefix cached
    assert [(v.check, v.action) for v in answer.trace][:2] == [("reader", ACCEPT), ("evidence", RETRY)]
    assert not answer.abstained and answer.citations
    # one clock for both attempts; the token count is the pieces of both replies
    assert 0 <= answer.timings.retrieval <= answer.timings.first_token <= answer.timings.total
    assert answer.generated_tokens == len(WRONG.split(" ")) + len((RIGHT + '"').split(" "))


def test_a_question_refused_before_the_model_has_no_first_token_and_no_tokens(built_index, embedder,
                                                                              settings):
    fake = Scripted()
    answer, _ = _ask(built_index, embedder, settings.replace(min_relevance=1.0), fake)
    assert answer.abstained and answer.trace[-1].check == "relevance" and not fake.prompts
    assert answer.timings.first_token is None and answer.generated_tokens == 0
    assert 0 <= answer.timings.retrieval <= answer.timings.total


def test_a_second_misquote_is_refused_with_the_reason_and_the_draft_kept(built_index, embedder, settings):
    fake = Scripted(WRONG, WRONG)
    answer, _ = _ask(built_index, embedder, settings, fake)
    assert answer.abstained and answer.trace[-1] .action == REFUSE
    assert answer.refusal_reason.startswith("evidence: the evidence quote is not in document [1]")
    assert answer.draft == "Abdul Salam Hanafi leads the delegation."


def test_an_answer_whose_words_are_not_in_its_evidence_is_refused(built_index, embedder, settings):
    fake = Scripted('Answer: The delegation is led by Mullah Omar.\n'
                    'Evidence [1]: "leads the Taliban delegation"')
    answer, _ = _ask(built_index, embedder, settings, fake)
    assert answer.abstained and answer.trace[-1].check == "grounding"


def test_the_judge_refuses_a_draft_it_finds_unstated_and_says_so(built_index, embedder, settings):
    fake = Scripted(RIGHT + '"', "no")
    answer, _ = _ask(built_index, embedder, settings, fake, judge="evidence")
    judged = fake.prompts[1][-1]["content"]
    assert "Abdul Salam Hanafi, a major figure" in judged and QUESTION in judged
    assert answer.abstained and answer.trace[-1].check == "judge"
    fake = Scripted(RIGHT + '"', "yes")
    answer, _ = _ask(built_index, embedder, settings, fake, judge="evidence")
    assert not answer.abstained and "judge" in [v.check for v in answer.trace]


def test_a_follow_up_after_a_refusal_leans_on_the_last_answered_exchange(built_index, embedder, settings):
    """A refusal names no one "he" could stand for: the search, the reader and the judge
    get the exchange before it."""
    fake = Scripted("He led discussions with the European Union [1].", "yes")
    assistant = Assistant(IndexStore.load(built_index, embedder.name),
                          settings.replace(cold_documents="whole", judge="evidence"),
                          embedder=embedder, generator=fake)
    history = [(QUESTION, "Abdul Salam Hanafi leads the delegation [1]."),
               ("When was he born?", assistant.prompt.refusal)]
    question = "What did he do last week?"
    query = assistant.retrieval_query(question, history)
    assert "Hanafi" in query and "born" not in query
    answer = assistant.ask(question, history)
    shown, judged = fake.prompts[0][-1]["content"], fake.prompts[1][-1]["content"]
    assert "Abdul Salam Hanafi leads the delegation" in shown and "born" not in shown
    assert "Abdul Salam Hanafi leads the delegation" in judged and question in judged
    assert not answer.abstained


def test_nothing_relevant_is_refused_before_the_model_with_the_relevance_verdict(built_index, embedder,
                                                                                  settings):
    fake = Scripted()
    answer, _ = _ask(built_index, embedder, settings, fake, "What is the boiling point of liquid nitrogen?")
    assert answer.abstained and not fake.prompts
    assert answer.trace[0].check == "relevance" and answer.trace[0].action == REFUSE


@pytest.mark.slow
def test_a_document_asked_about_before_is_answered_from_its_kept_state(tmp_path, settings):
    """Real tiny model: after another prompt took the context, the document's prefix
    is restored from the kept state instead of being evaluated again."""
    generator = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4)
    document = [{"role": "system", "content": "Read. " + "The harbour of Valdera reopened in May. " * 60},
                {"role": "user", "content": "When did the harbour reopen?"}]
    other = [{"role": "user", "content": "Something else entirely. " * 40}]
    list(generator.stream_chat(document))
    list(generator.stream_chat(other))
    llm = generator.llm
    assert len(llm.cache.cache_state) == 2  # one state per prompt prefix
    restored: list[int] = []
    load_state = llm.load_state
    llm.load_state = lambda state: (restored.append(state.n_tokens), load_state(state))[1]
    list(generator.stream_chat([*document[:1], {"role": "user", "content": "Who reopened it?"}]))
    assert len(restored) == 1 and restored[0] > 300  # the document's state, not the other prompt's
    list(generator.stream_chat([*document[:1], {"role": "user", "content": "Why?"}]))
    assert len(restored) == 1  # already in the context: nothing to restore


@pytest.mark.slow
def test_a_restored_state_answers_as_a_fresh_evaluation_and_leaves_the_logits_table_alone(tmp_path, settings):
    """Real tiny model: the reply after a restore is the reply of a context that read the
    whole prompt, and the restore writes nothing into the 512 x vocabulary logits table
    (the stock one filled it with zeros: 311 MB resident for the default model)."""
    document = [{"role": "system", "content": "Read. " + "The harbour of Valdera reopened in May. " * 60}]
    question = {"role": "user", "content": "When did the harbour reopen?"}
    kept = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=12, state_dir=tmp_path)
    list(kept.stream_chat([*document, {"role": "user", "content": "Who reopened it?"}]))
    list(kept.stream_chat([{"role": "user", "content": "Something else entirely. " * 40}]))
    table = kept.llm.scores
    table[0, 0] = table[-1, -1] = 7.0  # markers the stock restore overwrites (the rows it restores, the rest)
    restored = _counting_restores(kept)
    reply = "".join(kept.stream_chat([*document, question]))
    assert len(restored) == 1 and table[0, 0] == table[-1, -1] == 7.0
    fresh = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=12, state_cache_mb=0)
    assert reply and reply == "".join(fresh.stream_chat([*document, question]))


def test_a_document_read_as_windows_is_warmed_even_when_the_caller_stops_at_the_answer(
        built_index, embedder, settings):
    """The web chat closes the stream once it has the Answer: the warm must start before."""
    fake = Scripted("Abdul Salam Hanafi leads the delegation [1].")
    assistant = Assistant(IndexStore.load(built_index, embedder.name), settings.replace(judge="off"),
                          embedder=embedder, generator=fake)
    assistant.warm_in_background = True
    stream = assistant.stream(QUESTION)
    for piece in stream:
        if isinstance(piece, Answer):
            stream.close()
            break
    assistant.finish_background()
    assert len(fake.warmed) == 1  # the whole briefing, evaluated ahead of the next question
    assert "Abdul Salam Hanafi" in fake.warmed[0][-1]["content"]


def _documents_prompt(document: str, question: str) -> list[dict[str, str]]:
    example = "<documents>\n[1] The ferry to Ostra runs twice a day.\n</documents>\n\nQuestion: How often?"
    return [{"role": "system", "content": "Answer from the documents. " * 20},
            {"role": "user", "content": example}, {"role": "assistant", "content": "Twice a day [1]."},
            {"role": "user", "content": f"<documents>\n[1] {document}\n</documents>\n\nQuestion: {question}"}]


def _counting_restores(generator: Generator) -> list[int]:
    restored: list[int] = []
    llm = generator.llm
    load_state = llm.load_state
    llm.load_state = lambda state: (restored.append(state.n_tokens), load_state(state))[1]
    return restored


@pytest.mark.slow
def test_a_warmed_document_is_restored_from_disk_by_a_new_process(tmp_path, settings):
    """Real tiny model, two generators (two processes' worth of llama.cpp contexts)
    sharing a state folder: the second evaluates neither the rules nor the document."""
    harbour = "The harbour of Valdera reopened in May after the dockers' strike. " * 30
    first = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4, state_dir=tmp_path)
    warm = _documents_prompt(harbour, "")
    assert not first.is_warm(warm)
    first.warm(warm)
    assert first.is_warm(warm) and len(list(tmp_path.rglob("*.npz"))) == 2  # documents, and rules + examples

    second = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4, state_dir=tmp_path)
    assert second.is_warm(warm)
    restored = _counting_restores(second)
    list(second.stream_chat(_documents_prompt(harbour, "When did the harbour reopen?")))
    assert len(restored) == 1 and restored[0] > 400  # the document's state, read from disk

    third = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4, state_dir=tmp_path)
    restored = _counting_restores(third)
    list(third.stream_chat(_documents_prompt("A different note on the fishing fleet.", "Who?")))
    assert len(restored) == 1  # another document: the rules and examples come from disk


@pytest.mark.slow
def test_a_damaged_state_file_costs_the_speed_up_and_nothing_else(tmp_path, settings):
    first = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4, state_dir=tmp_path)
    warm = _documents_prompt("The depot stores fuel. " * 20, "")
    first.warm(warm)
    for path in tmp_path.rglob("*.npz"):
        path.write_bytes(b"not a state")
    second = Generator("tiny", settings.cache_dir, n_ctx=2048, n_threads=1, max_tokens=4, state_dir=tmp_path)
    restored = _counting_restores(second)
    reply = "".join(second.stream_chat(_documents_prompt("The depot stores fuel. " * 20, "What?")))
    assert reply and restored == [] and not list(tmp_path.rglob("*.npz"))  # evaluated afresh, files gone
    assert not second.is_warm(warm)
