"""The transformers backend: both models run by ``generate`` under torch, the reference backend.

The limits, generation lengths and guards are ``service.nlp.engine``'s, shared with the
CTranslate2 backend; this module adds how one batch is tokenized, generated and decoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from service.nlp.device import DeviceLike
from service.nlp.engine import (
    Engines,
    GenerationLengths,
    GuardedSummarizer,
    GuardedTranslator,
    TokenizedEngine,
    TokenSequences,
)
from service.nlp.loading import LoadedModel, load_seq2seq
from service.presets import Generation
from service.settings import Settings

__all__ = ["TransformersSummarizer", "TransformersTranslator", "load_transformers_engines"]


@torch.inference_mode()
def _generate(
    engine: TokenizedEngine,
    loaded: LoadedModel,
    texts: Sequence[str],
    check: Callable[[int], None],
    lengths_for: Callable[[int], GenerationLengths],
    **options: Any,
) -> list[str]:
    """Tokenize one padded batch, guard it, generate greedily or by beams, and decode it.

    ``check`` is called with the padded input length and refuses what the model cannot read;
    ``lengths_for`` is called with the longest input's token count and returns the bounds.
    """
    with engine.tokenizer_lock:
        batch = engine.tokenizer(list(texts), return_tensors="pt", padding=True)
    check(int(batch["input_ids"].shape[1]))
    batch = {name: tensor.to(loaded.device) for name, tensor in batch.items()}
    lengths = lengths_for(int(batch["attention_mask"].sum(dim=1).max()))
    if lengths.min_new > 0:
        options["min_new_tokens"] = lengths.min_new
    output = loaded.model.generate(
        **batch, max_new_tokens=lengths.max_new, do_sample=False, **options
    )
    with engine.tokenizer_lock:
        decoded: list[str] = engine.tokenizer.batch_decode(output, skip_special_tokens=True)
    return decoded


class TransformersTranslator(GuardedTranslator):
    """MarianMT (or any seq2seq translator) under transformers, with guarded generation."""

    def __init__(self, loaded: LoadedModel, *, num_beams: int = 1) -> None:
        super().__init__(loaded.tokenizer, loaded.model.config, loaded.ref, num_beams=num_beams)
        self.loaded = loaded

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        """Translate one batch; every text must already fit ``max_source_tokens``."""
        return [best for best, *_ in self.translate_nbest(texts, 1, forbidden)]

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        """The ``n`` best translations of each text by beam search, best first."""
        if not texts:
            return []
        options: dict[str, Any] = {}
        if forbidden:
            options["bad_words_ids"] = self._bad_words_ids(forbidden)
        decoded = _generate(
            self,
            self.loaded,
            texts,
            self.check_source,
            self.generation_lengths,
            num_beams=self.nbest_beams(n),
            num_return_sequences=n,
            **options,
        )
        finished = self.finish(decoded)
        return [finished[i * n : (i + 1) * n] for i in range(len(texts))]

    def _bad_words_ids(self, forbidden: TokenSequences) -> list[list[int]]:
        """``forbidden`` added to the model's own ``bad_words_ids`` (Marian's ``<pad>``), which
        a ``bad_words_ids`` argument to ``generate`` would otherwise replace."""
        own = self.loaded.model.generation_config.bad_words_ids or []
        merged = dict.fromkeys(tuple(int(i) for i in ids) for ids in own)
        merged.update(dict.fromkeys(sorted(forbidden)))
        return [list(ids) for ids in merged]


class TransformersSummarizer(GuardedSummarizer):
    """A seq2seq summarizer under transformers with bounded generation."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__(loaded.tokenizer, loaded.model.config, loaded.ref)
        self.loaded = loaded

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        """Summarize texts that each fit ``max_input_tokens``, as one batch."""
        decoded = _generate(
            self,
            self.loaded,
            texts,
            self.check_input,
            lambda _longest: self.summary_lengths(generation),
            num_beams=generation.num_beams,
            length_penalty=generation.length_penalty,
            no_repeat_ngram_size=generation.no_repeat_ngram_size,
            early_stopping=generation.num_beams > 1,
        )
        return self.finish(decoded)


def load_transformers_engines(settings: Settings, *, device: DeviceLike) -> Engines:
    """Load both models under transformers, on ``device`` in ``KURZ_COMPUTE_TYPE``."""
    compute_type = settings.compute_type
    return Engines(
        translation=TransformersTranslator(
            load_seq2seq(settings.translation_source, device=device, compute_type=compute_type),
            num_beams=settings.translation_beams,
        ),
        summarization=TransformersSummarizer(
            load_seq2seq(settings.summarization_source, device=device, compute_type=compute_type)
        ),
    )
