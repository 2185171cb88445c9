"""The ``qa`` command: index, ask, chat, serve, eval.

Errors print one line and exit non-zero; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from qa.errors import QAError, QuestionSetError, UsageError
from qa.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except QAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a folder or file the system will not give us: say which and why
        print(f"error: {_os_error_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (an indexing run keeps every batch it embedded: run it again to finish)",
              file=sys.stderr)
        return 130


def _os_error_line(error: OSError) -> str:
    where = f" {error.filename}" if error.filename else ""
    reason = error.strerror or str(error)
    return (f"cannot use{where}: {reason}. Check that it exists and that you may read (and, for "
            "an index, write) it, or choose another with --index.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about briefing "
                                     "documents; answers cite the passages they use.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    index = _command(commands, "index", cmd_index, "build or update the index over files and folders")
    index.add_argument("paths", nargs="*", help="files or folders (searched recursively)")
    index.add_argument("--rebuild", action="store_true",
                       help="start from an empty index (documents uploaded into it are kept)")
    index.add_argument("--repair", action="store_true",
                       help="rebuild a damaged index from the texts it stores, the original files "
                            "and its uploads folder, then index PATHS if given")
    index.add_argument("--warm", action="store_true",
                       help="then evaluate the answering prompt over the newest documents once and "
                            "keep it on disk, so the first questions (about them, or any cold "
                            "document) start without that cost")

    ask = _command(commands, "ask", cmd_ask, "answer one question, with numbered sources")
    ask.add_argument("question")
    ask.add_argument("--docs", help="index these files first (incrementally)")

    chat = _command(commands, "chat", cmd_chat, "a conversation in the terminal")
    chat.add_argument("--docs", help="index these files first (incrementally)")

    serve = _command(commands, "serve", cmd_serve, "start the web chat")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--auth", help="user:password required to open the page (or QA_AUTH)")
    serve.add_argument("--docs", help="index these files first (incrementally)")

    _command(commands, "doctor", cmd_doctor,
             "check that this machine can run briefing QA (versions, build, models, index)")

    evaluate = _command(commands, "eval", cmd_eval, "score the system on a question set")
    evaluate.add_argument("questions", help="JSONL question set")
    evaluate.add_argument("--docs", help="index these documents (into a scratch index unless --index)")
    evaluate.add_argument("--out", default="evals/out/latest", help="folder for report.json/.md")
    evaluate.add_argument("--retrieval-only", action="store_true", help="skip the generator")
    evaluate.add_argument("-k", type=int, default=10, help="passages retrieved for retrieval metrics")
    return parser


def _command(commands: Any, name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    sub.add_argument("--index", dest="index_dir", help="index folder (default ./index or QA_INDEX_DIR)")
    sub.add_argument("--generator", dest="generator_path", help="GGUF file (or QA_GENERATOR_PATH)")
    sub.add_argument("--embedder", dest="embedder_path",
                     help="sentence-transformers folder (or QA_EMBEDDER_PATH); implies --embed-backend torch")
    sub.add_argument("--embed-backend", dest="embed_backend", choices=["onnx", "torch"],
                     help="onnx: packaged MiniLM as fused int8, ~3x faster (default; or QA_EMBED_BACKEND)")
    sub.add_argument("--threads", dest="n_threads", type=int, help="CPU threads")
    return sub


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the flags given (a flag left out is None)."""
    names = ("index_dir", "generator_path", "embedder_path", "embed_backend", "n_threads",
             "host", "port", "auth")
    given = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return Settings.from_env(**given)


@contextlib.contextmanager
def assistant_for(args: argparse.Namespace, scratch: bool = False) -> Iterator[Any]:
    """The Assistant a command talks to: ``--docs`` are indexed first (into the index folder,
    or with ``scratch`` into a temporary one unless ``--index`` names one, so an evaluation
    never rewrites the user's everyday index by surprise)."""
    from qa.pipeline import Assistant

    settings = settings_from(args)
    docs = getattr(args, "docs", None)
    with contextlib.ExitStack() as stack:
        index_dir = settings.index_dir
        if docs and scratch and not getattr(args, "index_dir", None):
            index_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="qa-eval-index-")))
        yield Assistant.over(docs, index_dir, settings=settings, progress=progress_bar() if docs else None)


def cmd_index(args: argparse.Namespace) -> int:
    from qa.index.backends import backend
    from qa.models.embedder import Embedder

    settings = settings_from(args)
    if not args.paths and not args.repair:
        raise UsageError("Name the files or folders to index (`qa index seeds/`), or repair a "
                         "damaged index with `qa index --repair`.")
    if args.repair and settings.index.vector_backend != "faiss":
        raise UsageError("--repair rebuilds the index folder of the faiss backend; for Milvus, index "
                         "the documents again with --rebuild.")
    if args.repair and args.rebuild:
        raise UsageError("--repair and --rebuild exclude each other: --repair keeps what survives.")
    embedder = Embedder.from_settings(settings)
    if args.repair:
        from qa.index.repair import repair_index

        repaired = repair_index(settings.index_dir, embedder, settings).report
        print(f"Repaired {settings.index_dir}: {repaired.summary()}")
        if not args.paths:
            return 1 if repaired.lost else 0
    report = backend(settings.index.vector_backend).update(
        args.paths, settings, embedder, rebuild=args.rebuild,
        progress=progress_bar()).report
    where = settings.index.vector_uri if settings.index.vector_backend == "milvus" else settings.index_dir
    print(f"Indexed into {where}: {report.summary()}")
    if args.warm:
        warm_prompts(settings)
    return 0


def warm_prompts(settings: Settings) -> None:
    """The one-time prefill a first question would otherwise pay (the rules and examples,
    then each newest document), done at set-up: ``make run`` indexes with ``--warm``."""
    from qa.pipeline import Assistant

    started = time.perf_counter()
    assistant = Assistant.open(settings.index_dir, settings=settings)
    count = len(assistant.warm_documents())
    kept = getattr(assistant.generator, "state_files", None) is not None
    print(f"Warmed the answering prompt over the newest {count} document{'s' * (count != 1)} in "
          f"{time.perf_counter() - started:.1f} s"
          + (" (kept on disk for the next process)" if kept else
             " (nothing kept on disk: QA_STATE_DISK_MB or QA_STATE_CACHE_MB is 0, or a server's model)"))


def cmd_ask(args: argparse.Namespace) -> int:
    with assistant_for(args) as assistant:
        answer = _stream_answer(assistant, args.question, [])
    return 0 if answer is not None else 1


def cmd_chat(args: argparse.Namespace) -> int:
    with assistant_for(args) as assistant:
        try:
            return _chat(assistant)
        finally:
            assistant.finish_background()


def _chat(assistant: Any) -> int:
    assistant.warm_in_background = assistant.settings.reader.warm_in_background
    print("Ask about the documents; an empty line or Ctrl-D ends the chat.")
    history: list[tuple[str, str]] = []
    while True:
        try:
            question = input("\nyou> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            return 0
        try:
            answer = _stream_answer(assistant, question, history)
        except QAError as error:
            print(f"error: {error}")
            continue
        history.append((question, answer.text))


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    check_port_free(settings.web.host, settings.web.port)  # before anything loads
    from qa.web.app import serve

    try:
        serve(settings, docs=getattr(args, "docs", None))
    except OSError as error:  # taken meanwhile: Gradio's message would advise its own variable
        if "port" not in str(error).lower():
            raise
        raise _port_error(settings.web.host, settings.web.port, "is in use") from None
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from qa.doctor import format_table, run_checks, verdict

    settings = settings_from(args)
    index_dir = settings.index_dir if args.index_dir or settings.index_dir.exists() else None
    findings = run_checks(settings, index_dir)
    print(format_table(findings))
    code, line = verdict(findings)
    print(line, file=sys.stderr if code else sys.stdout)
    return code


def check_port_free(host: str, port: int) -> None:
    """A port already taken is one line with what to do, not Gradio's traceback."""
    import errno
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        reason = "is in use" if error.errno == errno.EADDRINUSE else f"cannot be used ({error.strerror})"
        raise _port_error(host, port, reason) from None


def _port_error(host: str, port: int, reason: str) -> QAError:
    from qa.errors import ConfigurationError

    return ConfigurationError(f"Port {port} on {host} {reason}: stop what is using it, or serve on "
                       f"another with `qa serve --port {port + 1}` (or QA_PORT), or --host.")


def cmd_eval(args: argparse.Namespace) -> int:
    """``qa eval``: load the set, open (or build) the index, score, print, write reports."""
    from qa.evaluation.questions import load_question_set
    from qa.evaluation.report import build_report, format_console, write_report
    from qa.evaluation.runner import corpus_of, evaluate

    settings = settings_from(args)
    question_set = load_question_set(args.questions)
    for bad in question_set.bad_lines:
        print(f"warning: {args.questions}: {bad} (skipped)", file=sys.stderr)
    if not question_set.items:
        raise QuestionSetError(f"No usable question in {args.questions}; "
                               "each line needs an id, a question and answers.")
    k = max(1, int(args.k))
    config = {"questions_file": str(args.questions), "docs": args.docs,
              "index": str(args.index_dir) if args.index_dir else None, "k": k,
              "retrieval_only": bool(args.retrieval_only),
              "started": datetime.now(UTC).isoformat(timespec="seconds"),
              "settings": {"context_token_budget": settings.reader.context_token_budget,
                           "candidates": settings.retrieve.candidates, "judge": settings.checks.judge,
                           "english_checks": settings.checks.english_checks,
                           "min_relevance": settings.retrieve.min_relevance,
                           "generator": settings.generator.generator_path or "default",
                           "embedder": settings.index.embedder_path or "default"}}
    with assistant_for(args, scratch=True) as assistant:
        run = evaluate(assistant, question_set.items, k, args.retrieval_only, corpus=corpus_of(assistant))
    report = build_report(run.results, config, question_set.bad_lines, run.warnings)
    json_path, md_path = write_report(report, Path(args.out))
    print(format_console(report))
    print(f"\nReport: {json_path} and {md_path}")
    return 0


def _stream_answer(assistant: Any, question: str, history: list[tuple[str, str]],
                   out: TextIO | None = None) -> Any:
    """The checked answer and its sources. On a terminal the draft streams first, dimmed and
    labelled, and is erased once the checks are done; piped output gets only the answer."""
    from qa.types import RETRYING, Answer, Stage

    out = out or sys.stdout
    draft = DraftView(out)
    answer, retried = None, False
    for piece in assistant.stream(question, history, stages=True):
        if isinstance(piece, Answer):
            answer = piece
        elif isinstance(piece, Stage):
            retried = retried or piece.name == RETRYING
            draft.stage(piece.name)
        else:
            draft.write(piece)
    drafted = draft.clear()
    print(format_answer(answer, drafted, retried), file=out, flush=True)
    return answer


class DraftView:
    """The draft on a terminal: dimmed after a label, then erased line by line (the
    terminal's width says how many lines it took). Elsewhere nothing is shown."""

    LABEL = "draft, being checked> "

    def __init__(self, out: TextIO):
        self.out = out
        self.live = bool(getattr(out, "isatty", lambda: False)())
        self.text = ""

    def write(self, piece: str) -> None:
        if self.live and not self.text:
            self.out.write(f"{_DIM}{self.LABEL}")
        self.text += piece
        if self.live:
            self.out.write(piece)
            self.out.flush()

    def stage(self, name: str) -> None:
        from qa.types import RETRYING

        if name == RETRYING:
            self.write("  (its evidence is not in the documents; asking the model again…)")

    def clear(self) -> bool:
        """Erase the draft; True if there was one."""
        if self.live and self.text:
            width = max(20, shutil.get_terminal_size().columns)
            lines = sum(max(1, -(-len(line) // width)) for line in (self.LABEL + self.text).split("\n"))
            self.out.write(f"{_RESET}\r" + ("\x1b[2K\x1b[1A" * (lines - 1)) + "\x1b[2K\r")
            self.out.flush()
        return bool(self.text.strip())


_DIM, _RESET = "\x1b[2m", "\x1b[0m"


def format_answer(answer: Any, drafted: bool = False, retried: bool = False) -> str:
    """The answer with its sources numbered from 1; a withdrawn draft or a retry said so."""
    from qa.citations import renumbered
    from qa.web.render import RETRIED, WITHDRAWN

    if answer.abstained:
        return (f"{WITHDRAWN}\n" if drafted else "") + answer.text
    text, citations = renumbered(answer.text, answer.citations)
    lines = [text]
    if retried:
        lines.append(f"({RETRIED})")
    lines += ["", "Sources:"]
    for citation in citations:
        where = ", ".join(p for p in (citation.date, f"p. {citation.page}" if citation.page else None) if p)
        lines.append(f"[{citation.number}] {citation.title}" + (f" ({where})" if where else ""))
        lines.append(f"    {Path(citation.source).name}, characters {citation.start}-{citation.end}")
        quote = " ".join(citation.quote.split())
        lines.append(textwrap.indent(textwrap.fill(f"“{quote}”", 92), "    "))
    return "\n".join(lines)


def progress_bar() -> Any:
    """A tqdm bar on stderr fed by the indexer's progress callback."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int, what: str) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, unit=" chunks", desc="embedding", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


if __name__ == "__main__":
    sys.exit(main())
