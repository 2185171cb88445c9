"""Hybrid retrieval over the seed briefing with the real embedder."""

from types import SimpleNamespace

import numpy as np
import pytest

from qa.index.indexing import update_index
from qa.pipeline import is_follow_up
from qa.retrieve.hybrid import Retriever, document_cosine, merge_neighbours
from qa.types import Chunk, Document
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


def test_with_one_document_ranking_documents_keeps_the_chunk_order(retriever):
    as_wholes = Retriever(retriever.store, retriever.embedder, doc_score="document")
    for question in ("Who leads the Taliban delegation?", "How much money did Brussels promise?"):
        assert ([p.chunk_id for p in as_wholes.retrieve(question, k=5)]
                == [p.chunk_id for p in retriever.retrieve(question, k=5)])


def test_a_document_scores_its_best_chunk_mixed_with_its_mean_direction():
    query = np.array([1.0, 0.0, 0.0])
    on_topic = np.array([[0.6, 0.8, 0.0], [0.6, -0.8, 0.0]])  # mean direction: the query's
    assert document_cosine(on_topic, query, mean_share=0.0) == pytest.approx(0.6)
    assert document_cosine(on_topic, query, mean_share=0.5) == pytest.approx(0.8)
    assert document_cosine(on_topic[:1], query, mean_share=0.5) == pytest.approx(0.6)


def _unit(*values: float) -> list[float]:
    vector = np.array(values, dtype=np.float32)
    return list(vector / np.linalg.norm(vector))


def test_documents_rank_as_wholes_and_their_passages_come_together():
    """A stand-in store (vectors chosen by hand): document "whole" is about the query in
    both its chunks, document "aside" has the single best chunk and one unrelated chunk."""
    query = np.array(_unit(1, 0, 0, 0), dtype=np.float32)
    vectors = np.array([_unit(0.75, 0, 0.66, 0), _unit(0.7, 0.71, 0, 0), _unit(0.7, -0.71, 0, 0),
                        _unit(0, 0, 0, 1)], dtype=np.float32)
    owners = ["aside", "whole", "whole", "aside"]
    chunks = [Chunk(f"{d}:{i}", d, "text", 0, 4) for i, d in enumerate(owners)]
    documents = {d: Document(d, d, f"{d}.txt", "text", d) for d in owners}
    store = SimpleNamespace(chunks=chunks, vectors=vectors, documents=documents)
    cosine = {row: float(vectors[row] @ query) for row in range(4)}
    dense = sorted(cosine.items(), key=lambda item: -item[1])

    def ranked(doc_score: str) -> list[str]:
        found = Retriever(store, None, doc_score=doc_score)._ranked(query, cosine, dense, [], k=4)
        return [p.chunk_id for p in found]

    assert ranked("chunk") == ["aside:0", "whole:1", "whole:2", "aside:3"]
    assert ranked("document") == ["whole:1", "whole:2", "aside:0", "aside:3"]
