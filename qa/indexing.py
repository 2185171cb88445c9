"""Build or update an index from files: only new or changed documents are embedded.

A document whose content hash is unchanged keeps its chunks and vectors; a
changed one is re-chunked and re-embedded; a document whose file is gone (or
no longer under the indexed folders) leaves the index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.chunking import ChunkingConfig, chunk_documents, search_text
from qa.documents import load_documents
from qa.embedding import Embedder
from qa.settings import Settings
from qa.store import IndexStore, index_exists
from qa.types import Chunk, Document

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]  # (done, total, what)
Checkpoint = Callable[[IndexStore], None]  # receives a store holding the work done so far


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks_embedded: int
    total_chunks: int

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded, "
            f"{self.total_chunks} in the index"
        )


def chunking_config(settings: Settings) -> ChunkingConfig:
    return ChunkingConfig(settings.chunk_tokens, settings.chunk_overlap_sentences,
                          settings.chunk_with_title)


def open_or_create(index_dir: Path, embedder: Embedder, settings: Settings,
                   rebuild: bool = False) -> IndexStore:
    """The index to update; a fresh one when it was built with another embedder or
    chunking, filled with the documents the old one holds, so nothing indexed is lost."""
    store, carried = _open_compatible(index_dir, embedder, settings, rebuild)
    if carried:
        store, _ = apply_documents(store, carried, embedder, settings, prune=False)
    return store


def _open_compatible(index_dir: Path, embedder: Embedder, settings: Settings,
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
                 progress: Progress | None = None) -> tuple[IndexStore, IndexReport]:
    """Bring the index in ``index_dir`` in line with the files under ``paths``."""
    documents = load_documents([Path(p) for p in paths])
    store, carried = _open_compatible(index_dir, embedder, settings, rebuild)
    loaded = {d.doc_id for d in documents}
    documents += [d for d in carried if d.doc_id not in loaded and not (prune and _vanished(d.source))]
    # A partial save replaces the index on disk: only safe when the documents it lacks
    # are still in it (not while rebuilding or re-embedding for another model).
    checkpoint = None if rebuild or carried else lambda partial: partial.save(index_dir)
    store, report = apply_documents(store, documents, embedder, settings, prune=prune,
                                    progress=progress, checkpoint=checkpoint)
    store.save(index_dir)
    return store, report


def apply_documents(store: IndexStore, documents: list[Document], embedder: Embedder,
                    settings: Settings, prune: bool = True, progress: Progress | None = None,
                    checkpoint: Checkpoint | None = None) -> tuple[IndexStore, IndexReport]:
    """A new store with ``documents`` added or refreshed and vanished ones pruned.

    ``checkpoint`` receives, every ``settings.checkpoint_seconds`` of embedding, the
    store with the documents finished so far (the others keep their old version),
    so an interrupted run keeps that work.
    """
    incoming = {d.doc_id: d for d in documents}
    old = store.manifest.documents
    changed = [d for d in documents if old.get(d.doc_id, {}).get("content_hash") != d.content_hash]
    gone = {doc_id for doc_id, meta in old.items()
            if doc_id not in incoming and prune and _vanished(meta["source"])}
    config = ChunkingConfig.from_dict(store.manifest.chunking)  # one chunking per index
    new_chunks = chunk_documents(changed, embedder.count_tokens, config)
    titles = {d.doc_id: d.title for d in changed}
    texts = [search_text(titles[c.doc_id], c.text, config.with_title) for c in new_chunks]

    def partial(done: int, vectors: np.ndarray) -> IndexStore:
        finished = _finished(new_chunks, done)  # a document still in progress keeps its old version
        whole = sum(1 for c in new_chunks[:done] if c.doc_id in finished)
        return _combine(store, finished, [d for d in changed if d.doc_id in finished],
                        new_chunks[:whole], vectors[:whole])

    saver = _Saver(checkpoint, settings.checkpoint_seconds, partial) if checkpoint else None
    new_vectors = _embed(texts, embedder, progress, saver)
    added = sum(1 for d in changed if d.doc_id not in old)
    result = _combine(store, gone | {d.doc_id for d in changed}, changed, new_chunks, new_vectors)
    report = IndexReport(added=added, updated=len(changed) - added, removed=len(gone),
                         unchanged=len(documents) - len(changed),
                         chunks_embedded=len(new_chunks), total_chunks=len(result.chunks))
    return result, report


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


def _finished(chunks: list[Chunk], done: int) -> set[str]:
    """Documents whose chunks all lie in the first ``done`` (chunks come grouped by document)."""
    if done >= len(chunks):
        return {c.doc_id for c in chunks}
    return {c.doc_id for c in chunks[:done]} - {chunks[done].doc_id}


class _Saver:
    """Hands the partial store to ``checkpoint`` at most every ``seconds``."""

    def __init__(self, checkpoint: Checkpoint, seconds: float,
                 partial: Callable[[int, np.ndarray], IndexStore]):
        self.checkpoint, self.seconds, self.partial = checkpoint, seconds, partial
        self.last = time.monotonic()

    def __call__(self, parts: list[np.ndarray]) -> None:
        if time.monotonic() - self.last < self.seconds:
            return
        done = sum(len(p) for p in parts)
        self.checkpoint(self.partial(done, np.vstack(parts)))
        self.last = time.monotonic()


def remove_document(store: IndexStore, doc_id: str) -> IndexStore:
    rows = [i for i, c in enumerate(store.chunks) if c.doc_id != doc_id]
    docs = {k: v for k, v in store.documents.items() if k != doc_id}
    return store.replace_contents(docs, [store.chunks[i] for i in rows], store.vectors[rows])


def _vanished(source: str) -> bool:
    """Only a file gone from disk leaves the index: one that turned unreadable
    keeps its last good version, so nothing indexed is lost to a bad write."""
    return not Path(source).exists()


def _embed(texts: list[str], embedder: Embedder, progress: Progress | None,
           saver: Callable[[list[np.ndarray]], None] | None = None) -> np.ndarray:
    """Embed in slices so progress is visible and an interrupt is cheap."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    step = max(embedder.batch_size * 4, 1)
    parts: list[np.ndarray] = []
    if progress:
        progress(0, len(texts), "chunks embedded")
    for start in range(0, len(texts), step):
        parts.append(embedder.encode(texts[start : start + step]))
        if progress:
            progress(min(start + step, len(texts)), len(texts), "chunks embedded")
        if saver and start + step < len(texts):
            saver(parts)
    return np.vstack(parts)
