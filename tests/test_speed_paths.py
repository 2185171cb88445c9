"""The fast paths: the onnx embedder agrees with torch and never mixes into a
torch index; a large index switches to IVF, says so in its manifest, and still
finds the right chunks."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexUnavailableError, ModelError
from qa.index import store as store_module
from qa.index.indexing import update_index
from qa.index.store import IndexStore, build_faiss, index_type_for
from qa.models.embedder import ONNX_NAME, Embedder
from qa.models.onnx import prepare_onnx_model
from qa.settings import Settings
from qa.types import Chunk, Document

TEXTS = [
    "Russia hosts the Taliban for talks in Moscow on Wednesday.",
    "Sergei Lavrov, Russia's seasoned foreign minister, is expected to speak at the event.",
    "Brussels has pledged one billion euros to avert a humanitarian calamity.",
    "The budget memo says the budget is 5 million dollars.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Who leads the Taliban delegation?",
    "a",
    " ".join(["word"] * 400),  # longer than the model reads: truncated alike by both backends
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache: Path) -> Embedder:
    return Embedder(backend="onnx", cache_dir=onnx_cache)


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The reference, named explicitly whatever the default backend becomes."""
    return Embedder(backend="torch")


# -- the onnx embedder ---------------------------------------------------------------------------


def test_onnx_vectors_agree_with_torch(torch_embedder, onnx_embedder):
    torch_vectors = torch_embedder.encode(TEXTS)
    onnx_vectors = onnx_embedder.encode(TEXTS)
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    assert onnx_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1, atol=1e-5)
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.985, cosine
    # what retrieval needs: the same nearest passage for the question
    question = 5
    assert np.argmax(onnx_vectors[:5] @ onnx_vectors[question]) == 0
    assert np.argmax(torch_vectors[:5] @ torch_vectors[question]) == 0


def test_a_text_has_one_vector_whatever_it_is_embedded_with(onnx_embedder):
    whole = onnx_embedder.encode(TEXTS)
    one_by_one = np.vstack([onnx_embedder.encode([t]) for t in TEXTS])
    reversed_order = onnx_embedder.encode(TEXTS[::-1])[::-1]
    assert np.array_equal(whole, one_by_one) and np.array_equal(whole, reversed_order)
    assert onnx_embedder.encode([]).shape == (0, 384)


def test_onnx_backend_never_imports_torch(onnx_cache, tmp_path):
    """Once the model is prepared (that one step runs torch), embedding never imports it."""
    import subprocess

    prepare_onnx_model(onnx_cache)

    code = ("import sys; from pathlib import Path; from qa.models.embedder import Embedder; "
            f"e = Embedder(backend='onnx', cache_dir=Path({str(onnx_cache)!r})); e.encode(['hello']); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_backends_record_different_names_and_never_mix(seed_copy, tmp_path, torch_embedder, onnx_embedder,
                                                       settings):
    assert onnx_embedder.name == ONNX_NAME != torch_embedder.name
    index_dir = tmp_path / "index"
    store = update_index([seed_copy], index_dir, onnx_embedder, settings).store
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["embedder"] == ONNX_NAME
    with pytest.raises(IndexUnavailableError, match="embedder"):  # opening for questions: refused
        IndexStore.load(index_dir, torch_embedder.name)
    # Updating with the other backend re-embeds everything: vectors of two models never mix.
    indexed = update_index([seed_copy], index_dir, torch_embedder, settings)
    switched, report = indexed.store, indexed.report
    assert report.chunks_embedded == len(switched) == len(store)
    assert IndexStore.load(index_dir).manifest.embedder == torch_embedder.name
    indexed = update_index([seed_copy], index_dir, torch_embedder, settings)
    again, report = indexed.store, indexed.report
    assert report.chunks_embedded == 0 and len(again) == len(store)


def test_onnx_backend_refuses_a_custom_model_path():
    with pytest.raises(ModelError, match="torch"):
        Embedder("/some/folder", backend="onnx")
    with pytest.raises(ModelError, match="backend"):
        Embedder(backend="tensorflow")


def test_prepared_model_is_reused_and_rebuilt_when_damaged(onnx_cache, onnx_embedder):
    onnx_embedder.encode(["warm"])
    path = prepare_onnx_model(onnx_cache)
    stamp_before = path.with_suffix(".onnx.sha256").read_text()
    assert prepare_onnx_model(onnx_cache) == path
    assert path.with_suffix(".onnx.sha256").read_text() == stamp_before  # not prepared again
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert stamp_before.split()[0] == digest
    path.write_bytes(b"damaged")
    assert prepare_onnx_model(onnx_cache) == path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest



def test_preparing_without_a_needed_package_says_what_to_do(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "onnx" else real(name, *rest))
    with pytest.raises(ModelError, match=r"needs onnx .*QA_EMBED_BACKEND=torch"):
        prepare_onnx_model(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing half-prepared left behind


def test_prepared_model_is_the_fused_int8_graph(onnx_cache, onnx_embedder):
    """The speed comes from the graph's shape: one quantised attention node per layer,
    integer matrix products, and no SkipLayerNormalization (its kernel is the slow one)."""
    import onnx

    onnx_embedder.encode(["warm"])
    ops = [node.op_type for node in onnx.load(str(prepare_onnx_model(onnx_cache))).graph.node]
    assert ops.count("QAttention") == 6
    assert ops.count("MatMulInteger") == 18 and ops.count("BiasGelu") == 6
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 12

def test_token_counts_are_remembered_and_exact(onnx_embedder, torch_embedder):
    counts = onnx_embedder.count_tokens(TEXTS[:5] + TEXTS[:2])
    assert counts == torch_embedder.count_tokens(TEXTS[:5] + TEXTS[:2])
    assert counts[5:] == counts[:2]
    assert counts[0] == len(onnx_embedder._get_tokenizer().encode(TEXTS[0], add_special_tokens=False).ids)


# -- the approximate index ---------------------------------------------------------------------------


def _clustered(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(count // 20, 1), 384)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), count)] + 0.5 * rng.standard_normal((count, 384))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _store_with(vectors: np.ndarray) -> IndexStore:
    documents = {f"d{i}": Document(doc_id=f"d{i}", title=f"D{i}", source=f"d{i}.txt", text="x" * 10,
                                   content_hash=str(i)) for i in range(len(vectors) // 10)}
    chunks = [Chunk(chunk_id=f"d{i // 10}:{i % 10}", doc_id=f"d{i // 10}", text="x", start=0, end=1)
              for i in range(len(vectors))]
    empty = IndexStore.empty("test-embedder", 384, {"max_tokens": 64})
    return empty.replace_contents(documents, chunks, vectors)


def test_small_index_stays_exact():
    assert index_type_for(store_module.APPROXIMATE_THRESHOLD - 1) == "flat"
    assert index_type_for(store_module.APPROXIMATE_THRESHOLD) == "ivf"
    store = _store_with(_clustered(200))
    assert store.manifest.index_type == "flat"
    assert store.search(store.vectors[7], 3)[0][0] == 7


def test_large_index_is_ivf_in_the_manifest_and_finds_what_exact_search_finds(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "APPROXIMATE_THRESHOLD", 2_000)
    vectors = _clustered(3_000)
    store = _store_with(vectors)
    assert store.manifest.index_type == "ivf"
    store.save(tmp_path / "index")
    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["index_type"] == "ivf"

    reopened = IndexStore.load(tmp_path / "index", "test-embedder")
    index = reopened.faiss_index
    assert type(index).__name__ == "IndexIVFScalarQuantizer" and index.ntotal == 3_000
    assert index.nprobe == store_module.ivf_probes(store_module.ivf_lists(3_000))  # kept in the file

    exact = build_faiss(vectors, "flat")
    queries = _clustered(50, seed=1)
    overlap = []
    for query in queries:
        found = reopened.search(query, 10)
        scores = [s for _, s in found]
        assert len(found) == 10 and scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= s <= 1.0001 for s in scores)  # cosines, as the retriever expects
        _, truth = exact.search(query.reshape(1, -1), 10)
        overlap.append(len({r for r, _ in found} & set(truth[0].tolist())) / 10)
    assert np.mean(overlap) >= 0.95
    row, score = reopened.search(vectors[123], 1)[0]
    assert row == 123 and score == pytest.approx(1.0, abs=1e-4)


def test_ivf_parameters_scale_with_the_index():
    assert store_module.ivf_lists(1_000_000) == 1000
    assert store_module.ivf_probes(1000) == 350
    assert store_module.ivf_lists(100) == 2  # every list trained on at least 39 vectors
    assert store_module.ivf_probes(2) == 2


def test_search_works_from_other_threads():
    from concurrent.futures import ThreadPoolExecutor

    store = _store_with(_clustered(300))
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda row: store.search(store.vectors[row], 1)[0][0], range(20)))
    assert found == list(range(20))


def test_embedder_follows_the_backend_setting(settings, onnx_cache):
    assert Settings().index.embed_backend == "onnx"  # the fast backend is the default
    chosen = settings.replace(embed_backend="onnx", cache_dir=onnx_cache)
    assert Embedder.from_settings(chosen).name == ONNX_NAME
    assert Embedder.from_settings(settings.replace(embed_backend="torch")).backend == "torch"
    # A model of the user's own runs on torch, whatever the backend setting says.
    custom = Embedder.from_settings(chosen.replace(embedder_path="/models/bigger-embedder"))
    assert custom.backend == "torch"


def test_warm_up_evaluates_the_prefix_every_question_about_the_document_starts_with(
        seed_copy, tmp_path, embedder, settings):
    """llama.cpp reuses the longest common token prefix: the warm-up must send the
    messages a question's prompt starts with, up to its question (fake generator:
    records what it is sent)."""
    from qa.pipeline import Assistant
    from tests.conftest import FakeGenerator

    store = update_index([seed_copy], tmp_path / "index", embedder, settings).store
    fake = FakeGenerator()
    chosen = settings.replace(judge="off")  # the judge's prompt is its own
    assistant = Assistant(store, chosen, embedder=embedder, generator=fake)
    assistant.warm_up()
    assistant.ask("Who leads the Taliban delegation?")
    (warm,), (asked,) = fake.warmed, fake.prompts
    assert warm[:-1] == asked[:-1]  # rules and worked examples
    assert asked[-1]["content"].startswith(warm[-1]["content"])  # the document, then "Question: "
    assert asked[-1]["content"].endswith("Question: Who leads the Taliban delegation?")


def test_an_ivf_index_of_several_segments_opens_with_every_live_row(tmp_path, monkeypatch):
    """Opening merges the segments' IVF lists into the first segment's (no copy of its
    codes); ids must still count through all segments' rows, dead ones included."""
    monkeypatch.setattr(store_module, "APPROXIMATE_THRESHOLD", 2_000)
    vectors = _clustered(3_100)
    first = _store_with(vectors[:3_000])
    first.save(tmp_path / "index")
    documents = {k: v for k, v in first.documents.items() if k != "d5"}  # d5 dies in segment 1
    documents["d300"] = Document(doc_id="d300", title="D300", source="d300.txt", text="x" * 10,
                                 content_hash="300")
    for n in range(301, 310):
        documents[f"d{n}"] = Document(doc_id=f"d{n}", title=f"D{n}", source=f"d{n}.txt", text="x" * 10,
                                      content_hash=str(n))
    keep = [i for i, c in enumerate(first.chunks) if c.doc_id != "d5"]
    added = [Chunk(chunk_id=f"d{300 + i // 10}:{i % 10}", doc_id=f"d{300 + i // 10}", text="x", start=0,
                   end=1) for i in range(100)]
    second = first.replace_contents(documents, [first.chunks[i] for i in keep] + added,
                                    np.vstack([vectors[keep], vectors[3_000:]]))
    second.save(tmp_path / "index")
    assert len(second.manifest.segments) == 2

    reopened = IndexStore.load(tmp_path / "index", "test-embedder")
    assert reopened.faiss_index.ntotal == 3_100 and len(reopened) == 3_090
    for original in (0, 123, 2_999, 3_000, 3_099):
        row, score = reopened.search(vectors[original], 1)[0]
        assert reopened.chunks[row].chunk_id == f"d{original // 10}:{original % 10}"
        assert score == pytest.approx(1.0, abs=1e-4)
    assert all(reopened.chunks[r].doc_id != "d5" for r, _ in reopened.search(vectors[55], 10))
