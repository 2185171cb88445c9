"""Conversations kept in the user's own browser (``gr.BrowserState``, i.e. localStorage).

The stored value is a list of chats, newest first, each a dict with ``id``, ``title``
(its first question), ``messages`` (what the chat shows) and ``turns`` ([question,
answer] pairs the assistant reads for follow-ups). The server never keeps them: each
browser sends its own with the event that needs them, so no user sees another's.
Pure functions of that value, so they are tested without a browser.
"""

from __future__ import annotations

import html
import secrets
import uuid
from pathlib import Path
from typing import Any

MAX_CHATS = 15  # localStorage holds ~5 MB per site; an answer with its sources is ~20 KB
TITLE_CHARS = 60

Chat = dict[str, Any]


def browser_secret(folder: Path) -> str:
    """The key the stored chats are encrypted with, kept in ``folder`` so they survive a
    restart of the server (Gradio's default is a new key each start)."""
    path = Path(folder) / "browser-state-key"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        key = secrets.token_hex(32)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(key, encoding="utf-8")
            path.chmod(0o600)
        except OSError:
            pass  # a read-only cache: chats last until the server restarts
        return key


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def chats_of(stored: Any) -> list[Chat]:
    """The stored chats, ignoring anything malformed (storage is the user's to edit)."""
    if not isinstance(stored, list):
        return []
    return [c for c in stored if isinstance(c, dict) and isinstance(c.get("id"), str)
            and isinstance(c.get("messages"), list) and isinstance(c.get("turns"), list)]


def saved(stored: Any, chat_id: str, messages: list[dict[str, Any]], turns: list[list[str]]) -> list[Chat]:
    """The chats with this one (new or updated) first; the oldest beyond MAX_CHATS dropped."""
    chats = [c for c in chats_of(stored) if c["id"] != chat_id]
    if not turns and not messages:
        return chats
    messages = [{"role": m.get("role"), "content": text_of(m.get("content"))} for m in messages]
    first = html.unescape(next((m["content"] for m in messages if m.get("role") == "user"), "")) or "New chat"
    title = first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"
    return [{"id": chat_id, "title": title, "messages": messages, "turns": turns}, *chats][:MAX_CHATS]


def text_of(content: Any) -> str:
    """A message's text: the chat hands messages back with their content as a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text") or "")
    return ""


def find(stored: Any, chat_id: str | None) -> Chat | None:
    return next((c for c in chats_of(stored) if c["id"] == chat_id), None)


def latest(stored: Any) -> Chat | None:
    chats = chats_of(stored)
    return chats[0] if chats else None


def choices(stored: Any, current: str | None) -> Any:
    """The past-chats list as a dropdown update, showing ``current`` as chosen."""
    import gradio as gr

    options = [(c["title"], c["id"]) for c in chats_of(stored)]
    known = {value for _, value in options}
    return gr.Dropdown(choices=options, value=current if current in known else None)
