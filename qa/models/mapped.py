"""Giving back the pages of a memory-mapped model file that the process no longer reads.

llama.cpp copies most of a GGUF's weights into its own repacked buffers and reads
the rest (the token embedding table among them) in place from the mapping. Once
the model is loaded, every page it touched while loading stays resident: the
repacked weights' source pages, never read again, and the whole embedding table,
of which a prompt reads only its tokens' rows. Advising the kernel that the
mapping is not needed drops them from the process; the pages the model does read
come back from the page cache as it reads them (the file is unchanged, so the
data is the same).
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

MADV_DONTNEED = 4  # Linux <sys/mman.h>


def release_mapped_pages(path: Path) -> int:
    """Drop the resident pages of this process's mappings of ``path``; the bytes mapped.

    Nothing is dropped (0) where there is no ``/proc/self/maps`` (not Linux)."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return 0
    released = 0
    for start, end in _mappings_of(maps.read_text(), os.stat(path).st_ino, Path(os.path.realpath(path)).name):
        if _madvise()(start, end - start, MADV_DONTNEED) != 0:
            raise OSError(ctypes.get_errno(), f"madvise({path}) failed")
        released += end - start
    return released


def _mappings_of(maps: str, inode: int, name: str) -> list[tuple[int, int]]:
    """(start, end) addresses of the mappings of the file with this inode and name (a
    ``/proc/<pid>/maps`` text: address range, permissions, offset, device, inode, path)."""
    found = []
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if (len(fields) == 6 and fields[4].isdigit() and int(fields[4]) == inode
                and Path(fields[5].removesuffix(" (deleted)")).name == name):
            start, end = (int(part, 16) for part in fields[0].split("-"))
            found.append((start, end))
    return found


@functools.cache
def _madvise() -> ctypes._CFuncPtr:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.madvise.restype = ctypes.c_int
    return libc.madvise
