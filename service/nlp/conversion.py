"""Converting a transformers model for CTranslate2, once, checked against the source model.

A model is converted on first start with ctranslate2's ``TransformersConverter`` and kept under
``KURZ_CONVERTED_MODELS_DIR`` as ``<model id>-<revision>-<quantization>``.  The weights are
stored in the precision they are computed in (int8 for ``int8``), rather than converting once in
float32 and quantizing on every load: an int8 copy is a quarter of the size, loads faster and
never holds float32 weights in memory while it loads, which keeps the peak resident memory of a
worker down.  The price is one copy per compute type, which is why the compute type is part of
the directory name (as the revision is: a new snapshot is converted again rather than served
from an old copy).  A worker converts into a staging directory and renames it into place, under
a file lock, so two workers starting together convert once and neither ever loads a
half-written copy.

Only making a copy needs torch (the converter reads the source model through transformers'
model classes, ``service.nlp.converter``); finding and reusing a copy does not, so this module
imports the converter when it converts and a worker started on converted models never loads
torch.

Decoder start
    transformers starts Marian's decoder from ``<pad>``; ctranslate2's Marian converter drops
    ``<pad>`` from the vocabulary and writes ``decoder_start_token: "</s>"`` into the converted
    ``config.json``, together with a flag that starts the decoder from a zero embedding.  That is
    only the same thing as transformers when ``<pad>``'s embedding row is zero (it is:
    ``padding_idx`` keeps it zero in training), and a converter that wrote ``</s>`` *without*
    the flag would silently translate differently.  So every conversion is checked against the
    source model (:func:`decide_decoder_start`): it is accepted when the start is provably the
    same, the token in ``config.json`` is corrected when that is enough, and refused otherwise.
    The float32 parity test (``tests/test_ct2.py``) is the end-to-end check.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import structlog

from service.errors import ConfigError, ModelUnavailableError
from service.nlp.device import DeviceLike
from service.nlp.loading import exclusive_lock, resolve_model_dir

__all__ = [
    "COMPUTE_TYPES",
    "CONVERSION_FORMAT",
    "CUDA_COMPUTE_TYPES",
    "MARKER_NAME",
    "DecoderStart",
    "convert_model",
    "converted_copy",
    "converted_dir_name",
    "decide_decoder_start",
    "resolve_compute_type",
    "target_vocabulary",
]

log = structlog.get_logger(__name__)

#: Bumped whenever a change here alters what a converted copy contains, so that copies made by
#: older code are converted again instead of reused.
CONVERSION_FORMAT = 1
#: Written into a converted copy last; it records how the copy was made.
MARKER_NAME = "kurz-conversion.json"
#: Compute types ctranslate2 runs these models in; ``auto`` resolves to one of them.
#: ``int8_float16`` (int8 weights, float16 activations) is a GPU type: half float16's weight
#: memory, for a GPU whose int8 kernels are faster than its float16 ones.
COMPUTE_TYPES = ("int8", "float16", "float32", "int8_float16")
#: The compute types that need CUDA.
CUDA_COMPUTE_TYPES = ("float16", "int8_float16")

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_ID_CHARS = 80


# --- compute type and cache key -----------------------------------------------------------------


def resolve_compute_type(requested: str, device: DeviceLike) -> str:
    """``auto`` is int8 on a CPU and float16 on CUDA; explicit values are honoured.

    float16 on a CPU is refused at start-up (ctranslate2 has no efficient float16 CPU kernels and
    would fail on the first load anyway), with the settings that work instead.
    """
    if requested == "auto":
        return "float16" if device.type == "cuda" else "int8"
    if requested not in COMPUTE_TYPES:
        raise ConfigError(f"KURZ_COMPUTE_TYPE={requested!r} is not one of auto, {COMPUTE_TYPES}")
    if requested in CUDA_COMPUTE_TYPES and device.type != "cuda":
        raise ConfigError(
            f"KURZ_COMPUTE_TYPE={requested} needs CUDA under ctranslate2; "
            "use int8 (fastest on a CPU) or float32"
        )
    return requested


def converted_dir_name(model_id: str, revision: str, quantization: str) -> str:
    """``<model id>-<revision>-<quantization>`` made safe as one directory name.

    Hub ids keep their readable ``owner--name`` form; a long local path is shortened to its tail
    plus a digest of the whole id, so two different directories never share a converted copy.
    """
    safe_id = _UNSAFE_NAME_CHARS.sub("--", model_id).strip("-.") or "model"
    if len(safe_id) > _MAX_NAME_ID_CHARS:
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:10]
        safe_id = f"{safe_id[-(_MAX_NAME_ID_CHARS - 11) :].lstrip('-.')}-{digest}"
    safe_revision = _UNSAFE_NAME_CHARS.sub("-", revision) or "unknown"
    return f"{safe_id}-{safe_revision}-{quantization}"


# --- conversion ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecoderStart:
    """How the converted model starts decoding, next to how transformers starts."""

    expected: str
    """The token transformers starts from (``decoder_start_token_id``)."""
    configured: str
    """The token the converted ``config.json`` names."""
    zero_embedding: bool
    """Whether the converted decoder starts from a zero vector whatever the token."""
    expected_row_is_zero: bool
    """Whether transformers' start token has an all-zero embedding row."""


def decide_decoder_start(start: DecoderStart, vocabulary: Collection[str]) -> str | None:
    """The start token to write into the converted ``config.json``; ``None`` if it is right.

    Raises ``ValueError`` when no edit of ``config.json`` can make ctranslate2 start the way
    transformers does (the model then has to run under transformers).
    """
    if start.zero_embedding:
        if start.expected_row_is_zero:
            return None  # both feed a zero vector into the first step, whatever the label says
        raise ValueError(
            f"ctranslate2 starts the decoder from a zero embedding, but transformers starts "
            f"from {start.expected!r}, whose embedding is not zero"
        )
    if start.configured == start.expected:
        return None
    if start.expected in vocabulary:
        return start.expected
    raise ValueError(
        f"the converted model starts decoding from {start.configured!r}, transformers from "
        f"{start.expected!r}, which is not in the converted vocabulary"
    )


def target_vocabulary(model_dir: Path) -> list[str]:
    """The converted model's target vocabulary, in id order."""
    for name in ("shared_vocabulary", "target_vocabulary"):
        as_json = model_dir / f"{name}.json"
        if as_json.is_file():
            tokens: list[str] = json.loads(as_json.read_text(encoding="utf-8"))
            return tokens
        as_text = model_dir / f"{name}.txt"
        if as_text.is_file():
            return as_text.read_text(encoding="utf-8").split("\n")[:-1]
    raise FileNotFoundError(f"no target vocabulary in {model_dir}")


def convert_model(
    source_dir: Path, revision: str, model_id: str, compute_type: str, out_root: Path
) -> Path:
    """Convert the model in ``source_dir`` once and return the converted directory.

    ``compute_type`` (int8, float16 or float32) is the precision the weights are stored in.  A
    complete copy made earlier from the same model id, revision and compute type is reused as is;
    anything else is converted into a staging directory, checked, and renamed into place while a
    lock file keeps other workers waiting (they then reuse it).  Conversion failures become one
    ``ModelUnavailableError`` naming the model.
    """
    name = converted_dir_name(model_id, revision, compute_type)
    final = out_root / name
    wanted = {
        "format": CONVERSION_FORMAT,
        "model_id": model_id,
        "revision": revision,
        "quantization": compute_type,
    }
    if _is_complete(final, wanted):
        return final
    out_root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_root / f".{name}.lock"):
        if _is_complete(final, wanted):  # another worker finished it while this one waited
            return final
        for stale in out_root.glob(f".{name}.staging-*"):  # left by a worker that died
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.staging-", dir=out_root))
        try:
            converted = staging / "model"
            record = _convert_into(source_dir, converted, compute_type, model_id)
            marker = {**wanted, **record}
            (converted / MARKER_NAME).write_text(
                json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8"
            )
            if final.exists():  # an outdated or broken copy: move it aside, delete it below
                final.rename(staging / "replaced")
            converted.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("model converted", model=model_id, revision=revision, compute_type=compute_type)
    return final


def _convert_into(
    source_dir: Path, out_dir: Path, quantization: str, model_id: str
) -> dict[str, Any]:
    """Run the converter into ``out_dir``, fix its decoder start, and say what was done."""
    # Here, and only here, torch and transformers' model classes are loaded: a worker whose
    # models are converted already never gets this far (``service.nlp.converter``).
    try:
        from service.nlp.converter import CheckedConverter
    except ImportError as error:  # an environment built to run converted models only
        raise ModelUnavailableError(
            model_id,
            f"converting it for ctranslate2 needs torch, which cannot be imported here ({error}); "
            "an image without torch runs only the models (and compute type) converted at its "
            "build: build one for these settings, or one that keeps torch (BAKE_MODELS=0), or "
            "install torch (scripts/install.sh without WITH_TORCH=0)",
        ) from error

    converter = CheckedConverter(source_dir)
    try:
        converter.convert(str(out_dir), quantization=quantization, force=True)
    except (OSError, ValueError, RuntimeError, NotImplementedError, KeyError) as error:
        raise ModelUnavailableError(
            model_id, f"converting it for ctranslate2 failed ({type(error).__name__}: {error})"
        ) from error
    start = converter.decoder_start
    assert start is not None  # set by CheckedConverter._load, which convert() always calls
    try:
        fixed = decide_decoder_start(start, set(target_vocabulary(out_dir)))
    except ValueError as error:
        raise ModelUnavailableError(
            model_id, f"{error}; run it with KURZ_BACKEND=transformers"
        ) from error
    if fixed is not None:
        config_path = out_dir / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["decoder_start_token"] = fixed
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        log.warning(
            "decoder start token corrected", model=model_id, was=start.configured, now=fixed
        )
    return {
        "ctranslate2": ctranslate2.__version__,
        "decoder_start": {
            "transformers": start.expected,
            "converted": start.configured,
            "written": fixed or start.configured,
            "zero_embedding": start.zero_embedding,
        },
    }


def _is_complete(directory: Path, wanted: dict[str, Any]) -> bool:
    """Whether ``directory`` holds a finished conversion made the way ``wanted`` says."""
    try:
        found = json.loads((directory / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(found, dict) or any(found.get(k) != v for k, v in wanted.items()):
        return False
    return (directory / "model.bin").is_file() and (directory / "config.json").is_file()


def converted_copy(
    source: str, quantization: str, out_root: Path, *, allow_download: bool = True
) -> tuple[Path, str, Path]:
    """The source directory, its revision and its converted copy (converted now if missing)."""
    source_dir, revision = resolve_model_dir(source, allow_download=allow_download)
    try:
        converted = convert_model(source_dir, revision, source, quantization, out_root)
    except OSError as error:  # the cache directory itself: not writable, disk full
        raise ConfigError(
            f"cannot keep converted models in {out_root} ({error}); "
            "point KURZ_CONVERTED_MODELS_DIR at a writable directory"
        ) from error
    return source_dir, revision, converted
