"""Uploaded files: checked, given safe names, and stored next to the index.

Uploads are copied to ``<index_dir>/uploads/`` so they outlive the web server's
temporary files and the index's source paths stay valid. A name is reduced to
its last path component and safe characters, so no upload can write outside
that folder; uploading a file with the same name again replaces the earlier
version (the same document, updated).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from qa.errors import DocumentError, UploadError
from qa.ingest.documents import SUPPORTED_SUFFIXES, load_document

UPLOADS = "uploads"
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Refusal:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def uploads_dir(index_dir: Path) -> Path:
    return (Path(index_dir) / UPLOADS).resolve()


def safe_name(name: str) -> str:
    """The last path component, letters/digits/``._-`` only, no leading dots, suffix kept."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/")).split("/")[-1]
    stem, suffix = os.path.splitext(base)
    stem = _UNSAFE.sub("_", stem).strip("._-")[:100] or "document"
    suffix = _UNSAFE.sub("", suffix).lower()
    return stem + suffix


def check_upload(path: Path, max_bytes: int) -> Refusal | None:
    """Why this upload is refused (type, size, unreadable), or None to accept it."""
    name = Path(path).name
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(SUPPORTED_SUFFIXES)
        return Refusal(name, f"unsupported file type {suffix or '(none)'}; upload {kinds} files")
    size = Path(path).stat().st_size
    if size > max_bytes:
        return Refusal(name, f"{size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB upload limit")
    try:
        load_document(path)
    except DocumentError as error:
        return Refusal(name, f"cannot be read ({error})")
    return None


def store_upload(path: Path, folder: Path) -> Path:
    """Copy an accepted upload into ``folder`` under its safe name, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    target = (folder / safe_name(Path(path).name)).resolve()
    if target.parent != folder.resolve():
        raise UploadError(f"{Path(path).name} cannot be stored: its name leads outside {folder}; "
                          "rename the file and upload it again.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=target.suffix)
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def is_upload(source: str, folder: Path) -> bool:
    """True for a document stored by an upload (so removing it may delete the file)."""
    try:
        return Path(source).resolve().parent == folder.resolve()
    except OSError:
        return False
