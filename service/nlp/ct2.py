"""The CTranslate2 backend: the same models, converted once, run several times faster on a CPU.

MarianMT and BART under CTranslate2 with int8 weights translate and summarize several times
faster on a CPU than under transformers (fused kernels, int8 GEMM, no Python in the decoding
loop).  This module keeps everything else the same as the transformers backend: the same hub
models or local directories, the same tokenizers (loaded from the source directory, so text is
cut into exactly the same tokens), the same sentence batches (planned by the caller), the same
generation guards and the same result fields.  Only ``ModelRef.backend`` and
``ModelRef.compute_type`` say that something else ran.

Conversion
    A model is converted once, on first start, with ctranslate2's ``TransformersConverter``, and
    kept under ``KURZ_CONVERTED_MODELS_DIR`` as ``<model id>-<revision>-<quantization>``.  The
    weights are stored in the precision they are computed in (int8 for ``int8``), rather than
    converting once in float32 and quantizing on every load: an int8 copy is a quarter of the
    size, loads faster and never holds float32 weights in memory while it loads, which keeps the
    peak resident memory of a worker down.  The price is one copy per compute type, which is why
    the compute type is part of the directory name (as the revision is: a new snapshot is
    converted again rather than served from an old copy).  A worker converts into a staging
    directory and renames it into place, under a file lock, so two workers starting together
    convert once and neither ever loads a half-written copy.

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

Generation lengths
    transformers' ``max_new_tokens`` counts the end-of-sequence token, and Marian and BART force
    that token into the last slot (``forced_eos_token_id``); ctranslate2's ``max_decoding_length``
    counts only the tokens it returns (a target prefix included, the end token not).  The bounds
    are translated accordingly (:func:`decoding_lengths`), so both backends stop at the same token.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ctranslate2
import structlog
import torch
from ctranslate2.converters import TransformersConverter

from service.errors import ConfigError, ModelUnavailableError
from service.nlp.loading import ModelRef, exclusive_lock, resolve_model_dir
from service.nlp.summarize import INSTRUCTION_MODEL_TYPES
from service.nlp.translate import collapse_repeats
from service.presets import Generation
from service.settings import Settings

if TYPE_CHECKING:
    from service.nlp.backends import Engines

log = structlog.get_logger(__name__)

#: Bumped whenever a change here alters what a converted copy contains, so that copies made by
#: older code are converted again instead of reused.
CONVERSION_FORMAT = 1
#: Written into a converted copy last; it records how the copy was made.
MARKER_NAME = "kurz-conversion.json"
#: Compute types ctranslate2 runs these models in; ``auto`` resolves to one of them.
COMPUTE_TYPES = ("int8", "float16", "float32")

# MarianTokenizer warns on every construction when sacremoses is missing; the punctuation
# normalizer it would provide is not used by the transformers backend either.
_SACREMOSES_WARNING = r"Recommended: pip install sacremoses"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_ID_CHARS = 80


# --- compute type and cache key -----------------------------------------------------------------


def resolve_compute_type(requested: str, device: torch.device) -> str:
    """``auto`` is int8 on a CPU and float16 on CUDA; explicit values are honoured.

    float16 on a CPU is refused at start-up (ctranslate2 has no efficient float16 CPU kernels and
    would fail on the first load anyway), with the settings that work instead.
    """
    if requested == "auto":
        return "float16" if device.type == "cuda" else "int8"
    if requested not in COMPUTE_TYPES:
        raise ConfigError(f"KURZ_COMPUTE_TYPE={requested!r} is not one of auto, {COMPUTE_TYPES}")
    if requested == "float16" and device.type != "cuda":
        raise ConfigError(
            "KURZ_COMPUTE_TYPE=float16 needs CUDA under ctranslate2; "
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


class _Converter(TransformersConverter):  # type: ignore[misc]  # ctranslate2 has no type stubs
    """``TransformersConverter`` that also records how the source model starts decoding.

    It keeps the loaded source model just long enough to compare its decoder start with the
    converted specification's, and fills in config attributes that ctranslate2's BART loader
    reads but transformers 5 no longer defines.
    """

    def __init__(self, source_dir: Path) -> None:
        super().__init__(str(source_dir))
        self._model: Any = None
        self._tokenizer: Any = None
        self.decoder_start: DecoderStart | None = None

    def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
        model = super().load_model(model_class, model_name_or_path, **kwargs)
        config = model.config
        if config.model_type == "bart":
            # BART is post-norm with a layer norm after the embeddings; transformers 5 dropped
            # these two flags from BartConfig, but ctranslate2 4.x still reads them.
            for name, value in (("normalize_before", False), ("normalize_embedding", True)):
                if not hasattr(config, name):
                    setattr(config, name, value)
        self._model = model
        return model

    def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
        self._tokenizer = _quiet_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
        return self._tokenizer

    def _load(self) -> Any:
        # ``Converter._load`` is the documented hook for subclasses; the specification is only
        # reachable here, before it is quantized and saved.
        spec = super()._load()
        try:
            self.decoder_start = _decoder_start(spec, self._model, self._tokenizer)
        finally:
            self._model = self._tokenizer = None  # the float32 source model is not needed after
        return spec


def _decoder_start(spec: Any, model: Any, tokenizer: Any) -> DecoderStart:
    """Compare the converted specification's decoder start with the source model's."""
    start_id = model.config.decoder_start_token_id
    if start_id is None:
        start_id = model.generation_config.decoder_start_token_id
    expected = str(tokenizer.convert_ids_to_tokens(int(start_id)))
    decoder = model.get_decoder()
    embeddings = getattr(decoder, "embed_tokens", None)
    row_is_zero = False
    if embeddings is not None and int(start_id) < embeddings.weight.shape[0]:
        row_is_zero = bool(torch.count_nonzero(embeddings.weight[int(start_id)]) == 0)
    return DecoderStart(
        expected=expected,
        configured=str(spec.config.decoder_start_token),
        zero_embedding=bool(getattr(spec.decoder, "start_from_zero_embedding", False)),
        expected_row_is_zero=row_is_zero,
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
    converter = _Converter(source_dir)
    try:
        converter.convert(str(out_dir), quantization=quantization, force=True)
    except (OSError, ValueError, RuntimeError, NotImplementedError, KeyError) as error:
        raise ModelUnavailableError(
            model_id, f"converting it for ctranslate2 failed ({type(error).__name__}: {error})"
        ) from error
    start = converter.decoder_start
    assert start is not None  # set by _Converter._load, which convert() always calls
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


def _quiet_tokenizer(tokenizer_class: Any, source: str, **kwargs: Any) -> Any:
    """Load a tokenizer without MarianTokenizer's sacremoses nag (see ``_SACREMOSES_WARNING``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SACREMOSES_WARNING, category=UserWarning)
        return tokenizer_class.from_pretrained(source, **kwargs)


# --- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodingDefaults:
    """What transformers' ``generate`` takes from the model's generation config implicitly."""

    target_prefix: tuple[str, ...]
    """Tokens forced at the start (BART's ``forced_bos_token_id``: ``<s>``)."""
    forced_eos: bool
    """Whether the last slot is forced to the end token (``forced_eos_token_id``)."""
    suppress: tuple[tuple[str, ...], ...]
    """``bad_words_ids`` as token sequences, limited to tokens the converted model can emit."""


@dataclass(frozen=True, slots=True)
class CT2Model:
    """A converted model loaded into ctranslate2, with the source model's tokenizer and config."""

    translator: Any
    """The ``ctranslate2.Translator``."""
    tokenizer: Any
    config: Any
    """The source model's transformers config (limits, model type)."""
    decoding: DecodingDefaults
    ref: ModelRef
    directory: Path
    """The converted copy."""
    source_dir: Path


def ct2_device(device: torch.device) -> tuple[str, int]:
    """ctranslate2's device name and index for a torch device."""
    if device.type == "cuda":
        return "cuda", device.index or 0
    return "cpu", 0


def load_ct2_model(
    source: str,
    *,
    device: torch.device,
    compute_type: str,
    out_root: Path,
    threads: int,
    allow_download: bool = True,
) -> CT2Model:
    """Resolve, convert (once) and load one model under ctranslate2.

    ``threads`` are the intra-op threads of this model's one translator (``inter_threads=1``:
    the caller runs one batch at a time and parallelism comes from within each batch, so a
    worker never runs more threads than it was given).
    """
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    quantization = resolve_compute_type(compute_type, device)
    source_dir, revision = resolve_model_dir(source, allow_download=allow_download)
    try:
        converted = convert_model(source_dir, revision, source, quantization, out_root)
    except OSError as error:  # the cache directory itself: not writable, disk full
        raise ConfigError(
            f"cannot keep converted models in {out_root} ({error}); "
            "point KURZ_CONVERTED_MODELS_DIR at a writable directory"
        ) from error
    try:
        tokenizer = _quiet_tokenizer(AutoTokenizer, str(source_dir))
        config = AutoConfig.from_pretrained(str(source_dir))
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(source, f"loading failed ({error})") from error
    try:
        generation = GenerationConfig.from_pretrained(str(source_dir))
    except OSError:  # no generation_config.json: the defaults live in config.json
        generation = GenerationConfig.from_model_config(config)
    device_name, device_index = ct2_device(device)
    try:
        translator = ctranslate2.Translator(
            str(converted),
            device=device_name,
            device_index=device_index,
            compute_type=quantization,
            intra_threads=threads,
            inter_threads=1,
        )
    except (RuntimeError, ValueError) as error:
        raise ModelUnavailableError(source, f"ctranslate2 could not load it ({error})") from error
    ref = ModelRef(
        id=source, revision=revision, backend="ctranslate2", compute_type=translator.compute_type
    )
    return CT2Model(
        translator=translator,
        tokenizer=tokenizer,
        config=config,
        decoding=_decoding_defaults(generation, tokenizer, set(target_vocabulary(converted))),
        ref=ref,
        directory=converted,
        source_dir=source_dir,
    )


def _decoding_defaults(
    generation: Any, tokenizer: Any, vocabulary: Collection[str]
) -> DecodingDefaults:
    """Read the generation-config settings that transformers applies without being asked."""
    prefix: tuple[str, ...] = ()
    if generation.forced_bos_token_id is not None:
        prefix = (str(tokenizer.convert_ids_to_tokens(int(generation.forced_bos_token_id))),)
    suppress: list[tuple[str, ...]] = []
    for ids in generation.bad_words_ids or []:
        tokens = tuple(str(t) for t in tokenizer.convert_ids_to_tokens([int(i) for i in ids]))
        # A token missing from the converted vocabulary (Marian's <pad>) cannot be generated.
        if tokens and all(token in vocabulary for token in tokens):
            suppress.append(tokens)
    return DecodingDefaults(
        target_prefix=prefix,
        forced_eos=generation.forced_eos_token_id is not None,
        suppress=tuple(suppress),
    )


def decoding_lengths(max_new: int, min_new: int, *, forced_eos: bool) -> tuple[int, int]:
    """ctranslate2's ``(max_decoding_length, min_decoding_length)`` for transformers' bounds.

    transformers' ``max_new_tokens`` counts the end token, and with ``forced_eos_token_id`` the
    last of them always is the end token, so at most ``max_new - 1`` tokens of text come out;
    ctranslate2 counts only returned tokens.  ``min_new_tokens`` and ``min_decoding_length``
    both mean "no end token before this many tokens", so they carry over (capped at the maximum).
    """
    max_length = max(1, max_new - 1) if forced_eos else max(1, max_new)
    return max_length, max(0, min(min_new, max_length))


def _source_tokens(model: CT2Model, texts: Sequence[str], lock: threading.Lock) -> list[list[str]]:
    """Tokenize exactly as the transformers backend does, as token strings."""
    with lock:
        encoded = model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [[str(t) for t in model.tokenizer.convert_ids_to_tokens(ids)] for ids in encoded]


def _decode(
    model: CT2Model, hypotheses: Sequence[Sequence[str]], lock: threading.Lock
) -> list[str]:
    """Decode output tokens exactly as transformers' ``batch_decode`` does."""
    tokenizer = model.tokenizer
    with lock:
        return [
            str(
                tokenizer.decode(tokenizer.convert_tokens_to_ids(list(h)), skip_special_tokens=True)
            )
            for h in hypotheses
        ]


# --- engines ------------------------------------------------------------------------------------


class CT2Translator:
    """MarianMT under ctranslate2, guarded exactly like ``TransformersTranslator``.

    Generation is bounded by the source: at most ``2 x source tokens + 10`` new tokens and never
    more than the model's own limit.  ``fixed_length_factor`` makes every batch generate exactly
    that multiple of its longest source, as in the transformers backend (benchmarks use it).
    """

    def __init__(
        self,
        model: CT2Model,
        *,
        num_beams: int = 1,
        fixed_length_factor: float | None = None,
    ) -> None:
        self.model = model
        self.ref = model.ref
        self.num_beams = num_beams
        self.fixed_length_factor = fixed_length_factor
        positions = int(getattr(model.config, "max_position_embeddings", 512) or 512)
        model_max = int(getattr(model.tokenizer, "model_max_length", positions) or positions)
        self.max_target_tokens = min(positions, model_max)
        self.max_source_tokens = self.max_target_tokens
        # The tokenizer is not thread-safe (fast tokenizers raise "Already borrowed").
        self._tokenizer_lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Source tokens per text, end-of-sentence included, never truncated."""
        with self._tokenizer_lock:
            encoded = self.model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]

    def max_new_tokens(self, longest_source: int) -> int:
        """The generation bound for a batch whose longest source has this many tokens."""
        if self.fixed_length_factor is not None:
            return max(1, math.ceil(self.fixed_length_factor * longest_source))
        return min(self.max_target_tokens, 2 * longest_source + 10)

    def translate_tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The output tokens (no start or end token) for one batch; the parity tests use it."""
        if not texts:
            return []
        source = _source_tokens(self.model, texts, self._tokenizer_lock)
        longest = max(len(tokens) for tokens in source)
        if longest > self.max_source_tokens:
            raise ValueError(
                f"batch of {longest} tokens exceeds the model's "
                f"{self.max_source_tokens}; split_long must run first"
            )
        new_tokens = self.max_new_tokens(longest)
        decoding = self.model.decoding
        max_length, min_length = decoding_lengths(
            new_tokens,
            new_tokens if self.fixed_length_factor is not None else 0,
            forced_eos=decoding.forced_eos,
        )
        results = self.model.translator.translate_batch(
            source,
            [list(decoding.target_prefix)] * len(source) if decoding.target_prefix else None,
            beam_size=self.num_beams,
            max_decoding_length=max_length,
            min_decoding_length=min_length,
            max_input_length=0,  # the length guard above is the only limit, as in transformers
            suppress_sequences=[list(s) for s in decoding.suppress] or None,
            return_end_token=False,
        )
        return [list(result.hypotheses[0]) for result in results]

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        """Translate one batch; every text must already fit ``max_source_tokens``."""
        decoded = _decode(self.model, self.translate_tokens(texts), self._tokenizer_lock)
        return [collapse_repeats(text.strip()) for text in decoded]


class CT2Summarizer:
    """A seq2seq summarizer under ctranslate2 with ``TransformersSummarizer``'s semantics.

    The same token bounds (``min_length``/``max_length`` in new tokens, or exactly
    ``fixed_summary_tokens``), beams, length penalty and n-gram blocking; BART's forced ``<s>``
    becomes a target prefix.
    """

    def __init__(self, model: CT2Model, *, fixed_summary_tokens: int | None = None) -> None:
        self.model = model
        self.ref = model.ref
        self.fixed_summary_tokens = fixed_summary_tokens
        limits = [int(getattr(model.tokenizer, "model_max_length", 0) or 0)]
        limits.append(int(getattr(model.config, "max_position_embeddings", 0) or 0))
        sane = [limit for limit in limits if 0 < limit < 1_000_000]
        self.max_input_tokens = min(sane) if sane else 512
        self.follows_instructions = model.config.model_type in INSTRUCTION_MODEL_TYPES
        self._tokenizer_lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Input tokens per text, special tokens included."""
        with self._tokenizer_lock:
            encoded = self.model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]

    def summarize_tokens(self, texts: Sequence[str], generation: Generation) -> list[list[str]]:
        """The output tokens (target prefix included) for one batch; the parity tests use it."""
        if not texts:
            return []
        source = _source_tokens(self.model, texts, self._tokenizer_lock)
        if max(len(tokens) for tokens in source) > self.max_input_tokens:
            raise ValueError("summarizer input over the model's limit; chunking must run first")
        if self.fixed_summary_tokens is not None:
            min_new = max_new = self.fixed_summary_tokens
        else:
            max_new = generation.max_length
            min_new = min(generation.min_length, max_new)
        decoding = self.model.decoding
        max_length, min_length = decoding_lengths(max_new, min_new, forced_eos=decoding.forced_eos)
        results = self.model.translator.translate_batch(
            source,
            [list(decoding.target_prefix)] * len(source) if decoding.target_prefix else None,
            beam_size=generation.num_beams,
            length_penalty=generation.length_penalty,
            no_repeat_ngram_size=generation.no_repeat_ngram_size,
            max_decoding_length=max_length,
            min_decoding_length=min_length,
            max_input_length=0,
            suppress_sequences=[list(s) for s in decoding.suppress] or None,
            return_end_token=False,
        )
        return [list(result.hypotheses[0]) for result in results]

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        """Summarize texts that each fit ``max_input_tokens``, as one batch."""
        decoded = _decode(
            self.model, self.summarize_tokens(texts, generation), self._tokenizer_lock
        )
        return [text.strip() for text in decoded]


def load_ct2_engines(
    settings: Settings,
    *,
    device: torch.device,
    fixed_length_factor: float | None = None,
    fixed_summary_tokens: int | None = None,
) -> Engines:
    """Load both models under ctranslate2, converting them on first use.

    Each model gets ``KURZ_INFERENCE_THREADS`` (default: the cores this process may use)
    intra-op threads and one inter-op thread: the two models run one after the other, never at
    once, so one worker keeps every core busy.  Two workers on one machine should each be given
    half the cores (``KURZ_INFERENCE_THREADS`` or CPU affinity, which ``usable_cores`` respects)
    so that they do not oversubscribe it.
    """
    from service.nlp.backends import Engines, usable_cores

    threads = settings.inference_threads or usable_cores()
    common: dict[str, Any] = {
        "device": device,
        "compute_type": settings.compute_type,
        "out_root": Path(settings.converted_models_dir),
        "threads": threads,
    }
    translation = CT2Translator(
        load_ct2_model(settings.translation_source, **common),
        num_beams=settings.translation_beams,
        fixed_length_factor=fixed_length_factor,
    )
    summarization = CT2Summarizer(
        load_ct2_model(settings.summarization_source, **common),
        fixed_summary_tokens=fixed_summary_tokens,
    )
    log.info(
        "models loaded",
        backend="ctranslate2",
        device=str(device),
        compute_type=translation.ref.compute_type,
        threads=threads,
        translation=translation.ref.id,
        summarization=summarization.ref.id,
    )
    return Engines(translation=translation, summarization=summarization)
