"""Finding, fetching and loading the seq2seq models both pipeline stages use.

A model is named by a hub id (``Helsinki-NLP/opus-mt-de-en``) or a local directory.  Hub models
are resolved to their snapshot directory in the Hugging Face cache first, so that every load is
a load from a directory and the snapshot's commit hash becomes the model's revision (part of the
cache key: a new revision must not be served old cached results).  A miss in the cache tries the
hub once, unless ``HF_HUB_OFFLINE`` is set; any failure becomes one ``ModelUnavailableError``
that names the model and the command that fetches it, instead of a stack trace.

torch is imported only by the functions that load a model under transformers: the ctranslate2
backend finds its models here too and must not load torch by doing so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.errors import ModelUnavailableError
from service.nlp.device import DeviceLike
from service.nlp.engine import ModelRef

if TYPE_CHECKING:
    import torch

#: Files a model needs to run under transformers or be converted for ctranslate2.  Leaves out
#: TensorFlow, Flax and Rust weights that some hub repositories also carry.
MODEL_FILE_PATTERNS = [
    "*.json",
    "*.safetensors",
    "pytorch_model*.bin",
    "*.model",
    "*.spm",
    "*.txt",
]
# MarianTokenizer warns on every construction when sacremoses is missing; the punctuation
# normalizer it would provide is not used by either backend.
_SACREMOSES_WARNING = r"Recommended: pip install sacremoses"


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A transformers model with its tokenizer, on its device, in eval mode."""

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    ref: ModelRef
    directory: Path


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory file lock, so two processes never write one model directory at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_model_dir(source: str, *, allow_download: bool = True) -> tuple[Path, str]:
    """Return the directory holding ``source`` and its revision.

    A local directory's revision is a digest of its contents (configs, tokenizer files and the
    weights' sizes), since it has no commit; a hub model's revision is its snapshot's commit.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(source, "the directory has no config.json")
        return path.resolve(), _directory_digest(path)
    if _looks_like_path(source):
        raise ModelUnavailableError(source, "no such directory")
    return _hub_snapshot(source, allow_download=allow_download)


def _looks_like_path(source: str) -> bool:
    """Hub ids are ``owner/name`` or ``name``; anything else is meant as a path."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


def _hub_snapshot(repo_id: str, *, allow_download: bool) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(
            repo_id, local_files_only=True, allow_patterns=MODEL_FILE_PATTERNS
        )
    except Exception as cached_error:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        if not allow_download or offline:
            raise ModelUnavailableError(repo_id, "it is not in the Hugging Face cache") from (
                cached_error
            )
        snapshot = download_model(repo_id)
    path = Path(str(snapshot))
    return path, path.name


def download_model(repo_id: str) -> str:
    """Fetch one hub model into the Hugging Face cache (with the hub's progress bars)."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(repo_id, allow_patterns=MODEL_FILE_PATTERNS))
    except Exception as error:
        raise ModelUnavailableError(
            repo_id, f"downloading it failed ({type(error).__name__}: {error})"
        ) from error


def _directory_digest(path: Path) -> str:
    """A short content digest of a model directory, cheap even for gigabyte weights."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        if file.suffix in {".safetensors", ".bin"}:
            digest.update(str(file.stat().st_size).encode())
            with file.open("rb") as handle:
                digest.update(handle.read(1 << 20))
        elif file.stat().st_size < 32 << 20:
            digest.update(file.read_bytes())
    return "local-" + digest.hexdigest()[:16]


def torch_dtype_for(device: DeviceLike, compute_type: str) -> torch.dtype:
    """fp16 on CUDA unless told otherwise; the CPU computes in fp32 (int8 is a quantization)."""
    import torch

    if compute_type == "float16" or (compute_type == "auto" and device.type == "cuda"):
        return torch.float16
    return torch.float32


def load_seq2seq(
    source: str,
    *,
    device: DeviceLike,
    compute_type: str = "auto",
    allow_download: bool = True,
) -> LoadedModel:
    """Load a seq2seq model and its tokenizer for inference, failing with one clear message."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    placed = torch.device(str(device))
    if compute_type == "int8_float16":
        raise ModelUnavailableError(
            source, "int8_float16 is a ctranslate2 compute type; transformers runs float16"
        )
    directory, revision = resolve_model_dir(source, allow_download=allow_download)
    dtype = torch_dtype_for(placed, compute_type)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory))
        model = AutoModelForSeq2SeqLM.from_pretrained(str(directory), dtype=dtype)
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(source, f"loading failed ({error})") from error
    model.to(placed)
    model.eval()
    # Every generate call passes max_new_tokens/min_new_tokens bounded by its input; a length the
    # checkpoint carries (max_length 512, min_length 56, ...) would only clash with them.
    model.generation_config.max_length = None
    model.generation_config.min_length = None
    applied = "float16" if dtype == torch.float16 else "float32"
    if compute_type == "int8":
        if placed.type != "cpu":
            raise ModelUnavailableError(source, "int8 under transformers is CPU-only")
        with warnings.catch_warnings():
            # Deprecated in favour of torchao, which is not a dependency; still the
            # documented way to get int8 Linear layers from plain torch.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings(
                "ignore", message=".*quantize.*deprecated", category=UserWarning
            )
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        applied = "int8"
    ref = ModelRef(id=source, revision=revision, backend="transformers", compute_type=applied)
    return LoadedModel(
        model=model, tokenizer=tokenizer, device=placed, dtype=dtype, ref=ref, directory=directory
    )


def quiet_tokenizer(tokenizer_class: Any, source: str, **kwargs: Any) -> Any:
    """Load a tokenizer without MarianTokenizer's sacremoses nag (see ``_SACREMOSES_WARNING``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SACREMOSES_WARNING, category=UserWarning)
        return tokenizer_class.from_pretrained(source, **kwargs)


def download_models(sources: Iterable[str]) -> list[Path]:
    """Fetch every hub model in ``sources`` (local directories are left alone)."""
    fetched = []
    for source in sources:
        if Path(source).expanduser().is_dir():
            fetched.append(Path(source))
            continue
        fetched.append(Path(download_model(source)))
    return fetched
