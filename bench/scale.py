"""The index at scale: open, add one document, remove one, hybrid retrieval, memory, disk.

    python bench/scale.py                          # 1,000, 10,000 and 100,000 chunks
    python bench/scale.py --sizes 10000 --queries 100
    python bench/scale.py --sizes 100000 --models  # also the RSS with both models loaded
    python bench/scale.py --sizes 100000 1000000 --retrieval-only  # open and search only, to 1M

Each size runs in a fresh process on an index built once into
``bench/out/scale-<chunks>/`` from synthetic news-length briefings
(``common.synthetic_news``: ~470 words drawn from the project's briefings plus
a long tail of made-up names, chunked by the real chunker). The base corpus's
vectors are random unit vectors: embedding 100,000 chunks would take ~10 minutes
on this machine, and search cost does not depend on what the vectors mean. The
documents added are real files, embedded by the real embedder.

- open: ``IndexStore.load`` (documents, chunks, vectors, the approximate index
  if any, the lexical index) and one retrieval, the page cache warm: the wait
  until a question can be answered ("load" alone beside it).
- add one document: ``Assistant.add_documents([file])`` end to end: read,
  chunk, embed, save (one segment and one lexical commit), swap, and one
  retrieval (ready for the next question).
- remove one document: ``Assistant.remove_document`` the same way.
- ``--baseline REV`` runs the same measurements on the code of a git revision
  (exported to ``bench/out/baseline-REV/``, its index in ``scale-<chunks>-REV``).
- hybrid retrieval: ``Retriever.retrieve`` (query embedded, dense and BM25
  candidates, fusion) for distinct questions of 8 content words; dense and
  BM25 alone beside it.
- RSS: the process's resident memory after opening and querying (and with the
  generator loaded and warmed up, with ``--models``).
- growth: the figure at the largest size over the one at a tenth of it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    OUT,
    ROOT,
    arg_parser,
    load_average,
    percentile,
    prepare_embedder,
    run_json_worker,
    synthetic_news,
    table,
    write_json,
)

CHUNKS_PER_DOCUMENT = 5.3  # what the chunker makes of a synthetic briefing (128 word pieces)
TARGETS = {"open_s": 2.0, "add_s": 2.0, "remove_s": 2.0, "hybrid_p50_ms": 30.0, "rss_models_mb": 1536}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    prepare_embedder()
    results, baseline = [], []
    source = export_revision(args.baseline) if args.baseline else None
    for size in args.sizes:
        models = args.models and size == max(args.sizes)
        argv = [__file__, "--worker", "--sizes", str(size), "--queries", str(args.queries),
                "--changes", str(args.changes)] + (["--models"] if models else []) \
            + (["--retrieval-only"] if args.retrieval_only else [])
        results.append(run_json_worker(argv, timeout=7200))
        print(f"  {size:,} chunks done (load average {load_average():.1f})", file=sys.stderr, flush=True)
        if source:
            baseline.append(run_baseline(source, args.baseline, argv))
            print(f"  {size:,} chunks, {args.baseline}: done", file=sys.stderr, flush=True)
    print(report(results))
    if baseline:
        print(f"\n{args.baseline} (the same measurements on that revision's code):")
        print(report(baseline))
        print("\nratios, " + args.baseline + " / this code: " + "; ".join(
            f"{b['chunks']:,} chunks: open {b['open_s'] / r['open_s']:.1f}x, "
            f"add {b['add_s'] / r['add_s']:.1f}x, remove {b['remove_s'] / r['remove_s']:.1f}x"
            for r, b in zip(results, baseline, strict=True)))
    path = write_json("scale", {"results": results, "growth": growth(results), "targets": TARGETS,
                                "baseline": {"revision": args.baseline, "results": baseline}})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = arg_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--changes", type=int, default=3, help="documents added, then removed, per size")
    parser.add_argument("--models", action="store_true",
                        help="at the largest size, load the generator too, for the RSS")
    parser.add_argument("--retrieval-only", action="store_true",
                        help="open and retrieval only (no documents added or removed), e.g. at 1,000,000")
    parser.add_argument("--baseline", help="also measure the code of this git revision (e.g. main)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def export_revision(revision: str) -> Path:
    """The project's code at ``revision`` (qa/ and prompts/), beside this run's."""
    import subprocess

    target = OUT / f"baseline-{revision}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    paths = ["qa"] + ["prompts"] * (subprocess.run(["git", "cat-file", "-e", f"{revision}:prompts"],
                                                   cwd=ROOT, capture_output=True).returncode == 0)
    archive = subprocess.run(["git", "archive", revision, *paths], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def run_baseline(source: Path, revision: str, argv: list[str]) -> dict[str, Any]:
    import os

    saved = dict(os.environ)
    os.environ.update(BENCH_CODE=str(source), BENCH_SCALE_SUFFIX=f"-{revision}")
    try:
        return run_json_worker([str(Path(__file__).resolve()), *argv[1:]], timeout=3600)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- one size, in its own process ----------------------------------------------------------------


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import os

    from qa.models.embedder import Embedder
    from qa.settings import Settings

    size = args.sizes[0]
    folder = OUT / f"scale-{size}{os.environ.get('BENCH_SCALE_SUFFIX', '')}"
    settings = Settings.from_env(index_dir=folder)
    embedder = Embedder.from_settings(settings)
    build_seconds = ensure_index(folder, size, embedder, settings)
    embedder.encode(["warm up"])  # the model loads once per process, not per open

    from qa.index.store import IndexStore

    started = time.perf_counter()
    store = IndexStore.load(folder, embedder.name)
    load_s = time.perf_counter() - started
    first_answer_ready(store, embedder, settings)
    open_s = time.perf_counter() - started
    result = {"chunks": len(store), "documents": len(store.documents), "build_s": build_seconds,
              "load_s": load_s, "open_s": open_s, "index_type": store.manifest.index_type,
              "segments": len(getattr(store.manifest, "segments", {}) or {}), "code": _code()}
    result.update(retrieval(store, embedder, settings, args.queries))
    result["rss_mb"] = rss_mb()
    if not args.retrieval_only:
        result.update(changes(store, embedder, settings, args.changes))
    result["disk_mb"] = disk_mb(folder)
    if args.models:
        result.update(rss_with_generator(store, embedder, settings))
    return result


def ensure_index(folder: Path, size: int, embedder: Any, settings: Any) -> float | None:
    """The synthetic corpus indexed once (random vectors); seconds it took, None if reused."""
    from qa.index.indexing import chunking_config
    from qa.index.store import IndexStore, index_exists
    from qa.ingest.chunking import chunk_documents
    from qa.ingest.documents import load_documents

    if index_exists(folder):
        return None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        files = write_files(Path(scratch), int(size / CHUNKS_PER_DOCUMENT) + 1, 0)
        documents = load_documents(files)
    chunks = chunk_documents(documents, embedder.count_tokens, chunking_config(settings))[:size]
    kept = {c.doc_id for c in chunks}
    documents = {d.doc_id: d for d in documents if d.doc_id in kept}
    chunks = [c for c in chunks if c.doc_id in kept]
    vectors = np.random.default_rng(0).standard_normal((len(chunks), embedder.dimension), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    empty = IndexStore.empty(embedder.name, embedder.dimension, chunking_config(settings).as_dict())
    empty.replace_contents(documents, chunks, vectors).save(folder)
    return time.perf_counter() - started


def first_answer_ready(store: Any, embedder: Any, settings: Any) -> None:
    """One hybrid retrieval: whatever the index builds lazily (a BM25 index, before
    segments) is built here, so "open" is the wait until a question can be answered."""
    from qa.retrieve.hybrid import Retriever

    Retriever(store, embedder, candidates=settings.retrieve.candidates).retrieve("first question", 1)


def _code() -> str:
    import qa

    return str(Path(qa.__file__).resolve().parent.parent)


def write_files(folder: Path, count: int, start: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in synthetic_news(count, start):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def retrieval(store: Any, embedder: Any, settings: Any, count: int) -> dict[str, float]:
    from qa.retrieve.hybrid import Retriever

    chosen = settings.retrieve
    retriever = Retriever(store, embedder, candidates=chosen.candidates, fusion=chosen.fusion,
                          dense_weight=chosen.dense_weight)
    questions = [text.split("\n\n")[1] for _, text in synthetic_news(count, 10_000_000)]
    questions = [" ".join(q.split()[:8]) for q in questions]
    retriever.retrieve("warm up", 1)
    timings: dict[str, list[float]] = {"hybrid": [], "dense": [], "lexical": []}

    def dense(query: str) -> Any:  # the dense half of retrieve(): embed, then search the store
        return store.search(embedder.encode_remembered([query])[0], chosen.candidates)

    for question in questions:  # each question new: no remembered query vector
        for name, run in (("hybrid", lambda q: retriever.retrieve(q, chosen.candidates)),
                          ("dense", lambda q: dense(q + " again")),
                          ("lexical", lambda q: retriever.lexical(q, chosen.candidates))):
            started = time.perf_counter()
            run(question)
            timings[name].append(time.perf_counter() - started)
    return {f"{name}_p{q}_ms": 1000 * percentile(values, q) for name, values in timings.items()
            for q in (50, 95)}


def changes(store: Any, embedder: Any, settings: Any, count: int) -> dict[str, Any]:
    """Documents added one at a time, then removed one at a time, as the web chat does."""
    from qa.generation import Generator
    from qa.pipeline import Assistant

    generator = Generator(None, settings.cache_dir)  # never loaded: adding needs no generator
    assistant = Assistant(store, settings, embedder=embedder, generator=generator,
                          index_dir=settings.index_dir)
    added, removed = [], []
    with tempfile.TemporaryDirectory() as scratch:
        files = write_files(Path(scratch), count, 20_000_000)
        for path in files:  # each until the next question can be answered
            started = time.perf_counter()
            assistant.add_documents([path])
            assistant.retrieve("next question", 1)
            added.append(time.perf_counter() - started)
        for doc_id in [d.doc_id for d in assistant.store.documents.values()
                       if Path(d.source).parent == Path(scratch)]:
            started = time.perf_counter()
            assistant.remove_document(doc_id)
            assistant.retrieve("next question", 1)
            removed.append(time.perf_counter() - started)
    return {"add_s": percentile(added, 50), "remove_s": percentile(removed, 50),
            "add_runs": added, "remove_runs": removed, "chunks_after": len(assistant.store)}


def rss_with_generator(store: Any, embedder: Any, settings: Any) -> dict[str, float]:
    """Resident memory of a process serving this index with both models loaded and warm,
    read while the assistant is alive (its generator is freed with it): all of it, the
    part mapped from files (pages shared with the page cache, the GGUF's if the model is
    mapped) and the process's own."""
    from qa.pipeline import Assistant

    assistant = Assistant(store, settings, embedder=embedder, index_dir=None)
    assistant.warm_up()
    assistant.ask("Who leads the delegation?")
    memory = {"rss_models_mb": rss_mb(), "rss_models_file_mb": rss_mb("RssFile"),
              "rss_models_anon_mb": rss_mb("RssAnon")}
    del assistant
    return memory


def rss_mb(kind: str = "VmRSS") -> float:
    """Resident memory; ``RssFile`` is the part mapped from files (the GGUF weights,
    shared and reclaimable), ``RssAnon`` the process's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


# -- report ---------------------------------------------------------------------------------------------


def growth(results: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure at the largest size over the same figure at a tenth of it (if measured)."""
    by_size = {r["chunks"]: r for r in results}
    largest = max(by_size, default=0)
    smaller = [s for s in by_size if 0.05 * largest <= s <= 0.2 * largest]
    if not smaller:
        return {}
    small = by_size[max(smaller)]
    big = by_size[largest]
    keys = ["open_s", "add_s", "remove_s", "hybrid_p50_ms", "dense_p50_ms", "lexical_p50_ms",
            "rss_mb", "disk_mb"]
    return {"from": small["chunks"], "to": big["chunks"],
            **{k: big[k] / small[k] for k in keys if small.get(k)}}


def report(results: list[dict[str, Any]]) -> str:
    rows = [[f"{r['chunks']:,}", f"{r['documents']:,}", r["index_type"], r["open_s"], r.get("add_s", "-"),
             r.get("remove_s", "-"), f"{r['hybrid_p50_ms']:.1f} / {r['hybrid_p95_ms']:.1f}",
             f"{r['dense_p50_ms']:.1f} / {r['lexical_p50_ms']:.1f}", round(r["rss_mb"]),
             f"{r['rss_models_mb']:.0f} ({r['rss_models_file_mb']:.0f} mapped files)"
             if "rss_models_mb" in r else "-", round(r["disk_mb"], 1)]
            for r in results]
    lines = [table(["chunks", "docs", "index", "open s", "add one doc s", "remove one doc s",
                    "hybrid p50 / p95 ms", "dense / BM25 p50 ms", "RSS MB", "RSS with models MB",
                    "disk MB"], rows)]
    grown = growth(results)
    if grown:
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in grown.items() if k not in ("from", "to"))
        lines.append(f"\ngrowth {grown['from']:,} -> {grown['to']:,} chunks: {ratios}")
    big = max(results, key=lambda r: r["chunks"])
    met = [f"{k} {'met' if big[k] <= limit else 'missed'} ({big[k]:.2f} vs {limit})"
           for k, limit in TARGETS.items() if k in big]
    lines.append(f"targets at {big['chunks']:,} chunks: " + "; ".join(met))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
