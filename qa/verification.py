"""Word forms for the evidence checks: an answer's stemmed content words and numbers
(``terms``), the share of them a text holds (``support``), the numbers it states that
no passage gives (``invented_numbers``), and the one English stemmer.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

_MARKERS = re.compile(r"(\s*\[\d+\])+")
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    "|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
    "|hundreds?|thousands?|millions?|billions?|dozens?"
)
_NUMBER = re.compile(rf"\d|^({_NUMBER_WORDS})$")
_WORD = re.compile(r"[^\W_]+(?:[.,][0-9]+)*")  # letters of any script, and numbers
_STOPWORD_TEXT = """
a an the of in on at to for from by with and or but is are was were be been being it its this that
these those as has have had do does did will would can could should may might must shall he
she they them his her their we you i what who whom which when where why how than then there here
also about into over after before since during while said says according
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def terms(text: str) -> set[str]:
    """Stemmed content words; numbers kept as written (2,000 == 2000)."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    return {stem(w.replace(",", "")) for w in words if w not in _STOPWORDS}


def words(text: str) -> list[str]:
    """Lower-cased words and numbers as written, unstemmed: what a question literally says."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return english_stemmer().stemWord(word)


_STEMMERS = threading.local()


def english_stemmer() -> Any:
    """The Snowball English stemmer (PyStemmer) of this thread: one stemmer for the
    checks and for BM25 (qa/index/lexical.py); its objects are not thread-safe."""
    stemmer = getattr(_STEMMERS, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _STEMMERS.stemmer = Stemmer.Stemmer("english")
    return stemmer


def invented_numbers(answer: str, passages_text: str) -> set[str]:
    """Numbers the answer states that no passage contains: a small model's
    favourite invention (an age, a year, a head count)."""
    have = terms(passages_text)
    return {t for t in terms(_MARKERS.sub(" ", answer)) if _NUMBER.search(t) and t not in have}


RECITE_BELOW = 0.5  # share of the answer's own words its evidence sentence must hold


def answer_share(answer: str, question: str, evidence: str) -> float:
    """Share of the answer's terms that are not the question's found in ``evidence``
    (1.0 when the answer adds nothing: the grounding check judges that)."""
    new = terms(answer) - terms(question)
    return len(new & terms(evidence)) / len(new) if new else 1.0
