"""The ``Assistant``: the one entry point for asking questions over an index.

question -> retrieval query -> passages -> prompt -> streamed answer ->
citations resolved and checked. Models load lazily, once per assistant.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.checks import Check
from qa.checks.english import EnglishRules
from qa.checks.evidence import (
    AnswerInEvidence,
    NoInventedNumbers,
    NotObeyingPassages,
    QuoteFound,
    ReaderRefused,
)
from qa.checks.judge import ModelJudge
from qa.citations import is_refusal, strip_markers
from qa.errors import EmptyQuestionError, NoDocumentsError, QAError, QuestionTooLongError
from qa.generators import ChatGenerator, make_generator
from qa.index.backends import DocumentInfo, Store, backend, backend_of
from qa.index.indexing import IndexReport, Progress
from qa.ingest.documents import load_documents
from qa.injection import InjectionGuard
from qa.models.embedder import Embedder
from qa.priority import FOREGROUND
from qa.reader.context import ContextPlan, build_context
from qa.reader.document_reader import Clock, DocumentReader, Question
from qa.reader.reply import ReaderPrompt
from qa.settings import Settings
from qa.types import (
    REFUSE,
    Answer,
    Chunk,
    Document,
    Passage,
    Stage,
    Turn,
    Verdict,
)

log = logging.getLogger(__name__)


class Assistant:
    def __init__(self, store: Store, settings: Settings, embedder: Embedder | None = None,
                 generator: ChatGenerator | None = None, index_dir: Path | None = None):
        self.settings = settings
        self.index_dir = index_dir
        self.backend = backend_of(store)
        self.embedder = embedder or Embedder.from_settings(settings)
        self.generator = generator or make_generator(settings)
        self.prompt = ReaderPrompt.load(settings.reader.prompts_dir)
        self.guard = InjectionGuard.load(self.embedder, settings.reader.prompts_dir)
        self._warm: set[str] = set()  # content hashes of documents whose whole prefill is cached
        self._warming: set[str] = set()  # ... being evaluated by a background thread
        self.warm_in_background = False  # the web chat and `qa chat` set it (QA_WARM_IN_BACKGROUND)
        self._warmers: list[threading.Thread] = []
        self._set_store(store)

    # -- construction ------------------------------------------------------------

    @classmethod
    def from_folder(cls, paths: str | Path | Sequence[str | Path], index_dir: str | Path = "index",
                    settings: Settings | None = None, rebuild: bool = False,
                    progress: Progress | None = None, **overrides: Any) -> Assistant:
        """Build or update the index over ``paths``, then open it."""
        settings = (settings or Settings.from_env()).replace(index_dir=Path(index_dir), **overrides)
        embedder = Embedder.from_settings(settings)
        folders = [paths] if isinstance(paths, str | Path) else list(paths)
        store = backend(settings.index.vector_backend).update(folders, settings, embedder,
                                                                 rebuild=rebuild, progress=progress).store
        return cls(store, settings, embedder=embedder, index_dir=settings.index_dir)

    @classmethod
    def open(cls, index_dir: str | Path = "index", settings: Settings | None = None,
             **overrides: Any) -> Assistant:
        """Open an index built earlier."""
        settings = (settings or Settings.from_env()).replace(index_dir=Path(index_dir), **overrides)
        embedder = Embedder.from_settings(settings)
        store = backend(settings.index.vector_backend).open(settings, embedder)
        return cls(store, settings, embedder=embedder, index_dir=settings.index_dir)

    @classmethod
    def over(cls, docs: str | Path | Sequence[str | Path] | None, index_dir: str | Path,
             settings: Settings | None = None, progress: Progress | None = None) -> Assistant:
        """What every entry point opens: ``docs`` indexed first into ``index_dir`` when
        given, else the index already there. No generator loads yet."""
        if docs:
            return cls.from_folder(docs, index_dir, settings=settings, progress=progress)
        return cls.open(index_dir, settings=settings)

    # -- asking ------------------------------------------------------------------

    def retrieve(self, question: str, k: int = 10) -> list[Passage]:
        return self.retriever.retrieve(self.check_question(question), k)

    def ask(self, question: str, history: Sequence[Turn] = (),
            documents: Collection[str] | None = None) -> Answer:
        answer = None
        for piece in self.stream(question, history, documents=documents):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def stream(self, question: str, history: Sequence[Turn] = (), stages: bool = False,
               documents: Collection[str] | None = None) -> Iterator[str | Stage | Answer]:
        """Text pieces of the draft as they are generated, then the final ``Answer``.

        With ``stages``, a ``Stage`` also says when the draft is complete and being
        checked, and when the model is asked again: the pieces are a draft until the
        ``Answer`` (checked, maybe re-cited or refused) arrives. ``documents`` limits the
        question to those doc_ids. Indexing in this process waits meanwhile (qa/priority.py)."""
        with FOREGROUND.answering():
            yield from self._stream_documents(question, history, stages, documents)

    def _stream_documents(self, question: str, history: Sequence[Turn], stages: bool,
                          only: Collection[str] | None) -> Iterator[str | Stage | Answer]:
        """The document reader: retrieval -> context -> reader -> checks (qa/reader/)."""
        started = time.perf_counter()
        question = self.check_question(question)
        retriever = self.retriever  # one index throughout, even if an upload swaps it meanwhile
        documents = retriever.store.documents
        if not documents:
            self._no_documents()
        query = self.retrieval_query(question, history)
        passages = (retriever.retrieve_within(query, only, self.settings.retrieve.candidates) if only
                    else retriever.retrieve(query, self.settings.retrieve.candidates))
        clock = Clock(started, retrieval=time.perf_counter() - started)
        relevant = [p for p in passages if p.score >= self.settings.retrieve.min_relevance]
        if not relevant:
            best = max((p.score for p in passages), default=0.0)
            verdict = Verdict("relevance", REFUSE, f"no passage reaches relevance "
                              f"{self.settings.retrieve.min_relevance:.2f} (best {best:.2f})")
            yield self._refused(question, passages, clock, verdict)
            return
        context = build_context(relevant, documents, self.generator.count_tokens, self.context_plan,
                                show_whole=self._may_show_whole)
        earlier = self._context(history) if query != question else ""
        asked = Question(text=question, about=query, context=context, earlier=earlier)
        with contextlib.closing(self.document_reader.stream(asked, documents, clock, stages)) as pieces:
            for piece in pieces:
                if isinstance(piece, Answer):  # before it leaves: a caller may close the stream then
                    self._warm.update(documents[d].content_hash for d in context.whole)
                    if context:
                        self._warm_later([documents[context.passages[0].doc_id]])
                yield piece

    def _warm_later(self, documents: Sequence[Document]) -> None:
        """Warm cold documents in a background thread that waits for answers in progress
        (qa/priority.py), in a long-lived process only (``warm_in_background``): a one-shot
        ``qa ask`` must not exit while llama.cpp is still evaluating."""
        cold = [d for d in documents if d.content_hash not in self._warm | self._warming]
        if not cold or not self.warm_in_background or not self.generator.loaded:
            return
        self._warming.update(d.content_hash for d in cold)

        def warm() -> None:
            with FOREGROUND.background():
                try:
                    for document in cold:
                        FOREGROUND.wait(threading.get_ident())
                        self.warm_documents([document.doc_id])
                except QAError as error:  # a warm is an optimisation: the next answer says the error
                    log.warning("warming %s failed: %s", [d.source for d in cold], error)
                finally:
                    self._warming.difference_update(d.content_hash for d in cold)

        thread = threading.Thread(target=warm, daemon=True, name="qa-warm-documents")
        self._warmers.append(thread)
        thread.start()

    def finish_background(self) -> None:
        """Wait for background warms, so the process never exits while llama.cpp is in one."""
        for thread in self._warmers:
            thread.join()
        self._warmers.clear()

    def _may_show_whole(self, document: Document) -> bool:
        """A document is shown whole once its prefill is cached (warmed, or asked about
        whole before); a cold one is read as windows, so its first answer is not held
        up by a whole prefill (~100 tokens/s here), unless ``cold_documents`` says whole."""
        if self.settings.reader.cold_documents == "whole" or document.content_hash in self._warm:
            return True
        if self.document_reader.is_warm(document):  # warmed by an earlier process
            self._warm.add(document.content_hash)
            return True
        return False

    @property
    def context_plan(self) -> ContextPlan:
        return ContextPlan(budget=self.settings.reader.context_token_budget)

    @property
    def document_reader(self) -> DocumentReader:
        """Built per question (small records): it reads the generator the assistant has now."""
        checks: list[Check] = [ReaderRefused(), QuoteFound(), AnswerInEvidence(), NoInventedNumbers(),
                               NotObeyingPassages(self.guard)]
        if self.settings.checks.english_checks:
            checks.append(EnglishRules())
        if self.settings.checks.judge != "off":
            checks.append(ModelJudge(self.generator, self.settings.reader.prompts_dir,
                                     self.settings.checks.judge_min_yes))
        second = [c if not isinstance(c, QuoteFound) else QuoteFound(retry=False) for c in checks]
        return DocumentReader(self.generator, self.prompt,
                              checks, second, self._chunk_at)

    def _chunk_at(self, doc_id: str, offset: int) -> Chunk | None:
        """The indexed chunk of ``doc_id`` holding ``offset`` (chunk ids count from 0)."""
        number = 0
        while True:
            try:
                chunk = self.store.chunk(f"{doc_id}:{number}")
            except KeyError:
                return None
            if chunk.start <= offset < chunk.end or offset < chunk.start:
                return chunk
            number += 1

    def _refused(self, question: str, passages: list[Passage], clock: Clock, verdict: Verdict) -> Answer:
        return Answer(question=question, text=self.prompt.refusal, abstained=True,
                      passages=passages, timings=clock.stop(), trace=(verdict,))


    def _no_documents(self) -> None:
        """"The documents do not say" would be a lie: there are none."""
        where = self.index_dir or self.settings.index_dir
        raise NoDocumentsError(
            f"The index in {where} holds no documents (an interrupted or failed `qa index`?): "
            f"index them with `qa index <your documents> --index {where}`.")

    def warm_documents(self, doc_ids: Iterable[str] | None = None) -> list[str]:
        """Evaluate each document's prompt prefix ahead of its questions (the most recent
        ``warm_documents`` of them when none are named): the first question about a
        warmed document costs only its own tokens. The doc_ids warmed (one longer than
        the reader's budget is never shown whole, so it is not)."""
        documents = self.store.documents
        newest = self.settings.reader.warm_documents
        chosen = list(doc_ids) if doc_ids is not None else list(documents)[-newest:] if newest else []
        budget = self.settings.reader.context_token_budget
        reader = self.document_reader
        warmed = []
        for doc_id in chosen:
            document = documents.get(doc_id)
            if document is not None and self.generator.count_tokens(document.text) <= budget:
                reader.warm(document)
                self._warm.add(document.content_hash)
                warmed.append(doc_id)
        return warmed

    def warm_up(self) -> None:
        """Load both models and put the fixed prompt prefix in the generator's KV cache,
        so the first question costs no more than the next ones."""
        self.guard.order_scores(self.embedder.encode(["warm up"]))  # embeds the example orders once
        self.retriever.retrieve("warm up", 1)  # opens the lexical index, imports its tokeniser
        self.warm_documents()

    def retrieval_query(self, question: str, history: Sequence[Turn] = ()) -> str:
        """A follow-up ("What did he do?") is searched together with the previous
        exchange, whose answer names who or what the pronoun stands for."""
        if not history or not is_follow_up(question):
            return question
        previous_question, previous_answer = self._leaned_on(history)
        return " ".join(f"{previous_question} {strip_markers(previous_answer)} {question}".split())

    def _leaned_on(self, history: Sequence[Turn]) -> Turn:
        """The exchange a follow-up continues: the last one answered (a refusal names no
        one a pronoun could stand for), else the last question alone."""
        for previous_question, previous_answer in reversed(history):
            if not (is_refusal(previous_answer) or previous_answer == self.prompt.refusal):
                return previous_question, previous_answer
        return history[-1][0], ""


    def _context(self, history: Sequence[Turn]) -> str:
        previous_question, previous_answer = self._leaned_on(history)
        return self.prompt.context.format(question=previous_question,
                                             answer=strip_markers(previous_answer)) + "\n"

    # -- documents ---------------------------------------------------------------

    def add_documents(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Index new or changed files and save; the old index serves until the swap."""
        with FOREGROUND.background():  # answers asked meanwhile go first (qa/priority.py)
            documents = load_documents(paths)
            indexed = self.backend.add(self.store, documents, self.embedder, self.settings,
                                             self.index_dir, progress=progress, before_save=self._yield)
            store, report = indexed.store, indexed.report
            self._set_store(store)
        self._warm_later(documents[-self.settings.reader.warm_documents:])
        return report

    def _yield(self) -> None:
        """Background work (here: the save) waits for the answers in progress."""
        if self.settings.index.yield_to_answers:
            FOREGROUND.wait(threading.get_ident())

    def remove_document(self, doc_id: str) -> None:
        self._set_store(self.backend.remove(self.store, doc_id, self.index_dir))

    @property
    def documents(self) -> list[DocumentInfo]:
        return self.backend.listing(self.store)

    # -- internals ---------------------------------------------------------------

    def _set_store(self, store: Store) -> None:
        """Questions keep the current store until an update is whole (a checkpoint is saved,
        not served)."""
        self.store, self.retriever = store, self.backend.searcher(store, self.embedder, self.settings)

    def check_question(self, question: str) -> str:
        """The question, whitespace-normalised; a clear error if empty or too long."""
        if not isinstance(question, str) or not question.strip():
            raise EmptyQuestionError("The question is empty: type a question about the documents.")
        question = " ".join(question.split())
        limit = self.settings.retrieve.max_question_chars
        if len(question) > limit:
            raise QuestionTooLongError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}. "
                "Ask a shorter question (QA_MAX_QUESTION_CHARS raises the limit)."
            )
        return question


_FOLLOW_UP = re.compile(
    r"\b(he|she|him|his|her|hers|they|them|their|it|its|this|that|these|those|there|the same)\b"
    r"|^(and|what about|how about|and what|why|when)\b",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """Pronouns or an elliptic start mean the question leans on the conversation."""
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) <= 3

