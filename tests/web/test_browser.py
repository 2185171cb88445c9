"""The web chat end to end: the real models behind a served app, driven by Debian's
chromium through Playwright and by ``gradio_client``.

Two servers serve the module: one with the default generator, for what depends on
the answer (sources, the page viewer, follow-ups), and one with the packaged tiny
SmolLM2-135M (real llama.cpp, fast) for the page's behaviour, where the answer's
content does not matter. Screenshots of each state (first load, streaming, sources,
PDF page view, refusal, upload, dark mode, phone) and of failures go to
tests/artifacts/ (git-ignored) so they can be looked at.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from qa.index.indexing import update_index
from qa.models.embedder import Embedder
from qa.pipeline import Assistant, make_generator
from qa.web.app import BUSY, QUEUED, ChatApp, launch
from tests.conftest import ROOT, SEEDS, ask_at_once

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ANSWER_TIMEOUT_MS = 180_000  # the first answer also loads the generator on a busy 2-core CPU
DESKTOP = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
SEED_TITLE = "Russia hosts the Taliban for talks"
UNANSWERABLE = "Xqzvy blorft wumple?"  # nothing relevant is retrieved: refused before the model
DEPOT_LINES = ["Kestrel depot briefing",
               "The Kestrel supply depot on the island of Varnholm is commanded by",
               "Admiral Ines Okafor. The depot stores 40,000 tonnes of fuel for the",
               "northern fleet."]


# -- the servers ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(root: Path, embedder: Embedder, settings: Any) -> tuple[Any, str]:
    docs = shutil.copytree(SEEDS, root / "docs")
    settings = settings.replace(index_dir=root / "index", port=_free_port(), max_upload_mb=1)
    store = update_index([docs], settings.index_dir, embedder, settings).store
    assistant = Assistant(store, settings, embedder=embedder, generator=make_generator(settings),
                          index_dir=settings.index_dir)
    demo = launch(ChatApp(assistant, settings), block=False)
    return demo, f"http://127.0.0.1:{settings.web.port}/"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, settings: Any) -> Iterator[str]:
    """The app over a fresh index of a copy of seeds/, with the real (lazily loaded) generator."""
    demo, url = _serve(tmp_path_factory.mktemp("browser"), embedder, settings)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, settings: Any
                ) -> Iterator[str]:
    """The same app with the tiny generator: for the page's behaviour, not the answers."""
    demo, url = _serve(tmp_path_factory.mktemp("browser-tiny"), embedder,
                       settings.replace(generator_path="tiny"))
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make browser)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Opens the app in fresh browser sessions; screenshots each of them if the test fails."""
    pages: list[Any] = []
    failed_before = request.session.testsfailed

    def open_one(url: str = server, viewport: dict[str, int] = DESKTOP, context: Any = None) -> Any:
        context = context or browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_viewport_size(viewport)
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        _watch(page)
        pages.append(page)
        return page

    yield open_one
    for i, page in enumerate(pages):
        if request.session.testsfailed > failed_before:
            _screenshot(page, f"{request.node.name}-failure-{i}")
        page.context.close()


@pytest.fixture
def open_tiny(open_page: Any, tiny_server: str) -> Any:
    def open_one(viewport: dict[str, int] = DESKTOP, context: Any = None) -> Any:
        return open_page(tiny_server, viewport, context)

    return open_one


def _depot_pdf(path: Path) -> Path:
    """A one-page PDF of the depot briefing's lines."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    for i, line in enumerate(DEPOT_LINES):
        pdf.drawString(72, 720 - 16 * i, line)
    pdf.save()
    return path


def _screenshot(page: Any, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def _watch(page: Any) -> None:
    """Record what the chat showed on the way: a draft being written, an error badge."""
    page.evaluate("""() => {
        window.sawStreaming = false; window.sawDraftLabel = false; window.sawErrorBadge = false;
        new MutationObserver(() => {
            const draft = document.querySelector('#qa-chat .qa-streaming');
            if (draft) window.sawStreaming = true;
            const label = document.querySelector('#qa-chat .qa-draft-label');
            if (label && /Draft|Checking the draft/.test(label.textContent)) window.sawDraftLabel = true;
            for (const el of document.querySelectorAll('#qa-chat .error, #qa-chat-column .error')) {
                if (el.offsetParent !== null) window.sawErrorBadge = true;
            }
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")


def _submit(page: Any, question: str) -> int:
    """Type and send a question; returns how many finished replies the page will then show."""
    done = page.locator("#qa-chat .qa-done").count()
    page.fill("#qa-question textarea", question)
    page.press("#qa-question textarea", "Enter")
    return done + 1


def _reply(page: Any, expected: int, timeout: int = ANSWER_TIMEOUT_MS) -> Any:
    page.wait_for_function("n => document.querySelectorAll('#qa-chat .qa-done').length >= n",
                           arg=expected, timeout=timeout)
    return page.locator("#qa-chat .qa-done").nth(expected - 1)


def _ask(page: Any, question: str) -> Any:
    return _reply(page, _submit(page, question))


CONTRAST = r"""els => els.map(el => {
    const rgb = c => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let node = el, bg = null;
    while (node && node.nodeType === 1) {
        const c = rgb(getComputedStyle(node).backgroundColor);
        if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) { bg = c; break; }
        node = node.parentElement;
    }
    bg = bg || [255, 255, 255];
    const fg = rgb(getComputedStyle(el).color);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return {text: el.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05)};
})"""


def _contrast(page: Any, selectors: list[str]) -> list[dict[str, Any]]:
    """WCAG contrast of each matched element's text against its nearest opaque background."""
    found = []
    for selector in selectors:
        handles = page.locator(selector)
        assert handles.count(), f"nothing matches {selector}"
        found += handles.evaluate_all(CONTRAST)
    return found


# -- the page's behaviour (tiny generator) ------------------------------------------------------


def test_question_right_after_new_chat_is_answered(open_tiny: Any):
    """The stuck "Queued": New chat 0.5-1 s after asking, a new question 0.3 s later."""
    page = open_tiny()
    _screenshot(page, "first-load", full_page=False)
    _reply(page, _submit(page, "Who leads the Taliban delegation?"))  # the models are warm
    page.click("#qa-new")
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    for pause in (700, 1000):
        _submit(page, "How much has Brussels pledged to avert a humanitarian crisis?")
        page.wait_for_timeout(pause)
        page.click("#qa-new")
        page.wait_for_timeout(300)
        asked = time.monotonic()
        reply = _reply(page, _submit(page, "Who is Russia's foreign minister?"), timeout=60_000)
        assert time.monotonic() - asked < 60
        assert QUEUED not in reply.inner_text()
        expect(page.locator("#qa-chat .message-row")).to_have_count(2)
        page.click("#qa-new")
        expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    _reply(page, _submit(page, "Who leads the Taliban delegation?"), timeout=60_000)  # and later ones


def test_problems_with_a_question_show_beside_the_box_and_never_hide_the_chat(open_tiny: Any):
    page = open_tiny()
    problem = page.locator("#qa-question-problem")
    page.press("#qa-question textarea", "Enter")  # empty
    expect(problem).to_contain_text("The question is empty")
    expect(page.locator("#qa-chat .qa-empty")).to_be_visible()
    page.fill("#qa-question textarea", "Why? " * 500)  # 2,500 characters; the limit is 2,000
    page.press("#qa-question textarea", "Enter")
    expect(problem).to_contain_text("the limit is 2,000")
    assert page.input_value("#qa-question textarea").startswith("Why?")  # kept, to shorten it

    _submit(page, "How much has Brussels pledged to avert a humanitarian crisis?")
    page.wait_for_selector("#qa-chat .qa-draft, #qa-chat .qa-status", timeout=ANSWER_TIMEOUT_MS)
    page.fill("#qa-question textarea", "Who is Russia's foreign minister?")
    page.press("#qa-question textarea", "Enter")
    expect(problem).to_contain_text(BUSY)
    _screenshot(page, "question-problem-while-answering", full_page=False)
    _reply(page, 1)
    expect(page.locator("#qa-chat")).to_contain_text("How much has Brussels pledged")
    assert page.input_value("#qa-question textarea") == "Who is Russia's foreign minister?"
    assert not page.evaluate("window.sawErrorBadge"), "an error badge covered the conversation"
    page.press("#qa-question textarea", "Enter")  # once the answer is done, it is asked
    expect(problem).to_be_empty()
    _reply(page, 2)


def test_the_draft_is_labelled_until_checked_and_a_refusal_says_so(open_tiny: Any):
    page = open_tiny()
    reply = _ask(page, "Who leads the Taliban delegation?")
    assert page.evaluate("window.sawDraftLabel"), "the streamed text was not marked as a draft"
    assert reply.locator(".qa-draft").count() == 0  # the checked answer replaces the draft
    refusal = _ask(page, UNANSWERABLE)
    expect(refusal.locator(".qa-refusal")).to_contain_text("Not in the documents")
    _screenshot(page, "refusal", full_page=False)


def test_dark_mode_is_readable(open_page: Any, tiny_server: str, browser: Any):
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    page = open_page(tiny_server + "?__theme=dark", DESKTOP, context)
    assert page.evaluate("document.body.classList.contains('dark') || "
                         "!!document.querySelector('.dark')")
    refusal = _ask(page, UNANSWERABLE)
    page.press("#qa-question textarea", "Enter")  # a problem line too
    expect(page.locator("#qa-question-problem p")).to_be_visible()
    expect(refusal.locator(".qa-refusal strong")).to_be_visible()
    ratios = _contrast(page, [".qa-refusal strong", ".qa-refusal", "#qa-question-problem p",
                              "#qa-scope-note p", "#qa-doc-table td", "#qa-chat .message-row.user-row p"])
    low = [r for r in ratios if r["ratio"] < 4.5]
    assert not low, f"text below WCAG AA contrast in dark mode: {low}"
    fonts = page.locator("#qa-doc-table td, #qa-doc-table td *, #qa-doc-table th *").evaluate_all(
        "els => els.map(el => getComputedStyle(el).fontFamily)")
    assert fonts and not [f for f in fonts if "mono" in f.lower()], "the documents table is monospace"
    _screenshot(page, "dark-mode", full_page=False)


def test_conversations_persist_across_reloads_with_a_list_of_past_chats(open_tiny: Any, browser: Any):
    context = browser.new_context(viewport=DESKTOP)
    page = open_tiny(context=context)
    _ask(page, UNANSWERABLE)
    page.click("#qa-new")
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    _ask(page, "Who leads the Taliban delegation?")
    page.reload()
    page.wait_for_selector("#qa-question textarea")
    expect(page.locator("#qa-chat")).to_contain_text("Who leads the Taliban delegation?", timeout=20_000)
    expect(page.locator("#qa-chat .qa-done")).to_have_count(1)
    page.click("#qa-history input")
    page.get_by_role("option", name=UNANSWERABLE).click()
    expect(page.locator("#qa-chat")).to_contain_text(UNANSWERABLE)
    expect(page.locator("#qa-chat")).not_to_contain_text("Who leads the Taliban delegation?")
    _screenshot(page, "past-chats", full_page=False)
    other = open_tiny()  # another browser: its own storage, nothing of this one
    expect(other.locator("#qa-chat .qa-empty")).to_be_visible()
    other.click("#qa-history input")
    expect(other.get_by_role("option", name=UNANSWERABLE)).to_have_count(0)


def test_example_questions_come_from_the_documents_and_clicking_one_asks_it(open_tiny: Any):
    page = open_tiny()
    examples = page.locator("#qa-examples label")
    expect(examples.first).to_be_visible()
    texts = examples.all_inner_texts()
    assert len(texts) >= 3 and any("Putin" in t or "Islamic State" in t for t in texts), texts
    assert all(e.is_visible() and e.bounding_box()["y"] + e.bounding_box()["height"] <= DESKTOP["height"]
               for e in examples.all()), "an example is below the fold at 1400x900"
    examples.first.click()
    expect(page.locator("#qa-chat .message-row").first).to_contain_text(texts[0])
    _reply(page, 1)


def test_documents_panel_titles_search_scope_upload_and_confirmed_removal(open_tiny: Any, tmp_path: Path):
    import docx

    page = open_tiny()
    pdf_path = _depot_pdf(tmp_path / "harbour report.pdf")
    memo = docx.Document()
    memo.add_heading("Varnholm ferry memo", level=1)
    memo.add_paragraph("The Varnholm ferry runs twice a day. " * 400)  # long enough to show progress
    docx_path = tmp_path / "memo_final_v2.docx"
    memo.save(str(docx_path))
    page.evaluate("""() => { window.maxTrackers = 0; new MutationObserver(() => {
        const shown = [...document.querySelectorAll('#qa-docs .progress-level, #qa-docs .eta-bar')]
            .filter(el => el.offsetParent !== null && getComputedStyle(el).opacity !== '0');
        window.maxTrackers = Math.max(window.maxTrackers, shown.length);
    }).observe(document.body, {subtree: true, childList: true, attributes: true}); }""")
    page.set_input_files("#qa-upload input[type=file]", [str(pdf_path), str(docx_path)])
    status = page.locator("#qa-doc-status")
    status.get_by_text("Indexed harbour report.pdf").wait_for(timeout=90_000)
    _screenshot(page, "upload-indexed", full_page=False)
    assert page.evaluate("window.maxTrackers") == 1, "not one progress indicator while indexing"
    table = page.locator("#qa-doc-table")
    expect(table).to_contain_text("Kestrel depot briefing")  # the PDF's first line, not its file name
    expect(table).to_contain_text("Varnholm ferry memo")  # the docx heading
    assert "undated" not in table.inner_text().split("Varnholm ferry memo")[1].split("\n")[1]

    too_big = tmp_path / "huge.txt"
    too_big.write_text("All quiet on the northern front. " * 50_000)  # 1.6 MB; the limit here is 1 MB
    page.set_input_files("#qa-upload input[type=file]", [str(too_big)])
    expect(page.get_by_text("exceed the maximum allowed size of 1.0 Mb")).to_be_visible()
    expect(status).not_to_contain_text("Indexed")  # the line no longer reports the earlier upload

    page.fill("#qa-doc-search textarea", "kestrel")
    expect(table.locator("tbody tr")).to_have_count(1)
    page.locator("#qa-scope").get_by_label("Kestrel depot briefing", exact=False).check()
    expect(page.locator("#qa-scope-note")).to_contain_text("Asking only about: Kestrel depot briefing")
    page.fill("#qa-doc-search textarea", "")
    expect(table).to_contain_text("Varnholm ferry memo")  # the page has grown back before a list opens

    page.click("#qa-remove-choice input")
    page.get_by_role("option", name="Varnholm ferry memo", exact=False).click()
    page.click("#qa-remove")
    confirm = page.locator("#qa-remove-confirm")
    expect(confirm).to_contain_text("Remove “Varnholm ferry memo”")
    expect(confirm).to_contain_text("uploaded copy is deleted too")
    _screenshot(page, "remove-confirmation", full_page=False)
    page.click("#qa-remove-no")
    expect(confirm).to_be_hidden()
    expect(table).to_contain_text("Varnholm ferry memo")
    page.click("#qa-remove")
    page.click("#qa-remove-yes")
    expect(status).to_contain_text("Removed “Varnholm ferry memo” and deleted its uploaded copy")
    expect(table).not_to_contain_text("Varnholm ferry memo")


# -- answers (default generator) --------------------------------------------------------------


def test_seed_question_streams_an_answer_with_its_sources_and_follow_up(open_page: Any):
    page = open_page()
    expect(page.locator("#qa-doc-table")).to_contain_text(SEED_TITLE)
    expected = _submit(page, "Who leads the Taliban delegation?")
    page.wait_for_selector("#qa-chat .qa-streaming", timeout=ANSWER_TIMEOUT_MS)
    _screenshot(page, "streaming", full_page=False)
    reply = _reply(page, expected)
    assert "Hanafi" in reply.locator(".qa-answer").inner_text()
    assert page.evaluate("window.sawStreaming"), "the answer never appeared partly written"
    assert page.evaluate("window.sawDraftLabel"), "the streamed text was not marked as a draft"
    source = reply.locator(".qa-source").first
    assert source.locator(".qa-num").inner_text() == "1"  # numbered from 1, whichever passage
    assert SEED_TITLE in source.locator(".qa-title").inner_text()
    assert "2021-10-20" in source.locator(".qa-meta").inner_text()
    assert source.locator(".qa-quote mark").count() == 1  # the cited part is highlighted
    assert "Hanafi" in source.locator(".qa-quote mark").inner_text()  # the supporting sentence

    badge = reply.locator(".qa-cite").first  # on the line of the word before it, and clickable
    word_box = badge.locator("xpath=..").bounding_box()
    assert word_box["height"] < 2.2 * badge.bounding_box()["height"], "the badge wrapped"
    page.locator("#qa-chat [role=log]").evaluate("el => el.scrollTop = 0")
    badge.click()
    expect(source).to_have_class("qa-source qa-flash")
    assert source.is_visible()

    source.locator(".qa-context summary").click()  # the surrounding text, in the card itself
    context = source.locator(".qa-context-text")
    assert context.is_visible() and len(context.inner_text()) > len(source.locator(".qa-quote").inner_text())
    assert context.evaluate("el => el.scrollHeight <= el.clientHeight + 1"), "a scrolling box in the chat"
    _screenshot(page, "sources", full_page=False)

    source.locator(".qa-open-page").click()  # the document itself, sentence marked and in view
    viewer = page.locator("#qa-viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator("#qa-viewer-title")).to_contain_text(SEED_TITLE)
    mark = viewer.locator("#qa-view-mark")
    expect(mark).to_contain_text("Hanafi")
    page.wait_for_function("""() => { const m = document.querySelector('#qa-view-mark');
        const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }""")
    expect(viewer.locator("#qa-viewer-download")).to_be_visible()
    _screenshot(page, "viewer-text", full_page=False)
    page.click("#qa-viewer-close")
    expect(viewer).to_be_hidden()

    page.evaluate("document.body.classList.add('dark')")  # the same answer in dark mode
    ratios = _contrast(page, [".qa-answer", ".qa-title", ".qa-meta", ".qa-open-page",
                              ".qa-context summary", ".qa-cite", ".qa-quote"])
    low = [r for r in ratios if r["ratio"] < 4.5]
    assert not low, f"text below WCAG AA contrast in dark mode: {low}"
    _screenshot(page, "sources-dark", full_page=False)
    page.evaluate("document.body.classList.remove('dark')")

    follow_up = _ask(page, "What did he do last week?")
    quotes = " ".join(follow_up.locator(".qa-quote").all_inner_texts())
    assert "Hanafi" in quotes, "the follow-up was not resolved to the person asked about"

    # On a phone (the same browser, so the chat comes back from its storage): one column,
    # the page scrolls, not boxes inside it.
    page = open_page(viewport=PHONE, context=page.context)
    reply = page.locator("#qa-chat .qa-done").first
    expect(reply.locator(".qa-source").first).to_be_visible(timeout=20_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    quote = reply.locator(".qa-quote").first
    quote.scroll_into_view_if_needed()
    nested = quote.evaluate("""el => { const boxes = [];
        for (let n = el.parentElement; n && n !== document.body; n = n.parentElement) {
            const s = getComputedStyle(n);
            const scrolls = /(auto|scroll)/.test(s.overflowY) && n.scrollHeight > n.clientHeight + 1;
            if (scrolls) boxes.push(n.id || n.className);
        }
        return boxes; }""")
    assert not nested, f"the cited passage scrolls inside {nested}"
    box = quote.bounding_box()
    assert 0 <= box["y"] < PHONE["height"] and box["x"] >= -1
    assert box["x"] + box["width"] <= PHONE["width"] + 1, "the passage is wider than the phone"
    _screenshot(page, "phone", full_page=False)
    page.locator("#qa-question textarea").scroll_into_view_if_needed()
    question_box = page.locator("#qa-question textarea").bounding_box()
    assert question_box["width"] > 0.6 * PHONE["width"]
    _screenshot(page, "phone-full")


def test_uploaded_pdf_is_answered_from_and_its_page_shown(open_page: Any, tmp_path: Path):
    page = open_page()
    document = _depot_pdf(tmp_path / "depot.pdf")
    refused = tmp_path / "tool.exe"
    refused.write_bytes(b"MZ")
    page.set_input_files("#qa-upload input[type=file]", [str(document), str(refused)])
    status = page.locator("#qa-doc-status")
    status.get_by_text("Indexed depot.pdf").wait_for(timeout=60_000)
    expect(status).to_contain_text("Refused tool.exe: unsupported file type .exe")
    expect(page.locator("#qa-doc-table")).to_contain_text("Kestrel depot briefing")

    reply = _ask(page, "Who commands the Kestrel supply depot?")
    assert "Okafor" in reply.locator(".qa-answer").inner_text()
    source = reply.locator(".qa-source").filter(has_text="Kestrel depot briefing").first
    expect(source.locator(".qa-meta")).to_contain_text("page 1")
    source.locator(".qa-open-page").click()
    viewer = page.locator("#qa-viewer")
    expect(viewer.locator(".qa-page img")).to_be_visible()
    assert viewer.locator(".qa-page").get_attribute("data-page") == "1"
    assert viewer.locator(".qa-page-mark").count() >= 1, "the cited sentence is not marked on the page"
    image = viewer.locator(".qa-page img").bounding_box()
    mark = viewer.locator(".qa-page-mark").first.bounding_box()
    assert image["y"] < mark["y"] < image["y"] + image["height"] / 2  # near the top, where it is
    _screenshot(page, "pdf-page-view", full_page=False)
    page.click("#qa-viewer-close")


def test_two_sessions_each_get_their_own_answer_and_the_second_is_queued(open_page: Any):
    first, second = open_page(), open_page()
    expect_first = _submit(first, "How much has Brussels pledged to avert a humanitarian calamity?")
    first.wait_for_selector("#qa-chat .qa-streaming", timeout=ANSWER_TIMEOUT_MS)
    expect_second = _submit(second, "Who is Russia's foreign minister?")
    second.get_by_text(QUEUED).wait_for(timeout=10_000)  # told they wait for the model
    _screenshot(second, "session-queued")

    first_reply = _reply(first, expect_first).inner_text()
    second_reply = _reply(second, expect_second).inner_text()
    assert "billion" in first_reply.lower() and "Lavrov" in second_reply
    # Neither chat shows the other's question or answer (sources may quote any sentence).
    first_messages = " ".join(first.locator("#qa-chat .qa-answer").all_inner_texts())
    second_messages = " ".join(second.locator("#qa-chat .qa-answer").all_inner_texts())
    assert "billion" in first_messages.lower() and "Lavrov" in second_messages
    assert "Lavrov" not in first_messages and "Russia's foreign minister?" not in first_messages
    assert "billion" not in second_messages and "Brussels" not in second_messages
    assert "Who is Russia's foreign minister?" not in first.locator("#qa-chat").inner_text()
    assert "How much has Brussels pledged" not in second.locator("#qa-chat").inner_text()


@pytest.mark.xfail(strict=False, reason=(
    "known regression, open: a New chat clicked while the draft is being checked (the judge's "
    "second model call) can let the abandoned answer come back into the new chat"))
def test_new_chat_during_an_answer_stops_it_and_the_next_question_is_answered(open_page: Any):
    page = open_page()
    # A question with a long answer, and "in progress" is drafting or checking: with the
    # briefing's prefill cached a short answer ("2,000 [2].") streams in a blink.
    _submit(page, "What did Putin warn about last week, and what did he say the fighters planned to do?")
    page.wait_for_selector("#qa-chat .qa-draft", timeout=ANSWER_TIMEOUT_MS)
    page.click("#qa-new")
    # Generous waits: on a loaded 2-core machine the page can take seconds to clear.
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    page.wait_for_timeout(1500)  # the abandoned answer must not come back
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    reply = _ask(page, "Who leads the Taliban delegation?")  # the model was released
    assert "Hanafi" in reply.inner_text()
    assert "the fighters planned to do" not in page.locator("#qa-chat").inner_text()  # gone with its chat


# -- through gradio_client ---------------------------------------------------------------------


def test_api_returns_answer_text_and_sources_as_data(server: str):
    from gradio_client import Client

    client = Client(server, verbose=False)
    first = client.predict("Who leads the Taliban delegation?", [], api_name="/ask")
    assert "Hanafi" in first["answer"] and not first["abstained"]
    source = first["sources"][0]
    assert source["number"] == 1 and SEED_TITLE in source["title"] and source["date"] == "2021-10-20"
    assert source["highlight"] and source["highlight"] in source["quote"]

    history = [["Who leads the Taliban delegation?", first["answer"]]]
    follow_up = client.predict("What did he do last week?", history, api_name="/ask")
    assert any("Hanafi" in s["quote"] for s in follow_up["sources"])


def test_api_concurrent_sessions_get_their_own_answers(server: str):
    questions = {"Who leads the Taliban delegation?": "Hanafi",
                 "How many Islamic State fighters did Putin say had gathered in northern Afghanistan?":
                     "2,000"}
    results = ask_at_once(server, questions, timeout=ANSWER_TIMEOUT_MS / 1000)
    for question, expected in questions.items():
        assert results[question]["question"] == question
        assert expected in results[question]["answer"]
