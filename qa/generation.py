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
        path = resolve_generator(self._model_path, self.cache_dir)
        from llama_cpp import Llama

        try:
            with contextlib.redirect_stderr(io.StringIO()):
                return Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                             n_threads_batch=self.n_threads, n_batch=512, verbose=False)
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelError(
                f"Cannot load the generator model {path}: the file is corrupt or not a "
                f"llama.cpp model ({error}). Point QA_GENERATOR_PATH at a valid .gguf file."
            ) from error
