"""Which instruction sets to compile llama.cpp for: prefill and generation speed per build.

    make llama-wheel LLAMA_ISA=avx2      # build the other wheel (5-9 minutes, once)
    python bench/llama_build.py          # every wheel in the wheelhouse, side by side

Each wheel of the project's wheelhouse (``~/.cache/briefing-qa/wheels``, one
folder per flag set, see the Makefile) is unpacked once into ``bench/out``;
then a fresh process per build and round loads the default generator with 2
threads, evaluates the seed briefing as a prompt from an empty KV cache
(prefill tokens/s) and generates 64 tokens greedily (generation tokens/s).
Builds alternate round by round, so a busy machine slows them alike; the
ratios against the first build are the figures to read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import OUT, ROOT, arg_parser, percentile, table, write_json

from qa.generation import cpu_features

WHEELHOUSE = Path(os.environ.get("WHEELHOUSE", Path.home() / ".cache" / "briefing-qa" / "wheels"))
GENERATED_TOKENS = 64
REPEATS = 2  # prefill + generation per process, after one untimed warm-up


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="processes per build")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help="internal: measure the importable build")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.threads)))
        return 0
    builds = unpacked_builds()
    if not builds:
        raise SystemExit(f"No llama-cpp-python wheels under {WHEELHOUSE}: run `make llama-wheel` first.")
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in builds}
    for _ in range(args.rounds):
        for label, folder in builds.items():
            runs[label].append(worker(folder, args.threads))
    result = summarise(runs)
    print(table(["build", "prefill tok/s", "generation tok/s", "prefill ratio", "generation ratio",
                 "features"], [[r["build"], r["prefill_tps"], r["generation_tps"], r["prefill_ratio"],
                                r["generation_ratio"], r["features"]] for r in result]))
    print(f"\nwritten {write_json('llama_build', {'builds': result}).relative_to(ROOT)}")
    return 0


def unpacked_builds() -> dict[str, Path]:
    """label (ISA and flag-set key) -> a folder holding that build's ``llama_cpp``."""
    builds = {}
    for folder in sorted(WHEELHOUSE.glob("llama-*")):
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
        if folder.name.endswith(".tmp") or not wheels:
            continue
        flags = (folder / "flags.txt").read_text().split() if (folder / "flags.txt").exists() else ["?"]
        target = OUT / "llama-builds" / folder.name
        if not (target / "llama_cpp").exists():
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                            str(target), str(wheels[-1])], check=True)
        builds[f"{flags[0]} ({folder.name.rsplit('-', 1)[-1]})"] = target
    return builds


def worker(folder: Path, threads: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    done = subprocess.run([sys.executable, __file__, "--worker", "--threads", str(threads)],
                          capture_output=True, text=True, env=env, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"build in {folder} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(threads: int) -> dict[str, Any]:
    """In the worker: the seed briefing as a prompt, evaluated cold, then 64 greedy tokens."""
    import llama_cpp

    from qa.generation import Generator, llama_system_info
    from qa.settings import Settings

    settings = Settings.from_env()
    llm = Generator(settings.generator.generator_path, settings.cache_dir, n_threads=threads).llm
    briefing = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")
    prompt = llm.tokenize(f"{briefing}\n\nSummary of the briefing:".encode(), add_bos=True)
    prefill, generation = [], []
    for repeat in range(REPEATS + 1):
        llm.reset()
        started = time.perf_counter()
        llm.eval(prompt)
        evaluated = time.perf_counter()
        produced = 0
        for token in llm.generate([], top_k=1, temp=0.0, reset=False):
            produced += 1
            if produced >= GENERATED_TOKENS or token == llm.token_eos():
                break
        finished = time.perf_counter()
        if repeat:  # the first pass warms caches and pages in the weights
            prefill.append(len(prompt) / (evaluated - started))
            generation.append(produced / (finished - evaluated))
    return {"llama_cpp": str(Path(llama_cpp.__file__).parent), "system_info": llama_system_info(),
            "prompt_tokens": len(prompt), "prefill_tps": prefill, "generation_tps": generation}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for label, measured in runs.items():
        prefill = percentile([v for m in measured for v in m["prefill_tps"]], 50)
        generation = percentile([v for m in measured for v in m["generation_tps"]], 50)
        rows.append({"build": label, "prefill_tps": prefill, "generation_tps": generation,
                     "features": cpu_features(measured[0]["system_info"]),
                     "prompt_tokens": measured[0]["prompt_tokens"], "runs": measured})
    first = rows[0]
    for row in rows:
        row["prefill_ratio"] = row["prefill_tps"] / first["prefill_tps"]
        row["generation_ratio"] = row["generation_tps"] / first["generation_tps"]
    return rows


if __name__ == "__main__":
    sys.exit(main())
