"""How passages are quoted as data in a prompt.

Passages are untrusted data: quoted inside ``<documents>`` ... ``</documents>``
(the reader's rules say so), and ``quote`` takes out of their text whatever could
pass for the prompt's own structure: chat-template control tokens
(``<|im_start|>``), the delimiter tags, and ``[n]`` markers, which would pose
as document numbers (a fake "[1]"). Only the prompt's copy changes; citations
still point at the exact document text.
"""

from __future__ import annotations

import re

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


