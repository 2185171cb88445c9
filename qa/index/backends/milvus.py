"""The ``milvus`` backend: vectors, BM25 keyword search and the documents in Milvus.

``QA_VECTOR_URI`` names a milvus-lite database file (one machine, tests) or a
Milvus server (``http://host:19530``, also ``milvus-lite server``); pymilvus's
``MilvusClient`` is the one code path for both. Three collections, prefixed by
``QA_VECTOR_COLLECTION``:

    <name>_chunks     chunk text, span, its document's title/source/date, the
                      embedding, and ``terms`` (the BM25 words) from which the
                      engine's BM25 function derives a sparse vector
    <name>_documents  document text (in parts: a VARCHAR holds 65,535 bytes) and metadata
    <name>_meta       one record: embedder, dimension, chunking, committed generation

Every row carries ``born`` and ``died`` generations and searches only see rows
with ``born <= G < died`` for the committed generation ``G``. An update writes
its rows as generation ``G + 1``, marks the rows it replaces as dying then, and
only then commits ``G + 1`` in the meta record: an interrupted run leaves ``G``
whole and queryable, and the next run removes its leftovers first. Replaced rows
are deleted after the commit.

The keyword half runs in the engine (Milvus's BM25 function over sparse vectors,
milvus-lite included), so no web process holds the corpus. milvus-lite has no
stemmer, so ``terms`` holds the words already stemmed and stop-worded by the
same tokenizer the FAISS backend's BM25 uses; the engine counts them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ConfigurationError, IndexUnavailableError
from qa.index.backends import DocumentInfo
from qa.index.indexing import Indexed, IndexReport, Progress, chunking_config
from qa.index.lexical import tokens
from qa.ingest.chunking import ChunkingConfig, chunk_documents, document_search_text
from qa.ingest.documents import load_documents
from qa.models.embedder import Embedder
from qa.retrieve.hybrid import fuse
from qa.settings import Settings
from qa.types import Chunk, Document, Passage

FORMAT_VERSION = 1
FOREVER = 2**62  # ``died`` of a live row
TEXT_PART = 15_000  # characters of document text per row: at most 60,000 bytes of UTF-8
BATCH = 512  # rows per insert or delete request
GENERATION_SECONDS = 0.5  # a search reuses the committed generation read this recently
BM25 = {"bm25_k1": 1.5, "bm25_b": 0.75}  # bm25s's defaults, as the FAISS backend scores
PASSAGE_FIELDS = ["chunk_id", "doc_id", "text", "char_start", "char_end", "page", "title", "source",
                  "date"]


@dataclass(frozen=True)
class Meta:
    embedder: str
    dimension: int
    chunking: dict[str, int]
    generation: int = 0
    chunks: int = 0
    writing: bool = False  # an update is under way (or was interrupted): searches must filter
    format_version: int = FORMAT_VERSION


class MilvusStore:
    """One corpus in Milvus, read at its committed generation."""

    backend_name = "milvus"

    def __init__(self, client: Any, uri: str, name: str, meta: Meta):
        self.client, self.uri, self.name = client, uri, name
        self.chunks_collection, self.documents_collection = f"{name}_chunks", f"{name}_documents"
        self.meta_collection = f"{name}_meta"
        self.meta = meta
        self._read_at = time.monotonic()
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, int], Document] = {}

    # -- reading ---------------------------------------------------------------

    def generation(self) -> int:
        """The committed generation; re-read at most every GENERATION_SECONDS, so an
        upload through another process is seen by the next question."""
        if time.monotonic() - self._read_at > GENERATION_SECONDS:
            return self._latest().generation
        return self.meta.generation

    def visible(self, generation: int | None = None) -> str:
        g = self.generation() if generation is None else generation
        return f"born <= {g} and died > {g}"

    def search_filter(self) -> str:
        """The visibility filter while an update is under way, else none: every row is
        live then, and milvus-lite's BM25 search is ~10x slower with a filter."""
        generation = self.generation()
        return self.visible(generation) if self.meta.writing else ""

    def __len__(self) -> int:
        self.generation()
        return self.meta.chunks

    @property
    def documents(self) -> MilvusDocuments:
        return MilvusDocuments(self)

    def document(self, doc_id: str) -> Document | None:
        generation = self.generation()
        key = (doc_id, generation)
        if key not in self._documents:
            rows = self.client.query(self.documents_collection,
                                     filter=f"doc_id == {json.dumps(doc_id)} and {self.visible(generation)}",
                                     output_fields=["part", "text", "info"])
            if not rows:
                return None
            rows.sort(key=lambda r: r["part"])
            info = rows[0]["info"]
            text = "".join(r["text"] for r in rows)
            if len(self._documents) > 512:
                self._documents.clear()
            self._documents[key] = _document(doc_id, text, info)
        return self._documents[key]

    def listing(self) -> list[DocumentInfo]:
        """Every document, without its text."""
        rows = query_all(self.client, self.documents_collection, f"part == 0 and {self.visible()}",
                         ["doc_id", "info"])
        return [DocumentInfo(r["doc_id"], r["info"]["title"], r["info"].get("date"), r["info"]["source"],
                             r["info"].get("chunks", 0)) for r in rows]

    def chunk(self, chunk_id: str) -> Chunk:
        rows = self.client.query(self.chunks_collection,
                                 filter=f"chunk_id == {json.dumps(chunk_id)} and {self.visible()}",
                                 output_fields=PASSAGE_FIELDS)
        if not rows:
            raise KeyError(chunk_id)
        return _chunk(rows[0])

    # -- writing ---------------------------------------------------------------

    def update(self, documents: list[Document], embedder: Embedder, settings: Settings,
               prune: bool = True, rebuild: bool = False,
               progress: Progress | None = None) -> IndexReport:
        """Add or refresh ``documents``, drop vanished ones (``prune``) or all others
        (``rebuild``), as generation G + 1; committed only when all of it is written."""
        if self.meta.dimension != embedder.dimension:
            raise IndexUnavailableError(
                f"The Milvus collection {self.chunks_collection} holds {self.meta.dimension}-dimensional "
                f"vectors; {embedder.name} makes {embedder.dimension}. Index into a new collection "
                "(QA_VECTOR_COLLECTION); the old one stays as it is.")
        committed = self._begin()
        stored = self._stored(committed)
        incoming = {d.doc_id: d for d in documents}
        reembed = self.meta.embedder != embedder.name or self.meta.chunking != chunking_config(
            settings).as_dict()
        if reembed and not rebuild:  # another embedder or chunking: re-embed all it holds
            for doc_id in stored.keys() - incoming.keys():
                document = self.document(doc_id)
                if document is not None:
                    incoming[doc_id] = document
        changed = [d for d in incoming.values()
                   if reembed or rebuild or stored.get(d.doc_id, {}).get("content_hash") != d.content_hash]
        gone = {doc_id for doc_id, info in stored.items() if doc_id not in incoming
                and (rebuild or (prune and not Path(info["source"]).exists()))}
        if not changed and not gone:  # nothing to write: only the announcement is undone
            self._commit(Meta(**{**asdict(self.meta), "writing": False}))
            return IndexReport(0, 0, 0, len(incoming), 0, self.meta.chunks)
        generation = committed + 1
        config = chunking_config(settings) if reembed else ChunkingConfig.from_dict(self.meta.chunking)
        embedded = self._write(changed, generation, embedder, config, progress)
        self._retire({d.doc_id for d in changed if d.doc_id in stored} | gone, committed, generation)
        total = self.meta.chunks - sum(stored[d]["chunks"] for d in gone) + embedded - sum(
            stored[d.doc_id]["chunks"] for d in changed if d.doc_id in stored)
        self._commit(Meta(embedder.name, embedder.dimension, config.as_dict(), generation, total))
        added = sum(1 for d in changed if d.doc_id not in stored)
        return IndexReport(added=added, updated=len(changed) - added, removed=len(gone),
                           unchanged=len(incoming) - len(changed), chunks_embedded=embedded,
                           total_chunks=total)

    def remove(self, doc_id: str) -> None:
        committed = self._begin()
        stored = self._stored(committed)
        if doc_id not in stored:  # nothing to remove: only the announcement is undone
            self._commit(Meta(**{**asdict(self.meta), "writing": False}))
            return
        self._retire({doc_id}, committed, committed + 1)
        meta = Meta(**{**asdict(self.meta), "generation": committed + 1, "writing": False,
                       "chunks": self.meta.chunks - stored[doc_id]["chunks"]})
        self._commit(meta)

    def _begin(self) -> int:
        """Announce the update, so searches filter by generation (after waiting out
        the readers' cached meta), and clear what an interrupted one left; the
        generation committed last by any process."""
        meta = self._latest()
        if not meta.writing:
            write_meta(self.client, self.meta_collection, Meta(**{**asdict(meta), "writing": True}))
            time.sleep(GENERATION_SECONDS + 0.1)
        self._discard_uncommitted(meta.generation)
        return meta.generation

    def _latest(self) -> Meta:
        with self._lock:
            self.meta = read_meta(self.client, self.meta_collection) or self.meta
            self._read_at = time.monotonic()
            return self.meta

    def _stored(self, generation: int) -> dict[str, dict[str, Any]]:
        rows = query_all(self.client, self.documents_collection,
                         f"part == 0 and {self.visible(generation)}", ["doc_id", "info"])
        return {r["doc_id"]: r["info"] for r in rows}

    def _write(self, documents: list[Document], generation: int, embedder: Embedder,
               config: ChunkingConfig, progress: Progress | None) -> int:
        """Chunks (embedded in slices, so an interrupt is cheap) and documents as new rows."""
        chunks = chunk_documents(documents, embedder.count_tokens, config)
        by_id = {d.doc_id: d for d in documents}
        step = max(embedder.batch_size * 4, 1)
        if progress:
            progress(0, len(chunks), "chunks embedded")
        for start in range(0, len(chunks), step):
            part = chunks[start : start + step]
            texts = [document_search_text(by_id[c.doc_id], c.text, config) for c in part]
            vectors = embedder.encode(texts)
            terms = tokens(texts)
            rows = [_chunk_row(c, by_id[c.doc_id], v, t, generation)
                    for c, v, t in zip(part, vectors, terms, strict=True)]
            self.client.insert(self.chunks_collection, rows)
            if progress:
                progress(min(start + step, len(chunks)), len(chunks), "chunks embedded")
        counts: dict[str, int] = {}
        for chunk in chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        rows = [row for d in documents for row in _document_rows(d, counts.get(d.doc_id, 0), generation)]
        for start in range(0, len(rows), BATCH):
            self.client.insert(self.documents_collection, rows[start : start + BATCH])
        return len(chunks)

    def _retire(self, doc_ids: set[str], committed: int, generation: int) -> None:
        """Mark the live rows of ``doc_ids`` as dying at ``generation`` (still seen at ``committed``)."""
        ids = sorted(doc_ids)
        for collection in (self.chunks_collection, self.documents_collection):
            for start in range(0, len(ids), BATCH):
                where = f"doc_id in {json.dumps(ids[start : start + BATCH])} and {self.visible(committed)}"
                keys = [r["key"] for r in query_all(self.client, collection, where, ["key"])]
                self._set_died(collection, keys, generation)

    def _set_died(self, collection: str, keys: list[str], generation: int) -> None:
        for start in range(0, len(keys), BATCH):
            rows = [{"key": k, "died": generation} for k in keys[start : start + BATCH]]
            self.client.upsert(collection, rows, partial_update=True)

    def _commit(self, meta: Meta) -> None:
        """The one write that makes a generation visible; then its dead rows go, the
        rows are sealed into indexed segments (milvus-lite searches unsealed rows ~10x
        slower) and searches stop filtering."""
        write_meta(self.client, self.meta_collection, Meta(**{**asdict(meta), "writing": True}))
        for collection in (self.chunks_collection, self.documents_collection):
            self.client.delete(collection, filter=f"died <= {meta.generation}")
            self.client.flush(collection)
        write_meta(self.client, self.meta_collection, meta)
        with self._lock:
            self.meta, self._read_at = meta, time.monotonic()

    def _discard_uncommitted(self, committed: int) -> None:
        """What an interrupted update left: rows born after the committed generation are
        deleted, rows it marked as dying live on."""
        for collection in (self.chunks_collection, self.documents_collection):
            self.client.delete(collection, filter=f"born > {committed}")
            where = f"died > {committed} and died < {FOREVER}"
            keys = [r["key"] for r in query_all(self.client, collection, where, ["key"])]
            self._set_died(collection, keys, FOREVER)


class MilvusDocuments(Mapping[str, Document]):
    """The stored documents by id, fetched (with their text) only when asked for."""

    def __init__(self, store: MilvusStore):
        self.store = store

    def __getitem__(self, doc_id: str) -> Document:
        document = self.store.document(doc_id)
        if document is None:
            raise KeyError(doc_id)
        return document

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.store.document(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([d.doc_id for d in self.store.listing()])

    def __len__(self) -> int:
        return len(self.store.listing())


class MilvusSearcher:
    """Hybrid retrieval in the engine: a dense search and a BM25 search, fused here
    exactly as the FAISS backend fuses (``qa.retrieve.hybrid.fuse``)."""

    def __init__(self, store: MilvusStore, embedder: Embedder, candidates: int = 30,
                 fusion: str = "convex", dense_weight: float = 0.75):
        self.store, self.embedder = store, embedder
        self.candidates, self.fusion, self.dense_weight = candidates, fusion, dense_weight

    def retrieve(self, query: str, k: int = 10) -> list[Passage]:
        return self._retrieve(query, k, self.store.search_filter())

    def retrieve_within(self, query: str, doc_ids: Collection[str], k: int = 10) -> list[Passage]:
        """``retrieve`` over some documents only (a question limited to them): the engine
        filters both searches to their chunks."""
        if not doc_ids:
            return []
        where = f"doc_id in {json.dumps(sorted(doc_ids))}"
        visible = self.store.search_filter()
        return self._retrieve(query, k, f"{where} and {visible}" if visible else where)

    def _retrieve(self, query: str, k: int, where: str) -> list[Passage]:
        if not query.strip():
            return []
        n = max(k, self.candidates)
        vector = self.embedder.encode_remembered([query])[0]
        client, collection = self.store.client, self.store.chunks_collection
        dense = client.search(collection, data=[vector.tolist()], anns_field="vector", limit=n,
                              filter=where, output_fields=PASSAGE_FIELDS,
                              search_params={"metric_type": "IP"})[0]
        terms = " ".join(tokens([query])[0])
        lexical = client.search(collection, data=[terms], anns_field="sparse", limit=n, filter=where,
                                output_fields=[*PASSAGE_FIELDS, "vector"],
                                search_params={"metric_type": "BM25"})[0] if terms else []
        hits = {h["entity"]["chunk_id"]: h["entity"] for h in [*dense, *lexical]}
        cosine = {h["entity"]["chunk_id"]: float(h["distance"]) for h in dense}
        for hit in lexical:
            chunk_id = hit["entity"]["chunk_id"]
            if chunk_id not in cosine:
                cosine[chunk_id] = float(np.dot(np.asarray(hit["entity"]["vector"], np.float32), vector))
        if not cosine:
            return []
        # BM25 scores are never negative; milvus-lite 3.2 reports them negated (best first).
        keyword = [(h["entity"]["chunk_id"], abs(float(h["distance"]))) for h in lexical]
        fused = fuse(cosine, [(h["entity"]["chunk_id"], float(h["distance"])) for h in dense], keyword,
                     self.fusion, self.dense_weight)
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [_passage(hits[c], cosine[c]) for c in best]


class MilvusBackend:
    name = "milvus"

    def open(self, settings: Settings, embedder: Embedder) -> MilvusStore:
        store = connect(settings)
        if not store.meta.generation:
            raise IndexUnavailableError(
                f"No index in Milvus at {settings.index.vector_uri} (collection {store.name}). Build one "
                "with `QA_VECTOR_BACKEND=milvus qa index <your documents>`.")
        if store.meta.embedder != embedder.name:
            raise IndexUnavailableError(
                f"The index in Milvus at {settings.index.vector_uri} (collection {store.name}) was built "
                f"with the embedder {store.meta.embedder!r}, not {embedder.name!r}. Run `qa index <your "
                "documents>` once with QA_VECTOR_BACKEND=milvus: it re-embeds every document the index "
                "holds. Or go back to the embedder it was built with (QA_EMBED_BACKEND, QA_EMBEDDER_PATH).")
        return store

    def update(self, paths: Iterable[str | Path], settings: Settings, embedder: Embedder,
               rebuild: bool = False, progress: Progress | None = None) -> Indexed[MilvusStore, IndexReport]:
        store = connect(settings, embedder)
        report = store.update(load_documents([Path(p) for p in paths]), embedder, settings,
                              rebuild=rebuild, progress=progress)
        return Indexed(store, report)

    def add(self, store: MilvusStore, documents: list[Document], embedder: Embedder,
            settings: Settings, index_dir: Path | None, progress: Progress | None = None,
            before_save: Callable[[], None] | None = None) -> Indexed[MilvusStore, IndexReport]:
        if before_save:  # the engine's writes are small and off this process: nothing to wait for
            before_save()
        return Indexed(store, store.update(documents, embedder, settings, prune=False, progress=progress))

    def remove(self, store: MilvusStore, doc_id: str, index_dir: Path | None) -> MilvusStore:
        store.remove(doc_id)
        return store

    def searcher(self, store: MilvusStore, embedder: Embedder, settings: Settings) -> MilvusSearcher:
        chosen = settings.retrieve
        return MilvusSearcher(store, embedder, candidates=chosen.candidates, fusion=chosen.fusion,
                              dense_weight=chosen.dense_weight)

    def listing(self, store: MilvusStore) -> list[DocumentInfo]:
        return store.listing()


# -- the engine ----------------------------------------------------------------------


def connect(settings: Settings, embedder: Embedder | None = None) -> MilvusStore:
    """The store in ``settings.index.vector_uri``; its collections are created when an
    ``embedder`` is given (indexing) and they do not exist yet."""
    if not settings.index.vector_uri:
        raise ConfigurationError("QA_VECTOR_BACKEND=milvus needs QA_VECTOR_URI: a milvus-lite file "
                                 "such as ./index/milvus.db, or a server such as http://127.0.0.1:19530.")
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    uri, name = settings.index.vector_uri, settings.index.vector_collection
    # milvus-lite lacks the AllocTimestamp call; query iterators then take a client-side
    # timestamp, which is right for it, and say so on every call.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    if not _is_server(uri):
        Path(uri).expanduser().parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)  # the same, from its embedded server
    try:
        client = MilvusClient(uri=uri)
        for suffix in ("meta", "chunks", "documents"):  # a reopened database starts released
            if client.has_collection(f"{name}_{suffix}"):
                client.load_collection(f"{name}_{suffix}")
        meta = read_meta(client, f"{name}_meta")
        if meta is None and embedder is not None:
            meta = Meta(embedder.name, embedder.dimension, chunking_config(settings).as_dict())
            create_collections(client, name, embedder.dimension)
            write_meta(client, f"{name}_meta", meta)
    except MilvusException as error:
        if _is_server(uri):
            raise IndexUnavailableError(f"Milvus at {uri} cannot be used ({error.message}): start it, "
                                        "or set QA_VECTOR_URI to a running server or a .db file.") from None
        raise IndexUnavailableError(
            f"The milvus-lite database {uri} cannot be opened ({error.message}); another process may "
            "hold it (one process per file). For several processes run `milvus-lite server "
            "--data-dir DIR` and set QA_VECTOR_URI=http://127.0.0.1:19530.") from None
    return MilvusStore(client, uri, name, meta or Meta("", 0, {}))


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://"))


def create_collections(client: Any, name: str, dimension: int) -> None:
    from pymilvus import DataType, Function, FunctionType

    def base(schema: Any) -> None:
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field("born", DataType.INT64)
        schema.add_field("died", DataType.INT64)

    chunks = client.create_schema(auto_id=False)
    base(chunks)
    chunks.add_field("chunk_id", DataType.VARCHAR, max_length=512)
    chunks.add_field("doc_id", DataType.VARCHAR, max_length=512)
    chunks.add_field("text", DataType.VARCHAR, max_length=65535)
    chunks.add_field("terms", DataType.VARCHAR, max_length=65535, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    for field in ("char_start", "char_end", "page"):
        chunks.add_field(field, DataType.INT64)
    chunks.add_field("title", DataType.VARCHAR, max_length=4096)
    chunks.add_field("source", DataType.VARCHAR, max_length=4096)
    chunks.add_field("date", DataType.VARCHAR, max_length=64)
    chunks.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["terms"], output_field_names=["sparse"]))
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
    indexes.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                      params=BM25)
    client.create_collection(f"{name}_chunks", schema=chunks, index_params=indexes,
                             consistency_level="Strong")

    documents = client.create_schema(auto_id=False)
    base(documents)
    documents.add_field("doc_id", DataType.VARCHAR, max_length=512)
    documents.add_field("part", DataType.INT64)
    documents.add_field("text", DataType.VARCHAR, max_length=65535)
    documents.add_field("info", DataType.JSON)
    documents.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    _create_plain(client, f"{name}_documents", documents)

    meta = client.create_schema(auto_id=False)
    meta.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
    meta.add_field("info", DataType.JSON)
    meta.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
    _create_plain(client, f"{name}_meta", meta)


def _create_plain(client: Any, name: str, schema: Any) -> None:
    indexes = client.prepare_index_params()
    indexes.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=indexes, consistency_level="Strong")


def read_meta(client: Any, collection: str) -> Meta | None:
    if not client.has_collection(collection):
        return None
    rows = client.get(collection, ids=["meta"], output_fields=["info"])
    if not rows:
        return None
    info = rows[0]["info"]
    if info.get("format_version") != FORMAT_VERSION:
        raise IndexUnavailableError(
            f"The Milvus collection {collection} has format version {info.get('format_version')}; this "
            f"version of qa reads {FORMAT_VERSION}. Rebuild it with `qa index <your documents> --rebuild`.")
    return Meta(**{k: v for k, v in info.items() if k in Meta.__dataclass_fields__})


def write_meta(client: Any, collection: str, meta: Meta) -> None:
    client.upsert(collection, [{"key": "meta", "info": asdict(meta), "unused": [0.0, 0.0]}])


def query_all(client: Any, collection: str, where: str, fields: list[str]) -> list[dict[str, Any]]:
    """Every row matching ``where`` (a plain query stops at 16,384)."""
    iterator = client.query_iterator(collection, batch_size=4096, filter=where, output_fields=fields)
    rows: list[dict[str, Any]] = []
    try:
        while batch := iterator.next():
            rows.extend(batch)
    finally:
        iterator.close()
    return rows


def _chunk_row(chunk: Chunk, document: Document, vector: np.ndarray, terms: list[str],
               generation: int) -> dict[str, Any]:
    return {"key": f"{chunk.chunk_id}@{generation}", "born": generation, "died": FOREVER,
            "chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "text": chunk.text,
            "terms": " ".join(terms), "vector": vector.astype(np.float32).tolist(),
            "char_start": chunk.start, "char_end": chunk.end,
            "page": -1 if chunk.page is None else chunk.page, "title": document.title,
            "source": document.source, "date": document.date or ""}


def _document_rows(document: Document, chunks: int, generation: int) -> list[dict[str, Any]]:
    info = {"title": document.title, "source": document.source, "date": document.date,
            "content_hash": document.content_hash, "body_start": document.body_start,
            "page_starts": list(document.page_starts), "chunks": chunks}
    parts = [document.text[i : i + TEXT_PART] for i in range(0, len(document.text), TEXT_PART)] or [""]
    return [{"key": f"{document.doc_id}@{generation}#{n}", "born": generation, "died": FOREVER,
             "doc_id": document.doc_id, "part": n, "text": text, "info": info if n == 0 else {},
             "unused": [0.0, 0.0]} for n, text in enumerate(parts)]


def _document(doc_id: str, text: str, info: dict[str, Any]) -> Document:
    return Document(doc_id=doc_id, title=info["title"], source=info["source"], text=text,
                    content_hash=info["content_hash"], date=info.get("date"),
                    body_start=info.get("body_start", 0),
                    page_starts=tuple(info.get("page_starts") or ()))


def _chunk(entity: dict[str, Any]) -> Chunk:
    return Chunk(chunk_id=entity["chunk_id"], doc_id=entity["doc_id"], text=entity["text"],
                 start=int(entity["char_start"]), end=int(entity["char_end"]), page=_page(entity))


def _passage(entity: dict[str, Any], score: float) -> Passage:
    return Passage(chunk_id=entity["chunk_id"], doc_id=entity["doc_id"], text=entity["text"],
                   score=score, title=entity["title"], source=entity["source"],
                   start=int(entity["char_start"]), end=int(entity["char_end"]), page=_page(entity),
                   date=entity["date"] or None)


def _page(entity: dict[str, Any]) -> int | None:
    return None if entity["page"] < 0 else int(entity["page"])
