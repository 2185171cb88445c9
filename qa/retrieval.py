"""Hybrid retrieval: dense (FAISS over MiniLM vectors) fused with BM25.

Dense search finds paraphrases; BM25 finds rare names and numbers that a small
embedder blurs. Their rankings are fused with weighted reciprocal rank fusion.
``Passage.score`` is the dense cosine similarity, the calibrated signal used to
decide that nothing relevant was found; the list order is the fused rank.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import replace
from typing import Any

import numpy as np

from qa.embedding import Embedder
from qa.store import IndexStore
from qa.types import Document, Passage

RRF_K = 60


class Retriever:
    def __init__(self, store: IndexStore, embedder: Embedder, candidates: int = 30,
                 dense_weight: float = 1.0, lexical_weight: float = 1.0):
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight
        self._bm25: Any = None
        self._lock = threading.Lock()

    def retrieve(self, query: str, k: int = 10) -> list[Passage]:
        if not len(self.store) or not query.strip():
            return []
        n = max(k, self.candidates)
        dense = self.dense(query, n)
        lexical = self.lexical(query, n)
        cosine = dict(dense)
        fused = self._fuse(dense, lexical)
        rows = sorted(fused, key=fused.get, reverse=True)[:k]
        missing = [r for r in rows if r not in cosine]
        if missing:
            cosine.update(self._cosines(query, missing))
        return [self._passage(r, cosine[r]) for r in rows]

    def dense(self, query: str, n: int) -> list[tuple[int, float]]:
        vector = self.embedder.encode([query])[0]
        return self.store.search(vector, n)

    def lexical(self, query: str, n: int) -> list[tuple[int, float]]:
        bm25 = self._get_bm25()
        tokens = _tokenize([query], as_ids=False)
        if bm25 is None or not tokens[0]:
            return []
        n = min(n, len(self.store))
        rows, scores = bm25.retrieve(tokens, k=n, show_progress=False, n_threads=1)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> dict[int, float]:
        fused: dict[int, float] = {}
        for weight, ranking in ((self.dense_weight, dense), (self.lexical_weight, lexical)):
            for rank, (row, _) in enumerate(ranking):
                fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank + 1)
        return fused

    def _cosines(self, query: str, rows: list[int]) -> dict[int, float]:
        vector = self.embedder.encode([query])[0]
        return {r: float(np.dot(self.store.vectors[r], vector)) for r in rows}

    def _passage(self, row: int, score: float) -> Passage:
        chunk = self.store.chunks[row]
        document = self.store.documents[chunk.doc_id]
        return Passage(chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, text=chunk.text, score=score,
                       title=document.title, source=document.source, start=chunk.start,
                       end=chunk.end, page=chunk.page, date=document.date)

    def _get_bm25(self) -> Any:
        with self._lock:
            if self._bm25 is None and len(self.store):
                import bm25s

                corpus = _tokenize([c.text for c in self.store.chunks])
                bm25 = bm25s.BM25()
                bm25.index(corpus, show_progress=False)
                self._bm25 = bm25
        return self._bm25


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


_STEMMER: Any = None


def _tokenize(texts: list[str], as_ids: bool = True) -> Any:
    """Stemmed, stop-worded tokens; queries as strings so unknown words are ignored."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    cleaned = [re.sub(r"[’‘]", "'", t) for t in texts]
    return bm25s.tokenize(cleaned, stopwords="en", stemmer=_STEMMER, return_ids=as_ids,
                          show_progress=False)
