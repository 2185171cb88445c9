"""Compact passages with the real embedder: the sentences that answer are kept,
within the budget, as exact spans of their documents. Tokens are counted as
words here (the generator's tokenizer is not what is under test)."""

import pytest

from qa.compaction import PassageCompactor, introduces, names_used_alone
from qa.types import Document, Passage

TEXT = (
    "Officials from Chile and Peru met in Lima on Monday. "
    "The talks were about fishing rights along the coast. "
    "The ministry said exports fell 4% in March. "
    "A strike had closed the port of Callao for two weeks. "
    "Maria Lopez chairs the fisheries commission. "
    "She said a new quota would be agreed by June. "
    "Weather on the coast was mild for the season."
)


def _words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def document() -> Document:
    return Document(doc_id="d1", title="Fishing talks", source="d1.txt", text=TEXT, content_hash="x")


def _passages(document: Document) -> list[Passage]:
    """Two overlapping chunks covering the text, as retrieval would return them."""
    cut = TEXT.index("Maria")
    spans = [(0, cut - 1), (TEXT.index("A strike"), len(TEXT))]
    return [Passage(chunk_id=f"d1:{i}", doc_id="d1", text=TEXT[s:e], score=0.5 - i / 10,
                    title=document.title, source=document.source, start=s, end=e)
            for i, (s, e) in enumerate(spans)]


def test_keeps_the_answering_sentence_within_the_budget(embedder, document):
    compactor = PassageCompactor(embedder, _words, budget=20)
    kept = compactor.compact("Why did exports fall?", _passages(document), {"d1": document})
    assert "exports fell 4%" in kept[0].text
    assert sum(_words(p.text) for p in kept) <= 20
    assert sum(_words(p.text) for p in kept) < _words(TEXT) / 2
    for passage in kept:
        assert passage.text == TEXT[passage.start:passage.end]


def test_a_sentence_opening_with_a_pronoun_brings_the_one_before(embedder, document):
    compactor = PassageCompactor(embedder, _words, budget=20)
    kept = compactor.compact("When will the new quota be agreed?", _passages(document), {"d1": document})
    first = kept[0].text
    assert first.startswith("Maria Lopez chairs") and first.endswith("agreed by June.")


def test_adjacent_sentences_become_one_passage_and_overlaps_count_once(embedder, document):
    compactor = PassageCompactor(embedder, _words, budget=200)
    kept = compactor.compact("What happened at the port?", _passages(document), {"d1": document})
    assert [(p.start, p.end) for p in kept] == [(0, len(TEXT))]  # everything fits: one run


def test_the_best_sentence_is_kept_even_over_budget(embedder, document):
    compactor = PassageCompactor(embedder, _words, budget=1)
    kept = compactor.compact("Where did the officials meet?", _passages(document), {"d1": document})
    assert len(kept) == 1 and "Lima" in kept[0].text


def test_the_sentence_before_may_come_from_the_previous_chunk(embedder, document):
    cut = TEXT.index("She said")
    spans = [(0, cut - 1), (cut, len(TEXT))]  # "She said..." opens the second chunk
    passages = [Passage(chunk_id=f"d1:{i}", doc_id="d1", text=TEXT[s:e], score=0.5, title="t",
                        source="d1.txt", start=s, end=e) for i, (s, e) in enumerate(spans)]
    kept = PassageCompactor(embedder, _words, budget=20).compact(
        "When will the new quota be agreed?", passages, {"d1": document})
    assert kept[0].text.startswith("Maria Lopez chairs") and kept[0].text.endswith("agreed by June.")


def test_remembered_vectors_stay_bounded_and_never_go_missing(embedder, document, monkeypatch):
    import qa.models.embedder

    monkeypatch.setattr(qa.models.embedder, "_VECTOR_MEMO_LIMIT", 3)
    compactor = PassageCompactor(embedder, _words, budget=20)
    for question in ("Where did the officials meet?", "Why did exports fall?", "Who chairs the commission?"):
        kept = compactor.compact(question, _passages(document), {"d1": document})
        assert kept and len(embedder._vectors) <= 3


def test_a_question_is_embedded_once_for_retrieval_and_sentence_choice(seed_copy, tmp_path, embedder,
                                                                       settings, monkeypatch):
    from qa.answering import Assistant
    from qa.index.indexing import update_index
    from tests.conftest import FakeGenerator

    store, _ = update_index([seed_copy], tmp_path / "index", embedder, settings)
    assistant = Assistant(store, settings, embedder=embedder, generator=FakeGenerator())  # fake: no model
    embedded: list[str] = []
    encode = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, show_progress=False: embedded.extend(texts)
                        or encode(texts, show_progress))
    question = "Which city hosts the talks with the Taliban delegation?"
    _, _, prompt, _ = assistant.prepare(question)
    assert prompt is not None and embedded.count(question) == 1


NAMED = ("Maria Lopez, the fisheries minister, opened the talks in Lima. "
         "Weather on the coast was mild for the season. "
         "Boats stayed in port for a week. "
         "Lopez warned that catches had fallen by a third.")


@pytest.mark.parametrize("budget", [25, 12])
def test_a_surname_brings_the_sentence_that_introduced_the_person_when_it_fits(embedder, budget):
    document = Document(doc_id="d2", title="Catches", source="d2.txt", text=NAMED, content_hash="y")
    whole = Passage(chunk_id="d2:0", doc_id="d2", text=NAMED, score=0.5, title="Catches",
                    source="d2.txt", start=0, end=len(NAMED))
    compactor = PassageCompactor(embedder, _words, budget=budget)
    kept = compactor.compact("What is the job of the official who warned that catches had fallen?",
                             [whole], {"d2": document})
    texts = [p.text for p in kept]
    if budget == 25:  # read in the document's order: who Lopez is, then what Lopez said
        assert texts[:2] == ["Maria Lopez, the fisheries minister, opened the talks in Lima.",
                             "Lopez warned that catches had fallen by a third."]
    else:  # no room for both: the sentence that answers is never displaced
        assert texts == ["Lopez warned that catches had fallen by a third."]


def test_names_used_alone_and_their_introductions():
    assert names_used_alone("Lavrov also warned the Kremlin.") == ["Lavrov", "Kremlin"]
    assert names_used_alone("Sergei Lavrov spoke.") == ["Sergei"]  # "Lavrov" is given in full
    assert names_used_alone("Lavrov’s deputy met the Lavrov-led team on Wednesday.") == ["Lavrov"]
    assert names_used_alone("“Recognition is not discussed,” Lavrov said.") == ["Recognition", "Lavrov"]
    assert introduces("Sergei Lavrov, Russia’s foreign minister, spoke.", "Lavrov")
    assert introduces("Sergei\nLavrov spoke.", "Lavrov")
    assert introduces("It was called by the Harbour Workers' Union.", "Union")
    # a capitalised function word or a weekday does not make a full name
    assert not introduces("The Taliban said so.", "Taliban")
    assert not introduces("On Wednesday, Russia will host the talks.", "Wednesday")
    assert not introduces("Russian officials met.", "Russia")


def test_the_best_sentences_may_overshoot_the_budget_a_little(embedder, document):
    """The second-best sentence that misses the budget by two words is not dropped for a
    worse, shorter one; beyond 15% over, it is."""
    question = "What did the ministry say about exports in March?"
    second = "The talks were about fishing rights along the coast."  # ranked second, 10 words

    def kept(budget: int) -> list[str]:
        compactor = PassageCompactor(embedder, _words, budget=budget)
        return [p.text for p in compactor.compact(question, _passages(document), {"d1": document})]

    within = kept(17)  # best 8 + 1, second 10 + 1: 19 words, 12% over
    assert any(second in text for text in within) and "exports fell 4%" in within[0]
    assert 17 < sum(_words(t) + 1 for t in within) <= 17 * 1.15
    beyond = kept(16)  # 19 is 19% over: a shorter sentence takes the room instead
    assert not any(second in text for text in beyond)
    assert sum(_words(t) + 1 for t in beyond) <= 16
