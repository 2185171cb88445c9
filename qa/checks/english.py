"""English-only rules, kept apart and off by default (``QA_ENGLISH_CHECKS=1``).

They match English question words, word lists and phrasings (qa/near_misses.py,
qa/verification.py) written for the older sentence reader; with the document
reader they are measured, not trusted: each verdict names its rule
("english.<rule>") so ``qa eval`` counts what each one fires on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qa.checks import Draft
from qa.near_misses import (
    answers_someone_else,
    names_the_subject,
    role_unattested,
    swapped_subject,
    unstated_premise,
)
from qa.types import ACCEPT, REFUSE, Passage, Verdict
from qa.verification import answers_the_kind, mentions_any_name

DocumentsText = Callable[[Sequence[Passage]], str]


@dataclass(frozen=True)
class EnglishRules:
    documents_text: DocumentsText
    name: str = "english"

    def run(self, draft: Draft) -> Verdict:
        answer, question = draft.reply.answer, draft.question
        cited = [draft.cited] if draft.cited is not None else list(draft.passages)
        documents = self.documents_text(cited)
        evidence = draft.evidence_sentence
        rules = (
            ("kind", lambda: not answers_the_kind(answer, question),
             "the answer does not give what was asked"),
            ("names", lambda: not mentions_any_name(question, documents),
             "the cited document never names what the question is about"),
            ("swapped_subject", lambda: swapped_subject(answer, evidence),
             "the passage gives that deed to someone else"),
            ("unstated_premise", lambda: unstated_premise(answer, question, evidence, documents),
             "the passage never states what the question presupposes"),
            ("role", lambda: role_unattested(answer, question, documents),
             "the document never gives that person this role"),
            ("someone_else", lambda: answers_someone_else(answer, question, documents),
             "the answer gives another doer's deed"),
            ("own_person", lambda: names_the_subject(answer, question, documents) is not None,
             "the answer names the question's own person"),
        )
        for rule, fired, detail in rules:
            if fired():
                return Verdict(f"{self.name}.{rule}", REFUSE, detail)
        return Verdict(self.name, ACCEPT)
