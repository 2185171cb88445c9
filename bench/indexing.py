"""Indexing speed: the system end to end against a bare sentence-transformers loop.

    python bench/indexing.py                    # 100 and 1,000 news-length documents
    python bench/indexing.py --docs 100 --repeats 3 --backend torch

The system run is ``update_index`` from files to a saved index (load, parse,
chunk, embed, write), model loading included, in a fresh process. The baseline
is ``SentenceTransformer.encode(texts, batch_size=32)`` over exactly the texts
the system embedded (model loading excluded), also in a fresh process. The two
alternate (A B B A ...) so drift from other work on the machine hits both.
At 1,000 documents the baseline encodes a random 5% of the texts and its
time is scaled up (it would otherwise take minutes); ``--bare-sample 1`` runs it whole.
"CPU s" is the processor time each side used: unlike wall time it hardly moves
when other work shares the machine, and on an idle 2-core machine the wall time
can at best approach CPU s / 2.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    OUT,
    Timer,
    arg_parser,
    machine,
    news_corpus,
    peak_rss_mb,
    percentile,
    prepare_embedder,
    run_json_worker,
    table,
    write_json,
)

TARGET_SECONDS_1000 = 40.0
TARGET_SPEEDUP = 2.5


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    prepare_embedder()  # once per machine, untimed: not part of indexing
    results = [measure(count, args) for count in args.docs]
    print(f"\nIndexing, {args.backend} backend ({machine()['load_average_1min']} load average at the end)")
    print(report(results))
    path = write_json("indexing", {"backend": args.backend, "results": results})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = arg_parser(__doc__)
    parser.add_argument("--docs", type=int, nargs="+", default=[100, 1000], help="corpus sizes")
    parser.add_argument("--repeats", type=int, default=0,
                        help="runs of each side, alternating (default 1)")
    parser.add_argument("--backend", default="onnx", choices=["onnx", "torch"], help="the system's embedder")
    parser.add_argument("--bare-sample", type=float, default=0.0,
                        help="share of texts the baseline encodes (default 1 at <=100 docs, else 0.05)")
    parser.add_argument("--worker", choices=["system", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the two sides, each in its own process ---------------------------------------------------------


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    return system_worker(args) if args.worker == "system" else bare_worker(args)


def system_worker(args: argparse.Namespace) -> dict[str, Any]:
    """``update_index`` over the corpus into a fresh index; records the texts it embedded."""
    started, cpu_started = time.perf_counter(), time.process_time()
    from qa.index.indexing import update_index
    from qa.models.embedder import Embedder
    from qa.settings import Settings

    index_dir = OUT / f"index-{Path(args.corpus).name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    settings = Settings.from_env(index_dir=index_dir)
    embedder = Embedder.from_settings(settings.replace(embed_backend=args.backend))
    texts: list[str] = []
    embedder.encode = _recording(embedder.encode, texts)  # type: ignore[method-assign]
    marks: list[float] = []
    indexed = update_index([args.corpus], index_dir, embedder, settings, rebuild=True,
                                 progress=lambda done, total, what: marks.append(time.perf_counter()))
    store, report = indexed.store, indexed.report
    total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    Path(args.texts).write_text(json.dumps(texts))
    rss = peak_rss_mb()
    word_pieces = sum(embedder.count_tokens(texts)) + 2 * len(texts)  # with [CLS] and [SEP]; untimed
    first, last = (marks[0], marks[-1]) if marks else (started, started)
    return {"seconds": total, "before_embedding": first - started, "embedding": last - first,
            "after_embedding": started + total - last, "chunks": report.chunks_embedded,
            "word_pieces": word_pieces,
            "documents": len(store.documents), "index_type": store.manifest.index_type,
            "embedder": store.manifest.embedder, "peak_rss_mb": rss, "cpu_seconds": cpu}


def _recording(encode: Any, texts: list[str]) -> Any:
    """``encode`` that also keeps what it embedded, so the baseline embeds the very same texts."""

    def wrapper(batch: list[str], show_progress: bool = False) -> Any:
        texts.extend(batch)
        return encode(batch, show_progress)

    return wrapper


def bare_worker(args: argparse.Namespace) -> dict[str, Any]:
    """The baseline an engineer would write first: load the model, ``encode`` the chunks."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = json.loads(Path(args.texts).read_text())
    share = min(args.bare_sample, 1.0)
    sample = random.Random(0).sample(texts, int(len(texts) * share)) if share < 1 else texts
    with Timer() as load:
        import torch
        from sentence_transformers import SentenceTransformer

        from qa.models.files import resolve_embedder
        from qa.settings import Settings

        torch.set_num_threads(Settings().n_threads)
        model = SentenceTransformer(str(resolve_embedder(None)[0]), device="cpu")
    cpu_started = time.process_time()
    with Timer() as encode:
        model.encode(sample, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    scale = len(texts) / max(len(sample), 1)
    return {"load": load.seconds, "encode_sample": encode.seconds, "sample": len(sample),
            "chunks": len(texts), "encode": encode.seconds * scale,
            "cpu_seconds": (time.process_time() - cpu_started) * scale, "peak_rss_mb": peak_rss_mb()}


# -- orchestration -------------------------------------------------------------------------------


def measure(count: int, args: argparse.Namespace) -> dict[str, Any]:
    corpus = news_corpus(count)
    repeats = args.repeats or 1
    sample = args.bare_sample or (1.0 if count <= 100 else 0.05)
    texts = OUT / f"texts-{count}.json"
    common = [__file__, "--corpus", str(corpus), "--texts", str(texts), "--backend", args.backend,
              "--bare-sample", str(sample)]
    system: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for side in _abba(repeats):
        run = run_json_worker([*common, "--worker", side], timeout=900)
        (system if side == "system" else bare).append(run)
        print(f"  {count} docs, {side}: {_describe(run)}", file=sys.stderr, flush=True)
    return summarise(count, system, bare, sample)


def _abba(repeats: int) -> list[str]:
    """system first (the baseline needs its texts), then alternate in mirrored pairs."""
    order: list[str] = []
    for number in range(repeats):
        order += ["system", "bare"] if number % 2 == 0 else ["bare", "system"]
    return order


def _describe(run: dict[str, Any]) -> str:
    if "encode" in run:
        return f"encode {run['encode']:.1f} s (load {run['load']:.1f} s, {run['sample']} texts run)"
    return f"{run['seconds']:.1f} s for {run['chunks']} chunks"


def summarise(count: int, system: list[dict[str, Any]], bare: list[dict[str, Any]],
              sample: float) -> dict[str, Any]:
    seconds = percentile([r["seconds"] for r in system], 50)
    bare_encode = percentile([r["encode"] for r in bare], 50)
    chunks = system[0]["chunks"]
    embedding = percentile([r["embedding"] for r in system], 50)
    return {
        "documents": count, "chunks": chunks, "system_seconds": seconds,
        "system_before_embedding": percentile([r["before_embedding"] for r in system], 50),
        "system_embedding": embedding, "word_pieces": system[0]["word_pieces"],
        "embedding_word_pieces_per_s": system[0]["word_pieces"] / max(embedding, 1e-9),
        "system_after_embedding": percentile([r["after_embedding"] for r in system], 50),
        "bare_encode_seconds": bare_encode, "bare_load_seconds": percentile([r["load"] for r in bare], 50),
        "bare_sample": sample, "speedup": bare_encode / seconds,
        "system_cpu_seconds": percentile([r["cpu_seconds"] for r in system], 50),
        "bare_cpu_seconds": percentile([r["cpu_seconds"] for r in bare], 50),
        "system_chunks_per_s": chunks / seconds, "bare_chunks_per_s": chunks / bare_encode,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in system), "index_type": system[0]["index_type"],
        "embedder": system[0]["embedder"], "runs": {"system": system, "bare": bare},
    }


def report(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        met = r["system_seconds"] <= TARGET_SECONDS_1000 and r["speedup"] >= TARGET_SPEEDUP
        target = f"<= {TARGET_SECONDS_1000:.0f} s and >= {TARGET_SPEEDUP}x: {'met' if met else 'missed'}"
        target = target if r["documents"] == 1000 else ""
        rows.append([r["documents"], r["chunks"], r["system_seconds"],
                     f"{r['system_before_embedding']:.1f} / {r['system_embedding']:.1f} / "
                     f"{r['system_after_embedding']:.1f}",
                     r["bare_encode_seconds"], f"{r['speedup']:.2f}x", round(r["system_chunks_per_s"]),
                     round(r["bare_chunks_per_s"]), r["word_pieces"],
                     round(r["embedding_word_pieces_per_s"]),
                     f"{r['system_cpu_seconds']:.0f} / {r['bare_cpu_seconds']:.0f}",
                     round(r["peak_rss_mb"]), target])
    return table(["docs", "chunks", "system s", "load+chunk / embed / write s", "bare encode s",
                  "speed-up", "system chunks/s", "bare chunks/s", "word pieces embedded",
                  "embedding word pieces/s", "CPU s system / bare", "peak RSS MB",
                  "target"], rows)


if __name__ == "__main__":
    sys.exit(main())
