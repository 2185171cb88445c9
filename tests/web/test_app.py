"""The web chat's logic without a browser: rendering of answers and sources, upload
checks and safe names, per-session conversations, the queue notice, and the API
through ``gradio_client``. The generator is faked (it is the code around the
model under test here); tests/web/test_browser.py drives the real model in chromium."""

from __future__ import annotations

import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from qa.errors import QAError
from qa.generation import Generator
from qa.index.indexing import update_index
from qa.models.embedder import Embedder
from qa.pipeline import Assistant
from qa.types import CHECKING, RETRYING, Answer, Citation, Passage, Stage
from qa.web import chats as app_chats
from qa.web.app import _NO_CHANGE, BUSY, QUEUED, SEARCHING, Asked, ChatApp, launch, parse_auth
from qa.web.examples import example_questions
from qa.web.page import build_ui
from qa.web.render import WITHDRAWN, render_answer, render_draft, render_source, source_record
from qa.web.uploads import check_upload, safe_name, store_upload
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
    from qa.index.store import IndexStore

    store = IndexStore.load(index_dir, embedder.name)
    # Fake generator: these tests are about the app around the model.
    assistant = Assistant(store, settings, embedder=embedder, generator=FakeGenerator(),
                          index_dir=index_dir)
    return ChatApp(assistant, settings)


def _run_turn(app: ChatApp, question: str, messages: list, turns: list,
              chats: Any = None) -> tuple[list, list, list]:
    """One chat turn as the page runs it; returns (messages, turns, every shown state)."""
    _, messages, pending, asked, problem = app.start_turn(question, messages, None)
    assert asked == pending and problem == ""
    states = list(app.respond(asked, messages, turns, chats))
    assert states[-1] == _NO_CHANGE  # Gradio re-sends the last update: it must change nothing
    states = states[:-1]
    messages, turns, pending, stored, _ = states[-1]
    assert pending is None and stored[0]["turns"] == turns
    return messages, turns, [state[0][-1]["content"] for state in states]


def _citation(**changes: Any) -> Citation:
    text = "Intro paragraph.\n\nHanafi leads the delegation. He met the EU.\n\nOutro <b>bold</b>."
    start = text.index("Hanafi")
    end = text.index("EU.") + 3
    passage = Passage(chunk_id="d:1", doc_id="d", text=text, score=1.0, source="/x/y/brief.txt",
                      title=changes.pop("title", "A <Title>"), start=0, end=len(text),
                      date=changes.pop("date", "2021-10-20"))
    fields = dict(number=1, passage=passage, chunk_id="d:1", quote=text[start:end], start=start, end=end,
                  page=3, highlight_start=start, highlight_end=text.index(" He met"))
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
    assert 'data-cite="1"' in html and "qa-sources" in html and "qa-done" in html
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
    status, rows, _, _, _, cleared = app.upload([str(memo), str(bad)],
                                                       progress=lambda *a, **k: calls.append(a))
    assert "Indexed Budget memo!.md" in status and "Refused virus.exe: unsupported file type" in status
    assert cleared is None and any(r[0] == "Budget memo" for r in rows) and calls
    assert any("Nebula" in q or "Budget memo" in q for q in app.examples())  # from the new one
    status = app.upload([str(bad)], progress=lambda *a, **k: None)[0]
    assert status.startswith("Refused virus.exe") and "Indexed" not in status  # the line is reset
    stored = app.uploads / "Budget_memo.md"
    assert stored.is_file()
    assert any("Nebula" in p.text for p in app.assistant.retrieve("Nebula programme budget", 3))

    doc_id = next(d["doc_id"] for d in app.list_documents() if d["title"] == "Budget memo")
    box, question, _ = app.confirm_remove(doc_id)  # asked first, saying the upload goes too
    assert box.visible and "Remove “Budget memo”" in question and "uploaded copy is deleted" in question
    assert stored.exists() and any(d["doc_id"] == doc_id for d in app.list_documents())
    status, rows, *_ = app.remove(doc_id)
    assert "Removed “Budget memo” and deleted its uploaded copy" in status and not stored.exists()
    assert all(r[0] != "Budget memo" for r in rows)
    assert "no longer in the index" in app.remove(doc_id)[0]
    seed_id = app.list_documents()[0]["doc_id"]
    assert "The file itself stays" in app.confirm_remove(seed_id)[1]


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

    def spy(question: str, history: Any = (), **options: Any) -> Iterator[Any]:
        seen.append((question, list(history)))
        return original(question, history, **options)

    app.assistant.stream = spy  # type: ignore[method-assign]
    messages, turns, _ = _run_turn(app, "Who leads the Taliban delegation?", [], [])
    _run_turn(app, "What did he do last week?", messages, turns)
    assert seen[1][0] == "What did he do last week?"
    assert seen[1][1][0][0] == "Who leads the Taliban delegation?"


def test_new_chat_stops_a_running_answer_from_updating_the_page(app: ChatApp):
    _, messages, pending, asked, _ = app.start_turn("Who leads the Taliban delegation?", [], None)
    updates = app.respond(asked, messages, [])
    next(updates)
    next(updates)  # an update is being handed to the page
    leaving = threading.Thread(target=app.new_chat)
    leaving.start()
    leaving.join(0.3)
    assert leaving.is_alive()  # "New chat" waits until that update is queued for the page...
    rest = list(updates)  # ...which it is once Gradio asks for the next one
    leaving.join(5)
    assert not leaving.is_alive()
    assert rest[-1] == _NO_CHANGE and all(u[1] == _NO_CHANGE[1] for u in rest)  # no answer shown
    assert not app.busy  # and the model is free again
    # A question still waiting in the queue when the chat was left is not answered.
    assert list(app.respond(asked, messages, [])) == [_NO_CHANGE]
    # The question of the chat that was left does not block the next one (the stuck "Queued").
    _, _, _, again, problem = app.start_turn("Who leads the Taliban delegation?", [], pending)
    assert again is not None and problem == ""


def test_problems_with_a_question_are_told_beside_the_box_not_over_the_chat(app: ChatApp):
    box, chat, pending, asked, problem = app.start_turn("   ", [{"role": "user", "content": "kept"}], None)
    assert "The question is empty" in problem and asked is None
    shown = app.start_turn("Is <b>x</b> <img src=y onerror=alert(1)> there?", [], None)[1]
    assert shown[0]["content"] == "Is &lt;b&gt;x&lt;/b&gt; &lt;img src=y onerror=alert(1)&gt; there?"
    assert box is chat is pending or all(isinstance(v, type(gr.skip())) for v in (box, chat, pending))
    _, _, _, asked, problem = app.start_turn("x" * 5000, [], None)
    assert "limit is 2,000" in problem and asked is None
    running = Asked("Still answering this", 0, "c1")
    _, _, _, asked, problem = app.start_turn("Another?", [], running)
    assert problem == BUSY and asked is None
    with pytest.raises(gr.Error) as raised:  # the chain stops without a visible error
        ChatApp.gate(None)
    assert raised.value.visible is False


def test_errors_while_answering_are_shown_in_the_chat(app: ChatApp):
    def failing(question: str, history: Any = (), **options: Any) -> Iterator[Any]:
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


def test_the_draft_is_marked_until_checked_and_a_withdrawn_one_says_so(app: ChatApp):
    app.assistant.generator = FakeGenerator("Russia has pledged five billion roubles [1].")
    _, _, shown = _run_turn(app, "How much has Russia pledged?", [], [])
    drafts = [s for s in shown if "qa-draft" in s]
    assert drafts and all("Draft" in s or "Checking the draft" in s for s in drafts)
    assert "qa-checking" in drafts[-1]  # the complete draft is shown as being checked
    final = shown[-1]
    assert "Not in the documents" in final and WITHDRAWN in final and "qa-draft" not in final
    assert "five billion" not in final


def test_stages_mark_checking_and_retry(app: ChatApp):
    app.assistant.generator = FakeGenerator("Abdul Salam Hanafi leads the delegation [1].")
    pieces = list(app.assistant.stream("Who leads the Taliban delegation?", stages=True))
    stages = [p for p in pieces if isinstance(p, Stage)]
    assert stages == [Stage(CHECKING)] and isinstance(pieces[-1], Answer)
    assert all(not isinstance(p, Stage) for p in app.assistant.stream("Who leads the Taliban delegation?"))
    misquoted = 'Answer: Russia hosts the talks.\nEvidence [1]: "Russia hosts the talks on Tuesday"'
    app.assistant.generator = FakeGenerator(misquoted)  # its quote is in no document: asked again
    pieces = list(app.assistant.stream("When will Russia host the Taliban?", stages=True))
    assert [p for p in pieces if isinstance(p, Stage)] == [Stage(CHECKING), Stage(RETRYING)]
    _, _, shown = _run_turn(app, "When will Russia host the Taliban?", [], [])
    assert any("asking the model again" in s for s in shown) and WITHDRAWN in shown[-1]
    assert "asking the model again" in render_draft("x", RETRYING) and "qa-cursor" not in render_draft(
        "x", RETRYING)


def test_sources_are_numbered_from_one_and_badges_are_clickable_and_unbroken():
    citation = _citation(number=2)
    answer = Answer(question="q", text="Hanafi leads it [2].", citations=[citation])
    html = render_answer(answer, lambda chunk_id: None)
    assert 'data-number="1"' in html and 'data-number="2"' not in html
    assert '<span class="qa-nowrap">it<sup class="qa-cite" role="link"' in html
    assert 'data-cite="1"' in html and "</sup>.</span>" in html


def test_examples_come_from_the_indexed_documents(app: ChatApp):
    examples = app.examples()
    assert examples and all(q.endswith("?") for q in examples)
    assert any("Putin" in q or "Islamic State" in q for q in examples)
    assert example_questions([]) == []


def test_conversations_are_stored_for_the_browser_newest_first(app: ChatApp):
    messages, turns, _ = _run_turn(app, "Who leads the Taliban delegation?", [], [])
    stored = app_chats.saved([], "a", messages, turns)
    stored = app_chats.saved(stored, "b", [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                             [["Hi", "Hello"]])
    assert [c["id"] for c in stored] == ["b", "a"] and stored[0]["messages"][0]["content"] == "Hi"
    assert stored[1]["title"] == "Who leads the Taliban delegation?"
    chat, chat_turns, chat_id, listing = app.restore(stored)
    assert chat_id == "b" and chat_turns == [["Hi", "Hello"]] and listing.choices[1] == (
        "Who leads the Taliban delegation?", "a")
    shown, past_turns, pending, opened, _ = app.open_chat("a", stored, "b")
    assert opened == "a" and past_turns == turns and "Hanafi" in shown[-1]["content"] and pending is None
    assert app.restore("garbage")[:2] == ([], [])
    assert app_chats.chats_of("garbage") == [] and app_chats.chats_of([{"id": 1}]) == []


def test_documents_list_is_searched_sorted_and_limits_questions(app: ChatApp, tmp_path: Path):
    memo = tmp_path / "memo.md"
    memo.write_text("# Budget memo\n\nThe Nebula programme budget is 7 million dollars.")
    app.upload([str(memo)], progress=lambda *a, **k: None)
    rows, scope, _, _ = app.documents_view("budget")
    assert [r[0] for r in rows] == ["Budget memo"]
    rows, *_ = app.documents_view("", "Title")
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), key=str.lower)
    memo_id = next(d["doc_id"] for d in app.list_documents() if d["title"] == "Budget memo")
    rows, scope, _, _ = app.documents_view("taliban", chosen=[memo_id])
    assert memo_id in [value for _, value in scope.choices] and scope.value == [memo_id]  # kept listed
    assert "Budget memo" in app.scope_note([memo_id]) and "all documents" in app.scope_note([])
    only = app.assistant.retrieve("Who leads the Taliban delegation?", 3)
    assert any(p.doc_id != memo_id for p in only)
    # Asked in the chat with that document chosen, the answer draws only on it.
    fake = app.assistant.generator = FakeGenerator("The budget is 5 million dollars [1].")
    _, messages, _, asked, _ = app.start_turn("What is the budget of the programme?", [], None, [memo_id])
    assert asked.documents == (memo_id,)
    list(app.respond(asked, messages, []))
    shown = fake.prompts[0][-1]["content"]
    assert "Nebula" in shown and "Taliban" not in shown.split("</documents>")[0]


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


def test_the_viewer_shows_the_document_with_the_sentence_marked_and_offers_the_original(app: ChatApp):
    answer = app.assistant.ask("Who leads the Taliban delegation?")
    citation = answer.citations[0]
    request = f"{citation.chunk_id} {citation.start} {citation.end} {citation.highlight_start} " \
              f"{citation.highlight_end} 123"
    box, title, view, download = app.open_source(request)
    assert box.visible and SEED_TITLE in title and "2021-10-20" in title
    marked = view.split('<mark id="qa-view-mark">')[1].split("</mark>")[0]
    assert marked and marked in citation.quote and "qa-passage" in view
    served = download.value
    assert download.visible and served["orig_name"] == SEED_FILE.name
    assert Path(served["path"]).read_bytes() == SEED_FILE.read_bytes()
    assert "no longer in the index" in app.open_source("gone:1 0 1 0 1 5")[2]


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
        yield f"http://127.0.0.1:{app.settings.web.port}/"
    finally:
        demo.close()


def test_api_answers_with_sources_as_data_and_sessions_are_separate(served: str, app: ChatApp):
    from gradio_client import Client

    replies = {"Who leads the Taliban delegation?": "Abdul Salam Hanafi leads it [1].",
               "How much has Brussels pledged?": "One billion euros [1]."}

    class PerQuestion(FakeGenerator):  # fake: replies by question, to tell sessions apart
        def stream_chat(self, messages: list[dict[str, str]], max_tokens: int | None = None,
                        grammar: str | None = None, keep_state: bool = True) -> Any:
            reply = next(r for q, r in replies.items() if q in messages[-1]["content"])
            yield from (w + " " for w in reply.split(" "))

    app.assistant.generator = PerQuestion()
    results = ask_at_once(served, replies, timeout=60)
    for question, reply in replies.items():
        record = results[question]
        assert record["question"] == question and record["answer"].startswith(reply.split(" [")[0])
        assert record["sources"][0]["file"] == SEED_FILE.name and record["sources"][0]["quote"]
        assert [t["check"] for t in record["trace"]][:2] == ["reader", "evidence"]
    client = Client(served, verbose=False)
    assert client.predict(api_name="/documents")[0]["file"] == SEED_FILE.name
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="The question is empty"):
        client.predict("  ", [], api_name="/ask")


def test_password_is_required_when_auth_is_set(app: ChatApp):
    from gradio_client import Client

    app.settings = app.settings.replace(port=_free_port(), auth="ana:s3cret")
    demo = launch(app, block=False)
    url = f"http://127.0.0.1:{app.settings.web.port}/"
    try:
        with pytest.raises(Exception):  # noqa: B017 - refused before any API is visible
            Client(url, verbose=False)
        client = Client(url, auth=("ana", "s3cret"), verbose=False)
        assert client.predict(api_name="/documents")[0]["file"] == SEED_FILE.name
    finally:
        demo.close()


def test_a_pdf_source_is_its_page_with_the_cited_sentence_boxed(tmp_path: Path):
    from reportlab.pdfgen import canvas

    from qa.ingest.documents import load_document
    from qa.web.viewer import Span, render_view

    path = tmp_path / "depot.pdf"
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, "Page one is about the weather.")
    pdf.showPage()
    pdf.drawString(72, 720, "Nothing here.")
    pdf.drawString(72, 400, "Admiral Ines Okafor commands the depot.")
    pdf.save()
    document = load_document(path)
    start = document.text.index("Admiral")
    end = document.text.index("depot.") + len("depot.")
    html = render_view(document, Span(start, end, start, end))
    assert 'data-page="2"' in html and "data:image/jpeg;base64," in html
    top = float(re.search(r'id=qa-view-mark style="left:[\d.]+%;top:([\d.]+)%', html).group(1))
    assert 40 < top < 60  # drawn at 400 of 842 points from the bottom: about half way down
    text = render_view(load_document(SEED_FILE), Span(0, 10, 2, 8))
    assert '<mark id="qa-view-mark">' in text and "qa-page" not in text
