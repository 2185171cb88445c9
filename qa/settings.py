"""All configuration in one place, grouped by the stage that reads it: defaults,
overridden by ``QA_*`` variables, overridden by CLI flags and keyword overrides.
Defaults are chosen for a 2-core laptop CPU.

Every setting has one name, unique across the groups: ``settings.reader.context_token_budget``
is ``QA_CONTEXT_TOKEN_BUDGET`` and ``replace(context_token_budget=...)``. Each group checks
its values when it is made, so a value that cannot work is one line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent  # data files (prompts/) ship inside the package


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "qa"


def _default_threads() -> int:
    return max(1, min(os.cpu_count() or 2, 8))


def _setting(default: Any, *, low: float | None = None, high: float | None = None,
             choices: tuple[str, ...] = (), shown: bool = True, path: bool = False) -> Any:
    """A field with the values it may take beside it: ``low``/``high`` bound a number
    (inclusive), ``choices`` list the words a name may be, ``path`` makes a text a path."""
    return field(default=default, repr=shown,
                 metadata={"low": low, "high": high, "choices": choices, "path": path})


class _Checked:
    """A settings group: its values are coerced by ``Settings`` and checked here."""

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            _check(f.name, getattr(self, f.name), f.default, f.metadata)


@dataclass(frozen=True)
class IndexSettings(_Checked):
    """Ingest and index (qa/ingest/, qa/index/, qa/models/embedder.py): documents to
    chunks to vectors, and where they are kept."""

    # The embedder: a path overrides the packaged default (see shared MODELS.md). "onnx": the
    # packaged MiniLM as a fused int8 graph, ~3x faster to index, BoolQ nDCG@10 0.952 vs 0.953
    # (bench/embedding_quality.py); "torch" runs any sentence-transformers model.
    embedder_path: str | None = None
    embed_backend: str = _setting("onnx", choices=("onnx", "torch"))
    embed_batch_size: int = _setting(64, low=1)
    # Chunking, in embedder word pieces (all-MiniLM-L6-v2 reads at most 256).
    chunk_tokens: int = _setting(128, low=16)  # vs 64: 20% faster to index, BoolQ nDCG@10 0.933 (0.934)
    chunk_overlap_sentences: int = _setting(0, low=0)  # 1: 25% more to embed, same BoolQ (0.933 vs 0.934)
    chunk_with_title: bool = True  # embed/search "title. chunk" (BoolQ nDCG@10 0.863 -> 0.932)
    # ...also a title that is only the file's name: off, files named by an id search better
    # (title-less XSum 0.926 -> 0.930 with doc_score=document); on, descriptive names help.
    chunk_file_name_title: bool = True
    # Where vectors and keyword search live: "faiss" (files in index_dir, in this process) or
    # "milvus" (vector_uri: a milvus-lite .db file, or http://host:19530 for a Milvus server).
    vector_backend: str = _setting("faiss", choices=("faiss", "milvus"))
    vector_uri: str | None = None
    vector_collection: str = "qa"
    # Indexing in a process that is answering pauses while each answer is made, so an
    # upload never competes with an answer for the cores (qa/priority.py).
    yield_to_answers: bool = True
    # A long indexing run keeps its embedded chunks this often (by time and by count), so a
    # killed run re-embeds at most the last batch when it is run again.
    checkpoint_seconds: float = _setting(60.0, low=0)
    checkpoint_chunks: int = _setting(256, low=1)


@dataclass(frozen=True)
class RetrieveSettings(_Checked):
    """Retrieval (qa/retrieve/, the index backends' search): the question and the
    passages found for it."""

    max_question_chars: int = _setting(2000, low=1)
    candidates: int = _setting(30, low=1)  # passages retrieved; the relevant ones go on to the context
    fusion: str = _setting("convex", choices=("convex", "rrf"))
    dense_weight: float = _setting(0.75, low=0, high=1)  # share of the dense score in the fused ranking
    # "document": documents ranked as wholes (qa/retrieve/hybrid.py), the reader sees the best
    # whole; "chunk": a document ranks where its best chunk does (FAISS backend; Milvus: chunk).
    doc_score: str = _setting("chunk", choices=("chunk", "document"))
    # Below it a chunk is not relevant; answerable questions reach 0.175.
    min_relevance: float = _setting(0.15, low=-1, high=1)


@dataclass(frozen=True)
class GeneratorSettings(_Checked):
    """The generator (qa/generators/): which model writes the answers, and how it runs."""

    generator_path: str | None = None  # a GGUF path overrides the packaged default ("tiny" for tests)
    # Generation behind an OpenAI-compatible chat-completions server (llama.cpp's server, vLLM,
    # Ollama, TGI) instead of in-process: its base URL (".../v1"), the model name it serves and
    # its API key (QA_GENERATOR_API_KEY; kept out of reprs, logs and error messages). The
    # local GGUF (generator_path) then only lends its vocabulary to count prompt tokens.
    generator_url: str | None = None
    generator_model: str = "default"
    generator_api_key: str | None = _setting(None, shown=False)
    generator_timeout: float = _setting(60.0, low=0.1)  # seconds without a byte from the server
    generator_retries: int = _setting(2, low=0)  # more attempts for a refused connection, a 429 or a 5xx
    n_ctx: int = _setting(4096, low=256)
    max_answer_tokens: int = _setting(256, low=1)
    temperature: float = _setting(0.0, low=0)
    state_cache_mb: int = _setting(80, low=0)  # prompt prefixes kept in memory (warmed: on disk too)
    state_disk_mb: int = _setting(2048, low=0)  # warmed prefixes kept on disk for the next process
    state_dir: Path | None = _setting(None, path=True)  # where (None: cache_dir/states)


@dataclass(frozen=True)
class ReaderSettings(_Checked):
    """The document reader (qa/reader/): what it is shown and how documents are warmed.
    The best documents are shown whole (as windows when too long or not yet warmed)."""

    prompts_dir: Path = PACKAGE_DIR / "prompts"
    context_token_budget: int = _setting(1800, low=64)  # tokens of documents the reader sees
    # A document not yet warmed: read as "windows" or "whole".
    cold_documents: str = _setting("windows", choices=("windows", "whole"))
    # Warm a cold document (an upload, or one first read as windows) in a background thread.
    # Off: on 2 cores its whole-document prefill (~10 s) starved the web page under test.
    warm_in_background: bool = False
    warm_documents: int = _setting(8, low=0)  # documents whose prefix warm_up() evaluates ahead


@dataclass(frozen=True)
class CheckSettings(_Checked):
    """The checks of a draft answer (qa/checks/)."""

    judge: str = _setting("evidence", choices=("off", "evidence"))  # the model judges its draft
    judge_min_yes: float = _setting(0.5, low=0.0, high=1.0)  # P(yes) the judge needs (in-process model)
    english_checks: bool = True  # the English-only rule that paid on blind sets (qa/checks/english.py)


@dataclass(frozen=True)
class WebSettings(_Checked):
    """The web chat (qa/web/)."""

    host: str = "127.0.0.1"
    port: int = _setting(7860, low=1, high=65535)
    auth: str | None = None  # "user:password"
    max_upload_mb: int = _setting(20, low=1)


_GROUPS = {"index": IndexSettings, "retrieve": RetrieveSettings, "generator": GeneratorSettings,
           "reader": ReaderSettings, "checks": CheckSettings, "web": WebSettings}


@dataclass(frozen=True)
class Settings(_Checked):
    """Where the index and the models live and how many cores they use (every stage),
    then one group per stage. Build it with ``from_env``; change it with ``replace``."""

    index_dir: Path = Path("index")
    cache_dir: Path = _default_cache_dir()  # models assembled and checked once
    n_threads: int = _setting(_default_threads(), low=1)  # the embedder's and the generator's
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieve: RetrieveSettings = field(default_factory=RetrieveSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)
    checks: CheckSettings = field(default_factory=CheckSettings)
    web: WebSettings = field(default_factory=WebSettings)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied, by setting name (``n_threads=2``, ``fusion="rrf"``);
        ``None`` resets an optional setting (``generator_url=None``: generate in-process).
        A value that cannot work is a ``ConfigurationError`` naming the variable."""
        by_group: dict[str | None, dict[str, Any]] = {}
        for name, value in changes.items():
            group = _group_of(name)
            by_group.setdefault(group, {})[name] = _coerce(name, value)
        updated = replace(self, **by_group.pop(None, {}))
        groups = {group: replace(getattr(self, group), **values) for group, values in by_group.items()}
        return replace(updated, **groups)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults < ``QA_<NAME>`` environment variables < explicit overrides."""
        env = os.environ if environ is None else environ
        from_env = {name: env[_variable(name)] for name in _NAMES if _variable(name) in env}
        return cls().replace(**from_env).replace(**overrides)


_TOP_LEVEL = {f.name: f for f in fields(Settings) if f.name not in _GROUPS}
_NAMES: dict[str, tuple[str | None, Any]] = {  # setting name -> (its group, its field)
    **{name: (None, f) for name, f in _TOP_LEVEL.items()},
    **{f.name: (group, f) for group, kind in _GROUPS.items() for f in fields(kind)},
}
assert len(_NAMES) == len(_TOP_LEVEL) + sum(len(fields(k)) for k in _GROUPS.values()), "a name twice"
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _group_of(name: str) -> str | None:
    if name not in _NAMES:
        raise ConfigurationError(f"Unknown setting {name!r}: the README's Configuration section lists them.")
    return _NAMES[name][0]


def _coerce(name: str, value: Any) -> Any:
    """Environment values arrive as strings; give each setting its own type."""
    default = _NAMES[name][1].default
    is_path = isinstance(default, Path) or _NAMES[name][1].metadata.get("path", False)
    if value is not None and is_path:
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
        raise ConfigurationError(f"{_variable(name)}={value!r} is not valid: give {_kind(default)} "
                                 f"(the default is {default}), or unset it.") from None
    if isinstance(default, Path):
        return Path(value).expanduser()
    return value


def _check(name: str, value: Any, default: Any, limits: Mapping[str, Any]) -> None:
    if value is None:
        if default is not None:
            raise ConfigurationError(f"{_variable(name)} cannot be None: give {_kind(default)} "
                                     f"(the default is {default}).")
        return
    choices = limits.get("choices")
    if choices and value not in choices:
        raise ConfigurationError(f"{_variable(name)}={value!r} is not valid: give one of "
                                 f"{', '.join(choices)}.")
    low, high = limits.get("low"), limits.get("high")
    if isinstance(value, int | float) and not isinstance(value, bool) and (
            (low is not None and value < low) or (high is not None and value > high)):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ConfigurationError(f"{_variable(name)}={value!r} is out of range: give {bounds}.")


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "1 or 0"
    if isinstance(default, int):
        return "a whole number"
    return "a number" if isinstance(default, float) else "a value"


def _variable(name: str) -> str:
    return f"QA_{name.upper()}"
