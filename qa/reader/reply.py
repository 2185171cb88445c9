"""The reader's prompt and the form of its reply: an answer, then its evidence.

The reply is ``Answer: <sentence>`` then ``Evidence [n]: "<words copied from
document n>"``, or ``Answer: The documents do not say.``. The answer comes first
so the user reads it while it is written; a llama.cpp grammar holds the model to
this form (no missing evidence line, no chatter), and the evidence quote is then
checked against the document (qa/checks/evidence.py). The fixed part of the
prompt (rules, worked examples, then the documents) comes before the question,
so llama.cpp reuses its evaluated prefix for every question about the same
documents (qa/generation.py keeps one per document set).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.prompting import quote as as_data
from qa.types import Passage

REFUSAL = "The documents do not say."
_ANSWER, _EVIDENCE = "Answer:", "\nEvidence"

GRAMMAR = r'''
root ::= "Answer: " (refusal | answered)
refusal ::= "The documents do not say."
answered ::= [^\n]+ "\nEvidence [" [1-9] "]: \"" [^"\n]+ "\""
'''


@dataclass(frozen=True)
class ReaderPrompt:
    system: str
    examples: tuple[tuple[str, str], ...]

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
    system = (folder / "reader_system.txt").read_text(encoding="utf-8").strip()
    rows = json.loads((folder / "reader_examples.json").read_text(encoding="utf-8"))
    return ReaderPrompt(system, tuple((r["user"], r["assistant"]) for r in rows))


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
        return not self.answer or self.answer.rstrip(".") == REFUSAL.rstrip(".")


_REPLY = re.compile(r'^\s*(?:Answer:\s*)?(?P<answer>.*?)\s*(?:\n\s*Evidence\s*\[(?P<n>\d+)\]\s*:\s*'
                    r'"?(?P<quote>[^\n]*?)"?\s*)?$', re.DOTALL)


def parse_reply(raw: str) -> Reply:
    """The reply in any near form (a server without grammar support may drift)."""
    match = _REPLY.match(raw.strip())
    if match is None:  # pragma: no cover - the pattern matches any text
        return Reply(raw.strip(), raw=raw)
    answer = " ".join(match.group("answer").split())
    return Reply(answer, int(match.group("n") or 0), (match.group("quote") or "").strip(), raw)


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
    text = raw.lstrip()
    if _ANSWER.startswith(text):  # the label is still being written
        return ""
    if text.startswith(_ANSWER):
        text = text[len(_ANSWER):].lstrip()
    cut = text.find(_EVIDENCE)
    if cut < 0:  # hold back what may be the start of the evidence line
        held = max((i for i in range(1, len(_EVIDENCE) + 1) if text.endswith(_EVIDENCE[:i])), default=0)
        cut = len(text) - held
    return text[:cut]
