"""The persisted index: documents, chunks, their vectors and a FAISS index.

Layout of the index folder::

    manifest.json            points at one generation of the files below
    documents-<gen>.jsonl    document metadata and text (so sources can be shown)
    chunks-<gen>.jsonl       chunk spans and text
    vectors-<gen>.npy        normalised float32 embeddings (reused by updates)
    faiss-<gen>.index        inner-product FAISS index over the vectors

A save writes a new generation, then atomically replaces ``manifest.json``,
then deletes older generations: a process killed mid-save leaves the
previous index usable.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexUnavailableError
from qa.types import Chunk, Document

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# From this many vectors an approximate index pays for itself: exact search costs
# ~8 ms a query on one core at 100k and grows linearly (~60-75 ms at 1M), while the
# inverted-file index below takes ~2 ms at 100k and ~15 ms at 1M, with recall@10
# 0.96-0.98 of exact on synthetic vectors harder than real ones (bench/retrieval.py).
# IVF rather than HNSW because the index is rebuilt on every save: IVF builds 1M
# vectors in ~20 s, HNSW in more than ten minutes on 2 cores.
APPROXIMATE_THRESHOLD = 100_000
HNSW_THRESHOLD = APPROXIMATE_THRESHOLD  # the former name, kept for callers
# The IVF lists hold 8-bit codes (a quarter of the memory, scanned ~2x faster than
# floats); the candidates they yield are re-scored with the exact vectors.
IVF_MIN_PROBES = 32  # inverted lists searched per query, at least...
IVF_PROBE_SHARE = 0.35  # ...and this share of them: MiniLM vectors cluster poorly
RERANK_CANDIDATES = 100  # approximate candidates re-scored exactly per query, at least


@dataclass
class Manifest:
    embedder: str
    dimension: int
    chunking: dict[str, int]
    format_version: int = FORMAT_VERSION
    generation: int = 0
    index_type: str = "flat"
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
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
        self._position = {c.chunk_id: i for i, c in enumerate(chunks)}

    @classmethod
    def empty(cls, embedder: str, dimension: int, chunking: dict[str, int]) -> IndexStore:
        manifest = Manifest(embedder=embedder, dimension=dimension, chunking=chunking)
        return cls(manifest, {}, [], np.zeros((0, dimension), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.chunks)

    def chunk(self, chunk_id: str) -> Chunk:
        return self.chunks[self._position[chunk_id]]

    @property
    def faiss_index(self) -> Any:
        if self._faiss is None:
            self._faiss = build_faiss(self.vectors, self.manifest.index_type)
        return self._faiss

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the ``k`` nearest chunks."""
        if not self.chunks:
            return []
        return search_vectors(self.faiss_index, self.vectors, query, k, self.manifest.index_type)

    def replace_contents(self, documents: dict[str, Document], chunks: list[Chunk],
                         vectors: np.ndarray) -> IndexStore:
        """A new store with these contents and the same embedder and chunking."""
        manifest = Manifest(**{**asdict(self.manifest)})
        manifest.index_type = index_type_for(len(chunks))
        counts = Counter(c.doc_id for c in chunks)
        manifest.documents = {
            d.doc_id: {"source": d.source, "content_hash": d.content_hash, "title": d.title,
                       "chunks": counts[d.doc_id]}
            for d in documents.values()
        }
        return IndexStore(manifest, documents, chunks, vectors)

    # -- persistence ---------------------------------------------------------------

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        generation = _next_generation(folder, self.manifest.generation)
        names = _file_names(generation)
        _write_atomic(folder / names["documents"], _jsonl(asdict(d) for d in self.documents.values()))
        _write_atomic(folder / names["chunks"], _jsonl(asdict(c) for c in self.chunks))
        with _atomic_path(folder / names["vectors"]) as tmp, open(tmp, "wb") as handle:
            np.save(handle, self.vectors)
        with _atomic_path(folder / names["faiss"]) as tmp:
            faiss.write_index(self.faiss_index, str(tmp))
        self.manifest.generation = generation
        self.manifest.updated = time.time()
        manifest = {**asdict(self.manifest), "files": names}
        _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=1).encode())
        _remove_other_generations(folder, set(names.values()))

    @classmethod
    def load(cls, folder: Path, embedder: str | None = None) -> IndexStore:
        """Open an index; any problem is one message that says how to rebuild."""
        raw = _read_manifest(folder)
        _check_compatible(raw, folder, embedder)
        files = raw.pop("files")
        manifest = Manifest(**{k: v for k, v in raw.items() if k in Manifest.__dataclass_fields__})
        try:
            import faiss

            documents = {d["doc_id"]: _document(d) for d in _read_jsonl(folder / files["documents"])}
            chunks = [Chunk(**c) for c in _read_jsonl(folder / files["chunks"])]
            vectors = np.load(folder / files["vectors"], allow_pickle=False)
            index = faiss.read_index(str(folder / files["faiss"]))
        except Exception as error:
            raise _corrupt(folder, f"cannot read its files ({error})") from error
        if vectors.shape != (len(chunks), manifest.dimension) or index.ntotal != len(chunks):
            raise _corrupt(folder, "its vectors and chunks disagree")
        return cls(manifest, documents, chunks, vectors, index)


def index_type_for(count: int) -> str:
    """Exact search while it is fast enough, an inverted-file index beyond."""
    return "ivf" if count >= APPROXIMATE_THRESHOLD else "flat"


def build_faiss(vectors: np.ndarray, index_type: str) -> Any:
    """An inner-product FAISS index over ``vectors`` ("flat", "ivf", or "hnsw" for older indexes)."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building is batch work: use every core
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dimension = vectors.shape[1]
    if index_type == "ivf" and len(vectors) >= 2:
        index = _trained_ivf(vectors)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(vectors)
    return index


def search_vectors(index: Any, vectors: np.ndarray, query: np.ndarray, k: int,
                   index_type: str) -> list[tuple[int, float]]:
    """(row, cosine) of the ``k`` nearest vectors, best first. An IVF index only
    proposes candidates: their scores come from the exact vectors, so a
    passage's score means the same whichever index found it."""
    _single_threaded_search()
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if index_type != "ivf":
        scores, rows = index.search(query, min(k, len(vectors)))
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    _, candidates = index.search(query, min(len(vectors), max(RERANK_CANDIDATES, 4 * k)))
    rows = candidates[0][candidates[0] >= 0]
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
    return f"Rebuild it with `qa index <your documents> --index {folder} --rebuild`."


def _corrupt(folder: Path, why: str) -> IndexUnavailableError:
    return IndexUnavailableError(f"The index in {folder} is corrupt: {why}. {rebuild_hint(folder)}")


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexUnavailableError(
            f"No index in {folder}. Build one with `qa index <your documents> --index {folder}`."
        )
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict) or "files" not in raw:
            raise ValueError("no file list")
        return raw
    except (ValueError, OSError) as error:
        raise _corrupt(folder, f"unreadable manifest ({error})") from error


def _check_compatible(raw: dict[str, Any], folder: Path, embedder: str | None) -> None:
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexUnavailableError(
            f"The index in {folder} has format version {version}; this version of qa reads "
            f"{FORMAT_VERSION}. {rebuild_hint(folder)}"
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


def _file_names(generation: int) -> dict[str, str]:
    return {
        "documents": f"documents-{generation}.jsonl",
        "chunks": f"chunks-{generation}.jsonl",
        "vectors": f"vectors-{generation}.npy",
        "faiss": f"faiss-{generation}.index",
    }


def _next_generation(folder: Path, current: int) -> int:
    """Never reuse a generation number that has files on disk."""
    generation = current + 1
    while any(folder.glob(f"*-{generation}.*")):
        generation += 1
    return generation


def _remove_other_generations(folder: Path, keep: set[str]) -> None:
    patterns = ("documents-*.jsonl", "chunks-*.jsonl", "vectors-*.npy", "faiss-*.index", ".tmp-*")
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def _jsonl(records: Any) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


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
