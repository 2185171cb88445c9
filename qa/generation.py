"""The local generator: llama-cpp-python over a GGUF file, loaded lazily and once.

The model's own chat template formats the messages. Calls are serialised (one
model, one context); because every prompt starts with the same system message,
llama.cpp reuses that prefix from its KV cache instead of recomputing it.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qa.errors import ModelError
from qa.models import resolve_generator

Message = dict[str, str]


class Generator:
    def __init__(self, model_path: str | None, cache_dir: Path, n_ctx: int = 4096,
                 n_threads: int = 2, temperature: float = 0.0, max_tokens: int = 256):
        self._model_path = model_path
        self.cache_dir = cache_dir
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.temperature = temperature
        self.max_tokens = max_tokens
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

    def stream_chat(self, messages: list[Message], max_tokens: int | None = None) -> Iterator[str]:
        """Text pieces of the reply, as the model produces them."""
        with self.lock:
            stream = self.llm.create_chat_completion(
                messages=messages,
                stream=True,
                temperature=self.temperature,
                top_k=1 if self.temperature == 0 else 40,
                max_tokens=max_tokens or self.max_tokens,
                repeat_penalty=1.0,
            )
            for event in stream:
                piece = event["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def _load(self) -> Any:
        return open_llama(resolve_generator(self._model_path, self.cache_dir), n_ctx=self.n_ctx,
                          n_threads=self.n_threads, n_threads_batch=self.n_threads, n_batch=512)


def open_llama(path: Path, purpose: str = "", **params: Any) -> Any:
    """A quiet ``Llama`` over ``path`` (AMX-guarded); a bad file is one line naming it."""
    from llama_cpp import Llama

    try:
        with contextlib.redirect_stderr(io.StringIO()), _without_amx_buffers_if_built_with_amx():
            return Llama(model_path=str(path), verbose=False, **params)
    except (ValueError, RuntimeError, OSError) as error:
        raise ModelError(
            f"Cannot load the generator model {path}{purpose}: the file is corrupt or not a "
            f"llama.cpp model ({error}). Point QA_GENERATOR_PATH at a valid .gguf file."
        ) from error


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
