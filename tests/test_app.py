"""The web chat's logic without a browser: rendering of answers and sources, upload
checks and safe names, per-session conversations, the queue notice, and the API
through ``gradio_client``. The generator is faked (it is the code around the
model under test here); tests/test_browser.py drives the real model in chromium."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from qa.answering import Assistant
from qa.app import _NO_CHANGE, QUEUED, SEARCHING, ChatApp, build_ui, launch, parse_auth
from qa.app_render import render_answer, render_source, source_record
from qa.app_uploads import check_upload, safe_name, store_upload
from qa.embedding import Embedder
from qa.errors import QAError
from qa.generation import Generator
from qa.indexing import update_index
from qa.types import Answer, Citation
from tests.conftest import SEED_FILE, FakeGenerator, ask_at_once

SEED_TITLE = "Russia hosts the Taliban for talks"
pytestmark = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def index_dir(tmp_path: Path, embedder: Embedder, settings: Any) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SEED_FILE, docs / SEED_FILE.name)
    folder = tmp_path / "index"
    update_index([docs], folder, embedder, settings.replace(index_dir=folder))
    return folder


@pytest.fixture
def app(index_dir: Path, embedder: Embedder, settings: Any) -> ChatApp:
    settings = settings.replace(index_dir=index_dir)
    from qa.store import IndexStore

    store = IndexStore.load(index_dir, embedder.name)
    # Fake generator: these tests are about the app around the model.
    assistant = Assistant(store, settings, embedder=embedder, generator=FakeGenerator(),
                          index_dir=index_dir)
    return ChatApp(assistant, settings)


def _run_turn(app: ChatApp, question: str, messages: list, turns: list) -> tuple[list, list, list]:
    """One chat turn as the page runs it; returns (messages, turns, every shown state)."""
    _, messages, pending = app.start_turn(question, messages, None)
    states = list(app.respond(pending, messages, turns))
    messages, turns, pending = states[-1]
    assert pending is None
    return messages, turns, [state[0][-1]["content"] for state in states]


def _citation(**changes: Any) -> Citation:
    text = "Intro paragraph.\n\nHanafi leads the delegation. He met the EU.\n\nOutro <b>bold</b>."
    start = text.index("Hanafi")
    end = text.index("EU.") + 3
    fields = dict(number=1, chunk_id="d:1", title="A <Title>", source="/x/y/brief.txt",
                  quote=text[start:end], start=start, end=end, date="2021-10-20", page=3,
                  highlight_start=start, highlight_end=text.index(" He met"))
    fields.update(changes)
    return Citation(**fields)


# -- rendering ---------------------------------------------------------------------------


def test_source_card_shows_number_title_date_page_and_marked_quote():
    full = "Intro paragraph.\n\nHanafi leads the delegation. He met the EU.\n\nOutro <b>bold</b>."
    html = render_source(_citation(), full)
    assert 'class="qa-num">1<' in html
    assert "A &lt;Title&gt;" in html and "<Title>" not in html
    assert "2021-10-20 · page 3 · brief.txt" in html
    assert "<mark>Hanafi leads the delegation.</mark> He met the EU." in html
    # Opening the source shows the surrounding text, the passage shaded, escaped.
    assert "<details" in html and "Intro paragraph." in html and "Outro &lt;b&gt;bold" in html
    assert "\n" not in html  # a blank line would end the HTML block in the chat's Markdown


def test_source_context_is_omitted_when_the_document_changed():
    html = render_source(_citation(), "a different text entirely " * 10)
    assert "<details" not in html and "<mark>Hanafi" in html


def test_answer_renders_markers_and_sources_and_refusal_says_so():
    citation = _citation()
    answer = Answer(question="q", text="Hanafi leads it [1].", citations=[citation])
    html = render_answer(answer, lambda chunk_id: None)
    assert '<sup class="qa-cite">1</sup>' in html and "qa-sources" in html and "qa-done" in html
    refusal = Answer(question="q", text="The documents do not contain the answer to this question.",
                     abstained=True)
    html = render_answer(refusal, lambda chunk_id: None)
    assert "Not in the documents" in html and "do not contain the answer" in html
    assert "qa-sources" not in html


def test_source_record_is_plain_data_without_server_paths():
    record = source_record(_citation())
    assert record["file"] == "brief.txt" and "/x/y" not in str(record)
    assert record["highlight"] == "Hanafi leads the delegation."


# -- uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.MD", "evil.md"),
    (".hidden.txt", "hidden.txt"),
    ("my report (final)?.docx", "my_report_final.docx"),
    ("Брифинг 1.pdf", "Брифинг_1.pdf"),
    ("...", "document"),
    ("a/b/..", "document"),
])
def test_safe_names_cannot_leave_the_uploads_folder(name: str, expected: str):
    assert safe_name(name) == expected


def test_stored_uploads_stay_in_the_uploads_folder(tmp_path: Path):
    source = tmp_path / "..odd name;rm -rf.txt"
    source.write_text("text")
    stored = store_upload(source, tmp_path / "uploads")
    assert stored == (tmp_path / "uploads" / "odd_name_rm_-rf.txt").resolve()
    assert stored.read_text() == "text" and not list((tmp_path / "uploads").glob(".upload-*"))


def test_uploads_of_wrong_type_too_large_or_unreadable_are_refused(tmp_path: Path):
    good = tmp_path / "memo.txt"
    good.write_text("The memo says the budget is 5 million dollars.")
    assert check_upload(good, 1000) is None
    assert "over the" in str(check_upload(good, 10))
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ")
    assert "unsupported file type .exe" in str(check_upload(exe, 1000))
    binary = tmp_path / "broken.txt"
    binary.write_bytes(b"\x00\xff" * 50)
    assert "cannot be read" in str(check_upload(binary, 1000))


def test_upload_indexes_at_once_and_remove_deletes_it(app: ChatApp, tmp_path: Path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    memo = incoming / "Budget memo!.md"
    memo.write_text("# Budget memo\n\nThe Nebula programme budget is 7 million dollars.")
    bad = incoming / "virus.exe"
    bad.write_bytes(b"MZ")
    calls = []
    with pytest.warns(UserWarning, match="Refused virus.exe"):  # shown to the user as a toast
        status, rows, _, cleared = app.upload([str(memo), str(bad)],
                                              progress=lambda *a, **k: calls.append(a))
    assert "Indexed Budget memo!.md" in status and "Refused virus.exe: unsupported file type" in status
    assert cleared is None and any(r[0] == "Budget memo" for r in rows) and calls
    stored = app.uploads / "Budget_memo.md"
    assert stored.is_file()
    assert any("Nebula" in p.text for p in app.assistant.retrieve("Nebula programme budget", 3))

    doc_id = next(d["doc_id"] for d in app.list_documents() if d["title"] == "Budget memo")
    status, rows, _ = app.remove(doc_id)
    assert "Removed “Budget memo”" in status and not stored.exists()
    assert all(r[0] != "Budget memo" for r in rows)
    assert "no longer in the index" in app.remove(doc_id)[0]


# -- conversations -----------------------------------------------------------------------


def test_a_turn_streams_then_shows_answer_with_sources(app: ChatApp):
    messages, turns, shown = _run_turn(app, "Who leads the Taliban delegation?", [], [])
    assert SEARCHING in shown[0]
    assert any("qa-streaming" in s for s in shown[1:-1])  # token by token
    final = messages[-1]["content"]
    assert "Hanafi" in final and "qa-sources" in final and SEED_TITLE in final
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert turns == [["Who leads the Taliban delegation?", turns[0][1]]] and "Hanafi" in turns[0][1]


def test_follow_ups_pass_the_conversation_to_the_assistant(app: ChatApp):
    seen: list[Any] = []
    original = app.assistant.stream

    def spy(question: str, history: Any = ()) -> Iterator[Any]:
        seen.append((question, list(history)))
        return original(question, history)

    app.assistant.stream = spy  # type: ignore[method-assign]
    messages, turns, _ = _run_turn(app, "Who leads the Taliban delegation?", [], [])
    _run_turn(app, "What did he do last week?", messages, turns)
    assert seen[1][0] == "What did he do last week?"
    assert seen[1][1][0][0] == "Who leads the Taliban delegation?"


def test_new_chat_stops_a_running_answer_from_updating_the_page(app: ChatApp):
    _, messages, pending = app.start_turn("Who leads the Taliban delegation?", [], None)
    updates = app.respond(pending, messages, [])
    next(updates)
    next(updates)
    assert app.new_chat() == ([], [], None)
    assert list(updates) == [_NO_CHANGE]  # the old chat is not shown again
    assert not app.busy  # and the model is free again
    # A question still waiting in the queue when the chat was left is not answered.
    assert list(app.respond(pending, messages, [])) == [_NO_CHANGE]


def test_empty_question_is_a_message_not_a_traceback(app: ChatApp):
    with pytest.raises(gr.Error, match="The question is empty"):
        app.start_turn("   ", [], None)
    with pytest.raises(gr.Error, match="Wait for the current answer"):
        app.start_turn("Another?", [], {"question": "Still answering this", "chat": 0})


def test_errors_while_answering_are_shown_in_the_chat(app: ChatApp):
    def failing(question: str, history: Any = ()) -> Iterator[Any]:
        raise QAError("The model file is missing: set QA_GENERATOR_PATH.")
        yield  # pragma: no cover

    app.assistant.stream = failing  # type: ignore[method-assign]
    messages, turns, _ = _run_turn(app, "Who?", [], [])
    assert "qa-error" in messages[-1]["content"] and "QA_GENERATOR_PATH" in messages[-1]["content"]
    assert turns == []  # a failed turn is not part of the conversation


def test_a_waiting_user_is_told_they_are_queued(app: ChatApp):
    assert SEARCHING in app.start_turn("Who?", [], None)[1][-1]["content"]
    with app._answering_slot():
        assert QUEUED in app.start_turn("Who?", [], None)[1][-1]["content"]


def test_warm_up_loads_models_after_the_page_is_built(index_dir: Path, settings: Any):
    settings = settings.replace(index_dir=index_dir)
    assistant = Assistant.open(index_dir, settings=settings)
    app = ChatApp(assistant, settings)
    build_ui(app)
    assert isinstance(assistant.generator, Generator) and not assistant.generator.loaded
    assert assistant.embedder._model is None  # the page needs no model
    assistant.generator = FakeGenerator()  # fake: warm-up order, not the model
    app.warm_up()
    assert app.ready.is_set() and app.warmup_error is None and assistant.embedder._model is not None
    assert "ready" in app.model_status()[0]


def test_indexing_in_progress_does_not_hold_up_answers(app: ChatApp):
    with app.index_lock:  # as while an upload is being embedded
        messages, turns, _ = _run_turn(app, "Who leads the Taliban delegation?", [], [])
    assert "qa-sources" in messages[-1]["content"] and turns


def test_auth_setting_is_user_and_password():
    assert parse_auth("ana:s3cret:x") == ("ana", "s3cret:x")
    assert parse_auth(None) is None
    with pytest.raises(QAError, match="user:password"):
        parse_auth("nopassword")


# -- the API through gradio_client -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(app: ChatApp) -> Iterator[str]:
    app.settings = app.settings.replace(port=_free_port())
    demo = launch(app, block=False)
    try:
        yield f"http://127.0.0.1:{app.settings.port}/"
    finally:
        demo.close()


def test_api_answers_with_sources_as_data_and_sessions_are_separate(served: str, app: ChatApp):
    from gradio_client import Client

    replies = {"Who leads the Taliban delegation?": "Abdul Salam Hanafi leads it [1].",
               "How much has Brussels pledged?": "One billion euros [1]."}

    class PerQuestion(FakeGenerator):  # fake: replies by question, to tell sessions apart
        def stream_chat(self, messages: list[dict[str, str]], max_tokens: int | None = None) -> Any:
            reply = next(r for q, r in replies.items() if q in messages[-1]["content"])
            yield from (w + " " for w in reply.split(" "))

    app.assistant.generator = PerQuestion()
    results = ask_at_once(served, replies, timeout=60)
    for question, reply in replies.items():
        record = results[question]
        assert record["question"] == question and record["answer"].startswith(reply.split(" [")[0])
        assert record["sources"][0]["file"] == SEED_FILE.name and record["sources"][0]["quote"]
    client = Client(served, verbose=False)
    assert client.predict(api_name="/documents")[0]["file"] == SEED_FILE.name
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="The question is empty"):
        client.predict("  ", [], api_name="/ask")


def test_password_is_required_when_auth_is_set(app: ChatApp):
    from gradio_client import Client

    app.settings = app.settings.replace(port=_free_port(), auth="ana:s3cret")
    demo = launch(app, block=False)
    url = f"http://127.0.0.1:{app.settings.port}/"
    try:
        with pytest.raises(Exception):  # noqa: B017 - refused before any API is visible
            Client(url, verbose=False)
        client = Client(url, auth=("ana", "s3cret"), verbose=False)
        assert client.predict(api_name="/documents")[0]["file"] == SEED_FILE.name
    finally:
        demo.close()
