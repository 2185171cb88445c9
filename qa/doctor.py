"""``qa doctor``: can this machine run the product? One table, then one line.

Every check runs even when an earlier one fails, so the table shows all that
is wrong at once. The one-token generation runs in a child process: a crash
of the native library (the AMX segfault of a natively built llama.cpp) then
becomes a row in the table instead of killing the caller.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from qa.errors import QAError
from qa.settings import Settings

PACKAGES = ("briefing-qa", "llama-cpp-python", "torch", "sentence-transformers", "faiss-cpu",
            "onnxruntime", "gradio", "bm25s", "tantivy")
GENERATION_TIMEOUT_S = 300
REBUILD_ADVICE = "rebuild it with `make rebuild-llama`"


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    advice: str = ""  # what to do when not ok
    warning: bool = False  # shown, but does not fail the run


def run_checks(settings: Settings, index_dir: Path | None) -> list[Finding]:
    findings = [python_version(), *package_versions(), llama_build(), generator_file(settings),
                one_token_generation(settings), embedder(settings)]
    if index_dir is not None:
        findings.append(index(index_dir, settings))
    return findings


def python_version() -> Finding:
    ok = sys.version_info >= (3, 11)
    return Finding("python", ok, f"{platform.python_version()} ({sys.executable})",
                   "use Python 3.11 or newer")


def package_versions() -> list[Finding]:
    found = []
    for name in PACKAGES:
        try:
            found.append(Finding(f"package {name}", True, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append(Finding(f"package {name}", False, "not installed",
                                 "install the project with `make run` (or `pip install .`)"))
    return found


def llama_build() -> Finding:
    """AMX in the build is a warning only: the generator loads around it (qa/generation.py)."""
    try:
        from qa.generation import built_with_amx, cpu_features, llama_system_info

        info = llama_system_info()
    except Exception as error:  # the native library itself may fail to load
        return Finding("llama.cpp build", False, f"cannot load llama.cpp ({error})", REBUILD_ADVICE)
    features = cpu_features(info)
    if built_with_amx(info):
        return Finding("llama.cpp build", True,
                       f"{features}; built with AMX, whose kernels crash (llama.cpp issue 20824): "
                       f"models load without the extra buffers; {REBUILD_ADVICE} for full speed",
                       warning=True)
    return Finding("llama.cpp build", True, f"{features}; no AMX")


def generator_file(settings: Settings) -> Finding:
    from qa.models.files import GENERATORS, resolve_generator, sha256_of

    name = settings.generator.generator_path or "default"
    try:
        path = resolve_generator(settings.generator.generator_path, settings.cache_dir)
    except QAError as error:  # its message says what to do
        return Finding("generator model", False, str(error))
    size = f"{path.stat().st_size / 1e9:.2f} GB"
    if name in GENERATORS:  # resolve_generator checked the assembled file's SHA-256
        return Finding("generator model", True, f"{path} ({size}), SHA-256 matches the packaged {name}")
    digest = sha256_of(path)[:16]
    return Finding("generator model", True, f"{path} ({size}), your own file, SHA-256 {digest}...")


def one_token_generation(settings: Settings, python: str = sys.executable) -> Finding:
    """One token in a child process: a native crash is reported, not suffered."""
    code = (
        "import sys; from qa.settings import Settings; from qa.generation import Generator\n"
        "s = Settings.from_env()\n"
        "g = Generator(s.generator.generator_path, s.cache_dir, n_ctx=512, n_threads=s.n_threads)\n"
        "pieces = list(g.stream_chat([{'role': 'user', 'content': 'Say yes.'}], max_tokens=2))\n"
        "print(repr(''.join(pieces)))\n"
    )
    env = _child_env(settings)
    try:
        child = subprocess.run([python, "-c", code], capture_output=True, text=True,
                               timeout=GENERATION_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return Finding("generation", False, f"no token within {GENERATION_TIMEOUT_S} s",
                       "check the machine's load, or set QA_N_THREADS=1")
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        return Finding("generation", False,
                       f"generation crashed in llama.cpp (signal {-child.returncode}, {name})",
                       REBUILD_ADVICE)
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no output"])[-1]
        return Finding("generation", False, last, "fix the line above, then run `qa doctor` again")
    return Finding("generation", True, f"one token generated: {child.stdout.strip()}")


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    if settings.generator.generator_path:
        env["QA_GENERATOR_PATH"] = settings.generator.generator_path
    env["QA_CACHE_DIR"] = str(settings.cache_dir)
    env["QA_N_THREADS"] = str(settings.n_threads)
    return env


def embedder(settings: Settings) -> Finding:
    from qa.models.embedder import Embedder

    try:
        model = Embedder.from_settings(settings)
        vector = model.encode(["A briefing about a harbour."])
    except QAError as error:
        return Finding("embedder", False, str(error))
    checked = "SHA-256 matches" if not settings.index.embedder_path else "your own model"
    return Finding("embedder", True, f"{model.name}, {vector.shape[1]} dimensions, {checked}")


def index(folder: Path, settings: Settings) -> Finding:
    from qa.index.store import IndexStore, index_exists

    if not index_exists(folder):
        return Finding("index", False, f"no index in {folder}",
                       f"build one with `qa index <your documents> --index {folder}`")
    try:
        store = IndexStore.load(folder)
    except QAError as error:
        return Finding("index", False, str(error), "follow the advice above")
    manifest = store.manifest
    if not store.documents:
        return Finding("index", False, f"{folder} holds no documents",
                       f"index some with `qa index <your documents> --index {folder}`")
    return Finding("index", True, f"{folder}: {len(store.documents)} documents, {len(store)} chunks, "
                   f"embedder {manifest.embedder}, format {manifest.format_version}")


def format_table(findings: list[Finding]) -> str:
    width = max(len(f.check) for f in findings)
    rows = []
    for finding in findings:
        status = "warn" if finding.warning else ("ok" if finding.ok else "FAIL")
        rows.append(f"{finding.check:<{width}}  {status:<4}  {finding.detail}")
    return "\n".join(rows)


def verdict(findings: list[Finding]) -> tuple[int, str]:
    """Exit code and the one line that says what to do first."""
    failed = [f for f in findings if not f.ok]
    if not failed:
        return 0, "This machine can run briefing QA."
    first = failed[0]
    advice = f"; {first.advice}." if first.advice else ""
    return 1, f"{first.check}: {first.detail}{advice}"
