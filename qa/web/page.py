"""The web chat's page: layout, wiring of events to ``ChatApp``, style and script.

Chat on the left (past chats, the conversation, the question box with its problem
line, example questions), documents on the right (upload, search and sort, "ask
only about", remove with confirmation); the source viewer opens over the page.
Every message is escaped where it is made (``qa.web.render`` for replies, the
question in ``ChatApp.start_turn``), so the chat renders it unsanitised: the
sanitiser would strip the data attributes the script below needs.
Source cards in the chat are HTML, so ``app.js`` turns clicks on their citation
badges and "Open" links into scrolling and into events through two hidden
components (a textbox and a button), the usual bridge from page script to Gradio.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from qa.ingest.documents import SUPPORTED_SUFFIXES
from qa.web.app import GENERATE, INDEX, SORTS

if TYPE_CHECKING:
    from qa.web.app import ChatApp

HERE = Path(__file__).parent
PLACEHOLDER = ('<div class="qa-empty"><h3>Ask about the briefings</h3><p>Every answer cites its '
               "sources: numbered passages underneath, with the supporting sentence highlighted. "
               "Open a source to see it on its page. Follow-up questions keep the conversation; "
               "past chats stay in this browser.</p></div>")
PRIVATE = {"api_visibility": "private"}
QUIET = {"show_progress": "hidden", **PRIVATE}
STORAGE_KEY = "briefing-qa-chats"


def page_options() -> dict[str, Any]:
    """Style, theme and script, given to ``launch``."""
    script = (HERE / "app.js").read_text(encoding="utf-8")
    return {"css": (HERE / "app.css").read_text(encoding="utf-8"), "theme": _theme(),
            "head": f"<script>{script}</script>"}


def build_ui(app: ChatApp) -> gr.Blocks:
    """The layout and its wiring."""
    with gr.Blocks(title="Briefing QA", analytics_enabled=False) as demo:
        ui: dict[str, Any] = {
            "turns": gr.State([]), "pending": gr.State(None), "asked": gr.State(None),
            "chat_id": gr.State(""),
            "chats": gr.BrowserState([], storage_key=STORAGE_KEY, secret=app.browser_secret),
        }
        with gr.Row(elem_id="qa-header"):
            gr.Markdown("## Briefing QA\nAnswers come only from the indexed briefings, "
                        "with numbered sources you can open.", elem_id="qa-title")
            ui["model"] = gr.Markdown(app.model_status()[0], elem_id="qa-model-status")
        with gr.Row(equal_height=False, elem_id="qa-main"):
            with gr.Column(scale=3, min_width=320, elem_id="qa-chat-column"):
                ui.update(_chat_column(app))
            with gr.Column(scale=2, min_width=300, elem_id="qa-docs"):
                ui.update(_documents_column(app))
        ui.update(_viewer())
        timer = gr.Timer(2.0, active=not app.ready.is_set())
        _wire_chat(app, ui)
        _wire_documents(app, ui)
        _wire_viewer(app, ui)
        quiet = {"queue": False, **QUIET}
        timer.tick(app.model_status, outputs=[ui["model"], timer], **quiet)
        demo.load(app.model_status, outputs=[ui["model"], timer], **quiet)
        demo.load(app.restore, [ui["chats"]], [ui["chatbot"], ui["turns"], ui["chat_id"], ui["history"]],
                  **quiet)
        demo.load(app.documents_view, [ui["search"], ui["sort"], ui["scope"]], _panel(ui), **quiet)
        demo.unload(app.forget_session)
        gr.api(app.ask, api_name="ask", concurrency_limit=1, concurrency_id=GENERATE)
        gr.api(app.list_documents, api_name="documents", queue=False)
    return demo


def _chat_column(app: ChatApp) -> dict[str, Any]:
    with gr.Row(elem_id="qa-chat-bar"):
        history = gr.Dropdown(label="Past chats (kept in this browser)", choices=[], value=None,
                              scale=4, elem_id="qa-history")
        new = gr.Button("New chat", scale=1, min_width=110, elem_id="qa-new")
    chatbot = gr.Chatbot(label="Conversation", show_label=False, elem_id="qa-chat",
                         height="calc(100vh - 500px)", min_height=300,
                         latex_delimiters=[], feedback_options=None, buttons=["copy"], layout="panel",
                         placeholder=PLACEHOLDER, autoscroll=True, sanitize_html=False)
    scope_note = gr.Markdown(app.scope_note([]), elem_id="qa-scope-note")
    with gr.Row(elem_id="qa-ask-row"):
        question = gr.Textbox(show_label=False, placeholder="Ask about the briefings…", scale=8,
                              container=False, autofocus=True, elem_id="qa-question", max_lines=6)
        ask = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="qa-ask")
    problem = gr.Markdown("", elem_id="qa-question-problem")
    examples = gr.Radio(app.examples(), value=None, label="Try asking (from the indexed documents)",
                        elem_id="qa-examples")
    return {"chatbot": chatbot, "question": question, "ask": ask, "new": new, "history": history,
            "problem": problem, "examples": examples, "scope_note": scope_note}


def _documents_column(app: ChatApp) -> dict[str, Any]:
    gr.Markdown("### Documents")
    kinds = ", ".join(s.lstrip(".") for s in SUPPORTED_SUFFIXES)
    files = gr.File(label=f"Add documents ({kinds}; up to {app.settings.web.max_upload_mb} MB each)",
                    file_count="multiple", type="filepath", height=150, elem_id="qa-upload")
    status = gr.Markdown(elem_id="qa-doc-status")
    with gr.Row(elem_id="qa-doc-tools"):
        search = gr.Textbox(placeholder="Search titles and files", show_label=False, container=False,
                            scale=3, elem_id="qa-doc-search")
        sort = gr.Radio(list(SORTS), value=SORTS[0], show_label=False, container=False, scale=2,
                        elem_id="qa-doc-sort")
    rows, labels, _ = app.documents_data()
    table = gr.Dataframe(rows, headers=["Title", "Date", "File"], interactive=False, wrap=True,
                         column_widths=["52%", "18%", "30%"], elem_id="qa-doc-table", max_height=360)
    scope = gr.CheckboxGroup(label="Ask only about (none chosen: all documents)", choices=labels,
                             value=[], elem_id="qa-scope")
    with gr.Row(elem_id="qa-remove-row"):
        choice = gr.Dropdown(label="Remove a document", choices=labels, value=None, scale=3,
                             elem_id="qa-remove-choice")
        remove = gr.Button("Remove…", variant="stop", size="md", scale=1, min_width=100,
                           elem_id="qa-remove")
    with gr.Column(visible=False, elem_id="qa-remove-confirm") as confirm:
        confirm_text = gr.Markdown(elem_id="qa-remove-question")
        with gr.Row():
            yes = gr.Button("Yes, remove it", variant="stop", elem_id="qa-remove-yes")
            no = gr.Button("Cancel", elem_id="qa-remove-no")
    started = gr.Button("upload started", elem_id="qa-upload-started", elem_classes="qa-hidden")
    return {"files": files, "status": status, "search": search, "sort": sort, "table": table,
            "scope": scope, "choice": choice, "remove": remove, "confirm": confirm,
            "confirm_text": confirm_text, "yes": yes, "no": no, "started": started}


def _viewer() -> dict[str, Any]:
    with gr.Column(visible=False, elem_id="qa-viewer") as viewer:
        with gr.Row(elem_id="qa-viewer-bar"):
            title = gr.Markdown(elem_id="qa-viewer-title")
            download = gr.DownloadButton("Download the original", visible=False, size="sm",
                                         elem_id="qa-viewer-download", scale=0, min_width=160)
            close = gr.Button("Close", size="sm", elem_id="qa-viewer-close", scale=0, min_width=80)
        body = gr.HTML(elem_id="qa-viewer-body")
    request = gr.Textbox(elem_id="qa-open-request", elem_classes="qa-hidden", show_label=False)
    opener = gr.Button("open", elem_id="qa-open", elem_classes="qa-hidden")
    return {"viewer": viewer, "viewer_title": title, "viewer_body": body, "download": download,
            "close": close, "open_request": request, "open": opener}


def _panel(ui: dict[str, Any]) -> list[Any]:
    return [ui["table"], ui["scope"], ui["choice"], ui["examples"]]


def _wire_chat(app: ChatApp, ui: dict[str, Any]) -> None:
    """Every chat update goes through the queue, so a session receives them in the order
    the server made them: a "New chat" is never overtaken by a late piece of an answer.

    ``respond`` runs with trigger_mode "multiple": with Gradio's default ("once") the
    page drops a new run of an event while its previous run is still going, which left
    a question asked right after "New chat" waiting forever behind the abandoned one."""
    chatbot, pending, asked = ui["chatbot"], ui["pending"], ui["asked"]
    outputs = [ui["question"], chatbot, pending, asked, ui["problem"]]
    rest = [chatbot, pending, ui["scope"], ui["chat_id"]]
    triggers = [(ui["question"].submit, app.start_turn, ui["question"]),
                (ui["ask"].click, app.start_turn, ui["question"]),
                (ui["examples"].input, app.start_turn, ui["examples"])]
    for trigger, start, source in triggers:
        shown = trigger(start, [source, *rest], outputs, concurrency_limit=None, **QUIET)
        gated = shown.success(app.gate, [asked], None, queue=False, **QUIET)
        gated.success(app.respond, [asked, chatbot, ui["turns"], ui["chats"]],
                      [chatbot, ui["turns"], pending, ui["chats"], ui["history"]],
                      concurrency_limit=1, concurrency_id=GENERATE, trigger_mode="multiple",
                      show_progress="minimal", show_progress_on=[chatbot], **PRIVATE)
    ui["examples"].input(lambda: None, None, ui["examples"], queue=False, **QUIET)  # clickable again
    ui["question"].change(lambda: "", None, ui["problem"], queue=False, **QUIET)
    ui["new"].click(app.new_chat, outputs=[chatbot, ui["turns"], pending, ui["chat_id"], ui["history"],
                                           ui["problem"]], concurrency_limit=None, **QUIET)
    ui["history"].input(app.open_chat, [ui["history"], ui["chats"], ui["chat_id"]],
                        [chatbot, ui["turns"], pending, ui["chat_id"], ui["problem"]],
                        concurrency_limit=None, **QUIET)


def _wire_documents(app: ChatApp, ui: dict[str, Any]) -> None:
    view_inputs = [ui["search"], ui["sort"], ui["scope"]]
    for trigger in (ui["search"].change, ui["sort"].change):
        trigger(app.documents_view, view_inputs, _panel(ui), queue=False, **QUIET)
    ui["scope"].change(app.scope_note, [ui["scope"]], [ui["scope_note"]], queue=False, **QUIET)
    ui["started"].click(app.upload_started, None, [ui["status"]], queue=False, **QUIET)
    ui["files"].upload(app.upload, [ui["files"], *view_inputs],
                       [ui["status"], *_panel(ui), ui["files"]], concurrency_limit=1,
                       concurrency_id=INDEX, show_progress="full", show_progress_on=[ui["status"]],
                       **PRIVATE)
    ui["remove"].click(app.confirm_remove, [ui["choice"]],
                       [ui["confirm"], ui["confirm_text"], ui["status"]], queue=False, **QUIET)
    ui["yes"].click(app.remove, [ui["choice"], *view_inputs], [ui["status"], *_panel(ui), ui["confirm"]],
                    concurrency_limit=1, concurrency_id=INDEX, **QUIET)
    ui["no"].click(lambda: gr.Column(visible=False), None, [ui["confirm"]], queue=False, **QUIET)


def _wire_viewer(app: ChatApp, ui: dict[str, Any]) -> None:
    shown = ui["open"].click(app.open_source, [ui["open_request"]],
                             [ui["viewer"], ui["viewer_title"], ui["viewer_body"], ui["download"]],
                             concurrency_limit=None, **QUIET)
    shown.then(None, js="() => window.qaShowMark && window.qaShowMark()", **QUIET)
    ui["close"].click(lambda: gr.Column(visible=False), None, [ui["viewer"]], queue=False, **QUIET)


def _theme() -> gr.themes.Base:
    """System fonts only: the app works offline, so nothing is fetched from font servers."""
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate",
                          font=["system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])
