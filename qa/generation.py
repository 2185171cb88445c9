"""The local generator: llama-cpp-python over a GGUF file, loaded lazily and once.

The model's own chat template formats the messages. Calls are serialised (one
model, one context); because every prompt starts with the same system message,
llama.cpp reuses that prefix from its KV cache instead of recomputing it. The
document reader's prompts also share the documents shown: ``PrefixCache`` keeps
the evaluated state of each document set, so a question about a document asked
about before (or warmed) costs only its own tokens, whatever came in between
(the judge's one-off prompts are kept out of it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.errors import ModelError
from qa.models.files import resolve_generator
from qa.models.mapped import release_mapped_pages
from qa.prompt_states import StateFiles

Message = dict[str, str]
log = logging.getLogger(__name__)


class Generator:
    def __init__(self, model_path: str | None, cache_dir: Path, n_ctx: int = 4096,
                 n_threads: int = 2, temperature: float = 0.0, max_tokens: int = 256,
                 state_cache_mb: int = 80, state_disk_mb: int = 2048, state_dir: Path | None = None):
        self._model_path = model_path
        self.cache_dir = cache_dir
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.state_cache_mb = state_cache_mb
        self.state_disk_mb = state_disk_mb
        self.state_dir = state_dir or cache_dir / "states"
        self._files: StateFiles | None = None
        self._llm: Any = None
        self._load_lock = threading.Lock()
        self.lock = threading.Lock()  # held while generating: one request at a time

    @property
    def llm(self) -> Any:
        with self._load_lock:
            if self._llm is None:
                self._llm = self._load()
        return self._llm

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(self, messages: list[Message], max_tokens: int | None = None,
                    grammar: str | None = None, keep_state: bool = True) -> Iterator[str]:
        """Text pieces of the reply, as the model produces them; ``grammar`` (GBNF)
        constrains the form of the reply; ``keep_state=False`` keeps its state out of the
        prefix cache (a one-off prompt such as the judge's must not evict documents)."""
        with self.lock, self._cache_off(not keep_state):
            yield from self._complete(messages, max_tokens, grammar)

    def _complete(self, messages: list[Message], max_tokens: int | None, grammar: str | None
                  ) -> Iterator[str]:
        """One completion; the caller holds the lock."""
        stream = self.llm.create_chat_completion(
            messages=messages,
            stream=True,
            temperature=self.temperature,
            top_k=1 if self.temperature == 0 else 40,
            max_tokens=max_tokens or self.max_tokens,
            repeat_penalty=1.0,
            grammar=_grammar(grammar) if grammar else None,
        )
        for event in stream:
            piece = event["choices"][0]["delta"].get("content")
            if piece:
                yield piece

    def choice_odds(self, messages: list[Message], choices: Sequence[str]) -> dict[str, float] | None:
        """How likely the reply starts with each of ``choices`` (their first tokens' share
        of the probability the model gives them all): a graded yes/no, where the greedy
        reply alone hides how close the call was. None if no token was sampled."""
        import numpy as np

        llm = self.llm
        firsts = {c: llm.tokenize(c.encode("utf-8"), add_bos=False, special=False)[0] for c in choices}
        seen: list[Any] = []

        def capture(_ids: Any, scores: Any) -> Any:
            if not seen:
                seen.append(np.array(scores, dtype=np.float64))
            return scores

        with self.lock, self._cache_off(True):
            llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0, top_k=1,
                                       logits_processor=[capture])
        if not seen:
            return None
        logits = np.array([seen[0][firsts[c]] for c in choices])
        weights = np.exp(logits - logits.max())
        return dict(zip(choices, (weights / weights.sum()).tolist(), strict=True))

    @contextlib.contextmanager
    def _cache_off(self, off: bool) -> Iterator[None]:
        cache = self.llm.cache
        if off:
            self.llm.cache = None
        try:
            yield
        finally:
            self.llm.cache = cache

    def warm(self, messages: list[Message]) -> None:
        """Evaluate ``messages`` (a prompt up to its question) and keep the state, so the
        next prompt that starts the same way only evaluates what follows, in this process
        and (written to disk) in the next one. All under the lock: an answer finishing
        meanwhile is neither written to disk nor marked as this warm."""
        llm = self.llm
        with self.lock:
            cache = llm.cache
            if not isinstance(cache, PrefixCache):
                for _ in self._complete(messages, 1, None):
                    pass
                return
            with cache.persisting():
                for _ in self._complete(messages, 1, None):
                    pass
                saved = cache.saved
            if saved is not None and self.state_files is not None:
                self.state_files.mark(_digest(messages), saved)

    def is_warm(self, messages: list[Message]) -> bool:
        """Whether ``messages`` were warmed (here or by an earlier process) and their
        state is still kept on disk: a prompt starting with them costs only what follows."""
        files = self.state_files
        return files is not None and files.marked(_digest(messages))

    @property
    def state_files(self) -> StateFiles | None:
        if self._files is None and self.state_disk_mb > 0 and self.state_cache_mb > 0:
            path = resolve_generator(self._model_path, self.cache_dir)
            self._files = StateFiles.for_model(self.state_dir, path, self.n_ctx,
                                               self.state_disk_mb << 20)
        return self._files

    def _load(self) -> Any:
        # Mapped, then the mapping's pages given back: llama.cpp repacks most weights into
        # its own buffers for the AVX kernels, and the pages it read them from would stay
        # resident beside the copies; of the weights it reads in place, the embedding
        # table is touched only at the prompt's tokens (1.23 GB for the 1.5B model, against
        # 1.34 GB read into memory and 1.93 GB mapped: README, "Measured figures").
        path = resolve_generator(self._model_path, self.cache_dir)
        llm = open_llama(path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                         n_threads_batch=self.n_threads, n_batch=512, use_mmap=True)
        release_mapped_pages(path)
        if self.state_cache_mb > 0:
            llm.set_cache(PrefixCache(self.state_cache_mb << 20, lambda key: documents_ends(llm, key),
                                      self.state_files, held=lambda: llm.input_ids[: llm.n_tokens].tolist()))
        return llm


def _digest(messages: list[Message]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _grammar(text: str) -> Any:
    from llama_cpp import LlamaGrammar

    with contextlib.redirect_stderr(io.StringIO()):
        return LlamaGrammar.from_string(text, verbose=False)


class PrefixCache:
    """llama-cpp-python's prompt cache, one state per document set, least recently used out.

    ``Llama`` saves the state after each completion and, before the next, loads the
    kept state sharing the longest prefix with the new prompt when it beats what
    the context already holds. States of one document set differ only after its
    documents block (``boundaries``: the token indexes just past each
    ``</documents>``, the last one ending the question's documents), so a new state
    replaces the kept ones that share everything up to there: memory grows with
    the documents, not the questions. A state saved while ``persisting`` (a warm)
    is also written to ``files`` under its last two boundaries (the documents, and
    the rules and examples before them), and a prompt whose kept states share less
    than one of its boundaries looks there.
    """

    def __init__(self, capacity_bytes: int, boundaries: Callable[[tuple[int, ...]], list[int]],
                 files: StateFiles | None = None, held: Callable[[], Sequence[int]] | None = None):
        from llama_cpp.llama_cache import LlamaRAMCache

        self._cache = LlamaRAMCache(capacity_bytes)
        self._boundaries = boundaries
        self._files = files
        self._held = held  # the tokens in the context now: no file is read for what it holds
        self._ends: dict[tuple[int, ...], int | None] = {}
        self._persist = False
        self.saved: Path | None = None  # the file the last persisted state went to

    @contextlib.contextmanager
    def persisting(self) -> Iterator[None]:
        self._persist, self.saved = True, None
        try:
            yield
        finally:
            self._persist = False

    @property
    def cache_state(self) -> Any:
        return self._cache.cache_state

    @property
    def cache_size(self) -> int:
        return self._cache.cache_size

    def __getitem__(self, key: Any) -> Any:
        from llama_cpp import Llama

        key = tuple(key)
        try:
            kept = self._cache[key]
            shared = Llama.longest_token_prefix(kept.input_ids[: kept.n_tokens].tolist(), key)
        except KeyError:
            kept, shared = None, 0
        if self._files is not None and self._held is not None:  # what the context already holds
            shared = max(shared, Llama.longest_token_prefix(self._held(), key))
        for end in reversed(self._boundaries(key) if self._files is not None else []):
            if end <= shared:
                break
            state = self._files.load(key[:end])  # type: ignore[union-attr]
            if state is not None:
                self[tuple(state.input_ids[: state.n_tokens].tolist())] = state
                return state
        if kept is None:
            raise KeyError("no kept state shares a prefix with the prompt")
        return kept

    def __contains__(self, key: Any) -> bool:
        return key in self._cache

    def __setitem__(self, key: Any, value: Any) -> None:
        from llama_cpp import Llama

        key = tuple(key)
        ends = self._boundaries(key)
        end = ends[-1] if ends else None
        for kept in list(self._cache.cache_state):
            if end is not None and self._end(kept) == end and Llama.longest_token_prefix(kept, key) >= end:
                del self._cache.cache_state[kept]
        self._cache[key] = value
        self._ends = {k: self._ends.get(k) for k in self._cache.cache_state if k != key} | {key: end}
        if self._persist and self._files is not None and ends:
            self.saved = self._files.save([key[:e] for e in reversed(ends[-2:])], value)

    def _end(self, key: tuple[int, ...]) -> int | None:
        if key not in self._ends:
            ends = self._boundaries(key)
            self._ends[key] = ends[-1] if ends else None
        return self._ends[key]


def documents_ends(llm: Any, tokens: tuple[int, ...], marker: bytes = b"</documents>") -> list[int]:
    """The token indexes just past each token that completes a ``</documents>`` of a
    prompt (the marker's last character may share a token with what follows: Qwen
    reads ``>\n\n`` as one)."""
    text = bytearray()
    ends = []
    searched = 0
    for index, token in enumerate(tokens):
        piece = llm.detokenize([token])
        text += piece
        found = text.find(marker, max(searched, len(text) - len(piece) - len(marker)))
        if found >= 0:
            ends.append(index + 1)
            searched = found + len(marker)
    return ends


def open_llama(path: Path, purpose: str = "", **params: Any) -> Any:
    """A quiet ``Llama`` over ``path`` (AMX-guarded); a bad file is one line naming it."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), _without_amx_buffers_if_built_with_amx():
            return _llama_class()(model_path=str(path), verbose=False, **params)
    except (ValueError, RuntimeError, OSError) as error:
        raise ModelError(
            f"Cannot load the generator model {path}{purpose}: the file is corrupt or not a "
            f"llama.cpp model ({error}). Point QA_GENERATOR_PATH at a valid .gguf file."
        ) from error


@functools.cache
def _no_scores(n_vocab: int) -> Any:
    """One row of zeros, shared by every light state (``load_state`` copies it)."""
    import numpy as np

    return np.zeros((1, n_vocab), np.single)


@functools.cache
def _llama_class() -> type:
    """``Llama`` whose saved states leave out the logits table: with ``logits_all`` off
    (the default) sampling never reads it back, yet the stock ``save_state`` copies
    512 x vocabulary floats (311 MB for Qwen2.5) on every cached completion."""
    import ctypes

    from llama_cpp import Llama, LlamaState, llama_cpp

    class LightStateLlama(Llama):
        def load_state(self, state: LlamaState) -> None:
            """A state llama.cpp refuses (written by another build or context) leaves
            nothing half-loaded: the context starts empty and the prompt is evaluated."""
            try:
                if self._logits_all:
                    super().load_state(state)
                else:
                    self._load_context_state(state)
            except RuntimeError:
                log.warning("a kept prompt state did not fit this context; evaluating afresh")
                self.reset()
                self._ctx.kv_cache_clear()

        def _load_context_state(self, state: LlamaState) -> None:
            """The stock ``load_state`` writes the saved logits over the whole table
            (512 x vocabulary floats): 311 MB made resident and a few tenths of a
            second on every load, for rows nothing reads with ``logits_all`` off. The
            context's bytes are handed to llama.cpp in place rather than copied."""
            self.input_ids = state.input_ids.copy()
            self.n_tokens = state.n_tokens
            self._requires_eval = True
            self._seed = state.seed
            source = ctypes.cast(ctypes.c_char_p(state.llama_state), ctypes.POINTER(ctypes.c_uint8))
            size = state.llama_state_size
            if llama_cpp.llama_state_set_data(self._ctx.ctx, source, size) != size:
                raise RuntimeError("Failed to set llama state data")

        def save_state(self) -> LlamaState:
            if self._logits_all:
                return super().save_state()
            size = llama_cpp.llama_state_get_size(self._ctx.ctx)
            buffer = (ctypes.c_uint8 * int(size))()
            written = int(llama_cpp.llama_state_get_data(self._ctx.ctx, buffer, size))
            return LlamaState(input_ids=self.input_ids.copy(), scores=_no_scores(self._n_vocab),
                              n_tokens=self.n_tokens, llama_state=ctypes.string_at(buffer, written),
                              llama_state_size=written, seed=self._seed)

    return LightStateLlama


def llama_system_info() -> str:
    """The CPU features the loaded llama.cpp library was compiled for."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()


def built_with_amx(system_info: str | None = None) -> bool:
    info = llama_system_info() if system_info is None else system_info
    return any(f"{name} = 1" in info for name in ("AMX_INT8", "AMX_BF16", "AMX_TILE"))


def cpu_features(system_info: str) -> str:
    """The instruction sets switched on, out of llama.cpp's system-info line."""
    parts = [part.strip() for part in system_info.replace("|", "\n").splitlines()]
    names = [part.split("=")[0].split(":")[-1].strip() for part in parts if part.endswith("= 1")]
    isa = [n for n in names if n.startswith(("AVX", "AMX", "FMA", "F16C", "SSE", "SSSE", "BMI"))]
    return " ".join(isa) or "none listed"


@contextlib.contextmanager
def _without_amx_buffers_if_built_with_amx() -> Iterator[None]:
    """Guard for a llama.cpp wheel built natively on an Intel Xeon (not by ``make``).

    Its AMX kernels segfault on the first generation (llama.cpp issue 20824);
    they only run through the extra (repacked) weight buffers, so a model
    loaded with ``use_extra_bufts=False`` never reaches them. ``Llama()`` does
    not expose that model parameter, so its default is changed for this one
    load. The portable build has no AMX and loads untouched.
    """
    if not built_with_amx():
        yield
        return
    import llama_cpp.llama as llama_module

    original = llama_module.llama_cpp.llama_model_default_params

    def params_without_extra_buffers() -> Any:
        params = original()
        params.use_extra_bufts = False
        return params

    llama_module.llama_cpp.llama_model_default_params = params_without_extra_buffers
    try:
        yield
    finally:
        llama_module.llama_cpp.llama_model_default_params = original
