"""Fault injection: what survives a kill -9, a full disk, a vanished model file and
two writers at once.

A real ``qa`` process is started through a small harness that wraps one function
of the code under test, so the fault strikes at an exact point (after the n-th
batch of vectors is journalled, before the n-th file of a save is written) and
then sends the process SIGKILL: nothing runs after it, as with a real kill -9.
The full disk is a real 512 kB tmpfs where the machine allows mounting one, else a
simulated ENOSPC from the same write calls (the test says which it used). The
real embedder is used throughout; the generator is the packaged tiny model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.index.indexing import update_index
from qa.index.resume import RESUME
from qa.index.store import IndexStore
from qa.ingest.documents import load_documents

ROOT = Path(__file__).resolve().parent.parent
BATCH = 16  # QA_CHECKPOINT_CHUNKS in these runs: vectors are journalled every 16 chunks

HARNESS = r"""
import errno, os, signal, sys, time
mode, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
count = [0]

def kill_after(original):
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        count[0] += 1
        if count[0] >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return wrapped

def kill_before(original):
    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    return wrapped

def disk_full(original):
    def wrapped(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    return wrapped

def slow(original):
    def wrapped(*args, **kwargs):
        time.sleep(n)
        return original(*args, **kwargs)
    return wrapped

import qa.models.embedder, qa.index.resume, qa.index.store
if mode == "kill-after-journal":
    qa.index.resume.EmbeddingJournal.append = kill_after(qa.index.resume.EmbeddingJournal.append)
elif mode == "kill-before-save-write":
    qa.index.store._write_atomic = kill_before(qa.index.store._write_atomic)
elif mode == "disk-full":
    qa.index.store._write_atomic = disk_full(qa.index.store._write_atomic)
elif mode == "slow":
    qa.models.embedder.Embedder.encode = slow(qa.models.embedder.Embedder.encode)
from qa.cli import main
sys.exit(main(argv))
"""


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "QA_GENERATOR_PATH": "tiny", "QA_CHECKPOINT_CHUNKS": str(BATCH),
            "PYTHONPATH": str(ROOT), **extra}


def _qa(*args: str, fault: str = "none", at: int = 0, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HARNESS, fault, str(at), *args], capture_output=True,
                          text=True, cwd=ROOT, env=_env(**env), timeout=300)


def _briefings(folder: Path, count: int, sentences: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        body = " ".join(f"Report {n} records that shipment {k} of the relief plan reached depot {k % 7} "
                        f"on day {k}." for k in range(sentences))
        (folder / f"report-{n:02d}.txt").write_text(f"date 2024-05-{n % 28 + 1:02d} Report {n}\n\n{body}\n")
    return folder


def _resumed_and_embedded(stdout: str) -> tuple[int, int]:
    embedded = int(re.search(r"(\d+) chunks embedded", stdout).group(1))
    resumed = re.search(r"\((\d+) more kept from an interrupted run\)", stdout)
    return (int(resumed.group(1)) if resumed else 0), embedded


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines()
             if line.strip() and not line.startswith(("WARNING", "embedding:"))]  # progress bar
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("corpus", ["many documents", "one large document"])
def test_a_run_killed_while_embedding_resumes_at_its_last_batch(corpus, tmp_path):
    """Checkpoints after every batch (QA_CHECKPOINT_SECONDS=0): finished documents are
    saved to the index, every batch of vectors to the journal; the re-run embeds only
    what no batch holds. A document still in progress is never saved half."""
    docs = _briefings(tmp_path / "docs", *((12, 30) if corpus == "many documents" else (1, 700)))
    index = tmp_path / "index"
    killed = _qa("index", str(docs), "--index", str(index), fault="kill-after-journal", at=3,
                 QA_CHECKPOINT_SECONDS="0")
    assert killed.returncode == -9
    assert len(list((index / RESUME).glob("part-*.npz"))) == 3
    if corpus == "one large document":  # nothing finished: no index, and no empty one that answers
        assert not (index / "manifest.json").exists()
        asked = _qa("ask", "What reached depot 3?", "--index", str(index))
        assert asked.returncode == 1 and "qa index" in _one_line(asked.stderr)
        saved_chunks = 0
    else:
        saved = IndexStore.load(index)
        assert 0 < len(saved.documents) < 12
        saved_chunks = len(saved.chunks)
    again = _qa("index", str(docs), "--index", str(index))
    assert again.returncode == 0, again.stderr
    resumed, embedded = _resumed_and_embedded(again.stdout)
    store = IndexStore.load(index)
    assert saved_chunks + resumed == 3 * BATCH  # every journalled vector kept
    assert embedded == len(store.chunks) - 3 * BATCH
    assert len(store.documents) == len(load_documents([docs])) and not (index / RESUME).exists()


@pytest.mark.parametrize("write", [1, 2, 3], ids=["before its 1st file", "before its 2nd", "before its 3rd"])
def test_a_save_killed_part_way_keeps_the_previous_index_and_loses_no_vectors(write, tmp_path, embedder,
                                                                              settings):
    docs = _briefings(tmp_path / "docs", 3, 20)
    index = tmp_path / "index"
    before = update_index([docs], index, embedder, settings).store
    _briefings(tmp_path / "more", 2, 20)
    killed = _qa("index", str(docs), str(tmp_path / "more"), "--index", str(index),
                 fault="kill-before-save-write", at=write)
    assert killed.returncode == -9
    kept = IndexStore.load(index)  # the index as it was, whole
    assert set(kept.documents) == set(before.documents) and len(kept.chunks) == len(before.chunks)
    again = _qa("index", str(docs), str(tmp_path / "more"), "--index", str(index))
    assert again.returncode == 0, again.stderr
    resumed, embedded = _resumed_and_embedded(again.stdout)
    assert embedded == 0 and resumed > 0 and len(IndexStore.load(index).documents) == 5


@contextlib.contextmanager
def _small_disk(folder: Path):
    """A 512 kB tmpfs at ``folder`` if this machine lets us mount one (root in a container
    that allows it), else None: the caller then simulates the full disk."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0 if shutil.which("mount") else False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)  # lazy: mapped files


def test_a_full_disk_is_one_line_and_the_index_stays_as_it_was(tmp_path, embedder, settings):
    index = tmp_path / "disk" / "index"
    with _small_disk(tmp_path / "disk") as real:
        docs = _briefings(tmp_path / "docs", 1, 10)
        before = update_index([docs], index, embedder, settings).store
        big = _briefings(tmp_path / "big", 2, 600)  # more than 512 kB holds with its vectors
        full = _qa("index", str(docs), str(big), "--index", str(index),
                   fault="none" if real else "disk-full")
        line = _one_line(full.stderr)
        assert full.returncode == 1 and "the disk is full" in line and "intact" in line, (real, line)
        kept = IndexStore.load(index)
        assert set(kept.documents) == set(before.documents)
        assert not list(index.glob(".tmp-*"))


def test_a_second_writer_is_refused_with_one_line_while_the_first_finishes(tmp_path):
    docs = _briefings(tmp_path / "docs", 6, 30)
    index = tmp_path / "index"
    first = subprocess.Popen([sys.executable, "-c", HARNESS, "slow", "4", "index", str(docs),
                              "--index", str(index)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((index / RESUME).glob("part-*.npz")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first run holds the lock once it journals vectors
        second = _qa("index", str(docs), "--index", str(index))
        assert second.returncode == 1 and "Another `qa index`" in _one_line(second.stderr)
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    assert len(IndexStore.load(index).documents) == 6


def test_a_model_file_that_vanishes_while_serving_is_one_line(tmp_path, embedder, settings, caplog):
    """The page is up and the model not yet loaded when its file goes: the warm-up and
    every question say which file is missing, in one log line, and the server keeps
    serving."""
    import gradio as gr

    from qa.models.files import resolve_generator
    from qa.pipeline import Assistant
    from qa.web.app import ChatApp

    docs = _briefings(tmp_path / "docs", 1, 10)
    model = tmp_path / "model.gguf"
    model.symlink_to(resolve_generator("tiny", settings.cache_dir))
    serving = settings.replace(generator_path=str(model), index_dir=tmp_path / "index")
    store = update_index([docs], serving.index_dir, embedder, serving).store
    app = ChatApp(Assistant(store, serving, embedder=embedder, index_dir=serving.index_dir), serving)
    model.unlink()
    with caplog.at_level(logging.INFO):
        app.warm_up()
        for _ in range(2):  # the server keeps serving: each question gets the same line
            with pytest.raises(gr.Error) as raised:
                app.ask("What reached depot 3?")
            assert "model.gguf" in str(raised.value) and raised.value.print_exception is False
    assert "model.gguf" in (app.warmup_error or "")
    assert all(r.exc_info is None for r in caplog.records)
    assert any("model.gguf" in r.getMessage() for r in caplog.records)
