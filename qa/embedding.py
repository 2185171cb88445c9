"""Sentence embeddings with sentence-transformers, loaded lazily and once.

Vectors are L2-normalised float32 so inner product is cosine similarity.
Token counting uses the model's own fast tokenizer without importing torch,
so chunking never pays for loading the network.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ModelError
from qa.models import resolve_embedder


class Embedder:
    def __init__(self, model_path: str | None = None, batch_size: int = 64, threads: int = 2):
        self._model_path = model_path
        self.batch_size = batch_size
        self.threads = threads
        self._folder: Path | None = None
        self._name: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        self._resolve()
        assert self._name is not None
        return self._name

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return int(getattr(self.model, "max_seq_length", 256) or 256)

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
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without [CLS]/[SEP]."""
        tokenizer = self._get_tokenizer()
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]

    def _resolve(self) -> Path:
        if self._folder is None:
            self._folder, self._name = resolve_embedder(self._model_path)
        return self._folder

    def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = self._resolve() / "tokenizer.json"
            if not path.exists():
                raise ModelError(
                    f"No tokenizer.json in {path.parent}; it is not a sentence-transformers folder."
                )
            tokenizer = Tokenizer.from_file(str(path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        folder = self._resolve()
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(self.threads)
        try:
            return SentenceTransformer(str(folder), device="cpu")
        except Exception as error:  # corrupt folders raise many types
            raise ModelError(f"Cannot load the embedder from {folder}: {error}") from error
