"""Vector and keyword search backends behind one interface, a factory by name.

``faiss`` (the default, ``faiss.py``) keeps today's index folder: FAISS and BM25
in this process. ``milvus`` (``milvus.py``) keeps vectors, BM25 and the documents
in a Milvus engine (a milvus-lite ``.db`` file, or a Milvus server that several
web processes share), so no web process holds the corpus in memory.

A backend opens, updates and searches a *store*: ``qa.index.store.IndexStore`` for
FAISS, ``MilvusStore`` for Milvus. The answering code reads a store only through
``documents`` (a mapping by id), ``chunk(chunk_id)`` and ``len()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qa.errors import ConfigurationError
from qa.index.indexing import Indexed, IndexReport, Progress
from qa.models.embedder import Embedder
from qa.settings import Settings
from qa.types import Chunk, Document, Passage


@dataclass(frozen=True)
class DocumentInfo:
    """What a listing shows of an indexed document (its text stays in the store)."""

    doc_id: str
    title: str
    date: str | None
    source: str
    chunks: int

class Store(Protocol):
    @property
    def documents(self) -> Mapping[str, Document]: ...

    def chunk(self, chunk_id: str) -> Chunk: ...

    def __len__(self) -> int: ...


class Searcher(Protocol):
    """Hybrid retrieval over one store: passages best first, ``score`` the cosine."""

    store: Any

    def retrieve(self, query: str, k: int = 10) -> list[Passage]: ...


class Backend(Protocol):
    name: str

    def open(self, settings: Settings, embedder: Embedder) -> Any:
        """The store to answer from; a clear error if it is missing or built for another embedder."""

    def update(self, paths: Iterable[str | Path], settings: Settings, embedder: Embedder,
               rebuild: bool = False, progress: Progress | None = None) -> Indexed[Any, IndexReport]:
        """Bring the store in line with the files under ``paths`` (``qa index``)."""

    def add(self, store: Any, documents: list[Document], embedder: Embedder, settings: Settings,
            index_dir: Path | None, progress: Progress | None = None,
            before_save: Callable[[], None] | None = None) -> Indexed[Any, IndexReport]:
        """Index new or changed documents (uploads); the old contents serve until it ends.
        ``before_save`` runs before the new contents are written (it may wait for answers)."""

    def remove(self, store: Any, doc_id: str, index_dir: Path | None) -> Any: ...

    def searcher(self, store: Any, embedder: Embedder, settings: Settings) -> Searcher: ...

    def listing(self, store: Any) -> list[DocumentInfo]:
        """Every indexed document, without its text."""


NAMES = ("faiss", "milvus")


def backend(name: str) -> Backend:
    """The backend called ``name`` (QA_VECTOR_BACKEND)."""
    if name == "faiss":
        from qa.index.backends.faiss import FaissBackend

        return FaissBackend()
    if name == "milvus":
        from qa.index.backends.milvus import MilvusBackend

        return MilvusBackend()
    raise ConfigurationError(f"QA_VECTOR_BACKEND must be one of {', '.join(NAMES)}, not {name!r}.")


def backend_of(store: Any) -> Backend:
    """The backend a store came from."""
    return backend(getattr(store, "backend_name", "faiss"))
