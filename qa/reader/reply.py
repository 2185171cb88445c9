"""The reader's prompt and its reply.

The prompt is the rules (``reader_system.txt``), worked examples
(``reader_examples.json``), then one user turn: the documents first, the question
last, so everything before the question is the same for every question about the
same documents and llama.cpp reuses its evaluated prefix (qa/generation.py). The
reply is free-form: one sentence ending in a ``[n]`` marker, or "The documents do
not say."; the checks find its evidence sentence (qa/reader/document_reader.py).
A reply may instead give ``Answer:`` and ``Evidence [n]: "<copied words>"`` lines
(a bigger reader, or a prompt that asks for them): the quote is then checked as
copied. ``reader_grammar.gbnf`` in the prompts folder, when present, holds the
model to a form (a grammar-held quote form cost the 1.5B reader a third of its
right answers on the seed set, so none ships).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.citations import is_refusal
from qa.prompting import quote as as_data
from qa.types import Passage

_ANSWER, _EVIDENCE = "Answer:", "Evidence"



@dataclass(frozen=True)
class ReaderPrompt:
    """The reader's texts, all files in the prompts folder."""

    system: str
    examples: tuple[tuple[str, str], ...]
    grammar: str  # GBNF: the form of the reply (reader_grammar.gbnf; none ships)
    refusal: str  # what the user reads when the documents do not answer
    context: str  # the earlier exchange a follow-up continues ({question}, {answer})
    retry: str  # asks again for a quote that is not in its document ({number})

    @classmethod
    def load(cls, folder: Path) -> ReaderPrompt:
        return _load(folder.resolve())

    def messages(self, passages: Sequence[Passage], question: str, context: str = "") -> list[dict[str, str]]:
        """Rules, examples, then one user turn: the documents first, the question last."""
        fixed = [{"role": "system", "content": self.system}]
        for user, assistant in self.examples:
            fixed += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        user = f"{documents_block(passages)}\n\n{context}Question: {question}"
        return [*fixed, {"role": "user", "content": user}]


@lru_cache(maxsize=4)
def _load(folder: Path) -> ReaderPrompt:
    def read(name: str) -> str:
        path = folder / name
        return path.read_text(encoding="utf-8").strip() if path.exists() else ""

    rows = json.loads(read("reader_examples.json"))
    return ReaderPrompt(system=read("reader_system.txt"),
                        examples=tuple((r["user"], r["assistant"]) for r in rows),
                        grammar=read("reader_grammar.gbnf"), refusal=read("refusal.txt"),
                        context=read("context.txt"), retry=read("retry.txt"))


def documents_block(passages: Sequence[Passage]) -> str:
    """Numbered passages as data. Paragraph breaks stay (they help a reader find its
    way in a whole document); everything else that could pass for prompt structure goes."""
    blocks = []
    for number, passage in enumerate(passages, 1):
        paragraphs = [as_data(p) for p in re.split(r"\n\s*\n", passage.text)]
        blocks.append(f"[{number}] " + "\n\n".join(p for p in paragraphs if p))
    return "<documents>\n" + "\n\n".join(blocks) + "\n</documents>"


@dataclass(frozen=True)
class Reply:
    """The parsed reply. ``number`` is the evidence's document number (0: none given)."""

    answer: str
    number: int = 0
    quote: str = ""
    raw: str = ""

    @property
    def refused(self) -> bool:
        """No answer, a bare label, or any wording of "the documents do not say"."""
        return not self.answer.strip(" .:") or self.answer.strip(" .:") in ("Answer", "Evidence") \
            or is_refusal(self.answer)


_MARKER = re.compile(r"\s*\[(\d+)(?:\s*[,;]\s*\d+)*\]")
_INLINE_EVIDENCE = re.compile(r"\bEvidence\s*(?:\[\d+\])?\s*:")
_ANSWER_LINE = re.compile(r"(?:^|\n)\s*Answer:\s*(?P<answer>[^\n]*)")
_EVIDENCE_LINE = re.compile(r'(?:^|\n)\s*Evidence\s*\[(?P<n>\d+)\]\s*:\s*"?(?P<quote>[^\n]*?)"?\s*(?:\n|$)')


def parse_reply(raw: str) -> Reply:
    """The reply in either order of its two lines, or a near form (a server without
    grammar support may drift): without an "Answer:" label the whole text is the answer."""
    answer = _ANSWER_LINE.search(raw)
    evidence = _EVIDENCE_LINE.search(raw)
    if answer is not None:
        text = answer.group("answer")
    else:
        text = raw[: evidence.start()] if evidence is not None else raw
    text = _INLINE_EVIDENCE.split(text)[0]
    number = int(evidence.group("n")) if evidence is not None else 0
    quote = evidence.group("quote").strip() if evidence is not None else ""
    marker = _MARKER.search(text)
    if marker is not None:  # a free-form reply cites "[n]" instead of an evidence line
        number = number or int(marker.group(1))
        text = _MARKER.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))
    return Reply(text, number, quote, raw)


def answer_pieces(pieces: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(visible piece, raw piece) per generated piece: the visible text is the answer
    sentence only, without the "Answer:" label and the evidence line."""
    raw = ""
    shown = 0
    for piece in pieces:
        raw += piece
        visible = _visible(raw)
        yield visible[shown:], piece
        shown = len(visible)


def _visible(raw: str) -> str:
    """The answer line as far as it is written, whichever line comes first; a free-form
    reply (no labels) is all answer."""
    text = raw.lstrip()
    if any(label.startswith(text) for label in (_ANSWER, _EVIDENCE)):  # a label being written
        return ""
    at = raw.find(_ANSWER)
    if at >= 0:
        rest = raw[at + len(_ANSWER):].lstrip(" ")
        cut = rest.find("\n")
        return rest if cut < 0 else rest[:cut]
    return "" if text.startswith(_EVIDENCE) else raw
