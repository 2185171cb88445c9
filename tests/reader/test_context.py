from qa.reader.context import ContextPlan, build_context
from qa.types import Document, Passage


def _document(doc_id: str, sentences: int) -> Document:
    text = " ".join(f"Sentence {i} of {doc_id}." for i in range(sentences))
    return Document(doc_id=doc_id, title=doc_id, source=f"{doc_id}.txt", text=text, content_hash=doc_id)


def _passage(document: Document, start: int, end: int, score: float) -> Passage:
    return Passage(chunk_id=f"{document.doc_id}:{start}", doc_id=document.doc_id,
                   text=document.text[start:end], score=score, title=document.title,
                   source=document.source, start=start, end=end)


def _words(text: str) -> int:
    return len(text.split())


def test_the_best_document_is_shown_whole_and_a_far_weaker_one_not_at_all():
    a, b = _document("a", 10), _document("b", 10)
    ranked = [_passage(a, 0, 20, 0.6), _passage(b, 0, 20, 0.3)]
    context = build_context(ranked, {"a": a, "b": b}, _words, ContextPlan(budget=500))
    assert [p.doc_id for p in context.passages] == ["a"]
    assert context.passages[0].text == a.text and context.whole == {"a"}


def test_a_close_second_document_comes_as_a_window_after_the_first():
    a, b = _document("a", 10), _document("b", 200)
    ranked = [_passage(a, 0, 20, 0.6), _passage(b, 40, 80, 0.58)]
    context = build_context(ranked, {"a": a, "b": b}, _words, ContextPlan(budget=500, window_budget=50))
    assert [p.doc_id for p in context.passages] == ["a", "b"]
    window = context.passages[1]
    assert b.text[window.start:window.end] == window.text and len(window.text) < len(b.text)


def test_a_document_over_the_budget_is_shown_as_its_retrieved_windows_in_order():
    a = _document("a", 300)
    ranked = [_passage(a, 500, 560, 0.6), _passage(a, 100, 160, 0.5)]
    context = build_context(ranked, {"a": a}, _words, ContextPlan(budget=200, window_budget=100))
    assert [p.start for p in context.passages] == sorted(p.start for p in context.passages)
    assert not context.whole
    assert all(a.text[p.start:p.end] == p.text for p in context.passages)
