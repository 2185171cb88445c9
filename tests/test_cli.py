"""The command line end to end. The generator here is the packaged tiny
SmolLM2-135M (real llama.cpp, fast): these tests are about the commands, not
answer quality, which tests/test_end_to_end.py checks with the default model."""

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
