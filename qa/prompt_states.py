"""Evaluated prompt prefixes on disk, so a new process starts where the last one stopped.

A warmed document's state (the rules, examples and that document, evaluated) costs
~10 s of prefill on 2 cores and ~28 KB per token to keep. ``StateFiles`` writes a
warmed state once, named by the hash of its tokens up to a boundary (the end of a
documents block), and finds it again for any prompt that shares those tokens: the
first question in a fresh process about a document warmed before, or the rules and
examples before a cold document's windows, load in a fraction of a second instead.
Files are plain ``.npz`` arrays (no pickle); the folder is per model file, context
size and llama.cpp build, because a state only fits a context like the one that
wrote it (one that does not fit anyway is refused by llama.cpp and the prompt is
evaluated afresh: ``LightStateLlama.load_state``). The oldest files go when the
folder outgrows its budget. Nothing here may fail an answer: a file that cannot be
read, written or removed costs the speed-up and is dropped where it can be.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class StateFiles:
    def __init__(self, folder: Path, capacity_bytes: int):
        self.folder = folder
        self.capacity_bytes = capacity_bytes

    @classmethod
    def for_model(cls, root: Path, model_path: Path, n_ctx: int, capacity_bytes: int) -> StateFiles:
        import llama_cpp

        stat = model_path.stat()
        library = Path(llama_cpp.__file__).parent / "lib"
        build = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in library.glob("*.so*")
                       ) if library.is_dir() else []
        stamp = (f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}|"
                 f"{llama_cpp.__version__}|{build}")
        return cls(root / hashlib.sha256(stamp.encode()).hexdigest()[:16], capacity_bytes)

    def _path(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(",".join(map(str, tokens)).encode()).hexdigest()[:32]
        return self.folder / f"{digest}.npz"

    def load(self, prefix: Sequence[int]) -> Any:
        """The state saved for ``prefix`` (a ``LlamaState``), or None; a damaged file is dropped."""
        path = self._path(prefix)
        if not path.exists():
            return None
        try:
            state = _read(path)
        except Exception:  # truncated, a bad zip, wrong arrays: whatever it is, it is useless
            _remove(path)
            return None
        tokens = state.input_ids[: state.n_tokens]
        if state.n_tokens < len(prefix) or list(tokens[: len(prefix)]) != list(prefix):
            return None  # a hash collision, or a stray file
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest
        return state

    def save(self, prefixes: Sequence[Sequence[int]], state: Any) -> Path | None:
        """Keep ``state`` for prompts starting with any of ``prefixes`` (longest first): one
        file, written atomically, under the first name, and the other names pointed at it
        (a newer state sharing a shorter prefix replaces the older one under that name).
        Returns the file, or None when it could not be kept."""
        try:
            return self._save([self._path(prefix) for prefix in prefixes], state)
        except Exception:  # a full or read-only disk: only the speed-up is lost
            return None

    def _save(self, paths: list[Path], state: Any) -> Path | None:
        first = paths[0]
        self.folder.mkdir(parents=True, exist_ok=True)
        if first.exists():
            os.utime(first)
        else:
            _write_atomically(first, state)
        for other in paths[1:]:
            link = other.with_suffix(".link.tmp")
            _remove(link)
            os.link(first, link)
            os.replace(link, other)
        self._evict()
        return first if first.exists() else None

    def mark(self, label: str, path: Path) -> None:
        """Remember that the prompt called ``label`` was warmed into ``path``."""
        with contextlib.suppress(OSError):
            (self.folder / f"{label}.warm").write_text(path.name)

    def marked(self, label: str) -> bool:
        try:
            name = (self.folder / f"{label}.warm").read_text().strip()
            return _NAME.fullmatch(name) is not None and (self.folder / name).exists()
        except OSError:
            return False

    def _evict(self) -> None:
        """Oldest states out past the budget, each with all its names (hard links share
        one file), and temporary files a killed writer left; another process may evict
        at the same time."""
        states: dict[int, tuple[float, int, list[Path]]] = {}
        for path in self.folder.iterdir():
            with contextlib.suppress(OSError):
                stat = path.stat()
                if path.suffix == ".tmp" and time.time() - stat.st_mtime > _STALE_SECONDS:
                    _remove(path)
                elif path.suffix == ".npz":
                    states.setdefault(stat.st_ino, (stat.st_mtime, stat.st_size, []))[2].append(path)
        total = sum(size for _, size, _ in states.values())
        for _, size, names in sorted(states.values(), key=lambda state: state[0]):
            if total <= self.capacity_bytes:
                break
            total -= size
            for path in names:
                _remove(path)


_NAME = re.compile(r"[0-9a-f]{32}\.npz")
_STALE_SECONDS = 600


def _read(path: Path) -> Any:
    import numpy as np
    from llama_cpp import LlamaState

    with np.load(path) as saved:
        raw = saved["llama_state"]
        input_ids, scores = saved["input_ids"], saved["scores"]
        if input_ids.ndim != 1 or scores.ndim != 2 or raw.ndim != 1:
            raise ValueError(f"{path.name}: not a prompt state")
        return LlamaState(input_ids=input_ids, scores=scores, n_tokens=int(saved["n_tokens"]),
                          llama_state=raw.tobytes(), llama_state_size=int(raw.size), seed=int(saved["seed"]))


def _write_atomically(path: Path, state: Any) -> None:
    import numpy as np

    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, input_ids=state.input_ids, scores=state.scores, n_tokens=state.n_tokens,
                     seed=state.seed, llama_state=np.frombuffer(state.llama_state, np.uint8))
            out.flush()
            os.fsync(out.fileno())  # the name never points at a half-written file, even after a crash
        os.replace(temporary, path)
    finally:
        _remove(Path(temporary))


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
