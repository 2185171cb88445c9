"""Prompt-lookup decoding against plain decoding: generation tokens/s, TTFT, identical answers.

    python bench/prompt_lookup.py                    # 12 seed + 12 fresh questions, 2 rounds
    python bench/prompt_lookup.py --questions 39 --rounds 1 --draft 10

llama-cpp-python's ``LlamaPromptLookupDecoding`` proposes the tokens that
followed the last n-gram in the prompt (answers copy their passages); the
model checks them in one batch and keeps the ones it would have produced
greedily. The product does not use it (slower here, and it fails in the
cached multi-turn conversation), so the benchmark gives the generator's
``Llama`` the draft model itself. Each side runs in a fresh process, the two
taking turns (plain, lookup, lookup, plain), each answering the seed and
the fresh questions over their own briefings with the full system
(``Assistant.stream``). Answers must be identical: the decoding is greedy on
both sides, so any difference is the batch's arithmetic changing an argmax.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from common import OUT, ROOT, arg_parser, load_average, percentile, run_json_worker, table, write_json

SETS = {"seed": (ROOT / "evals" / "seed.jsonl", ROOT / "seeds"),
        "fresh": (ROOT / "evals" / "fresh" / "questions.jsonl", ROOT / "evals" / "fresh" / "docs")}
TARGET_SPEEDUP = 1.3


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--questions", type=int, default=12, help="per set")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--draft", type=int, default=10, help="tokens proposed per step")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.questions)))
        return 0
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "lookup": []}
    for number in range(args.rounds):
        for side in (["plain", "lookup"] if number % 2 == 0 else ["lookup", "plain"]):
            os.environ["BENCH_DRAFT_TOKENS"] = str(args.draft if side == "lookup" else 0)
            runs[side].append(run_json_worker([__file__, "--worker", side, "--questions",
                                               str(args.questions)], timeout=3600))
            print(f"  {side}: {percentile(_rates(runs[side][-1]), 50):.1f} tok/s "
                  f"(load {load_average():.1f})", file=sys.stderr, flush=True)
    os.environ.pop("BENCH_DRAFT_TOKENS", None)
    summary = summarise(runs)
    print(report(summary, args.draft))
    path = write_json("prompt_lookup", {"draft_tokens": args.draft, "summary": summary, "runs": runs})
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


def with_prompt_lookup(draft: int) -> None:
    """Every ``Llama`` this process creates gets the prompt-lookup draft model."""
    import llama_cpp
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    plain = llama_cpp.Llama

    class Lookup(plain):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=draft), **kwargs)

    llama_cpp.Llama = Lookup


def worker(limit: int) -> dict[str, Any]:
    from qa.pipeline import Assistant

    draft = int(os.environ.get("BENCH_DRAFT_TOKENS", "0"))
    if draft:
        with_prompt_lookup(draft)

    answers: dict[str, dict[str, Any]] = {}
    for name, (questions, docs) in SETS.items():
        assistant = Assistant.from_folder(docs, OUT / f"index-{name}-lookup")
        assistant.warm_up()
        rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()][:limit]
        for row in rows:
            started, stamps, final, error = time.perf_counter(), [], None, None
            try:
                for piece in assistant.stream(row["question"]):
                    if isinstance(piece, str):
                        stamps.append(time.perf_counter())
                    else:
                        final = piece
            except Exception as failure:  # llama-cpp-python's own errors, recorded per question
                error = f"{type(failure).__name__}: {str(failure)[:200]}"
                assistant = Assistant.from_folder(docs, OUT / f"index-{name}-lookup")  # a fresh context
                assistant.warm_up()
            span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
            answers[f"{name}/{row['id']}"] = {
                "text": final.text if final else "", "pieces": len(stamps), "error": error,
                "ttft_s": stamps[0] - started if stamps else float("nan"),
                "tokens_per_s": (len(stamps) - 1) / span if span else float("nan"),
                "total_s": time.perf_counter() - started}
    return answers


def _rates(run: dict[str, Any]) -> list[float]:
    return [a["tokens_per_s"] for a in run.values() if a["tokens_per_s"] == a["tokens_per_s"]]


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for side, side_runs in runs.items():
        summary[side] = {
            "tokens_per_s": percentile([r for run in side_runs for r in _rates(run)], 50),
            "ttft_s": percentile([a["ttft_s"] for run in side_runs for a in run.values()
                                  if a["ttft_s"] == a["ttft_s"]], 50),
            "total_s": percentile([a["total_s"] for run in side_runs for a in run.values()], 50)}
    plain, lookup = runs["plain"][0], runs["lookup"][0]
    differ = sorted(k for k in plain if plain[k]["text"] != lookup.get(k, {}).get("text"))
    summary["speedup"] = summary["lookup"]["tokens_per_s"] / summary["plain"]["tokens_per_s"]
    summary["ttft_ratio"] = summary["lookup"]["ttft_s"] / summary["plain"]["ttft_s"]
    summary["total_ratio"] = summary["lookup"]["total_s"] / summary["plain"]["total_s"]
    summary["answers"] = len(plain)
    summary["different_answers"] = differ
    summary["errors"] = {side: sorted(k for run in rs for k, a in run.items() if a.get("error"))
                         for side, rs in runs.items()}
    summary["error_examples"] = sorted({a["error"] for rs in runs.values() for run in rs
                                        for a in run.values() if a.get("error")})[:3]
    summary["examples"] = {k: {"plain": plain[k]["text"], "lookup": lookup[k]["text"]} for k in differ[:5]}
    return summary


def report(summary: dict[str, Any], draft: int) -> str:
    adopt = summary["speedup"] >= TARGET_SPEEDUP and not summary["different_answers"]
    rows = [[side, summary[side]["tokens_per_s"], summary[side]["ttft_s"], summary[side]["total_s"]]
            for side in ("plain", "lookup")]
    return "\n".join([
        table(["decoding", "generation tok/s p50", "TTFT p50 s", "total p50 s"], rows),
        f"\nprompt lookup ({draft} draft tokens): {summary['speedup']:.2f}x tokens/s, TTFT "
        f"{summary['ttft_ratio']:.2f}x, total {summary['total_ratio']:.2f}x; "
        f"{len(summary['different_answers'])} of {summary['answers']} answers differ; errors: "
        f"{', '.join(f'{side} {len(keys)}' for side, keys in summary['errors'].items())} "
        f"{summary['error_examples'][:1]}; "
        f"adopt (>= {TARGET_SPEEDUP}x and identical): {'yes' if adopt else 'no'}"])


if __name__ == "__main__":
    sys.exit(main())
