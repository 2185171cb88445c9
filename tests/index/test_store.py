"""The index on disk grows by segments: a save writes only what changed, searches
(dense and BM25) see exactly the live documents, and interrupted saves heal.

Vectors are random unit vectors (the store's behaviour does not depend on what
they mean); texts are real words so BM25 has something to find."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import qa.index.store as store_module
from qa.index import lexical
from qa.index.store import IndexStore
from qa.types import Chunk, Document
from tests.conftest import ROOT


def _documents(numbers, version="v1"):
    """Documents of three chunks each; document n alone has the word ``zorbanite{n}``."""
    documents, chunks = {}, []
    for n in numbers:
        parts = [f"Minister {n} met the envoy in {version}. ", f"Talks on grain and zorbanite{n} went on. ",
                 f"Document {n} ends with a {version} statement."]
        text = "".join(parts)
        doc = Document(doc_id=f"d{n}", title=f"Briefing {n}", source=f"/docs/d{n}.txt", text=text,
                       content_hash=f"{n}-{version}")
        documents[doc.doc_id] = doc
        start = 0
        for i, part in enumerate(parts):
            chunks.append(Chunk(chunk_id=f"d{n}:{i}", doc_id=doc.doc_id, text=part, start=start,
                                end=start + len(part)))
            start += len(part)
    rng = np.random.default_rng(sum(numbers) + len(version))
    vectors = rng.standard_normal((len(chunks), 384)).astype(np.float32)
    return documents, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _store(numbers) -> IndexStore:
    return IndexStore.empty("test-embedder", 384, {"max_tokens": 64}).replace_contents(*_documents(numbers))


def _with(store: IndexStore, add=(), drop=(), version="v1") -> IndexStore:
    """``store`` without the documents in ``drop``, with documents ``add`` (new or replacing)."""
    documents, chunks, vectors = _documents(list(add), version) if add else ({}, [], np.zeros((0, 384)))
    gone = set(drop) | set(documents)
    keep = [i for i, c in enumerate(store.chunks) if c.doc_id not in gone]
    docs = {k: v for k, v in store.documents.items() if k not in gone} | documents
    return store.replace_contents(docs, [store.chunks[i] for i in keep] + chunks,
                                  np.vstack([store.vectors[keep], vectors]).astype(np.float32))


def _stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}


def _finds(store: IndexStore, word: str) -> set[str]:
    return {store.chunks[row].doc_id for row, _ in store.lexical_search(word, 10)}


def test_adding_a_document_writes_only_its_own_segment(tmp_path):
    folder = tmp_path / "index"
    _store(range(40)).save(folder)
    before = _stamps(folder)
    store = IndexStore.load(folder, "test-embedder")
    bigger = _with(store, add=[40])
    bigger.save(folder)

    after = _stamps(folder)
    new = sorted(set(after) - set(before))
    assert new == ["segment-2.jsonl", "segment-2.npy", "segment-2.order.json"]
    assert all(after[name] == stamp for name, stamp in before.items() if name != "manifest.json")
    reopened = IndexStore.load(folder, "test-embedder")
    assert len(reopened) == 41 * 3 and set(reopened.documents) == {f"d{n}" for n in range(41)}
    row = reopened.row("d40:1")
    assert reopened.search(bigger.vectors[bigger.row("d40:1")], 1) == [(row, pytest.approx(1.0, abs=1e-5))]
    assert _finds(reopened, "zorbanite40") == {"d40"}
    assert reopened.chunk("d40:1").text == "Talks on grain and zorbanite40 went on. "


def test_removed_and_changed_documents_leave_both_searches(tmp_path):
    folder = tmp_path / "index"
    store = _store(range(10))
    store.save(folder)
    changed = _with(_with(store, drop=["d3"]), add=[5], version="v2")
    changed.save(folder)

    reopened = IndexStore.load(folder, "test-embedder")
    assert "d3" not in reopened.documents and len(reopened) == 9 * 3
    assert _finds(reopened, "zorbanite3") == set()
    assert _finds(reopened, "v2") == {"d5"} and "v2" in reopened.chunk("d5:0").text
    old_vector = store.vectors[store.row("d3:0")]
    assert all(reopened.chunks[row].doc_id != "d3" for row, _ in reopened.search(old_vector, 5))
    assert reopened.lexical_search("zorbanite5", 10)[0][0] == reopened.row("d5:1")


def test_a_mostly_removed_segment_is_rewritten_and_deleted(tmp_path):
    folder = tmp_path / "index"
    _store(range(10)).save(folder)
    store = IndexStore.load(folder, "test-embedder")
    small = _with(store, add=[10, 11])
    small.save(folder)
    assert set(small.manifest.segments) == {"segment-1", "segment-2"}

    _with(small, drop=[f"d{n}" for n in range(8)]).save(folder)  # 8 of segment-1's 10 gone
    reopened = IndexStore.load(folder, "test-embedder")
    assert set(reopened.manifest.segments) == {"segment-2", "segment-3"}
    assert not (folder / "segment-1.npy").exists()
    assert set(reopened.documents) == {"d8", "d9", "d10", "d11"}
    assert _finds(reopened, "zorbanite9") == {"d9"}


def test_many_small_segments_merge_into_one(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_SEGMENTS", 3)
    folder = tmp_path / "index"
    store = _store(range(20))
    store.save(folder)
    for n in range(20, 25):
        store = _with(store, add=[n])
        store.save(folder)
        assert len(store.manifest.segments) <= 3
    assert "segment-1" in store.manifest.segments  # the large one is never rewritten for this
    reopened = IndexStore.load(folder, "test-embedder")
    assert len(reopened.documents) == 25 and _finds(reopened, "zorbanite24") == {"d24"}


def test_a_lexical_commit_ahead_of_the_manifest_is_rebuilt_on_opening(tmp_path):
    """Killed between the lexical commit and the manifest: the old manifest rules."""
    folder = tmp_path / "index"
    _store(range(6)).save(folder)
    script = textwrap.dedent(f"""
        import os, signal
        import qa.index.store as st
        from tests.index.test_store import _with
        store = st.IndexStore.load(st.Path({str(folder)!r}))
        def dying(target, data):
            if target.name == "manifest.json":
                os.kill(os.getpid(), signal.SIGKILL)
        st._write_atomic = dying
        _with(store, add=[9], drop=["d2"]).save(st.Path({str(folder)!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert result.returncode == -signal.SIGKILL
    assert lexical.LexicalIndex.open(folder).generation() == 2  # it ran ahead

    reopened = IndexStore.load(folder, "test-embedder")
    assert reopened.manifest.generation == 1 and "d2" in reopened.documents
    assert _finds(reopened, "zorbanite2") == {"d2"} and _finds(reopened, "zorbanite9") == set()
    assert lexical.LexicalIndex.open(folder).count == len(reopened)


class _SaveHeldBeforeItsManifest:
    """A save (in a thread, under the writer's lock like every writer) held after its
    lexical commit, before it replaces the manifest, until ``release``."""

    def __init__(self, folder: Path, store: IndexStore, monkeypatch):
        import threading

        from qa.index.indexing import index_lock

        self.committed, self.go = threading.Event(), threading.Event()
        real = store_module._write_atomic

        def held(target, data):
            if target.name == "manifest.json" and threading.current_thread() is self.thread:
                self.committed.set()
                self.go.wait(30)
            real(target, data)

        monkeypatch.setattr(store_module, "_write_atomic", held)

        def save():
            with index_lock(folder):
                store.save(folder)

        self.thread = threading.Thread(target=save)
        self.thread.start()
        assert self.committed.wait(30)

    def release(self) -> None:
        self.go.set()
        self.thread.join(30)


def _lexical_files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (folder / lexical.FOLDER).iterdir()}


def test_a_reader_opening_mid_save_waits_for_the_manifest_and_never_rebuilds(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(store_module, "LEXICAL_SETTLE_SECONDS", 20.0)  # however slow the machine
    folder = tmp_path / "index"
    base = _store(range(6))
    base.save(folder)
    writer = _SaveHeldBeforeItsManifest(folder, _with(base, add=[9], drop=["d2"]), monkeypatch)
    lexical_files = _lexical_files(folder)
    opened: list[IndexStore] = []
    reader = threading.Thread(target=lambda: opened.append(IndexStore.load(folder, "test-embedder")))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive()  # waiting for the manifest...
    writer.release()
    reader.join(30)
    assert opened[0].manifest.generation == 2  # ...then read the index the save made
    assert _finds(opened[0], "zorbanite9") == {"d9"} and _finds(opened[0], "zorbanite2") == set()
    assert _lexical_files(folder) == lexical_files  # the reader wrote nothing


def test_a_reader_opening_during_a_long_save_searches_without_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "LEXICAL_SETTLE_SECONDS", 0.2)
    folder = tmp_path / "index"
    base = _store(range(6))
    base.save(folder)
    writer = _SaveHeldBeforeItsManifest(folder, _with(base, add=[9], drop=["d2"]), monkeypatch)
    try:
        lexical_files = _lexical_files(folder)
        reader = IndexStore.load(folder, "test-embedder")  # the save is still held: the old manifest
        assert reader.manifest.generation == 1 and len(reader.documents) == 6
        assert _finds(reader, "zorbanite4") == {"d4"} and _finds(reader, "zorbanite9") == set()
        assert _lexical_files(folder) == lexical_files  # not rebuilt under the writer's feet
    finally:
        writer.release()
    assert IndexStore.load(folder, "test-embedder").manifest.generation == 2


def test_an_index_of_format_version_1_opens_and_is_rewritten(tmp_path):
    folder = tmp_path / "index"
    folder.mkdir()
    store = _store(range(4))
    names = {"documents": "documents-3.jsonl", "chunks": "chunks-3.jsonl", "vectors": "vectors-3.npy",
             "faiss": "faiss-3.index"}
    rows = [json.dumps(store_module._fields(d)) for d in store.documents.values()]
    (folder / names["documents"]).write_text("\n".join(rows) + "\n")
    (folder / names["chunks"]).write_text("\n".join(json.dumps(store_module._fields(c))
                                                    for c in store.chunks) + "\n")
    np.save(folder / names["vectors"], store.vectors)
    (folder / names["faiss"]).write_bytes(b"")
    manifest = {**store_module._fields(store.manifest), "format_version": 1, "generation": 3,
                "files": names}
    (folder / "manifest.json").write_text(json.dumps(manifest))

    old = IndexStore.load(folder, "test-embedder")
    assert len(old) == 12 and _finds(old, "zorbanite1") == {"d1"}
    old.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["lexical", "manifest.json", "segment-4.jsonl",
                                                        "segment-4.npy", "segment-4.order.json"]
    assert IndexStore.load(folder, "test-embedder").chunk("d3:2").text == old.chunk("d3:2").text


def test_an_approximate_index_grows_by_segments_too(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "APPROXIMATE_THRESHOLD", 300)
    folder = tmp_path / "index"
    store = _store(range(120))
    assert store.manifest.index_type == "ivf"
    store.save(folder)
    before = _stamps(folder)
    bigger = _with(IndexStore.load(folder, "test-embedder"), add=[200], drop=["d7"])
    bigger.save(folder)

    after = _stamps(folder)
    assert sorted(set(after) - set(before)) == ["segment-2.ivf", "segment-2.jsonl", "segment-2.npy",
                                                "segment-2.order.json"]
    assert after["ivf-1.trained"] == before["ivf-1.trained"]  # not retrained for one document
    reopened = IndexStore.load(folder, "test-embedder")
    assert reopened.faiss_index.ntotal == 121 * 3  # d7's rows stay in segment-1, mapped to no row
    found = reopened.search(bigger.vectors[bigger.row("d200:2")], 1)
    assert found == [(reopened.row("d200:2"), pytest.approx(1.0, abs=1e-4))]
    d7 = store.vectors[store.row("d7:0")]
    assert all(reopened.chunks[row].doc_id != "d7" for row, _ in reopened.search(d7, 10))


def test_search_results_are_rows_of_live_chunks_only(tmp_path):
    folder = tmp_path / "index"
    store = _store(range(30))
    store.save(folder)
    smaller = _with(IndexStore.load(folder, "test-embedder"), drop=[f"d{n}" for n in range(0, 30, 2)])
    smaller.save(folder)
    reopened = IndexStore.load(folder, "test-embedder")
    rows = [r for r, _ in reopened.lexical_search("minister grain statement", 100)]
    assert sorted(rows) == list(range(len(reopened)))


def test_a_save_while_another_writes_the_index_waits_then_says_what_to_do(tmp_path, monkeypatch):
    import tantivy

    from qa.errors import IndexUnavailableError

    folder = tmp_path / "index"
    store = _store(range(3))
    store.save(folder)
    monkeypatch.setattr(lexical, "_LOCK_WAIT_SECONDS", 0.3)
    other = tantivy.Index.open(str(folder / lexical.FOLDER)).writer(15_000_000, 1)  # another process's
    with pytest.raises(IndexUnavailableError, match="Another process is writing the index"):
        _with(store, add=[7]).save(folder)
    other.wait_merging_threads()  # it finishes: the lock is free
    _with(store, add=[7]).save(folder)
    assert _finds(IndexStore.load(folder, "test-embedder"), "zorbanite7") == {"d7"}


def test_lexical_search_within_documents_keeps_the_whole_index_scores(tmp_path):
    folder = tmp_path / "index"
    _store(range(12)).save(folder)
    store = IndexStore.load(folder, "test-embedder")
    everywhere = dict(store.lexical_search("minister grain zorbanite4 zorbanite7", 100))
    within = store.lexical_search("minister grain zorbanite4 zorbanite7", 100, doc_ids={"d4", "d9"})
    assert {store.chunks[row].doc_id for row, _ in within} == {"d4", "d9"}
    assert within[0][0] == store.row("d4:1")  # the rare word wins inside the filter too
    assert all(score == pytest.approx(everywhere[row]) for row, score in within)


def test_a_save_without_reuse_replaces_a_damaged_index_on_disk(tmp_path):
    folder = tmp_path / "index"
    _store(range(4)).save(folder)
    for vectors in folder.glob("*.npy"):
        vectors.write_bytes(b"damaged")
    with pytest.raises(Exception, match="corrupt"):
        IndexStore.load(folder, "test-embedder")
    _store(range(4)).save(folder, reuse=False)

    reopened = IndexStore.load(folder, "test-embedder")
    assert len(reopened.documents) == 4 and len(reopened) == 12
    assert _finds(reopened, "zorbanite2") == {"d2"}
