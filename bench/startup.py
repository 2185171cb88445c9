"""Start-up: seconds from ``qa serve`` to the first page and to the first answer.

    python bench/startup.py              # 3 starts with the caches warm, 3 with an empty cache
    python bench/startup.py --runs 5 --no-fresh

With ``--fresh`` runs (the default) every other start gets an empty
``QA_CACHE_DIR``: the one-time steps a fresh install does on its first start
(assembling and hashing the GGUF from its PyPI parts, preparing the fused int8
ONNX embedder) land in that start, and the difference to a warm start is their
cost. (Compiling llama.cpp, the other one-time step, happens in ``make`` before
any start: see the README.) The server runs this checkout's code.

Each run starts ``qa serve`` on a free local port, polls ``http://127.0.0.1:PORT/``
until it answers 200, records the time and the server's resident memory, and
stops the server. The models load in the background after the page is up, so
this is the wait before an analyst sees the page; the first answer is one
``/ask`` call (gradio_client) sent as soon as the page is up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import OUT, ROOT, arg_parser, load_average, percentile, table, write_json

TARGET_SECONDS = 10.0
QUESTION = "Who leads the Taliban delegation at the Moscow talks?"


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a start after this long")
    parser.add_argument("--no-fresh", action="store_true", help="warm caches only")
    args = parser.parse_args(argv)
    index = ensure_index(OUT / "index-seeds")
    runs = []
    for number in range(args.runs):
        for fresh in ([False] if args.no_fresh else [False, True] if number % 2 == 0 else [True, False]):
            runs.append(start_once(index, args.timeout, fresh))
            print(f"  start {number + 1}{' (empty cache)' if fresh else ''}: page after "
                  f"{runs[-1]['seconds']:.1f} s, answer after {runs[-1]['answer_seconds']:.1f} s "
                  f"(load {load_average():.1f})", file=sys.stderr, flush=True)
    warm = [r for r in runs if not r["fresh"]]
    seconds = percentile([r["seconds"] for r in warm], 50)
    verdict = f"<= {TARGET_SECONDS:.0f} s: {'met' if seconds <= TARGET_SECONDS else 'missed'}"
    print(table(["run", "cache", "seconds to first page", "seconds to first answer",
                 "server RSS at first page MB", "target"],
                [[i + 1, "empty" if r["fresh"] else "warm", r["seconds"], r["answer_seconds"],
                  round(r["rss_mb"]), verdict if i == 0 else ""] for i, r in enumerate(runs)]))
    fresh = [r for r in runs if r["fresh"]]
    summary = {"p50_seconds": seconds,
               "p50_answer_seconds": percentile([r["answer_seconds"] for r in warm], 50)}
    print(f"warm: page p50 {seconds:.1f} s, first answer p50 {summary['p50_answer_seconds']:.1f} s")
    if fresh:
        summary["fresh_p50_seconds"] = percentile([r["seconds"] for r in fresh], 50)
        summary["fresh_p50_answer_seconds"] = percentile([r["answer_seconds"] for r in fresh], 50)
        print(f"empty cache: page p50 {summary['fresh_p50_seconds']:.1f} s, first answer p50 "
              f"{summary['fresh_p50_answer_seconds']:.1f} s (one-time steps: "
              f"{summary['fresh_p50_answer_seconds'] - summary['p50_answer_seconds']:.1f} s)")
    path = write_json("startup", {"runs": runs, **summary})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def ensure_index(folder: Path) -> Path:
    """The seed briefings indexed once with the configured embedder (``qa index``)."""
    if not (folder / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "qa.cli", "index", str(ROOT / "seeds"), "--index", str(folder)],
                       check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_once(index: Path, timeout: float, fresh: bool = False) -> dict[str, Any]:
    import tempfile

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("QA_AUTH", None)  # the chat page itself, not a sign-in page
    with tempfile.TemporaryDirectory() as cache:
        if fresh:
            env["QA_CACHE_DIR"] = cache
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", "--index", str(index), "--port",
                                   str(port), "--host", "127.0.0.1"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}/"
            seconds = wait_for_page(url, server, started, timeout)
            rss = resident_mb(server.pid)
            first_answer(url)
            answer_seconds = time.perf_counter() - started
        finally:
            stop(server)
    return {"seconds": seconds, "answer_seconds": answer_seconds, "rss_mb": rss, "fresh": fresh}


def first_answer(url: str) -> None:
    from gradio_client import Client

    result = Client(url, verbose=False).predict(QUESTION, [], api_name="/ask")
    if not result.get("answer"):
        raise SystemExit(f"no answer from {url}: {result}")


def wait_for_page(url: str, server: subprocess.Popen, started: float, timeout: float) -> float:
    while time.perf_counter() - started < timeout:
        if server.poll() is not None:
            error = server.stderr.read().decode()[-2000:] if server.stderr else ""
            raise SystemExit(f"qa serve exited with {server.returncode}: {error}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise SystemExit(f"no page at {url} after {timeout:.0f} s")


def resident_mb(pid: int) -> float:
    """VmRSS of the server process, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def stop(server: subprocess.Popen) -> None:
    """Stop the server this run started (its own process group, nothing else)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
