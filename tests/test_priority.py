"""Indexing yields to answers: background embedding waits while an answer is made;
nothing else ever waits."""

import threading
import time

from qa.priority import FOREGROUND

TEXTS = [f"Briefing sentence number {n} about the talks." for n in range(40)]


def test_background_embedding_waits_for_the_answer_in_progress(embedder):
    done = threading.Event()

    def index() -> None:
        with FOREGROUND.background():
            embedder.encode(TEXTS)
        done.set()

    with FOREGROUND.answering():
        worker = threading.Thread(target=index)
        worker.start()
        assert not done.wait(0.5)  # held back while the answer is made...
        assert len(embedder.encode(TEXTS[:3])) == 3  # ...whose own embedding runs at once
    assert done.wait(30)  # and it goes on once the answer is out
    worker.join()


def test_embedding_outside_background_work_never_waits(embedder):
    with FOREGROUND.answering():
        result: list = []
        worker = threading.Thread(target=lambda: result.append(embedder.encode(TEXTS[:5])))
        started = time.perf_counter()
        worker.start()
        worker.join(10)
        assert len(result) == 1 and time.perf_counter() - started < 10


def test_a_background_wait_ends_after_its_limit():
    with FOREGROUND.background(), FOREGROUND.answering():
        started = time.perf_counter()
        assert FOREGROUND.wait(threading.get_ident(), timeout=0.2)
        assert 0.2 <= time.perf_counter() - started < 5
