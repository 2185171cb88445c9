
from qa.citations import is_refusal, parse_markers


def test_parse_markers_handles_lists():
    assert parse_markers("A [1] and B [2, 3][3].") == [1, 2, 3, 3]


def test_refusal_detection():
    assert is_refusal("The documents do not say.")
    assert is_refusal("The passages don't mention his age.")
    assert not is_refusal("Hanafi leads the delegation [2].")


