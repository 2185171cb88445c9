from qa.ingest.chunking import ChunkingConfig, chunk_document, sentence_spans
from qa.ingest.documents import load_document
from tests.conftest import SEED_FILE


def test_sentences_keep_quotes_and_abbreviations():
    text = "He said “It is done.” Then Mr. Smith left. Prices rose 2.5 percent. Done!"
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["He said “It is done.”", "Then Mr. Smith left.",
                         "Prices rose 2.5 percent.", "Done!"]


def test_chunk_spans_map_back_to_source(embedder):
    doc = load_document(SEED_FILE)
    chunks = chunk_document(doc, embedder.count_tokens, ChunkingConfig(max_tokens=64))
    assert len(chunks) > 5
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.start >= doc.body_start
        assert sum(embedder.count_tokens([chunk.text])) + 2 <= 64 or " " not in chunk.text


def test_chunks_cover_the_body_and_overlap(embedder):
    doc = load_document(SEED_FILE)
    chunks = chunk_document(doc, embedder.count_tokens, ChunkingConfig(max_tokens=100, overlap_sentences=1))
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    for start, end in sentence_spans(doc.text, doc.body_start):
        assert set(range(start, end)) <= covered
    overlaps = [a.end > b.start for a, b in zip(chunks, chunks[1:], strict=False)]
    assert any(overlaps)


def test_long_sentence_is_split_to_fit(embedder, tmp_path):
    path = tmp_path / "long.txt"
    path.write_text(" ".join(f"word{i}" for i in range(600)) + ".")
    doc = load_document(path)
    chunks = chunk_document(doc, embedder.count_tokens, ChunkingConfig(max_tokens=128))
    assert len(chunks) > 2
    for chunk in chunks:
        assert embedder.count_tokens([chunk.text])[0] + 2 <= 128
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_search_text_puts_the_title_in_front_only_when_asked():
    from qa.ingest.chunking import search_text

    assert search_text("Moscow talks", "Lavrov spoke.") == "Moscow talks. Lavrov spoke."
    assert search_text("Moscow talks", "Lavrov spoke.", with_title=False) == "Lavrov spoke."
    long_title = " ".join(["word"] * 100)
    assert len(search_text(long_title, "x").split()) == 25


def test_a_title_that_is_only_the_file_name_is_searched_unless_turned_off(tmp_path):
    from qa.ingest.chunking import document_search_text

    named = tmp_path / "xsum-38295789.txt"
    named.write_text("The ex-Reading defender denied the charges.\n")
    headed = tmp_path / "talks.txt"
    headed.write_text("date 2021-10-20 Moscow talks\nLavrov spoke.\n")
    by_name, by_header = load_document(named), load_document(headed)
    off = ChunkingConfig(file_name_title=False)
    assert document_search_text(by_name, "x.", ChunkingConfig()) == "xsum 38295789. x."
    assert document_search_text(by_name, "x.", off) == "x."
    assert document_search_text(by_header, "x.", off) == "Moscow talks. x."


def test_the_manifest_records_file_name_titles_only_when_off():
    assert "file_name_title" not in ChunkingConfig().as_dict()  # older indexes stay valid
    off = ChunkingConfig(file_name_title=False)
    assert ChunkingConfig.from_dict(off.as_dict()) == off
    assert ChunkingConfig.from_dict(ChunkingConfig().as_dict()).file_name_title is True
