"""Settings of the native libraries, made before any of them loads.

OpenMP (llama.cpp's libgomp) reads its variables once, when the library is
loaded, so they are set here, on the first ``import qa`` (the CLI, the web
chat and the Python API all start with it), and only where the environment
does not set them already. A process that loaded llama.cpp, torch or faiss
before importing qa keeps what it had.

``OMP_WAIT_POLICY=PASSIVE``: llama.cpp's threads sleep between tokens instead
of spinning. On this shared 2-core machine, with other processes busy,
spinning threads took the cores from each other and generation fell from 14.6
to 2.6 tokens/s (bench/answering_busy.py, same run).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

NATIVE_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def apply_native_defaults(environ: MutableMapping[str, str] = os.environ) -> None:
    for name, value in NATIVE_DEFAULTS.items():
        environ.setdefault(name, value)
