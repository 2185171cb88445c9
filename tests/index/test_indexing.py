"""The persisted index with the real embedder: incremental updates, atomic
writes, clear errors for corrupt or mismatched indexes."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa.errors import IndexUnavailableError
from qa.index.indexing import update_index
from qa.index.store import IndexStore
from tests.conftest import SEED_FILE

SEED_NAME = SEED_FILE.name


def _index(paths, index_dir, embedder, settings):
    return update_index(paths, index_dir, embedder, settings)


def test_reindexing_embeds_only_what_changed(seed_copy, tmp_path, embedder, settings):
    index_dir = tmp_path / "index"
    (seed_copy / "memo.txt").write_text("The budget memo says the budget is 5 million dollars.")
    first = _index([seed_copy], index_dir, embedder, settings).report
    assert first.added == 2 and first.chunks_embedded > 3

    again = _index([seed_copy], index_dir, embedder, settings).report
    assert (again.added, again.updated, again.removed, again.chunks_embedded) == (0, 0, 0, 0)

    (seed_copy / "memo.txt").write_text("The budget memo now says 7 million dollars.")
    indexed = _index([seed_copy], index_dir, embedder, settings)
    store, changed = indexed.store, indexed.report
    assert changed.updated == 1 and changed.chunks_embedded == 1
    assert any("7 million" in c.text for c in store.chunks)
    assert not any("5 million" in c.text for c in store.chunks)

    (seed_copy / "memo.txt").unlink()
    indexed = _index([seed_copy], index_dir, embedder, settings)
    store, removed = indexed.store, indexed.report
    assert removed.removed == 1 and len(store.documents) == 1
    reopened = IndexStore.load(index_dir, embedder.name)
    assert len(reopened) == len(store) == len(reopened.vectors)


def test_unreadable_file_keeps_its_last_good_version(seed_copy, tmp_path, embedder, settings):
    index_dir = tmp_path / "index"
    memo = seed_copy / "memo.txt"
    memo.write_text("Ankara hosted the first round of talks.")
    _index([seed_copy], index_dir, embedder, settings)
    memo.write_bytes(b"\x00\xff" * 100)
    store = _index([seed_copy], index_dir, embedder, settings).store
    assert any("Ankara hosted" in c.text for c in store.chunks)


def test_missing_index_says_how_to_build(tmp_path, embedder):
    with pytest.raises(IndexUnavailableError, match="qa index"):
        IndexStore.load(tmp_path / "nothing", embedder.name)


@pytest.mark.parametrize("damage", ["manifest.json", ".npy", ".jsonl"])
def test_corrupt_index_is_a_clear_error(seed_copy, tmp_path, embedder, settings, damage):
    index_dir = tmp_path / "index"
    _index([seed_copy], index_dir, embedder, settings)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    target = index_dir / next(name for name in manifest["files"] if name.endswith(damage))
    target.write_bytes(b"{ not valid")
    with pytest.raises(IndexUnavailableError, match="corrupt.*--repair"):
        IndexStore.load(index_dir, embedder.name)


def test_other_embedder_or_format_is_refused(seed_copy, tmp_path, embedder, settings):
    index_dir = tmp_path / "index"
    _index([seed_copy], index_dir, embedder, settings)
    with pytest.raises(IndexUnavailableError, match="built with the embedder"):
        IndexStore.load(index_dir, "some-other-model")
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexUnavailableError, match="format version 99.*--repair"):
        IndexStore.load(index_dir, embedder.name)


def test_killed_mid_save_leaves_previous_index_usable(seed_copy, tmp_path, embedder, settings):
    """A child process is killed while writing a new generation; the old one still opens."""
    index_dir = tmp_path / "index"
    store = _index([seed_copy], index_dir, embedder, settings).store
    before = len(store)
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from qa.index.store import IndexStore
        import qa.index.store as st
        store = IndexStore.load(st.Path({str(index_dir)!r}))
        real = st._write_atomic
        calls = []
        def dying(target, data):
            calls.append(target)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            real(target, data)
        st._write_atomic = dying
        bigger = store.replace_contents(store.documents, store.chunks * 2,
                                        np.vstack([store.vectors, store.vectors]))
        bigger.save(st.Path({str(index_dir)!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent.parent)
    assert result.returncode == -9
    reopened = IndexStore.load(index_dir, embedder.name)
    assert len(reopened) == before
    indexed = _index([seed_copy], index_dir, embedder, settings)  # and it can be updated
    store, report = indexed.store, indexed.report
    assert report.chunks_embedded == 0 and not list(index_dir.glob(".tmp-*"))
    shutil.rmtree(index_dir)


def test_other_chunking_reindexes_every_document_it_holds(seed_copy, tmp_path, embedder, settings):
    """Changing chunking (or the embedder) re-embeds the stored texts: documents
    indexed from other folders are not lost."""
    index_dir = tmp_path / "index"
    _index([seed_copy], index_dir, embedder, settings)
    other = tmp_path / "other"
    other.mkdir()
    (other / "memo.txt").write_text("Budget memo\n\nThe committee approved 40 new posts for 2027.\n")
    changed = settings.replace(chunk_tokens=settings.index.chunk_tokens // 2)
    indexed = update_index([other], index_dir, embedder, changed)
    store, report = indexed.store, indexed.report
    assert {Path(d.source).name for d in store.documents.values()} == {"memo.txt", SEED_NAME}
    assert store.manifest.chunking["max_tokens"] == settings.index.chunk_tokens // 2
    assert report.added == 2 and report.chunks_embedded == report.total_chunks
    reopened = IndexStore.load(index_dir, embedder.name)
    assert len(reopened.chunks) == report.total_chunks


class _InterruptedEmbedder:
    """The real embedder, stopped (as by Ctrl-C) on its ``fail_on``-th encode call."""

    def __init__(self, embedder, fail_on):
        self._embedder, self.calls, self.fail_on = embedder, 0, fail_on
        self.batch_size = 1  # the indexer embeds 4 chunks per call: several calls per run

    def encode(self, texts, show_progress=False):
        self.calls += 1
        if self.calls == self.fail_on:
            raise KeyboardInterrupt
        return self._embedder.encode(texts)

    def __getattr__(self, name):
        return getattr(self._embedder, name)


def test_an_interrupted_run_keeps_the_documents_it_finished(tmp_path, embedder, settings):
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(8):
        sentences = " ".join(f"Report {n} says item {k} of the plan was delivered." for k in range(24))
        (folder / f"report-{n}.txt").write_text(f"Report {n}\n\n{sentences}\n")
    index_dir = tmp_path / "index"
    eager = settings.replace(checkpoint_seconds=0.0)  # a checkpoint after every call
    assert settings.index.chunk_tokens <= 128  # so each report makes several chunks
    with pytest.raises(KeyboardInterrupt):
        update_index([folder], index_dir, _InterruptedEmbedder(embedder, fail_on=4), eager)
    saved = IndexStore.load(index_dir, embedder.name)
    assert 0 < len(saved.documents) < 8
    for doc_id, meta in saved.manifest.documents.items():  # whole documents only
        assert meta["chunks"] == sum(1 for c in saved.chunks if c.doc_id == doc_id) > 0
    indexed = update_index([folder], index_dir, embedder, eager)
    store, report = indexed.store, indexed.report
    assert report.unchanged == len(saved.documents) and len(store.documents) == 8
    assert report.chunks_embedded == len(store.chunks) - len(saved.chunks)


def test_an_interrupted_re_embedding_loses_none_of_the_old_documents(tmp_path, embedder, settings):
    """Re-embedding for another chunking saves nothing partial: the old index stays whole."""
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for n in range(4):
            text = " ".join(f"Note {name}{n} records that step {k} was finished." for k in range(24))
            (folder / f"note-{name}{n}.txt").write_text(f"Note {name}{n}\n\n{text}\n")
        folders.append(folder)
    index_dir = tmp_path / "index"
    update_index(folders, index_dir, embedder, settings)
    eager = settings.replace(checkpoint_seconds=0.0, chunk_tokens=settings.index.chunk_tokens // 2)
    with pytest.raises(KeyboardInterrupt):  # only folder a given: b's documents are carried over
        update_index([folders[0]], index_dir, _InterruptedEmbedder(embedder, fail_on=3), eager)
    kept = IndexStore.load(index_dir, embedder.name)
    assert len(kept.documents) == 8 and kept.manifest.chunking == _chunking(settings)
    store = update_index([folders[0]], index_dir, embedder, eager).store
    assert len(store.documents) == 8 and store.manifest.chunking == _chunking(eager)


def _chunking(settings):
    from qa.index.indexing import chunking_config

    return chunking_config(settings).as_dict()


def test_documents_added_to_an_open_index_follow_its_own_chunking(seed_copy, tmp_path, embedder, settings):
    """The web app adds uploads to the index it has open, whatever the settings say now."""
    from qa.index.indexing import apply_documents
    from qa.ingest.documents import load_documents

    small = settings.replace(chunk_tokens=48)
    store = update_index([seed_copy], tmp_path / "index", embedder, small).store
    memo = tmp_path / "memo.txt"
    memo.write_text("Budget memo\n\n" + " ".join(f"Line {k} of the budget was approved." for k in range(30)))
    grown = apply_documents(store, load_documents([memo]), embedder, settings, prune=False).store
    assert grown.manifest.chunking == _chunking(small)
    memo_chunks = [c for c in grown.chunks if c.doc_id not in store.documents]
    assert all(sum(embedder.count_tokens([c.text])) <= 48 for c in memo_chunks) and len(memo_chunks) > 3


def test_two_writers_of_one_folder_lose_nothing(seed_copy, tmp_path, embedder, settings):
    """A web server and `qa index` (or two web servers) over one index: each save
    starts from what the other saved, not from the copy it opened."""
    from qa.index.backends.faiss import FaissBackend
    from qa.ingest.documents import load_document

    index_dir = tmp_path / "index"
    settings = settings.replace(index_dir=index_dir)
    _index([seed_copy], index_dir, embedder, settings)
    web, cli = IndexStore.load(index_dir, embedder.name), IndexStore.load(index_dir, embedder.name)
    (tmp_path / "a.txt").write_text("The harbour authority hired Mira Kell as its pilot.\n")
    (tmp_path / "b.txt").write_text("The rail board named Joss Arden its new inspector.\n")
    backend = FaissBackend()
    backend.add(cli, [load_document(tmp_path / "a.txt")], embedder, settings, index_dir)
    web = backend.add(web, [load_document(tmp_path / "b.txt")], embedder, settings, index_dir).store

    def names(store):
        return {Path(d.source).name for d in store.documents.values()}

    assert names(IndexStore.load(index_dir, embedder.name)) == {SEED_FILE.name, "a.txt", "b.txt"}
    assert names(web) == {SEED_FILE.name, "a.txt", "b.txt"}
    first = next(d.doc_id for d in web.documents.values() if Path(d.source).name == "a.txt")
    assert names(backend.remove(cli, first, index_dir)) == {SEED_FILE.name, "b.txt"}
