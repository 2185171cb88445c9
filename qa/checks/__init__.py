"""The checks stage: every check reads the question, the passages shown and the
draft answer, and returns a ``Verdict`` (accept, retry or refuse, with why).

Checks run in order and the first that does not accept decides; all verdicts go
into ``Answer.trace``, so a maintainer reads why any answer was refused or asked
again, and ``qa eval`` counts how often each check fired on answerable and on
unanswerable questions. The checks in ``qa.checks.english`` only work on
English text and are switched by ``Settings.checks.english_checks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from qa.reader.evidence import Span
from qa.reader.reply import Reply
from qa.types import ACCEPT, Document, Passage, Verdict


@dataclass(frozen=True)
class Draft:
    """What the checks judge: the reply, where its evidence was found (document offsets
    in ``passages[number - 1]``, None when the quote is not in it) and what surrounds it."""

    question: str
    about: str  # the question with the exchange a follow-up leans on
    passages: tuple[Passage, ...]
    reply: Reply
    evidence: Span | None
    evidence_sentence: str  # the whole sentence(s) the evidence quote lies in
    documents: Mapping[str, Document]
    recited: bool = False  # the quote did not hold the answer: the evidence is the sentence that does
    sentence_span: Span | None = None  # document offsets of ``evidence_sentence``
    earlier: str = ""  # the exchange ``about`` adds, as prompt text (none for a question alone)

    @property
    def cited(self) -> Passage | None:
        number = self.reply.number
        return self.passages[number - 1] if 1 <= number <= len(self.passages) else None


class Check(Protocol):
    name: str

    def run(self, draft: Draft) -> Verdict: ...


def run_checks(checks: Sequence[Check], draft: Draft) -> list[Verdict]:
    """Verdicts up to and including the first that is not an accept."""
    verdicts = []
    for check in checks:
        verdict = check.run(draft)
        verdicts.append(verdict)
        if verdict.action != ACCEPT:
            break
    return verdicts
