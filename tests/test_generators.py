"""The generator backends: the embedded llama.cpp model and an OpenAI-compatible
server, here a real ``python -m llama_cpp.server`` on 127.0.0.1 with the tiny
packaged model, started for this module and stopped after it (even on failure)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.errors import GeneratorUnavailableError
from qa.generation import Generator
from qa.generators import backend_name, make_generator
from qa.generators.openai_server import OpenAIGenerator
from qa.models.files import resolve_generator
from qa.settings import Settings
from tests.servers import free_port, llama_server

KEY = "sk-test-3f9a1c77e2"  # what the server accepts; must never show in an error or a log
MESSAGES = [{"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tiny_model() -> Path:
    return resolve_generator("tiny", Settings.from_env().cache_dir)


@pytest.fixture(scope="module")
def server_url(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server(tiny_model, port, log, api_key=KEY):
        yield f"http://127.0.0.1:{port}/v1"


def _remote(url: str, key: str | None = KEY, **options: object) -> OpenAIGenerator:
    settings = Settings.from_env()
    return OpenAIGenerator(url, "tiny", key, "tiny", settings.cache_dir, **options)  # type: ignore[arg-type]


def test_the_url_chooses_the_backend():
    assert backend_name(Settings()) == "llama"
    assert isinstance(make_generator(Settings()), Generator)
    remote = make_generator(Settings().replace(generator_url="http://gpu-box:8000/v1", generator_api_key=KEY))
    assert isinstance(remote, OpenAIGenerator)
    assert KEY not in repr(remote) and KEY not in repr(Settings().replace(generator_api_key=KEY))


def test_server_streams_the_same_reply_as_in_process(server_url, tiny_model):
    remote = _remote(server_url)
    pieces = list(remote.stream_chat(MESSAGES, max_tokens=24))
    local = Generator(str(tiny_model), Settings.from_env().cache_dir, n_threads=1)
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces) == "".join(local.stream_chat(MESSAGES, max_tokens=24))
    assert remote.count_tokens("Sergei Lavrov met Hanafi.") == local.count_tokens("Sergei Lavrov met Hanafi.")


def test_a_refused_key_is_one_line_without_the_key(server_url, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GeneratorUnavailableError) as raised:
        list(_remote(server_url, key="sk-wrong-key-0042").stream_chat(MESSAGES, max_tokens=4))
    message = str(raised.value)
    assert "refused the API key" in message and "QA_GENERATOR_API_KEY" in message
    assert "\n" not in message and "sk-wrong-key-0042" not in message
    assert "sk-wrong-key-0042" not in caplog.text and KEY not in caplog.text


def test_a_server_that_is_down_is_one_clear_line():
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(GeneratorUnavailableError, match="cannot be reached .*after 2 attempts.*start it"):
        list(_remote(down, retries=1).stream_chat(MESSAGES))


def test_a_server_that_never_answers_times_out():
    # A listening socket that never replies stands in for a hung server.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
        with pytest.raises(GeneratorUnavailableError, match="sent nothing for 1 s.*QA_GENERATOR_TIMEOUT"):
            list(_remote(url, timeout=1.0, retries=0).stream_chat(MESSAGES))


def test_the_web_chat_stays_up_when_the_server_is_down(tmp_path, embedder, settings, seed_copy):
    from qa.pipeline import Assistant
    from qa.web.app import Asked, ChatApp

    down = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings.replace(index_dir=tmp_path / "index", generator_url=down, generator_retries=0,
                                generator_path="tiny")
    app = ChatApp(Assistant.from_folder(seed_copy, tmp_path / "index", settings=settings), settings)
    asked = Asked("Who leads the Taliban delegation?", chat=0, chat_id="")
    shown = [html for html, _ in app._stream(asked, [])]
    assert "cannot be reached" in shown[-1]
    app.warm_up()  # a warm-up that fails leaves a status line, not a dead app
    assert app.ready.is_set() and "cannot be reached" in app.warmup_error


def test_two_questions_at_once_over_one_server(server_url):
    remote, replies = _remote(server_url), []
    threads = [threading.Thread(target=lambda: replies.append("".join(remote.stream_chat(MESSAGES, 8))))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(replies) == 2 and replies[0] == replies[1] and replies[0]


@pytest.mark.slow
def test_end_to_end_over_a_server_with_the_default_model(tmp_path, embedder, settings, seed_copy):
    """The default model behind llama.cpp's server answers and cites as it does in-process."""
    from qa.pipeline import Assistant

    model = resolve_generator(None, settings.cache_dir)
    port = free_port()
    with llama_server(model, port, tmp_path / "server.log", threads=2):
        settings = settings.replace(index_dir=tmp_path / "index", generator_url=f"http://127.0.0.1:{port}/v1")
        assistant = Assistant.from_folder(seed_copy, tmp_path / "index", settings=settings)
        answer = assistant.ask("Who leads the Taliban delegation?")
    assert "Hanafi" in answer.text and answer.citations and not answer.abstained


_RESIDENT_MODEL_PAGES = """
import sys
from qa.generation import Generator
from qa.settings import Settings

model = sys.argv[1]
generator = Generator("tiny", Settings.from_env().cache_dir, n_ctx=256, n_threads=1)
generator.llm  # loaded
mapped, resident_kb, inside = False, 0, False
for line in open("/proc/self/smaps").read().splitlines():
    if "-" in line.split(" ")[0] and ":" not in line.split(" ")[0]:  # a mapping's header line
        inside = line.endswith(model)
        mapped = mapped or inside
    elif inside and line.startswith("Rss:"):
        resident_kb += int(line.split()[1])
answer = "".join(generator.stream_chat([{"role": "user", "content": "Say yes."}], max_tokens=2))
print(mapped, resident_kb, answer != "")
"""


def test_the_embedded_model_is_mapped_and_its_pages_given_back_once_loaded(tiny_model):
    """llama.cpp copies most weights into repacked buffers; a mapped file would keep the
    pages they came from resident too (0.6 GB for the default model), and a file read
    into memory keeps the whole embedding table. Once loaded, the mapping holds almost
    nothing resident, and the model still answers (its pages come back as it reads
    them). In a child process, so no other test's load of the same file is seen."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _RESIDENT_MODEL_PAGES, str(tiny_model)],
                          capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent, check=True)
    mapped, resident_kb, generated = done.stdout.split()
    assert mapped == "True" and generated == "True"
    assert int(resident_kb) * 1024 < 0.1 * tiny_model.stat().st_size


def test_choice_odds_are_the_first_token_s_and_rank_as_the_greedy_reply(tiny_model):
    """The odds are read by token id from the sampler's logits: their top choice is the
    one greedy decoding under the same yes/no grammar picks, and they sum to one."""
    from qa.checks.judge import NO, YES, YES_NO

    local = Generator(str(tiny_model), Settings.from_env().cache_dir, n_ctx=512, n_threads=1)
    for question in ("Is Paris the capital of France?", "Is the sea made of sand?"):
        messages = [{"role": "user", "content": f"{question} Reply yes or no."}]
        odds = local.choice_odds(messages, YES + NO)
        greedy = "".join(local.stream_chat(messages, max_tokens=2, grammar=YES_NO, keep_state=False))
        assert abs(sum(odds.values()) - 1) < 1e-6
        assert greedy.strip().startswith(max(odds, key=odds.get))
