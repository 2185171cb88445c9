"""English-only rules, kept apart and switchable (``QA_ENGLISH_CHECKS``).

They read English verb forms and word lists (qa/near_misses.py), so they are
silent in any other language. Of the seven rules the older sentence reader
used, one paid on the blind question sets written after them (news25, memos25,
news26, memos26: `python evals/english_rules.py <reports>`), so only it is left:
an act the question presupposes that the evidence never states of its subject.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.checks import Draft
from qa.near_misses import unstated_premise
from qa.types import ACCEPT, REFUSE, Verdict


@dataclass(frozen=True)
class EnglishRules:
    name: str = "english"

    def run(self, draft: Draft) -> Verdict:
        cited = draft.cited
        document = draft.documents[cited.doc_id].text if cited and cited.doc_id in draft.documents else ""
        if unstated_premise(draft.reply.answer, draft.question, draft.evidence_sentence, document):
            return Verdict(f"{self.name}.unstated_premise", REFUSE,
                           "the evidence never states what the question presupposes")
        return Verdict(self.name, ACCEPT)
