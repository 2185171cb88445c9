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


def test_state_files_keep_to_their_budget_oldest_out(tmp_path):
    """Plain arrays stand in for llama.cpp states: the file handling is what is tested."""
    import os

    import numpy as np

    from qa.prompt_states import StateFiles

    class State:
        def __init__(self, tokens: list[int]):
            self.input_ids = np.array(tokens + [0] * 8, np.intc)
            self.scores = np.zeros((1, 4), np.single)
            self.n_tokens, self.seed = len(tokens), 7
            self.llama_state = bytes(200_000)

    files = StateFiles(tmp_path, capacity_bytes=300_000)  # room for one state, under two names
    first = files.save([[1, 2, 3], [1, 2]], State([1, 2, 3]))
    assert first is not None and files.load([1, 2]) is not None and files.load([1, 2, 3]).n_tokens == 3
    os.utime(first, (1, 1))  # long unused
    files.save([[4, 5, 6]], State([4, 5, 6]))  # over the budget: the oldest out, with both its names
    assert files.load([4, 5, 6]) is not None
    assert files.load([1, 2, 3]) is None and files.load([1, 2]) is None
    assert files.load([9, 9]) is None
    for damaged in (b"", b"PK\x03\x04 cut short", b"not a state"):
        path = files.save([[7, 8]], State([7, 8]))
        path.write_bytes(damaged)
        assert files.load([7, 8]) is None and not path.exists()  # dropped, never raised
    full = StateFiles(tmp_path / "missing" / "deeper", 300_000)
    (tmp_path / "missing").write_text("a file where the folder should be")
    assert full.save([[1]], State([1])) is None  # the disk refused it: no error
