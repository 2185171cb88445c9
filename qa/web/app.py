"""The web chat (``qa serve``): a Gradio app over one shared ``Assistant``.

* The page is served before any model loads; a background thread then warms the
  embedder and the generator, so the first question does not pay for loading.
* Each browser keeps its own conversations in its own storage (``gr.BrowserState``,
  see ``qa.web.chats``); the server keeps only a per-session counter of chats left
  (to stop abandoned answers), so sessions cannot see each other's conversations.
* Answers run one at a time on the one model: the chat event and the ``ask`` API
  share one concurrency group of size 1, so Gradio queues the rest and shows each
  waiting user their place. Indexing uploads is a separate group, so it never
  holds up answering (the assistant swaps in the new index when it is ready).
* What is shown is what the system stands behind: the streamed text is labelled a
  draft until its checks are done, and a retry or a refusal says so.
* Problems with a question (empty, too long, one already being answered) are shown
  next to the question box; errors while answering are shown as the reply; never a
  traceback, and never an error badge over the conversation.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.citations import renumbered  # noqa: E402
from qa.errors import ConfigurationError, QAError  # noqa: E402
from qa.index.indexing import IndexReport  # noqa: E402
from qa.pipeline import Assistant  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import RETRYING, Answer, Stage  # noqa: E402
from qa.web import chats as app_chats  # noqa: E402
from qa.web.examples import example_questions  # noqa: E402
from qa.web.render import (  # noqa: E402
    RETRIED,
    WHY,
    WITHDRAWN,
    render_answer,
    render_draft,
    render_error,
    render_status,
    source_record,
)
from qa.web.uploads import Refusal, check_upload, is_upload, store_upload, uploads_dir  # noqa: E402
from qa.web.viewer import Span, render_view  # noqa: E402

log = logging.getLogger(__name__)

GENERATE = "generate"  # concurrency group of everything that runs the generator
INDEX = "index"  # concurrency group of everything that rewrites the index
QUEUED = "Queued: the model is answering another question; yours starts as soon as it is free."
SEARCHING = "Searching the documents…"
BUSY = "Wait for the current answer to finish (or start a new chat) before asking the next question."
SORTS = ("Newest first", "Title")
HANDOVER_WAIT = 2.0  # seconds "New chat" waits at most for an answer's update to be queued

Messages = list[dict[str, Any]]
Turns = list[list[str]]  # [question, answer text] of each finished exchange


@dataclass(frozen=True)
class Asked:
    """A question accepted for answering: in which chat of the session, about which documents."""

    question: str
    chat: int  # the session's chat counter when it was asked
    chat_id: str  # the stored conversation it belongs to
    documents: tuple[str, ...] = ()  # doc_ids it is limited to; empty: all


class ChatApp:
    """What all sessions share: the assistant, the index lock, model readiness."""

    def __init__(self, assistant: Assistant, settings: Settings):
        self.assistant = assistant
        assistant.warm_in_background = settings.reader.warm_in_background  # off by default: see Settings
        self.settings = settings
        self.uploads = uploads_dir(assistant.index_dir or settings.index_dir)
        self.downloads = Path(tempfile.mkdtemp(prefix="qa-originals-"))
        self.max_bytes = settings.web.max_upload_mb * 2**20
        self.index_lock = threading.Lock()
        self.ready = threading.Event()
        self.warmup_error: str | None = None
        self._answering = 0
        self._count_lock = threading.Lock()
        self._handovers: dict[str, threading.Lock] = {}  # session -> see _handover
        self._chats: dict[str, int] = {}  # session -> how many chats it has left
        self.browser_secret = app_chats.browser_secret(settings.cache_dir)

    # -- asking ------------------------------------------------------------------------

    def start_turn(self, question: str, messages: Messages, pending: Asked | None,
                   documents: Sequence[str] | None = None, chat_id: str = "",
                   request: gr.Request | None = None) -> tuple[Any, Any, Any, Asked | None, str]:
        """Show the question at once, with a status line, while it waits for the model.

        Returns (question box, chat, pending, asked, problem): a question that cannot be
        asked keeps its text in the box, leaves the chat alone and says why beside it.
        A pending question of a chat the user has since left does not block a new one.
        """
        chat = self._chat_number(request)
        if pending is not None and pending.chat == chat:
            return gr.skip(), gr.skip(), gr.skip(), None, BUSY
        try:
            question = self.assistant.check_question(question)
        except QAError as error:
            return gr.skip(), gr.skip(), gr.skip(), None, str(error)
        status = QUEUED if self.busy else SEARCHING
        shown = html.escape(question)  # the chat renders HTML unsanitised (see qa.web.page)
        messages = [*messages, _message("user", shown), _message("assistant", render_status(status))]
        asked = Asked(question, chat, chat_id or app_chats.new_id(), tuple(documents or ()))
        return "", messages, asked, asked, ""

    @staticmethod
    def gate(asked: Asked | None) -> None:
        """Stops the event chain of a question that was not asked (its reason is already
        beside the box): a hidden error, so nothing covers the conversation."""
        if asked is None:
            raise gr.Error("not asked", visible=False, print_exception=False)

    def respond(self, asked: Asked | None, messages: Messages, turns: Turns,
                chats: Any = None, request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        """Stream the draft into the last message, then replace it with the checked answer.

        Yields (chat, turns, pending, stored chats, past-chats list). Only the answer's
        last update touches the conversation state. Once the user leaves this chat
        ("New chat" or another past chat) the answer stops and nothing more of it is
        shown (see ``_while_in_chat``). The generator's very last update changes
        nothing: Gradio re-sends it when a generator ends, and by then the user may
        have left the chat.
        """
        if asked is not None and asked.chat == self._chat_number(request):
            yield from self._while_in_chat(asked.chat, request, self._updates(asked, messages, turns, chats))
        yield _NO_CHANGE

    def _updates(self, asked: Asked, messages: Messages, turns: Turns, chats: Any
                 ) -> Iterator[tuple[Any, ...]]:
        earlier = list(messages[:-1])  # the placeholder reply is replaced as the answer grows
        shown = render_status(SEARCHING)
        answer: Answer | None = None
        with self._answering_slot(), contextlib.closing(self._stream(asked, turns)) as stream:
            yield [*earlier, _message("assistant", shown)], gr.skip(), gr.skip(), gr.skip(), gr.skip()
            for shown, final in stream:
                answer = final or answer
                if final is None:
                    yield [*earlier, _message("assistant", shown)], gr.skip(), gr.skip(), gr.skip(), gr.skip()
        finished = [*turns, [asked.question, answer.text]] if answer is not None else turns
        messages = [*earlier, _message("assistant", shown)]
        stored = app_chats.saved(chats, asked.chat_id, messages, finished)
        yield messages, finished, None, stored, app_chats.choices(stored, asked.chat_id)

    def _while_in_chat(self, chat: int, request: gr.Request | None, updates: Iterator[tuple[Any, ...]]
                       ) -> Iterator[tuple[Any, ...]]:
        """Hands each update to Gradio only while the user is still in ``chat``, and holds
        the hand-over lock until Gradio comes back for the next one (by then it has queued
        the update for the page). Leaving a chat takes the same lock, so its cleared chat
        always reaches the page after the last update of the answer it stopped, never
        before (which would bring the abandoned answer back)."""
        handover = self._handover(request)
        with contextlib.closing(updates):  # closing frees the model for the next user
            for update in updates:
                with handover:
                    if self._chat_number(request) != chat:
                        return
                    yield update

    def new_chat(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Start over: empty chat and history; an answer still running stops updating.
        (chat, turns, pending, chat id, past-chats list, problem line)"""
        self._leave_chat(request)
        return [], [], None, app_chats.new_id(), gr.Dropdown(value=None), ""

    def open_chat(self, chat_id: str | None, chats: Any, current: str,
                  request: gr.Request | None = None) -> tuple[Any, ...]:
        """Show a past conversation from the browser's storage (the one being answered is left)."""
        chat = app_chats.find(chats, chat_id)
        if chat is None or chat_id == current:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), ""
        self._leave_chat(request)
        return chat["messages"], chat["turns"], None, chat["id"], ""

    def restore(self, chats: Any) -> tuple[Any, ...]:
        """On page load: the latest stored conversation, and the list of past ones."""
        latest = app_chats.latest(chats)
        if latest is None:
            return [], [], app_chats.new_id(), app_chats.choices(chats, None)
        return latest["messages"], latest["turns"], latest["id"], app_chats.choices(chats, latest["id"])

    def forget_session(self, request: gr.Request | None = None) -> None:
        """The browser went away: an answer still running for it stops at its next word."""
        self._leave_chat(request)

    def _leave_chat(self, request: gr.Request | None) -> None:
        """Count the chat as left (the answer hands over nothing more), then wait until
        the update it may be handing over is queued, so this reply comes after it. A
        generator Gradio abandoned while holding the lock holds this up only briefly."""
        key = _session(request)
        with self._count_lock:
            self._chats[key] = self._chats.get(key, 0) + 1
        handover = self._handover(request)
        if handover.acquire(timeout=HANDOVER_WAIT):
            handover.release()

    def _handover(self, request: gr.Request | None) -> threading.Lock:
        """The session's lock held while an answer's update is handed to Gradio (a plain
        Lock: Gradio may resume the generator, and so release it, on another thread)."""
        with self._count_lock:
            return self._handovers.setdefault(_session(request), threading.Lock())

    def _chat_number(self, request: gr.Request | None) -> int:
        return self._chats.get(_session(request), 0)

    def ask(self, question: str, history: list[list[str]] | None = None,
            documents: list[str] | None = None) -> dict[str, Any]:
        """Answer ``question`` (after earlier [question, answer] turns), optionally only
        from some documents (doc_ids), with its sources as data."""
        try:
            with self._answering_slot():
                answer = self.assistant.ask(question, _turns(history or []), documents=documents or None)
        except QAError as error:
            raise user_error(str(error)) from None
        return answer_record(answer)

    @property
    def busy(self) -> bool:
        return self._answering > 0

    def _stream(self, asked: Asked, turns: Turns) -> Iterator[tuple[str, Answer | None]]:
        """(HTML to show, final answer or None) as the answer is drafted, checked, answered."""
        stream = self.assistant.stream(asked.question, _turns(turns), stages=True,
                                       documents=asked.documents or None)
        text, struck, retried = "", "", False
        try:
            for piece in stream:
                if isinstance(piece, Answer):
                    note = _note(piece, bool(text or struck), retried)
                    yield render_answer(piece, self.document_text, note), piece
                    return
                if isinstance(piece, Stage):
                    yield render_draft(text, piece.name, struck), None
                    if piece.name == RETRYING:  # the second draft streams below the struck first
                        retried, struck, text = True, text, ""
                    continue
                text += piece
                yield render_draft(text, struck=struck), None
        except QAError as error:
            yield render_error(str(error)), None
        except Exception:  # never a traceback in the page; the log has it
            log.exception("answering %r failed", asked.question)
            yield render_error("something went wrong on the server; its log has the details."), None
        finally:
            stream.close()  # releases the generator lock even if the user went away

    @contextlib.contextmanager
    def _answering_slot(self) -> Iterator[None]:
        with self._count_lock:
            self._answering += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._answering -= 1

    def document_text(self, chunk_id: str) -> str | None:
        """The full text of the document a chunk belongs to, if it is still indexed."""
        store = self.assistant.store
        try:
            return store.documents[store.chunk(chunk_id).doc_id].text
        except KeyError:
            return None

    # -- the source viewer -------------------------------------------------------------

    def open_source(self, request: str) -> tuple[Any, str, str, Any]:
        """The document a source card points at, as the page itself (viewer, title, page
        HTML, original file to download). ``request`` is "chunk_id start end hs he"."""
        try:
            chunk_id, *numbers = request.split()
            start, end, hs, he = map(int, numbers[:4])
            store = self.assistant.store
            document = store.documents[store.chunk(chunk_id).doc_id]
        except (ValueError, KeyError):
            return (gr.Column(visible=True), "### Source unavailable",
                    "That document is no longer in the index.", gr.DownloadButton(visible=False))
        view = render_view(document, Span(start, end, hs, he))
        where = f" · page {document.page_at(hs)}" if document.page_at(hs) else ""
        title = f"### {document.title}\n{document.date or 'undated'}{where} · {Path(document.source).name}"
        return gr.Column(visible=True), title, view, self._original(document.source)

    def _original(self, source: str) -> Any:
        """The indexed file as a download (a copy, so only indexed files are ever served)."""
        path = Path(source)
        if not path.is_file():
            return gr.DownloadButton(visible=False)
        folder = Path(tempfile.mkdtemp(dir=self.downloads))
        copy = folder / path.name
        shutil.copyfile(path, copy)
        return gr.DownloadButton("Download the original", value=str(copy), visible=True)

    # -- documents ---------------------------------------------------------------------

    def list_documents(self) -> list[dict[str, Any]]:
        """The indexed documents: doc_id, title, date, file and number of chunks."""
        return [{"doc_id": d.doc_id, "title": d.title, "date": d.date, "file": Path(d.source).name,
                 "chunks": d.chunks} for d in self.assistant.documents]

    def documents_view(self, search: str = "", sort: str = SORTS[0],
                       chosen: Sequence[str] | None = None) -> tuple[Any, Any, Any, Any]:
        """(table rows, "ask only about" choices, removal choices, examples) updates for the
        panel, filtered by ``search`` (title or file name) and sorted; chosen documents stay
        listed."""
        rows, labels, chosen = self.documents_data(search, sort, chosen)
        return (rows, gr.CheckboxGroup(choices=labels, value=chosen),
                gr.Dropdown(choices=labels, value=None), gr.Radio(choices=self.examples(), value=None))

    def documents_data(self, search: str = "", sort: str = SORTS[0], chosen: Sequence[str] | None = None
                       ) -> tuple[list[list[Any]], list[tuple[str, str]], list[str]]:
        """(table rows, (label, doc_id) choices, still-indexed chosen doc_ids)."""
        documents = self.list_documents()
        known = {d["doc_id"] for d in documents}
        chosen = [c for c in chosen or [] if c in known]
        needle = (search or "").strip().lower()
        shown = [d for d in documents
                 if not needle or needle in d["title"].lower() or needle in d["file"].lower()]
        if sort == "Title":
            shown.sort(key=lambda d: d["title"].lower())
        else:
            shown.sort(key=lambda d: d["date"] or "", reverse=True)
        listed = shown + [d for d in documents if d["doc_id"] in chosen and d not in shown]
        rows = [[d["title"], d["date"] or "—", d["file"]] for d in shown]
        return rows, [(_label(d), d["doc_id"]) for d in listed], chosen

    def scope_note(self, chosen: Sequence[str] | None) -> str:
        """What the next question will be asked about, above the question box."""
        titles = {d["doc_id"]: d["title"] for d in self.list_documents()}
        names = [titles[c] for c in chosen or [] if c in titles]
        if not names:
            return "Asking about all documents."
        return f"Asking only about: {'; '.join(names)}."

    def upload_started(self) -> str:
        return "Checking the files…"

    def upload(self, files: Sequence[str] | None, search: str = "", sort: str = SORTS[0],
               chosen: Sequence[str] | None = None,
               progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        """Check, store and index uploaded files; refused ones are named with the reason.
        (status, table, choices, removal choices, examples, cleared upload box)"""
        accepted: list[Path] = []
        refused: list[Refusal] = []
        for path in map(Path, files or []):
            problem = check_upload(path, self.max_bytes)
            if problem:
                refused.append(problem)
            else:
                accepted.append(path)
        lines = [f"Refused {r}." for r in refused]
        if accepted:
            lines.insert(0, self._index(accepted, progress))
        return ("\n\n".join(lines), *self.documents_view(search, sort, chosen), None)

    def _index(self, paths: list[Path], progress: gr.Progress) -> str:
        names = ", ".join(p.name for p in paths)
        progress(0, desc=f"Indexing {names}")

        def report(done: int, total: int, what: str) -> None:
            progress((done, total), desc=f"Indexing: {what}", unit="chunks")

        try:
            with self.index_lock:
                stored = [store_upload(p, self.uploads) for p in paths]
                result: IndexReport = self.assistant.add_documents(stored, progress=report)
        except QAError as error:
            return f"Could not index {names}: {error}"
        except Exception:
            log.exception("indexing %s failed", names)
            return f"Could not index {names}: something went wrong on the server; its log has the details."
        return f"Indexed {names} ({result.summary()}). You can ask about it now."

    def confirm_remove(self, doc_id: str | None) -> tuple[Any, str, str]:
        """(confirmation box, its question, status): removing asks first, and says whether
        the uploaded file is deleted too."""
        document = self.assistant.store.documents.get(doc_id or "")
        if document is None:
            return gr.Column(visible=False), "", "Choose a document to remove first."
        what = f"Remove “{document.title}” ({Path(document.source).name}) from the index?"
        if is_upload(document.source, self.uploads):
            what += (" Its uploaded copy is deleted too (otherwise the next indexing of "
                     "uploads would bring it back).")
        else:
            what += f" The file itself stays where it is ({document.source})."
        return gr.Column(visible=True), what, ""

    def remove(self, doc_id: str | None, search: str = "", sort: str = SORTS[0],
               chosen: Sequence[str] | None = None) -> tuple[Any, ...]:
        """Drop a document from the index, and its uploaded copy if it was uploaded (the
        confirmation said so). (status, table, choices, removal choices, examples, box)"""
        hide = gr.Column(visible=False)
        if not doc_id:
            return ("Choose a document to remove first.", *self.documents_view(search, sort, chosen), hide)
        with self.index_lock:
            document = self.assistant.store.documents.get(doc_id)
            if document is not None:
                self.assistant.remove_document(doc_id)
        if document is None:
            return ("That document is no longer in the index.",
                    *self.documents_view(search, sort, chosen), hide)
        message = f"Removed “{document.title}”."
        if is_upload(document.source, self.uploads):
            Path(document.source).unlink(missing_ok=True)
            message = f"Removed “{document.title}” and deleted its uploaded copy."
        return (message, *self.documents_view(search, sort, chosen), hide)

    # -- models ------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the models and prime the prompt prefix, off the request path."""
        try:
            self.assistant.warm_up()
        except QAError as error:
            self.warmup_error = str(error)
            log.error("warming up the models failed: %s", error)
        except Exception as error:
            self.warmup_error = f"the models could not be loaded ({type(error).__name__})"
            log.exception("warming up the models failed")
        finally:
            self.ready.set()

    def warm_up_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.warm_up, name="qa-warm-up", daemon=True)
        thread.start()
        return thread

    def model_status(self) -> tuple[str, Any]:
        """(status line, timer update): the timer stops once the models are ready."""
        if self.warmup_error:
            text = f"⚠️ {self.warmup_error}"
        elif self.ready.is_set():
            text = "● Model ready"
        else:
            text = "◌ Loading the model in the background…"
        return text, gr.Timer(active=not self.ready.is_set())

    def examples(self) -> list[str]:
        """Questions a first-time user can click, drawn from the indexed documents."""
        return example_questions(list(self.assistant.store.documents.values()))


def _note(answer: Answer, drafted: bool, retried: bool) -> str:
    """How the answer came about, when the draft the user saw is not it."""
    if answer.abstained:
        reason = answer.refusal_reason
        why = WHY.format(reason=reason.rstrip(".") + ".") if reason else ""
        withdrawn = WITHDRAWN if drafted and answer.draft is not None else ""  # not the model's own refusal
        return " ".join(part for part in (withdrawn, why) if part)
    return RETRIED if retried else ""


def _label(document: dict[str, Any]) -> str:
    return f"{document['title']} ({document['date'] or document['file']})"


# -- data for the API ----------------------------------------------------------------------


def answer_record(answer: Answer) -> dict[str, Any]:
    """An answer as JSON-ready data: text with [n] markers and the sources they name,
    numbered from 1 as the page shows them."""
    text, citations = renumbered(answer.text, answer.citations)
    return {"question": answer.question, "answer": text, "abstained": answer.abstained,
            "sources": [source_record(c) for c in citations],
            "trace": [{"check": v.check, "action": v.action, "detail": v.detail} for v in answer.trace],
            "refusal_reason": answer.refusal_reason,
            "timings": {k: round(v, 3) for k, v in answer.timings.as_dict().items()},
            "generated_tokens": answer.generated_tokens}


def user_error(message: str) -> gr.Error:
    """A mistake the user can fix: shown in the page, one line in the server log, no traceback."""
    log.warning("refused a request: %s", message)
    return gr.Error(message, print_exception=False)


def _turns(history: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    return [(str(turn[0]), str(turn[1])) for turn in history if len(turn) >= 2]


_NO_CHANGE = (gr.skip(),) * 5


def _session(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def _message(role: str, content: str) -> dict[str, Any]:
    return {"role": role, "content": content}


# -- serving -------------------------------------------------------------------------------


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``user:password`` (from --auth or QA_AUTH) as Gradio wants it."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ConfigurationError("The password must be given as user:password (--auth or QA_AUTH).")
    return user, password


def launch(app: ChatApp, block: bool = True, **options: Any) -> gr.Blocks:
    """Start serving ``app`` on the configured host and port, then warm the models."""
    from qa.web.page import build_ui, page_options

    settings = app.settings
    demo = build_ui(app)
    demo.queue(default_concurrency_limit=None)
    launch_options: dict[str, Any] = {
        "server_name": settings.web.host, "server_port": settings.web.port,
        "auth": parse_auth(settings.web.auth), "auth_message": "Sign in to Briefing QA.",
        "max_file_size": f"{settings.web.max_upload_mb}mb",
        "ssr_mode": False, "footer_links": ["api"], "quiet": True, "prevent_thread_lock": True,
        **page_options(), **options,
    }
    demo.launch(**launch_options)
    app.warm_up_in_background()
    print(f"Briefing QA is serving on http://{settings.web.host}:{demo.server_port}", flush=True)
    if block:
        demo.block_thread()
    return demo


def serve(settings: Settings, docs: str | None = None) -> None:
    """``qa serve``: open (or build) the index, serve the page, warm the models."""
    parse_auth(settings.web.auth)  # a bad password setting fails before anything loads
    launch(ChatApp(Assistant.over(docs, settings.index_dir, settings=settings), settings))

