"""The web chat end to end: the real models behind a served app, driven by Debian's
chromium through Playwright and by ``gradio_client``.

One server (one model load) serves the whole module. Screenshots of failures,
and of the answered chat for review, go to tests/artifacts/.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from qa.answering import Assistant, make_generator
from qa.app import QUEUED, ChatApp, launch
from qa.embedding import Embedder
from qa.indexing import update_index
from tests.conftest import ROOT, SEEDS, ask_at_once

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*no_silent_downcasting"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ANSWER_TIMEOUT_MS = 180_000  # the first answer also loads the generator on a busy 2-core CPU
SEED_TITLE = "Russia hosts the Taliban for talks"
UPLOAD_TEXT = """# Kestrel depot briefing

The Kestrel supply depot on the island of Varnholm is commanded by Admiral Ines Okafor.

The depot stores 40,000 tonnes of fuel for the northern fleet.
"""


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, settings: Any) -> Iterator[str]:
    """The app over a fresh index of a copy of seeds/, with the real (lazily loaded) generator."""
    root = tmp_path_factory.mktemp("browser")
    docs = shutil.copytree(SEEDS, root / "docs")
    settings = settings.replace(index_dir=root / "index", port=_free_port(), max_upload_mb=1)
    store, _ = update_index([docs], settings.index_dir, embedder, settings)
    assistant = Assistant(store, settings, embedder=embedder, generator=make_generator(settings),
                          index_dir=settings.index_dir)
    app = ChatApp(assistant, settings)
    demo = launch(app, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/"
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

    def open_one() -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(server)
        page.wait_for_selector("#qa-question textarea")
        _watch_streaming(page)
        pages.append(page)
        return page

    yield open_one
    for i, page in enumerate(pages):
        if request.session.testsfailed > failed_before:
            _screenshot(page, f"{request.node.name}-failure-{i}")
        page.context.close()


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _watch_streaming(page: Any) -> None:
    """Record whether a partly written answer was ever on the page (token streaming)."""
    page.evaluate("""() => {
        window.sawStreaming = false;
        new MutationObserver(() => {
            if (document.querySelector('#qa-chat .qa-streaming')) window.sawStreaming = true;
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")


def _submit(page: Any, question: str) -> int:
    """Type and send a question; returns how many finished replies the page will then show."""
    done = page.locator("#qa-chat .qa-done").count()
    page.fill("#qa-question textarea", question)
    page.press("#qa-question textarea", "Enter")
    return done + 1


def _reply(page: Any, expected: int) -> Any:
    page.wait_for_function("n => document.querySelectorAll('#qa-chat .qa-done').length >= n",
                           arg=expected, timeout=ANSWER_TIMEOUT_MS)
    return page.locator("#qa-chat .qa-done").nth(expected - 1)


def _ask(page: Any, question: str) -> Any:
    return _reply(page, _submit(page, question))


# -- in the browser ---------------------------------------------------------------------------


def test_seed_question_streams_an_answer_with_its_sources_and_follow_up(open_page: Any):
    page = open_page()
    assert page.locator("#qa-examples").get_by_text("Who leads the Taliban delegation?").count()
    expect(page.locator("#qa-doc-table")).to_contain_text(SEED_TITLE)
    page.press("#qa-question textarea", "Enter")  # an empty question: a message, no traceback
    expect(page.get_by_text("The question is empty")).to_be_visible()

    reply = _ask(page, "Who leads the Taliban delegation?")
    assert "Hanafi" in reply.locator(".qa-answer").inner_text()
    assert page.evaluate("window.sawStreaming"), "the answer never appeared partly written"
    source = reply.locator(".qa-source").first
    assert SEED_TITLE in source.locator(".qa-title").inner_text()
    assert "2021-10-20" in source.locator(".qa-meta").inner_text()
    assert source.locator(".qa-quote mark").count() == 1  # the cited part is highlighted
    source.locator(".qa-context summary").click()  # open the source in its surrounding text
    context = source.locator(".qa-context-text")
    assert context.is_visible() and len(context.inner_text()) > len(source.locator(".qa-quote").inner_text())

    follow_up = _ask(page, "What did he do last week?")
    quotes = " ".join(follow_up.locator(".qa-quote").all_inner_texts())
    assert "Hanafi" in quotes, "the follow-up was not resolved to the person asked about"
    page.locator("#qa-chat [role=log]").evaluate("el => el.scrollTop = 0")
    _screenshot(page, "chat-answered")


def test_upload_is_indexed_and_answered_from_at_once(open_page: Any, tmp_path: Path):
    page = open_page()
    document = tmp_path / "kestrel depot.md"
    document.write_text(UPLOAD_TEXT)
    refused = tmp_path / "tool.exe"
    refused.write_bytes(b"MZ")
    page.set_input_files("#qa-upload input[type=file]", [str(document), str(refused)])
    status = page.locator("#qa-doc-status")
    status.get_by_text("Indexed kestrel depot.md").wait_for(timeout=60_000)
    expect(page.get_by_text("Invalid file type: tool.exe")).to_be_visible()  # refused by the page
    too_big = tmp_path / "huge.txt"
    too_big.write_text("All quiet on the northern front. " * 50_000)  # 1.6 MB; the limit here is 1 MB
    page.set_input_files("#qa-upload input[type=file]", [str(too_big)])
    expect(page.get_by_text("exceed the maximum allowed size of 1.0 Mb")).to_be_visible()
    expect(page.locator("#qa-doc-table")).to_contain_text("Kestrel depot briefing")

    reply = _ask(page, "Who commands the Kestrel supply depot?")
    assert "Okafor" in reply.locator(".qa-answer").inner_text()
    titles = reply.locator(".qa-source .qa-title").all_inner_texts()
    assert "Kestrel depot briefing" in titles
    _screenshot(page, "chat-upload-answered")


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


def test_new_chat_during_an_answer_stops_it_and_the_next_question_is_answered(open_page: Any):
    page = open_page()
    _submit(page, "How many Islamic State fighters did Putin say had gathered in northern Afghanistan?")
    page.wait_for_selector("#qa-chat .qa-streaming", timeout=ANSWER_TIMEOUT_MS)
    page.click("#qa-new")
    # Generous waits: on a loaded 2-core machine the page can take seconds to clear.
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    page.wait_for_timeout(1500)  # the abandoned answer must not come back
    expect(page.locator("#qa-chat .message-row")).to_have_count(0, timeout=20_000)
    reply = _ask(page, "Who leads the Taliban delegation?")  # the model was released
    assert "Hanafi" in reply.inner_text()
    assert "Islamic State fighters" not in page.locator("#qa-chat").inner_text()


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
