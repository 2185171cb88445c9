"""``qa index --repair`` and rebuilds: nothing indexed is lost while anything of it survives.

An index over a copy of the seed briefing and two memos uploaded through the web
chat (their files in ``<index>/uploads``) is damaged six ways; the repair must
bring every document back from the stored texts, the original files or the
uploads folder, say which, and name what it could not recover.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa.errors import IndexUnavailableError
from qa.index.indexing import update_index
from qa.index.repair import repair_index
from qa.index.store import MANIFEST, IndexStore
from tests.conftest import ROOT


@pytest.fixture
def damaged(tmp_path, seed_copy, embedder, settings):
    """(index folder, the doc_ids it held) of a healthy index with two uploads."""
    index = tmp_path / "index"
    uploads = index / "uploads"
    uploads.mkdir(parents=True)
    for n, topic in enumerate(("harbour dues", "bridge repairs")):
        (uploads / f"memo-{n}.txt").write_text(f"Memo {n}\n\nThe council agreed on {topic} on Monday. "
                                                f"The vote on {topic} was {n + 5} to 2.\n")
    store = update_index([seed_copy], index, embedder, settings).store
    assert len(store.documents) == 3  # the uploads are indexed with the folder given
    return index, set(store.documents)


def _segment(index: Path, suffix: str) -> Path:
    return next(index.glob(f"segment-*{suffix}"))


def _break(index: Path, how: str) -> None:
    if how == "manifest deleted":
        (index / MANIFEST).unlink()
    elif how == "manifest garbage":
        (index / MANIFEST).write_bytes(b"\x00{not json")
    elif how == "vectors truncated":
        path = _segment(index, ".npy")
        path.write_bytes(path.read_bytes()[:100])
    elif how == "texts cut short":
        path = _segment(index, ".jsonl")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "format version":
        manifest = json.loads((index / MANIFEST).read_text())
        (index / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    elif how == "documents file deleted":
        _segment(index, ".jsonl").unlink()


@pytest.mark.parametrize("how", ["manifest deleted", "manifest garbage", "vectors truncated",
                                 "texts cut short", "format version", "documents file deleted"])
def test_repair_brings_back_every_document(how, damaged, embedder, settings):
    index, held = damaged
    _break(index, how)
    if how != "manifest deleted":
        with pytest.raises(IndexUnavailableError, match="qa index --repair"):
            IndexStore.load(index, embedder.name)
    indexed = repair_index(index, embedder, settings)
    store, report = indexed.store, indexed.report
    assert set(store.documents) == held and not report.lost
    assert set(IndexStore.load(index, embedder.name).documents) == held
    if how == "documents file deleted":  # no stored text: every document from its file
        assert (report.from_index, report.from_files, report.from_uploads) == (0, 3, 0)
    elif how == "manifest deleted":
        assert report.from_index == 3
    assert "recovered" in report.summary()


def test_what_nothing_can_bring_back_is_named_and_the_damaged_files_kept(damaged, seed_copy, embedder,
                                                                         settings):
    index, _ = damaged
    _break(index, "documents file deleted")
    for path in seed_copy.iterdir():
        path.unlink()  # the original file is gone too
    indexed = repair_index(index, embedder, settings)
    store, report = indexed.store, indexed.report
    assert len(store.documents) == 2 and report.from_files == 2
    assert [Path(s).name for s in report.lost] == ["russia-hosts-taliban-moscow-talks-2021-10-20.txt"]
    assert report.kept_damaged is not None and (report.kept_damaged / MANIFEST).exists()
    assert "LOST 1" in report.summary()


def test_with_nothing_else_left_the_uploads_folder_still_gives_its_documents(damaged, embedder, settings):
    index, _ = damaged
    _break(index, "documents file deleted")
    _break(index, "manifest garbage")
    indexed = repair_index(index, embedder, settings)
    store, report = indexed.store, indexed.report
    assert (report.from_index, report.from_files, report.from_uploads) == (0, 0, 2)
    assert sorted(Path(d.source).name for d in store.documents.values()) == ["memo-0.txt", "memo-1.txt"]


def test_a_rebuild_keeps_the_uploaded_documents(damaged, seed_copy, embedder, settings):
    index, held = damaged
    store = update_index([seed_copy], index, embedder, settings, rebuild=True).store
    assert set(store.documents) == held


def test_the_command_reports_recovered_and_lost_and_fails_when_something_is_lost(damaged, seed_copy):
    index, _ = damaged
    _break(index, "documents file deleted")
    shutil.rmtree(seed_copy)
    result = subprocess.run([sys.executable, "-m", "qa.cli", "index", "--repair", "--index", str(index)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "0 documents from the texts the index stores, 2 from their original files, 0 from the " \
           "uploads folder" in result.stdout and "LOST 1" in result.stdout
