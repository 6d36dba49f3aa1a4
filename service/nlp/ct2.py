"""The CTranslate2 backend: the same models, converted once, run several times faster on a CPU.

MarianMT and BART under CTranslate2 with int8 weights translate and summarize several times
faster on a CPU than under transformers (fused kernels, int8 GEMM, no Python in the decoding
loop).  This module keeps everything else the same as the transformers backend: the same hub
models or local directories, the same tokenizers (loaded from the source directory, so text is
cut into exactly the same tokens), the same sentence batches (planned by the caller), the same
generation guards (``service.nlp.engine``) and the same result fields.  Only
``ModelRef.backend`` and ``ModelRef.compute_type`` say that something else ran.  How a model
is converted, and checked against its source, is ``service.nlp.conversion``.

Generation lengths
    transformers' ``max_new_tokens`` counts the end-of-sequence token, and Marian and BART force
    that token into the last slot (``forced_eos_token_id``); ctranslate2's ``max_decoding_length``
    counts only the tokens it returns (a target prefix included, the end token not).  The bounds
    are translated accordingly (:func:`decoding_lengths`), so both backends stop at the same token.

Without torch
    Running a converted model needs ctranslate2 and the tokenizers, not torch.  A worker whose
    models are converted already keeps torch out of its memory altogether
    (``service.nlp.torchless``); only converting (``service.nlp.converter``) loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2

from service.errors import ModelUnavailableError
from service.nlp.conversion import converted_copy, resolve_compute_type, target_vocabulary
from service.nlp.device import DeviceLike, inference_threads
from service.nlp.engine import (
    Engines,
    GenerationLengths,
    GuardedSummarizer,
    GuardedTranslator,
    ModelRef,
    TokenSequences,
)
from service.nlp.loading import quiet_tokenizer
from service.nlp.priority import call_lowered
from service.nlp.torchless import keep_torch_out
from service.nlp.vocabulary_map import (
    english_tokens_by_frequency,
    vocabulary_map_text,
    write_vocabulary_map,
)
from service.presets import Generation
from service.settings import Settings

__all__ = [
    "CT2Model",
    "CT2Summarizer",
    "CT2Translator",
    "DecodingDefaults",
    "ct2_device",
    "decoding_lengths",
    "load_ct2_engines",
    "load_ct2_model",
]


@dataclass(frozen=True, slots=True)
class DecodingDefaults:
    """What transformers' ``generate`` takes from the model's generation config implicitly."""

    target_prefix: tuple[str, ...]
    """Tokens forced at the start (BART's ``forced_bos_token_id``: ``<s>``)."""
    forced_eos: bool
    """Whether the last slot is forced to the end token (``forced_eos_token_id``)."""
    suppress: tuple[tuple[str, ...], ...]
    """``bad_words_ids`` as token sequences, limited to tokens the converted model can emit."""
    vocabulary: frozenset[str] = frozenset()
    """The converted model's target tokens (what ``suppress_sequences`` may name)."""


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
    use_vmap: bool = False
    """Score only the vocabulary map's candidates (``service.nlp.vocabulary_map``)."""


def ct2_device(device: DeviceLike) -> tuple[str, int]:
    """ctranslate2's device name and index for a device (``Device`` or ``torch.device``)."""
    if device.type == "cuda":
        return "cuda", device.index or 0
    return "cpu", 0


def load_ct2_model(
    source: str,
    *,
    device: DeviceLike,
    compute_type: str,
    out_root: Path,
    threads: int,
    allow_download: bool = True,
    vocabulary_map: int = 0,
) -> CT2Model:
    """Resolve, convert (once) and load one model under ctranslate2.

    ``threads`` are the intra-op threads of this model's one translator (``inter_threads=1``:
    the caller runs one batch at a time and parallelism comes from within each batch, so a
    worker never runs more threads than it was given).  Whether torch is loaded is the caller's
    affair: this imports it only to convert, and :func:`load_ct2_engines` keeps it out.

    ``vocabulary_map`` > 0 writes a vocabulary map with that many frequent target tokens into
    the converted copy before loading it, and decodes with it (``service.nlp.vocabulary_map``).
    """
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    quantization = resolve_compute_type(compute_type, device)
    source_dir, revision, converted = converted_copy(
        source, quantization, out_root, allow_download=allow_download
    )
    try:
        tokenizer = quiet_tokenizer(AutoTokenizer, str(source_dir))
        config = AutoConfig.from_pretrained(str(source_dir))
    except (OSError, ValueError) as error:
        raise ModelUnavailableError(source, f"loading failed ({error})") from error
    try:
        generation = GenerationConfig.from_pretrained(str(source_dir))
    except OSError:  # no generation_config.json: the defaults live in config.json
        generation = GenerationConfig.from_model_config(config)
    if vocabulary_map > 0:
        _write_vocabulary_map(converted, tokenizer, vocabulary_map, source)
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
        use_vmap=vocabulary_map > 0,
    )


def _write_vocabulary_map(converted: Path, tokenizer: Any, frequent: int, source: str) -> None:
    """Write the converted copy's ``vmap.txt`` (before ctranslate2 loads it, which reads it)."""
    vocabulary = target_vocabulary(converted)
    text = vocabulary_map_text(
        vocabulary, english_tokens_by_frequency(tokenizer, vocabulary), frequent=frequent
    )
    try:
        write_vocabulary_map(converted, text)
    except OSError as error:
        raise ModelUnavailableError(
            source, f"could not write its vocabulary map into {converted} ({error})"
        ) from error


def _decoding_defaults(
    generation: Any, tokenizer: Any, vocabulary: Collection[str]
) -> DecodingDefaults:
    """Read the generation-config settings that transformers applies without being asked."""
    prefix: tuple[str, ...] = ()
    if generation.forced_bos_token_id is not None:
        prefix = (str(tokenizer.convert_ids_to_tokens(int(generation.forced_bos_token_id))),)
    bad_words = [tuple(int(i) for i in ids) for ids in generation.bad_words_ids or []]
    return DecodingDefaults(
        target_prefix=prefix,
        forced_eos=generation.forced_eos_token_id is not None,
        suppress=_token_sequences(tokenizer, bad_words, vocabulary),
        vocabulary=frozenset(vocabulary),
    )


def _token_sequences(
    tokenizer: Any, sequences: Sequence[Sequence[int]], vocabulary: Collection[str]
) -> tuple[tuple[str, ...], ...]:
    """Token-id sequences as ctranslate2's token strings, in order, without duplicates.

    A sequence with a token missing from the converted vocabulary (Marian's ``<pad>``) cannot be
    generated, so it is left out rather than passed to ctranslate2 as an unknown token.
    """
    out: dict[tuple[str, ...], None] = {}
    for ids in sequences:
        tokens = tuple(str(t) for t in tokenizer.convert_ids_to_tokens([int(i) for i in ids]))
        if tokens and all(token in vocabulary for token in tokens):
            out[tokens] = None
    return tuple(out)


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


def _generate(
    model: CT2Model,
    source: list[list[str]],
    lengths: GenerationLengths,
    suppress: Sequence[tuple[str, ...]] = (),
    **options: Any,
) -> list[list[str]]:
    """Run one batch of token lists with transformers' implicit decoding settings applied."""
    nbest = _generate_nbest(model, source, lengths, suppress, **options)
    return [hypotheses[0] for hypotheses in nbest]


def _generate_nbest(
    model: CT2Model,
    source: list[list[str]],
    lengths: GenerationLengths,
    suppress: Sequence[tuple[str, ...]] = (),
    **options: Any,
) -> list[list[list[str]]]:
    """Every hypothesis of each source (``num_hypotheses`` in ``options``), best first.

    ``suppress`` (forbidden spellings as token strings) is added to the model's own.
    """
    decoding = model.decoding
    max_length, min_length = decoding_lengths(
        lengths.max_new, lengths.min_new, forced_eos=decoding.forced_eos
    )
    suppressed = list(dict.fromkeys([*decoding.suppress, *suppress]))
    results = model.translator.translate_batch(
        source,
        [list(decoding.target_prefix)] * len(source) if decoding.target_prefix else None,
        max_decoding_length=max_length,
        min_decoding_length=min_length,
        max_input_length=0,  # the engines' own length guard is the only limit, as in transformers
        suppress_sequences=[list(s) for s in suppressed] or None,
        return_end_token=False,
        use_vmap=model.use_vmap,
        **options,
    )
    return [[list(h) for h in result.hypotheses] for result in results]


class CT2Translator(GuardedTranslator):
    """MarianMT under ctranslate2, guarded exactly like ``TransformersTranslator``."""

    def __init__(self, model: CT2Model, *, num_beams: int = 1) -> None:
        super().__init__(model.tokenizer, model.config, model.ref, num_beams=num_beams)
        self.model = model

    def translate_tokens(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        """The output tokens (no start or end token) for one batch; the parity tests use it."""
        if not texts:
            return []
        source = _source_tokens(self.model, texts, self.tokenizer_lock)
        longest = max(len(tokens) for tokens in source)
        self.check_source(longest)
        return _generate(
            self.model,
            source,
            self.generation_lengths(longest),
            self._suppress(forbidden),
            beam_size=self.num_beams,
        )

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        """Translate one batch; every text must already fit ``max_source_tokens``."""
        tokens = self.translate_tokens(texts, forbidden)
        return self.finish(_decode(self.model, tokens, self.tokenizer_lock))

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        """The ``n`` best translations of each text, best first."""
        if not texts:
            return []
        beams = self.nbest_beams(n)
        source = _source_tokens(self.model, texts, self.tokenizer_lock)
        longest = max(len(tokens) for tokens in source)
        self.check_source(longest)
        nbest = _generate_nbest(
            self.model,
            source,
            self.generation_lengths(longest),
            self._suppress(forbidden),
            beam_size=beams,
            num_hypotheses=n,
        )
        return [
            self.finish(_decode(self.model, hypotheses, self.tokenizer_lock))
            for hypotheses in nbest
        ]

    def _suppress(self, forbidden: TokenSequences) -> tuple[tuple[str, ...], ...]:
        """Forbidden token-id sequences as the token strings ``suppress_sequences`` takes."""
        if not forbidden:
            return ()
        with self.tokenizer_lock:
            return _token_sequences(
                self.model.tokenizer, sorted(forbidden), self.model.decoding.vocabulary
            )


class CT2Summarizer(GuardedSummarizer):
    """A seq2seq summarizer under ctranslate2 with ``TransformersSummarizer``'s semantics.

    The same token bounds, beams, length penalty and n-gram blocking; BART's forced ``<s>``
    becomes a target prefix.
    """

    def __init__(self, model: CT2Model) -> None:
        super().__init__(model.tokenizer, model.config, model.ref)
        self.model = model

    def summarize_tokens(self, texts: Sequence[str], generation: Generation) -> list[list[str]]:
        """The output tokens (target prefix included) for one batch; the parity tests use it."""
        if not texts:
            return []
        source = _source_tokens(self.model, texts, self.tokenizer_lock)
        self.check_input(max(len(tokens) for tokens in source))
        return _generate(
            self.model,
            source,
            self.summary_lengths(generation),
            beam_size=generation.num_beams,
            length_penalty=generation.length_penalty,
            no_repeat_ngram_size=generation.no_repeat_ngram_size,
        )

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        """Summarize texts that each fit ``max_input_tokens``, as one batch."""
        tokens = self.summarize_tokens(texts, generation)
        return self.finish(_decode(self.model, tokens, self.tokenizer_lock))


def load_ct2_engines(
    settings: Settings, *, device: DeviceLike, threads: int | None = None
) -> Engines:
    """Load both models under ctranslate2, converting them on first use, without torch after.

    Each model gets ``threads`` (default ``KURZ_INFERENCE_THREADS``, or the cores this process
    may use) intra-op threads and one inter-op thread.  The translate lane gets a copy of the
    translation model of its own, whose threads outrank the article side's.  Two workers on one
    machine should each be given half the cores (``KURZ_INFERENCE_THREADS`` or CPU affinity,
    which ``usable_cores`` respects) so that they do not oversubscribe it.

    Both models are converted (if they are not yet) before either is loaded, and then torch is
    kept out of the process (``service.nlp.torchless``): a worker started on converted models
    never imports it, and one that converted on this start has it already and simply keeps it.
    """
    quantization = resolve_compute_type(settings.compute_type, device)
    out_root = Path(settings.converted_models_dir)
    for source in dict.fromkeys([settings.translation_source, settings.summarization_source]):
        converted_copy(source, quantization, out_root)
    keep_torch_out()
    common: dict[str, Any] = {
        "device": device,
        "compute_type": settings.compute_type,
        "out_root": out_root,
        "threads": threads or inference_threads(settings),
    }

    def article_models() -> tuple[CT2Model, CT2Model]:
        return (
            load_ct2_model(
                settings.translation_source,
                vocabulary_map=settings.translation_vocabulary_map,
                **common,
            ),
            load_ct2_model(settings.summarization_source, **common),
        )

    # The article side's worker threads are started lowered, the lane's copy at the worker's
    # own priority (``service.nlp.priority``).  The copy costs the translation model's memory
    # once more (about 80 MB for opus-mt-de-en in int8); its conversion is shared.
    translation, summarization = call_lowered(article_models, settings.background_nice)
    return Engines(
        translation=CT2Translator(translation, num_beams=settings.translation_beams),
        summarization=CT2Summarizer(summarization),
        urgent_translation=CT2Translator(
            load_ct2_model(
                settings.translation_source,
                vocabulary_map=settings.translation_vocabulary_map,
                **common,
            ),
            num_beams=settings.translation_beams,
        ),
    )
