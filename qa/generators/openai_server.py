"""The ``openai`` generator backend: any OpenAI-compatible chat-completions server.

The ``openai`` client library does the HTTP: streaming (server-sent events),
timeouts, and bounded retries with backoff for refused connections, 429s and
5xxs. Every failure becomes one ``GeneratorUnavailableError`` line that names
the server and what to change; the API key never appears in it, nor in logs.

Prompt tokens are counted with the vocabulary of the local copy of the model
(``QA_GENERATOR_PATH``, default the packaged GGUF, loaded vocabulary-only: no
weights in memory), so passages are cut to the same budget as in-process and
the fixed prompt prefix is byte-identical on every request, which keeps it in
the server's prompt cache (llama.cpp server, vLLM prefix caching).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from qa.errors import GeneratorUnavailableError
from qa.generation import open_llama
from qa.generators import Message, check_url
from qa.models.files import resolve_generator
from qa.settings import Settings

CONNECT_TIMEOUT = 5.0  # seconds to open a connection; a down server fails fast


class OpenAIGenerator:
    def __init__(self, url: str, model: str, api_key: str | None, tokenizer_path: str | None,
                 cache_dir: Path, timeout: float = 60.0, retries: int = 2,
                 temperature: float = 0.0, max_tokens: int = 256):
        self.url = check_url(url)
        self.model = model
        self.timeout = timeout
        self.retries = retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._tokenizer_path = tokenizer_path
        self._cache_dir = cache_dir
        self._client: Any = None
        self._vocabulary: Any = None
        self._load_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIGenerator:
        chosen = settings.generator
        assert chosen.generator_url
        return cls(chosen.generator_url, chosen.generator_model, chosen.generator_api_key,
                   chosen.generator_path, settings.cache_dir, timeout=chosen.generator_timeout,
                   retries=chosen.generator_retries, temperature=chosen.temperature,
                   max_tokens=chosen.max_answer_tokens)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIGenerator(url={shown_url(self.url)!r}, model={self.model!r})"

    @property
    def loaded(self) -> bool:
        return self._vocabulary is not None

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer().tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream_chat(self, messages: list[Message], max_tokens: int | None = None,
                    grammar: str | None = None, keep_state: bool = True) -> Iterator[str]:
        """Text pieces of the reply as the server streams them. ``grammar`` goes as
        llama.cpp's server reads it; other servers ignore it (the reply parser takes
        a near form)."""
        import openai

        extra = {"top_k": 1 if self.temperature == 0 else 40, "repeat_penalty": 1.0}
        if grammar:
            extra["grammar"] = grammar
        try:
            stream = self._openai().chat.completions.create(
                model=self.model, messages=messages, stream=True, temperature=self.temperature,
                max_tokens=max_tokens or self.max_tokens,
                # Greedy and unpenalised like the in-process backend; llama.cpp's server and vLLM
                # read these, servers that do not know them ignore them.
                extra_body=extra,
            )
            with contextlib.closing(stream):
                for event in stream:
                    piece = event.choices[0].delta.content if event.choices else None
                    if piece:
                        yield piece
        except openai.APIError as error:
            raise self._unavailable(error) from None
        except Exception as error:  # httpx errors raised while reading the stream
            if type(error).__module__.startswith(("httpx", "httpcore")):
                raise self._unavailable(error) from None
            raise

    def warm(self, messages: list[Message]) -> None:
        """The server keeps its own prompt cache: one token evaluates the prefix there."""
        for _ in self.stream_chat(messages, max_tokens=1):
            pass

    def _openai(self) -> Any:
        with self._load_lock:
            if self._client is None:
                import httpx
                import openai

                self._client = openai.OpenAI(
                    base_url=self.url, api_key=self._api_key or "none", max_retries=self.retries,
                    timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout)))
        return self._client

    def _tokenizer(self) -> Any:
        with self._load_lock:
            if self._vocabulary is None:
                path = resolve_generator(self._tokenizer_path, self._cache_dir)
                self._vocabulary = open_llama(
                    path, " (its vocabulary counts prompt tokens for the generator server: the GGUF "
                    "the server runs)", vocab_only=True)
        return self._vocabulary

    def _unavailable(self, error: Exception) -> GeneratorUnavailableError:
        """One line that says what to do; built from the error's kind and status only,
        so neither the key nor a server's echo of the request can leak into it."""
        import openai

        where = f"The generator server at {shown_url(self.url)}"
        attempts = f"after {self.retries + 1} attempts" if self.retries else "at once"
        if isinstance(error, openai.APITimeoutError) or "Timeout" in type(error).__name__:
            return GeneratorUnavailableError(
                f"{where} sent nothing for {self.timeout:g} s ({attempts}): check that it is not "
                "overloaded, or raise QA_GENERATOR_TIMEOUT.")
        if isinstance(error, openai.APIConnectionError) or not isinstance(error, openai.APIStatusError):
            return GeneratorUnavailableError(
                f"{where} cannot be reached ({attempts}): start it, or set QA_GENERATOR_URL to "
                "where it listens.")
        status = error.status_code
        if status in (401, 403):
            return GeneratorUnavailableError(
                f"{where} refused the API key (HTTP {status}): set QA_GENERATOR_API_KEY to a key it "
                "accepts.")
        if status == 404:
            return GeneratorUnavailableError(
                f"{where} does not serve the model {self.model!r} (HTTP 404): set QA_GENERATOR_MODEL "
                "to one it lists under /models.")
        return GeneratorUnavailableError(
            f"{where} answered HTTP {status} ({attempts}): its log says why; questions work again "
            "once it answers.")


def shown_url(url: str) -> str:
    """The URL without any user:password part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
