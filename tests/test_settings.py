"""Settings are validated when they are loaded: a value that cannot work is one line
naming the variable and what to give instead."""

import pytest

from qa.errors import ConfigurationError
from qa.settings import Settings


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("QA_FUSION", "max", "give one of convex, rrf"),
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
    assert (settings.fusion, settings.port, settings.context_token_budget) == ("rrf", 8080, 900)
    assert settings.vector_backend == "milvus" and settings.chunk_with_title is False
