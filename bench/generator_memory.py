"""The generator's memory: its weights mapped from the GGUF, read into memory, or
mapped with the mapping's pages released after loading (``qa.generation``'s way).

    python bench/generator_memory.py             # two rounds, alternating
    python bench/generator_memory.py --rounds 3 --variants read released
    python bench/generator_memory.py --rounds 1 --variants released q8kv   # a q8_0 KV cache

Each variant runs in a fresh process: the default model is loaded as
``qa.generation`` loads it (``use_mmap`` as given), one seed-briefing prompt is
answered (64 greedy tokens), and the process reports its resident memory: all
of it (VmRSS), the part mapped from files (RssFile: the GGUF's pages when the
model is mapped; shared with the page cache) and its own (RssAnon), with time
to load, to the first token and tokens/s. llama.cpp repacks most weights into
its own buffers for the AVX kernels; with the file mapped, the pages they were
read from stay resident beside the copies; "released" gives those pages back
(``qa.models.mapped``), and the weights read in place come back as they are read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, arg_parser, load_average, percentile, run_json_worker, table, write_json

# mmap, release, extra Llama parameters; "q8kv": a quantised KV cache (needs flash attention)
VARIANTS: dict[str, tuple[bool, bool, dict[str, Any]]] = {
    "mapped": (True, False, {}), "read": (False, False, {}), "released": (True, True, {}),
    "q8kv": (True, True, {"flash_attn": True, "type_k": 8, "type_v": 8}),  # 8: GGML_TYPE_Q8_0
}


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        default=["mapped", "read", "released"])
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*VARIANTS[args.worker])))
        return 0
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.variants}
    for number in range(args.rounds):
        for name in (args.variants if number % 2 == 0 else list(reversed(args.variants))):
            runs[name].append(run_json_worker([__file__, "--worker", name], timeout=900))
            print(f"  {name}: {runs[name][-1]} (load {load_average():.1f})", file=sys.stderr, flush=True)
    keys = ("rss_mb", "file_mb", "anon_mb", "load_s", "ttft_s", "tokens_per_s")
    rows = [[name, *(percentile([r[k] for r in rs], 50) for k in keys)] for name, rs in runs.items()]
    headers = ["weights", "RSS MB", "mapped from files MB", "own MB", "load s", "first token s", "tokens/s"]
    print(table(headers, rows))
    write_json("generator_memory", {"runs": runs})
    return 0


def worker(use_mmap: bool, release: bool, extra: dict[str, Any]) -> dict[str, Any]:
    from llama_cpp import Llama

    from qa.models.files import resolve_generator
    from qa.models.mapped import release_mapped_pages
    from qa.settings import Settings

    settings = Settings.from_env()
    path = resolve_generator(settings.generator.generator_path, settings.cache_dir)
    started = time.perf_counter()
    llm = Llama(model_path=str(path), n_ctx=settings.generator.n_ctx, n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads, n_batch=512, use_mmap=use_mmap, verbose=False, **extra)
    if release:
        release_mapped_pages(path)
    load_s = time.perf_counter() - started
    briefing = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")[:2400]
    messages = [{"role": "user", "content": "Summarise in detail:\n" + briefing}]
    started, stamps = time.perf_counter(), []
    for _ in llm.create_chat_completion(messages, max_tokens=64, temperature=0.0, top_k=1, stream=True):
        stamps.append(time.perf_counter())
    return {"load_s": load_s, "ttft_s": stamps[0] - started,
            "tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
            "rss_mb": _status("VmRSS"), "file_mb": _status("RssFile"), "anon_mb": _status("RssAnon")}


def _status(kind: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
