"""Check each answer sentence against the passages it cites.

A small model sometimes cites the wrong passage, or states something no
passage says. Each sentence gets a lexical support score per passage (share of
its stemmed content words, numbers included, found in the passage). A sentence
whose cited passage supports it clearly less than another passage is re-cited
to that passage; a sentence no passage supports is flagged as unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from qa.ingest.chunking import sentence_spans
from qa.types import Passage

_MARKERS = re.compile(r"(\s*\[\d+\])+")
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    "|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
    "|hundreds?|thousands?|millions?|billions?|dozens?"
)
_NUMBER = re.compile(rf"\d|^({_NUMBER_WORDS})$")
_TRAILING_MARKERS = re.compile(r"([.!?])((?:\s*\[\d+\])+)")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOPWORD_TEXT = """
a an the of in on at to for from by with and or but is are was were be been being it its this that
these those as has have had do does did will would can could should may might must shall he
she they them his her their we you i what who whom which when where why how than then there here
also about into over after before since during while said says according
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
SUPPORTED = 0.5  # a sentence with less support than this is flagged
RECITE_MARGIN = 0.25  # re-cite when another passage supports a sentence this much better


@dataclass
class Verification:
    text: str
    cited: list[int]  # 1-based passage numbers, in order of first appearance
    unsupported: list[str] = field(default_factory=list)
    support: float = 0.0  # mean over sentences of their best support


def terms(text: str) -> set[str]:
    """Stemmed content words; numbers kept as written (2,000 == 2000)."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    return {stem(w.replace(",", "")) for w in words if w not in _STOPWORDS}


def words(text: str) -> list[str]:
    """Lower-cased words and numbers as written, unstemmed: what a question literally says."""
    return _WORD.findall(text.lower())


def support(sentence: str, passage_text: str) -> float:
    """Share of the sentence's terms found in the passage; numbers weigh double.

    Terms that merely repeat the question still count (the answer restates
    it), but a number the passage lacks is a strong sign of invention.
    """
    wanted = terms(_MARKERS.sub(" ", sentence))
    if not wanted:
        return 0.0
    have = terms(passage_text)
    weight = {t: 2.0 if _NUMBER.search(t) else 1.0 for t in wanted}
    return sum(w for t, w in weight.items() if t in have) / sum(weight.values())


def verify(text: str, passages: Sequence[Passage]) -> Verification:
    """Re-cite or flag each sentence of ``text`` (whose markers are already valid)."""
    pieces, cited, scores, unsupported = [], [], [], []
    text = _TRAILING_MARKERS.sub(r"\2\1", text)  # "fact. [2]" -> "fact [2]."
    for start, end in sentence_spans(text) or [(0, len(text))]:
        sentence = text[start:end]
        numbers = [int(n) for n in re.findall(r"\[(\d+)\]", sentence)]
        body = _MARKERS.sub("", sentence).strip()
        if not terms(body):  # a bare marker or a fragment: keep as is
            pieces.append(sentence)
            cited.extend(numbers)
            continue
        by_passage = [support(body, p.text) for p in passages]
        best = max(range(len(passages)), key=lambda i: by_passage[i]) if passages else -1
        current = max((by_passage[n - 1] for n in numbers), default=0.0)
        if best >= 0 and (not numbers or by_passage[best] - current >= RECITE_MARGIN):
            numbers = [best + 1]
            current = by_passage[best]
        scores.append(current)
        if current < SUPPORTED:
            unsupported.append(body)
        pieces.append(_with_markers(body, numbers))
        cited.extend(numbers)
    return Verification(text=" ".join(pieces).strip(), cited=list(dict.fromkeys(cited)),
                        unsupported=unsupported,
                        support=round(sum(scores) / len(scores), 3) if scores else 0.0)


def _with_markers(body: str, numbers: list[int]) -> str:
    markers = "".join(f"[{n}]" for n in dict.fromkeys(numbers))
    if not markers:
        return body
    if body and body[-1] in ".!?":
        return f"{body[:-1]} {markers}{body[-1]}"
    return f"{body} {markers}"


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


@lru_cache(maxsize=1)
def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    import Stemmer

    return Stemmer.Stemmer("english")


_AUXILIARY = (r"(is|are|was|were|do|does|did|will|would|can|could|has|have|had|should|may|might)"
              r"(n't|\s+not)?")
# A question asks yes or no when it opens with an auxiliary ("Does Russia...?"), or when
# the clause after a leading aside does ("Although X, does it...?") and no wh-word came first.
_OPENS_WITH_AUXILIARY = re.compile(rf"^\s*((and|but|so)\s+)?{_AUXILIARY}\b", re.IGNORECASE)
_AUXILIARY_AFTER_ASIDE = re.compile(rf"^([^?,]*),\s*{_AUXILIARY}\b", re.IGNORECASE)
WH_WORD = re.compile(r"\b(who|whom|whose|what|when|where|which|why|how)\b", re.IGNORECASE)
_REQUEST = re.compile(r"^\s*(can|could|would|will)\s+you\b", re.IGNORECASE)  # "Can you tell me who..."


def is_yes_no(question: str) -> bool:
    """"Does Russia keep contact...?", "Although X, does it...?": answered by restating."""
    if _REQUEST.match(question):
        return False
    if _OPENS_WITH_AUXILIARY.match(question):
        return True
    aside = _AUXILIARY_AFTER_ASIDE.match(question)
    return bool(aside) and not WH_WORD.search(aside.group(1))


def adds_information(answer: str, question: str) -> bool:
    """False for an answer that only restates the question ("Moscow." to "Where in
    Moscow?"), unless the question asks yes or no, where restating it is the answer."""
    return is_yes_no(question) or bool(terms(_MARKERS.sub(" ", answer)) - terms(question))


_ASKS_WHEN = re.compile(
    rf"^\s*(when\s+{_AUXILIARY}\b|what (year|date|day|month|time)\b|(on |in )?which (year|date|day|month)\b)",
    re.IGNORECASE)
_ASKS_MONTH = re.compile(r"^\s*((in|during) )?(which|what) month\b", re.IGNORECASE)
_ASKS_YEAR = re.compile(r"^\s*((in|since) )?(which|what) year\b", re.IGNORECASE)
_ASKS_SHARE = re.compile(
    r"^\s*((by )?(what|which) (percentage|percent|share|proportion|fraction)\b|how many percent)",
    re.IGNORECASE)
# money or stuff: counted, not "twice" ("how much longer" and "how much time" ask for a time)
_ASKS_SUM = re.compile(r"^\s*(by )?how much\b(?!\s+(longer|time|later|earlier|sooner)\b)", re.IGNORECASE)
_ASKS_AMOUNT = re.compile(r"^\s*how (many|much|long|old|far)\b", re.IGNORECASE)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTH_WORDS = re.compile(rf"\b({_MONTHS})\b")  # lower-cased words: "may" is also a verb, let it be
_YEAR_WORDS = re.compile(r"\b(1[0-9]|20)\d\d\b")
_SHARE_WORDS = re.compile(
    r"\d|%|\b(percent|per cent|percentage points?|half|third|quarter|fifth|tenth|doubled?|tripled?)\b",
    re.IGNORECASE)
_SUM_WORDS = re.compile(rf"\d|\b({_NUMBER_WORDS}|half|double|nothing|none|no|zero|several|few)\b",
                        re.IGNORECASE)
_TIME_WORDS = re.compile(
    rf"\d|\b({_MONTHS}"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday|tomorrow|tonight"
    r"|morning|afternoon|evening|night|minutes?|hours?|days?|weeks?|months?|years?|decades?|century"
    r"|spring|summer|autumn|fall|winter|ago|since|until|once|soon|later|earlier|already|recent|recently"
    r"|last|next|early|mid|late|after|before|during|following|upon|when|now|currently|same)\b",
    re.IGNORECASE)
_AMOUNT_WORDS = re.compile(
    rf"\d|\b({_NUMBER_WORDS}|several|few|many|much|half|single|double"
    r"|once|twice|none|no|zero|both|all|most|decades?|years?|months?|weeks?|days?|hours?)\b",
    re.IGNORECASE)


_ASKS_ROLE = re.compile(
    r"^\s*what\s+((is|was|are|were)\s+the\s+(job|post|position|role|title|office|rank|occupation|profession)s?"
    r"\s+of|(job|post|position|role|title|office|rank|occupation|profession)\s+(does|did|do|is|was)\b)",
    re.IGNORECASE)
# "is a florist", ", a florist": jobs are an open class, named after a copula or a comma
_A_JOB = re.compile(r"(?:\b(?:is|was|are|were|as)|,)\s+(?:a|an)\s+(?:former\s+|retired\s+)?([a-z]+)")
_ROLE_WORDS = re.compile(
    r"\b(minister|president|secretary|chief|executive|director|head|leader|spokes(man|woman|person)"
    r"|ambassador|general|commander|chair(man|woman|person)?|governor|mayor|judge|officer|deputy|envoy"
    r"|advis[eo]r|manager|founder|editor|premier|chancellor|king|queen|prince|senator|lawmaker|member"
    r"|official|representative|negotiator|mediator|lawyer|professor|analyst|correspondent|captain"
    r"|colonel|major|lieutenant|admiral|commissioner|inspector|owner|worker|operator|employee)s?\b",
    re.IGNORECASE)
class Kind(NamedTuple):
    asks: re.Pattern[str]  # the question asks for this kind
    words: re.Pattern[str]  # an answer of this kind has one of these
    wanted: str  # how a second request names it


# The first that asks wins: "In which month...?" wants a month, not any time.
KINDS = {"month": Kind(_ASKS_MONTH, _MONTH_WORDS, "a month"), "year": Kind(_ASKS_YEAR, _YEAR_WORDS, "a year"),
         "share": Kind(_ASKS_SHARE, _SHARE_WORDS, "a percentage or share"),
         "sum": Kind(_ASKS_SUM, _SUM_WORDS, "a number or amount"),
         "time": Kind(_ASKS_WHEN, _TIME_WORDS, "a time or date"),
         "amount": Kind(_ASKS_AMOUNT, _AMOUNT_WORDS, "a number or amount"),
         "role": Kind(_ASKS_ROLE, _ROLE_WORDS, "a job or title")}


def asked_kind(question: str) -> str | None:
    """The kind of thing the question asks for (a month, a year, a percentage, a sum,
    a time, an amount, a job), else None."""
    return next((name for name, kind in KINDS.items() if kind.asks.search(question)), None)


def answers_the_kind(answer: str, question: str) -> bool:
    """A "when" answer names a time, a "how many" answer a quantity and a "what is
    the job of" answer a job; one that does not ("The Taliban took power [1]." to
    "When did the Taliban take power?") dodges the question, however well its words
    are supported."""
    kind = asked_kind(question)
    if kind is None:
        return True
    asked = set(words(question))  # "The official who..." restates the question
    new = " ".join(w for w in words(_MARKERS.sub(" ", answer)) if w not in asked)
    if kind == "role" and any(job not in asked for job in _A_JOB.findall(answer.lower())):
        return True
    return bool(KINDS[kind].words.search(new))


def invented_numbers(answer: str, passages_text: str) -> set[str]:
    """Numbers the answer states that no passage contains: a small model's
    favourite invention (an age, a year, a head count)."""
    have = terms(passages_text)
    return {t for t in terms(_MARKERS.sub(" ", answer)) if _NUMBER.search(t) and t not in have}


_QUESTION_WORD_TEXT = """
who whom whose what when where which why how did does do is are was were will would can could
should has have had according in on at the a an and or of for with besides although
"""
_QUESTION_WORDS = frozenset(_QUESTION_WORD_TEXT.split())


def question_names(question: str) -> list[str]:
    """Capitalised words of the question (people, places, bodies), lower-cased."""
    words = [w.lower() for w in re.findall(r"\b[A-Z][A-Za-z-]+", question)]
    return [w for w in dict.fromkeys(words) if w not in _QUESTION_WORDS]


def mentions_any_name(question: str, text: str) -> bool:
    """True when the text names at least one of the question's names (or the
    question has none). Names match on a 4-letter prefix, so Russia/Russian and
    EU/euros agree: the check only catches questions about something the cited
    documents never mention ("the capital of France" over a Moscow briefing)."""
    names = question_names(question)
    if not names:
        return True
    words = set(re.findall(r"[a-z]+", text.lower()))
    return any(any(w.startswith(name[:4]) for w in words) for name in names)
