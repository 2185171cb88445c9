"""Time to first token over an OpenAI-compatible server against in-process, same run.

    python bench/generator_server.py                  # 8 seed questions, default model
    python bench/generator_server.py --questions 24 --model tiny

One ``python -m llama_cpp.server`` (llama-cpp-python's own server, the same
build) is started on 127.0.0.1 with the configured GGUF; two assistants answer
over the same seed index: one with the embedded generator (``llama``), one with
``QA_GENERATOR_URL`` pointing at the server (``openai``). Questions alternate
between them, each side answered one untimed question first, so both have the
fixed prompt prefix in their KV cache (the server keeps it in its one context
as the embedded model does). TTFT counts from the call and includes retrieval.
The server gets the same threads as the embedded model and they never run at
the same time. Also counted: questions where both gave the same answer text
and the same cited passages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common import OUT, ROOT, arg_parser, load_average, percentile, table, write_json

sys.path.insert(0, str(ROOT))
from bench.answering import seed_questions  # noqa: E402
from tests.servers import free_port, llama_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--model", help="QA_GENERATOR_PATH for both sides (default: the settings')")
    args = parser.parse_args(argv)
    result = run(args.questions, args.model)
    print(report(result))
    print(f"\nwritten {write_json('generator_server', result).relative_to(ROOT)}")
    return 0


def run(count: int, model: str | None) -> dict[str, Any]:
    from qa.models.files import resolve_generator
    from qa.pipeline import Assistant
    from qa.settings import Settings

    settings = Settings.from_env(**({"generator_path": model} if model else {}))
    path = resolve_generator(settings.generator.generator_path, settings.cache_dir)
    questions = seed_questions(count + 1)
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    with llama_server(path, port, OUT / "llama-server.log", threads=settings.n_threads):
        remote = settings.replace(generator_url=f"http://127.0.0.1:{port}/v1")
        sides = {"in-process": Assistant.from_folder(ROOT / "seeds", OUT / "index-seeds", settings=settings),
                 "server": Assistant.from_folder(ROOT / "seeds", OUT / "index-seeds", settings=remote)}
        for assistant in sides.values():
            assistant.ask(questions[0])  # untimed: loads, caches the fixed prefix
        ttft: dict[str, list[float]] = {name: [] for name in sides}
        answers: dict[str, list[tuple[str, tuple[str, ...]]]] = {name: [] for name in sides}
        for number, question in enumerate(questions[1:]):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for name in order:
                answer = sides[name].ask(question)
                ttft[name].append(answer.timings.first_token or answer.timings.total)
                answers[name].append((answer.text, tuple(c.chunk_id for c in answer.citations)))
    same = sum(a == b for a, b in zip(answers["in-process"], answers["server"], strict=True))
    figures = {name: {"ttft_p50": percentile(v, 50), "ttft_p95": percentile(v, 95)}
               for name, v in ttft.items()}
    ratio = figures["server"]["ttft_p50"] / figures["in-process"]["ttft_p50"]
    return {"model": Path(path).name, "questions": count, "threads": settings.n_threads,
            "figures": figures, "ratio_p50": ratio,
            "same_answer_and_citations": same, "load_average_after": round(load_average(), 2),
            "ttft": ttft}


def report(result: dict[str, Any]) -> str:
    rows = [[name, f["ttft_p50"], f["ttft_p95"]] for name, f in result["figures"].items()]
    return "\n".join([
        f"{result['questions']} seed questions, {result['model']}, {result['threads']} threads "
        f"(shared machine; load {result['load_average_after']})",
        table(["generator", "TTFT p50 s", "TTFT p95 s"], rows),
        f"server / in-process TTFT p50: {result['ratio_p50']:.2f}x; same answer and citations: "
        f"{result['same_answer_and_citations']}/{result['questions']}"])


if __name__ == "__main__":
    sys.exit(main())
