"""Start-up: seconds from ``qa serve`` to the first page, with the index already built.

    python bench/startup.py              # 3 starts
    python bench/startup.py --runs 5

Each run starts ``qa serve`` on a free local port, polls ``http://127.0.0.1:PORT/``
until it answers 200, records the time and the server's resident memory, and
stops the server. The models load in the background after the page is up, so
this is the wait before an analyst sees the page, not before the first answer.
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
BIN = Path(sys.executable).parent


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=90.0, help="give up on a start after this long")
    args = parser.parse_args(argv)
    index = ensure_index(OUT / "index-seeds")
    runs = []
    for number in range(args.runs):
        runs.append(start_once(index, args.timeout))
        print(f"  start {number + 1}: page after {runs[-1]['seconds']:.1f} s (load {load_average():.1f})",
              file=sys.stderr, flush=True)
    seconds = percentile([r["seconds"] for r in runs], 50)
    verdict = f"<= {TARGET_SECONDS:.0f} s: {'met' if seconds <= TARGET_SECONDS else 'missed'}"
    print(table(["run", "seconds to first page", "server RSS at first page MB", "target"],
                [[i + 1, r["seconds"], round(r["rss_mb"]), verdict if i == 0 else ""]
                 for i, r in enumerate(runs)]))
    print(f"p50 {seconds:.1f} s")
    path = write_json("startup", {"runs": runs, "p50_seconds": seconds})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def ensure_index(folder: Path) -> Path:
    """The seed briefings indexed once with the configured embedder (``qa index``)."""
    if not (folder / "manifest.json").exists():
        subprocess.run([str(BIN / "qa"), "index", str(ROOT / "seeds"), "--index", str(folder)], check=True,
                       cwd=ROOT)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_once(index: Path, timeout: float) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("QA_AUTH", None)  # the chat page itself, not a sign-in page
    started = time.perf_counter()
    server = subprocess.Popen([str(BIN / "qa"), "serve", "--index", str(index), "--port", str(port),
                               "--host", "127.0.0.1"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        seconds = wait_for_page(f"http://127.0.0.1:{port}/", server, started, timeout)
        rss = resident_mb(server.pid)
    finally:
        stop(server)
    return {"seconds": seconds, "rss_mb": rss}


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
