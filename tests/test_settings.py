"""Settings are validated when they are loaded: a value that cannot work is one line
naming the variable and what to give instead."""

import pytest

from qa.errors import ConfigurationError
from qa.settings import GeneratorSettings, Settings, WebSettings


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("QA_FUSION", "max", "give one of convex, rrf"),
    ("QA_DOC_SCORE", "sum", "give one of chunk, document"),
    ("QA_VECTOR_BACKEND", "qdrant", "give one of faiss, milvus"),
    ("QA_CONTEXT_TOKEN_BUDGET", "-1", "out of range: give 64 or more"),
    ("QA_PORT", "70000", "out of range: give from 1 to 65535"),
    ("QA_PORT", "0", "out of range: give from 1 to 65535"),
    ("QA_GENERATOR_TIMEOUT", "-3", "out of range"),
    ("QA_CANDIDATES", "many", "give a whole number"),
])
def test_a_value_that_cannot_work_is_one_line_naming_the_variable(variable, value, says):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({variable: value})
    message = str(raised.value)
    assert message.startswith(f"{variable}=") and value in message and says in message
    assert "\n" not in message


def test_valid_values_load_with_their_types():
    settings = Settings.from_env({"QA_FUSION": "rrf", "QA_PORT": "8080", "QA_CONTEXT_TOKEN_BUDGET": "900",
                                  "QA_VECTOR_BACKEND": "milvus", "QA_CHUNK_WITH_TITLE": "no"})
    assert (settings.retrieve.fusion, settings.web.port) == ("rrf", 8080)
    assert settings.reader.context_token_budget == 900
    assert settings.index.vector_backend == "milvus" and settings.index.chunk_with_title is False


def test_overrides_by_name_reach_their_group_and_are_checked_there():
    settings = Settings.from_env({"QA_CANDIDATES": "12"}, n_threads=1, fusion="rrf", judge="off")
    assert (settings.n_threads, settings.retrieve.fusion, settings.checks.judge) == (1, "rrf", "off")
    assert settings.retrieve.candidates == 12  # the variable stays beside the override in the same group
    assert settings.replace(port=8081).web == WebSettings(port=8081)
    with pytest.raises(ConfigurationError, match="QA_DENSE_WEIGHT=1.5 is out of range: give from 0 to 1"):
        settings.replace(dense_weight=1.5)
    with pytest.raises(ConfigurationError, match="QA_PORT=0 is out of range"):
        WebSettings(port=0)  # a group made by hand is checked too
    with pytest.raises(ConfigurationError, match="Unknown setting 'top_k'"):
        settings.replace(top_k=5)


def test_none_resets_an_optional_setting_and_is_refused_for_one_that_needs_a_value():
    remote = Settings.from_env({"QA_GENERATOR_URL": "http://gpu-box:8000/v1", "QA_AUTH": "ana:pw"})
    assert remote.generator.generator_url == "http://gpu-box:8000/v1"
    local = remote.replace(generator_url=None, auth=None)
    assert local.generator.generator_url is None and local.web.auth is None
    assert local.generator == GeneratorSettings() and local.web == WebSettings()
    with pytest.raises(ConfigurationError) as raised:
        remote.replace(n_threads=None)
    assert str(raised.value).startswith("QA_N_THREADS cannot be None: give a whole number")
