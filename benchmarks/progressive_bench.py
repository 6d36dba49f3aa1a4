"""Progressive results: how soon an editor reads English, against how long the full result takes.

Why this benchmark exists: on two cores the summary takes longer than the translation, and
until issue 17 nothing was shown before both had ended.  Now each paragraph is handed over as
soon as its sentences are translated (``Pipeline.run(on_paragraphs=...)``, which the worker
writes to Redis and the API streams).  The issue's target: the first paragraph within
``TARGET_FIRST_PARAGRAPH_SHARE`` of the time to the full result, for every seed.

What runs, in one process: every seed article, one after another, through ``Pipeline.run`` of
the default backend (CTranslate2; int8 on a CPU) with the service's default settings and the
shipped ``standard`` style, on the random-weight real-size models (``benchmarks.models``, made
convertible by ``benchmarks.ct2_bench.prepare_ct2_models``).  For each seed it records, from
the start of the run: when the first paragraph was handed over, when the last one was (the whole
translation), and when the result was ready (summary and fact check included).  The figures are
the first two as shares of the third.

How it stays honest offline: every output length is fixed as in the other benchmarks (1.1 x the
source tokens per translation batch, 142 tokens per summary), and each translation is then cut
to its own sentence's length before decoding, so the summarizer reads as much text as behind a
real translator (without the cut, short sentences would decode to their batch's longest length
and the summary would take longer, flattering the shares).  No glossary is applied: random
weights miss every term, so n-best fallbacks would run for sentences a real model gets right.
Not measured here: the worker's Redis write per batch (well under a millisecond) and the event
stream's 0.25 s polling, which add to both sides of what a client sees.

``--progressive-models tiny`` runs the test models instead, as a quick check that the part runs
(their summary is cheap and their translation slow, so the shares say nothing).
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import SEEDS_DIR, Figures
from benchmarks.fixed_length import FixedLengthCT2Translator, with_fixed_lengths
from service.nlp.backends import load_engines
from service.nlp.ct2 import CT2Translator, _decode
from service.nlp.engine import Engines
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.schemas import TranslatedParagraph
from service.settings import Settings

__all__ = ["TARGET_FIRST_PARAGRAPH_SHARE", "ProgressiveBenchOptions", "run_progressive_benchmark"]

#: The issue's target: the first paragraph within this share of the time to the full result.
TARGET_FIRST_PARAGRAPH_SHARE = 0.15
#: As in the other benchmarks: translation output per source token, summary tokens.
LENGTH_FACTOR = 1.1
SUMMARY_TOKENS = 142
STYLE = "standard"


@dataclass(frozen=True, slots=True)
class ProgressiveBenchOptions:
    """Knobs of one run."""

    models: str = "real-size"
    """``real-size`` (random weights, real architectures) or ``tiny`` (a quick check)."""
    seeds: int = 0
    """How many seed articles to run, in file order (0: all)."""
    seeds_dir: Path = SEEDS_DIR


@dataclass(frozen=True, slots=True)
class SeedTiming:
    """When one article's first and last paragraph and its result came, in seconds."""

    name: str
    sentences: int
    paragraphs: int
    first_paragraph_s: float
    translation_s: float
    full_s: float


class OwnLengthCT2Translator(FixedLengthCT2Translator):
    """Every batch generates ``ceil(1.1 x its longest source)`` tokens, the work a real batch
    does; each row is then cut to ``ceil(1.1 x its own source tokens)`` before decoding, the
    length a real model's translation of that sentence has."""

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        generated = self.translate_tokens(texts)
        own = self.count_tokens(texts)
        cut = [row[: math.ceil(LENGTH_FACTOR * n)] for row, n in zip(generated, own, strict=True)]
        return self.finish(_decode(self.model, cut, self.tokenizer_lock))


def run_progressive_benchmark(options: ProgressiveBenchOptions | None = None) -> Figures:
    """Build and load the models, run the seeds, return the per-seed shares and their worst."""
    options = options or ProgressiveBenchOptions()
    paths = sorted(options.seeds_dir.glob("*.txt"))
    if options.seeds:
        paths = paths[: options.seeds]
    if not paths:
        raise RuntimeError(f"no seed articles in {options.seeds_dir}")
    figures: Figures = {"progressive_models": options.models}
    with tempfile.TemporaryDirectory(prefix="kurz-bench-progressive-") as scratch:
        settings = _settings(options, Path(scratch), figures)
        started = time.perf_counter()
        pipeline = _pipeline(settings, fixed_lengths=options.models != "tiny")
        figures["progressive_load_s"] = round(time.perf_counter() - started, 1)
        translation = pipeline.scheduler.engine.ref
        figures["progressive_backend"] = f"{translation.backend} {translation.compute_type}"
        try:
            asyncio.run(_warm_up(pipeline))
            load_before = _load_1m()
            timings = [
                asyncio.run(
                    _timed(pipeline, path.stem.split("_", 1)[0], path.read_text(encoding="utf-8"))
                )
                for path in paths
            ]
            figures["progressive_load_1m"] = round((load_before + _load_1m()) / 2, 2)
        finally:
            pipeline.close()
    figures.update(_figures(timings))
    return figures


def _settings(options: ProgressiveBenchOptions, scratch: Path, figures: Figures) -> Settings:
    """The service's default settings on the chosen models; ``.env`` and ``KURZ_*`` are
    ignored, so a developer's configuration cannot change what is measured."""
    common = {
        "_env_file": None,
        "device": "cpu",
        "backend": "ctranslate2",
        "converted_models_dir": scratch / "converted",
    }
    if options.models == "tiny":
        from service.dev.tiny import make_tiny_models

        make_tiny_models(scratch / "tiny")
        return Settings(models="tiny", tiny_models_dir=scratch / "tiny", **common)  # type: ignore[arg-type]
    from benchmarks.ct2_bench import prepare_ct2_models

    print("  building real-size random-weight models (convertible copies) ...", flush=True)
    built = prepare_ct2_models(scratch / "models")
    figures["progressive_models_build_s"] = round(built.build_s, 1)
    return Settings(
        models="hub",
        translation_model=str(built.translation),
        summarization_model=str(built.summarization),
        **common,  # type: ignore[arg-type]
    )


def _pipeline(settings: Settings, *, fixed_lengths: bool) -> Pipeline:
    """The service's pipeline on the loaded engines, with every output length fixed (the tiny
    models keep their own: 142-token summaries would not fit their 256-token inputs)."""
    loaded = load_engines(settings)
    if not fixed_lengths:
        return build_pipeline(settings, engines=loaded)
    fixed = with_fixed_lengths(loaded, length_factor=LENGTH_FACTOR, summary_tokens=SUMMARY_TOKENS)
    translator = loaded.translation
    if not isinstance(translator, CT2Translator):
        raise TypeError(f"expected the ctranslate2 backend, got {type(translator).__name__}")
    engines = Engines(
        translation=OwnLengthCT2Translator(
            translator.model, num_beams=translator.num_beams, length_factor=LENGTH_FACTOR
        ),
        summarization=fixed.summarization,
    )
    return build_pipeline(settings, engines=engines)


async def _warm_up(pipeline: Pipeline) -> None:
    """Load SoMaJo and the language model and run both models once, outside the timings."""
    await pipeline.run(ArticleRequest(text="Das ist ein kurzer Satz.\n\nUnd noch einer hier."))


async def _timed(pipeline: Pipeline, name: str, text: str) -> SeedTiming:
    """One seed through the pipeline, noting when its paragraphs and its result arrive."""
    arrivals: list[float] = []
    started = time.perf_counter()

    def on_paragraphs(paragraphs: list[TranslatedParagraph]) -> None:
        arrivals.extend(time.perf_counter() - started for _ in paragraphs)

    result = await pipeline.run(
        ArticleRequest(text=text, style=STYLE),
        on_paragraphs=on_paragraphs,
    )
    full_s = time.perf_counter() - started
    timing = SeedTiming(
        name=name,
        sentences=result.sentences_in,
        paragraphs=len(arrivals),
        first_paragraph_s=min(arrivals),
        translation_s=max(arrivals),
        full_s=full_s,
    )
    print(
        f"    seed {timing.name}: first paragraph {timing.first_paragraph_s:.1f} s, whole "
        f"translation {timing.translation_s:.1f} s, full result {full_s:.1f} s "
        f"({timing.paragraphs} paragraphs, {timing.sentences} sentences; load {_load_1m()})",
        flush=True,
    )
    return timing


def _figures(timings: Sequence[SeedTiming]) -> Figures:
    figures: Figures = {"progressive_seeds": len(timings)}
    first_shares: list[float] = []
    translation_shares: list[float] = []
    for timing in timings:
        first = timing.first_paragraph_s / timing.full_s
        whole = timing.translation_s / timing.full_s
        first_shares.append(first)
        translation_shares.append(whole)
        prefix = f"progressive_seed{timing.name}"
        figures[f"{prefix}_first_paragraph_s"] = round(timing.first_paragraph_s, 2)
        figures[f"{prefix}_translation_s"] = round(timing.translation_s, 2)
        figures[f"{prefix}_full_result_s"] = round(timing.full_s, 2)
        figures[f"{prefix}_first_paragraph_share"] = round(first, 3)
        figures[f"{prefix}_translation_share"] = round(whole, 3)
    figures["progressive_first_paragraph_share_max"] = round(max(first_shares), 3)
    figures["progressive_first_paragraph_share_mean"] = round(statistics.fmean(first_shares), 3)
    figures["progressive_translation_share_max"] = round(max(translation_shares), 3)
    figures["progressive_translation_share_mean"] = round(statistics.fmean(translation_shares), 3)
    figures["progressive_first_paragraph_target"] = TARGET_FIRST_PARAGRAPH_SHARE
    figures["progressive_first_paragraph_target_met"] = (
        max(first_shares) <= TARGET_FIRST_PARAGRAPH_SHARE
    )
    return figures


def _load_1m() -> float:
    return round(os.getloadavg()[0], 2)
