"""Check the hand-written eval sets (news25, memos25, mixed25, convo25, the 26, 27 and 28
sets, news29, memos29, mixed29, and the 30 sets); the 27-30 batches add their own rules
(WORDS27/NONE_SHARE27/WHOLE, TURNS...).

Usage: python evals/check_sets.py [set folder ...]

For each set: every JSONL line parses and has the project format; ids are unique;
types are known; an answerable's answers each occur verbatim in its document and its
source is a verbatim sentence of that document containing at least one answer; an
unanswerable's source names a file in docs/; at least a quarter are unanswerable.
PDF text is checked against <set>/pdf_text/<stem>.txt (the text the PDF was made
from) and, when pypdf is installed, against the text extracted from the PDF itself.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent
TYPES = {"name", "role", "number", "date", "place", "reason", "two-hop", "paraphrase", "none"}
DEFAULT = [*(f"{kind}{batch}" for batch in (25, 26, 27, 28) for kind in ("news", "memos", "mixed", "convo")),
           "news29", "memos29", "mixed29", "news30", "memos30", "mixed30", "convo30"]
# the 27 sets: tighter word counts and at least 28% unanswerable
WORDS27 = {"news27": (700, 900), "convo27": (350, 450), "news28": (700, 900), "convo28": (350, 450),
           "news29": (700, 900), "news30": (700, 900), "convo30": (350, 450)}
NONE_SHARE27 = {"news27", "memos27", "mixed27", "news28", "memos28", "mixed28",
                "news29", "memos29", "mixed29", "news30", "memos30", "mixed30"}
# sets whose answerable sources must be whole sentences or lines
WHOLE = ("27", "28", "29", "30")
# the 28 batch: conversations may have 3-5 turns and need at least 3 unanswerable turns;
# its PDFs must have exactly 2 pages
TURNS = {"convo28": (3, 5), "convo30": (3, 5)}
MIN_NONE_TURNS = {"convo28": 3, "convo30": 3}
PDF_PAGES = {"memos28": 2, "memos29": 2, "memos30": 2}


def norm(s):
    return " ".join(s.split())


def load_texts(folder):
    texts = {}
    for p in sorted((folder / "docs").iterdir()):
        if p.suffix in (".txt", ".md"):
            texts[p.name] = [norm(p.read_text())]
        elif p.suffix == ".pdf":
            src = folder / "pdf_text" / (p.stem + ".txt")
            versions = [norm(src.read_text())] if src.exists() else []
            try:
                import pypdf
                versions.append(norm(" ".join(pg.extract_text() for pg in pypdf.PdfReader(p).pages)))
            except ImportError:
                pass
            texts[p.name] = versions
    return texts


SPLIT = re.compile(r'(?:(?<=[.?!])|(?<=[.?!]"))\s+(?=[A-Z"\'0-9])')


def whole_sentences(folder):
    """For the 27 sets: the sentences (split at . ? ! before a capital, quote or digit)
    and lines of each document, so that a source can be checked to be a whole one."""
    out = set()
    for p in sorted((folder / "docs").iterdir()):
        if p.suffix == ".pdf":
            p = folder / "pdf_text" / (p.stem + ".txt")
        for line in p.read_text().split("\n"):
            line = norm(line)
            if line:
                out.add(line)
                out.update(SPLIT.split(line))
    return out


def check_item(item, texts, where, errors, sents=None):
    src = item.get("source", "")
    if sents is not None and not item.get("unanswerable") and norm(src) not in sents:
        errors.append(f"{where}: source is not a whole sentence or line: {src[:80]!r}")
    if item.get("unanswerable"):
        if item.get("answers") != []:
            errors.append(f"{where}: unanswerable with answers")
        if src not in texts:
            errors.append(f"{where}: unanswerable source {src!r} is not a doc file")
        return
    ans = item.get("answers") or []
    if not ans or not all(isinstance(a, str) and a for a in ans):
        errors.append(f"{where}: answers missing")
        return
    docs = [d for d, vs in texts.items() if vs and all(norm(src) in v for v in vs)]
    if not docs:
        errors.append(f"{where}: source not verbatim in any doc: {src[:80]!r}")
        return
    doc = docs[0]
    for a in ans:
        if not all(norm(a) in v for v in texts[doc]):
            errors.append(f"{where}: answer {a!r} not in {doc}")
    if not any(norm(a) in norm(src) for a in ans):
        errors.append(f"{where}: source holds none of the answers")


def check_docs(folder, errors):
    for p in sorted((folder / "docs").iterdir()):
        if folder.name.startswith(("news", "convo")) and p.suffix == ".txt":
            lines = p.read_text().split("\n")
            if not re.match(r"^date \d{4}-\d{2}-\d{2} \S", lines[0]) or lines[1] != "":
                errors.append(f"{p}: first line must be 'date YYYY-MM-DD Headline' then a blank line")
        if folder.name in ("news25", "news26"):
            n = len(p.read_text().split())
            if not 500 <= n <= 1200:
                errors.append(f"{p}: {n} words, want 500-1200")
        if p.suffix == ".pdf" and folder.name in PDF_PAGES:
            try:
                import pypdf
                n = len(pypdf.PdfReader(p).pages)
                if n != PDF_PAGES[folder.name]:
                    errors.append(f"{p}: {n} pages, want {PDF_PAGES[folder.name]}")
            except ImportError:
                pass
        if folder.name in WORDS27:
            lo, hi = WORDS27[folder.name]
            n = len(p.read_text().split())
            if not lo <= n <= hi:
                errors.append(f"{p}: {n} words, want {lo}-{hi}")


def rows(path, ids, errors):
    """(where, record) per line of a JSONL file; an id seen before is an error."""
    for i, line in enumerate(path.read_text().splitlines(), 1):
        record = json.loads(line)
        where = f"{path.name}:{i} {record.get('id')}"
        if record.get("id") in ids:
            errors.append(f"{where}: duplicate id")
        ids.add(record.get("id"))
        yield where, record


def check_set(folder):
    errors, counts, ids = [], {}, set()
    texts = load_texts(folder)
    sents = whole_sentences(folder) if folder.name.endswith(WHOLE) else None
    check_docs(folder, errors)
    qfile, cfile = folder / "questions.jsonl", folder / "conversations.jsonl"
    if qfile.exists():
        for where, item in rows(qfile, ids, errors):
            typ = item.get("type")
            if typ not in TYPES:
                errors.append(f"{where}: bad type {typ!r}")
            if (typ == "none") != bool(item.get("unanswerable")):
                errors.append(f"{where}: type none iff unanswerable")
            for k in ("id", "type", "question", "answers", "source"):
                if k not in item:
                    errors.append(f"{where}: missing {k}")
            counts[typ] = counts.get(typ, 0) + 1
            check_item(item, texts, where, errors, sents)
        total = sum(counts.values())
        if total < 36 or counts.get("none", 0) * 4 < total:
            errors.append(f"{folder.name}: {total} questions, {counts.get('none', 0)} unanswerable")
        if folder.name in NONE_SHARE27 and (total < 45 or counts.get("none", 0) < 0.28 * total):
            errors.append(f"{folder.name}: {total} questions, {counts.get('none', 0)} unanswerable, "
                          "want >= 45 and >= 28%")
    if cfile.exists():
        for where, conv in rows(cfile, ids, errors):
            counts["conversations"] = counts.get("conversations", 0) + 1
            turns = conv.get("turns", [])
            lo, hi = TURNS.get(folder.name, (3, 4))
            if not lo <= len(turns) <= hi:
                errors.append(f"{where}: {len(turns)} turns")
            for j, t in enumerate(turns, 1):
                counts["turns"] = counts.get("turns", 0) + 1
                if t.get("unanswerable"):
                    counts["turns-none"] = counts.get("turns-none", 0) + 1
                check_item(t, texts, f"{where} turn {j}", errors, sents)
        if counts.get("turns-none", 0) < MIN_NONE_TURNS.get(folder.name, 0):
            errors.append(f"{folder.name}: {counts.get('turns-none', 0)} unanswerable turns, "
                          f"want >= {MIN_NONE_TURNS[folder.name]}")
    return counts, errors


def main(argv):
    bad = 0
    for name in argv or DEFAULT:
        counts, errors = check_set(ROOT / name)
        print(name, dict(sorted(counts.items())), "OK" if not errors else f"{len(errors)} errors")
        for e in errors:
            print("  ", e)
        bad += len(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
