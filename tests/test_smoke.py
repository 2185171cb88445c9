"""The whole product in a child process, first of the suite: `qa ask` on the seed
with the default models. A crash of the native library (a llama.cpp built with
AMX kernels, issue 13) then fails this one test with its exit code, and
conftest skips the tests that would load llama.cpp in-process and take the
whole run down."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_qa_ask_answers_the_seed_question_in_a_child_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "QA_GENERATOR_PATH"}
    done = subprocess.run(
        [sys.executable, "-m", "qa.cli", "ask", "Who leads the Taliban delegation?", "--docs", "seeds",
         "--index", str(tmp_path / "index")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    if done.returncode < 0:
        conftest.NATIVE_CRASH = (f"`qa ask` died of signal {-done.returncode} "
                                 f"({signal.Signals(-done.returncode).name}) in native code: "
                                 "rebuild llama-cpp-python with `make rebuild-llama`")
        pytest.fail(conftest.NATIVE_CRASH)
    assert done.returncode == 0, done.stderr[-2000:]
    answer, _, sources = done.stdout.partition("Sources:")
    assert "Hanafi" in answer, done.stdout
    assert "[1]" in sources and "Russia hosts the Taliban for talks" in sources, done.stdout
