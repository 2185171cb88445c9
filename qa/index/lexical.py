"""The lexical (BM25) side of hybrid retrieval: a tantivy index next to the vectors.

Tantivy keeps its own segments on disk, so adding or deleting one document's
chunks costs about that document, and opening the index maps its files
instead of re-tokenising every chunk. Text is tokenised here (lower-cased,
English stop words dropped, Snowball-stemmed, as bm25s does) and handed to
tantivy as whitespace-separated words, so index and queries always agree.

The index in ``<index>/lexical/`` holds one marker document carrying the store
generation it matches. A reader opening the index between this commit and
the manifest's replacement sees a mismatch and waits for the manifest; a
crash between the two leaves one for good, which the store repairs (under the
writer's lock only) by rebuilding the lexical index from the chunks it holds.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import IndexUnavailableError
from qa.verification import english_stemmer

FOLDER = "lexical"
_MARKER = "\x00generation"  # the doc_id of the marker document (no file has this id)
_WRITER_HEAP = 50_000_000
_LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class LexicalChunk:
    """What the lexical index needs of a chunk: its id, its document, its searchable text."""

    chunk_id: str
    doc_id: str
    text: str


def tokens(texts: list[str]) -> list[list[str]]:
    """Stemmed, stop-worded, lower-cased words (the bm25s tokeniser, strings not ids)."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    cleaned = [re.sub(r"[’‘]", "'", t) for t in texts]
    return bm25s.tokenize(cleaned, stopwords="en", stemmer=english_stemmer(), return_ids=False,
                          show_progress=False)


class LexicalIndex:
    """BM25 over chunks, searched through one tantivy searcher (a snapshot: a commit
    made meanwhile is seen by the next ``LexicalIndex``, not this one)."""

    def __init__(self, index: Any):
        self._index = index
        self._searcher = index.searcher()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path) -> LexicalIndex | None:
        """The index in ``folder``, or None when there is none or it cannot be read."""
        import tantivy

        path = folder / FOLDER
        try:
            if not path.is_dir() or not tantivy.Index.exists(str(path)):
                return None
            return cls(tantivy.Index.open(str(path)))
        except (ValueError, OSError):
            return None

    @classmethod
    def in_memory(cls, chunks: Iterable[LexicalChunk]) -> LexicalIndex:
        import tantivy

        index = tantivy.Index(_schema())
        writer = index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        _add(writer, list(chunks))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        return cls(index)

    # -- searching ----------------------------------------------------------------------

    def search(self, query: str, n: int, doc_ids: Collection[str] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the ``n`` best chunks (of the documents ``doc_ids`` only,
        if given: the same scores as over the whole index, filtered inside tantivy)."""
        import tantivy

        words = list(dict.fromkeys(tokens([query])[0]))
        if not words or n <= 0:
            return []
        schema = self._index.schema
        terms = [(tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", w)) for w in words]
        if doc_ids is not None:
            within = tantivy.Query.term_set_query(schema, "doc_id", list(doc_ids))
            terms.append((tantivy.Occur.Must, tantivy.Query.const_score_query(within, 0.0)))
        searcher = self._searcher
        hits = searcher.search(tantivy.Query.boolean_query(terms), n).hits
        found = []
        for score, address in hits:
            chunk_id = searcher.doc(address)["chunk_id"]
            if chunk_id and score > 0:
                found.append((chunk_id[0], float(score)))
        return found

    def generation(self) -> int | None:
        """The store generation this index was last committed for."""
        import tantivy

        query = tantivy.Query.term_query(self._index.schema, "doc_id", _MARKER)
        hits = self._searcher.search(query, 1).hits
        if not hits:
            return None
        values = self._searcher.doc(hits[0][1])["chunk_id"]
        return int(values[0]) if values else None

    @property
    def count(self) -> int:
        """Chunks indexed (the marker excluded)."""
        return self._searcher.num_docs - (self.generation() is not None)


def write(folder: Path, generation: int, remove: Iterable[str], add: list[LexicalChunk],
          rebuild: bool = False) -> LexicalIndex:
    """Delete the chunks of the documents in ``remove``, add ``add``, and commit them
    together with the marker for ``generation``: one atomic tantivy commit.
    ``rebuild`` starts from an empty index (``add`` must then hold every chunk)."""
    import tantivy

    path = folder / FOLDER
    path.mkdir(parents=True, exist_ok=True)
    index = (tantivy.Index.open(str(path)) if tantivy.Index.exists(str(path)) and not rebuild
             else tantivy.Index(_schema(), path=str(path), reuse=False))
    writer = _writer(index, folder)
    try:  # nothing is visible until the commit; an exception drops the writer and its lock
        if rebuild:
            writer.delete_all_documents()
        for doc_id in {*remove, _MARKER}:
            writer.delete_documents_by_term("doc_id", doc_id)
        _add(writer, add)
        writer.add_document(tantivy.Document(chunk_id=str(generation), doc_id=_MARKER, text=""))
        writer.commit()
    finally:
        writer.wait_merging_threads()  # also releases the writer's lock
    index.reload()
    return LexicalIndex(index)


def _writer(index: Any, folder: Path) -> Any:
    """Tantivy's one writer, waiting a little for another save (this process or another) to end."""
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    while True:
        try:
            return index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        except ValueError as error:
            if "LockBusy" not in str(error) or time.monotonic() > deadline:
                raise IndexUnavailableError(
                    f"Another process is writing the index in {folder} ({error}). Try again when "
                    "it has finished; if none is running, delete the file .tantivy-writer.lock "
                    f"in {folder / FOLDER}.") from error
            time.sleep(0.1)


def _add(writer: Any, chunks: list[LexicalChunk]) -> None:
    import tantivy

    words = tokens([c.text for c in chunks]) if chunks else []
    for chunk, chunk_words in zip(chunks, words, strict=True):
        writer.add_document(tantivy.Document(chunk_id=chunk.chunk_id, doc_id=chunk.doc_id,
                                             text=" ".join(chunk_words)))


def _schema() -> Any:
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_text_field("chunk_id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("doc_id", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", stored=False, tokenizer_name="whitespace", index_option="freq")
    return builder.build()
