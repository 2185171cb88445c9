"""The fast int8 ONNX form of the packaged all-MiniLM-L6-v2, prepared once into the cache.

Why it is derived here rather than taken from an ONNX package: onnxruntime is
fastest on a BERT graph it can fuse (one Attention and one BiasGelu node per
layer), and only a graph exported the classic way fuses. So the verified
safetensors weights are exported by torch, fused by onnxruntime's transformer
optimizer, and their matrix products quantised dynamically (int8 weights per
output channel, int8 activations). Layer normalisation is deliberately left
unfused: onnxruntime's fused SkipLayerNormalization kernel is several times
slower than a plain Add + LayerNormalization here (`python bench/layer_norm.py`).

Preparing takes ~10 s once (it imports torch); later runs load the cached file
in well under a second and never import torch. The file is written whole
(renamed into place) under a lock, so two processes starting at once prepare it
once. The stamp beside it records its hash, size and time; a file changed
since (damaged, replaced) is prepared again.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.errors import ModelError
from qa.models.files import EMBEDDER_SHA256, is_stamped, resolve_embedder, sha256_of, write_stamp

# Bump when the preparation changes: the cache file is prepared again and, as the
# embedder's name in index manifests carries it, indexes are re-embedded by `qa index`.
FORMAT_VERSION = 2
# Fusions the session must not redo at load time (see the module docstring).
DISABLED_FUSIONS = ("SkipLayerNormFusion",)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_NEEDED = ("torch", "transformers", "onnx", "onnxruntime")
log = logging.getLogger(__name__)


def prepare_onnx_model(cache_dir: Path) -> Path:
    """The runnable int8 model in ``cache_dir``, prepared once from the packaged weights."""
    target = cache_dir / f"minilm-l6-int8-fused-v{FORMAT_VERSION}-{EMBEDDER_SHA256[:12]}.onnx"
    if is_stamped(target):
        return target
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(f"Preparing the onnx embedder needs {', '.join(missing)} (installed by `make run`); "
                         "or use QA_EMBED_BACKEND=torch.")
    folder, _ = resolve_embedder(None)  # verifies the packaged weights' checksum
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / ".onnx-prepare.lock"):
            if not is_stamped(target):  # another process may have done it meanwhile
                _prepare(folder, cache_dir, target)
    except OSError as error:
        raise ModelError(f"Cannot write the onnx embedder into {cache_dir}: {error}. Free some space, "
                         "or point QA_CACHE_DIR at a writable folder.") from error
    return target


def _prepare(folder: Path, cache_dir: Path, target: Path) -> None:
    with _scratch(cache_dir) as scratch:
        exported, fused, quantized = (scratch / name for name in ("exported.onnx", "fused.onnx", "int8.onnx"))
        try:
            _export(folder, exported)
            _fuse(folder, exported, fused)
            _quantize(fused, quantized)
        except (RuntimeError, ValueError, TypeError) as error:  # torch and onnxruntime raise these
            raise ModelError(f"Preparing the onnx embedder from {folder} failed: {error}. "
                             "Use QA_EMBED_BACKEND=torch meanwhile.") from error
        os.replace(quantized, target)
    write_stamp(target, sha256_of(target))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export(folder: Path, target: Path) -> None:
    """The classic (TorchScript) export with eager attention: the graph the optimizer
    recognises. ``dynamo=False`` is still supported by the pinned torch==2.13.0."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    class LastHiddenState(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    hf_logging.disable_progress_bar()
    try:
        bert = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    except Exception as error:  # corrupt folders raise many types
        raise ModelError(f"Cannot load the embedder from {folder}: {error}") from error
    sample = torch.ones((1, 16), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with warnings.catch_warnings(), _quiet_root_logger(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(LastHiddenState(bert), (sample, torch.ones_like(sample), torch.zeros_like(sample)),
                          str(target), dynamo=False, input_names=list(_INPUTS),
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=14)


def _fuse(folder: Path, source: Path, target: Path) -> None:
    """One Attention and one BiasGelu node per layer; SkipLayerNormalization left out
    (its kernel is the slow one here). An unfused graph still works, only slower: said."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    config = json.loads((folder / "config.json").read_text())
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    with _quiet_root_logger():
        model = optimizer.optimize_model(str(source), model_type="bert", optimization_options=options,
                                         num_heads=config["num_attention_heads"],
                                         hidden_size=config["hidden_size"])
        model.save_model_to_file(str(target))
    fused = model.get_fused_operator_statistics().get("Attention", 0)
    if fused != config["num_hidden_layers"]:
        log.warning("Only %d of %d attention layers of the embedder were fused: indexing will be "
                    "slower than measured (a changed torch or transformers export?).",
                    fused, config["num_hidden_layers"])


def _quantize(source: Path, target: Path) -> None:
    """int8 weights per output channel; activations quantised per run (no calibration set)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger():  # fused nodes have no inferred output types: they are float
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})


@contextmanager
def _scratch(parent: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir=parent, prefix=".tmp-onnx-") as name:
        yield Path(name)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The exporter, optimizer and quantizer chatter on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
