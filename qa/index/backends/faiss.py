"""The ``faiss`` backend: a thin adapter over today's index folder (``qa.index.store``),
its indexing (``qa.index.indexing``) and hybrid retrieval (``qa.retrieve.hybrid``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from qa.index.backends import DocumentInfo
from qa.index.indexing import (
    Indexed,
    IndexReport,
    Progress,
    apply_and_save,
    apply_documents,
    index_lock,
    remove_document,
    save_index,
    update_index,
)
from qa.index.store import IndexStore, generation_on_disk
from qa.models.embedder import Embedder
from qa.retrieve.hybrid import Retriever
from qa.settings import Settings
from qa.types import Document


class FaissBackend:
    name = "faiss"

    def open(self, settings: Settings, embedder: Embedder) -> IndexStore:
        return IndexStore.load(settings.index_dir, embedder.name)

    def update(self, paths: Iterable[str | Path], settings: Settings, embedder: Embedder,
               rebuild: bool = False, progress: Progress | None = None) -> Indexed[IndexStore, IndexReport]:
        return update_index(paths, settings.index_dir, embedder, settings, rebuild=rebuild,
                            progress=progress)

    def add(self, store: IndexStore, documents: list[Document], embedder: Embedder, settings: Settings,
            index_dir: Path | None, progress: Progress | None = None,
            before_save: Callable[[], None] | None = None) -> Indexed[IndexStore, IndexReport]:
        if index_dir is None:
            return apply_documents(store, documents, embedder, settings, prune=False, progress=progress)
        with index_lock(index_dir):  # no `qa index` writes the same folder meanwhile
            return apply_and_save(_latest(store, index_dir, embedder), documents, index_dir, embedder,
                                  settings, prune=False, progress=progress, before_save=before_save)

    def remove(self, store: IndexStore, doc_id: str, index_dir: Path | None) -> IndexStore:
        if index_dir is None:
            return remove_document(store, doc_id)
        with index_lock(index_dir):
            store = remove_document(_latest(store, index_dir), doc_id)
            save_index(store, index_dir)
        return store

    def searcher(self, store: IndexStore, embedder: Embedder, settings: Settings) -> Retriever:
        chosen = settings.retrieve
        return Retriever(store, embedder, candidates=chosen.candidates, fusion=chosen.fusion,
                         dense_weight=chosen.dense_weight, doc_score=chosen.doc_score)

    def listing(self, store: IndexStore) -> list[DocumentInfo]:
        counts = Counter(c.doc_id for c in store.chunks)
        return [DocumentInfo(d.doc_id, d.title, d.date, d.source, counts[d.doc_id])
                for d in store.documents.values()]


def _latest(store: IndexStore, index_dir: Path, embedder: Embedder | None = None) -> IndexStore:
    """A writer starts from the index on disk, not from the copy it opened: another
    process (`qa index`, a second web server) may have saved since, and a save of the
    older copy would drop what that process added."""
    if generation_on_disk(index_dir) in (None, store.manifest.generation):
        return store
    return IndexStore.load(index_dir, embedder.name if embedder else store.manifest.embedder)
