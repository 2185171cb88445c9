"""Sentence embeddings, loaded lazily and once, from one of two backends.

- ``torch``: the packaged all-MiniLM-L6-v2 through sentence-transformers.
- ``onnx``: the same weights as a fused int8 ONNX graph (qa/models/onnx.py,
  prepared once), run by onnxruntime with the tokenizer of the torch package.
  Once prepared, it loads in well under a second without importing torch,
  indexes over 3x faster than a plain sentence-transformers loop
  (bench/indexing.py) and keeps BoolQ nDCG@10 within 0.001 of torch
  (bench/embedding_quality.py).

The two backends give slightly different vectors, so each records its own
name in the index manifest and an index is never silently mixed.
Vectors are L2-normalised float32 so inner product is cosine similarity.
Token counting uses the model's own fast tokenizer without loading the
network, so chunking never pays for it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ModelError
from qa.models.files import EMBEDDER_DISTRIBUTION, EMBEDDER_FOLDER, packaged_file, resolve_embedder
from qa.models.onnx import DISABLED_FUSIONS, FORMAT_VERSION, prepare_onnx_model
from qa.priority import FOREGROUND

BACKENDS = ("torch", "onnx")
ONNX_NAME = f"all-MiniLM-L6-v2-onnx-int8-v{FORMAT_VERSION}"  # the manifest's name: vectors differ per version
_COUNT_MEMO_LIMIT = 200_000  # texts whose token count is remembered (chunking asks twice)
_TEXTS_PER_THREAD = 4  # a group of background texts takes ~30 ms: the longest an answer waits
_VECTOR_MEMO_LIMIT = 20_000  # recent query and sentence vectors (384 floats each: ~30 MB)


class Embedder:
    def __init__(self, model_path: str | None = None, batch_size: int = 64, threads: int = 2,
                 backend: str = "torch", cache_dir: Path | None = None, yield_to_answers: bool = True):
        if backend not in BACKENDS:
            raise ModelError(f"Unknown embedder backend {backend!r}; use one of {', '.join(BACKENDS)}.")
        if backend == "onnx" and model_path:
            raise ModelError("The onnx embedder backend runs the packaged int8 all-MiniLM-L6-v2 only; "
                             "use the torch backend (QA_EMBED_BACKEND=torch) with QA_EMBEDDER_PATH.")
        self._model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self.backend = backend
        self.cache_dir = cache_dir or Path.home() / ".cache" / "qa"
        self.yield_to_answers = yield_to_answers  # bulk embedding pauses while answers are made
        self._folder: Path | None = None
        self._name: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._counts: dict[str, int] = {}
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_lock = threading.Lock()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> Embedder:
        """The embedder the settings ask for; a custom model path implies torch."""
        backend = "torch" if settings.index.embedder_path else settings.index.embed_backend
        return cls(settings.index.embedder_path, batch_size=settings.index.embed_batch_size,
                   threads=settings.n_threads, backend=backend, cache_dir=settings.cache_dir,
                   yield_to_answers=settings.index.yield_to_answers)

    @property
    def name(self) -> str:
        """Recorded in the manifest: differs per backend because the vectors do."""
        if self.backend == "onnx":
            return ONNX_NAME
        self._resolve()
        assert self._name is not None
        return self._name

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Normalised embeddings, shape (len(texts), dimension)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        caller = threading.get_ident()
        if not self.yield_to_answers or not FOREGROUND.is_background(caller):
            return self._encode(texts, show_progress)
        # Indexing: in small groups, each after any answer in progress.
        step = self.threads * _TEXTS_PER_THREAD if self.backend == "onnx" else self.batch_size
        parts = []
        for start in range(0, len(texts), step):
            FOREGROUND.wait(caller)
            parts.append(self._encode(texts[start:start + step], show_progress))
        return np.vstack(parts)

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_remembered(self, texts: list[str]) -> np.ndarray:
        """``encode``, remembering recent vectors: a question is embedded once for
        retrieval and sentence selection, and the same sentences come back question
        after question."""
        if not texts:
            return self.encode([])
        with self._memo_lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
            if missing:
                self._vectors.update(zip(missing, self.encode(missing), strict=True))
            for text in texts:
                self._vectors.move_to_end(text)  # least recently used go first
            vectors = np.vstack([self._vectors[t] for t in texts])
            while len(self._vectors) > _VECTOR_MEMO_LIMIT:
                self._vectors.popitem(last=False)
        return vectors

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP]. Remembered per text, because
        the chunker counts each sentence twice (to split long ones, then to pack).
        Indexing calls it once per document: a point where it yields to answers."""
        if self.yield_to_answers:
            FOREGROUND.wait(threading.get_ident())
        missing = list(dict.fromkeys(t for t in texts if t not in self._counts))
        if missing:
            if len(self._counts) + len(missing) > _COUNT_MEMO_LIMIT:
                self._counts.clear()
            encodings = self._get_tokenizer().encode_batch(missing, add_special_tokens=False)
            self._counts.update(zip(missing, (len(e.ids) for e in encodings), strict=True))
        return [self._counts[t] for t in texts]

    def _resolve(self) -> Path:
        if self._folder is None:
            if self.backend == "onnx":  # only the tokenizer is read from the torch package
                self._folder, self._name = packaged_file(EMBEDDER_DISTRIBUTION, EMBEDDER_FOLDER), ONNX_NAME
            else:
                self._folder, self._name = resolve_embedder(self._model_path)
        return self._folder

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            tokenizer = load_tokenizer(self._resolve())
            tokenizer.no_truncation()
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> Any:
        folder = self._resolve()
        if self.backend == "onnx":
            return OnnxEncoder(prepare_onnx_model(self.cache_dir), folder, self.threads)
        return _load_sentence_transformer(folder, self.threads)


def _load_sentence_transformer(folder: Path, threads: int) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    try:
        return SentenceTransformer(str(folder), device="cpu")
    except Exception as error:  # corrupt folders raise many types
        raise ModelError(f"Cannot load the embedder from {folder}: {error}") from error


def load_tokenizer(folder: Path) -> Any:
    """The fast tokenizer of a sentence-transformers folder, without padding
    (its tokenizer.json pads every text to 128 tokens, which would slow and skew)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.exists():
        raise ModelError(f"No tokenizer.json in {folder}; it is not a sentence-transformers folder.")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    return tokenizer


class OnnxEncoder:
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling then L2 normalisation, as the
    sentence-transformers modules of the model do.

    Each text runs alone. The int8 activations are quantised per run, so a text
    batched with others would get a vector that depends on its neighbours
    (cosine ~0.993 to itself alone); alone, a text has one vector however it is
    indexed, the same as when it is asked as a query, and there is no padding to
    compute. ``threads`` runs go in parallel, one core each: small matrix
    products share a core badly, separate texts share nothing.
    """

    def __init__(self, model_file: Path, tokenizer_folder: Path, threads: int):
        self.max_seq_length = _max_seq_length(tokenizer_folder)
        self.tokenizer = load_tokenizer(tokenizer_folder)
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.session = _session(model_file, 1)
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed") if threads > 1 else None
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._dimension = int(self.session.get_outputs()[0].shape[-1])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, texts: list[str], show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        """Texts tokenised once (in parallel, by the Rust tokenizer), then embedded one by one."""
        encodings = self.tokenizer.encode_batch(texts)
        vectors = np.empty((len(texts), self._dimension), dtype=np.float32)

        def embed(rows: range) -> None:
            for row in rows:
                vectors[row] = self._embed_one(encodings[row].ids)

        shares = [range(first, len(texts), self.threads) for first in range(self.threads)]
        if self._pool is None or len(texts) == 1:
            embed(range(len(texts)))
        else:
            list(self._pool.map(embed, shares))  # list(): re-raise a worker's error here
        return vectors

    def _embed_one(self, ids: list[int]) -> np.ndarray:
        tokens = np.asarray([ids], dtype=np.int64)
        feeds = {"input_ids": tokens, "attention_mask": np.ones_like(tokens),
                 "token_type_ids": np.zeros_like(tokens)}
        hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        pooled = hidden[0].mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _max_seq_length(folder: Path) -> int:
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def _session(model_file: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Busy-waiting threads (when intra_op > 1) steal the cores from the tokenizer,
    # the web server and whatever else runs on a 2-core laptop: measured slower.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(DISABLED_FUSIONS))
    except Exception as error:  # onnxruntime raises its own exception types
        raise ModelError(f"Cannot load the ONNX embedder {model_file}: {error}. "
                         "Delete the file; it is prepared again on the next start.") from error
