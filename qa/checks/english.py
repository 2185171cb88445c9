"""English-only rules, kept apart and switchable (``QA_ENGLISH_CHECKS``).

They read English verb forms and word lists, so they are silent in any other
language. Of the seven rules the older sentence reader used, one paid on the blind
question sets written after them (news25, memos25, news26, memos26: `python
evals/english_rules.py <reports>`), so only it is left: an act the question
presupposes that the evidence never states of its subject ("The mediator
proposed..." where nobody proposed anything, or someone else did). A small model
fills a question the documents are silent on with whatever is nearby; the rule reads
regular past tenses, a list of irregular ones and verbs of saying, so it is narrow
on purpose: it decides only when the wording lets it, and otherwise stays undecided.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa import names
from qa.checks import Draft
from qa.citations import strip_markers
from qa.types import ACCEPT, REFUSE, Verdict
from qa.verification import stem, terms, words


@dataclass(frozen=True)
class EnglishRules:
    name: str = "english"

    def run(self, draft: Draft) -> Verdict:
        cited = draft.cited
        document = draft.documents[cited.doc_id].text if cited and cited.doc_id in draft.documents else ""
        problem = unstated_premise(draft.reply.answer, draft.question, draft.evidence_sentence, document)
        if problem:
            return Verdict(f"{self.name}.unstated_premise", REFUSE,
                           f"the evidence never states what the question presupposes ({problem})")
        return Verdict(self.name, ACCEPT)


# "Russia pledged", "Moscow also stated": a named subject, optional auxiliaries, a
# past-tense verb. Only regular "-ed" verbs: the check stays narrow on purpose.
_NAMED_SUBJECT = rf"({names.run(5)})\s+(?:(?:also|has|have|had|will)\s+)*"
_DOER_BEFORE = re.compile(rf"{_NAMED_SUBJECT}$")  # who is named just before a verb


# Verbs of saying: "The statement said" restates "What did the statement say?", and the
# passage may report it with another verb ("Moscow stated"). Only past and present forms
# count in answers and passages, and "state" not in questions: "the Islamic State" says nothing.
_SAYING_BASE_TEXT = "say tell announce add note warn claim describe reply explain"
_SAYING_DONE_TEXT = ("said says stated told tells announced added noted warned claimed described replied "
                     "explained according")
_SAYING_BASE = frozenset(_SAYING_BASE_TEXT.split())
_SAYING_DONE = frozenset(_SAYING_DONE_TEXT.split())
_SAYING = "<saying>"
_PAST = re.compile(r"^[a-z]+ed$")
_IRREGULAR_TEXT = """
met:meet sent:send paid:pay sold:sell bought:buy won:win lost:lose spoke:speak wrote:write sought:seek
fought:fight built:build spent:spend chose:choose struck:strike began:begin rose:rise fell:fall led:lead
"""  # not light verbs ("held talks" is "talks in Vellin"; "took", "made", "gave" say too little)
_IRREGULAR = dict(pair.split(":") for pair in _IRREGULAR_TEXT.split())  # "met" is "meet" done
_IRREGULAR_BASES = frozenset(_IRREGULAR.values())
_WISH_TEXT = "want wish hope plan intend need expect like prefer"
# A wish is rarely stated in the question's word: "What did he want lenders to give?" where he "asked".
_WISHES = frozenset(_WISH_TEXT.split())  # each its own stem
_ACCORDING_TO = re.compile(rf"according to (?:the )?({names.run()})")
_HEAD_END_TEXT = "after before of in at on from with by for to who which that whose"
_HEAD_ENDS = frozenset(_HEAD_END_TEXT.split())
_APPOSITION_WORDS = 6  # "a mediator, retired judge Anselm Roth": the mediator is Roth

_PRONOUNS = frozenset(["he", "she", "it", "they", "we", "i", "you"])  # a subject the conversation names


NOBODY = "nobody in it does that"  # the two ways a premise goes unstated, for the trace
SOMEONE_ELSE = "it says someone else did"


def unstated_premise(answer: str, question: str, cited_text: str, documents_text: str = "") -> str | None:
    """``NOBODY`` or ``SOMEONE_ELSE`` when the answer restates the act the question
    presupposes ("What did the mediator propose?" -> "The mediator proposed...") and the
    cited passages never state that act, or give it to someone else ("Moscow stated..."
    for "the joint statement said"): the model filled a near-miss question with whatever
    was nearby. Undecided (None) when the answer does not restate the question's act."""
    tokens = strip_markers(answer).strip().split()
    asked = {_act(w) for w in words(question)} - {None} - _WISHES
    for index, word in enumerate(tokens[1:], start=1):
        done = word.lower().strip(".,;:")
        act = _act(done)
        said = done in _SAYING_DONE and done != "according"  # "X, according to Y," names no speaker first
        if act in asked and (said or (_is_past(done) and done not in question.lower())):
            return _act_missing_or_swapped(act, _head(tokens[:index]), cited_text,
                                           documents_text or cited_text)
    return None


def _act(word: str) -> str | None:
    """What a verb does, so that "say" matches "stated" and "propose" matches "proposed"."""
    if word in _SAYING_BASE or word in _SAYING_DONE:
        return _SAYING
    if word in _IRREGULAR:
        return stem(_IRREGULAR[word])
    if word in _IRREGULAR_BASES:  # "pay", "buy", "win": short, but acts all the same
        return stem(word)
    return stem(word) if word.isalpha() and len(word) > 3 else None


def _is_past(word: str) -> bool:
    return bool(_PAST.match(word)) or word in _IRREGULAR


def _act_missing_or_swapped(act: str, subject: str, cited_text: str, documents_text: str) -> str | None:
    if not subject or subject.lower() in _PRONOUNS:
        return None  # "They won it by..." or "In March, Russia...": who did it is not decidable here
    doers = []
    for word in re.finditer(r"\b[a-z]+\b", cited_text):
        done = word.group()
        if done not in _SAYING_DONE if act == _SAYING else _act(done) != act:
            continue
        if act != _SAYING and not _is_past(done):
            return None  # "led discussions" for "discussed": who did it is not decidable here
        if done == "according":
            named = _ACCORDING_TO.match(cited_text, word.start())
        else:
            named = _DOER_BEFORE.search(cited_text[:word.start()])
        if named is None:
            return None  # "the authority has offered": whoever it is, not decidable here
        doers.append(named.group(1))
    if not doers:
        return NOBODY
    return None if any(_refers_to(subject, doer, documents_text) for doer in doers) else SOMEONE_ELSE


def _head(tokens: list[str]) -> str:
    """The subject up to its first preposition or participle: "The joint statement"
    of "The joint statement issued after the Moscow meeting"."""
    kept: list[str] = []
    for word in tokens:
        if word.lower() in _HEAD_ENDS or (kept and _PAST.match(word.lower())):
            break
        kept.append(word)
    return " ".join(kept)


def _refers_to(subject: str, doer: str, text: str) -> bool:
    """The same name, or a description set right beside the name in the documents
    ("the chief executive, Tomas Brandt," for "the chief executive")."""
    if names.same_name(subject, doer):
        return True
    wanted = terms(subject)
    tokens = re.findall(r"[\w’'-]+", text)
    surname = doer.split()[-1]
    for at in (i for i, w in enumerate(tokens) if w == surname):
        near = tokens[max(0, at - _APPOSITION_WORDS): at + _APPOSITION_WORDS + 1]
        if wanted & terms(" ".join(near)):
            return True
    return False


