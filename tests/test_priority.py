"""Indexing yields to answers: background embedding waits while an answer is made;
nothing else ever waits."""

import threading
import time

from qa.priority import FOREGROUND, Foreground

TEXTS = [f"Briefing sentence number {n} about the talks." for n in range(40)]


def test_background_embedding_waits_for_the_answer_in_progress(embedder):
    embedder.encode(TEXTS)  # loaded and warm
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
        deadline = time.monotonic() + 10
        while not FOREGROUND.waiting and time.monotonic() < deadline:
            time.sleep(0.01)
        assert FOREGROUND.waiting == 1 and not done.is_set()  # held back while the answer is made...
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


def test_answers_without_end_leave_uploads_their_share():
    """Before the pause budget every group could wait 30 s: answers in a row held an
    upload to one group of texts per 30 s."""
    foreground = Foreground(pause_budget=0.3, share=0.5)  # pause as long as it works, after 0.3 s
    groups, done = [], threading.Event()

    def upload() -> None:
        with foreground.background() as budget:
            for _ in range(20):
                foreground.wait(threading.get_ident())
                time.sleep(0.05)  # a group of texts
                groups.append(budget.paused)
        done.set()

    with foreground.answering():  # one answer after another, for as long as it takes
        started = time.monotonic()
        threading.Thread(target=upload).start()
        assert done.wait(60)
        elapsed = time.monotonic() - started
    paused = groups[-1]
    assert paused >= 0.3  # it did give way to the answers...
    assert paused <= 0.3 + (elapsed - paused) + 0.5  # ...but never more than its share


def test_documents_added_to_an_assistant_are_embedded_as_background_work(
        seed_copy, tmp_path, embedder, settings, monkeypatch):
    from qa.index.indexing import update_index
    from qa.pipeline import Assistant
    from tests.conftest import FakeGenerator

    index_dir = tmp_path / "index"
    store = update_index([seed_copy], index_dir, embedder, settings).store
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
