"""Build or update an index from files: only new or changed documents are embedded.

A document whose content hash is unchanged keeps its chunks and vectors; a
changed one is re-chunked and re-embedded; a document whose file is gone (or
no longer under the indexed folders) leaves the index. The files uploaded
through the web chat (``<index>/uploads``) are always part of the run, so no
rebuild drops them. One process writes an index at a time (a lock file), and
every batch of vectors is journalled (``qa.index.resume``), so a killed run resumes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from qa.errors import IndexBusyError, StorageError
from qa.index.resume import EmbeddingJournal
from qa.index.store import IndexStore, index_exists
from qa.ingest.chunking import ChunkingConfig, chunk_documents, document_search_text
from qa.ingest.documents import load_documents
from qa.models.embedder import Embedder
from qa.settings import Settings
from qa.types import Chunk, Document
from qa.web.uploads import uploads_dir

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, what)
StoreT = TypeVar("StoreT")
ReportT = TypeVar("ReportT")
Checkpoint = Callable[[IndexStore], None]  # receives a store holding the work done so far


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    total_chunks: int
    chunks_resumed: int = 0  # embedded by an earlier, interrupted run (the journal)

    def summary(self) -> str:
        resumed = f" ({self.chunks_resumed} more kept from an interrupted run)" if self.chunks_resumed else ""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded{resumed}, "
            f"{self.total_chunks} in the index"
        )


@dataclass(frozen=True)
class Indexed(Generic[StoreT, ReportT]):
    """What an index update leaves: the store to serve, and what changed."""

    store: StoreT
    report: ReportT


LOCK = ".lock"


@contextlib.contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Only one writer per index folder; the operating system frees the lock when the
    process ends, however it ends (kill -9 included)."""
    from filelock import FileLock, Timeout

    try:
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(Path(index_dir) / LOCK), timeout=0, thread_local=False)
        with lock:
            yield
    except Timeout:
        raise IndexBusyError(
            f"Another `qa index` (or the web chat, indexing an upload) is writing the index in "
            f"{index_dir}; wait for it to finish, then run this again.") from None
    except OSError as error:
        raise storage_error(error, index_dir) from error


def save_index(store: IndexStore, index_dir: Path, reuse: bool = True) -> None:
    """Save, as one clear error when the disk is full or the folder not writable; the
    previous index stays as it was (saves are atomic). ``reuse=False`` for a rebuild or
    a repair: no file of the index on disk is carried over."""
    try:
        store.save(Path(index_dir), reuse=reuse)
    except OSError as error:
        raise storage_error(error, index_dir) from error


def storage_error(error: OSError, index_dir: Path) -> StorageError:
    # numpy reports a full disk as "N requested and 0 written", with no errno
    code = error.errno or (errno.ENOSPC if _nearly_full(index_dir) else 0)
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
            errno.EACCES: "permission denied", errno.EROFS: "the file system is read-only",
            errno.EPERM: "permission denied"}.get(code, error.strerror or str(error))
    return StorageError(
        f"Cannot write the index in {index_dir}: {what}. The index as last saved is intact; "
        "free space or fix the folder's permissions (or choose another with --index), then run "
        "the same command again: it resumes where it stopped.")


def chunking_config(settings: Settings) -> ChunkingConfig:
    return ChunkingConfig(settings.index.chunk_tokens, settings.index.chunk_overlap_sentences,
                          settings.index.chunk_with_title, settings.index.chunk_file_name_title)


def open_or_create(index_dir: Path, embedder: Embedder, settings: Settings,
                   rebuild: bool = False) -> IndexStore:
    """The index to update; a fresh one when it was built with another embedder or
    chunking, filled with the documents the old one holds, so nothing indexed is lost."""
    store, carried = open_compatible(index_dir, embedder, settings, rebuild)
    if carried:
        store = apply_documents(store, carried, embedder, settings, prune=False).store
    return store


def _nearly_full(folder: Path) -> bool:
    """Less than 1 MB free where ``folder`` (or its nearest existing parent) lives."""
    import shutil

    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def open_compatible(index_dir: Path, embedder: Embedder, settings: Settings,
                     rebuild: bool) -> tuple[IndexStore, list[Document]]:
    chunking = chunking_config(settings).as_dict()
    fresh = IndexStore.empty(embedder.name, embedder.dimension, chunking)
    if not index_exists(index_dir) or rebuild:
        return fresh, []
    store = IndexStore.load(index_dir)
    if store.manifest.embedder == embedder.name and store.manifest.chunking == chunking:
        return store, []
    log.warning("The index in %s was built with %s and chunking %s; re-indexing its %d documents "
                "with %s and chunking %s.", index_dir, store.manifest.embedder, store.manifest.chunking,
                len(store.documents), embedder.name, chunking)
    return fresh, list(store.documents.values())


def update_index(paths: Iterable[str | Path], index_dir: Path, embedder: Embedder,
                 settings: Settings, rebuild: bool = False, prune: bool = True,
                 progress: Progress | None = None) -> Indexed[IndexStore, IndexReport]:
    """Bring the index in ``index_dir`` in line with the files under ``paths`` (and the
    documents uploaded into it)."""
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        documents = load_documents(with_uploads([Path(p) for p in paths], index_dir))
        store, carried = open_compatible(index_dir, embedder, settings, rebuild)
        loaded = {d.doc_id for d in documents}
        documents += [d for d in carried if d.doc_id not in loaded and not (prune and _vanished(d.source))]
        # A partial save replaces the index on disk: only safe when the documents it lacks
        # are still in it (not while rebuilding or re-embedding for another model; the
        # journal keeps those runs' vectors).
        return apply_and_save(store, documents, index_dir, embedder, settings, prune=prune,
                              progress=progress, checkpoints=not (rebuild or carried),
                              reuse=not rebuild)


def apply_and_save(store: IndexStore, documents: list[Document], index_dir: Path, embedder: Embedder,
                   settings: Settings, prune: bool = True, progress: Progress | None = None,
                   checkpoints: bool = True, reuse: bool = True,
                   before_save: Callable[[], None] | None = None) -> Indexed[IndexStore, IndexReport]:
    """The one way an index folder is written: every embedded batch journalled, finished
    documents saved as it goes (``checkpoints``), then the whole store saved and the
    journal dropped. The caller holds the index lock."""
    journal = EmbeddingJournal(index_dir, embedder.name)
    checkpoint = (lambda partial: save_index(partial, index_dir)) if checkpoints else None
    indexed = apply_documents(store, documents, embedder, settings, prune=prune,
                                    progress=progress, checkpoint=checkpoint, journal=journal)
    store, report = indexed.store, indexed.report
    if before_save:
        before_save()
    save_index(store, index_dir, reuse=reuse)
    journal.clear()
    return Indexed(store, report)


def with_uploads(paths: list[Path], index_dir: Path) -> list[Path]:
    """``paths`` and the index's uploads folder, once: uploads are indexed documents
    whatever folders a run names."""
    uploads = uploads_dir(index_dir)
    given = {p.resolve() for p in paths}
    return paths + [uploads] if uploads.is_dir() and uploads not in given else paths


def apply_documents(store: IndexStore, documents: list[Document], embedder: Embedder,
                    settings: Settings, prune: bool = True, progress: Progress | None = None,
                    checkpoint: Checkpoint | None = None,
                    journal: EmbeddingJournal | None = None) -> Indexed[IndexStore, IndexReport]:
    """A new store with ``documents`` added or refreshed and vanished ones pruned.

    ``checkpoint`` receives, every ``settings.index.checkpoint_seconds`` of embedding, the
    store with the documents finished so far (the others keep their old version),
    so an interrupted run keeps that work and they can be asked about. ``journal``
    keeps every batch of vectors (by count and by time), so a run killed inside one
    large document re-embeds at most its last batch.
    """
    incoming = {d.doc_id: d for d in documents}
    old = store.manifest.documents
    changed = [d for d in documents if old.get(d.doc_id, {}).get("content_hash") != d.content_hash]
    gone = {doc_id for doc_id, meta in old.items()
            if doc_id not in incoming and prune and _vanished(meta["source"])}
    config = ChunkingConfig.from_dict(store.manifest.chunking)  # one chunking per index
    new_chunks = chunk_documents(changed, embedder.count_tokens, config)
    by_id = {d.doc_id: d for d in changed}
    texts = [document_search_text(by_id[c.doc_id], c.text, config) for c in new_chunks]

    def partial(embedded: np.ndarray, vectors: np.ndarray) -> IndexStore | None:
        """The store with the documents whose chunks are all embedded; None if no
        document is finished yet (an empty index is never saved for a full one)."""
        finished = _finished(new_chunks, embedded)  # a document in progress keeps its old version
        if not finished:
            return None
        rows = [i for i, c in enumerate(new_chunks) if c.doc_id in finished]
        return _combine(store, finished, [d for d in changed if d.doc_id in finished],
                        [new_chunks[i] for i in rows], vectors[rows])

    saver = _Saver(checkpoint, settings.index.checkpoint_seconds, partial) if checkpoint else None
    embedding = _embed(texts, embedder, settings, progress, saver, journal)
    added = sum(1 for d in changed if d.doc_id not in old)
    result = _combine(store, gone | {d.doc_id for d in changed}, changed, new_chunks, embedding.vectors)
    report = IndexReport(added=added, updated=len(changed) - added, removed=len(gone),
                         unchanged=len(documents) - len(changed),
                         chunks_embedded=len(new_chunks) - embedding.resumed,
                         total_chunks=len(result.chunks), chunks_resumed=embedding.resumed)
    return Indexed(result, report)


def _combine(store: IndexStore, drop: set[str], documents: list[Document], chunks: list[Chunk],
             vectors: np.ndarray) -> IndexStore:
    """``store`` without the documents in ``drop``, with ``documents`` and their chunks added.
    One copy of the vectors, none of the chunk list filtered when only adding."""
    drop = drop & store.documents.keys()
    kept_chunks, kept_vectors = store.chunks, store.vectors
    if drop:
        keep_rows = [i for i, c in enumerate(store.chunks) if c.doc_id not in drop]
        kept_chunks, kept_vectors = [store.chunks[i] for i in keep_rows], store.vectors[keep_rows]
    docs = {k: v for k, v in store.documents.items() if k not in drop}
    docs.update({d.doc_id: d for d in documents})
    all_vectors = np.concatenate([kept_vectors, vectors.astype(np.float32, copy=False)])
    return store.replace_contents(docs, kept_chunks + chunks, all_vectors)


def _finished(chunks: list[Chunk], embedded: np.ndarray) -> set[str]:
    """Documents all of whose chunks are embedded."""
    waiting = {c.doc_id for c, done in zip(chunks, embedded, strict=True) if not done}
    return {c.doc_id for c in chunks} - waiting


class _Saver:
    """Hands the partial store to ``checkpoint`` at most every ``seconds``, and only
    when it holds a document more than the last one it saved."""

    def __init__(self, checkpoint: Checkpoint, seconds: float,
                 partial: Callable[[np.ndarray, np.ndarray], IndexStore | None]):
        self.checkpoint, self.seconds, self.partial = checkpoint, seconds, partial
        self.last = time.monotonic()
        self.saved_documents = 0

    def __call__(self, embedded: np.ndarray, vectors: np.ndarray) -> None:
        if time.monotonic() - self.last < self.seconds:
            return
        store = self.partial(embedded, vectors)
        if store is not None and len(store.documents) > self.saved_documents:
            self.checkpoint(store)
            self.saved_documents = len(store.documents)
        self.last = time.monotonic()


def remove_document(store: IndexStore, doc_id: str) -> IndexStore:
    rows = [i for i, c in enumerate(store.chunks) if c.doc_id != doc_id]
    docs = {k: v for k, v in store.documents.items() if k != doc_id}
    return store.replace_contents(docs, [store.chunks[i] for i in rows], store.vectors[rows])


def _vanished(source: str) -> bool:
    """Only a file gone from disk leaves the index: one that turned unreadable
    keeps its last good version, so nothing indexed is lost to a bad write."""
    return not Path(source).exists()


@dataclass(frozen=True)
class _Embedding:
    vectors: np.ndarray
    resumed: int  # rows found in the journal instead of embedded


def _embed(texts: list[str], embedder: Embedder, settings: Settings, progress: Progress | None,
           saver: _Saver | None = None, journal: EmbeddingJournal | None = None) -> _Embedding:
    """Embed in slices so progress is visible and an interrupt is cheap: rows an earlier
    run journalled are reused, new ones journalled every ``checkpoint_chunks`` rows or
    ``checkpoint_seconds``, whichever comes first."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    embedded = np.zeros(len(texts), dtype=bool)
    for row, vector in enumerate(journal.lookup(texts) if journal else []):
        if vector is not None:
            vectors[row], embedded[row] = vector, True
    resumed = int(embedded.sum())
    if resumed:
        log.info("resuming: %d of %d chunks were embedded by an interrupted run", resumed, len(texts))
    todo = np.flatnonzero(~embedded)
    step = max(min(embedder.batch_size * 4, settings.index.checkpoint_chunks), 1)
    unsaved: list[int] = []
    last_save = time.monotonic()
    if progress and len(texts):
        progress(resumed, len(texts), "chunks embedded")
    for start in range(0, len(todo), step):
        rows = todo[start : start + step]
        vectors[rows] = embedder.encode([texts[i] for i in rows])
        embedded[rows] = True
        unsaved += rows.tolist()
        last_batch = start + step >= len(todo)
        due = len(unsaved) >= settings.index.checkpoint_chunks or (
            time.monotonic() - last_save >= settings.index.checkpoint_seconds)
        if journal and (due or last_batch):  # the last one too: a save killed later loses nothing
            try:
                journal.append([texts[i] for i in unsaved], vectors[unsaved])
            except OSError as error:
                raise storage_error(error, journal.folder.parent) from error
            unsaved, last_save = [], time.monotonic()
        if progress:
            progress(resumed + start + len(rows), len(texts), "chunks embedded")
        if saver and not last_batch:
            saver(embedded, vectors)
    return _Embedding(vectors, resumed)
