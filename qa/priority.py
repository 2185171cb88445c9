"""Answers first: indexing in this process pauses while an answer is being made.

On a 2-core machine llama.cpp's threads and the embedder's threads fight for
the same cores, and llama.cpp loses the most: its threads meet at a barrier
after every layer, so one thread kept off a core stalls the others. An upload
indexed by the web chat while another user's answer streams slowed that answer
from 2.6 to 0.4 tokens/s in one run of bench/answering_busy.py (a machine busy
with other work too, which makes every such figure move a lot).
Instead, an answer marks itself as foreground work, a thread that indexes marks
itself as background work, and the embedder, called from a background thread,
waits between small groups of texts until no answer is in progress. Nothing
else ever waits: embedding for an answer (the question, its passages'
sentences) runs at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

MAX_PAUSE_SECONDS = 30.0  # background work goes on after this, so answers in a row never starve it


class Foreground:
    def __init__(self) -> None:
        self._answers = 0
        self._background: set[int] = set()
        self._changed = threading.Condition()

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Background work waits while this block runs (any number at once)."""
        with self._changed:
            self._answers += 1
        try:
            yield
        finally:
            with self._changed:
                self._answers -= 1
                self._changed.notify_all()

    @contextmanager
    def background(self) -> Iterator[None]:
        """This thread's embedding yields to answers while the block runs."""
        me = threading.get_ident()
        with self._changed:
            self._background.add(me)
        try:
            yield
        finally:
            with self._changed:
                self._background.discard(me)

    def is_background(self, thread: int) -> bool:
        return thread in self._background

    def wait(self, caller: int, timeout: float = MAX_PAUSE_SECONDS) -> bool:
        """Return once no answer is in progress if ``caller`` is background work (at
        once otherwise); True if it waited."""
        if not self._answers or caller not in self._background:
            return False
        with self._changed:
            self._changed.wait_for(lambda: not self._answers, timeout)
        return True


FOREGROUND = Foreground()
