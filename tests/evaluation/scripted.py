"""Scripted inputs the evaluation tests share: question items, passages, citations and an
assistant that answers from a script (a deterministic stand-in for ``Assistant``)."""

from __future__ import annotations

from qa.evaluation.questions import QuestionItem
from qa.evaluation.runner import EvaluationRun, evaluate
from qa.types import Answer, Citation, Passage, Timings


def _item(answers: tuple[str, ...] = ("Hanafi",), sources: tuple[str, ...] = (),
          unanswerable: bool = False, item_id: str = "q") -> QuestionItem:
    return QuestionItem(id=item_id, question=f"question {item_id}?", answers=answers,
                        unanswerable=unanswerable, sources=sources)


def _passage(chunk_id: str, text: str) -> Passage:
    return Passage(chunk_id=f"doc:{chunk_id}", doc_id="doc", text=text, score=0.5,
                   title="Brief", source="seeds/brief.txt", start=0, end=len(text))


def _cite(number: int, passage: Passage) -> Citation:
    return Citation(number=number, passage=passage, chunk_id=passage.chunk_id, quote=passage.text,
                    start=passage.start, end=passage.end)


GOLD = _passage("1", "Abdul Salam Hanafi leads the Taliban delegation.")
NATIONS = _passage("2", "Representatives from ten nations will attend.")
OTHER = _passage("3", "Lavrov is expected to speak at the event.")
TIMINGS = Timings(retrieval=0.1, first_token=0.5, total=1.5)
TOKENS = 11


class ScriptedAssistant:
    """Returns fixed passages and answers per question, like a deterministic Assistant."""

    def __init__(self, script: dict[str, tuple[list[Passage], str, list[Citation], bool]]):
        self.script = script

    def retrieve(self, question: str, k: int = 10) -> list[Passage]:
        return self.script[question][0][:k]

    def ask(self, question: str) -> Answer:
        passages, text, citations, abstained = self.script[question]
        return Answer(question=question, text=text, citations=citations, abstained=abstained,
                      passages=passages, timings=TIMINGS, generated_tokens=TOKENS)


def scripted_run() -> EvaluationRun:
    items = [
        _item(("Abdul Salam Hanafi", "Hanafi"), ("Hanafi leads the Taliban delegation",),
              item_id="right"),
        _item(("ten", "10"), item_id="wrong"),
        _item(("Ankara",), item_id="refused"),
        _item((), unanswerable=True, item_id="refused-ok"),
        _item((), unanswerable=True, item_id="invented"),
    ]
    assistant = ScriptedAssistant({
        "question right?": ([OTHER, GOLD], "Hanafi leads it [2].", [_cite(2, GOLD)], False),
        "question wrong?": ([NATIONS, OTHER], "Twelve nations [2].", [_cite(2, OTHER)], False),
        "question refused?": ([OTHER], "The documents do not say.", [], True),
        "question refused-ok?": ([OTHER], "The documents do not say.", [], True),
        "question invented?": ([OTHER], "Lavrov [1].", [_cite(1, OTHER)], False),
    })
    return evaluate(assistant, items, k=10, progress=False)
