"""`qa doctor` and the AMX guard. The doctor runs for real with the packaged
tiny generator; the one crash it must report (llama.cpp's AMX kernels) cannot
happen on a machine without AMX, so that one case runs a stand-in child that
dies of SIGSEGV, as the native library does there."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa import doctor
from qa.generation import Generator, built_with_amx, cpu_features
from qa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
AMX_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | "
            "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
PORTABLE_INFO = AMX_INFO.replace("AMX_INT8 = 1 | ", "")


def _qa(*args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_GENERATOR_PATH": "tiny", **env_extra}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)


def _rows(table: str) -> dict[str, str]:
    return {line.split("  ")[0]: line for line in table.splitlines() if "  " in line}


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("doctor") / "index"
    assert _qa("index", "seeds", "--index", str(folder)).returncode == 0
    return folder


def test_doctor_passes_on_this_machine_and_describes_it(seed_index):
    done = _qa("doctor", "--index", str(seed_index))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert "ok" in rows["package llama-cpp-python"] and "0.3.36" in rows["package llama-cpp-python"]
    assert "AVX2" in rows["llama.cpp build"] and "no AMX" in rows["llama.cpp build"]
    assert "SHA-256 matches the packaged tiny" in rows["generator model"]
    assert "one token generated" in rows["generation"]
    assert "384 dimensions" in rows["embedder"]
    assert "1 documents" in rows["index"] and "embedder all-MiniLM-L6-v2" in rows["index"]
    assert "This machine can run briefing QA." in done.stdout


def test_doctor_fails_with_one_line_for_a_broken_model_and_a_missing_index(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    done = _qa("doctor", "--index", str(tmp_path / "nothing"), QA_GENERATOR_PATH=str(fake))
    assert done.returncode == 1
    rows = _rows(done.stdout)
    assert " FAIL " in rows["generator model"] and " FAIL " in rows["index"]
    assert "QA_GENERATOR_PATH" in done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stdout + done.stderr


def test_a_native_crash_of_generation_becomes_a_row_with_the_fix(tmp_path):
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    finding = doctor.one_token_generation(Settings.from_env(generator_path="tiny"), python=str(crashing))
    assert not finding.ok
    assert finding.detail.startswith("generation crashed in llama.cpp (signal 11")
    assert "make rebuild-llama" in finding.advice


def test_amx_is_read_from_the_build_and_this_build_has_none():
    assert built_with_amx(AMX_INFO) and not built_with_amx(PORTABLE_INFO)
    assert cpu_features(AMX_INFO) == "SSE3 SSSE3 AVX AVX2 F16C FMA AVX512 AMX_INT8"
    assert not built_with_amx()  # the Makefile's portable build


def test_a_build_with_amx_loads_the_model_without_extra_buffers(monkeypatch):
    import llama_cpp.llama_cpp as native

    seen = []
    original = native.llama_model_default_params

    def recording():
        params = original()
        seen.append(params)
        return params

    monkeypatch.setattr(native, "llama_model_default_params", recording)
    monkeypatch.setattr("qa.generation.built_with_amx", lambda: True)
    settings = Settings.from_env(generator_path="tiny")
    generator = Generator("tiny", settings.cache_dir, n_ctx=256, n_threads=1)
    reply = "".join(generator.stream_chat([{"role": "user", "content": "Say yes."}], max_tokens=3))
    assert reply.strip()
    assert seen and all(p.use_extra_bufts is False for p in seen)
    assert native.llama_model_default_params is recording  # restored after the load
    assert original().use_extra_bufts is True
