"""Does the fast embedder keep retrieval quality? Dense-only BoolQ nDCG@10, torch against onnx.

    python bench/embedding_quality.py                 # 1,000 questions over 1,500 passages
    python bench/embedding_quality.py --all           # all 3,270 questions over all 2,938 passages

Passages are indexed exactly as the system indexes files (its chunking, titles
and embedder); a question's only relevant document is its own passage, ranked
by its best chunk. Chunk and question vectors are kept in
``bench/out/boolq-vectors-<backend>.npz`` (bench/retrieval.py reuses them as real data).
"""

from __future__ import annotations

import hashlib
import sys
import time
from typing import Any

import numpy as np
from common import OUT, arg_parser, boolq_rows, prepare_embedder, table, write_json

BACKENDS = ("torch", "onnx")
TOLERANCE = 0.005  # the bound on the nDCG@10 loss


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--passages", type=int, default=1500, help="corpus size: gold passages + distractors")
    parser.add_argument("--all", action="store_true", help="every question and passage")
    args = parser.parse_args(argv)
    questions, gold, documents = boolq_subset(None if args.all else args.questions,
                                              None if args.all else args.passages)
    prepare_embedder()  # once per machine, untimed: not part of indexing
    results = {b: evaluate(b, questions, gold, documents) for b in BACKENDS}
    print(report(results, len(questions), len(documents)))
    path = write_json("embedding_quality", {"questions": len(questions), "passages": len(documents),
                                            "results": {b: _public(r) for b, r in results.items()}})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def boolq_subset(questions: int | None, passages: int | None) -> tuple[list[str], np.ndarray, list[Any]]:
    """The first ``questions`` questions, their gold passages, and distractors up to ``passages``."""
    from qa.types import Document

    everything = boolq_rows()
    rows = everything[:questions] if questions else everything
    wanted = max(passages or 0, len({r["passage"] for r in rows}))
    corpus: dict[str, str] = {}  # text -> title: gold passages first, then distractors in file order
    for row in rows + everything:
        corpus.setdefault(" ".join(str(row["passage"]).split()), str(row["title"]))
        if passages and len(corpus) >= wanted:
            break
    ids = {text: number for number, text in enumerate(corpus)}
    documents = [Document(doc_id=str(number), title=title, source=f"boolq/{number}", text=text,
                          content_hash=hashlib.sha256(text.encode()).hexdigest())
                 for number, (text, title) in enumerate(corpus.items())]
    gold = np.array([ids[" ".join(str(r["passage"]).split())] for r in rows])
    return [str(r["question"]) for r in rows], gold, documents


def evaluate(backend: str, questions: list[str], gold: np.ndarray, documents: list[Any]) -> dict[str, Any]:
    """Index the passages with the system's indexer and this backend, then rank by dense score only."""
    from qa.index.indexing import apply_documents, open_or_create
    from qa.models.embedder import Embedder
    from qa.settings import Settings

    settings = Settings.from_env(index_dir=OUT / "unused")
    embedder = Embedder(None, batch_size=settings.index.embed_batch_size, threads=settings.n_threads,
                        backend=backend, cache_dir=settings.cache_dir)
    cache = ReferenceCache(embedder) if backend == "torch" else None
    started = time.perf_counter()
    store = open_or_create(OUT / f"no-index-{backend}", embedder, settings, rebuild=True)
    store = apply_documents(store, documents, cache or embedder, settings).store
    seconds = cache.indexed(time.perf_counter() - started) if cache else time.perf_counter() - started
    chunk_docs = np.array([int(c.doc_id) for c in store.chunks])
    queries = np.vstack([(cache or embedder).encode([q]) for q in questions])  # one by one, as asked
    if cache:
        cache.save()
    ranks = gold_ranks(queries, store.vectors, chunk_docs, gold)
    np.savez(OUT / f"boolq-vectors-{backend}.npz", chunks=store.vectors, queries=queries,
             chunk_docs=chunk_docs, gold=gold, texts_digest=_digest(store.chunks))
    return {"embedder": embedder.name, "chunks": len(store.chunks), "index_seconds": seconds,
            "ndcg_at_10": float(np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0).mean()),
            "recall_at_10": float((ranks <= 10).mean()), "mrr": float((1 / ranks).mean()),
            "_vectors": store.vectors}


class ReferenceCache:
    """The torch embedder with its vectors kept in bench/out: the reference never changes, and
    re-embedding it costs minutes. Its indexing time is then the one of the run that embedded."""

    path = OUT / "torch-vectors-cache.npz"

    def __init__(self, embedder: Any):
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.computed = False
        if self.path.exists():
            data = np.load(self.path, allow_pickle=False)
            self.vectors = dict(zip(data["texts"].tolist(), data["vectors"], strict=True))
            self.seconds = float(data["seconds"])

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.embedder.encode(missing), strict=True))
            self.computed = True
        return np.vstack([self.vectors[t] for t in texts])

    def indexed(self, seconds: float) -> float:
        """The indexing time to report: this run's if it embedded the chunks, else the stored one."""
        if self.computed:
            self.seconds = seconds
        return self.seconds

    def save(self) -> None:
        if self.computed:
            vectors = np.vstack(list(self.vectors.values()))
            np.savez(self.path, texts=np.array(list(self.vectors)), vectors=vectors, seconds=self.seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)


def gold_ranks(queries: np.ndarray, chunks: np.ndarray, chunk_docs: np.ndarray,
               gold: np.ndarray) -> np.ndarray:
    """1-based rank of each question's gold document, a document scoring as its best chunk."""
    order = np.argsort(chunk_docs, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(chunk_docs[order])) + 1]
    doc_ids = chunk_docs[order][starts]
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), 256):  # bounded memory: 256 x chunks scores at a time
        scores = queries[start : start + 256] @ chunks[order].T
        best = np.maximum.reduceat(scores, starts, axis=1)  # (questions, documents)
        column = np.searchsorted(doc_ids, gold[start : start + 256])
        mine = best[np.arange(len(best)), column]
        ranks[start : start + 256] = (best > mine[:, None]).sum(axis=1) + 1
    return ranks


def _digest(chunks: list[Any]) -> str:
    return hashlib.sha1("\x00".join(c.chunk_id for c in chunks).encode()).hexdigest()[:12]


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def report(results: dict[str, dict[str, Any]], questions: int, passages: int) -> str:
    base = results["torch"]
    rows = []
    for backend, r in results.items():
        same_chunks = len(r["_vectors"]) == len(base["_vectors"])
        cosine = (r["_vectors"] * base["_vectors"]).sum(axis=1) if same_chunks else np.array([np.nan])
        delta = r["ndcg_at_10"] - base["ndcg_at_10"]
        verdict = "" if backend == "torch" else ("within" if abs(delta) <= TOLERANCE else "OUTSIDE") + \
            f" {TOLERANCE}"
        rows.append([backend, r["embedder"], r["chunks"], r["index_seconds"], r["ndcg_at_10"],
                     r["recall_at_10"], r["mrr"], f"{delta:+.4f} {verdict}",
                     f"{cosine.mean():.4f} / {cosine.min():.4f}"])
    title = f"BoolQ dense-only retrieval, {questions} questions over {passages} passages\n"
    return title + table(["backend", "embedder (manifest)", "chunks", "index s", "nDCG@10", "R@10", "MRR",
                          "nDCG vs torch", "cosine to torch mean / min"], rows)


if __name__ == "__main__":
    sys.exit(main())
