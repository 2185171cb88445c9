"""Prompt templates (files in ``prompts/``) filled with numbered passages.

The prompt is kept within a token budget: the lowest-ranked passages go first,
then the last kept passage is cut at a sentence boundary, so the context window
never overflows whatever the passages hold.

Passages are untrusted data: quoted inside ``<passages>`` ... ``</passages>``
(the system rules say so), and ``quote`` takes out of their text whatever could
pass for the prompt's own structure: chat-template control tokens
(``<|im_start|>``), the delimiter tags, and ``[n]`` markers, which would pose
as passage numbers (a fake "[1]"). Only the prompt's copy changes; citations
still point at the exact document text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from qa.ingest.chunking import sentence_spans
from qa.types import Passage, TokenCounter


@dataclass(frozen=True)
class Templates:
    system: str
    question: str
    passage: str
    refusal: str
    context: str
    nudge: str  # asks again when an answer dodges the kind of thing asked (a time, a job...)
    nudge_role: str  # ... or names a person where their job was asked
    nudge_slot: str  # ... or leaves out what a passage puts where the question points
    nudge_subject: str  # ... or names the question's own person
    examples: tuple[tuple[str, str], ...] = ()  # worked (user, assistant) turns

    @classmethod
    def load(cls, folder: Path) -> Templates:
        return _load_templates(folder.resolve())


@lru_cache(maxsize=8)
def _load_templates(folder: Path) -> Templates:
    def read(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8").strip()

    return Templates(system=read("system.txt"), question=read("question.txt"),
                     passage=read("passage.txt"), refusal=read("refusal.txt"),
                     context=read("context.txt"), nudge=read("nudge.txt"),
                     nudge_role=read("nudge_role.txt"), nudge_slot=read("nudge_slot.txt"),
                     nudge_subject=read("nudge_subject.txt"),
                     examples=_examples(folder / "examples.json"))


def _examples(path: Path) -> tuple[tuple[str, str], ...]:
    if not path.exists():
        return ()
    return tuple((e["user"], e["assistant"]) for e in json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    passages: list[Passage]  # passage i is [i + 1] in the prompt


def build_prompt(question: str, passages: list[Passage], templates: Templates,
                 count_tokens: TokenCounter, budget: int, context: str = "") -> Prompt:
    """Messages whose variable part fits ``budget`` tokens; passages numbered from 1."""
    fixed = count_tokens(templates.question.format(passages="", question=question, context=context))
    kept: list[Passage] = []
    texts: list[str] = []
    used = fixed
    for passage in passages:
        block = templates.passage.format(number=len(kept) + 1, text=quote(passage.text))
        cost = count_tokens(block) + 1
        if used + cost > budget:
            cut = _cut_to_fit(passage.text, budget - used - 8, count_tokens)
            if cut and not kept:  # always keep at least part of the best passage
                kept.append(passage)
                texts.append(templates.passage.format(number=1, text=quote(cut)))
            break
        kept.append(passage)
        texts.append(block)
        used += cost
    user = templates.question.format(passages="\n".join(texts), question=question, context=context)
    return Prompt(messages=[*fixed_messages(templates), {"role": "user", "content": user}],
                  passages=kept)


def fixed_messages(templates: Templates) -> list[dict[str, str]]:
    """The prefix every prompt shares (system rules, worked examples): llama.cpp keeps
    it in its KV cache, so only the question's own turn is evaluated each time."""
    messages = [{"role": "system", "content": templates.system}]
    for example_user, example_answer in templates.examples:
        messages += [{"role": "user", "content": example_user},
                     {"role": "assistant", "content": example_answer}]
    return messages


# "<|im_start|>", "<|endoftext|>", "<｜begin▁of▁sentence｜>", "[INST]", "<s>": chat-template markup
_CONTROL_TOKENS = re.compile(r"<\s*[|｜][^<>]{0,40}[|｜]\s*>|\[/?INST\]|<<\s*/?SYS\s*>>|</?s>", re.IGNORECASE)
_DELIMITER = re.compile(r"<\s*/?\s*passages?\s*>", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def quote(text: str) -> str:
    """``text`` on one line, as data: nothing in it can close the passages block,
    open a chat turn, or pose as a passage number ("[1]" becomes "(1)")."""
    text = _CONTROL_TOKENS.sub(" ", text)
    text = _DELIMITER.sub(" ", text)
    text = _MARKER.sub(r"(\1)", text)
    return " ".join(text.split())


def _cut_to_fit(text: str, budget: int, count_tokens: TokenCounter) -> str:
    """The longest run of leading sentences within ``budget`` tokens."""
    if budget <= 0:
        return ""
    best = ""
    for _, end in sentence_spans(text):
        candidate = text[:end]
        if count_tokens(candidate) > budget:
            break
        best = candidate
    if not best:  # one sentence too long: fall back to words
        words = text.split()
        while words and count_tokens(" ".join(words)) > budget:
            words = words[: max(1, len(words) * 3 // 4)] if len(words) > 1 else []
        best = " ".join(words)
    return best
