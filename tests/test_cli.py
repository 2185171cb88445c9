"""The command line end to end. The generator here is the packaged tiny
SmolLM2-135M (real llama.cpp, fast): these tests are about the commands, not
answer quality, which tests/test_end_to_end.py checks with the default model."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _qa(*args, stdin=None, env_extra=None):
    import os

    env = {**os.environ, "QA_GENERATOR_PATH": "tiny", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, input=stdin, env=env, timeout=600)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "index"
    result = _qa("index", "seeds", "--index", str(folder))
    assert result.returncode == 0, result.stderr
    assert "1 added" in result.stdout
    return folder


def test_index_again_embeds_nothing(index_dir):
    result = _qa("index", "seeds", "--index", str(index_dir))
    assert result.returncode == 0
    assert "0 added, 0 updated, 0 removed, 1 unchanged; 0 chunks embedded" in result.stdout


def test_index_warm_leaves_the_prompt_over_its_documents_warm_for_the_next_process(index_dir, tmp_path):
    states = tmp_path / "states"
    result = _qa("index", "seeds", "--index", str(index_dir), "--warm",
                 env_extra={"QA_STATE_DIR": str(states)})
    assert result.returncode == 0, result.stderr
    assert "Warmed the answering prompt over the newest 1 document in" in result.stdout
    check = ("import sys; from qa.pipeline import Assistant; a = Assistant.open(sys.argv[1]); "
             "print(all(a.document_reader.is_warm(d) for d in a.store.documents.values()))")
    asked = subprocess.run([sys.executable, "-c", check, str(index_dir)], capture_output=True, text=True,
                           cwd=ROOT, env={**__import__("os").environ, "QA_GENERATOR_PATH": "tiny",
                                          "QA_STATE_DIR": str(states)}, timeout=600)
    assert asked.stdout.strip() == "True", asked.stderr
    assert list(states.rglob("*.npz")), "no state written to disk"


def test_ask_prints_answer_then_numbered_sources(index_dir):
    result = _qa("ask", "Who leads the Taliban delegation?", "--index", str(index_dir))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Sources:" in out or "do not contain" in out
    if "Sources:" in out:
        assert "Russia hosts the Taliban for talks" in out.split("Sources:")[1]


def test_chat_holds_a_conversation_and_ends_on_empty_line(index_dir):
    result = _qa("chat", "--index", str(index_dir),
                 stdin="Who leads the Taliban delegation?\nWhat did he do last week?\n\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("you>") == 3
    assert "Traceback" not in result.stderr


# -- what the terminal shows: the checked answer, never a draft left standing -----------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def assistant_with(tmp_path, embedder, settings, seed_copy):
    """A real assistant over the seed whose generator replies with a given text (fake:
    the tiny model cannot be made to write a draft that the checks withdraw)."""
    from qa.index.indexing import update_index
    from qa.pipeline import Assistant
    from tests.conftest import FakeGenerator

    folder = tmp_path / "index"
    store = update_index([seed_copy], folder, embedder, settings.replace(index_dir=folder)).store

    def make(reply: str) -> Assistant:
        return Assistant(store, settings.replace(index_dir=folder), embedder=embedder,
                         generator=FakeGenerator(reply), index_dir=folder)

    return make


def test_a_withdrawn_draft_is_erased_and_said_to_be_withdrawn(assistant_with):
    from qa.cli import DraftView, _stream_answer
    from qa.web.render import WITHDRAWN

    assistant = assistant_with("Russia has pledged five billion roubles [1].")  # no passage says five
    piped = io.StringIO()
    answer = _stream_answer(assistant, "How much has Russia pledged?", [], out=piped)
    assert answer.abstained and "five billion" not in piped.getvalue()  # held back when piped
    assert piped.getvalue().startswith(WITHDRAWN) and "do not contain" in piped.getvalue()

    terminal = _Terminal()
    _stream_answer(assistant, "How much has Russia pledged?", [], out=terminal)
    shown = terminal.getvalue()
    draft_at, erased_at = shown.index(DraftView.LABEL), shown.rindex("\x1b[2K")
    assert draft_at < shown.index("five billion") < erased_at < shown.index(WITHDRAWN)


def test_a_checked_answer_is_printed_with_sources_numbered_from_one(assistant_with):
    from qa.cli import _stream_answer

    piped = io.StringIO()
    answer = _stream_answer(assistant_with("Abdul Salam Hanafi leads the delegation [1]."),
                            "Who leads the Taliban delegation?", [], out=piped)
    assert not answer.abstained
    text = piped.getvalue()
    assert text.startswith("Abdul Salam Hanafi leads the delegation [1].") and "\n[1] " in text
    assert "Sources:" in text and "withdrawn" not in text
