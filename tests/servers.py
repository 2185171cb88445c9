"""Real servers a test needs, started on 127.0.0.1 and always stopped after."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

PYTHON_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answers, even if it does not like the request
    except OSError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(command: Sequence[str], port: int, log: Path, ready_url: str | None = None,
            headers: dict[str, str] | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """``command`` in its own process group until the block ends (even on failure)."""
    with log.open("wb") as output:
        process = subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True,
                                   env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + timeout
        while not (_answers(ready_url, headers or {}) if ready_url else _port_open(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def llama_server(model: Path, port: int, log: Path, api_key: str | None = None,
                 threads: int = 1) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """llama-cpp-python's OpenAI-compatible server (the same build as the embedded one)."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--n_batch", "512",
               # Queue concurrent requests: by default a new one cuts off the reply in progress.
               "--interrupt_requests", "False"]
    headers = {}
    if api_key:
        command += ["--api_key", api_key]
        headers = {"Authorization": f"Bearer {api_key}"}
    return running(command, port, log, ready_url=f"http://127.0.0.1:{port}/v1/models", headers=headers,
                   timeout=180)


def milvus_server(data_dir: Path, port: int,
                  log: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    """milvus-lite's gRPC server: one Milvus that several processes share."""
    command = [str(PYTHON_BIN / "milvus-lite"), "server", "--data-dir", str(data_dir),
               "--host", "127.0.0.1", "--port", str(port)]
    return running(command, port, log, timeout=60)
