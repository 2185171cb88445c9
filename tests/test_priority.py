"""Indexing yields to answers: background embedding waits while an answer is made;
nothing else ever waits."""

import threading
import time

from qa.priority import FOREGROUND

TEXTS = [f"Briefing sentence number {n} about the talks." for n in range(40)]


def test_background_embedding_waits_for_the_answer_in_progress(embedder):
    embedder.encode(TEXTS)  # loaded and warm: unheld, the worker would finish well within 0.5 s
    started, done = threading.Event(), threading.Event()

    def index() -> None:
        with FOREGROUND.background():
            started.set()
            embedder.encode(TEXTS)
        done.set()

    with FOREGROUND.answering():
        worker = threading.Thread(target=index)
        worker.start()
        assert started.wait(10)
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


def test_documents_added_to_an_assistant_are_embedded_as_background_work(
        seed_copy, tmp_path, embedder, settings, monkeypatch):
    from qa.answering import Assistant
    from qa.index.indexing import update_index
    from tests.conftest import FakeGenerator

    index_dir = tmp_path / "index"
    store, _ = update_index([seed_copy], index_dir, embedder, settings)
    assistant = Assistant(store, settings, embedder=embedder, generator=FakeGenerator(), index_dir=index_dir)
    seen: list[bool] = []
    real = embedder.encode

    def recording(texts, show_progress=False):
        seen.append(FOREGROUND.is_background(threading.get_ident()))
        return real(texts, show_progress)

    monkeypatch.setattr(embedder, "encode", recording)
    memo = tmp_path / "memo.txt"
    memo.write_text("Budget memo\n\nThe committee approved 40 new posts for 2027.\n")
    assistant.add_documents([memo])
    assert seen and all(seen)
    seen.clear()
    assistant.ask("How many posts did the committee approve?")
    assert seen and not any(seen)  # the answer's own embedding is not background work
