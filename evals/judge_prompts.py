"""The judge's two prompts, alone and together, over the drafts an evaluation judged.

    QA_JUDGE_MIN_YES=0 qa eval evals/news27/questions.jsonl --docs evals/news27/docs --out out/news27
    python evals/judge_prompts.py out/news27 out/memos27 ...

Run the evaluations with ``QA_JUDGE_MIN_YES=0`` (the judge then refuses nothing, so
every draft that reached it is in the report as an answer with its citation). For
each such answer this asks the model each judge prompt of ``qa/prompts`` over the
cited sentence (found in the document from the citation's excerpt) and prints, per
threshold, how many right answers, wrong answers and answers to unanswerable
questions each prompt, and the pair by mean log-odds (the judge's rule), would
refuse; then the seconds one prompt and the pair take (the second shares the first's
opening; a reset context before each, as after an answer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.checks import Draft  # noqa: E402
from qa.checks.judge import PROMPTS, ModelJudge, _mean_odds  # noqa: E402
from qa.generators import make_generator  # noqa: E402
from qa.ingest.chunking import sentence_spans  # noqa: E402
from qa.ingest.documents import load_document  # noqa: E402
from qa.reader.reply import Reply  # noqa: E402
from qa.settings import Settings  # noqa: E402

THRESHOLDS = (0.4, 0.5, 0.55, 0.6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="qa eval --out folders")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    judge = ModelJudge(make_generator(settings), settings.reader.prompts_dir)
    rows = []
    for outcome, draft in judged_drafts(args.reports):
        answered, stated = (judge._p_yes(judge._messages(draft, name)) for name in PROMPTS)
        rows.append({"outcome": outcome, PROMPTS[0]: answered, PROMPTS[1]: stated,
                     "pair": _mean_odds(answered, stated)})
    print(dict(Counter(r["outcome"] for r in rows)), "drafts judged")
    for column in (*PROMPTS, "pair"):
        cells = []
        for threshold in THRESHOLDS:
            refused = Counter(r["outcome"] for r in rows if r[column] < threshold)
            cells.append(f"< {threshold}: right {refused['right']}, wrong {refused['wrong']}, "
                         f"unanswerable {refused['unanswerable']}")
        print(f"{column:20s} " + " | ".join(cells))
    if rows:
        print(timing(judge, next(d for _, d in judged_drafts(args.reports[:1]))))
    return 0


def judged_drafts(reports: list[Path]):
    """(outcome, Draft) for every answer of the reports that the judge accepted."""
    for folder in reports:
        for row in json.loads((folder / "report.json").read_text())["questions"]:
            if row.get("conversation") or not row["citations"] or row["trace"][-1]["check"] != "judge":
                continue
            sentence = cited_sentence(row["citations"][0])
            if sentence is None:
                continue
            outcome = ("unanswerable" if row["unanswerable"] else
                       "right" if row["contains_answer"] else "wrong")
            answer = row["answer"].rsplit(" [", 1)[0]
            yield outcome, Draft(question=row["question"], about=row["question"], passages=(),
                                 reply=Reply(answer=answer, number=1), evidence=None,
                                 evidence_sentence=sentence, documents={})


def cited_sentence(citation: dict) -> str | None:
    text = load_document(ROOT / citation["source"]).text
    at = text.find(citation["excerpt"].rstrip("\u2026"))
    spans = [(s, e) for s, e in sentence_spans(text) if s <= at < e] if at >= 0 else []
    return text[spans[0][0]:spans[0][1]] if spans else None


def timing(judge: ModelJudge, draft: Draft, rounds: int = 3) -> str:
    llm = judge.generator.llm
    one, pair = [], []
    for _ in range(rounds):
        llm.reset()
        started = time.perf_counter()
        judge._p_yes(judge._messages(draft, PROMPTS[1]))
        one.append(time.perf_counter() - started)
        llm.reset()
        started = time.perf_counter()
        judge.run(draft)
        pair.append(time.perf_counter() - started)
    return f"seconds per judged draft: one prompt {min(one):.2f}, the pair {min(pair):.2f} (best of {rounds})"


if __name__ == "__main__":
    sys.exit(main())
