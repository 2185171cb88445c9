"""Checks that hold in any wording: the evidence is really in the document, and the
answer says what the evidence says.

They compare word forms and numbers (``qa.verification.terms``), not English
phrasings: a quote is found or not, an answer's new words and numbers are in its
evidence sentence or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.checks import Draft
from qa.injection import InjectionGuard
from qa.types import ACCEPT, REFUSE, RETRY, Verdict
from qa.verification import RECITE_BELOW, invented_numbers, terms


@dataclass(frozen=True)
class ReaderRefused:
    """The reader itself said the documents do not answer."""

    name: str = "reader"

    def run(self, draft: Draft) -> Verdict:
        if draft.reply.refused:
            return Verdict(self.name, REFUSE, "the reader found no answer in the documents")
        return Verdict(self.name, ACCEPT)


@dataclass(frozen=True)
class QuoteFound:
    """The evidence quote must be copied from the document it cites; one retry asks
    for an exact copy (``retry=False`` on the second draft refuses instead)."""

    retry: bool = True
    name: str = "evidence"

    def run(self, draft: Draft) -> Verdict:
        if not draft.reply.quote:  # a free-form reply: its evidence is the sentence holding it
            if not terms(draft.reply.answer) - terms(draft.question):
                return Verdict(self.name, ACCEPT, "the answer adds nothing to locate")
            if draft.evidence is None:
                return Verdict(self.name, REFUSE, "no shown sentence holds what the answer says")
            return Verdict(self.name, ACCEPT, f"the sentence of document [{draft.reply.number}] "
                           "holding the answer")
        if draft.cited is None:
            return self._fail(f"the evidence cites no shown document ([{draft.reply.number}])")
        if draft.evidence is None:
            return self._fail(f"the evidence quote is not in document [{draft.reply.number}]: "
                              f"{draft.reply.quote[:80]!r}")
        if draft.recited:
            return Verdict(self.name, ACCEPT, f"re-cited: the quote lacks the answer; a sentence of "
                           f"document [{draft.reply.number}] holds it")
        return Verdict(self.name, ACCEPT, f"quote found in document [{draft.reply.number}]")

    def _fail(self, detail: str) -> Verdict:
        return Verdict(self.name, RETRY if self.retry else REFUSE, detail)


@dataclass(frozen=True)
class AnswerInEvidence:
    """What the answer adds to the question must come from its evidence sentence: an
    answer whose new words are mostly elsewhere is not backed by what it cites."""

    min_share: float = RECITE_BELOW
    name: str = "grounding"

    def run(self, draft: Draft) -> Verdict:
        new = terms(draft.reply.answer) - terms(draft.question)
        if not new:
            return Verdict(self.name, REFUSE, "the answer only restates the question")
        found = new & terms(draft.evidence_sentence)
        share = len(found) / len(new)
        if share < self.min_share:
            missing = ", ".join(sorted(new - found)[:6])
            return Verdict(self.name, REFUSE, f"{share:.0%} of the answer's own words are in its "
                           f"evidence (missing: {missing})")
        return Verdict(self.name, ACCEPT, f"{share:.0%} of the answer's own words in its evidence")


@dataclass(frozen=True)
class NoInventedNumbers:
    """A number in the answer that no shown passage states is invented."""

    name: str = "numbers"

    def run(self, draft: Draft) -> Verdict:
        shown = " ".join(p.text for p in draft.passages)
        invented = invented_numbers(draft.reply.answer, shown)
        if invented:
            return Verdict(self.name, REFUSE, f"the answer states {', '.join(sorted(invented))}, "
                           "which no passage gives")
        return Verdict(self.name, ACCEPT)


@dataclass(frozen=True)
class NotObeyingPassages:
    """The answer must not follow an order written in a passage (qa/injection.py)."""

    guard: InjectionGuard
    name: str = "injection"

    def run(self, draft: Draft) -> Verdict:
        number = draft.reply.number or 1
        obeyed = self.guard.obeyed(draft.about, draft.reply.answer, [(number, draft.evidence_sentence)])
        if obeyed is not None:
            return Verdict(self.name, REFUSE, obeyed.reason)
        return Verdict(self.name, ACCEPT)
