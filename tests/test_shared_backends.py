"""Two ``qa serve`` processes over one Milvus (``milvus-lite server``) and one generator
server (``python -m llama_cpp.server`` with the default model), all real and on
127.0.0.1: the same answers with the same citations from both, and a document
uploaded through one is found and answered through the other. The processes keep
nothing on local disk but configuration (and the uploaded file itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.models.files import resolve_generator
from qa.settings import Settings
from tests.conftest import ROOT, SEEDS
from tests.servers import free_port, llama_server, milvus_server, running

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
QUESTIONS = ["Who leads the Taliban delegation?",
             "How much has Brussels pledged to avert a humanitarian crisis?"]
UPLOAD = ("# Kestrel depot briefing\n\nThe Kestrel supply depot on the island of Varnholm is "
          "commanded by Admiral Ines Okafor.\n")


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    root = tmp_path_factory.mktemp("shared")
    milvus_port, model_port = free_port(), free_port()
    model = resolve_generator(None, Settings.from_env().cache_dir)
    with milvus_server(root / "milvus", milvus_port, root / "milvus.log"), \
            llama_server(model, model_port, root / "llama.log", threads=2):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_VECTOR_BACKEND": "milvus",
               "QA_VECTOR_URI": f"http://127.0.0.1:{milvus_port}",
               "QA_GENERATOR_URL": f"http://127.0.0.1:{model_port}/v1", "QA_N_THREADS": "1"}
        indexed = subprocess.run([sys.executable, "-m", "qa.cli", "index", str(SEEDS)], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert indexed.returncode == 0, indexed.stderr
        ports = [free_port(), free_port()]
        serve = [[sys.executable, "-m", "qa.cli", "serve", "--port", str(p),
                  "--index", str(root / f"web-{p}")] for p in ports]
        urls = [f"http://127.0.0.1:{p}/" for p in ports]
        with running(serve[0], ports[0], root / "web-a.log", ready_url=urls[0], env=env), \
                running(serve[1], ports[1], root / "web-b.log", ready_url=urls[1], env=env):
            yield urls


def _ask(url: str, question: str) -> dict[str, Any]:
    from gradio_client import Client

    return Client(url, verbose=False).predict(question, [], api_name="/ask")


def _cited(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["file"], s["quote"]) for s in result["sources"]]


def test_both_processes_give_the_same_answers_and_citations(two_servers):
    first, second = two_servers
    for question in QUESTIONS:
        a, b = _ask(first, question), _ask(second, question)
        assert (a["answer"], _cited(a)) == (b["answer"], _cited(b))
    assert "Hanafi" in _ask(first, QUESTIONS[0])["answer"] and _cited(a)


def test_an_upload_through_one_is_answered_through_the_other(two_servers, tmp_path: Path):
    from gradio_client import Client
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make browser)")
    first, second = two_servers
    document = tmp_path / "kestrel depot.md"
    document.write_text(UPLOAD)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(first)
            page.set_input_files("#qa-upload input[type=file]", [str(document)])
            page.locator("#qa-doc-status").get_by_text("Indexed kestrel depot.md").wait_for()
        finally:
            browser.close()
    titles = [d["title"] for d in Client(second, verbose=False).predict(api_name="/documents")]
    assert "Kestrel depot briefing" in titles
    answer = _ask(second, "Who commands the Kestrel supply depot?")
    assert "Okafor" in answer["answer"] and "kestrel" in answer["sources"][0]["file"]
