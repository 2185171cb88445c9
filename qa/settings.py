"""All configuration in one place: defaults, overridden by ``QA_*`` variables,
overridden by CLI flags. Defaults are chosen for a 2-core laptop CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent  # data files (prompts/) ship inside the package


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "qa"


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 2, 8))


@dataclass(frozen=True)
class Settings:
    index_dir: Path = Path("index")
    cache_dir: Path = _default_cache_dir()
    prompts_dir: Path = PACKAGE_DIR / "prompts"
    # Models: a path overrides the packaged default (see shared MODELS.md).
    generator_path: str | None = None
    embedder_path: str | None = None
    # Generation behind an OpenAI-compatible chat-completions server (llama.cpp's server, vLLM,
    # Ollama, TGI) instead of in-process: its base URL (".../v1"), the model name it serves and
    # its API key (QA_GENERATOR_API_KEY; kept out of reprs, logs and error messages). The
    # local GGUF (generator_path) then only lends its vocabulary to count prompt tokens.
    generator_url: str | None = None
    generator_model: str = "default"
    generator_api_key: str | None = field(default=None, repr=False)
    generator_timeout: float = 60.0  # seconds without a byte from the server: a clear error
    generator_retries: int = 2  # more attempts for a refused connection, a 429 or a 5xx
    # Where vectors and keyword search live: "faiss" (files in index_dir, in this process) or
    # "milvus" (vector_uri: a milvus-lite .db file, or http://host:19530 for a Milvus server).
    vector_backend: str = "faiss"
    vector_uri: str | None = None
    vector_collection: str = "qa"
    # "onnx": the packaged MiniLM as a fused int8 graph, ~3x faster to index, BoolQ nDCG@10 0.952
    # vs 0.953 (bench/embedding_quality.py); "torch" runs any sentence-transformers model.
    embed_backend: str = "onnx"
    n_ctx: int = 4096
    n_threads: int = _default_threads()
    max_answer_tokens: int = 256
    temperature: float = 0.0
    # Chunking, in embedder word pieces (all-MiniLM-L6-v2 reads at most 256).
    chunk_tokens: int = 128  # vs 64: 20% faster to index, BoolQ hybrid nDCG@10 0.933 (0.934)
    chunk_overlap_sentences: int = 0  # 1 costs 25% more to embed for the same BoolQ (0.933 vs 0.934)
    chunk_with_title: bool = True  # embed/search "title. chunk" (BoolQ nDCG@10 0.863 -> 0.932)
    # The reader sees the best documents whole (as windows when too long or not yet warmed)
    # and its answer goes through the checks (qa/checks/).
    context_token_budget: int = 1800  # tokens of documents the reader sees
    judge: str = "evidence"  # or "off": the model judges its draft (qa/checks/judge.py)
    english_checks: bool = True  # the English-only rule that paid on blind sets (qa/checks/english.py)
    state_cache_mb: int = 512  # evaluated prompt prefixes kept, one per document set (~28 KB/token)
    state_disk_mb: int = 2048  # warmed prefixes kept on disk for the next process (0: none)
    state_dir: Path | None = None  # where (None: cache_dir/states)
    cold_documents: str = "windows"  # or "whole": a document not yet warmed, read as windows or whole
    # Warm a cold document (an upload, or one first read as windows) in a background thread.
    # Off: on 2 cores its whole-document prefill (~10 s) starved the web page under test.
    warm_in_background: bool = False
    warm_documents: int = 8  # documents whose prefix warm_up() evaluates ahead of questions
    # Retrieval and prompting.
    candidates: int = 30
    fusion: str = "convex"  # or "rrf"
    dense_weight: float = 0.75  # share of the dense score in the fused ranking
    min_relevance: float = 0.15  # below it a chunk is not relevant; answerable questions reach 0.175
    embed_batch_size: int = 64
    # Indexing in a process that is answering pauses while each answer is made, so an
    # upload never competes with an answer for the cores (qa/priority.py).
    yield_to_answers: bool = True
    # A long indexing run keeps its embedded chunks this often (by time and by count), so a
    # killed run re-embeds at most the last batch when it is run again.
    checkpoint_seconds: float = 60.0
    checkpoint_chunks: int = 256
    max_question_chars: int = 2000
    # Web chat.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str | None = None
    max_upload_mb: int = 20

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied; ``None`` values leave a field as is.
        A value that cannot work is a ``ConfigurationError`` naming the variable."""
        clean = {k: v for k, v in changes.items() if v is not None}
        updated = replace(self, **{k: _coerce(k, v) for k, v in clean.items()})
        for name in clean:
            _check_range(name, getattr(updated, name))
        return updated

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults < ``QA_<FIELD>`` environment variables < explicit overrides."""
        env = os.environ if environ is None else environ
        from_env = {
            f.name: env[f"QA_{f.name.upper()}"]
            for f in fields(cls)
            if f"QA_{f.name.upper()}" in env
        }
        return cls().replace(**from_env).replace(**overrides)


# Fields that only take some values; numbers below are the least that works.
_CHOICES = {"embed_backend": ("onnx", "torch"), "fusion": ("convex", "rrf"),
            "judge": ("off", "evidence"),
            "cold_documents": ("windows", "whole"), "vector_backend": ("faiss", "milvus")}
_AT_LEAST = {"port": 1, "n_ctx": 256, "n_threads": 1, "max_answer_tokens": 1, "chunk_tokens": 16,
             "chunk_overlap_sentences": 0, "candidates": 1, "embed_batch_size": 1, "checkpoint_seconds": 0,
             "checkpoint_chunks": 1, "max_question_chars": 1, "max_upload_mb": 1, "temperature": 0,
             "min_relevance": -1, "dense_weight": 0, "context_token_budget": 64,
             "state_cache_mb": 0, "state_disk_mb": 0, "warm_documents": 0, "generator_timeout": 0.1,
             "generator_retries": 0}
_AT_MOST = {"port": 65535, "dense_weight": 1, "min_relevance": 1}
_PATHS = {"state_dir"}  # paths whose default is None
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _coerce(name: str, value: Any) -> Any:
    """Environment values arrive as strings; give each field its own type."""
    if name not in {f.name for f in fields(Settings)}:
        raise ConfigurationError(f"Unknown setting {name!r}.")
    default = getattr(Settings, name, None)
    if isinstance(default, Path) or name in _PATHS:
        return Path(value).expanduser()
    if not isinstance(value, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = "1 or 0" if isinstance(default, bool) else "a whole number" if isinstance(default, int) \
            else "a number"
        raise ConfigurationError(f"{_variable(name)}={value!r} is not valid: give {kind} "
                          f"(the default is {default}), or unset it.") from None
    if isinstance(default, Path):
        return Path(value).expanduser()
    return value


def _check_range(name: str, value: Any) -> None:
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigurationError(f"{_variable(name)}={value!r} is not valid: give one of "
                          f"{', '.join(_CHOICES[name])}.")
    low, high = _AT_LEAST.get(name), _AT_MOST.get(name)
    if isinstance(value, int | float) and not isinstance(value, bool) and (
            (low is not None and value < low) or (high is not None and value > high)):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ConfigurationError(f"{_variable(name)}={value!r} is out of range: give {bounds}.")


def _variable(name: str) -> str:
    return f"QA_{name.upper()}"
