"""briefing QA: question answering with citations over briefing documents, offline."""

from qa.errors import QAError
from qa.pipeline import Assistant
from qa.settings import Settings
from qa.types import Answer, Chunk, Citation, Document, Passage, Timings

__all__ = ["Answer", "Assistant", "Chunk", "Citation", "Document", "Passage", "QAError", "Settings",
           "Timings"]
