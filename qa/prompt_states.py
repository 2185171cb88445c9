"""Evaluated prompt prefixes on disk, so a new process starts where the last one stopped.

A warmed document's state (the rules, examples and that document, evaluated) costs
~10 s of prefill on 2 cores and ~28 KB per token to keep. ``StateFiles`` writes a
warmed state once, named by the hash of its tokens up to a boundary (the end of a
documents block), and finds it again for any prompt that shares those tokens: the
first question in a fresh process about a document warmed before, or the rules and
examples before a cold document's windows, load in a fraction of a second instead.
Files are plain ``.npz`` arrays (no pickle); the folder is per model file, context
size and llama-cpp-python version, because a state only fits the context that
wrote it. The oldest files go when the folder outgrows its budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
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
        stamp = f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}|{llama_cpp.__version__}"
        return cls(root / hashlib.sha256(stamp.encode()).hexdigest()[:16], capacity_bytes)

    def _path(self, tokens: Sequence[int]) -> Path:
        digest = hashlib.sha256(",".join(map(str, tokens)).encode()).hexdigest()[:32]
        return self.folder / f"{digest}.npz"

    def has(self, prefix: Sequence[int]) -> bool:
        return self._path(prefix).exists()

    def load(self, prefix: Sequence[int]) -> Any:
        """The state saved for ``prefix`` (a ``LlamaState``), or None; a damaged file is dropped."""
        import numpy as np
        from llama_cpp import LlamaState

        path = self._path(prefix)
        try:
            with np.load(path) as saved:
                raw = saved["llama_state"]
                state = LlamaState(input_ids=saved["input_ids"], scores=saved["scores"],
                                   n_tokens=int(saved["n_tokens"]), llama_state=raw.tobytes(),
                                   llama_state_size=int(raw.size), seed=int(saved["seed"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            return None
        if list(state.input_ids[: len(prefix)]) != list(prefix):  # a hash collision, or a stray file
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept longest
        return state

    def save(self, prefixes: Sequence[Sequence[int]], state: Any) -> Path | None:
        """Keep ``state`` for prompts starting with any of ``prefixes`` (longest first): one
        file, written atomically, hard-linked under the other names not taken yet.
        Returns the file of the first prefix (None: the disk refused it; only the
        speed-up is lost)."""
        import numpy as np

        paths = [self._path(prefix) for prefix in prefixes]
        first = paths[0]
        self.folder.mkdir(parents=True, exist_ok=True)
        if not first.exists():
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    np.savez(out, input_ids=state.input_ids, scores=state.scores, n_tokens=state.n_tokens,
                             seed=state.seed, llama_state=np.frombuffer(state.llama_state, np.uint8))
                os.replace(temporary, first)
            except OSError:
                Path(temporary).unlink(missing_ok=True)
                return None
        for other in paths[1:]:
            with contextlib.suppress(OSError):
                if not other.exists():
                    os.link(first, other)
        self._evict()
        return first if first.exists() else None

    def mark(self, label: str, path: Path) -> None:
        """Remember that the prompt called ``label`` was warmed into ``path``."""
        with contextlib.suppress(OSError):
            (self.folder / f"{label}.warm").write_text(path.name)

    def marked(self, label: str) -> bool:
        try:
            name = (self.folder / f"{label}.warm").read_text().strip()
        except OSError:
            return False
        return bool(name) and (self.folder / name).exists()

    def _evict(self) -> None:
        """Oldest states out past the budget, each with all its names (hard links share
        one file); another process may evict at the same time."""
        states: dict[int, tuple[float, int, list[Path]]] = {}
        for path in self.folder.glob("*.npz"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                names = states.setdefault(stat.st_ino, (stat.st_mtime, stat.st_size, []))[2]
                names.append(path)
        total = sum(size for _, size, _ in states.values())
        for _, size, names in sorted(states.values(), key=lambda state: state[0]):
            if total <= self.capacity_bytes:
                break
            total -= size
            for path in names:
                path.unlink(missing_ok=True)
