"""Answering while the same process indexes: time to first token and tokens/s, idle and busy.

    python bench/answering_busy.py                 # every configuration, two rounds
    python bench/answering_busy.py --rounds 1 --configs default yield

Each configuration runs in a fresh process (OpenMP reads its variables when
llama.cpp's library loads): the seed briefings are indexed, the assistant warms
up, then (a) idle: three seed questions are answered; (b) busy: a thread of the
same process indexes 200 news-length briefings (``Assistant.add_documents``, as
a web upload does) while the same three questions are answered, then the
indexing finishes. Configurations take turns (A B C ... C B A) so drift on
the shared machine hits them alike; read the ratios.

- default: what the process did before: OpenMP's default wait policy, the
  embedder on every core, indexing not yielding to answers;
- passive: ``OMP_WAIT_POLICY=PASSIVE`` (llama.cpp's idle threads sleep);
- spin: ``GOMP_SPINCOUNT=10000`` (they spin briefly, then sleep);
- embed-1: the embedder on one thread while indexing;
- yield: indexing pauses while an answer is made (qa/priority.py);
- passive+yield: both. The product's default is "yield": PASSIVE cost a third
  of the generation speed on an idle machine.

TTFT counts from the call (retrieval included); tokens/s is the streamed
pieces after the first over the time after the first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    OUT,
    ROOT,
    arg_parser,
    load_average,
    percentile,
    prepare_embedder,
    run_json_worker,
    synthetic_news,
    table,
    write_json,
)

# OMP_WAIT_POLICY "" is libgomp's own default (spin a while, then sleep), whatever the
# environment of the benchmark had.
CONFIGS: dict[str, dict[str, str]] = {
    "default": {"QA_YIELD_TO_ANSWERS": "0", "OMP_WAIT_POLICY": ""},
    "passive": {"QA_YIELD_TO_ANSWERS": "0", "OMP_WAIT_POLICY": "PASSIVE"},
    "spin": {"QA_YIELD_TO_ANSWERS": "0", "OMP_WAIT_POLICY": "", "GOMP_SPINCOUNT": "10000"},
    "embed-1": {"QA_YIELD_TO_ANSWERS": "0", "OMP_WAIT_POLICY": "", "BENCH_EMBED_THREADS": "1"},
    "yield": {"QA_YIELD_TO_ANSWERS": "1", "OMP_WAIT_POLICY": ""},
    "passive+yield": {"QA_YIELD_TO_ANSWERS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
}
DOCUMENTS = 200
QUESTIONS = 3
TARGET_BUSY_RATIO = 0.5
TARGET_IDLE_COST = 0.05


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker()))
        return 0
    prepare_embedder()
    corpus = ensure_corpus()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.configs}
    for number in range(args.rounds):
        order = args.configs if number % 2 == 0 else list(reversed(args.configs))
        for name in order:
            runs[name].append(run_config(name, corpus))
            last = runs[name][-1]
            print(f"  {name}: idle {last['idle_tokens_per_s']:.1f} tok/s, "
                  f"busy {last['busy_tokens_per_s']:.1f} tok/s, indexing {last['index_s']:.1f} s "
                  f"(load {load_average():.1f})",
                  file=sys.stderr, flush=True)
    summary = summarise(runs)
    print(report(summary))
    path = write_json("answering_busy", {"documents": DOCUMENTS, "summary": summary, "runs": runs})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def ensure_corpus() -> Path:
    folder = OUT / f"busy-corpus-{DOCUMENTS}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in synthetic_news(DOCUMENTS, 30_000_000):
            (folder / name).write_text(text, encoding="utf-8")
        (folder / ".complete").write_text("")
    return folder


def run_config(name: str, corpus: Path) -> dict[str, Any]:
    import os

    saved = dict(os.environ)
    os.environ.update(CONFIGS[name], BENCH_CORPUS=str(corpus))
    try:
        return run_json_worker([__file__, "--worker", name], timeout=1800)
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- one configuration, in its own process ---------------------------------------------------------


def worker() -> dict[str, Any]:
    import os

    from qa.index.indexing import update_index
    from qa.models.embedder import Embedder
    from qa.pipeline import Assistant
    from qa.settings import Settings

    questions = seed_questions(QUESTIONS)
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings.from_env(index_dir=Path(scratch) / "index")
        embedder = Embedder.from_settings(settings)
        if os.environ.get("BENCH_EMBED_THREADS"):  # before the model loads: its pool has this size
            embedder.threads = int(os.environ["BENCH_EMBED_THREADS"])
        store = update_index([ROOT / "seeds"], settings.index_dir, embedder, settings).store
        assistant = Assistant(store, settings, embedder=embedder, index_dir=settings.index_dir)
        assistant.warm_up()
        timed(assistant, questions[-1])  # untimed: one answer through every stage first
        idle = [timed(assistant, q) for q in questions]
        corpus = Path(os.environ["BENCH_CORPUS"])
        files = sorted(corpus.glob("*.txt"))
        finished: dict[str, float] = {}

        def index() -> None:
            started = time.perf_counter()
            assistant.add_documents(files)
            finished["seconds"] = time.perf_counter() - started

        thread = threading.Thread(target=index)
        thread.start()
        time.sleep(1.5)  # files read and chunked: embedding is under way
        busy = [timed(assistant, q) for q in questions]
        busy_done = thread.is_alive()
        thread.join()
        shutil.rmtree(settings.index_dir, ignore_errors=True)
    return {"idle": idle, "busy": busy, "index_s": finished.get("seconds", float("nan")),
            "indexing_outlasted_answers": busy_done,
            "idle_ttft_s": percentile([r["ttft_s"] for r in idle], 50),
            "busy_ttft_s": percentile([r["ttft_s"] for r in busy], 50),
            "idle_tokens_per_s": percentile([r["tokens_per_s"] for r in idle], 50),
            "busy_tokens_per_s": percentile([r["tokens_per_s"] for r in busy], 50)}


def seed_questions(limit: int) -> list[str]:
    lines = (ROOT / "evals" / "seed.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:limit]


def timed(assistant: Any, question: str) -> dict[str, float]:
    started = time.perf_counter()
    stamps = []
    for piece in assistant.stream(question):
        if isinstance(piece, str):
            stamps.append(time.perf_counter())
    if not stamps:
        return {"ttft_s": float("nan"), "tokens_per_s": float("nan"), "pieces": 0}
    span = stamps[-1] - stamps[0]
    return {"ttft_s": stamps[0] - started, "tokens_per_s": (len(stamps) - 1) / span if span else float("nan"),
            "pieces": len(stamps)}


# -- report ------------------------------------------------------------------------------------------


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    keys = ("idle_ttft_s", "busy_ttft_s", "idle_tokens_per_s", "busy_tokens_per_s", "index_s")
    summary = {name: {k: percentile([r[k] for r in rs], 50) for k in keys} for name, rs in runs.items()}
    base = summary.get("default")
    for values in summary.values():
        values["busy_over_idle"] = values["busy_tokens_per_s"] / values["idle_tokens_per_s"]
        if base:
            values["idle_vs_default"] = values["idle_tokens_per_s"] / base["idle_tokens_per_s"]
            values["idle_ttft_vs_default"] = values["idle_ttft_s"] / base["idle_ttft_s"]
    return summary


def report(summary: dict[str, dict[str, float]]) -> str:
    rows = []
    for name, v in summary.items():
        met = v["busy_over_idle"] >= TARGET_BUSY_RATIO and v.get("idle_vs_default", 1) >= 1 - TARGET_IDLE_COST
        rows.append([name, v["idle_ttft_s"], v["busy_ttft_s"], v["idle_tokens_per_s"], v["busy_tokens_per_s"],
                     f"{v['busy_over_idle']:.2f}x", f"{v.get('idle_vs_default', float('nan')):.2f}x",
                     v["index_s"], "met" if met else "missed"])
    return table(["config", "idle TTFT s", "busy TTFT s", "idle tok/s", "busy tok/s", "busy / idle tok/s",
                  "idle tok/s vs default", f"index {DOCUMENTS} docs s",
                  f"busy >= {TARGET_BUSY_RATIO}x idle, idle >= {1 - TARGET_IDLE_COST:.2f}x default"], rows)


if __name__ == "__main__":
    sys.exit(main())
