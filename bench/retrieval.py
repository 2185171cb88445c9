"""Dense retrieval at scale: exact FAISS search against the approximate (IVF) index the store switches to.

    python bench/retrieval.py                       # 10k, 100k and 1M chunks
    python bench/retrieval.py --sizes 10000 100000 --queries 300

Indexes are built with ``qa.index.store.build_faiss`` and searched with
``qa.index.store.search_vectors``, the store's own code: one query at a time for 30
neighbours as the retriever asks, single-threaded, the approximate index's
candidates re-scored with the exact vectors. The exact and approximate index
take turns on each query. recall@10 is the share of the exact top 10 that the
approximate search returns.

The vectors are synthetic, drawn to look like MiniLM chunk embeddings: a
Gaussian with the mean and covariance of real chunk vectors (BoolQ, from
bench/embedding_quality.py, when present) arranged as topics > documents >
chunks, tuned so that a query's 1st and 10th neighbours have cosines close to
real ones (0.67 and 0.41). A "real" row repeats the measurement on the BoolQ
chunk vectors and questions, with the approximate index forced at that small
size. The synthetic data is easy for IVF at 10k and hard at 1M (a quarter of
the lists must be searched for recall 0.95), so the store's settings are tuned
on its hardest case.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from common import OUT, arg_parser, load_average, percentile, table, write_json

DIMENSION = 384
NEIGHBOURS = 30  # the retriever asks for max(k, candidates) = 30
TARGET_P50_MS = 20.0
TARGET_RECALL = 0.95


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-real", action="store_true", help="skip the BoolQ row")
    args = parser.parse_args(argv)
    model = vector_model()
    rows = [] if args.no_real else measure_real()
    for size in args.sizes:
        vectors, queries = synthetic(model, size, args.queries)
        rows += measure(f"synthetic {size:,}", vectors, queries, forced=None)
        del vectors
        print(f"  {size:,} done (load average {load_average():.1f})", file=sys.stderr, flush=True)
    print(report(rows))
    path = write_json("retrieval", {"neighbours": NEIGHBOURS, "results": rows,
                                    "vector_model": model["source"]})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


# -- data ------------------------------------------------------------------------------------------------


def vector_model() -> dict[str, Any]:
    """Mean and covariance factor of real chunk vectors if bench/embedding_quality.py saved some."""
    for backend in ("onnx", "torch"):
        path = OUT / f"boolq-vectors-{backend}.npz"
        if path.exists():
            chunks = np.load(path)["chunks"].astype(np.float64)
            mean = chunks.mean(axis=0)
            covariance = np.cov(chunks - mean, rowvar=False) + 1e-6 * np.eye(DIMENSION)
            factor = np.linalg.cholesky(covariance).astype(np.float32)
            return {"mean": mean.astype(np.float32), "factor": factor, "source": f"fitted to {path.name}"}
    return {"mean": np.zeros(DIMENSION, np.float32), "factor": np.eye(DIMENSION, dtype=np.float32) / 8,
            "source": "isotropic (run bench/embedding_quality.py first for a fitted model)"}


def synthetic(model: dict[str, Any], size: int, queries: int,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``size`` chunk vectors (topics of ~200 chunks, documents of ~4), questions about random documents."""
    rng = np.random.default_rng(seed)

    def draw(count: int) -> np.ndarray:
        return rng.standard_normal((count, DIMENSION), dtype=np.float32) @ model["factor"].T

    topics = _normalise(model["mean"] + draw(max(1, size // 200)))
    count = max(1, size // 4)
    documents = _normalise(topics[rng.integers(0, len(topics), count)] + 1.2 * draw(count))
    vectors = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, 100_000):  # bounded temporaries at 1M
        count = min(100_000, size - start)
        vectors[start : start + count] = _normalise(documents[rng.integers(0, len(documents), count)]
                                                    + 0.55 * draw(count))
    questions = _normalise(documents[rng.integers(0, len(documents), queries)] + 0.9 * draw(queries))
    return vectors, questions


def _normalise(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


# -- measuring ------------------------------------------------------------------------------------------


def measure_real() -> list[dict[str, Any]]:
    for backend in ("onnx", "torch"):
        path = OUT / f"boolq-vectors-{backend}.npz"
        if path.exists():
            data = np.load(path)
            return measure(f"real BoolQ ({backend})", data["chunks"].astype(np.float32),
                           data["queries"].astype(np.float32), forced="ivf")
    print("  no real vectors: run bench/embedding_quality.py first", file=sys.stderr)
    return []


def measure(label: str, vectors: np.ndarray, queries: np.ndarray, forced: str | None) -> list[dict[str, Any]]:
    """Exact against approximate search, query by query; marks the type the store would choose."""
    from qa.index.store import build_faiss, index_type_for, search_vectors

    chosen = forced or index_type_for(len(vectors))
    built: dict[str, tuple[Any, float]] = {}
    for name in ("flat", "ivf"):
        started = time.perf_counter()
        built[name] = (build_faiss(vectors, name), time.perf_counter() - started)
    timings: dict[str, list[float]] = {name: [] for name in built}
    found: dict[str, list[np.ndarray]] = {name: [] for name in built}
    for query in queries:
        for name, (index, _) in built.items():
            started = time.perf_counter()
            rows = [r for r, _ in search_vectors(index, vectors, query, NEIGHBOURS, name)]
            timings[name].append(time.perf_counter() - started)
            found[name].append(np.array(rows))
    exact = found["flat"]
    sharing = _omp_threads_effect(built["flat"][0], queries[:20])
    profile = _neighbour_cosines(vectors, queries, exact)
    return [{**_row(label, len(vectors), name, index, build, timings[name], found[name], exact,
                    sharing if name == "flat" else None), "chosen": name == chosen, "cosines_1_10": profile}
            for name, (index, build) in built.items()]


def _timed_search(search: Callable[..., Any], query: np.ndarray) -> float:
    started = time.perf_counter()
    search(query.reshape(1, -1), NEIGHBOURS)
    return time.perf_counter() - started


def _neighbour_cosines(vectors: np.ndarray, queries: np.ndarray, exact: list[np.ndarray]) -> str:
    """Mean cosine of the 1st and 10th true neighbour: how much the data looks like real embeddings."""
    first = np.mean([vectors[rows[0]] @ q for rows, q in zip(exact, queries, strict=True)])
    tenth = np.mean([vectors[rows[9]] @ q for rows, q in zip(exact, queries, strict=True)])
    return f"{first:.2f} / {tenth:.2f}"


def _omp_threads_effect(index: Any, queries: np.ndarray) -> float:
    """p50 ms of the exact search with FAISS's default OpenMP threads, to show why the store uses one."""
    import os

    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        return 1000 * percentile([_timed_search(index.search, q) for q in queries], 50)
    finally:
        faiss.omp_set_num_threads(1)


def _row(label: str, size: int, name: str, index: Any, build: float, timings: list[float],
         found: list[np.ndarray], exact: list[np.ndarray], threaded_ms: float | None) -> dict[str, Any]:
    recall = float(np.mean([len(set(f[:10]) & set(e[:10])) / 10 for f, e in zip(found, exact, strict=True)]))
    detail = f"nlist {index.nlist}, nprobe {index.nprobe}" if hasattr(index, "nprobe") else ""
    return {"data": label, "chunks": size, "index": name, "detail": detail, "build_s": build,
            "p50_ms": 1000 * percentile(timings, 50), "p95_ms": 1000 * percentile(timings, 95),
            "recall_at_10": recall, "p50_ms_openmp_default": threaded_ms}


def report(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        verdict = ""
        if r["chunks"] >= 1_000_000 and r["chosen"]:
            met = r["p50_ms"] <= TARGET_P50_MS and r["recall_at_10"] >= TARGET_RECALL
            verdict = f"<= {TARGET_P50_MS:.0f} ms, >= {TARGET_RECALL}: {'met' if met else 'missed'}"
        threaded = r["p50_ms_openmp_default"]
        lines.append([r["data"], r["cosines_1_10"], r["chunks"], f"{r['index']} {r['detail']}".strip(),
                      "yes" if r["chosen"] else "", r["build_s"], r["p50_ms"], r["p95_ms"], r["recall_at_10"],
                      float("nan") if threaded is None else threaded, verdict])
    return table(["data", "cosine 1st / 10th", "chunks", "index", "store uses", "build s", "p50 ms", "p95 ms",
                  "recall@10", "p50 ms, 2 OpenMP threads", "target"], lines)


if __name__ == "__main__":
    sys.exit(main())
