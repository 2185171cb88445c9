"""The stamp that lets a verified model file skip hashing on later runs."""

from qa.models.files import is_stamped, write_stamp


def test_a_stamp_holds_only_while_the_file_is_unchanged(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    assert not is_stamped(model)
    write_stamp(model, "abc123")
    assert is_stamped(model) and is_stamped(model, "abc123")
    assert not is_stamped(model, "another-hash")
    model.write_bytes(b"other weights")
    assert not is_stamped(model)
