"""Load briefing files into ``Document`` records.

Supported: .txt, .md, .pdf (text layer, page offsets kept), .docx, .html/.htm.
A file that cannot be read is skipped with a warning naming it; the rest load.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from qa.errors import DocumentError, NoDocumentsError
from qa.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
# The briefing header: "date 2021-10-20 <headline>" on the first line.
_HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+(.+?)\s*$", re.IGNORECASE)
_MARKDOWN_TITLE = re.compile(r"^\s*#\s+(.+?)\s*$")


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files under ``paths`` (recursively, sorted); hidden files are ignored."""
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in rel):
                    yield child
        elif path.is_file():
            yield path
        else:
            log.warning("skipped %s: no such file or folder", path)


def load_documents(paths: Iterable[str | Path]) -> list[Document]:
    """Every readable document under ``paths``; raise if there is none at all."""
    paths = list(paths)
    documents, skipped = [], []
    for file in iter_files(paths):
        try:
            documents.append(load_document(file))
        except DocumentError as error:
            skipped.append(file)
            log.warning("skipped %s: %s", file, error)
    if not documents:
        where = ", ".join(str(p) for p in paths) or "(nothing given)"
        detail = f" ({len(skipped)} file(s) skipped as unreadable or unsupported)" if skipped else ""
        raise NoDocumentsError(
            f"No readable documents in {where}{detail}. "
            f"Add {', '.join(SUPPORTED_SUFFIXES)} files and index again."
        )
    return documents


def load_document(path: str | Path) -> Document:
    """One file as a ``Document``; raise ``DocumentError`` if it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"unsupported file type {suffix or '(none)'}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DocumentError(f"cannot read file: {error.strerror or error}") from error
    reader = _READERS[suffix]
    try:
        text, page_starts = reader(data)
    except DocumentError:
        raise
    except Exception as error:  # parsers raise many types on malformed files
        raise DocumentError(f"cannot parse {suffix} file: {error}") from error
    if not text.strip():
        raise DocumentError("no text found")
    return _make_document(path, data, text, page_starts)


def document_id(path: Path) -> str:
    """Stable across runs: derived from the resolved path, not the content."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]


def _make_document(path: Path, data: bytes, text: str, page_starts: tuple[int, ...]) -> Document:
    title, date, body_start = _title_and_date(text, path)
    return Document(
        doc_id=document_id(path),
        title=title,
        source=str(path),
        text=text,
        content_hash=hashlib.sha256(data).hexdigest(),
        date=date,
        body_start=body_start,
        page_starts=page_starts,
    )


def _title_and_date(text: str, path: Path) -> tuple[str, str | None, int]:
    """The header line, when present, gives date and headline and is not body."""
    first_line, _, _ = text.partition("\n")
    header = _HEADER.match(first_line)
    if header:
        return header.group(2), header.group(1), min(len(first_line) + 1, len(text))
    md_title = _MARKDOWN_TITLE.match(first_line)
    if md_title:
        return md_title.group(1), None, 0
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name, None, 0


def _read_text(data: bytes) -> tuple[str, tuple[int, ...]]:
    if b"\x00" in data[:8192]:
        raise DocumentError("binary content in a text file")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return _normalise_newlines(data.decode(encoding)), ()
        except UnicodeDecodeError:
            continue
    return _normalise_newlines(data.decode("latin-1")), ()


def _read_pdf(data: bytes) -> tuple[str, tuple[int, ...]]:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    parts, starts, offset = [], [], 0
    for page in reader.pages:
        page_text = _normalise_newlines(page.extract_text() or "").strip() + "\n\n"
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text)
    return "".join(parts), tuple(starts)


def _read_docx(data: bytes) -> tuple[str, tuple[int, ...]]:
    import io

    import docx

    document = docx.Document(io.BytesIO(data))
    paragraphs = [p.text.strip() for p in document.paragraphs if p.text.strip()]
    return "\n\n".join(paragraphs), ()


def _read_html(data: bytes) -> tuple[str, tuple[int, ...]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    leaves = [b for b in soup.find_all(_BLOCK_TAGS) if not b.find(_BLOCK_TAGS)]
    blocks = [" ".join(b.get_text("").split()) for b in leaves]
    blocks = [b for b in blocks if b]
    if not blocks:
        blocks = [line.strip() for line in soup.get_text("\n").splitlines() if line.strip()]
    text = "\n\n".join(blocks)
    return (f"# {title}\n\n{text}" if title else text), ()


_BLOCK_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre", "td"]


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_READERS = {
    ".txt": _read_text,
    ".md": _read_text,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".html": _read_html,
    ".htm": _read_html,
}
