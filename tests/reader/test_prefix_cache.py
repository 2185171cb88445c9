"""The prompt cache keeps one state per document set: the boundary is where the
documents end (fake token ids and states: the rule is what is tested; the restore on
the real model is tests/reader/test_document_reader.py)."""

from __future__ import annotations

from dataclasses import dataclass

from qa.generation import PrefixCache

FIXED = tuple(range(500))  # rules and worked examples: shared by every reader prompt
END = 9_999  # stands for "</documents>"


@dataclass
class _State:
    llama_state_size: int = 1


def _prompt(document: int, question: int) -> tuple[int, ...]:
    return (*FIXED, *([document] * 300), END, question, question + 1)


def _boundary(key: tuple[int, ...]) -> list[int]:
    return [key.index(END) + 1] if END in key else []


def test_a_new_question_replaces_its_documents_older_state_but_not_another_documents():
    cache = PrefixCache(1 << 30, _boundary)
    cache[_prompt(1, 10)] = _State()
    cache[_prompt(2, 10)] = _State()  # another short document: same fixed part, kept apart
    assert len(cache.cache_state) == 2
    cache[_prompt(1, 20)] = _State()  # the first document asked again: one state for it
    assert len(cache.cache_state) == 2 and _prompt(1, 20) in cache.cache_state
    cache[(*FIXED, 7, 7)] = _State()  # a prompt without documents replaces nothing
    assert len(cache.cache_state) == 3


def test_a_documents_block_ends_inside_a_token_that_runs_on():
    """The default model reads ``>\\n\\n`` as one token: the boundary is the token that
    completes the marker (the real vocabulary, nothing else of the model loaded)."""
    from llama_cpp import Llama

    from qa.generation import documents_ends
    from qa.models.files import resolve_generator
    from qa.settings import Settings

    settings = Settings.from_env()
    llm = Llama(model_path=str(resolve_generator(None, settings.cache_dir)), vocab_only=True, verbose=False)
    prompt = b"<documents>\n[1] The depot.\n</documents>\n\nQuestion: Who?"
    tokens = tuple(llm.tokenize(prompt, add_bos=False, special=True))
    ends = documents_ends(llm, tokens)
    assert len(ends) == 1
    assert llm.detokenize(list(tokens[: ends[0]])).rstrip().endswith(b"</documents>")
