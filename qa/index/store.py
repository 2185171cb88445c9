"""The persisted index: documents, chunks, their vectors, a FAISS index and a lexical index.

Layout of the index folder::

    manifest.json          the live documents, each naming the segment that holds it
    segment-<gen>.jsonl    documents written by generation <gen>: metadata, text, chunk spans
    segment-<gen>.npy      their chunks' normalised float32 embeddings, in the same order
    segment-<gen>.ivf      (approximate indexes only) the same vectors in an IVF index
    ivf-<gen>.trained      (approximate indexes only) the trained, empty IVF they share
    lexical/               tantivy's BM25 index over the chunks (qa/index/lexical.py)

Segments are written once and never changed. A save writes one new segment
holding only the documents that are new or changed since the index on disk,
commits their chunks to the lexical index, then atomically replaces
``manifest.json``, then deletes the files no manifest names: adding, changing
or removing one document costs about that document, and a process killed
mid-save leaves the previous index usable. A reader that finds the lexical
commit ahead of the manifest waits for the manifest; if none comes, the save
was killed between the two, and the lexical index is rebuilt, but only under
the writer's lock: while a writer holds it, it is a save in progress. A removed or replaced
document stays in its segment until the segment is mostly dead or one of too
many small ones; then its live documents move to the new segment.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexUnavailableError
from qa.index import lexical
from qa.ingest.chunking import ChunkingConfig, document_search_text
from qa.types import Chunk, Document

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 (one file of each kind) opens; its next save writes 2
MANIFEST = "manifest.json"
# From this many vectors an approximate index pays for itself: exact search costs
# ~8 ms a query on one core at 100k and grows linearly (~60-75 ms at 1M), while the
# inverted-file index below takes ~2 ms at 100k and ~15 ms at 1M, with recall@10
# 0.96-0.98 of exact on synthetic vectors harder than real ones (bench/retrieval.py).
# IVF rather than HNSW because IVF trains in seconds and a segment's vectors are
# added to it without touching the others.
APPROXIMATE_THRESHOLD = 100_000
# The IVF lists hold 8-bit codes (a quarter of the memory, scanned ~2x faster than
# floats); the candidates they yield are re-scored with the exact vectors.
IVF_MIN_PROBES = 32  # inverted lists searched per query, at least...
IVF_PROBE_SHARE = 0.35  # ...and this share of them: MiniLM vectors cluster poorly
RERANK_CANDIDATES = 100  # approximate candidates re-scored exactly per query, at least
# Segment upkeep: a segment whose rows are mostly removed documents, or one of too many
# small ones, has its live documents rewritten into the next save's segment.
MAX_DEAD_SHARE = 0.3
MAX_SEGMENTS = 24
RETRAIN_GROWTH = 2.0  # the IVF is retrained once the corpus wants this many times its lists
# A reader that finds the lexical index of another generation (a save between its lexical
# commit and its manifest) waits this long for the manifest before asking for the lock.
LEXICAL_SETTLE_SECONDS = 1.0
_READ_ATTEMPTS = 3


@dataclass
class Manifest:
    embedder: str
    dimension: int
    chunking: dict[str, int]
    format_version: int = FORMAT_VERSION
    generation: int = 0
    index_type: str = "flat"
    # doc_id -> source, content_hash, title, chunks and (once saved) the segment holding it
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # segment name -> rows (chunks it holds, live or not) and the trained IVF it was encoded with
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    trained: str | None = None
    updated: float = 0.0


class IndexStore:
    """Documents, chunks and vectors kept in step; row ``i`` of the vectors is chunk ``i``."""

    def __init__(self, manifest: Manifest, documents: dict[str, Document], chunks: list[Chunk],
                 vectors: np.ndarray, faiss_index: Any = None):
        self.manifest = manifest
        self.documents = documents
        self.chunks = chunks
        self.vectors = vectors
        self._faiss = faiss_index
        self._row_of_id: np.ndarray | None = None  # IVF ids -> rows (-1: a removed chunk)
        self._position = {c.chunk_id: i for i, c in enumerate(chunks)}
        self._folder: Path | None = None  # the folder this store was loaded from or saved to
        self._lexical: lexical.LexicalIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def empty(cls, embedder: str, dimension: int, chunking: dict[str, int]) -> IndexStore:
        manifest = Manifest(embedder=embedder, dimension=dimension, chunking=chunking)
        return cls(manifest, {}, [], np.zeros((0, dimension), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.chunks)

    def chunk(self, chunk_id: str) -> Chunk:
        return self.chunks[self._position[chunk_id]]

    def row(self, chunk_id: str) -> int | None:
        return self._position.get(chunk_id)

    @property
    def faiss_index(self) -> Any:
        """The approximate index (None for exact search, which reads ``vectors`` directly)."""
        with self._lock:
            if self._faiss is None and self.manifest.index_type == "ivf" and len(self.chunks):
                self._faiss, self._row_of_id = self._approximate_index()
        return self._faiss

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the ``k`` nearest chunks."""
        if not self.chunks:
            return []
        index = self.faiss_index
        return search_vectors(index, self.vectors, query, k, self.manifest.index_type,
                              self._row_of_id)

    def lexical_search(self, query: str, n: int,
                       doc_ids: Collection[str] | None = None) -> list[tuple[int, float]]:
        """(row, BM25 score) of the ``n`` best chunks for the words of ``query``
        (among the chunks of ``doc_ids``, if given)."""
        if not self.chunks:
            return []
        found = self._lexical_index().search(query, n, doc_ids)
        rows = ((self._position.get(chunk_id), score) for chunk_id, score in found)
        return [(row, score) for row, score in rows if row is not None]

    def replace_contents(self, documents: dict[str, Document], chunks: list[Chunk],
                         vectors: np.ndarray) -> IndexStore:
        """A new store with these contents and the same embedder and chunking."""
        counts = Counter(c.doc_id for c in chunks)
        manifest = replace(self.manifest, index_type=index_type_for(len(chunks)),
                           segments=dict(self.manifest.segments), documents={
            d.doc_id: {"source": d.source, "content_hash": d.content_hash, "title": d.title,
                       "chunks": counts[d.doc_id]}
            for d in documents.values()
        })
        return IndexStore(manifest, documents, chunks, vectors)

    # -- persistence ---------------------------------------------------------------

    def save(self, folder: Path, reuse: bool = True) -> None:
        """Write what the index on disk lacks, then switch the manifest to it.

        ``reuse=False`` (a rebuild or a repair) writes every document anew, so no
        file of a damaged index on disk is carried into the new one."""
        folder.mkdir(parents=True, exist_ok=True)
        found = _compatible_manifest(folder, self.manifest)
        generation = _next_generation(folder, max(self.manifest.generation,
                                                  found.generation if found else 0))
        on_disk = found if reuse else None
        trained = self._trained_for(folder, on_disk, generation)
        same = _unchanged(self, on_disk)
        kept = _kept_segments(on_disk, same, trained)
        rows_by_doc = _rows_by_document(self.chunks)
        placed = {doc_id: on_disk.documents[doc_id]["segment"] for doc_id in same
                  if on_disk and on_disk.documents[doc_id]["segment"] in kept}
        pending = [doc_id for doc_id in self.documents if doc_id not in placed]
        segments = {name: on_disk.segments[name] for name in set(placed.values())} if on_disk else {}
        if pending:
            name = f"segment-{generation}"
            segments[name] = self._write_segment(folder, name, pending, rows_by_doc, trained)
            placed.update(dict.fromkeys(pending, name))
        self._update_lexical(folder, on_disk, same, generation, rows_by_doc)
        self.manifest.generation = generation
        self.manifest.format_version = FORMAT_VERSION
        self.manifest.updated = time.time()
        self.manifest.segments = segments
        self.manifest.trained = trained.name if trained else None
        for doc_id, segment in placed.items():
            self.manifest.documents[doc_id]["segment"] = segment
        files = _files_of(self.manifest)
        _write_atomic(folder / MANIFEST, _json_bytes({**_fields(self.manifest), "files": files}))
        _remove_other_files(folder, set(files))
        with self._lock:
            self._folder = folder
            if self.manifest.index_type == "ivf":
                self._faiss = self._row_of_id = None  # read back from the segments: ids match the files

    @classmethod
    def load(cls, folder: Path, embedder: str | None = None) -> IndexStore:
        """Open an index; any problem is one message that says how to rebuild.

        A save commits the lexical index just before it replaces the manifest, so a
        reader can find the lexical index one generation ahead: it then waits a
        moment and reads the index again once the save is whole."""
        for _ in range(_READ_ATTEMPTS):
            with _collector_paused():
                store = cls._read(folder, embedder)
            if store._folder is None or store._attach_lexical(folder):  # (version 1: built in memory)
                return store
        return store

    @classmethod
    def _read(cls, folder: Path, embedder: str | None) -> IndexStore:
        raw = _read_manifest(folder)
        _check_compatible(raw, folder, embedder)
        raw.pop("files")
        if raw["format_version"] == 1:
            return _load_version_1(folder, raw)
        manifest = _manifest(raw)
        try:
            documents, chunks, parts, row_of_id = _read_segments(folder, manifest)
        except Exception as error:
            raise _corrupt(folder, f"cannot read its files ({error})") from error
        vectors = (parts[0] if len(parts) == 1 else np.concatenate(parts) if parts
                   else np.zeros((0, manifest.dimension), dtype=np.float32))
        if vectors.shape != (len(chunks), manifest.dimension):
            raise _corrupt(folder, "its vectors and chunks disagree")
        store = cls(manifest, documents, chunks, vectors)
        store._folder, store._row_of_id = folder, row_of_id
        if manifest.index_type == "ivf":
            try:
                _ = store.faiss_index
            except Exception as error:
                raise _corrupt(folder, f"cannot read its vector index ({error})") from error
        return store

    # -- internals -----------------------------------------------------------------

    def _lexical_index(self) -> lexical.LexicalIndex:
        """The lexical index: the one on disk for a store read from or saved to a
        folder, else one built in memory (a store never saved)."""
        with self._lock:
            if self._lexical is None:
                self._lexical = lexical.LexicalIndex.in_memory(self._lexical_chunks(range(len(self.chunks))))
            return self._lexical

    def _attach_lexical(self, folder: Path) -> bool:
        """Open the lexical index of this store's generation; False when a save replaced
        the manifest meanwhile (the caller reads the index again).

        A lexical index of another generation is a save in progress (its lexical commit
        came, its manifest is coming) or one killed between the two. Only the writer's
        lock tells them apart, so the index is repaired only under that lock; while a
        writer holds it this store searches the writer's newer lexical snapshot, which
        differs only in the documents being saved, and never writes."""
        found = self._lexical_if_current(folder)
        deadline = time.monotonic() + LEXICAL_SETTLE_SECONDS
        while found is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if generation_on_disk(folder) != self.manifest.generation:
                return False
            found = self._lexical_if_current(folder)
        if found is None:
            found = self._repair_lexical(folder)
            if found is None:
                return False
        self._lexical = found
        return True

    def _lexical_if_current(self, folder: Path) -> lexical.LexicalIndex | None:
        found = lexical.LexicalIndex.open(folder)
        return found if found is not None and found.generation() == self.manifest.generation else None

    def _repair_lexical(self, folder: Path) -> lexical.LexicalIndex | None:
        """Rebuild the lexical index under the writer's lock (a save killed between its
        commits); None if a save finished meanwhile."""
        from qa.errors import IndexBusyError, StorageError
        from qa.index.indexing import index_lock

        try:
            with index_lock(folder):
                if generation_on_disk(folder) != self.manifest.generation:
                    return None
                found = self._lexical_if_current(folder)
                if found is not None:
                    return found
                log.warning("The lexical index in %s does not match its manifest (an interrupted "
                            "save); rebuilding it from the %d chunks.", folder, len(self.chunks))
                return lexical.write(folder, self.manifest.generation, (),
                                     self._lexical_chunks(range(len(self.chunks))), rebuild=True)
        except (IndexBusyError, StorageError):
            log.info("A save to %s is in progress; searching its lexical index until it ends.", folder)
            snapshot = lexical.LexicalIndex.open(folder)
            if snapshot is not None:
                return snapshot
            return lexical.LexicalIndex.in_memory(self._lexical_chunks(range(len(self.chunks))))

    def _lexical_chunks(self, rows: Any) -> list[lexical.LexicalChunk]:
        recorded = self.manifest.chunking  # only how titles are searched matters here
        config = ChunkingConfig(with_title=bool(recorded.get("with_title", 0)),
                                file_name_title=bool(recorded.get("file_name_title", 1)))
        chunks = [self.chunks[r] for r in rows]
        return [lexical.LexicalChunk(c.chunk_id, c.doc_id,
                                     document_search_text(self.documents[c.doc_id], c.text, config))
                for c in chunks]

    def _update_lexical(self, folder: Path, on_disk: Manifest | None, same: set[str], generation: int,
                        rows_by_doc: dict[str, list[int]]) -> None:
        """Commit to the lexical index only the documents whose content changed."""
        current = lexical.LexicalIndex.open(folder) if on_disk else None
        in_step = current is not None and current.generation() == on_disk.generation
        if not in_step:
            rows = range(len(self.chunks))
            self._lexical = lexical.write(folder, generation, (), self._lexical_chunks(rows), rebuild=True)
            return
        assert on_disk is not None
        stale = [d for d in on_disk.documents if d not in same]
        fresh = [d for d in self.documents if d not in same]
        rows = [r for d in fresh for r in rows_by_doc.get(d, [])]
        self._lexical = lexical.write(folder, generation, stale, self._lexical_chunks(rows))

    def _trained_for(self, folder: Path, on_disk: Manifest | None, generation: int) -> Any:
        """The trained IVF the segments of this save are encoded with (None: exact search).
        The one on disk while it suits the corpus; a newly trained one when the index
        becomes approximate or has outgrown its lists (every segment is then rewritten)."""
        if self.manifest.index_type != "ivf" or not len(self.chunks):
            return None
        if on_disk and on_disk.trained and on_disk.index_type == "ivf":
            import faiss

            path = folder / on_disk.trained
            if path.is_file():
                index = faiss.read_index(str(path))
                if ivf_lists(len(self.chunks)) <= RETRAIN_GROWTH * index.nlist:
                    return _Trained(on_disk.trained, index)
        name = f"ivf-{generation}.trained"
        index = _trained_ivf(self.vectors)
        _write_faiss(index, folder / name)
        return _Trained(name, index)

    def _write_segment(self, folder: Path, name: str, doc_ids: list[str],
                       rows_by_doc: dict[str, list[int]], trained: Any) -> dict[str, Any]:
        lines, rows = [], []
        for doc_id in doc_ids:
            document = self.documents[doc_id]
            spans = []
            for row in rows_by_doc.get(doc_id, []):
                chunk = self.chunks[row]
                span: list[Any] = [chunk.chunk_id, chunk.start, chunk.end, chunk.page]
                if chunk.text != document.text[chunk.start:chunk.end]:
                    span.append(chunk.text)  # never for chunks made by qa.ingest.chunking
                spans.append(span)
                rows.append(row)
            lines.append({"document": _fields(document), "chunks": spans})
        vectors = np.ascontiguousarray(self.vectors[rows], dtype=np.float32)
        _write_atomic(folder / f"{name}.jsonl", _jsonl(lines))
        order = [[doc_id, len(rows_by_doc.get(doc_id, []))] for doc_id in doc_ids]
        _write_atomic(folder / f"{name}.order.json", json.dumps(order).encode())
        with _atomic_path(folder / f"{name}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, vectors)
        if trained is not None:
            import faiss

            index = faiss.clone_index(trained.index)
            if len(vectors):
                index.add(vectors)  # ids 0..n-1: rows of this segment
            _write_faiss(index, folder / f"{name}.ivf")
        return {"rows": len(rows), "trained": trained.name if trained else None}

    def _approximate_index(self) -> tuple[Any, np.ndarray]:
        """The IVF index over every row, and the row each of its ids stands for."""
        if self._folder is None or not self.manifest.trained:
            return build_faiss(self.vectors, "ivf"), np.arange(len(self.chunks))
        row_of_id = self._row_of_id
        if row_of_id is None:
            row_of_id = _rows_of_ids(self._folder, self.manifest, _rows_by_document(self.chunks))
        return _read_ivf(self._folder, self.manifest), row_of_id


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while an index is read: reading makes a record per
    chunk, none of them garbage, and each full collection walks all made so far, so the
    collections made opening 1,000,000 chunks take most of the minute it took (100,000:
    2.5 s instead of 5.1 s on the loaded machine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class _Trained:
    name: str
    index: Any


def index_type_for(count: int) -> str:
    """Exact search while it is fast enough, an inverted-file index beyond."""
    return "ivf" if count >= APPROXIMATE_THRESHOLD else "flat"


def build_faiss(vectors: np.ndarray, index_type: str) -> Any:
    """An inner-product FAISS index over ``vectors`` ("flat" or "ivf")."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is batch work: use every core
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    if index_type == "ivf" and len(vectors) >= 2:
        index = _trained_ivf(vectors)
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


def search_vectors(index: Any, vectors: np.ndarray, query: np.ndarray, k: int,
                   index_type: str, row_of_id: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` nearest vectors, best first. Exact search reads
    ``vectors`` itself when ``index`` is None (no second copy in memory). An IVF
    index only proposes candidates (its ids mapped to rows by ``row_of_id``): their
    scores come from the exact vectors, so a passage's score means the same
    whichever index found it."""
    import faiss

    _single_threaded_search()
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if index_type != "ivf":
        k = min(k, len(vectors))
        if index is None:
            scores, rows = faiss.knn(query, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            scores, rows = index.search(query, k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    _, candidates = index.search(query, min(index.ntotal, max(RERANK_CANDIDATES, 4 * k)))
    ids = candidates[0][candidates[0] >= 0]
    rows = ids if row_of_id is None else row_of_id[ids]
    rows = rows[rows >= 0]
    exact = vectors[rows] @ query[0]
    best = np.argsort(-exact, kind="stable")[:k]
    return [(int(rows[i]), float(exact[i])) for i in best]


def ivf_lists(count: int) -> int:
    """About sqrt(count) lists, each trained on at least 39 vectors (FAISS's minimum)."""
    return max(1, min(int(np.sqrt(count)), count // 39))


def ivf_probes(lists: int) -> int:
    return min(lists, max(IVF_MIN_PROBES, int(lists * IVF_PROBE_SHARE)))


def _trained_ivf(vectors: np.ndarray) -> Any:
    """An empty IVF index (8-bit codes) trained on a fixed sample, so a rebuild is reproducible."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    lists = ivf_lists(len(vectors))
    index = faiss.index_factory(vectors.shape[1], f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
    sample = min(len(vectors), 64 * lists)
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), sample, replace=False))
    index.cp.max_points_per_centroid = 64
    index.train(vectors[rows])
    index.nprobe = ivf_probes(lists)
    return index


def _single_threaded_search() -> None:
    """One query is too little work to share: with OpenMP threads a flat search of
    100k vectors took 40 ms instead of 8 ms on a busy 2-core machine. The setting
    is per calling thread, so every searching thread makes it."""
    import faiss

    faiss.omp_set_num_threads(1)


def index_exists(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def rebuild_hint(folder: Path) -> str:
    return (f"Repair it with `qa index --repair --index {folder}`: it rebuilds from the texts the "
            "index stores, the original files and its uploads folder, and reports anything lost.")


# -- segments ------------------------------------------------------------------------


def _kept_segments(on_disk: Manifest | None, same: set[str], trained: Any) -> set[str]:
    """Segments on disk this save can point at: encoded with the IVF in use, not
    mostly dead, and not among the small ones once there are too many."""
    if on_disk is None:
        return set()
    live: Counter[str] = Counter()
    for doc_id in same:
        meta = on_disk.documents[doc_id]
        live[meta["segment"]] += meta["chunks"]
    kept = {name for name, meta in on_disk.segments.items()
            if live[name] and (trained is None or meta.get("trained") == trained.name)
            and live[name] >= (1 - MAX_DEAD_SHARE) * meta["rows"]}
    if len(kept) >= MAX_SEGMENTS:  # merge all but the largest: a tiered merge in one step
        kept = {max(kept, key=lambda name: on_disk.segments[name]["rows"])}
    return kept


def _unchanged(store: IndexStore, on_disk: Manifest | None) -> set[str]:
    """Documents whose version on disk is the one in ``store``: same content, same chunks."""
    if on_disk is None:
        return set()
    same = set()
    for doc_id, mine in store.manifest.documents.items():
        meta = on_disk.documents.get(doc_id)
        if (meta is not None and "segment" in meta and meta["content_hash"] == mine["content_hash"]
                and meta["chunks"] == mine["chunks"] and meta.get("title") == mine.get("title")
                and meta.get("source") == mine.get("source")):
            same.add(doc_id)
    return same


def _rows_by_document(chunks: list[Chunk]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        rows.setdefault(chunk.doc_id, []).append(row)
    return rows


def _read_segments(folder: Path, manifest: Manifest) -> tuple[dict[str, Document], list[Chunk],
                                                             list[np.ndarray], np.ndarray]:
    """The live documents of every segment, their chunks and vectors, segment by
    segment, and for each row of every segment the store row it became (-1: dead)."""
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    parts: list[np.ndarray] = []
    row_of_id: list[int] = []
    for name in manifest.segments:
        # Mapped, not read: a segment whose rows are all live is searched in place (its
        # pages load as they are touched); a partly dead one is copied without its dead rows.
        vectors = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        keep: list[int] = []
        offset = 0
        for line in _read_jsonl(folder / f"{name}.jsonl"):
            spans = line["chunks"]
            doc_id = line["document"]["doc_id"]
            if manifest.documents.get(doc_id, {}).get("segment") == name:
                document = _document(line["document"])
                documents[doc_id] = document
                row_of_id += range(len(chunks), len(chunks) + len(spans))
                chunks += _chunks(document, spans)
                keep += range(offset, offset + len(spans))
            else:
                row_of_id += [-1] * len(spans)
            offset += len(spans)
        if offset != len(vectors):
            raise ValueError(f"{name} holds {offset} chunks and {len(vectors)} vectors")
        parts.append(vectors if len(keep) == offset else np.ascontiguousarray(vectors[keep]))
    missing = set(manifest.documents) - set(documents)
    if missing:
        raise ValueError(f"{len(missing)} documents are in no segment")
    return documents, chunks, parts, np.asarray(row_of_id, dtype=np.int64)


def _segment_order(folder: Path, name: str) -> list[list[Any]]:
    """[doc_id, chunks] of each document in a segment, in file order (a small side file,
    so the rows of a segment are known without reading its texts)."""
    return json.loads((folder / f"{name}.order.json").read_text())


def _rows_of_ids(folder: Path, manifest: Manifest, rows_by_doc: dict[str, list[int]]) -> np.ndarray:
    """For each row of every segment (the IVF ids), the store row it is (-1: dead)."""
    rows: list[int] = []
    for name in manifest.segments:
        for doc_id, count in _segment_order(folder, name):
            live = manifest.documents.get(doc_id, {}).get("segment") == name
            rows += rows_by_doc[doc_id] if live else [-1] * count
    return np.asarray(rows, dtype=np.int64)


def _read_ivf(folder: Path, manifest: Manifest) -> Any:
    """The segments' IVF indexes merged into one; ids count through the segments' rows."""
    import faiss

    index = None
    for name, meta in manifest.segments.items():
        part = faiss.read_index(str(folder / f"{name}.ivf"))
        if part.ntotal != meta["rows"]:
            raise ValueError(f"{name}.ivf holds {part.ntotal} vectors, not {meta['rows']}")
        if index is None:  # the others are merged into the first: its codes are never copied
            index = part
        else:
            index.merge_from(part, index.ntotal)
    return index if index is not None else faiss.read_index(str(folder / str(manifest.trained)))


def _files_of(manifest: Manifest) -> list[str]:
    files = [MANIFEST]
    for name, meta in manifest.segments.items():
        files += [f"{name}.jsonl", f"{name}.order.json", f"{name}.npy"]
        files += [f"{name}.ivf"] if meta.get("trained") else []
    return files + ([manifest.trained] if manifest.trained else [])


def _remove_other_files(folder: Path, keep: set[str]) -> None:
    patterns = ("segment-*", "ivf-*.trained", ".tmp-*",
                "documents-*.jsonl", "chunks-*.jsonl", "vectors-*.npy", "faiss-*.index")  # version 1
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def _next_generation(folder: Path, current: int) -> int:
    """Never reuse a generation number that has files on disk."""
    generation = current + 1
    while any(folder.glob(f"*-{generation}.*")):
        generation += 1
    return generation


def _compatible_manifest(folder: Path, manifest: Manifest) -> Manifest | None:
    """The manifest on disk if its segments can be reused by a store like ``manifest``."""
    try:
        raw = _parse_json(folder / MANIFEST)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        return None
    on_disk = _manifest(raw)
    same = (on_disk.embedder == manifest.embedder and on_disk.dimension == manifest.dimension
            and on_disk.chunking == manifest.chunking)
    present = all((folder / name).is_file() for name in raw.get("files", []))
    return on_disk if same and present else None


# -- version 1 -----------------------------------------------------------------------


def _load_version_1(folder: Path, raw: dict[str, Any]) -> IndexStore:
    """An index written before segments: read whole; the next save rewrites it."""
    files = _read_manifest(folder)["files"]
    manifest = _manifest(raw)
    try:
        documents = {d["doc_id"]: _document(d) for d in _read_jsonl(folder / files["documents"])}
        chunks = [Chunk(**c) for c in _read_jsonl(folder / files["chunks"])]
        vectors = np.load(folder / files["vectors"], allow_pickle=False)
    except Exception as error:
        raise _corrupt(folder, f"cannot read its files ({error})") from error
    if vectors.shape != (len(chunks), manifest.dimension):
        raise _corrupt(folder, "its vectors and chunks disagree")
    for meta in manifest.documents.values():
        meta.pop("segment", None)
    manifest.trained = None
    return IndexStore(manifest, documents, chunks, vectors)


# -- files ---------------------------------------------------------------------------


def _fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields, shallow (``asdict`` deep-copies every document's entry)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _manifest(raw: dict[str, Any]) -> Manifest:
    return Manifest(**{k: v for k, v in raw.items() if k in Manifest.__dataclass_fields__})


def _corrupt(folder: Path, why: str) -> IndexUnavailableError:
    return IndexUnavailableError(f"The index in {folder} is corrupt: {why}. {rebuild_hint(folder)}")


def generation_on_disk(folder: Path) -> int | None:
    """The generation the manifest in ``folder`` points at (None: no readable index)."""
    try:
        return int(_parse_json(folder / MANIFEST)["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexUnavailableError(
            f"No index in {folder}. Build one with `qa index <your documents> --index {folder}`."
        )
    try:
        raw = _parse_json(path)
        if not isinstance(raw, dict) or "files" not in raw:
            raise ValueError("no file list")
        return raw
    except (ValueError, OSError) as error:
        raise _corrupt(folder, f"unreadable manifest ({error})") from error


def _check_compatible(raw: dict[str, Any], folder: Path, embedder: str | None) -> None:
    version = raw.get("format_version")
    if version not in READABLE_VERSIONS:
        raise IndexUnavailableError(
            f"The index in {folder} has format version {version}; this version of qa reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}. {rebuild_hint(folder)}"
        )
    if embedder and raw.get("embedder") != embedder:
        raise IndexUnavailableError(
            f"The index in {folder} was built with the embedder {raw.get('embedder')!r}, not "
            f"{embedder!r}. Run `qa index <your documents> --index {folder}` once: it re-embeds "
            "every document the index holds (`make run` does it for index/). Or go back to the "
            "embedder it was built with (QA_EMBED_BACKEND, QA_EMBEDDER_PATH)."
        )


def _document(raw: dict[str, Any]) -> Document:
    raw["page_starts"] = tuple(raw.get("page_starts") or ())
    return Document(**raw)


class _StoredChunk(Chunk):
    """A chunk read from a segment: its text is sliced from its document when asked,
    not on opening (100,000 slices are most of the time to open an index that size)."""

    @property
    def text(self) -> str:  # type: ignore[override]
        return self.__dict__["_document"].text[self.start:self.end]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chunk) and _fields(self) == _fields(other)

    __hash__ = Chunk.__hash__


def _chunks(document: Document, spans: list[list[Any]]) -> list[Chunk]:
    """The chunks of ``document`` from its spans; one loop without a call per chunk,
    since opening makes 100,000 of them for an index that size."""
    if any(len(span) > 4 for span in spans):  # a text that is not its span (never from qa.ingest.chunking)
        return [Chunk(chunk_id=span[0], doc_id=document.doc_id, start=span[1], end=span[2],
                      page=span[3], text=span[4] if len(span) > 4 else document.text[span[1]:span[2]])
                for span in spans]
    made = []
    new, kind, doc_id = object.__new__, _StoredChunk, document.doc_id
    for chunk_id, start, end, page in spans:
        chunk = new(kind)
        chunk.__dict__ = {"chunk_id": chunk_id, "doc_id": doc_id, "start": start, "end": end,
                          "page": page, "_document": document}
        made.append(chunk)
    return made


def _jsonl(records: Any) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _json_bytes(record: Any) -> bytes:
    """Compact UTF-8 JSON, ~5x faster to write than ``json.dumps``: the manifest lists
    every document, so each save writes all of them (~4 MB at 100,000 chunks)."""
    import orjson

    return orjson.dumps(record)


def _parse_json(path: Path) -> Any:
    import orjson

    return orjson.loads(path.read_bytes())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    import orjson  # parses the segments' texts faster than json: most of the time to open

    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def _write_faiss(index: Any, target: Path) -> None:
    import faiss

    with _atomic_path(target) as tmp:
        faiss.write_index(index, str(tmp))


class _atomic_path:
    """A temporary path in the same folder, renamed onto ``target`` on success."""

    def __init__(self, target: Path):
        self.target = target

    def __enter__(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.target.parent, prefix=".tmp-", suffix=self.target.suffix)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            with open(self.tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(self.tmp, self.target)
        else:
            self.tmp.unlink(missing_ok=True)


def _write_atomic(target: Path, data: bytes) -> None:
    with _atomic_path(target) as tmp:
        tmp.write_bytes(data)
