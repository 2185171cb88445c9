"""Question-set parsing: bad lines reported and skipped, wrong types refused."""

from __future__ import annotations

import pytest

from qa.evaluation.questions import parse_item, parse_question_set

# -- question sets ------------------------------------------------------------------------


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_kept() -> None:
    lines = [
        '{"id": "a", "question": "Who leads?", "answers": ["Hanafi"]}',
        "{not json",
        "",
        '{"id": "b", "answers": ["x"]}',
        '{"id": "c", "question": "Q?", "answers": [1]}',
        '{"id": "d", "question": "Q?"}',
        '{"id": "a", "question": "Again?", "answers": ["x"]}',
        '["a", "list"]',
        '{"id": "e", "question": "Not here?", "unanswerable": true}',
        '# a comment line',
        '{"id": 7, "question": "Q?", "answers": "one", "source": ["quote one", "quote two"]}',
    ]
    parsed = parse_question_set(lines)
    assert [i.id for i in parsed.items] == ["a", "e", "7"]
    assert [(b.line, b.reason.split(" ")[0]) for b in parsed.bad_lines] == [
        (2, "not"), (4, "'question'"), (5, "'answers'"), (6, "'answers'"), (7, "duplicate"),
        (8, "expected")]
    assert "first on line 1" in str(parsed.bad_lines[4])
    assert str(parsed.bad_lines[0]).startswith("line 2: not valid JSON")
    last = parsed.items[-1]
    assert last.answers == ("one",) and last.sources == ("quote one", "quote two")
    assert last.line == 11 and parsed.items[1].unanswerable


def test_parse_item_rejects_wrong_types() -> None:
    with pytest.raises(ValueError, match="unanswerable"):
        parse_item({"id": "x", "question": "q", "answers": ["a"], "unanswerable": "yes"})
    with pytest.raises(ValueError, match="'id'"):
        parse_item({"id": True, "question": "q", "answers": ["a"]})
    with pytest.raises(ValueError, match="'source'"):
        parse_item({"id": "x", "question": "q", "answers": ["a"], "source": 3})
