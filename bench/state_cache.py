"""Prompt states in memory or read from disk: the first token for warmed documents.

    python bench/state_cache.py                       # QA_STATE_CACHE_MB 512 against 80
    python bench/state_cache.py --budgets 512 80 0

Each budget runs in a fresh process over the three news27 briefings, with its own
empty state folder: the process warms all three (``warm_up``: each state written to
disk, and kept in memory as far as the budget allows), then asks questions about
them in turn. With a budget of two or three states every question finds its
document's state in memory; with a smaller one most are read back from disk (the
page cache, as on any machine that wrote them minutes before). 0 keeps no state at
all, in memory or on disk. The first token is timed from the call (retrieval included).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, arg_parser, load_average, percentile, run_json_worker, table, write_json

SET = ROOT / "evals" / "news27"
QUESTIONS = 6


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--budgets", type=int, nargs="+", default=[512, 80])
    parser.add_argument("--worker", action="store_true", help="internal")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker()))
        return 0
    runs = {}
    for budget in args.budgets:
        with tempfile.TemporaryDirectory(prefix="qa-bench-states-") as states:
            os.environ.update(QA_STATE_CACHE_MB=str(budget), QA_STATE_DIR=states)
            runs[budget] = run_json_worker([__file__, "--worker"], timeout=1200)
    print(table(["QA_STATE_CACHE_MB", "first token p50 s", "max s", "each s"],
                [[b, percentile(r["ttft"], 50), max(r["ttft"]), " ".join(f"{t:.2f}" for t in r["ttft"])]
                 for b, r in runs.items()]))
    print(f"load average {load_average():.1f}")
    write_json("state_cache", {"runs": {str(b): r for b, r in runs.items()}})
    return 0


def worker() -> dict[str, list[float]]:
    from qa.pipeline import Assistant

    rows = [json.loads(line) for line in (SET / "questions.jsonl").read_text().splitlines() if line.strip()]
    by_file: dict[str, list[str]] = {}
    for row in rows:
        if row["type"] not in ("none", "two-hop"):
            by_file.setdefault(_file_of(row["source"]), []).append(row["question"])
    with tempfile.TemporaryDirectory() as index:
        assistant = Assistant.from_folder(SET / "docs", Path(index))
        assistant.warm_up()
        turns = [questions[i] for i in range(QUESTIONS // len(by_file)) for questions in by_file.values()]
        return {"ttft": [_first_token(assistant, question) for question in turns]}


def _file_of(sentence: str) -> str:
    for path in (SET / "docs").iterdir():
        if sentence in path.read_text(encoding="utf-8"):
            return path.name
    raise ValueError(f"no document of {SET} holds the source {sentence[:60]!r}")


def _first_token(assistant, question: str) -> float:
    """Seconds to the first piece; the answer is read to its end (its state kept as usual)."""
    started, first = time.perf_counter(), None
    for piece in assistant.stream(question):
        if first is None and isinstance(piece, str) and piece:
            first = time.perf_counter() - started
    return first if first is not None else time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
