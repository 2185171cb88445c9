"""The ``Assistant``: the one entry point for asking questions over an index.

question -> retrieval query -> passages -> prompt -> streamed answer ->
citations resolved and checked. Models load lazily, once per assistant.
"""

from __future__ import annotations

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
from qa.citations import is_refusal, resolve_citations, strip_markers
from qa.compaction import PassageCompactor
from qa.errors import EmptyQuestionError, NoDocumentsError, QuestionTooLongError
from qa.generators import ChatGenerator, make_generator
from qa.index.backends import DocumentInfo, Store, backend, backend_of
from qa.index.indexing import IndexReport, Progress
from qa.ingest.documents import load_documents
from qa.injection import InjectionGuard
from qa.models.embedder import Embedder
from qa.near_misses import (
    answers_someone_else,
    name_added,
    names_the_subject,
    role_unattested,
    swapped_subject,
    unstated_premise,
)
from qa.priority import FOREGROUND
from qa.prompting import Prompt, Templates, build_prompt, fixed_messages
from qa.reader.context import ContextPlan, build_context
from qa.reader.document_reader import DocumentReader, Question
from qa.reader.reply import ReaderPrompt
from qa.retrieve.hybrid import merge_neighbours
from qa.settings import Settings
from qa.slots import asked_slot, fills
from qa.types import (
    CHECKING,
    REFUSE,
    RETRYING,
    Answer,
    Chunk,
    Citation,
    Document,
    Passage,
    Stage,
    Turn,
    Verdict,
)
from qa.verification import (
    KINDS,
    adds_information,
    answers_the_kind,
    asked_kind,
    invented_numbers,
    mentions_any_name,
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
        self.templates = Templates.load(settings.prompts_dir)
        self.guard = InjectionGuard.load(self.embedder, settings.prompts_dir)
        self.compactor = PassageCompactor(self.embedder, self.generator.count_tokens,
                                          settings.passage_token_budget, guard=self.guard)
        self._warm: set[str] = set()  # content hashes of documents whose whole prefill is cached
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
        store, _ = backend(settings.vector_backend).update(folders, settings, embedder,
                                                           rebuild=rebuild, progress=progress)
        return cls(store, settings, embedder=embedder, index_dir=settings.index_dir)

    @classmethod
    def open(cls, index_dir: str | Path = "index", settings: Settings | None = None,
             **overrides: Any) -> Assistant:
        """Open an index built earlier."""
        settings = (settings or Settings.from_env()).replace(index_dir=Path(index_dir), **overrides)
        embedder = Embedder.from_settings(settings)
        store = backend(settings.vector_backend).open(settings, embedder)
        return cls(store, settings, embedder=embedder, index_dir=settings.index_dir)

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
            if self.settings.reader == "document":
                yield from self._stream_documents(question, history, stages, documents)
            else:
                yield from self._stream(question, history, stages, documents)

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
        passages = (retriever.retrieve_within(query, only, self.settings.candidates) if only
                    else retriever.retrieve(query, self.settings.candidates))
        timings = {"retrieval": time.perf_counter() - started}
        relevant = [p for p in passages if p.score >= self.settings.min_relevance]
        if not relevant:
            best = max((p.score for p in passages), default=0.0)
            verdict = Verdict("relevance", REFUSE, f"no passage reaches relevance "
                              f"{self.settings.min_relevance:.2f} (best {best:.2f})")
            yield self._refused(question, passages, timings, started, verdict)
            return
        context = build_context(relevant, documents, self.generator.count_tokens, self.context_plan,
                                show_whole=self._may_show_whole)
        earlier = self._context(history) if query != question else ""
        asked = Question(text=question, about=query, context=context, earlier=earlier)
        yield from self.document_reader.stream(asked, documents, timings, started, stages)
        self._warm.update(documents[d].content_hash for d in context.whole)
        top = documents[context.passages[0].doc_id] if context else None
        if top is not None and top.content_hash not in self._warm:  # read as windows: warm it now
            self._warm.add(top.content_hash)
            threading.Thread(target=self.warm_documents, args=([top.doc_id],), daemon=True,
                             name="qa-warm-document").start()

    def _may_show_whole(self, document: Document) -> bool:
        """A document is shown whole once its prefill is cached (warmed, or asked about
        whole before); a cold one is read as windows, so its first answer is not held
        up by a whole prefill (~100 tokens/s here), unless ``cold_documents`` says whole."""
        return self.settings.cold_documents == "whole" or document.content_hash in self._warm

    @property
    def context_plan(self) -> ContextPlan:
        return ContextPlan(budget=self.settings.context_token_budget)

    @property
    def document_reader(self) -> DocumentReader:
        """Built per question (small records): it reads the generator the assistant has now."""
        checks: list[Check] = [ReaderRefused(), QuoteFound(), AnswerInEvidence(), NoInventedNumbers(),
                               NotObeyingPassages(self.guard)]
        if self.settings.judge != "off":
            checks.append(ModelJudge(self.generator, self.settings.prompts_dir))
        if self.settings.english_checks:
            checks.append(EnglishRules(self._documents_text))
        second = [c if not isinstance(c, QuoteFound) else QuoteFound(retry=False) for c in checks]
        return DocumentReader(self.generator, ReaderPrompt.load(self.settings.prompts_dir),
                              checks, second, self._chunk_at, refusal=self.templates.refusal)

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

    def _refused(self, question: str, passages: list[Passage], timings: dict[str, float],
                 started: float, verdict: Verdict) -> Answer:
        timings["total"] = time.perf_counter() - started
        return Answer(question=question, text=self.templates.refusal, abstained=True,
                      passages=passages, timings=timings, trace=(verdict,))

    def _stream(self, question: str, history: Sequence[Turn], stages: bool,
                documents: Collection[str] | None) -> Iterator[str | Stage | Answer]:
        started = time.perf_counter()
        question, passages, prompt, timings = self.prepare(question, history, documents)
        if prompt is None:
            yield self._refusal(question, passages, timings, started)
            return
        pieces: list[str] = []
        for piece in self.generator.stream_chat(prompt.messages):
            if not pieces:
                timings["first_token"] = time.perf_counter() - started
            pieces.append(piece)
            yield piece
        timings["tokens"] = float(len(pieces))
        raw = "".join(pieces)
        if stages:
            yield Stage(CHECKING)
        nudge = self._nudge(question, raw, prompt.passages)
        if nudge is not None:  # one more turn in the cached conversation: ~0.5 s, and rare
            if stages:
                yield Stage(RETRYING)
            turn = [{"role": "assistant", "content": raw}, {"role": "user", "content": nudge}]
            retried = list(self.generator.stream_chat([*prompt.messages, *turn]))
            raw, timings["tokens"] = "".join(retried), timings["tokens"] + len(retried)
        # A follow-up ("What did he do?") is about what the conversation names.
        about = self.retrieval_query(question, history)
        yield self._finish(question, raw, prompt.passages, timings, started, about)

    def _nudge(self, question: str, raw: str, passages: Sequence[Passage]) -> str | None:
        """A second request when the answer dodges what was asked: no time for "when", no
        amount for "how many", a person where a job was asked (the small model often
        stops at the first hop of "the job of the official who..."). Also when it leaves
        out the words a passage puts where the question's preposition points ("action
        against ___"), or names the question's own person ("With whom did the finance
        minister meet?" -> the minister). The retry is checked like any answer."""
        if is_refusal(raw):
            return None
        kind = asked_kind(question)
        if kind is not None and not answers_the_kind(raw, question):
            name = name_added(raw, question) if kind == "role" else None
            if name:  # the second hop as its own question: "What is Sergei Lavrov's job?"
                return self.templates.nudge_role.format(name=name)
            return self.templates.nudge.format(kind=KINDS[kind].wanted)
        slot = asked_slot(question, [p.text for p in passages])
        if slot is not None and not fills(strip_markers(raw), slot):
            return self.templates.nudge_slot.format(number=slot.passage, phrase=slot.phrase)
        subject = names_the_subject(raw, question, self._documents_text(passages))
        if subject is not None:
            return self.templates.nudge_subject.format(name=subject)
        return None

    def _documents_text(self, passages: Sequence[Passage]) -> str:
        """The whole documents the passages come from, each once: titles set beside a
        name may sit outside the sentences the prompt kept."""
        documents = self.store.documents
        return " ".join(dict.fromkeys(
            documents[p.doc_id].text if p.doc_id in documents else p.text for p in passages))

    def prepare(self, question: str, history: Sequence[Turn] = (),
                only: Collection[str] | None = None
                ) -> tuple[str, list[Passage], Prompt | None, dict[str, float]]:
        """(clean question, retrieved passages, prompt or None when nothing is
        relevant, timings): everything before the model, for reuse by benchmarks.
        ``only`` limits the passages to those doc_ids."""
        question = self.check_question(question)
        started = time.perf_counter()
        retriever = self.retriever  # one index throughout, even if an upload swaps it meanwhile
        documents = retriever.store.documents
        if not documents:
            self._no_documents()
        query = self.retrieval_query(question, history)
        passages = (retriever.retrieve_within(query, only, self.settings.candidates) if only
                    else retriever.retrieve(query, self.settings.candidates))
        timings = {"retrieval": time.perf_counter() - started}
        relevant = [p for p in passages if p.score >= self.settings.min_relevance]
        relevant = merge_neighbours(relevant[: self.settings.top_k * 2], documents)
        if not relevant:
            return question, passages, None, timings
        context = self._context(history) if query != question else ""
        relevant = relevant[: self.settings.top_k]
        if self.settings.passage_token_budget > 0:
            # Sentences are chosen for this question (with the one before it for a follow-up),
            # not for the previous answer, which the search query also holds.
            focus = f"{history[-1][0]} {question}" if context else question
            relevant = self.compactor.compact(focus, relevant, documents)
            if not relevant:  # the relevant text was all orders to the reader
                return question, passages, None, timings
        prompt = build_prompt(question, relevant, self.templates,
                              self.generator.count_tokens, self.settings.prompt_token_budget,
                              context=context)
        return question, passages, prompt, timings

    def _no_documents(self) -> None:
        """"The documents do not say" would be a lie: there are none."""
        where = self.index_dir or self.settings.index_dir
        raise NoDocumentsError(
            f"The index in {where} holds no documents (an interrupted or failed `qa index`?): "
            f"index them with `qa index <your documents> --index {where}`.")

    def warm_documents(self, doc_ids: Iterable[str] | None = None) -> None:
        """Evaluate each document's prompt prefix ahead of its questions (the most recent
        ``warm_documents`` of them when none are named): the first question about a
        warmed document costs only its own tokens."""
        documents = self.store.documents
        chosen = list(doc_ids) if doc_ids is not None else list(documents)[-self.settings.warm_documents:]
        budget = self.settings.context_token_budget
        reader = self.document_reader
        for doc_id in chosen:
            document = documents.get(doc_id)
            if document is not None and self.generator.count_tokens(document.text) <= budget:
                reader.warm(document)
                self._warm.add(document.content_hash)

    def warm_up(self) -> None:
        """Load both models and put the fixed prompt prefix in the generator's KV cache,
        so the first question costs no more than the next ones."""
        self.guard.order_scores(self.embedder.encode(["warm up"]))  # embeds the example orders once
        self.retriever.retrieve("warm up", 1)  # opens the lexical index, imports its tokeniser
        if self.settings.reader == "document":
            self.warm_documents()
            return
        messages = [*fixed_messages(self.templates), {"role": "user", "content": "Ready?"}]
        for _ in self.generator.stream_chat(messages, max_tokens=1):
            pass

    def retrieval_query(self, question: str, history: Sequence[Turn] = ()) -> str:
        """A follow-up ("What did he do?") is searched together with the previous
        exchange, whose answer names who or what the pronoun stands for."""
        if not history or not is_follow_up(question):
            return question
        previous_question, previous_answer = history[-1]
        if is_refusal(previous_answer) or previous_answer == self.templates.refusal:
            previous_answer = ""
        return " ".join(f"{previous_question} {strip_markers(previous_answer)} {question}".split())

    def _refusal_reason(self, question: str, text: str, passages: list[Passage],
                        citations: list[Citation], support: float, about: str) -> str | None:
        """Why the passages do not back the answer, or None: an answer that follows an
        instruction written in a passage (or answers another question than the one
        asked), mostly unsupported words, a number no passage states, an answer that
        only restates the question or dodges it (no time for "when"), a question about
        names the cited documents never mention, or a near miss: a deed the cited
        passages give to someone else, an act the question presupposes that they never
        state, a name for a role they never give that person, or the asked deed of
        another doer ("How much has Russia pledged?" -> "Brussels has pledged...")."""
        obeyed = self.guard.obeyed(about, strip_markers(text), _supporting(passages, citations))
        if obeyed is not None:
            return obeyed.reason
        evidence = " ".join(p.text for p in passages)
        cited = [passages[c.number - 1] for c in citations]
        cited_documents = self._documents_text(cited)
        cited_text = " ".join(p.text for p in cited)
        checks = (
            (lambda: support < self.settings.min_support,
             f"too little of the answer is in its passages (support {support:.2f})"),
            (lambda: not adds_information(text, question), "the answer only restates the question"),
            (lambda: not answers_the_kind(text, question), "the answer does not give what was asked"),
            (lambda: bool(invented_numbers(text, evidence)), "the answer states a number no passage gives"),
            (lambda: not mentions_any_name(question, cited_documents),
             "the cited documents never name what the question is about"),
            (lambda: swapped_subject(text, cited_text), "the passages give that deed to someone else"),
            (lambda: unstated_premise(text, question, cited_text, cited_documents),
             "the passages never state what the question presupposes"),
            (lambda: role_unattested(text, question, cited_documents),
             "the documents never give that person this role"),
            (lambda: answers_someone_else(text, question, cited_documents),
             "the answer gives another doer's deed"),
            (lambda: names_the_subject(text, question, cited_documents) is not None,
             "the answer names the question's own person"),
        )
        return next((reason for failed, reason in checks if failed()), None)

    def _context(self, history: Sequence[Turn]) -> str:
        previous_question, previous_answer = history[-1]
        return self.templates.context.format(question=previous_question,
                                             answer=strip_markers(previous_answer)) + "\n"

    # -- documents ---------------------------------------------------------------

    def add_documents(self, paths: Iterable[str | Path], progress: Progress | None = None) -> IndexReport:
        """Index new or changed files and save; the old index serves until the swap."""
        with FOREGROUND.background():  # answers asked meanwhile go first (qa/priority.py)
            documents = load_documents(paths)
            store, report = self.backend.add(self.store, documents, self.embedder, self.settings,
                                             self.index_dir, progress=progress, before_save=self._yield)
            self._set_store(store)
        if self.settings.reader == "document" and self.generator.loaded:
            added = [d.doc_id for d in documents][-self.settings.warm_documents:]
            threading.Thread(target=self.warm_documents, args=(added,), name="qa-warm-documents",
                             daemon=True).start()
        return report

    def _yield(self) -> None:
        """Background work (here: the save) waits for the answers in progress."""
        if self.settings.yield_to_answers:
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
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise QuestionTooLongError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}. "
                "Ask a shorter question (QA_MAX_QUESTION_CHARS raises the limit)."
            )
        return question

    def _refusal(self, question: str, passages: list[Passage], timings: dict[str, float],
                 started: float, reason: str | None = None) -> Answer:
        timings["total"] = time.perf_counter() - started
        if reason:
            log.info("refused an answer to %r: %s", question, reason)
        trace = (Verdict("legacy", REFUSE, reason),) if reason else ()
        return Answer(question=question, text=self.templates.refusal, abstained=True,
                      passages=passages, timings=timings, trace=trace)

    def _finish(self, question: str, raw: str, passages: list[Passage],
                timings: dict[str, float], started: float, about: str) -> Answer:
        if is_refusal(raw):
            return self._refusal(question, passages, timings, started)
        text, citations, checked = resolve_citations(raw.strip(), passages)
        reason = self._refusal_reason(question, text, passages, citations, checked.support, about)
        if reason is not None:
            return self._refusal(question, passages, timings, started, reason)
        timings["total"] = time.perf_counter() - started
        return Answer(question=question, text=text, citations=citations, passages=passages,
                      timings=timings, unsupported=checked.unsupported, support=checked.support)


def _supporting(passages: Sequence[Passage], citations: Sequence[Citation]) -> list[tuple[int, str]]:
    """(number, the sentence of the passage that best supports the answer) per citation."""
    found = []
    for citation in citations:
        passage = passages[citation.number - 1]
        start = (citation.highlight_start or passage.start) - passage.start
        end = (citation.highlight_end or passage.end) - passage.start
        found.append((citation.number, passage.text[start:end] or passage.text))
    return found


_FOLLOW_UP = re.compile(
    r"\b(he|she|him|his|her|hers|they|them|their|it|its|this|that|these|those|there|the same)\b"
    r"|^(and|what about|how about|and what|why|when)\b",
    re.IGNORECASE,
)


def is_follow_up(question: str) -> bool:
    """Pronouns or an elliptic start mean the question leans on the conversation."""
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) <= 3

