"""``qa index --repair``: rebuild a damaged index from whatever survives of it.

Sources, in order: the document texts the index stores (any segment or older
generation still on disk, line by line, so one bad record costs one document), then the original
files the index names, then the files uploaded into ``<index>/uploads``. The
report says how many came from each and names what nothing could bring back.
When something is lost, the damaged files are kept in ``<index>/damaged-<time>/``
instead of being replaced, so a later attempt can still read them.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from qa.errors import DocumentError, IndexUnavailableError, NoDocumentsError
from qa.index.indexing import (
    Indexed,
    apply_and_save,
    chunking_config,
    index_lock,
    open_compatible,
)
from qa.index.store import MANIFEST, IndexStore, index_exists
from qa.ingest.documents import document_id, iter_files, load_document
from qa.models.embedder import Embedder
from qa.settings import Settings
from qa.types import Document
from qa.web.uploads import uploads_dir

log = logging.getLogger(__name__)

_DOCUMENT_FIELDS = {f.name for f in fields(Document)}


@dataclass(frozen=True)
class RepairReport:
    from_index: int  # documents whose stored text was read back
    from_files: int  # ... re-read from their original file
    from_uploads: int  # ... found in the uploads folder only
    lost: tuple[str, ...]  # sources of documents nothing could bring back
    chunks_embedded: int
    total_chunks: int
    kept_damaged: Path | None = None

    def summary(self) -> str:
        parts = [f"{self.from_index} documents from the texts the index stores",
                 f"{self.from_files} from their original files",
                 f"{self.from_uploads} from the uploads folder"]
        text = f"recovered {', '.join(parts)}; {self.chunks_embedded} chunks embedded, " \
               f"{self.total_chunks} in the index"
        if self.lost:
            text += (f". LOST {len(self.lost)} (no stored text, file gone): "
                     + ", ".join(Path(s).name for s in self.lost))
        if self.kept_damaged:
            text += f"; the damaged files are kept in {self.kept_damaged}"
        return text


@dataclass
class _Salvage:
    documents: dict[str, Document] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # every document the index knew of


def repair_index(index_dir: Path, embedder: Embedder,
                 settings: Settings) -> Indexed[IndexStore, RepairReport]:
    index_dir = Path(index_dir)
    with index_lock(index_dir):
        return _repair(index_dir, embedder, settings)


def _repair(index_dir: Path, embedder: Embedder, settings: Settings) -> Indexed[IndexStore, RepairReport]:
    empty = IndexStore.empty(embedder.name, embedder.dimension, chunking_config(settings).as_dict())
    try:  # an index that opens keeps its vectors: only what is missing is embedded
        if not index_exists(index_dir):
            raise IndexUnavailableError(f"{index_dir} has no manifest")
        store, carried = open_compatible(index_dir, embedder, settings, rebuild=False)
        salvage = _Salvage({**store.documents, **{d.doc_id: d for d in carried}})
        salvage.sources = {k: d.source for k, d in salvage.documents.items()}
        store = empty if carried else store
    except IndexUnavailableError as error:
        log.warning("%s", error)
        store, salvage = empty, _salvage(index_dir)
    from_index = len(salvage.documents)
    from_files = _from_original_files(salvage)
    from_uploads = _from_uploads(salvage, index_dir)
    lost = tuple(sorted(s for k, s in salvage.sources.items() if k not in salvage.documents))
    if not salvage.documents:
        raise NoDocumentsError(
            f"Nothing in {index_dir} could be recovered (no stored text, original file or upload). "
            f"Index your documents again: `qa index <your documents> --index {index_dir} --rebuild`.")
    kept: list[Path | None] = [None]

    def keep_damaged() -> None:  # only once the documents are embedded: a failure keeps all
        kept[0] = _keep_damaged(index_dir) if lost else None

    indexed = apply_and_save(store, list(salvage.documents.values()), index_dir, embedder, settings,
                                   prune=False, checkpoints=False, reuse=False, before_save=keep_damaged)
    report = indexed.report
    return Indexed(indexed.store, RepairReport(from_index, from_files, from_uploads, lost,
                                               report.chunks_embedded, report.total_chunks, kept[0]))


def _salvage(index_dir: Path) -> _Salvage:
    """Documents from every readable record of every documents file, newest generation
    first; the manifest (if it parses) names the documents that should be there."""
    salvage = _Salvage()
    manifest = _read_json(index_dir / MANIFEST)
    for doc_id, meta in (manifest.get("documents") or {}).items():
        if isinstance(meta, dict) and isinstance(meta.get("source"), str):
            salvage.sources[doc_id] = meta["source"]
    files = sorted([*index_dir.glob("segment-*.jsonl"), *index_dir.glob("documents-*.jsonl")],
                   key=_generation, reverse=True)
    for path in files:
        for record in _records(path):
            document = _document(record.get("document", record))  # a segment line, or a version 1 one
            if document is not None and document.doc_id not in salvage.documents:
                salvage.documents[document.doc_id] = document
                salvage.sources.setdefault(document.doc_id, document.source)
    return salvage


def _from_original_files(salvage: _Salvage) -> int:
    found = 0
    for doc_id, source in salvage.sources.items():
        if doc_id in salvage.documents or not Path(source).is_file():
            continue
        try:
            salvage.documents[doc_id] = load_document(source)
            found += 1
        except DocumentError as error:
            log.warning("could not recover %s from its file: %s", source, error)
    return found


def _from_uploads(salvage: _Salvage, index_dir: Path) -> int:
    folder = uploads_dir(index_dir)
    found = 0
    for path in iter_files([folder]) if folder.is_dir() else []:
        if document_id(path) in salvage.documents:
            continue
        try:
            document = load_document(path)
        except DocumentError as error:
            log.warning("skipped %s: %s", path, error)
            continue
        salvage.documents[document.doc_id] = document
        salvage.sources.setdefault(document.doc_id, document.source)
        found += 1
    return found


def _keep_damaged(index_dir: Path) -> Path:
    """Copy the index's files aside before the repaired index replaces them."""
    target = index_dir / f"damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(exist_ok=True)
    for path in index_dir.iterdir():
        if path.is_file() and not path.name.startswith("."):
            shutil.copy2(path, target / path.name)
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _records(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` that parses as a record; bad lines and bad bytes are skipped."""
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def _document(record: dict[str, Any]) -> Document | None:
    raw = {k: v for k, v in record.items() if k in _DOCUMENT_FIELDS}
    if not all(isinstance(raw.get(k), str) for k in ("doc_id", "title", "source", "text", "content_hash")):
        return None
    if not raw["text"].strip():
        return None
    raw["page_starts"] = tuple(raw.get("page_starts") or ())
    try:
        return Document(**raw)
    except TypeError:
        return None


def _generation(path: Path) -> int:
    digits = path.name.split(".")[0].rpartition("-")[2]
    return int(digits) if digits.isdigit() else -1
