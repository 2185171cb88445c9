"""What the English-only rules (qa/checks/english.py) would do after the general checks.

    python evals/english_rules.py /tmp/eval-out/*/report.json

Reads ``qa eval`` reports made with the rules off and runs each rule on every
accepted answer, as the reader's checks would have run it (the evidence is the
sentence of the cited document holding most of the answer's own words). Prints
per rule: right answers it would refuse, wrong answers to answerable questions
it would refuse, answers to unanswerable questions it would refuse. A rule pays
when it refuses more wrong answers than right ones.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

from qa.checks import Draft
from qa.checks.english import EnglishRules
from qa.ingest.chunking import sentence_spans
from qa.ingest.documents import load_document
from qa.reader.reply import parse_reply
from qa.types import Passage
from qa.verification import answer_share


def main(paths: list[str]) -> int:
    counts: Counter[tuple[str, str]] = Counter()
    totals: Counter[str] = Counter()
    for path in paths:
        for row in json.loads(Path(path).read_text())["questions"]:
            if row.get("abstained") or not row.get("citations"):
                continue
            right = "right" if row["contains_answer"] else "wrong"
            outcome = "unanswerable" if row["unanswerable"] else right
            totals[outcome] += 1
            verdict = _verdict(row)
            if verdict is not None:
                counts[(verdict, outcome)] += 1
    print(f"accepted answers: {dict(totals)}")
    print(f"{'rule':28s} {'right refused':>14s} {'wrong refused':>14s} {'unanswerable refused':>21s}")
    for rule in sorted({r for r, _ in counts}):
        print(f"{rule:28s} {counts[(rule, 'right')]:14d} {counts[(rule, 'wrong')]:14d} "
              f"{counts[(rule, 'unanswerable')]:21d}")
    return 0


def _verdict(row: dict) -> str | None:
    """The rule that would refuse this accepted answer, or None."""
    document = load_document(row["citations"][0]["source"])
    text = document.text
    reply = parse_reply(row["answer"])
    sentences = [text[a:b] for a, b in sentence_spans(text)]
    evidence = max(sentences, key=lambda s: answer_share(reply.answer, row["question"], s), default="")
    whole = Passage(chunk_id=f"{document.doc_id}:0", doc_id=document.doc_id, text=text, score=1.0,
                    title=document.title, source=document.source, start=0, end=len(text))
    draft = Draft(question=row["question"], about=row["question"], passages=(whole,),
                  reply=replace(reply, number=1), evidence=None, evidence_sentence=evidence,
                  documents={document.doc_id: document})
    verdict = EnglishRules().run(draft)
    return verdict.check if verdict.action != "accept" else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
