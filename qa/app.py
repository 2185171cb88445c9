"""The web chat (``qa serve``): a Gradio app over one shared ``Assistant``.

* The page is served before any model loads; a background thread then warms the
  embedder and the generator, so the first question does not pay for loading.
* Each browser session keeps its own conversation in ``gr.State``; the server keeps
  only a per-session counter of "New chat" presses (to stop abandoned answers), so
  sessions cannot see each other's conversations.
* Answers run one at a time on the one model: the chat event and the ``ask`` API
  share one concurrency group of size 1, so Gradio queues the rest and shows each
  waiting user their place. Indexing uploads is a separate group, so it never
  holds up answering (the assistant swaps in the new index when it is ready).
* Errors a user can act on (``QAError``) are shown as messages, never tracebacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.answering import Assistant  # noqa: E402
from qa.app_render import (  # noqa: E402
    render_answer,
    render_error,
    render_partial,
    render_status,
    source_record,
)
from qa.app_uploads import Refusal, check_upload, is_upload, store_upload, uploads_dir  # noqa: E402
from qa.documents import SUPPORTED_SUFFIXES  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.indexing import IndexReport  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import Answer  # noqa: E402

log = logging.getLogger(__name__)

CSS_PATH = Path(__file__).with_name("app.css")
GENERATE = "generate"  # concurrency group of everything that runs the generator
INDEX = "index"  # concurrency group of everything that rewrites the index
SEED_NAME = "russia-hosts-taliban-moscow-talks-2021-10-20.txt"
SEED_EXAMPLES = [
    "Who leads the Taliban delegation?",
    "How many Islamic State fighters did Putin say had gathered in northern Afghanistan?",
    "How much has Brussels pledged to avert a humanitarian crisis?",
    "Will Russia officially recognise the Taliban government?",
]
PLACEHOLDER = ('<div class="qa-empty"><h3>Ask about the briefings</h3><p>Every answer cites its '
               "sources: numbered passages underneath, with the supporting sentence highlighted. "
               "Open a source to read it in context. Follow-up questions keep the conversation."
               "</p><p>Not sure where to start? Try one of the examples below.</p></div>")
QUEUED = "Queued: the model is answering another question; yours starts as soon as it is free."
SEARCHING = "Searching the documents…"

Messages = list[dict[str, Any]]
Turns = list[list[str]]  # [question, answer text] of each finished exchange
Pending = dict[str, Any] | None  # the question being answered, and in which chat of the session


class ConfigError(QAError):
    pass


class ChatApp:
    """What all sessions share: the assistant, the index lock, model readiness."""

    def __init__(self, assistant: Assistant, settings: Settings):
        self.assistant = assistant
        self.settings = settings
        self.uploads = uploads_dir(assistant.index_dir or settings.index_dir)
        self.max_bytes = settings.max_upload_mb * 2**20
        self.index_lock = threading.Lock()
        self.ready = threading.Event()
        self.warmup_error: str | None = None
        self._answering = 0
        self._count_lock = threading.Lock()
        self._chats: dict[str, int] = {}  # session -> how many times "New chat" was pressed

    # -- asking ------------------------------------------------------------------------

    def start_turn(self, question: str, messages: Messages, pending: Pending,
                   request: gr.Request | None = None) -> tuple[str, Messages, Pending]:
        """Show the question at once, with a status line, while it waits for the model."""
        if pending:
            raise gr.Error("Wait for the current answer to finish (or start a new chat) before "
                           "asking the next question.")
        question = self._check(question)
        status = QUEUED if self.busy else SEARCHING
        messages = [*messages, _message("user", question), _message("assistant", render_status(status))]
        return "", messages, {"question": question, "chat": self._chat_number(request)}

    def respond(self, pending: Pending, messages: Messages, turns: Turns,
                request: gr.Request | None = None) -> Iterator[tuple[Any, Any, Any]]:
        """Stream the answer into the last message, then replace it with answer + sources.

        Only the last update touches the conversation state. Once the user leaves this
        chat with "New chat" the answer stops, and its last update changes nothing:
        Gradio re-sends a generator's last update when it ends, so an update that
        showed the answer would bring the abandoned chat back.
        """
        if not pending or pending["chat"] != self._chat_number(request):
            yield _NO_CHANGE
            return
        question, chat = pending["question"], pending["chat"]
        earlier = list(messages[:-1])  # the placeholder reply is replaced as the answer grows
        shown = render_status(SEARCHING)
        answer: Answer | None = None
        with self._answering_slot(), contextlib.closing(self._stream(question, turns)) as stream:
            yield [*earlier, _message("assistant", shown)], gr.skip(), gr.skip()
            for shown, final in stream:
                if self._chat_number(request) != chat:
                    break  # closing the stream frees the model for the next user
                answer = final or answer
                yield [*earlier, _message("assistant", shown)], gr.skip(), gr.skip()
        if self._chat_number(request) != chat:
            yield _NO_CHANGE
            return
        finished = [*turns, [question, answer.text]] if answer is not None else turns
        yield [*earlier, _message("assistant", shown)], finished, None

    def new_chat(self, request: gr.Request | None = None) -> tuple[Messages, Turns, Pending]:
        """Start over: empty chat and history; an answer still running stops updating."""
        key = _session(request)
        with self._count_lock:
            self._chats[key] = self._chats.get(key, 0) + 1
        return [], [], None

    def forget_session(self, request: gr.Request | None = None) -> None:
        """The browser went away: drop what was kept for it."""
        self._chats.pop(_session(request), None)

    def _chat_number(self, request: gr.Request | None) -> int:
        return self._chats.get(_session(request), 0)

    def ask(self, question: str, history: list[list[str]] | None = None) -> dict[str, Any]:
        """Answer ``question`` (after earlier [question, answer] turns) with its sources as data."""
        try:
            with self._answering_slot():
                answer = self.assistant.ask(question, _turns(history or []))
        except QAError as error:
            raise gr.Error(str(error)) from error
        return answer_record(answer)

    @property
    def busy(self) -> bool:
        return self._answering > 0

    def _stream(self, question: str, turns: Turns) -> Iterator[tuple[str, Answer | None]]:
        """(HTML to show, final answer or None) as the answer is generated."""
        stream = self.assistant.stream(question, _turns(turns))
        text = ""
        try:
            for piece in stream:
                if isinstance(piece, Answer):
                    yield render_answer(piece, self.document_text), piece
                    return
                text += piece
                yield render_partial(text), None
        except QAError as error:
            yield render_error(str(error)), None
        except Exception:  # never a traceback in the page; the log has it
            log.exception("answering %r failed", question)
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

    def _check(self, question: str) -> str:
        try:
            return self.assistant.check_question(question)
        except QAError as error:
            raise gr.Error(str(error)) from error

    def document_text(self, chunk_id: str) -> str | None:
        """The full text of the document a chunk belongs to, if it is still indexed."""
        store = self.assistant.store
        try:
            return store.documents[store.chunk(chunk_id).doc_id].text
        except KeyError:
            return None

    # -- documents ---------------------------------------------------------------------

    def list_documents(self) -> list[dict[str, Any]]:
        """The indexed documents: doc_id, title, date, file and number of chunks."""
        return [{"doc_id": d["doc_id"], "title": d["title"], "date": d["date"],
                 "file": Path(d["source"]).name, "chunks": d["chunks"]}
                for d in self.assistant.documents]

    def documents_panel(self, message: str = "") -> tuple[Any, Any, Any]:
        """(status message, table rows, removal choices) for the documents panel."""
        rows, choices = self.documents_rows()
        return message, rows, gr.Dropdown(choices=choices, value=None)

    def documents_rows(self) -> tuple[list[list[Any]], list[tuple[str, str]]]:
        """Table rows (title, date, chunks) and (label, doc_id) choices for removal."""
        documents = self.list_documents()
        rows = [[d["title"], d["date"] or "—", d["chunks"]] for d in documents]
        return rows, [(f"{d['title']} ({d['file']})", d["doc_id"]) for d in documents]

    def upload(self, files: Sequence[str] | None,
               progress: gr.Progress = gr.Progress()) -> tuple[Any, Any, Any, None]:  # noqa: B008
        """Check, store and index uploaded files; refused ones are named with the reason."""
        accepted: list[Path] = []
        refused: list[Refusal] = []
        for path in map(Path, files or []):
            problem = check_upload(path, self.max_bytes)
            if problem:
                refused.append(problem)
            else:
                accepted.append(path)
        lines = [f"Refused {r}." for r in refused]
        if refused:
            gr.Warning(" ".join(lines))
        if accepted:
            lines.insert(0, self._index(accepted, progress))
        return (*self.documents_panel("\n\n".join(lines)), None)

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
        gr.Info(f"Indexed {names}; ask about it now.")
        return f"Indexed {names} ({result.summary()}). You can ask about it now."

    def remove(self, doc_id: str | None) -> tuple[Any, Any, Any]:
        """Drop a document from the index (and its stored file, if it was uploaded)."""
        if not doc_id:
            return self.documents_panel("Choose a document to remove first.")
        with self.index_lock:
            document = self.assistant.store.documents.get(doc_id)
            if document is None:
                return self.documents_panel("That document is no longer in the index.")
            self.assistant.remove_document(doc_id)
        if is_upload(document.source, self.uploads):
            Path(document.source).unlink(missing_ok=True)
        return self.documents_panel(f"Removed “{document.title}”.")

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
        """Questions a first-time user can click; the seed briefing has its own."""
        documents = self.list_documents()
        if any(d["file"] == SEED_NAME for d in documents):
            return SEED_EXAMPLES
        return [f"What is “{d['title']}” about?" for d in documents[:3]]


# -- the page ----------------------------------------------------------------------------


def build_ui(app: ChatApp) -> gr.Blocks:
    """The layout: chat (with examples) on the left, documents panel on the right."""
    with gr.Blocks(title="Briefing QA", analytics_enabled=False) as demo:
        turns = gr.State([])
        pending = gr.State(None)
        with gr.Row(elem_id="qa-header"):
            gr.Markdown("## Briefing QA\nAnswers come only from the indexed briefings, "
                        "with numbered sources you can open.", elem_id="qa-title")
            model = gr.Markdown(app.model_status()[0], elem_id="qa-model-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=480):
                chat = _chat_column(app)
            with gr.Column(scale=2, min_width=320, elem_id="qa-docs"):
                docs = _documents_column(app)
        timer = gr.Timer(2.0, active=not app.ready.is_set())
        _wire_chat(app, chat, turns, pending)
        _wire_documents(app, docs)
        quiet = {"queue": False, "show_progress": "hidden", "api_visibility": "private"}
        timer.tick(app.model_status, outputs=[model, timer], **quiet)
        demo.load(app.model_status, outputs=[model, timer], **quiet)
        demo.load(app.documents_panel, outputs=docs[2:5], **quiet)
        demo.unload(app.forget_session)
        gr.api(app.ask, api_name="ask", concurrency_limit=1, concurrency_id=GENERATE)
        gr.api(app.list_documents, api_name="documents", queue=False)
    return demo


def _chat_column(app: ChatApp) -> dict[str, Any]:
    chatbot = gr.Chatbot(label="Conversation", show_label=False, elem_id="qa-chat", height="68vh",
                         latex_delimiters=[], feedback_options=None, buttons=["copy"], layout="panel",
                         placeholder=PLACEHOLDER)
    with gr.Row(elem_id="qa-ask-row"):
        question = gr.Textbox(show_label=False, placeholder="Ask about the briefings…", scale=8,
                              container=False, autofocus=True, elem_id="qa-question")
        ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-ask")
        new = gr.Button("New chat", scale=1, min_width=140, elem_id="qa-new")
    examples = app.examples()
    if examples:
        gr.Examples(examples=[[e] for e in examples], inputs=[question], label="Try asking",
                    elem_id="qa-examples")
    return {"chatbot": chatbot, "question": question, "ask": ask, "new": new}


def _documents_column(app: ChatApp) -> tuple[Any, ...]:
    gr.Markdown("### Documents")
    kinds = ", ".join(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
    files = gr.File(label=f"Add documents ({kinds}; up to {app.settings.max_upload_mb} MB each)",
                    file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), type="filepath",
                    height=120, elem_id="qa-upload")
    rows, choices = app.documents_rows()
    status = gr.Markdown(elem_id="qa-doc-status")
    table = gr.Dataframe(rows, headers=["Title", "Date", "Chunks"], interactive=False, wrap=True,
                         column_widths=["64%", "22%", "14%"], elem_id="qa-doc-table", max_height=420)
    choice = gr.Dropdown(label="Remove a document", choices=choices, value=None,
                         elem_id="qa-remove-choice")
    remove = gr.Button("Remove from the index", variant="stop", size="md", elem_id="qa-remove")
    return files, remove, status, table, choice


def _wire_chat(app: ChatApp, chat: dict[str, Any], turns: gr.State, pending: gr.State) -> None:
    """Every chat update goes through the queue, so a session receives them in the order
    the server made them: a "New chat" is never overtaken by a late piece of an answer."""
    chatbot, question = chat["chatbot"], chat["question"]
    for trigger in (question.submit, chat["ask"].click):
        shown = trigger(app.start_turn, [question, chatbot, pending], [question, chatbot, pending],
                        concurrency_limit=None, show_progress="hidden", api_visibility="private")
        shown.success(app.respond, [pending, chatbot, turns], [chatbot, turns, pending],
                      concurrency_limit=1, concurrency_id=GENERATE, show_progress="minimal",
                      api_visibility="private")
    chat["new"].click(app.new_chat, outputs=[chatbot, turns, pending], concurrency_limit=None,
                      show_progress="hidden", api_visibility="private")


def _wire_documents(app: ChatApp, docs: tuple[Any, ...]) -> None:
    files, remove, status, table, choice = docs
    files.upload(app.upload, [files], [status, table, choice, files], concurrency_limit=1,
                 concurrency_id=INDEX, show_progress="full", api_visibility="private")
    remove.click(app.remove, [choice], [status, table, choice], concurrency_limit=1,
                 concurrency_id=INDEX, api_visibility="private")


# -- data for the API ----------------------------------------------------------------------


def answer_record(answer: Answer) -> dict[str, Any]:
    """An answer as JSON-ready data: text with [n] markers and the sources they name."""
    return {"question": answer.question, "answer": answer.text, "abstained": answer.abstained,
            "sources": [source_record(c) for c in answer.citations],
            "timings": {k: round(v, 3) for k, v in answer.timings.items()}}


def _turns(history: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    return [(str(turn[0]), str(turn[1])) for turn in history if len(turn) >= 2]


_NO_CHANGE = (gr.skip(), gr.skip(), gr.skip())


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
        raise ConfigError("The password must be given as user:password (--auth or QA_AUTH).")
    return user, password


def open_assistant(settings: Settings, docs: str | None = None) -> Assistant:
    """Index ``docs`` first if given; this loads no generator (that waits for warm-up)."""
    if docs:
        return Assistant.from_folder(docs, settings.index_dir, settings=settings)
    return Assistant.open(settings.index_dir, settings=settings)


def launch(app: ChatApp, block: bool = True, **options: Any) -> gr.Blocks:
    """Start serving ``app`` on the configured host and port, then warm the models."""
    settings = app.settings
    demo = build_ui(app)
    demo.queue(default_concurrency_limit=None)
    launch_options: dict[str, Any] = {
        "server_name": settings.host, "server_port": settings.port, "auth": parse_auth(settings.auth),
        "auth_message": "Sign in to Briefing QA.", "max_file_size": f"{settings.max_upload_mb}mb",
        "css": CSS_PATH.read_text(encoding="utf-8"), "theme": _theme(), "ssr_mode": False,
        "footer_links": ["api"], "quiet": True, "prevent_thread_lock": True, **options,
    }
    demo.launch(**launch_options)
    app.warm_up_in_background()
    print(f"Briefing QA is serving on http://{settings.host}:{demo.server_port}", flush=True)
    if block:
        demo.block_thread()
    return demo


def serve(settings: Settings, docs: str | None = None) -> None:
    """``qa serve``: open (or build) the index, serve the page, warm the models."""
    parse_auth(settings.auth)  # a bad password setting fails before anything loads
    launch(ChatApp(open_assistant(settings, docs), settings))


def _theme() -> gr.themes.Base:
    """System fonts only: the app works offline, so nothing is fetched from font servers."""
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate",
                          font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
