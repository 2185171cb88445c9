"""The document reader: the chosen documents in view, an answer with a copied
quote, the checks, and one visible retry.

context (qa/reader/context.py) -> prompt and grammar (qa/reader/reply.py) ->
streamed answer sentence -> the evidence located (qa/reader/evidence.py) ->
checks (qa/checks/) -> an ``Answer`` whose one citation is the quote's exact span.
A draft whose quote is not in its document is asked once more, in the same
conversation (cheap: the prompt is cached), and the user sees that it is a retry.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from qa.checks import Check, Draft, run_checks
from qa.ingest.chunking import sentence_spans
from qa.reader.context import Context
from qa.reader.evidence import Span, locate
from qa.reader.reply import ReaderPrompt, Reply, answer_pieces, parse_reply
from qa.types import (
    ACCEPT,
    CHECKING,
    REFUSE,
    RETRY,
    RETRYING,
    Answer,
    Chunk,
    Citation,
    Document,
    Passage,
    Stage,
    Timings,
    Verdict,
)
from qa.verification import RECITE_BELOW, answer_share, terms


@dataclass(frozen=True)
class Question:
    """One question as the reader gets it, after retrieval and the context stage."""

    text: str
    about: str  # what a follow-up is about (the search query)
    context: Context
    earlier: str = ""  # the exchange a follow-up continues, as prompt text


@dataclass
class Clock:
    """An answer's timings while it is made: mutable on purpose, as the streaming steps
    write into it; ``stop`` gives the frozen ``Timings`` the answer keeps."""

    started: float  # time.perf_counter() when the question arrived
    retrieval: float  # seconds it took to retrieve the passages
    first_token: float | None = None
    generated_tokens: int = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def stop(self) -> Timings:
        return Timings(retrieval=self.retrieval, first_token=self.first_token, total=self.elapsed())


class DocumentReader:
    def __init__(self, generator: object, prompt: ReaderPrompt, checks: Sequence[Check],
                 second_checks: Sequence[Check], chunk_of: Callable[[str, int], Chunk | None]):
        self.generator = generator
        self.prompt = prompt
        self.checks = list(checks)
        self.second_checks = list(second_checks)  # the retry may not be retried
        self.chunk_of = chunk_of  # (doc_id, offset) -> the indexed chunk holding it

    def messages(self, question: Question) -> list[dict[str, str]]:
        return self.prompt.messages(question.context.passages, question.text, question.earlier)

    def warm(self, document: Document) -> None:
        """Evaluate the prompt prefix for ``document`` shown whole, ahead of its questions."""
        self.generator.warm(self._whole(document))  # type: ignore[attr-defined]

    def is_warm(self, document: Document) -> bool:
        """Warmed by this process or an earlier one (its state kept on disk)."""
        is_warm = getattr(self.generator, "is_warm", None)
        return bool(is_warm and is_warm(self._whole(document)))

    def _whole(self, document: Document) -> list[dict[str, str]]:
        passage = Passage(chunk_id=f"{document.doc_id}:0", doc_id=document.doc_id, text=document.text,
                          score=1.0, title=document.title, source=document.source, start=0,
                          end=len(document.text))
        return self.prompt.messages([passage], "")

    def stream(self, question: Question, documents: Mapping[str, Document], clock: Clock,
               stages: bool) -> Iterator[str | Stage | Answer]:
        messages = self.messages(question)
        raw = yield from self._generate(messages, clock)
        if stages:
            yield Stage(CHECKING)
        reply = parse_reply(raw)
        draft = self._draft(question, reply, documents)
        trace = run_checks(self.checks, draft)
        if trace[-1].action == RETRY:
            if stages:
                yield Stage(RETRYING)
            turn = [{"role": "assistant", "content": raw},
                    {"role": "user", "content": self.prompt.retry.format(number=reply.number)}]
            raw = yield from self._generate([*messages, *turn], clock)
            draft = self._draft(question, parse_reply(raw), documents)
            trace += run_checks(self.second_checks, draft)
        yield self._answer(draft, tuple(trace), clock)

    def _generate(self, messages: list[dict[str, str]], clock: Clock) -> Iterator[str]:
        raw = ""
        grammar = self.prompt.grammar or None
        pieces = self.generator.stream_chat(messages, grammar=grammar)  # type: ignore[attr-defined]
        # Closed at once when the caller stops reading: the generator's lock is released then,
        # not whenever the garbage collector finds the abandoned frames.
        with _closed(pieces), contextlib.closing(answer_pieces(pieces)) as shown:
            for visible, piece in shown:
                clock.generated_tokens += 1
                raw += piece
                if visible:
                    if clock.first_token is None:
                        clock.first_token = clock.elapsed()
                    yield visible
        return raw

    def _draft(self, question: Question, reply: Reply, documents: Mapping[str, Document]) -> Draft:
        passages = question.context.passages
        span = bounds = None
        sentence, recited = "", None
        if 1 <= reply.number <= len(passages) and reply.quote:
            passage = passages[reply.number - 1]
            span = locate(reply.quote, passage.text, passage.start)
            if span is not None:
                bounds = _sentences_around(documents[passage.doc_id].text, span)
                sentence = documents[passage.doc_id].text[bounds.start:bounds.end]
                if not reply.refused and answer_share(reply.answer, question.text, sentence) < RECITE_BELOW:
                    recited = best_sentence(reply.answer, question.text, passages, documents)
        elif not reply.quote and not reply.refused:  # a free-form reply: the evidence is found
            recited = best_sentence(reply.answer, question.text, passages, documents)
        if recited is not None:  # the evidence is a whole sentence: its own bounds
            number, span, sentence = recited
            bounds = span
            reply = replace(reply, number=number)
        return Draft(question=question.text, about=question.about, earlier=question.earlier,
                     passages=passages, reply=reply,
                     evidence=span, evidence_sentence=sentence, documents=documents,
                     recited=recited is not None, sentence_span=bounds)

    def _answer(self, draft: Draft, trace: tuple[Verdict, ...], clock: Clock) -> Answer:
        passages = list(draft.passages)
        timings, tokens = clock.stop(), clock.generated_tokens
        if trace[-1].action != ACCEPT:
            last = Verdict("evidence", REFUSE, "no retry left")
            refused = trace if trace[-1].action == REFUSE else (*trace, last)
            return Answer(question=draft.question, text=self.prompt.refusal, abstained=True,
                          passages=passages, timings=timings, generated_tokens=tokens, trace=refused,
                          draft=None if draft.reply.refused else draft.reply.answer)
        citation = self._citation(draft)
        text = with_marker(draft.reply.answer, citation.number)
        return Answer(question=draft.question, text=text, citations=[citation], passages=passages,
                      timings=timings, generated_tokens=tokens, trace=trace)

    def _citation(self, draft: Draft) -> Citation:
        passage, span, bounds = draft.cited, draft.evidence, draft.sentence_span
        assert passage is not None and span is not None and bounds is not None
        document = draft.documents[passage.doc_id]
        chunk = self.chunk_of(passage.doc_id, span.start)
        return Citation(number=draft.reply.number, passage=passage,
                        chunk_id=chunk.chunk_id if chunk else passage.chunk_id,
                        quote=draft.evidence_sentence, start=bounds.start, end=bounds.end,
                        page=document.page_at(span.start), highlight_start=span.start,
                        highlight_end=span.end)


@contextlib.contextmanager
def _closed(pieces: Iterator[str]) -> Iterator[None]:
    """Close a generator backend's stream when the block ends (an iterator without
    ``close`` has nothing to release)."""
    try:
        yield
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


def with_marker(answer: str, number: int) -> str:
    """"X [1]." as the other answers read: the marker before the closing stop."""
    body = answer.rstrip()
    stop = body[-1] if body and body[-1] in ".!?" else ""
    return f"{body[: len(body) - len(stop)].rstrip()} [{number}]{stop}"


def best_sentence(answer: str, question: str, passages: Sequence[Passage],
                  documents: Mapping[str, Document]) -> tuple[int, Span, str] | None:
    """(passage number, span, sentence) of the shown sentence holding most of what the
    answer adds to the question, when it holds at least ``RECITE_BELOW`` of it: the
    reader often answers right and then quotes a neighbouring sentence."""
    if not terms(answer) - terms(question):  # nothing to find: the grounding check refuses it
        return None
    best: tuple[float, int, Span, str] | None = None
    for number, passage in enumerate(passages, 1):
        text = documents[passage.doc_id].text
        for start, end in sentence_spans(text, passage.start, passage.end):
            share = answer_share(answer, question, text[start:end])
            if share >= RECITE_BELOW and (best is None or share > best[0]):
                best = (share, number, Span(start, end), text[start:end])
    return best[1:] if best is not None else None


def _sentences_around(text: str, span: Span) -> Span:
    """The whole sentences of ``text`` that the span touches: what a reader is shown
    around the exact evidence."""
    touched = [(s, e) for s, e in sentence_spans(text) if s < span.end and span.start < e]
    return Span(min([s for s, _ in touched], default=span.start),
                max([e for _, e in touched], default=span.end))
