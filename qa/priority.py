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

Answers in a row must not starve an upload, so each background block has a
pause budget: it may pause up to ``PAUSE_BUDGET_SECONDS`` ahead (a few answers
in full), and it earns pause time back by working, at ``1 - BACKGROUND_SHARE``
seconds of pause per ``BACKGROUND_SHARE`` of work. Under answers without end
an upload so runs at least a quarter of the time, in groups as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PAUSE_BUDGET_SECONDS = 10.0  # the most a background block pauses at a stretch
BACKGROUND_SHARE = 0.25  # the least share of the time it runs while answers keep coming


@dataclass
class _Budget:
    pause_left: float  # seconds this background block may still pause
    since: float  # when it last stopped pausing (the time since is work)
    paused: float = 0.0  # seconds paused so far (for the curious: tests, benchmarks)


class Foreground:
    def __init__(self, pause_budget: float = PAUSE_BUDGET_SECONDS, share: float = BACKGROUND_SHARE):
        self.pause_budget = pause_budget
        self.share = share
        self._answers = 0
        self._background: dict[int, _Budget] = {}
        self._waiting = 0
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
    def background(self) -> Iterator[_Budget]:
        """This thread's embedding yields to answers while the block runs, within its budget."""
        me = threading.get_ident()
        budget = _Budget(self.pause_budget, time.monotonic())
        with self._changed:
            self._background[me] = budget
        try:
            yield budget
        finally:
            with self._changed:
                self._background.pop(me, None)

    def is_background(self, thread: int) -> bool:
        return thread in self._background

    @property
    def waiting(self) -> int:
        """Background threads paused for answers right now."""
        return self._waiting

    def wait(self, caller: int) -> bool:
        """Return once no answer is in progress, or once ``caller``'s pause budget is
        spent, if ``caller`` is background work (at once otherwise); True if it waited."""
        budget = self._background.get(caller)
        if not self._answers or budget is None:
            return False
        with self._changed:
            now = time.monotonic()
            earned = (now - budget.since) * (1 - self.share) / self.share
            budget.pause_left = min(self.pause_budget, budget.pause_left + earned)
            budget.since = now
            if budget.pause_left <= 0:
                return False
            self._waiting += 1
            try:
                self._changed.wait_for(lambda: not self._answers, budget.pause_left)
            finally:
                self._waiting -= 1
            waited = time.monotonic() - now
            budget.pause_left -= waited
            budget.paused += waited
            budget.since = time.monotonic()
        return True


FOREGROUND = Foreground()
