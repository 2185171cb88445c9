"""The words a passage puts where a question's preposition points.

"Which group does Russia want action against?" asks for what follows "action
against"; "With whom did Hanafi hold discussions?" for what follows
"discussions with". When a passage holds that phrase, the words after it are
what the question asks for, and an answer without any of them has read past
it: the small model often answers with the most prominent name of the passage
instead ("The Taliban"). The slot is found by position, not by meaning, so it
only prompts a second look (see ``Assistant._nudge``); it never refuses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa.ingest.chunking import sentence_spans
from qa.verification import WH_WORD, is_yes_no, stem, terms

_PREPOSITION = "against|with|to|from|for|on|about|by|at|of|into|toward|towards|between|among"
_ADJUNCT = "in|on|at|during|after|before|since"  # "...in Afghanistan?" may follow
# "...want action against in Afghanistan?": a preposition left without its object
_STRANDED = re.compile(
    rf"\b(?P<head>[A-Za-z]+)\s+(?P<prep>{_PREPOSITION})(?=\s*\?|\s*$|\s+(?:{_ADJUNCT})\b)", re.IGNORECASE)
# "With whom did Hanafi hold the discussions...?": the preposition moved to the front
_FRONTED = re.compile(rf"^\s*(?P<prep>{_PREPOSITION})\s+(?:whom|which|what)\b", re.IGNORECASE)
# the object of any preposition in the question: "in Moscow", "with the Turkish authorities"
_OBJECT = re.compile(rf"\b(?:{_PREPOSITION}|{_ADJUNCT})\s+(?:the\s+|a\s+|an\s+)?([\w’'-]+)", re.IGNORECASE)
_TOKEN = re.compile(r"[\w’'-]+|[^\w\s]")
_SLOT_END_TEXT = """
who whom which that whose where when while because as if last next in on at during after before since
over from to by for with against , . ; : ! ? ( )
"""
_SLOT_END = frozenset(_SLOT_END_TEXT.split())  # where the object of the preposition stops
SLOT_WORDS = 8  # the object of a preposition is rarely longer ("the European Union and the United States")


@dataclass(frozen=True)
class Slot:
    passage: int  # 1-based, as cited
    phrase: str  # "action against Islamic State fighters"
    filler: str  # "Islamic State fighters"
    wanted: frozenset[str]  # the filler's terms the question does not hold: {"islam", "state", "fighter"}


def asked_slot(question: str, passages: Sequence[str]) -> Slot | None:
    """The first place in ``passages`` where a question word is followed by the
    question's stranded or fronted preposition, with the words that follow it."""
    anchors = _anchors(question)
    if not anchors:
        return None
    asked = terms(question)
    for number, text in enumerate(passages, start=1):
        for start, end in sentence_spans(text):
            slot = _slot_in(text[start:end], anchors, asked, number)
            if slot is not None:
                return slot
    return None


def fills(answer: str, slot: Slot) -> bool:
    """Whether the answer holds any content word of the slot's filler that the
    question does not already hold ("the air base" does not fill "Dunmore air base")."""
    return bool(slot.wanted & terms(answer))


def _anchors(question: str) -> set[tuple[str, str]]:
    """(stemmed word, preposition) pairs that must meet in a passage."""
    if not WH_WORD.search(question) or is_yes_no(question):
        return set()  # "Did he say which group...?" is answered yes or no
    fronted = _FRONTED.match(question)
    if fronted:
        rest = question[fronted.end():]
        prep = fronted.group("prep").lower()
        return {(word, prep) for word in terms(_predicate_words(rest))}
    stranded = list(_STRANDED.finditer(question))
    if not stranded:
        return set()
    last = stranded[-1]
    return {(stem(last.group("head").lower()), last.group("prep").lower())}


def _predicate_words(text: str) -> str:
    """The words a fronted preposition can hang on: not names, and not objects of the
    question's other prepositions ("On which day will Russia host the Taliban in
    Moscow?" hangs "on" on "host", not on "Moscow")."""
    objects = {m.group(1) for m in _OBJECT.finditer(text)}
    kept = [w for w in re.findall(r"[\w’'-]+", text) if w not in objects and not w[0].isupper()]
    return " ".join(kept)


def _slot_in(sentence: str, anchors: set[tuple[str, str]], asked: set[str], number: int) -> Slot | None:
    """The phrase must sit in a sentence about the question (another of its words
    there: "helicopters from the air base" in a sentence on someone else's
    helicopters is no slot) and its object must say something the question does
    not ("From which air base...?" is not answered by "the air base")."""
    tokens = list(_TOKEN.finditer(sentence))
    shared = terms(sentence) & asked
    for i in range(len(tokens) - 2):
        if (stem(tokens[i].group(0).lower()), tokens[i + 1].group(0).lower()) not in anchors:
            continue
        end = i + 2
        while end < min(len(tokens), i + 2 + SLOT_WORDS) and tokens[end].group(0).lower() not in _SLOT_END:
            end += 1
        if end == i + 2:
            continue
        filler = sentence[tokens[i + 2].start():tokens[end - 1].end()]
        anchor = stem(tokens[i].group(0).lower())
        wanted = frozenset(terms(filler) - asked)
        if wanted and shared - {anchor}:
            phrase = sentence[tokens[i].start():tokens[end - 1].end()]
            return Slot(number, " ".join(phrase.split()), " ".join(filler.split()), wanted)  # as prompted
    return None
