"""The embedded chunks of an unfinished indexing run, kept beside the index.

Embedding is the slow part of indexing. Each batch of vectors is appended to
``<index>/resume/`` as its own file (written to a temporary name, then renamed,
so a killed process leaves whole files only), keyed by a hash of the embedder
and the exact text embedded. A run killed at any moment, even inside one large
document, finds the batches it finished and embeds only the rest: at most the
last batch is lost. The journal is independent of the index files, so it also
covers ``--rebuild``, a repair and re-embedding for another model; it is
emptied once the index holding its vectors is saved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

RESUME = "resume"


class EmbeddingJournal:
    def __init__(self, index_dir: Path, embedder: str):
        self.folder = Path(index_dir) / RESUME
        self.embedder = embedder
        self._known: dict[str, np.ndarray] | None = None

    def key(self, text: str) -> str:
        return hashlib.sha1(f"{self.embedder}\n{text}".encode()).hexdigest()

    def known(self) -> dict[str, np.ndarray]:
        """Vectors of earlier runs, by key; an unreadable batch file is skipped."""
        if self._known is None:
            self._known = {}
            for part in sorted(self.folder.glob("part-*.npz")):
                try:
                    with np.load(part, allow_pickle=False) as data:
                        self._known.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
                except Exception as error:  # a damaged batch only costs its re-embedding
                    log.warning("ignored %s: %s", part, error)
        return self._known

    def lookup(self, texts: list[str]) -> list[np.ndarray | None]:
        known = self.known()
        return [known.get(self.key(t)) for t in texts]

    def append(self, texts: list[str], vectors: np.ndarray) -> None:
        if not texts:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = np.array([self.key(t) for t in texts])
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, keys=keys, vectors=np.asarray(vectors, dtype=np.float32))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(name, self.folder / f"part-{_next_part(self.folder):06d}.npz")
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        self.known().update(zip(keys.tolist(), vectors, strict=True))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._known = None


def _next_part(folder: Path) -> int:
    numbers = [int(p.stem.split("-")[1]) for p in folder.glob("part-*.npz") if p.stem[5:].isdigit()]
    return max(numbers, default=0) + 1
