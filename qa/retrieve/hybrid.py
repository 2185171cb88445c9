"""Hybrid retrieval: dense (FAISS over MiniLM vectors) fused with BM25 (tantivy, qa/index/lexical.py).

Dense search finds paraphrases; BM25 finds rare names and numbers that a small
embedder blurs. Their scores are fused (a weighted sum of normalised scores,
or reciprocal rank fusion).
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


class Retriever:
    """``fusion`` is "convex" (weighted sum of min-max normalised scores, the
    default: it keeps how much better the best hit is) or "rrf" (ranks only)."""

    def __init__(self, store: IndexStore, embedder: Embedder, candidates: int = 30,
                 fusion: str = "convex", dense_weight: float = 0.75):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.fusion = fusion
        self.dense_weight = dense_weight

    def retrieve(self, query: str, k: int = 10) -> list[Passage]:
        if not len(self.store) or not query.strip():
            return []
        n = max(k, self.candidates)
        vector = self.embedder.encode_remembered([query])[0]
        dense = self.store.search(vector, n)
        lexical = self.lexical(query, n)
        rows = {r for r, _ in dense} | {r for r, _ in lexical}
        cosine = {r: float(np.dot(self.store.vectors[r], vector)) for r in rows}
        fused = self._fuse(cosine, dense, lexical)
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [self._passage(r, cosine[r]) for r in best]

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
        cosine = dict(dense)
        fused = self._fuse(cosine, dense, lexical)
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [self._passage(r, cosine[r]) for r in best]

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        return self.store.lexical_search(query, min(n, len(self.store)))

    def _fuse(self, cosine: dict[int, float], dense: list[tuple[int, float]],
              lexical: list[tuple[int, float]]) -> dict[int, float]:
        return fuse(cosine, dense, lexical, self.fusion, self.dense_weight)

    def _passage(self, row: int, score: float) -> Passage:
        chunk = self.store.chunks[row]
        document = self.store.documents[chunk.doc_id]
        return Passage(chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, text=chunk.text, score=score,
                       title=document.title, source=document.source, start=chunk.start,
                       end=chunk.end, page=chunk.page, date=document.date)


def fuse(cosine: dict[Any, float], dense: list[tuple[Any, float]], lexical: list[tuple[Any, float]],
         fusion: str = "convex", dense_weight: float = 0.75) -> dict[Any, float]:
    """Fused score per hit (a row or a chunk id): every search backend ranks alike."""
    if fusion == "rrf":
        return _rrf([(dense_weight, dense), (1 - dense_weight, lexical)])
    low, high = min(cosine.values()), max(cosine.values())
    top_lexical = max((s for _, s in lexical), default=0.0) or 1.0
    bm25 = dict(lexical)
    return {r: dense_weight * (c - low) / (high - low + 1e-9)
            + (1 - dense_weight) * bm25.get(r, 0.0) / top_lexical
            for r, c in cosine.items()}


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
