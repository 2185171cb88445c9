"""Generator backends behind one interface, chosen by configuration.

``llama`` (the default) runs llama-cpp-python in this process (``qa.generation``);
``openai`` sends the same chat messages to any OpenAI-compatible chat-completions
server (llama.cpp's own server, vLLM, Ollama, TGI), chosen by ``QA_GENERATOR_URL``,
so the model can live on another machine (a GPU server) shared by many web processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from qa.errors import ConfigurationError
from qa.settings import Settings

Message = dict[str, str]
BACKENDS = ("llama", "openai")


class ChatGenerator(Protocol):
    """What answering needs from a generator: prompt token counts (for the passage
    budget) and the reply to chat messages as text pieces, in order. A backend may also
    offer ``choice_odds(messages, choices)`` (the in-process one does): the judge then
    reads how likely a yes is instead of the greedy reply."""

    @property
    def loaded(self) -> bool: ...

    def count_tokens(self, text: str) -> int: ...

    def stream_chat(self, messages: list[Message], max_tokens: int | None = None,
                    grammar: str | None = None, keep_state: bool = True) -> Iterator[str]: ...

    def warm(self, messages: list[Message]) -> None: ...


def backend_name(settings: Settings) -> str:
    return "openai" if settings.generator.generator_url else "llama"


def make_generator(settings: Settings) -> ChatGenerator:
    """The configured backend; nothing loads or connects until first use."""
    if backend_name(settings) == "openai":
        from qa.generators.openai_server import OpenAIGenerator

        return OpenAIGenerator.from_settings(settings)
    from qa.generation import Generator

    chosen = settings.generator
    return Generator(chosen.generator_path, settings.cache_dir, n_ctx=chosen.n_ctx,
                     n_threads=settings.n_threads, temperature=chosen.temperature,
                     max_tokens=chosen.max_answer_tokens, state_cache_mb=chosen.state_cache_mb,
                     state_disk_mb=chosen.state_disk_mb, state_dir=chosen.state_dir)


def check_url(url: str) -> str:
    """A base URL the client can use, or one line saying what is wrong with it."""
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(
            f"QA_GENERATOR_URL must be an http(s) URL such as http://127.0.0.1:8000/v1, not {url!r}."
        )
    return url.rstrip("/")
