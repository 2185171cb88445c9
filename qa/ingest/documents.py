"""Load briefing files into ``Document`` records.

Supported: .txt, .md, .pdf (text layer, page offsets kept), .docx, .html/.htm.
A file that cannot be read is skipped with a warning naming it; the rest load.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from qa.errors import DocumentError, NoDocumentsError
from qa.types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".pdf", ".docx", ".html", ".htm")
# The briefing header: "date 2021-10-20 <headline>" on the first line.
_HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+(.+?)\s*$", re.IGNORECASE)
_MARKDOWN_TITLE = re.compile(r"^\s*#\s+(.+?)\s*$")
# A first line short enough to be a heading (PDF and docx without a title of their own).
_HEADING_WORDS = 16
_HEADING_CHARS = 120
# Titles that PDF and Office tools write for the user, which say nothing about the content.
_GENERATED_TITLE = re.compile(r"^(untitled|document\d*|microsoft word - .*|.*\.(docx?|pdf|txt))$",
                              re.IGNORECASE)

# The creation date python-docx's blank template carries: files made from it were not
# written then.
_TEMPLATE_DATE = "2013-12-23"


@dataclass(frozen=True)
class Parsed:
    """What a reader finds in a file: the text, page offsets, and the file's own title and
    date when its format has them (PDF metadata, docx core properties or heading)."""

    text: str
    page_starts: tuple[int, ...] = ()
    title: str | None = None
    date: str | None = None
    first_line_is_title: bool = False  # formats without markup for a title (PDF)


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
        parsed = reader(data)
    except DocumentError:
        raise
    except Exception as error:  # parsers raise many types on malformed files
        raise DocumentError(f"cannot parse {suffix} file: {error}") from error
    if not parsed.text.strip():
        raise DocumentError("no text found")
    return _make_document(path, data, replace(parsed, text=_blank_control_tokens(parsed.text)))


# Chat-template markup ("<|im_start|>", "<|endoftext|>", "[INST]") is never a briefing's text:
# written into one, it tries to open a turn of the model's conversation.
_CONTROL_TOKENS = re.compile(r"<\s*[|｜][^<>\n]{0,40}[|｜]\s*>|\[/?INST\]|<<\s*/?SYS\s*>>", re.IGNORECASE)


def _blank_control_tokens(text: str) -> str:
    """Each control token becomes as many spaces, so page offsets stay true."""
    return _CONTROL_TOKENS.sub(lambda m: " " * len(m.group()), text)


def document_id(path: Path) -> str:
    """Stable across runs: derived from the resolved path, not the content."""
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]


def _make_document(path: Path, data: bytes, parsed: Parsed) -> Document:
    title, date, body_start = _title_and_date(parsed, path)
    return Document(
        doc_id=document_id(path),
        title=title,
        source=str(path),
        text=parsed.text,
        content_hash=hashlib.sha256(data).hexdigest(),
        date=date,
        body_start=body_start,
        page_starts=parsed.page_starts,
    )


def _title_and_date(parsed: Parsed, path: Path) -> tuple[str, str | None, int]:
    """The briefing header line, when present, gives date and headline and is not body.
    Otherwise the file's own title (docx title or first heading, PDF metadata), a
    Markdown heading, a PDF's first line; the file name only when there is none."""
    text = parsed.text
    first_line = text.lstrip().partition("\n")[0].strip()
    header = _HEADER.match(text.partition("\n")[0])
    if header:
        return header.group(2), header.group(1), min(len(text.partition("\n")[0]) + 1, len(text))
    md_title = _MARKDOWN_TITLE.match(first_line)
    if parsed.title:
        return parsed.title, parsed.date, 0
    if md_title:
        return md_title.group(1), parsed.date, 0
    if parsed.first_line_is_title and _looks_like_heading(first_line):
        return first_line, parsed.date, 0
    return file_name_title(path), parsed.date, 0


def file_name_title(path: Path) -> str:
    """The title of a file that has none of its own: its name, as words."""
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def _looks_like_heading(line: str) -> bool:
    return bool(line) and len(line) <= _HEADING_CHARS and len(line.split()) <= _HEADING_WORDS


def _meaningful_title(title: str | None) -> str | None:
    """A metadata title worth showing: not empty, not a tool's placeholder or a file name."""
    title = " ".join((title or "").split())
    return title if title and not _GENERATED_TITLE.match(title) else None


# Characters text never holds: C0/C1 controls other than tab, newlines and form feed,
# and the replacement character a failed decode leaves. Random bytes decoded as
# latin-1 are about a quarter of them; a real text file, almost none.
_NOT_TEXT = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
MAX_NOT_TEXT_SHARE = 0.02


def _read_text(data: bytes) -> Parsed:
    if b"\x00" in data[:8192]:
        raise DocumentError("binary content in a text file (zero bytes)")
    text = _decode(data)
    share = len(_NOT_TEXT.findall(text)) / max(len(text), 1)
    if share > MAX_NOT_TEXT_SHARE:
        raise DocumentError(f"binary content in a text file ({share:.0%} of its characters are "
                            "control or undecodable characters); convert it to text first")
    return Parsed(_normalise_newlines(text))


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _read_pdf(data: bytes) -> Parsed:
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    parts, starts, offset = [], [], 0
    for page in reader.pages:
        page_text = _normalise_newlines(page.extract_text() or "").strip() + "\n\n"
        starts.append(offset)
        parts.append(page_text)
        offset += len(page_text)
    metadata = reader.metadata
    title = _meaningful_title(metadata.title) if metadata else None
    return Parsed("".join(parts), tuple(starts), title=title, date=_pdf_date(metadata),
                  first_line_is_title=True)


def _pdf_date(metadata: object) -> str | None:
    """The PDF's creation date; None when missing or malformed (many writers get it wrong)."""
    try:
        created = metadata.creation_date if metadata else None  # type: ignore[attr-defined]
    except ValueError:
        return None
    return created.date().isoformat() if created else None


def _read_docx(data: bytes) -> Parsed:
    import io

    import docx

    document = docx.Document(io.BytesIO(data))
    paragraphs = [p for p in document.paragraphs if p.text.strip()]
    properties = document.core_properties
    heading = next((p.text.strip() for p in paragraphs if _is_heading(p.style.name if p.style else "")),
                   None)
    title = _meaningful_title(properties.title) or heading
    when = properties.created or properties.modified
    date = when.date().isoformat() if when else None
    return Parsed("\n\n".join(p.text.strip() for p in paragraphs), title=title,
                  date=None if date == _TEMPLATE_DATE else date)


def _is_heading(style: str) -> bool:
    return style == "Title" or style.startswith("Heading")


def _read_html(data: bytes) -> Parsed:
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "template"]):
        tag.decompose()
    for hidden in soup.find_all(_is_hidden):  # what a reader of the page never sees is not its text
        hidden.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    leaves = [b for b in soup.find_all(_BLOCK_TAGS) if not b.find(_BLOCK_TAGS)]
    blocks = [" ".join(b.get_text("").split()) for b in leaves]
    blocks = [b for b in blocks if b]
    if not blocks:
        blocks = [line.strip() for line in soup.get_text("\n").splitlines() if line.strip()]
    text = "\n\n".join(blocks)
    return Parsed(f"# {title}\n\n{text}" if title else text)


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d])",
                           re.IGNORECASE)


def _is_hidden(tag: object) -> bool:
    attrs = getattr(tag, "attrs", None) or {}
    return "hidden" in attrs or bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))


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
