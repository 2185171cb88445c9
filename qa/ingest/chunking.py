"""Sentence-aware chunking that keeps every chunk's span in its source.

Chunks pack whole sentences up to the embedder's word-piece limit and repeat
the last sentence(s) of their predecessor, so a fact on a boundary is whole in
at least one chunk. ``chunk.text == document.text[chunk.start:chunk.end]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from qa.ingest.documents import file_name_title
from qa.types import Chunk, Document

BatchTokenCounter = Callable[[list[str]], list[int]]

# A sentence ends at . ! ? or … (optionally followed by a closing quote or
# bracket) before whitespace and an upper-case letter, digit or opening quote.
# A sentence ends at a stop followed by a capital or a digit, or by a line break whatever
# follows it (a "system:" line after a sentence is a sentence of its own).
_SENTENCE_END = re.compile(r"(?<=[.!?…])([\"'”’)\]]*)(?:[ \t]*\n\s*|\s+(?=[\"'“‘(\[]?[A-Z0-9]))")
_PARAGRAPH = re.compile(r"\n\s*\n")
# Abbreviations that end with a period but do not end a sentence.
_ABBREVIATIONS = re.compile(
    r"\b(?:Mr|Mrs|Ms|Dr|Prof|Sen|Rep|Gen|Col|St|Jr|Sr|U\.S|U\.N|No|vs|etc|e\.g|i\.e)\.$"
)


@dataclass(frozen=True)
class ChunkingConfig:
    max_tokens: int = 64
    overlap_sentences: int = 1
    # Embed and search each chunk with its document's title in front: a chunk
    # deep in a document rarely repeats what the document is about.
    with_title: bool = True
    # ...also when the title is only the file's name (a guess: "budget memo", or an id).
    file_name_title: bool = True

    def as_dict(self) -> dict[str, int]:
        """Recorded in the manifest; ``file_name_title`` only when off, so the indexes
        made before it existed keep their chunking (and are not embedded again)."""
        recorded = {"max_tokens": self.max_tokens, "overlap_sentences": self.overlap_sentences,
                    "with_title": int(self.with_title)}
        return recorded if self.file_name_title else {**recorded, "file_name_title": 0}

    @classmethod
    def from_dict(cls, raw: dict[str, int]) -> ChunkingConfig:
        """The chunking an index records in its manifest."""
        return cls(int(raw["max_tokens"]), int(raw["overlap_sentences"]), bool(raw.get("with_title", 0)),
                   bool(raw.get("file_name_title", 1)))


TITLE_WORDS = 24  # a longer title is cut so the chunk still fits the embedder


def search_text(title: str, chunk_text: str, with_title: bool = True) -> str:
    """What is embedded and searched for a chunk (the chunk itself is what is cited)."""
    if not with_title or not title:
        return chunk_text
    return f"{' '.join(title.split()[:TITLE_WORDS])}. {chunk_text}"


def document_search_text(document: Document, chunk_text: str, config: ChunkingConfig) -> str:
    """``search_text`` with the document's title as the config says."""
    title = document.title
    if not config.file_name_title and title == file_name_title(Path(document.source)):
        title = ""
    return search_text(title, chunk_text, config.with_title)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text[start:end]``, whitespace trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _split(text, start, end, _PARAGRAPH):
        pieces = _split(text, p_start, p_end, _SENTENCE_END)
        spans.extend(_merge_abbreviations(text, pieces))
    return spans


def chunk_document(
    document: Document, count_tokens: BatchTokenCounter, config: ChunkingConfig
) -> list[Chunk]:
    """Chunks of the document body, each within ``config.max_tokens`` word pieces."""
    spans = sentence_spans(document.text, document.body_start)
    spans = _split_long_sentences(document.text, spans, count_tokens, config.max_tokens)
    sizes = count_tokens([document.text[s:e] for s, e in spans]) if spans else []
    groups = _pack(sizes, config.max_tokens - 2, config.overlap_sentences)  # [CLS] and [SEP]
    chunks = []
    for number, (first, last) in enumerate(groups):
        start, end = spans[first][0], spans[last][1]
        chunks.append(
            Chunk(
                chunk_id=f"{document.doc_id}:{number}",
                doc_id=document.doc_id,
                text=document.text[start:end],
                start=start,
                end=end,
                page=document.page_at(start),
            )
        )
    return chunks


def _split(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans, cursor = [], start
    for match in pattern.finditer(text, start, end):
        closing = len(match.group(1)) if match.groups() else 0
        spans.append((cursor, match.start() + closing))
        cursor = match.end()
    spans.append((cursor, end))
    return [t for t in (_trim(text, s, e) for s, e in spans) if t]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _merge_abbreviations(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for span in spans:
        if merged and _ABBREVIATIONS.search(text[merged[-1][0] : merged[-1][1]]):
            merged[-1] = (merged[-1][0], span[1])
        else:
            merged.append(span)
    return merged


def _split_long_sentences(
    text: str, spans: list[tuple[int, int]], count_tokens: BatchTokenCounter, max_tokens: int
) -> list[tuple[int, int]]:
    """A sentence over the limit becomes word windows that each fit."""
    sizes = count_tokens([text[s:e] for s, e in spans]) if spans else []
    out: list[tuple[int, int]] = []
    for (start, end), size in zip(spans, sizes, strict=True):
        if size <= max_tokens - 2:
            out.append((start, end))
            continue
        words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
        per_window = max(1, int(len(words) * (max_tokens - 2) / size * 0.9))
        for i in range(0, len(words), per_window):
            window = words[i : i + per_window]
            out.append((window[0][0], window[-1][1]))
    return out


def _pack(sizes: list[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy groups of consecutive sentences (first, last), overlapping by ``overlap``."""
    groups: list[tuple[int, int]] = []
    first = 0
    while first < len(sizes):
        last, total = first, sizes[first]
        while last + 1 < len(sizes) and total + sizes[last + 1] <= budget:
            last += 1
            total += sizes[last]
        groups.append((first, last))
        if last + 1 >= len(sizes):
            break
        first = max(first + 1, last + 1 - overlap)
    return groups


def chunk_documents(
    documents: Iterable[Document], count_tokens: BatchTokenCounter, config: ChunkingConfig
) -> list[Chunk]:
    return [c for d in documents for c in chunk_document(d, count_tokens, config)]
