"""Shared fixtures. The embedder is the real packaged all-MiniLM-L6-v2 (small
and fast); the generator is faked only where a test is about code around it,
and the fake says so."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Warmed prompt states persist on disk between processes (qa/prompt_states.py): a test
# run starts with none, so a document is warm only if this run warmed it.
# The folder goes when the run ends: states are tens of MB each.
if "QA_STATE_DIR" not in os.environ:
    os.environ["QA_STATE_DIR"] = tempfile.mkdtemp(prefix="qa-test-states-")
    atexit.register(shutil.rmtree, os.environ["QA_STATE_DIR"], ignore_errors=True)

from qa.models.embedder import Embedder  # noqa: E402
from qa.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = next(SEEDS.glob("*.txt"))


# Set by tests/test_smoke.py when `qa ask` dies of a signal in native code.
NATIVE_CRASH: str | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The child-process smoke test runs first (see tests/test_smoke.py)."""
    items.sort(key=lambda item: item.path.name != "test_smoke.py")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if NATIVE_CRASH and item.path.name != "test_smoke.py":
        pytest.skip(f"skipped: {NATIVE_CRASH}")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The default embedder (ONNX int8 unless QA_EMBED_BACKEND says otherwise)."""
    return Embedder.from_settings(Settings.from_env())


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings.from_env(index_dir=tmp_path_factory.mktemp("index"))


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(SEED_FILE, folder / SEED_FILE.name)
    return folder


class FakeGenerator:
    """Stands in for llama.cpp where the test is about the code around it:
    replies with a canned text, counts tokens as words."""

    def __init__(self, reply: str = "Abdul Salam Hanafi leads the delegation [1]."):
        self.reply = reply
        self.prompts: list[list[dict[str, str]]] = []
        self.loaded = True

        self.warmed: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream_chat(self, messages: list[dict[str, str]], max_tokens: int | None = None,
                    grammar: str | None = None, keep_state: bool = True) -> Iterator[str]:
        self.prompts.append(messages)
        yield from (w + " " for w in self.reply.split(" "))

    def warm(self, messages: list[dict[str, str]]) -> None:
        self.warmed.append(messages)


def ask_at_once(server: str, questions: Iterable[str], timeout: float) -> dict[str, Any]:
    """Each question from its own gradio_client session, all sent at the same time:
    the ``/ask`` record per question."""
    from gradio_client import Client

    results: dict[str, Any] = {}

    def ask(question: str) -> None:
        results[question] = Client(server, verbose=False).predict(question, [], api_name="/ask")

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results
