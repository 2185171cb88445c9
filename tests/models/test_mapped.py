"""Releasing a mapped file's pages: they leave the process, the data stays readable."""

from __future__ import annotations

import mmap
from pathlib import Path

from qa.models.mapped import release_mapped_pages

SIZE = 16 << 20


def _rss_file_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_released_pages_leave_the_process_and_read_back_the_same(tmp_path):
    data = bytes(range(256)) * (SIZE // 256)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    link = tmp_path / "model.gguf"
    link.symlink_to(path)  # a model path may be a link to the cached file
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as mapped:
        checksum = sum(mapped[i] for i in range(0, SIZE, 4096))  # touch every page
        touched = _rss_file_mb()
        assert release_mapped_pages(link) == SIZE
        released = _rss_file_mb()
        assert touched - released >= 0.9 * SIZE / 2**20
        assert sum(mapped[i] for i in range(0, SIZE, 4096)) == checksum
        assert mapped[:] == data


def test_a_file_not_mapped_releases_nothing(tmp_path):
    path = tmp_path / "other.bin"
    path.write_bytes(b"x" * 4096)
    assert release_mapped_pages(path) == 0
