"""FAISS against Milvus as the search backend, same data, same run.

    python bench/vector_backends.py                 # everything below
    python bench/vector_backends.py --skip-100k     # only the 1,000-document figures
    python bench/vector_backends.py --scale-only    # only step 4, over the index step 1 left

1. Indexing 1,000 news-length documents (``bench/common.news_corpus``) with each
   backend's ``update`` from files, the embedder loaded and warm beforehand; the
   time spent embedding (the same texts for both) is shown apart.
2. Retrieval p50 / p95 of the hybrid searcher over those indexes, 200 BoolQ
   questions, embedded beforehand (the embedder remembers them), backends alternating.
3. BoolQ dev hybrid nDCG@10 (1,000 questions over every dev passage, as
   ``evals/boolq.py`` scores it) with each backend.
4. 100,000 chunks: the 1,000-document index copied 17 times (new ids; each copy's
   vectors nudged by a little noise), written straight to a FAISS index folder
   and to a ``milvus-lite server`` started for the run. Then a fresh "web process"
   per backend opens it as ``qa serve`` does and answers 200 searches: its
   retrieval p50 and its resident memory (the Milvus engine runs in its own process).

milvus-lite is the engine here (pure Python, one process per data folder); a
Milvus server or cluster is reached by the same client code (``QA_VECTOR_URI``).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    ROOT,
    Timer,
    arg_parser,
    machine,
    news_corpus,
    percentile,
    prepare_embedder,
    run_json_worker,
    table,
    write_json,
)

sys.path.insert(0, str(ROOT))
COPIES = 17  # 17 x 5,908 chunks = 100,436
QUERIES = 200


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--skip-100k", action="store_true")
    parser.add_argument("--scale-only", action="store_true", help="only the 100,000-chunk step")
    parser.add_argument("--docs", type=int, default=1000, help="news-length documents indexed")
    parser.add_argument("--copies", type=int, default=COPIES, help="copies of that index for the scale run")
    parser.add_argument("--boolq", type=int, default=1000, help="BoolQ questions scored")
    parser.add_argument("--worker", choices=["faiss", "milvus"], help="internal: one web process")
    parser.add_argument("--uri", help="internal")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(web_process(args.worker, args.uri)))
        return 0
    prepare_embedder()
    result: dict[str, Any] = {"documents": args.docs}
    embedder, settings = _embedder_and_settings()
    stores: dict[str, Any] = {}
    steps = [("indexing", lambda: index_both(embedder, settings, args.docs)),
             ("retrieval", lambda: retrieval_latency(stores, embedder, settings)),
             ("boolq", lambda: boolq_ndcg(embedder, settings, args.boolq))]
    if args.scale_only:  # over the FAISS index of the news documents an earlier run left
        from qa.index.store import IndexStore

        steps = []
        stores = {"faiss": {"store": IndexStore.load(OUT / "backends-news-faiss" / "index")}}
    if not args.skip_100k:
        steps.append(("scale", lambda: at_100k(stores, settings, args.copies)))
    for name, step in steps:  # each step's table as soon as it is measured
        figures = step()
        if name == "indexing":
            figures, found = figures
            stores.update(found)
        result[name] = figures
        print(report({"documents": args.docs, name: figures}), flush=True)
        write_json("vector_backends", result)
    print(f"\nwritten {(OUT / 'vector_backends.json').relative_to(ROOT)}")
    return 0


def _embedder_and_settings() -> tuple[Any, Any]:
    from qa.models.embedder import Embedder
    from qa.settings import Settings

    settings = Settings.from_env()
    embedder = Embedder.from_settings(settings)
    embedder.encode(["warm up"])
    return embedder, settings


class TimedEmbedder:
    """The real embedder, counting the seconds spent in ``encode``."""

    def __init__(self, embedder: Any):
        self.embedder, self.seconds = embedder, 0.0

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.embedder.encode(texts, **options)
        finally:
            self.seconds += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)


def _fresh(settings: Any, name: str, step: str) -> dict[str, Any]:
    """Settings for an empty index of backend ``name`` (a folder per step: a milvus-lite
    database still open in this process must not be deleted under it)."""
    from qa.index.backends import backend

    folder = OUT / f"backends-{step}-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    changed = settings.replace(index_dir=folder / "index", vector_backend=name,
                               vector_uri=str(folder / "milvus.db"))
    return {"settings": changed, "backend": backend(name)}


# -- 1. indexing ----------------------------------------------------------------------------


def index_both(embedder: Any, settings: Any, count: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    corpus = news_corpus(count)
    rows, stores = [], {}
    for name in ("faiss", "milvus"):
        side = _fresh(settings, name, "news")
        timed = TimedEmbedder(embedder)
        with Timer() as timer:
            indexed = side["backend"].update([corpus], side["settings"], timed)
            store, report = indexed.store, indexed.report
        stores[name] = {**side, "store": store}
        rows.append({"backend": name, "seconds": timer.seconds, "embedding_seconds": timed.seconds,
                     "engine_seconds": timer.seconds - timed.seconds, "chunks": report.total_chunks})
    return rows, stores


# -- 2. retrieval latency -------------------------------------------------------------------


def _boolq_questions(limit: int) -> list[str]:
    from evals.boolq import locate_dev_file, read_boolq

    return [q.question for q in read_boolq(locate_dev_file(), limit).questions]


def retrieval_latency(stores: dict[str, Any], embedder: Any, settings: Any) -> list[dict[str, Any]]:
    questions = _boolq_questions(QUERIES)
    embedder.encode_remembered(questions)
    searchers = {name: side["backend"].searcher(side["store"], embedder, settings)
                 for name, side in stores.items()}
    for searcher in searchers.values():
        searcher.retrieve(questions[0], settings.retrieve.candidates)  # FAISS builds its BM25 index here
    timings: dict[str, list[float]] = {name: [] for name in searchers}
    for number, question in enumerate(questions):
        for name in (list(searchers) if number % 2 == 0 else list(reversed(searchers))):
            with Timer() as timer:
                searchers[name].retrieve(question, settings.retrieve.candidates)
            timings[name].append(timer.seconds * 1000)
    return [{"backend": name, "p50_ms": percentile(t, 50), "p95_ms": percentile(t, 95)}
            for name, t in timings.items()]


# -- 3. BoolQ ---------------------------------------------------------------------------------


def boolq_ndcg(embedder: Any, settings: Any, limit: int) -> list[dict[str, Any]]:
    from evals.boolq import QuestionRanks, locate_dev_file, read_boolq, summarize_method, to_documents
    from qa.index.indexing import apply_documents, open_or_create

    data = read_boolq(locate_dev_file(), limit)
    documents = to_documents(data)
    embedder.encode_remembered([q.question for q in data.questions])
    rows = []
    for name in ("faiss", "milvus"):
        side = _fresh(settings, name, "boolq")
        if name == "faiss":
            store = open_or_create(side["settings"].index_dir, embedder, side["settings"])
            store = apply_documents(store, documents, embedder, side["settings"], prune=False).store
        else:
            from qa.index.backends.milvus import connect

            store = connect(side["settings"], embedder)
            store.update(documents, embedder, side["settings"], prune=False)
        searcher = side["backend"].searcher(store, embedder, settings)
        ranks = []
        for q in data.questions:
            ranked = list(dict.fromkeys(p.doc_id for p in searcher.retrieve(q.question, 50)))
            row = QuestionRanks(q.id, q.question, q.doc_id)
            row.ranks["hybrid"] = ranked.index(q.doc_id) + 1 if q.doc_id in ranked else None
            ranks.append(row)
        score = summarize_method(ranks, "hybrid", 10)
        rows.append({"backend": name, "ndcg_at_10": score.ndcg_at_10, "hit_at_1": score.hit_at_1,
                     "questions": len(data.questions), "passages": len(documents)})
    return rows


# -- 4. 100,000 chunks --------------------------------------------------------------------


def at_100k(stores: dict[str, Any], settings: Any, count: int) -> dict[str, Any]:
    from tests.servers import free_port, milvus_server

    base = stores["faiss"]["store"]
    folder = OUT / "backends-100k"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    copies = _copies(base, count)
    with Timer() as faiss_write:
        _write_faiss(base, copies, folder / "faiss", settings)
    port = free_port()
    with milvus_server(folder / "milvus-data", port, folder / "milvus.log"):
        uri = f"http://127.0.0.1:{port}"
        with Timer() as milvus_write:
            chunks = _write_milvus(base, copies, uri, settings)
        workers = {}
        for name, where in (("faiss", str(folder / "faiss")), ("milvus", uri)):
            workers[name] = run_json_worker([str(Path(__file__)), "--worker", name, "--uri", where],
                                            timeout=1800)
    return {"chunks": chunks, "write_seconds": {"faiss": faiss_write.seconds,
                                                "milvus": milvus_write.seconds}, "web": workers}


def _copies(store: Any, count: int) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Per copy: old -> new doc id, and the vectors with a little noise (renormalised)."""
    rng = np.random.default_rng(0)
    copies = []
    for n in range(count):
        ids = {doc_id: f"{doc_id}-{n}" for doc_id in store.documents}
        noisy = store.vectors + rng.normal(0, 0.01, store.vectors.shape).astype(np.float32)
        copies.append((ids, noisy / np.linalg.norm(noisy, axis=1, keepdims=True)))
    return copies


def _copied(store: Any, ids: dict[str, str]) -> tuple[list[Any], list[Any]]:
    from dataclasses import replace

    documents = [replace(d, doc_id=ids[d.doc_id]) for d in store.documents.values()]
    chunks = [replace(c, doc_id=ids[c.doc_id], chunk_id=f"{ids[c.doc_id]}:{c.chunk_id.rsplit(':', 1)[1]}")
              for c in store.chunks]
    return documents, chunks


def _write_faiss(store: Any, copies: list[Any], folder: Path, settings: Any) -> None:
    documents: dict[str, Any] = {}
    chunks: list[Any] = []
    for ids, _ in copies:
        docs, copied = _copied(store, ids)
        documents.update({d.doc_id: d for d in docs})
        chunks += copied
    vectors = np.vstack([v for _, v in copies]).astype(np.float32)
    store.replace_contents(documents, chunks, vectors).save(folder)


def _write_milvus(store: Any, copies: list[Any], uri: str, settings: Any) -> int:
    from qa.index.backends.milvus import BATCH, Meta, _chunk_row, _document_rows, connect
    from qa.index.lexical import tokens

    class Named:  # what ``connect`` reads of an embedder to create the collections
        name, dimension = store.manifest.embedder, store.manifest.dimension

    milvus = connect(settings.replace(vector_backend="milvus", vector_uri=uri), Named())
    config = store.manifest.chunking
    titles = {d.doc_id: d.title for d in store.documents.values()}
    from qa.ingest.chunking import search_text

    terms = tokens([search_text(titles[c.doc_id], c.text, bool(config["with_title"]))
                           for c in store.chunks])
    total = 0
    for ids, vectors in copies:
        documents, chunks = _copied(store, ids)
        by_id = {d.doc_id: d for d in documents}
        rows = [_chunk_row(c, by_id[c.doc_id], v, t, 1)
                for c, v, t in zip(chunks, vectors, terms, strict=True)]
        for start in range(0, len(rows), BATCH):
            milvus.client.insert(milvus.chunks_collection, rows[start : start + BATCH])
        counts: dict[str, int] = {}
        for chunk in chunks:
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        doc_rows = [r for d in documents for r in _document_rows(d, counts.get(d.doc_id, 0), 1)]
        for start in range(0, len(doc_rows), BATCH):
            milvus.client.insert(milvus.documents_collection, doc_rows[start : start + BATCH])
        total += len(rows)
    milvus._commit(Meta(store.manifest.embedder, store.manifest.dimension, config, 1, total))
    return total


def web_process(name: str, uri: str) -> dict[str, Any]:
    """Open the index as ``qa serve`` does, search, report latency and memory."""
    from common import peak_rss_mb

    from qa.pipeline import Assistant
    from qa.settings import Settings

    settings = Settings.from_env().replace(index_dir=Path(uri), vector_backend=name, vector_uri=uri)
    questions = _boolq_questions(QUERIES)
    with Timer() as opening:
        assistant = Assistant.open(settings.index_dir, settings=settings)
    assistant.embedder.encode_remembered(questions)
    assistant.retriever.retrieve(questions[0], settings.retrieve.candidates)  # FAISS: builds BM25
    timings = []
    for question in questions:
        with Timer() as timer:
            assistant.retriever.retrieve(question, settings.retrieve.candidates)
        timings.append(timer.seconds * 1000)
    return {"open_seconds": opening.seconds, "p50_ms": percentile(timings, 50),
            "p95_ms": percentile(timings, 95), "rss_mb": _rss_mb(), "peak_rss_mb": peak_rss_mb()}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- report ---------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    """The tables of the steps in ``result``."""
    lines = [f"\nSearch backends ({machine()['cpus']} cores, shared machine, load "
             f"{machine()['load_average_1min']})"]
    if "indexing" in result:
        lines += [f"Indexing {result['documents']:,} news-length documents from files:",
                  table(["backend", "total s", "embedding s", "engine s", "chunks"],
                        [[r["backend"], r["seconds"], r["embedding_seconds"], r["engine_seconds"],
                          r["chunks"]] for r in result["indexing"]])]
    if "retrieval" in result:
        lines += [f"Hybrid retrieval over them, {QUERIES} BoolQ questions (embedding excluded):",
                  table(["backend", "p50 ms", "p95 ms"],
                        [[r["backend"], r["p50_ms"], r["p95_ms"]] for r in result["retrieval"]])]
    if "boolq" in result:
        lines += ["BoolQ dev hybrid retrieval:",
                  table(["backend", "nDCG@10", "hit@1", "questions", "passages"],
                        [[r["backend"], r["ndcg_at_10"], r["hit_at_1"], r["questions"], r["passages"]]
                         for r in result["boolq"]])]
    if "scale" in result:
        scale = result["scale"]
        lines += [f"{scale['chunks']:,} chunks, a fresh web process per backend (Milvus: "
                  "milvus-lite server in its own process):",
                  table(["backend", "written in s", "open s", "p50 ms", "p95 ms", "web RSS MB",
                         "web peak MB"],
                        [[name, scale["write_seconds"][name], w["open_seconds"], w["p50_ms"], w["p95_ms"],
                          w["rss_mb"], w["peak_rss_mb"]] for name, w in scale["web"].items()])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
