"""Bad input gets one clear message, and nothing indexed is lost."""

import subprocess
import sys
from pathlib import Path

import pytest

from qa import Assistant
from qa.errors import EmptyQuestionError, ModelError, QuestionTooLongError
from qa.generation import Generator
from qa.store import IndexStore
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


def _qa(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


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
