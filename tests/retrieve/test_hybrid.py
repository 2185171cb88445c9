"""Hybrid retrieval over the seed briefing with the real embedder."""

import pytest

from qa.index.indexing import update_index
from qa.pipeline import is_follow_up
from qa.retrieve.hybrid import Retriever, merge_neighbours
from tests.conftest import SEEDS


@pytest.fixture(scope="module")
def retriever(tmp_path_factory, embedder, settings):
    store = update_index([SEEDS], tmp_path_factory.mktemp("retrieval"), embedder, settings).store
    return Retriever(store, embedder)


@pytest.mark.parametrize("question, holder", [
    ("Who leads the Taliban delegation?", "leads the Taliban delegation"),
    ("How much money did Brussels promise?", "one billion euros"),
    ("Where did the Taliban meet Turkish officials?", "Ankara"),
    ("What did Lavrov say about narcotics smuggling?", "drug trafficking"),
])
def test_the_passage_holding_the_answer_ranks_first(retriever, question, holder):
    assert holder in retriever.retrieve(question, k=1)[0].text


def test_lexical_search_finds_rare_names(retriever):
    rows = retriever.lexical("Ankara", 3)
    assert rows and "Ankara" in retriever.store.chunks[rows[0][0]].text
    assert retriever.lexical("zzzunknownzzz", 3) == []


def test_scores_are_cosines_and_ranks_are_fused(retriever):
    passages = retriever.retrieve("Who leads the Taliban delegation?", k=5)
    assert all(-1.0 <= p.score <= 1.0 for p in passages)
    assert len({p.chunk_id for p in passages}) == 5


def test_overlapping_neighbours_merge_into_one_span(tmp_path, embedder, settings):
    overlapping = settings.replace(chunk_overlap_sentences=1, chunk_tokens=64)  # chunks share a sentence
    store = update_index([SEEDS], tmp_path / "index", embedder, overlapping).store
    retriever = Retriever(store, embedder)
    passages = [retriever._passage(i, 0.5) for i in range(len(store))]
    merged = merge_neighbours(passages, store.documents)
    assert len(merged) < len(passages)
    for passage in merged:
        assert store.documents[passage.doc_id].text[passage.start : passage.end] == passage.text
    starts = sorted(p.start for p in merged)
    ends = sorted(p.end for p in merged)
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))


def test_follow_up_detection():
    assert is_follow_up("What did he do last week?")
    assert is_follow_up("And China?")
    assert not is_follow_up("Who leads the Taliban delegation at the Moscow talks?")
