"""briefing QA: question answering with citations over briefing documents, offline."""

from qa.runtime import apply_native_defaults

apply_native_defaults()  # before llama.cpp, torch or faiss load: OpenMP reads them once

from qa.answering import Assistant  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.settings import Settings  # noqa: E402
from qa.types import Answer, Chunk, Citation, Document, Passage  # noqa: E402

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Passage", "QAError", "Settings"]
