"""The ``milvus`` search backend on a real milvus-lite database file (and, for two web
processes, a real ``milvus-lite server``): the same promises as the FAISS store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qa.errors import IndexUnavailableError
from qa.index.backends import backend
from qa.index.backends.milvus import MilvusSearcher, connect
from qa.ingest.documents import load_documents
from qa.pipeline import Assistant
from qa.settings import Settings
from tests.conftest import ROOT, SEED_FILE, FakeGenerator

QUESTIONS = ["Who leads the Taliban delegation?", "How much has Brussels pledged?",
             "Where were the talks held?"]


@pytest.fixture
def milvus(settings: Any, tmp_path: Path) -> Any:
    return settings.replace(vector_backend="milvus", vector_uri=str(tmp_path / "milvus.db"),
                            index_dir=tmp_path / "unused")


class Renamed:
    """The real embedder under another name: stands in for a second embedding model."""

    def __init__(self, embedder: Any, name: str = "another-embedder", fail_after: int | None = None):
        self._embedder, self.name, self._left = embedder, name, fail_after
        self.batch_size = 2 if fail_after is not None else embedder.batch_size  # slices of 8 chunks

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        if self._left is not None:
            if self._left == 0:
                raise KeyboardInterrupt  # as if ^C arrived mid-run
            self._left -= 1
        return self._embedder.encode(texts, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)


def _rows(store: Any) -> int:
    """Chunk rows in the engine, seen or not."""
    return store.client.query(store.chunks_collection, filter="born >= 0",
                              output_fields=["count(*)"])[0]["count(*)"]


def _update(milvus: Any, embedder: Any, paths: list[Path], **options: Any) -> Any:
    return backend("milvus").update(paths, milvus, embedder, **options)


def test_reindexing_embeds_only_what_changed_and_removes_by_document(seed_copy, embedder, milvus):
    memo = seed_copy / "memo.txt"
    memo.write_text("The budget memo says the budget is 5 million dollars.")
    indexed = _update(milvus, embedder, [seed_copy])
    store, first = indexed.store, indexed.report
    assert first.added == 2 and first.chunks_embedded == first.total_chunks == len(store) > 3

    again = _update(milvus, embedder, [seed_copy]).report
    assert (again.added, again.updated, again.removed, again.chunks_embedded) == (0, 0, 0, 0)

    memo.write_text("The budget memo now says 7 million dollars.")
    indexed = _update(milvus, embedder, [seed_copy])
    store, changed = indexed.store, indexed.report
    assert changed.updated == 1 and changed.chunks_embedded == 1
    texts = [p.text for p in MilvusSearcher(store, embedder).retrieve("budget memo", 50)]
    assert any("7 million" in t for t in texts) and not any("5 million" in t for t in texts)

    memo_id = next(d.doc_id for d in store.listing() if d.source.endswith("memo.txt"))
    backend("milvus").remove(store, memo_id, None)
    reopened = backend("milvus").open(milvus, embedder)
    assert [d.source for d in reopened.listing()] == [str(seed_copy / SEED_FILE.name)]
    assert len(reopened) == first.total_chunks - 1
    assert memo_id not in reopened.documents and reopened.documents.get(memo_id) is None
    assert _rows(reopened) == len(reopened)  # replaced rows are gone, not just hidden


def test_hybrid_retrieval_ranks_as_the_faiss_backend(seed_copy, embedder, milvus, settings, tmp_path):
    faiss_settings = settings.replace(index_dir=tmp_path / "faiss")
    faiss_store = backend("faiss").update([seed_copy], faiss_settings, embedder).store
    milvus_store = _update(milvus, embedder, [seed_copy]).store
    faiss_search = backend("faiss").searcher(faiss_store, embedder, settings)
    milvus_search = backend("milvus").searcher(milvus_store, embedder, settings)
    for question in QUESTIONS:
        expected = [(p.chunk_id, round(p.score, 4)) for p in faiss_search.retrieve(question, 5)]
        assert [(p.chunk_id, round(p.score, 4)) for p in milvus_search.retrieve(question, 5)] == expected
    first = milvus_search.retrieve(QUESTIONS[0], 1)[0]
    assert milvus_store.documents[first.doc_id].text[first.start : first.end] == first.text
    assert milvus_store.chunk(first.chunk_id).text == first.text


def test_another_embedder_is_detected_and_re_indexing_loses_nothing(seed_copy, embedder, milvus):
    (seed_copy / "memo.txt").write_text("Ankara hosted the first round of talks.")
    first = _update(milvus, embedder, [seed_copy]).report
    other = Renamed(embedder)
    with pytest.raises(IndexUnavailableError, match="built with the embedder .* not 'another-embedder'"):
        backend("milvus").open(milvus, other)
    (seed_copy / "memo.txt").unlink()  # gone from disk, yet kept: only re-embedding was asked
    report = backend("milvus").update([seed_copy / SEED_FILE.name], milvus, other).report
    assert report.chunks_embedded == first.total_chunks
    store = backend("milvus").open(milvus, other)
    assert len(store.listing()) == 2 and len(store) == first.total_chunks


def test_an_interrupted_run_leaves_the_previous_state_queryable(seed_copy, embedder, milvus, tmp_path):
    indexed = _update(milvus, embedder, [seed_copy])
    store, first = indexed.store, indexed.report
    before = [p.chunk_id for p in MilvusSearcher(store, embedder).retrieve(QUESTIONS[0], 5)]
    more = tmp_path / "more"
    more.mkdir()
    for n in range(6):  # enough chunks for several embedding slices
        (more / f"memo-{n}.txt").write_text(" ".join([f"Memo {n} says the Kabul office reopened."] * 40))
    with pytest.raises(KeyboardInterrupt):
        _update(milvus, Renamed(embedder, embedder.name, fail_after=1), [more], progress=None)
    reopened = backend("milvus").open(milvus, embedder)
    assert len(reopened.listing()) == 1 and len(reopened) == first.total_chunks
    assert _rows(reopened) > len(reopened)  # the interrupted run wrote rows: they stay unseen
    assert reopened.search_filter()  # and searches filter them out until the next run
    assert [p.chunk_id for p in MilvusSearcher(reopened, embedder).retrieve(QUESTIONS[0], 5)] == before

    finished = _update(milvus, embedder, [seed_copy, more]).report
    assert finished.added == 6 and finished.unchanged == 1
    assert _rows(reopened) == finished.total_chunks  # the interrupted run's rows were cleared
    assert backend("milvus").open(milvus, embedder).search_filter() == ""  # all rows live again


def test_an_assistant_answers_and_indexes_uploads_over_milvus(seed_copy, embedder, milvus, tmp_path):
    _update(milvus, embedder, [seed_copy])
    assistant = Assistant(backend("milvus").open(milvus, embedder), milvus, embedder=embedder,
                          generator=FakeGenerator())  # fake: this is about retrieval, not the model
    assert assistant.ask(QUESTIONS[0]).citations
    upload = tmp_path / "upload.txt"
    upload.write_text("The Herat water board approved a new dam on the Hari river.")
    assert assistant.add_documents([upload]).added == 1
    assert assistant.retrieve("Herat water board dam", 1)[0].source == str(upload)
    assert {d.source for d in assistant.documents} == {str(seed_copy / SEED_FILE.name), str(upload)}
    upload_id = next(d.doc_id for d in assistant.documents if d.source == str(upload))
    within = assistant.retriever.retrieve_within(QUESTIONS[0], [upload_id], 5)
    assert within and {p.doc_id for p in within} == {upload_id}  # a question limited to one document


def test_two_writers_one_after_the_other_lose_nothing(seed_copy, embedder, milvus, tmp_path):
    """Two web processes over one Milvus: each writes on top of what the other committed."""
    first = _update(milvus, embedder, [seed_copy]).store
    second = backend("milvus").open(milvus, embedder)  # opened now, so it has read generation 1
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("The Herat water board approved a new dam.")
    two.write_text("The Kandahar grain office doubled its stock.")
    backend("milvus").add(first, load_documents([one]), embedder, milvus, None)
    backend("milvus").add(second, load_documents([two]), embedder, milvus, None)
    sources = {d.source for d in backend("milvus").open(milvus, embedder).listing()}
    assert {str(one), str(two)} < sources


def test_a_missing_milvus_index_or_uri_is_a_clear_error(embedder, milvus):
    with pytest.raises(IndexUnavailableError, match="No index in Milvus .* qa index"):
        backend("milvus").open(milvus, embedder)
    with pytest.raises(Exception, match="needs QA_VECTOR_URI"):
        connect(milvus.replace(vector_uri=""))


CLI = [sys.executable, "-m", "qa.cli"]


def test_cli_indexes_into_milvus(seed_copy, tmp_path, embedder):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_VECTOR_BACKEND": "milvus",
           "QA_VECTOR_URI": str(tmp_path / "cli.db")}
    done = subprocess.run([*CLI, "index", str(seed_copy)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 added" in done.stdout and "cli.db" in done.stdout
    settings = Settings.from_env().replace(vector_backend="milvus", vector_uri=str(tmp_path / "cli.db"))
    reopened = backend("milvus").open(settings, embedder)  # another process wrote it
    assert [d.source for d in reopened.listing()] == [str(seed_copy / SEED_FILE.name)]


def test_a_milvus_lite_file_held_by_another_process_is_a_clear_error(embedder, milvus):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pymilvus import MilvusClient\n"
                               "MilvusClient(sys.argv[1]).list_collections()\nprint('open', flush=True)\n"
                               "time.sleep(60)", milvus.index.vector_uri], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(IndexUnavailableError, match="another process may hold it.*milvus-lite server"):
            backend("milvus").open(milvus, embedder)
    finally:
        holder.kill()
        holder.wait()
