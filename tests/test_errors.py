"""Bad input gets one clear message, and nothing indexed is lost."""

import subprocess
import sys
from pathlib import Path

import pytest

from qa import Assistant
from qa.errors import EmptyQuestionError, ModelError, QuestionTooLongError
from qa.generation import Generator
from qa.index.store import IndexStore
from tests.conftest import FakeGenerator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built_index(tmp_path_factory, embedder, settings):
    index_dir = tmp_path_factory.mktemp("errors") / "index"
    Assistant.from_folder(ROOT / "seeds", index_dir=index_dir, settings=settings)
    return index_dir


@pytest.fixture
def assistant(built_index, embedder, settings):
    store = IndexStore.load(built_index, embedder.name)
    # Fake generator: these tests are about validation around the model, not the model.
    return Assistant(store, settings, embedder=embedder, generator=FakeGenerator(),
                     index_dir=built_index)


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question(assistant, question):
    with pytest.raises(EmptyQuestionError, match="empty"):
        assistant.ask(question)


def test_very_long_question(assistant):
    with pytest.raises(QuestionTooLongError, match="50,000 characters"):
        assistant.ask("x" * 50_000)
    assert not assistant.generator.prompts


def test_missing_model_file(tmp_path):
    generator = Generator(str(tmp_path / "absent.gguf"), tmp_path)
    with pytest.raises(ModelError, match="not found.*QA_GENERATOR_PATH"):
        generator.count_tokens("hello")


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 1000)
    with pytest.raises(ModelError, match="corrupt"):
        Generator(str(bad), tmp_path).count_tokens("hello")
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a GGUF"):
        Generator(str(bad), tmp_path).count_tokens("hello")


def test_irrelevant_question_is_refused_without_calling_the_model(assistant):
    answer = assistant.ask("What is the boiling point of liquid nitrogen in kelvin?")
    assert answer.abstained and not answer.citations
    assert "do not contain" in answer.text
    assert not assistant.generator.prompts


def test_model_saying_not_in_documents_becomes_plain_refusal(built_index, embedder, settings):
    store = IndexStore.load(built_index, embedder.name)
    fake = FakeGenerator("The documents do not say.")  # fake: the refusal path, not the model
    assistant = Assistant(store, settings, embedder=embedder, generator=fake)
    answer = assistant.ask("How old is Sergei Lavrov?")
    assert answer.abstained and answer.citations == []
    assert answer.text == "The documents do not contain the answer to this question."


def _qa(*args, cwd=ROOT, env_extra=None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


def test_cli_errors_are_one_line_without_traceback(tmp_path, built_index):
    cases = [
        _qa("ask", "   ", "--index", str(built_index)),
        _qa("ask", "Who?", "--index", str(tmp_path / "missing")),
        _qa("index", str(tmp_path), "--index", str(tmp_path / "idx")),
        _qa("ask", "Who leads the Taliban delegation?", "--index", str(built_index),
            "--generator", str(tmp_path / "no.gguf")),
    ]
    for result in cases:
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, result.stderr
    assert "empty" in cases[0].stderr
    assert "qa index" in cases[1].stderr
    assert "No readable documents" in cases[2].stderr
    assert "QA_GENERATOR_PATH" in cases[3].stderr


def test_failed_update_keeps_the_index(tmp_path, built_index, embedder):
    before = len(IndexStore.load(built_index, embedder.name))
    result = _qa("index", str(tmp_path), "--index", str(built_index))
    assert result.returncode == 1
    assert len(IndexStore.load(built_index, embedder.name)) == before


def test_every_command_has_help():
    for command in ("index", "ask", "chat", "serve", "eval"):
        result = _qa(command, "--help")
        assert result.returncode == 0 and "--index" in result.stdout


def _error_line(result) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_start_up_and_configuration_failures_are_one_line(tmp_path, built_index):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        in_use = _qa("serve", "--port", str(port), "--index", str(built_index))
    assert f"Port {port}" in _error_line(in_use) and "--port" in in_use.stderr
    assert "GRADIO" not in in_use.stderr
    bad_port = _error_line(_qa("serve", "--index", str(built_index), env_extra={"QA_PORT": "abc"}))
    assert "QA_PORT='abc'" in bad_port and "whole number" in bad_port
    assert "QA_CANDIDATES" in _error_line(_qa("ask", "Who?", "--index", str(built_index),
                                              env_extra={"QA_CANDIDATES": "many"}))
    assert "QA_EMBED_BACKEND" in _error_line(_qa("index", "seeds", env_extra={"QA_EMBED_BACKEND": "gpu"}))
    under_a_file = tmp_path / "file.txt"
    under_a_file.write_text("not a folder")
    assert str(under_a_file) in _error_line(_qa("index", "seeds", "--index", str(under_a_file / "index")))
    assert "--repair" in _error_line(_qa("index", "--index", str(tmp_path / "idx")))


def test_an_index_without_documents_is_never_silently_queried(tmp_path, embedder):
    """An interrupted first run used to leave an empty, valid index that answered
    "the documents do not contain the answer" with exit 0."""
    from qa.index.indexing import chunking_config
    from qa.settings import Settings

    empty = tmp_path / "index"
    IndexStore.empty(embedder.name, embedder.dimension, chunking_config(Settings()).as_dict()).save(empty)
    line = _error_line(_qa("ask", "Who leads the Taliban delegation?", "--index", str(empty)))
    assert "holds no documents" in line and "qa index" in line


def test_the_web_chat_logs_a_user_mistake_as_one_line(app_assistant, caplog):
    import gradio as gr

    from qa.web.app import ChatApp

    app = ChatApp(app_assistant, app_assistant.settings)
    with caplog.at_level("INFO"), pytest.raises(gr.Error) as raised:
        app.ask("   ")
    assert raised.value.print_exception is False  # Gradio prints no traceback for it
    assert [r.getMessage() for r in caplog.records if r.name == "qa.web.app"] == [
        "refused a request: The question is empty: type a question about the documents."]


@pytest.fixture
def app_assistant(assistant):
    return assistant
