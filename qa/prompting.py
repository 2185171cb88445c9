"""The prompt's small texts (files in ``qa/prompts/``) and how passages are quoted as data.

Passages are untrusted data: quoted inside ``<documents>`` ... ``</documents>``
(the reader's rules say so), and ``quote`` takes out of their text whatever could
pass for the prompt's own structure: chat-template control tokens
(``<|im_start|>``), the delimiter tags, and ``[n]`` markers, which would pose
as document numbers (a fake "[1]"). Only the prompt's copy changes; citations
still point at the exact document text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class Templates:
    refusal: str  # what the user reads when the documents do not answer
    context: str  # the earlier exchange a follow-up continues

    @classmethod
    def load(cls, folder: Path) -> Templates:
        return _load_templates(folder.resolve())


@lru_cache(maxsize=8)
def _load_templates(folder: Path) -> Templates:
    def read(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8").strip()

    return Templates(refusal=read("refusal.txt"), context=read("context.txt"))


# "<|im_start|>", "<|endoftext|>", "<｜begin▁of▁sentence｜>", "[INST]", "<s>": chat-template markup
_CONTROL_TOKENS = re.compile(r"<\s*[|｜][^<>]{0,40}[|｜]\s*>|\[/?INST\]|<<\s*/?SYS\s*>>|</?s>", re.IGNORECASE)
_DELIMITER = re.compile(r"<\s*/?\s*(passages?|documents?)\s*>", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def quote(text: str) -> str:
    """``text`` on one line, as data: nothing in it can close the passages block,
    open a chat turn, or pose as a passage number ("[1]" becomes "(1)")."""
    text = _CONTROL_TOKENS.sub(" ", text)
    text = _DELIMITER.sub(" ", text)
    text = _MARKER.sub(r"(\1)", text)
    return " ".join(text.split())


