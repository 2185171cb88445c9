"""A follow-up rewritten, before retrieval, as a question that stands on its own.

"Who manages her team?" is searched, read and judged as "Who manages Kestrel Bay?":
the search finds what the pronoun stands for, and the reader and the judge get a
question they can hold against one sentence (the judge sees the evidence sentence
alone, where "her" names nobody). General, with no word lists: the model rewrites
from the last two exchanges, and a rewrite that brings in a word found neither in
the question nor in those exchanges is dropped (the model filling a gap with a
guess): the question then goes on as asked, with the conversation beside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.citations import strip_markers
from qa.types import ACCEPT, Turn, Verdict

EXCHANGES = 2  # earlier exchanges the rewrite sees
_WORD = re.compile(r"\w+")
_MAX_GROWTH = 3  # a rewrite this many times the question's length is not a rewrite


@dataclass(frozen=True)
class Rewrite:
    """What the rewrite decided: the question to search, read and judge."""

    asked: str
    standalone: str  # the asked question itself when it was not rewritten
    verdict: Verdict  # for the answer's trace

    @property
    def rewritten(self) -> bool:
        return self.standalone != self.asked


@dataclass(frozen=True)
class FollowUpRewriter:
    generator: Any
    prompts_dir: Path
    max_tokens: int = 48
    name: str = "follow_up"

    def run(self, question: str, history: Sequence[Turn]) -> Rewrite:
        earlier = history[-EXCHANGES:]
        reply = "".join(self.generator.stream_chat(self.messages(question, earlier),
                                                   max_tokens=self.max_tokens, keep_state=False))
        standalone = " ".join(reply.strip().splitlines()[0].split()) if reply.strip() else ""
        unseen = _unseen_words(standalone, question, earlier)
        if not standalone or standalone == question:
            return Rewrite(question, question, Verdict(self.name, ACCEPT, "asked as it stands"))
        if unseen or len(standalone) > _MAX_GROWTH * len(question) + 40:
            why = f"words not in the conversation: {', '.join(unseen[:3])}" if unseen else "too long"
            return Rewrite(question, question,
                           Verdict(self.name, ACCEPT, f"rewrite {standalone!r} dropped ({why})"))
        return Rewrite(question, standalone, Verdict(self.name, ACCEPT, f"read as {standalone!r}"))

    def messages(self, question: str, earlier: Sequence[Turn]) -> list[dict[str, str]]:
        system, examples = _prompt(self.prompts_dir.resolve())
        messages = [{"role": "system", "content": system}]
        for user, assistant in examples:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        conversation = "".join(f"Q: {q}\nA: {strip_markers(a)}\n" for q, a in earlier)
        return [*messages, {"role": "user", "content": f"{conversation}Last question: {question}"}]


def _unseen_words(rewrite: str, question: str, earlier: Sequence[Turn]) -> list[str]:
    """Words of the rewrite that neither the question nor the conversation holds (one-
    and two-letter pieces such as a possessive "s" aside)."""
    seen = {w.lower() for text in (question, *(part for turn in earlier for part in turn))
            for w in _WORD.findall(text)}
    return [w for w in _WORD.findall(rewrite) if len(w) > 2 and w.lower() not in seen]


@lru_cache(maxsize=4)
def _prompt(folder: Path) -> tuple[str, tuple[tuple[str, str], ...]]:
    system = (folder / "follow_up.txt").read_text(encoding="utf-8").strip()
    rows = json.loads((folder / "follow_up_examples.json").read_text(encoding="utf-8"))
    return system, tuple((row["user"], row["assistant"]) for row in rows)
