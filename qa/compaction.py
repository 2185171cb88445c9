"""Compact passages: only the sentences of the retrieved chunks that bear on the question.

Retrieval ranks whole chunks (large enough to embed fast and to rank well); the
model then reads the few sentences that matter, so the variable part of the
prompt stays near ``budget`` tokens and the first word comes sooner (prefill
runs at ~100 tokens/s on 2 cores). A compacted passage is still an exact span
of its document, a run of adjacent sentences, so a citation points at exactly
what the model read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from qa.ingest.chunking import sentence_spans
from qa.injection import InjectionGuard
from qa.models.embedder import Embedder
from qa.types import Document, Passage, TokenCounter
from qa.verification import terms

# A sentence opening with one of these leans on the one before it.
_LEANS_BACK = re.compile(r"^(he|she|it|they|his|her|its|their|this|that|these|those|the (two|three)"
                         r"|but|however|also|then)\b", re.IGNORECASE)
# Words of three letters or more; a capitalised one may be a name. Letters only, so
# "Lavrov’s" and "Lavrov-led" give "Lavrov".
_WORDS = re.compile(r"\b[^\W\d_]{3,}")
# Capitalised words that are not names, or not the first part of a full name.
_NOT_NAME_TEXT = """
The This That These Those They Their There Its His Her Our But And Yet Despite Since After Before
Last Next While When Where What Who Why How According Following Meanwhile However Also Then
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June
July August September October November December On In At For From With By To Of As If
"""
_NOT_NAMES = frozenset(_NOT_NAME_TEXT.split())
# The few best sentences may run over the budget a little: one that misses it by a
# token should not give way to a worse, shorter one (seed set: 84.6% -> 87.2% right).
_BEST_RANKS, _OVERSHOOT = 3, 1.15
# Weights of the sentence score: its own similarity to the question, the rank
# signal of its chunk (context the sentence alone lacks), shared question words
# weighted by rarity. Seed set: 0.5/0.3/0.2 gave 79.5% right, 0.4/0.2/0.4 84.6%.
_W_SENTENCE, _W_CHUNK, _W_WORDS = 0.4, 0.2, 0.4


@dataclass(frozen=True)
class _Sentence:
    passage: Passage
    start: int  # offsets in the document
    end: int
    text: str
    score: float = 0.0


class PassageCompactor:
    def __init__(self, embedder: Embedder, count_tokens: TokenCounter, budget: int,
                 guard: InjectionGuard | None = None):
        self.embedder = embedder
        self.count_tokens = count_tokens
        self.budget = budget
        self.guard = guard  # leaves out sentences that give the reader orders

    def compact(self, question: str, passages: list[Passage],
                documents: dict[str, Document]) -> list[Passage]:
        """The best sentences within the token budget, as runs of adjacent sentences,
        best run first; the best sentence is always kept. No sentence that gives the
        reader orders is kept: when nothing else is left, there is no passage."""
        candidates = _sentences(passages)
        if not candidates:
            return passages[:1]
        sentences = self._scored(question, candidates)
        if not sentences:
            return []
        chosen = self._within_budget(sentences, documents)
        return _as_passages(chosen, documents)

    def _scored(self, question: str, sentences: list[_Sentence]) -> list[_Sentence]:
        if not sentences:
            return []
        vectors = self.embedder.encode_remembered([question] + [s.text for s in sentences])
        if self.guard is not None:
            keep = ~self.guard.are_orders(vectors[1:])
            sentences = [s for s, k in zip(sentences, keep, strict=True) if k]
            vectors = np.vstack([vectors[:1], vectors[1:][keep]])
            if not sentences:
                return []
        similarity = vectors[1:] @ vectors[0]
        words = [terms(s.text) for s in sentences]
        weight = _rarity(terms(question), words)
        total = sum(weight.values()) or 1.0
        scored = []
        for sentence, cosine, have in zip(sentences, similarity, words, strict=True):
            shared = sum(w for t, w in weight.items() if t in have) / total
            score = _W_SENTENCE * float(cosine) + _W_CHUNK * sentence.passage.score + _W_WORDS * shared
            scored.append(replace(sentence, score=score))
        return sorted(scored, key=lambda s: -s.score)

    def _within_budget(self, ranked: list[_Sentence], documents: dict[str, Document]) -> list[_Sentence]:
        """Best-first, each sentence with what it needs (``_options``); the best is always kept."""
        ending_at = {(s.passage.doc_id, s.end): s for s in ranked}
        in_order = sorted(ranked, key=lambda s: (s.passage.doc_id, s.start))
        chosen: dict[tuple[str, int], _Sentence] = {}
        used = 0
        for rank, sentence in enumerate(ranked):
            budget = self.budget * (_OVERSHOOT if rank < _BEST_RANKS else 1.0)
            options = _options(sentence, ending_at, in_order, documents[sentence.passage.doc_id].text)
            for option in options:
                new = [s for s in option if _key(s) not in chosen]
                cost = sum(self.count_tokens(s.text) + 1 for s in new)
                if used + cost <= budget or (not chosen and option is options[-1]):
                    chosen.update({_key(s): s for s in new})
                    used += cost
                    break
        return list(chosen.values())


def _options(sentence: _Sentence, ending_at: dict[tuple[str, int], _Sentence],
             in_order: list[_Sentence], text: str) -> list[list[_Sentence]]:
    """What choosing a sentence brings along, preferred first. A sentence that leans on
    its predecessor ("He said...") always brings it; one that names someone by surname
    brings, if it fits, the sentence that introduced them ("Sergei Lavrov, Russia's
    foreign minister, ..."), which the model needs to answer "what is the job of...".
    """
    group = [sentence]
    previous = _predecessor(sentence, ending_at, text)
    if previous is not None and _LEANS_BACK.match(sentence.text):
        group.insert(0, previous)
    introduction = _introduction(sentence, in_order)
    if introduction is None or _key(introduction) in {_key(s) for s in group}:
        return [group]
    # scored as the sentence that needs it, so it is read just before that sentence
    return [[replace(introduction, score=max(introduction.score, sentence.score)), *group], group]


def _key(sentence: _Sentence) -> tuple[str, int]:
    return sentence.passage.doc_id, sentence.start


def _rarity(wanted: set[str], sentences: list[set[str]]) -> dict[str, float]:
    """Inverse document frequency of the question's words among the candidate sentences:
    a word every sentence shares ("Taliban" in a Taliban briefing) tells them apart less
    than the one that names what is asked ("delegation")."""
    count = len(sentences)
    return {t: math.log(1 + count / (1 + sum(t in s for s in sentences))) for t in wanted}


def _sentences(passages: list[Passage]) -> list[_Sentence]:
    """Each sentence once, even where passages overlap."""
    seen: set[tuple[str, int]] = set()
    found = []
    for passage in passages:
        for start, end in sentence_spans(passage.text):
            key = (passage.doc_id, passage.start + start)
            if key not in seen and passage.text[start:end].strip():
                seen.add(key)
                found.append(_Sentence(passage, passage.start + start, passage.start + end,
                                       passage.text[start:end]))
    return found


def _predecessor(sentence: _Sentence, ending_at: dict[tuple[str, int], _Sentence],
                 text: str) -> _Sentence | None:
    """The sentence just before, if a retrieved chunk holds it (only whitespace between)."""
    gap_start = sentence.start
    while gap_start > 0 and text[gap_start - 1].isspace():
        gap_start -= 1
    return ending_at.get((sentence.passage.doc_id, gap_start))


def _introduction(sentence: _Sentence, in_order: list[_Sentence]) -> _Sentence | None:
    """The first earlier sentence of the document that gives in full a name this one uses alone."""
    doc_id = sentence.passage.doc_id
    earlier = [s for s in in_order if s.passage.doc_id == doc_id and s.start < sentence.start]
    for name in names_used_alone(sentence.text):
        for candidate in earlier:
            if introduces(candidate.text, name):
                return candidate
    return None


def names_used_alone(text: str) -> list[str]:
    """Capitalised words not right after another name part: "Lavrov" in "Lavrov
    also warned", not in "Sergei Lavrov warned" (given in full already)."""
    names: list[str] = []
    previous, previous_end = "", -1
    for match in _WORDS.finditer(text):
        word = match.group()
        after_name = _is_name_part(previous) and not text[previous_end:match.start()].strip()
        if _is_name_part(word) and not after_name:
            names.append(word)
        previous, previous_end = word, match.end()
    return list(dict.fromkeys(names))


def introduces(text: str, name: str) -> bool:
    """True when ``text`` gives ``name`` with a capitalised word before it ("Sergei Lavrov")."""
    pattern = rf"\b([^\W\d_]+)(?:['’]s?)?\s+{re.escape(name)}\b"  # also "Workers' Union"
    return any(_is_name_part(m.group(1)) for m in re.finditer(pattern, text))


def _is_name_part(word: str) -> bool:
    return word[:1].isupper() and word not in _NOT_NAMES


def _as_passages(chosen: list[_Sentence], documents: dict[str, Document]) -> list[Passage]:
    """Adjacent chosen sentences of a document joined into one passage, best first."""
    runs: list[list[_Sentence]] = []
    for sentence in sorted(chosen, key=lambda s: (s.passage.doc_id, s.start)):
        last = runs[-1][-1] if runs else None
        text = documents[sentence.passage.doc_id].text
        if (last is not None and last.passage.doc_id == sentence.passage.doc_id
                and not text[last.end:sentence.start].strip()):
            runs[-1].append(sentence)
        else:
            runs.append([sentence])
    runs.sort(key=lambda run: (-max(s.score for s in run), run[0].passage.doc_id, run[0].start))
    passages = []
    for run in runs:
        best = max(run, key=lambda s: s.passage.score)
        start, end = run[0].start, run[-1].end
        passages.append(replace(best.passage, start=start, end=end,
                                text=documents[best.passage.doc_id].text[start:end],
                                page=documents[best.passage.doc_id].page_at(start)))
        # score stays the chunk's cosine: the refusal floor and the UI read it as such
    return passages
