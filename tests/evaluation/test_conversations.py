"""Conversation sets: each turn is asked with the earlier turns (and the system's own
answers to them) as history, scored like a question; follow-ups are reported apart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from qa.cli import main
from qa.evaluation.questions import parse_question_set
from qa.evaluation.report import build_report, format_console
from qa.evaluation.runner import evaluate
from qa.types import Answer, Passage
from tests.conftest import ROOT
from tests.evaluation.scripted import GOLD, OTHER, TIMINGS, TOKENS, _cite

CONVO = ROOT / "evals" / "convo25"

TWO_TURNS = {"id": "c1", "turns": [
    {"question": "Who leads the Taliban delegation?", "answers": ["Hanafi"]},
    {"question": "What is his title?", "answers": ["Deputy Prime Minister"], "type": "role"}]}


def test_a_conversation_line_becomes_its_turns_in_order() -> None:
    parsed = parse_question_set([json.dumps(TWO_TURNS), '{"id": "q", "question": "Q?", "answers": ["a"]}'])
    first, second, plain = parsed.items
    assert [i.id for i in parsed.items] == ["c1-t1", "c1-t2", "q"]
    assert (first.conversation, first.turn, first.follow_up) == ("c1", 1, False)
    assert (second.conversation, second.turn, second.follow_up, second.kind) == ("c1", 2, True, "role")
    assert (plain.conversation, plain.turn) == (None, 0) and parsed.bad_lines == []


def test_a_bad_turn_makes_the_whole_conversation_a_bad_line() -> None:
    bad = {"id": "c2", "turns": [{"question": "Who?", "answers": ["x"]}, {"question": "", "answers": []}]}
    parsed = parse_question_set([json.dumps(bad), json.dumps({"id": "c3", "turns": []})])
    assert parsed.items == []
    assert [str(b) for b in parsed.bad_lines] == [
        "line 1: turn 2: 'question' must be a non-empty string",
        "line 2: 'turns' must list at least one question"]


class RememberingAssistant:
    """Answers from a script and records the history each question came with."""

    def __init__(self, replies: dict[str, str]):
        self.replies, self.histories = replies, {}

    def retrieve(self, question: str, k: int = 10) -> list[Passage]:
        return [GOLD, OTHER][:k]

    def retrieval_query(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        return f"{history[-1][0]} {question}"

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        self.histories[question] = list(history)
        text = self.replies[question]
        return Answer(question=question, text=text, citations=[_cite(1, GOLD)],
                      abstained=text.startswith("The documents do not say"), passages=[GOLD],
                      timings=TIMINGS, generated_tokens=TOKENS)


def test_each_turn_hears_the_systems_own_earlier_answers_and_follow_ups_count_apart() -> None:
    items = parse_question_set([json.dumps(TWO_TURNS)]).items
    assistant = RememberingAssistant({"Who leads the Taliban delegation?": "Hanafi leads it [1].",
                                      "What is his title?": "The documents do not say."})
    results = evaluate(assistant, items, progress=False).results
    assert assistant.histories == {"Who leads the Taliban delegation?": [],
                                   "What is his title?": [("Who leads the Taliban delegation?",
                                                           "Hanafi leads it [1].")]}
    assert [(r.id, r.conversation, r.turn, r.verdict) for r in results] == [
        ("c1-t1", "c1", 1, "right"), ("c1-t2", "c1", 2, "refused (wrongly)")]
    report = build_report(results, {"k": 10, "retrieval_only": False})
    conversations = report.summary["conversations"]
    assert conversations["first_turns_right"] == 1.0 and conversations["follow_ups_right"] == 0.0
    assert (conversations["conversations"], conversations["turns"], conversations["follow_ups"]) == (1, 2, 1)
    assert "follow-ups right" in format_console(report)


def test_qa_eval_reads_the_conversation_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main(["eval", str(CONVO / "conversations.jsonl"), "--docs", str(CONVO / "docs"),
                 "--retrieval-only", "--index", str(tmp_path / "index"), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    turns = sum(len(json.loads(line)["turns"]) for line in (CONVO / "conversations.jsonl").open())
    assert report["summary"]["questions"] == turns and report["bad_lines"] == []
    assert report["summary"]["conversations"]["conversations"] == 10
    assert report["summary"]["retrieval"]["hit_at_k"] >= 0.8
    assert "follow-ups passed" in capsys.readouterr().out
