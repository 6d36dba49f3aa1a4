"""The service's engines with every output length fixed, for timing random-weight models.

A random-weight model stops wherever its first end token happens to fall, so it would do an
arbitrary amount of work.  The benchmarks instead make every translation batch generate exactly
``ceil(length_factor x its longest source)`` tokens and every summary exactly ``summary_tokens``
(what the real models produce for German news), which makes a random model do the real one's
work.  These are subclasses of the service's own engines that only replace the length bounds
(``generation_lengths``, ``summary_lengths``): tokenization, guards and decoding stay what users
run.  The service itself knows nothing of them.
"""

from __future__ import annotations

import math
from typing import Any

from service.nlp.ct2 import CT2Summarizer, CT2Translator
from service.nlp.engine import (
    Engines,
    GenerationLengths,
    GuardedSummarizer,
    GuardedTranslator,
    SummaryEngine,
    TranslationEngine,
)
from service.nlp.transformers_engine import TransformersSummarizer, TransformersTranslator
from service.presets import Generation

__all__ = [
    "FixedLengthCT2Summarizer",
    "FixedLengthCT2Translator",
    "FixedLengthTransformersSummarizer",
    "FixedLengthTransformersTranslator",
    "with_fixed_lengths",
]


class FixedTranslationLength(GuardedTranslator):
    """Every batch generates exactly ``ceil(length_factor x its longest source)`` tokens."""

    def __init__(self, *args: Any, length_factor: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.length_factor = length_factor

    def generation_lengths(self, longest_source: int) -> GenerationLengths:
        new_tokens = max(1, math.ceil(self.length_factor * longest_source))
        return GenerationLengths(max_new=new_tokens, min_new=new_tokens)


class FixedSummaryLength(GuardedSummarizer):
    """Every summary is exactly ``summary_tokens`` new tokens long, whatever the preset says."""

    def __init__(self, *args: Any, summary_tokens: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary_tokens = summary_tokens

    def summary_lengths(self, generation: Generation) -> GenerationLengths:
        return GenerationLengths(max_new=self.summary_tokens, min_new=self.summary_tokens)


class FixedLengthTransformersTranslator(FixedTranslationLength, TransformersTranslator):
    """``TransformersTranslator(loaded, num_beams=...)`` with ``length_factor``."""


class FixedLengthCT2Translator(FixedTranslationLength, CT2Translator):
    """``CT2Translator(model, num_beams=...)`` with ``length_factor``."""


class FixedLengthTransformersSummarizer(FixedSummaryLength, TransformersSummarizer):
    """``TransformersSummarizer(loaded)`` with ``summary_tokens``."""


class FixedLengthCT2Summarizer(FixedSummaryLength, CT2Summarizer):
    """``CT2Summarizer(model)`` with ``summary_tokens``."""


def with_fixed_lengths(engines: Engines, *, length_factor: float, summary_tokens: int) -> Engines:
    """The same loaded models (``load_engines``' own), with every output length fixed."""
    return Engines(
        translation=_fixed_translator(engines.translation, length_factor),
        summarization=_fixed_summarizer(engines.summarization, summary_tokens),
    )


def _fixed_translator(engine: TranslationEngine, length_factor: float) -> TranslationEngine:
    if isinstance(engine, TransformersTranslator):
        return FixedLengthTransformersTranslator(
            engine.loaded, num_beams=engine.num_beams, length_factor=length_factor
        )
    if isinstance(engine, CT2Translator):
        return FixedLengthCT2Translator(
            engine.model, num_beams=engine.num_beams, length_factor=length_factor
        )
    raise TypeError(f"no fixed-length variant of {type(engine).__name__}")


def _fixed_summarizer(engine: SummaryEngine, summary_tokens: int) -> SummaryEngine:
    if isinstance(engine, TransformersSummarizer):
        return FixedLengthTransformersSummarizer(engine.loaded, summary_tokens=summary_tokens)
    if isinstance(engine, CT2Summarizer):
        return FixedLengthCT2Summarizer(engine.model, summary_tokens=summary_tokens)
    raise TypeError(f"no fixed-length variant of {type(engine).__name__}")
