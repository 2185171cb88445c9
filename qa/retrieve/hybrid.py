"""Hybrid retrieval: dense (FAISS over MiniLM vectors) fused with BM25 (tantivy, qa/index/lexical.py).

Dense search finds paraphrases; BM25 finds rare names and numbers that a small
embedder blurs. Their scores are fused (a weighted sum of normalised scores,
or reciprocal rank fusion). With ``doc_score="document"`` the documents are ranked
as wholes, since the reader sees the best document whole: a document's dense score
mixes its best chunk's cosine with its mean vector's (what the document as a whole is
about), its lexical score is its best chunk's BM25, and the two are fused as chunks
are; the passages come grouped by document in that order, best chunk first.
``Passage.score`` is the dense cosine similarity, the calibrated signal used to
decide that nothing relevant was found; the list order is the fused rank.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

import numpy as np

from qa.index.store import IndexStore
from qa.models.embedder import Embedder
from qa.types import Document, Passage

RRF_K = 60
# Share of a document's dense score that is its mean chunk vector's cosine (the rest is its
# best chunk's): title-less XSum nDCG@10 0.926 at 0.5, 0.924 at 0.25 (evals/titleless.py).
MEAN_VECTOR_SHARE = 0.5


class Retriever:
    """``fusion`` is "convex" (weighted sum of min-max normalised scores, the
    default: it keeps how much better the best hit is) or "rrf" (ranks only).
    ``doc_score`` is "chunk" (a document ranks where its best chunk does) or
    "document" (documents scored as wholes, see the module's docstring)."""

    def __init__(self, store: IndexStore, embedder: Embedder, candidates: int = 30,
                 fusion: str = "convex", dense_weight: float = 0.75, doc_score: str = "chunk"):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.doc_score = doc_score
        self._rows_of: dict[str, list[int]] | None = None  # doc_id -> its rows, made when needed

    def retrieve(self, query: str, k: int = 10) -> list[Passage]:
        if not len(self.store) or not query.strip():
            return []
        n = max(k, self.candidates)
        vector = self.embedder.encode_remembered([query])[0]
        dense = self.store.search(vector, n)
        lexical = self.lexical(query, n)
        rows = {r for r, _ in dense} | {r for r, _ in lexical}
        cosine = {r: float(np.dot(self.store.vectors[r], vector)) for r in rows}
        return self._ranked(vector, cosine, dense, lexical, k)

    def retrieve_within(self, query: str, doc_ids: Collection[str], k: int = 10) -> list[Passage]:
        """``retrieve`` over the chunks of some documents only (a question limited to
        them): every one of their chunks is scored exactly, so none is crowded out by
        the rest of the index; BM25 scores as over the whole index, filtered to them."""
        allowed = set(doc_ids)
        rows = [i for i, c in enumerate(self.store.chunks) if c.doc_id in allowed]
        if not rows or not query.strip():
            return []
        vector = self.embedder.encode_remembered([query])[0]
        scores = self.store.vectors[rows] @ vector
        dense = sorted(zip(rows, map(float, scores), strict=True), key=lambda r: -r[1])
        lexical = self.store.lexical_search(query, len(rows), allowed)
        return self._ranked(vector, dict(dense), dense, lexical, k)

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        return self.store.lexical_search(query, min(n, len(self.store)))

    def _ranked(self, vector: np.ndarray, cosine: dict[int, float], dense: list[tuple[int, float]],
                lexical: list[tuple[int, float]], k: int) -> list[Passage]:
        fused = fuse(cosine, dense, lexical, self.fusion, self.dense_weight)
        order = sorted(fused, key=fused.get, reverse=True)
        if self.doc_score == "document":
            order = self._by_document(order, vector, cosine, lexical)
        return [self._passage(r, cosine[r]) for r in order[:k]]

    def _by_document(self, order: list[int], vector: np.ndarray, cosine: dict[int, float],
                     lexical: list[tuple[int, float]]) -> list[int]:
        """``order`` regrouped by document, the documents ranked as wholes. Dense scores
        are normalised over the chunks' range, as in the chunks' fusion: normalised over
        the few documents of a small index, the dense side would swamp the lexical one."""
        chunks = self.store.chunks
        doc_ids = list(dict.fromkeys(chunks[r].doc_id for r in order))
        rows_of = self._rows_by_document()
        dense = {d: document_cosine(self.store.vectors[rows_of[d]], vector) for d in doc_ids}
        best_bm25: dict[str, float] = {}
        for row, score in lexical:
            doc_id = chunks[row].doc_id
            best_bm25[doc_id] = max(best_bm25.get(doc_id, 0.0), score)
        fused = fuse(dense, _best_first(dense), _best_first(best_bm25), self.fusion,
                     self.dense_weight, scale=(min(cosine.values()), max(cosine.values())))
        rank = {d: i for i, d in enumerate(sorted(doc_ids, key=fused.get, reverse=True))}
        return sorted(order, key=lambda r: rank[chunks[r].doc_id])  # stable: chunk order kept

    def _rows_by_document(self) -> dict[str, list[int]]:
        if self._rows_of is None:
            rows_of: dict[str, list[int]] = {}
            for row, chunk in enumerate(self.store.chunks):
                rows_of.setdefault(chunk.doc_id, []).append(row)
            self._rows_of = rows_of
        return self._rows_of

    def _passage(self, row: int, score: float) -> Passage:
        chunk = self.store.chunks[row]
        document = self.store.documents[chunk.doc_id]
        return Passage(chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, text=chunk.text, score=score,
                       title=document.title, source=document.source, start=chunk.start,
                       end=chunk.end, page=chunk.page, date=document.date)


def fuse(cosine: dict[Any, float], dense: list[tuple[Any, float]], lexical: list[tuple[Any, float]],
         fusion: str = "convex", dense_weight: float = 0.75,
         scale: tuple[float, float] | None = None) -> dict[Any, float]:
    """Fused score per hit (a row, a chunk id or a document): every search backend ranks
    alike. ``scale``: the (low, high) cosines to normalise by, else those of ``cosine``."""
    if fusion == "rrf":
        return _rrf([(dense_weight, dense), (1 - dense_weight, lexical)])
    low, high = scale or (min(cosine.values()), max(cosine.values()))
    top_lexical = max((s for _, s in lexical), default=0.0) or 1.0
    bm25 = dict(lexical)
    return {r: dense_weight * (c - low) / (high - low + 1e-9)
            + (1 - dense_weight) * bm25.get(r, 0.0) / top_lexical
            for r, c in cosine.items()}


def document_cosine(vectors: np.ndarray, query: np.ndarray,
                    mean_share: float = MEAN_VECTOR_SHARE) -> float:
    """A document's dense score from its chunks' unit vectors: its best chunk's cosine,
    mixed with the cosine of their mean direction (what the document as a whole is about)."""
    cosines = vectors @ query
    total = vectors.sum(axis=0)
    norm = float(np.linalg.norm(total))
    whole = float(total @ query) / norm if norm else 0.0
    return (1 - mean_share) * float(cosines.max()) + mean_share * whole


def _best_first(scores: dict[Any, float]) -> list[tuple[Any, float]]:
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def _rrf(rankings: list[tuple[float, list[tuple[Any, float]]]]) -> dict[Any, float]:
    fused: dict[Any, float] = {}
    for weight, ranking in rankings:
        for rank, (row, _) in enumerate(ranking):
            fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank + 1)
    return fused


def merge_neighbours(passages: list[Passage], documents: dict[str, Document]) -> list[Passage]:
    """Merge passages of one document that overlap into a single span.

    Chunks overlap by a sentence, so two retrieved neighbours would repeat it
    in the prompt; merged, the model reads the text once, in order, and the
    prompt stays short. A merged passage keeps the rank and id of its best part.
    """
    merged: list[Passage] = []
    for passage in passages:
        for i, kept in enumerate(merged):
            if kept.doc_id == passage.doc_id and passage.start < kept.end and kept.start < passage.end:
                start, end = min(kept.start, passage.start), max(kept.end, passage.end)
                text = documents[kept.doc_id].text[start:end]
                score = max(kept.score, passage.score)
                merged[i] = replace(kept, start=start, end=end, text=text, score=score)
                break
        else:
            merged.append(passage)
    return merged
