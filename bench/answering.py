"""Answering speed: the system against llama-cpp-python called directly with the same prompt.

    python bench/answering.py                      # 8 seed questions, threads 1 vs 2, peak RSS
    python bench/answering.py --questions 24 --threads 1 --no-threads --no-rss

For each seed question the system's prompt is captured first (a dry run of the
assistant with a recording generator), then the system answers it
(``Assistant.stream``: retrieval, prompt, generation) and a bare ``Llama``
answers the same messages with ``create_chat_completion``, in alternating
order. Both keep their own KV cache across questions, as llama-cpp-python does
by itself, and both answered one untimed question first. Time to first token
(TTFT) counts from the call; the system's includes retrieval. Generation
tokens/s is the streamed pieces after the first over the time after the first.
llama.cpp's own counters tell how many prompt tokens were evaluated, which
shows whether the fixed prefix (instructions + worked examples) came from the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import (
    OUT,
    ROOT,
    arg_parser,
    load_average,
    peak_rss_mb,
    percentile,
    run_json_worker,
    table,
    write_json,
)

TARGET_TTFT_P50 = 0.5
TARGET_TOKENS_RATIO = 0.95


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--questions", type=int, default=8, help="seed questions timed (after one warm-up)")
    parser.add_argument("--threads", type=int, help="n_threads for both sides (default: the settings')")
    parser.add_argument("--no-threads", action="store_true", help="skip the n_threads 1 vs 2 sweep")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory run")
    parser.add_argument("--worker", choices=["rss", "fresh"], help="internal")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(rss_worker() if args.worker == "rss" else fresh_worker()))
        return 0
    os.environ["QA_STATE_DIR"] = tempfile.mkdtemp(prefix="qa-bench-states-")  # nothing on disk yet
    result = run(args)
    print(report(result))
    path = write_json("answering", result)
    print(f"\nwritten {path.relative_to(OUT.parent.parent)}")
    return 0


# -- set-up ------------------------------------------------------------------------------------


def seed_questions(limit: int) -> list[str]:
    lines = (ROOT / "evals" / "seed.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [r["question"] for r in rows[:limit]]


def open_assistant(threads: int | None = None) -> Any:
    """The system as configured, over the seed briefings (index built once in bench/out)."""
    from qa.pipeline import Assistant

    chosen = {"n_threads": threads} if threads else {}  # else the settings' own
    return Assistant.from_folder(ROOT / "seeds", OUT / "index-seeds", **chosen)


def bare_llama(settings: Any, threads: int | None = None) -> Any:
    """A plain ``Llama`` over the same GGUF file with the generator's own parameters."""
    from llama_cpp import Llama

    from qa.models.files import resolve_generator

    path = resolve_generator(settings.generator.generator_path, settings.cache_dir)
    threads = threads or settings.n_threads
    with contextlib.redirect_stderr(io.StringIO()):
        return Llama(model_path=str(path), n_ctx=settings.generator.n_ctx, n_threads=threads,
                     n_threads_batch=threads, n_batch=512, verbose=False)


class PromptRecorder:
    """Stands in for the generator during a dry run, to capture the exact messages the system sends."""

    def __init__(self, generator: Any):
        self.generator = generator
        self.messages: list[dict[str, str]] = []
        self.grammar: str | None = None

    def count_tokens(self, text: str) -> int:
        return self.generator.count_tokens(text)

    def stream_chat(self, messages: list[dict[str, str]], max_tokens: int | None = None,
                    grammar: str | None = None, keep_state: bool = True) -> Iterator[str]:
        self.messages, self.grammar = messages, grammar
        yield "Answer: The documents do not say."

    def warm(self, messages: list[dict[str, str]]) -> None:
        pass


def captured_prompt(assistant: Any, question: str) -> tuple[list[dict[str, str]], str | None]:
    """The messages and the grammar the system sends for ``question``."""
    real = assistant.generator
    recorder = assistant.generator = PromptRecorder(real)
    try:
        assistant.ask(question)
    finally:
        assistant.generator = real
    return recorder.messages, recorder.grammar


# -- measuring ------------------------------------------------------------------------------------


def timed_stream(pieces: Iterator[Any]) -> dict[str, Any]:
    """TTFT, pieces and generation rate of one streamed answer."""
    started = time.perf_counter()
    stamps: list[float] = []
    text: list[str] = []
    for piece in pieces:
        if isinstance(piece, str) and piece:
            stamps.append(time.perf_counter())
            text.append(piece)
    ended = time.perf_counter()
    gen_seconds = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {"ttft": (stamps[0] if stamps else ended) - started, "pieces": len(stamps),
            "gen_seconds": gen_seconds, "total": ended - started, "text": "".join(text)}


def system_answer(assistant: Any, question: str) -> dict[str, Any]:
    ctx = assistant.generator.llm._ctx.ctx
    before = _perf(ctx)
    run = timed_stream(assistant.stream(question))
    return {**run, **_perf_delta(before, _perf(ctx))}


def bare_answer(llm: Any, prompt: tuple[list[dict[str, str]], str | None], max_tokens: int) -> dict[str, Any]:
    """The same messages and grammar straight to ``create_chat_completion``."""
    from llama_cpp import LlamaGrammar

    messages, grammar = prompt

    def pieces() -> Iterator[str]:
        stream = llm.create_chat_completion(messages=messages, stream=True, temperature=0.0, top_k=1,
                                            max_tokens=max_tokens, repeat_penalty=1.0,
                                            grammar=LlamaGrammar.from_string(grammar, verbose=False)
                                            if grammar else None)
        for event in stream:
            yield event["choices"][0]["delta"].get("content") or ""

    before = _perf(llm._ctx.ctx)
    run = timed_stream(pieces())
    return {**run, **_perf_delta(before, _perf(llm._ctx.ctx))}


def _perf(ctx: Any) -> dict[str, float]:
    import llama_cpp

    data = llama_cpp.llama_perf_context(ctx)
    return {"prompt_tokens": data.n_p_eval, "prompt_ms": data.t_p_eval_ms, "gen_tokens": data.n_eval,
            "gen_ms": data.t_eval_ms}


def _perf_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """llama.cpp's counters over one call: prompt tokens actually evaluated (not from the cache)."""
    return {f"llama_{k}": after[k] - before[k] for k in before}


def run(args: argparse.Namespace) -> dict[str, Any]:
    assistant = open_assistant(args.threads)
    settings = assistant.settings
    questions = seed_questions(args.questions + 1)
    # The first question about a cold document (not warmed: read as windows), then the
    # warm-up a web process runs at start (the document's whole prefill, timed).
    cold_system = system_answer(assistant, questions[0])
    started = time.perf_counter()
    assistant.warm_up()
    warm_up_s = time.perf_counter() - started
    prompts = {q: captured_prompt(assistant, q) for q in questions}
    llm = bare_llama(settings)
    full_prompt_tokens = {q: len(llm.tokenize(_formatted(llm, prompts[q][0]).encode(), special=True))
                          for q in questions}
    cold = {"system": cold_system, "warm_up_s": warm_up_s,  # bare: the whole prompt, nothing cached
            "bare": bare_answer(llm, prompts[questions[0]], settings.generator.max_answer_tokens),
            "next_process": next_process_runs()}
    system: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for number, question in enumerate(questions[1:]):
        sides = ["system", "bare"] if number % 2 == 0 else ["bare", "system"]
        for side in sides:
            if side == "system":
                system.append({"question": question, **system_answer(assistant, question)})
            else:
                bare.append({"question": question,
                             **bare_answer(llm, prompts[question], settings.generator.max_answer_tokens)})
        print(f"  {number + 1}/{len(questions) - 1}: first token after {system[-1]['ttft']:.2f} s (system), "
              f"{bare[-1]['ttft']:.2f} s (bare); load {load_average():.1f}", file=sys.stderr, flush=True)
    result = {"questions": len(system), "threads": settings.n_threads, "cold": cold,
              "system": summarise(system), "bare": summarise(bare),
              "prompt_tokens_full": percentile(list(full_prompt_tokens.values()), 50),
              "prefix_tokens": _common_prefix_tokens(llm, [prompts[q][0] for q in questions]),
              "tokenise_ms": _tokenise_ms(llm, prompts[questions[1]][0]),
              "runs": {"system": system, "bare": bare}}
    del llm
    if not args.no_threads:
        result["threads_sweep"] = threads_sweep(settings, prompts[questions[1]][0])
    if not args.no_rss:
        result["rss"] = run_json_worker([__file__, "--worker", "rss"], timeout=600)
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, float]:
    pieces = sum(r["pieces"] - 1 for r in runs if r["pieces"] > 1)
    seconds = sum(r["gen_seconds"] for r in runs if r["pieces"] > 1)
    ttft = [r["ttft"] for r in runs]
    return {"ttft_p50": percentile(ttft, 50), "ttft_p95": percentile(ttft, 95),
            "tokens_per_s": pieces / seconds if seconds else float("nan"),
            "prompt_tokens_evaluated_p50": percentile([r["llama_prompt_tokens"] for r in runs], 50),
            "prefill_tokens_per_s": 1000 * sum(r["llama_prompt_tokens"] for r in runs)
            / max(sum(r["llama_prompt_ms"] for r in runs), 1e-9),
            "llama_gen_tokens_per_s": 1000 * sum(r["llama_gen_tokens"] for r in runs)
            / max(sum(r["llama_gen_ms"] for r in runs), 1e-9),
            "total_p50": percentile([r["total"] for r in runs], 50)}


def _formatted(llm: Any, messages: list[dict[str, str]]) -> str:
    """The prompt text llama-cpp-python builds from the messages with the model's chat template."""
    from llama_cpp import llama_chat_format

    template = llm.metadata["tokenizer.chat_template"]
    formatter = llama_chat_format.Jinja2ChatFormatter(template=template, eos_token="", bos_token="")
    return formatter(messages=messages).prompt


def _common_prefix_tokens(llm: Any, prompts: list[list[dict[str, str]]]) -> int:
    """Tokens shared by every prompt: what the KV cache can keep between questions."""
    tokenised = [llm.tokenize(_formatted(llm, p).encode(), special=True) for p in prompts]
    shared = 0
    for column in zip(*tokenised, strict=False):
        if len(set(column)) > 1:
            break
        shared += 1
    return shared


def _tokenise_ms(llm: Any, messages: list[dict[str, str]], repeats: int = 20) -> float:
    """What create_chat_completion spends re-formatting and re-tokenising a prompt, per call."""
    started = time.perf_counter()
    for _ in range(repeats):
        llm.tokenize(_formatted(llm, messages).encode(), special=True)
    return 1000 * (time.perf_counter() - started) / repeats


def threads_sweep(settings: Any, messages: list[dict[str, str]],
                  rounds: int = 2) -> dict[str, dict[str, float]]:
    """Prefill (whole prompt, cache reset) and generation speed with 1 and 2 threads, alternating."""
    models = {threads: bare_llama(settings, threads) for threads in (1, 2)}
    runs: dict[int, list[dict[str, float]]] = {threads: [] for threads in models}
    for _ in range(rounds):
        for threads, llm in models.items():
            llm.reset()
            runs[threads].append(bare_answer(llm, messages, 24))
    return {str(t): {"prefill_tokens_per_s": 1000 * sum(r["llama_prompt_tokens"] for r in rs)
                     / max(sum(r["llama_prompt_ms"] for r in rs), 1e-9),
                     "gen_tokens_per_s": 1000 * sum(r["llama_gen_tokens"] for r in rs)
                     / max(sum(r["llama_gen_ms"] for r in rs), 1e-9),
                     "ttft_p50": percentile([r["ttft"] for r in rs], 50)}
            for t, rs in runs.items()}


def next_process_runs() -> dict[str, Any]:
    """The first question in a new process once this one has warmed the briefing (its
    state on disk), and in one where only the rules and examples are on disk (the
    briefing never warmed: read as windows)."""
    states = Path(os.environ["QA_STATE_DIR"])
    warmed = run_json_worker([__file__, "--worker", "fresh"], timeout=600)
    unmarked = Path(tempfile.mkdtemp(prefix="qa-bench-states-")) / "states"
    shutil.copytree(states, unmarked, ignore=shutil.ignore_patterns("*.warm"))
    os.environ["QA_STATE_DIR"] = str(unmarked)
    try:
        cold_document = run_json_worker([__file__, "--worker", "fresh"], timeout=600)
    finally:
        os.environ["QA_STATE_DIR"] = str(states)
    return {"warmed_document": warmed, "cold_document": cold_document}


def fresh_worker() -> dict[str, Any]:
    """A new process: open, load the models (untimed), then the first question and the warm-up."""
    assistant = open_assistant()
    assistant.generator.llm  # noqa: B018 - the model load is not the first question's
    first = system_answer(assistant, seed_questions(1)[0])
    started = time.perf_counter()
    assistant.warm_up()
    return {"ttft": first["ttft"], "prompt_tokens": first["llama_prompt_tokens"],
            "warm_up_s": time.perf_counter() - started}


def rss_worker() -> dict[str, Any]:
    """Peak resident memory of a process that opens the index and answers three questions."""
    from qa.pipeline import Assistant

    assistant = Assistant.open(OUT / "index-seeds")
    opened = peak_rss_mb()
    for question in seed_questions(3):
        assistant.ask(question)
    return {"after_open_mb": opened, "peak_answering_mb": peak_rss_mb()}


# -- report ------------------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> str:
    s, b, nxt = result["system"], result["bare"], result["cold"]["next_process"]
    speed = s["tokens_per_s"] / b["tokens_per_s"]
    rows = [
        ["time to first token p50 s", s["ttft_p50"], b["ttft_p50"], f"{s['ttft_p50'] / b['ttft_p50']:.2f}",
         f"<= {TARGET_TTFT_P50} s: {'met' if s['ttft_p50'] <= TARGET_TTFT_P50 else 'missed'}"],
        ["time to first token p95 s", s["ttft_p95"], b["ttft_p95"], f"{s['ttft_p95'] / b['ttft_p95']:.2f}",
         ""],
        ["generation tokens/s", s["tokens_per_s"], b["tokens_per_s"], f"{speed:.2f}",
         f">= {TARGET_TOKENS_RATIO}x bare: {'met' if speed >= TARGET_TOKENS_RATIO else 'missed'}"],
        ["prompt tokens evaluated p50", s["prompt_tokens_evaluated_p50"], b["prompt_tokens_evaluated_p50"],
         "", f"of {result['prompt_tokens_full']:.0f} in the prompt, {result['prefix_tokens']} shared"],
        ["prefill tokens/s (llama.cpp)", s["prefill_tokens_per_s"], b["prefill_tokens_per_s"], "", ""],
        ["generation tokens/s (llama.cpp)", s["llama_gen_tokens_per_s"], b["llama_gen_tokens_per_s"],
         f"{s['llama_gen_tokens_per_s'] / b['llama_gen_tokens_per_s']:.2f}", "decoding only"],
        ["answer total p50 s", s["total_p50"], b["total_p50"], f"{s['total_p50'] / b['total_p50']:.2f}", ""],
        ["first question TTFT s (cold)", result["cold"]["system"]["ttft"], result["cold"]["bare"]["ttft"], "",
         "first-ever process, nothing on disk: a cold document read as windows; bare: the whole prompt"],
        ["warm-up s (whole document prefill)", result["cold"]["warm_up_s"], "", "", "once per document"],
        ["next process: first question TTFT s", nxt["warmed_document"]["ttft"], "", "",
         f"briefing warmed by the last process (state on disk); "
         f"{nxt['warmed_document']['prompt_tokens']:.0f} prompt tokens evaluated"],
        ["next process: warm-up s", nxt["warmed_document"]["warm_up_s"], "", "", "the states read from disk"],
        ["next process, cold briefing: TTFT s", nxt["cold_document"]["ttft"], "", "",
         f"read as windows, rules + examples from disk (as after `qa index --warm`); "
         f"{nxt['cold_document']['prompt_tokens']:.0f} prompt tokens evaluated"],
    ]
    text = (f"Answering, {result['questions']} seed questions, n_threads {result['threads']}\n"
            + table(["", "system", "bare llama-cpp-python", "ratio", "note"], rows)
            + f"\nre-formatting + re-tokenising one prompt: {result['tokenise_ms']:.1f} ms")
    if "threads_sweep" in result:
        sweep = result["threads_sweep"]
        text += "\n\nThreads (bare, whole prompt evaluated)\n" + table(
            ["n_threads", "prefill tokens/s", "generation tokens/s", "TTFT p50 s"],
            [[t, v["prefill_tokens_per_s"], v["gen_tokens_per_s"], v["ttft_p50"]] for t, v in sweep.items()])
    if "rss" in result:
        text += (f"\n\nPeak RSS answering: {result['rss']['peak_answering_mb']:.0f} MB "
                 f"({result['rss']['after_open_mb']:.0f} MB after opening the index)")
    return text


if __name__ == "__main__":
    sys.exit(main())
