"""Question sets: JSONL files of questions with their gold answers, parsed and checked.

A line is one question, or one conversation (``{"id": ..., "turns": [question, ...]}``,
each turn like a question line without an id): its turns become items ``<id>-t<n>`` in
order, each to be asked with the earlier turns as history. A bad line is recorded with
why and skipped, never fatal, so the author can fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.errors import QuestionSetError


@dataclass(frozen=True)
class QuestionItem:
    """One line of a question set. ``sources`` are document names or passage quotes."""

    id: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool = False
    sources: tuple[str, ...] = ()
    kind: str | None = None  # free-form "type" label, used to break results down
    line: int = 0
    conversation: str | None = None  # the conversation's id, for a turn of one
    turn: int = 0  # 1-based position in its conversation; 0 for a standalone question

    @property
    def follow_up(self) -> bool:
        """A turn after the first: answered with the conversation so far as history."""
        return self.turn > 1


@dataclass(frozen=True)
class BadLine:
    """A line that was skipped, with why, so the author can fix it."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class QuestionSet:
    items: list[QuestionItem]
    bad_lines: list[BadLine]


def load_question_set(path: str | Path) -> QuestionSet:
    """Parse a JSONL file; a bad line is recorded and skipped, never fatal."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise QuestionSetError(f"Cannot read the question set {path}: {error}") from error
    return parse_question_set(text.splitlines())


def parse_question_set(lines: Iterable[str]) -> QuestionSet:
    """Items and bad lines of JSONL text; blank lines and ``#`` comments are skipped."""
    items: list[QuestionItem] = []
    bad: list[BadLine] = []
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            parsed = parse_line(json.loads(line), number)
        except json.JSONDecodeError as error:
            bad.append(BadLine(number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        except ValueError as error:
            bad.append(BadLine(number, str(error)))
            continue
        seen = next((item for item in parsed if item.id in first_seen), None)
        if seen is not None:
            bad.append(BadLine(number, f"duplicate id {seen.id!r} (first on line "
                                       f"{first_seen[seen.id]})"))
            continue
        first_seen.update({item.id: number for item in parsed})
        items += parsed
    return QuestionSet(items, bad)


def parse_line(raw: Any, line: int = 0) -> list[QuestionItem]:
    """A question line as one item, a conversation line as its turns in order."""
    if isinstance(raw, dict) and "turns" in raw:
        return parse_conversation(raw, line)
    return [parse_item(raw, line)]


def parse_conversation(raw: dict[str, Any], line: int = 0) -> list[QuestionItem]:
    """The turns of a conversation; one bad turn makes the whole line bad, since the turns
    after it lean on it."""
    conversation = _item_id(raw)
    turns = raw["turns"]
    if not isinstance(turns, list) or not turns:
        raise ValueError("'turns' must list at least one question")
    items = []
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise ValueError(f"turn {number}: expected a JSON object")
        try:
            item = parse_item({**turn, "id": f"{conversation}-t{number}"}, line)
        except ValueError as error:
            raise ValueError(f"turn {number}: {error}") from None
        items.append(replace(item, conversation=conversation, turn=number))
    return items


def parse_item(raw: Any, line: int = 0) -> QuestionItem:
    """Validate one decoded line; ``ValueError`` says what is wrong in the user's terms."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    item_id = _item_id(raw)
    question = raw.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' must be a non-empty string")
    unanswerable = raw.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise ValueError("'unanswerable' must be true or false")
    answers = _string_list(raw.get("answers", []), "answers")
    if not unanswerable and not answers:
        raise ValueError("'answers' must list at least one acceptable answer "
                         "(or set \"unanswerable\": true)")
    source = raw.get("source")
    sources = () if source is None else _string_list(source, "source")
    kind = raw.get("type")
    return QuestionItem(id=item_id, question=question.strip(), answers=answers,
                        unanswerable=unanswerable, sources=sources,
                        kind=kind if isinstance(kind, str) else None, line=line)


def _item_id(raw: dict[str, Any]) -> str:
    item_id = raw.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or str(item_id) == "":
        raise ValueError("'id' must be a non-empty string or number")
    return str(item_id)


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple of the non-blank ones."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"'{name}' must be a string or a list of strings")
    return tuple(v for v in values if v.strip())
