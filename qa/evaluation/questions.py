"""Question sets: JSONL files of questions with their gold answers, parsed and checked.

A bad line is recorded with why and skipped, never fatal, so the author can fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
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
            item = parse_item(json.loads(line), number)
        except json.JSONDecodeError as error:
            bad.append(BadLine(number, f"not valid JSON ({error.msg} at column {error.colno})"))
            continue
        except ValueError as error:
            bad.append(BadLine(number, str(error)))
            continue
        if item.id in first_seen:
            bad.append(BadLine(number, f"duplicate id {item.id!r} (first on line "
                                       f"{first_seen[item.id]})"))
            continue
        first_seen[item.id] = number
        items.append(item)
    return QuestionSet(items, bad)


def parse_item(raw: Any, line: int = 0) -> QuestionItem:
    """Validate one decoded line; ``ValueError`` says what is wrong in the user's terms."""
    if not isinstance(raw, dict):
        raise ValueError("expected a JSON object")
    item_id = raw.get("id")
    if isinstance(item_id, bool) or not isinstance(item_id, str | int) or str(item_id) == "":
        raise ValueError("'id' must be a non-empty string or number")
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
    return QuestionItem(id=str(item_id), question=question.strip(), answers=answers,
                        unanswerable=unanswerable, sources=sources,
                        kind=kind if isinstance(kind, str) else None, line=line)


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    """A string or a list of strings, as a tuple of the non-blank ones."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"'{name}' must be a string or a list of strings")
    return tuple(v for v in values if v.strip())
