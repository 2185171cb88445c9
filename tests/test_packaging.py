"""The wheel is the whole product: every module and every prompt template ship
inside it, and the installed package answers from another working directory
(a checkout on sys.path would hide a missing file, so the check runs from a
scratch folder with only the installed wheel on the path)."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return next(out.glob("briefing_qa-*.whl"))


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_prompt(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "qa"
    expected = {str(p.relative_to(ROOT)) for p in package.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    assert expected - names == set()
    assert {"qa/prompts/reader_system.txt", "qa/prompts/reader_examples.json"} <= names


@pytest.mark.slow
def test_the_installed_wheel_answers_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "docs").mkdir(parents=True)
    seed = next((ROOT / "seeds").glob("*.txt"))
    (elsewhere / "docs" / seed.name).write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(target), "QA_GENERATOR_PATH": "tiny"}
    where = subprocess.run([sys.executable, "-c", "import qa; print(qa.__file__)"], capture_output=True,
                           text=True, cwd=elsewhere, env=env, check=True)
    assert where.stdout.startswith(str(target))
    done = subprocess.run([str(target / "bin" / "qa"), "ask", "Who leads the Taliban delegation?",
                           "--docs", "docs", "--index", "index"], capture_output=True, text=True,
                          cwd=elsewhere, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Sources:" in done.stdout or "do not contain" in done.stdout
