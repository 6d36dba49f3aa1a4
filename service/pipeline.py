"""One article, start to finish: segment → detect language → translate → summarize → result.

The pipeline is asynchronous so a worker can run several articles at once: translation goes
through the shared ``InferenceScheduler`` (sentences of all articles batched together) and
summarization through its own single-thread executor, so the event loop never blocks on a model.
Which paragraphs are complete as translations arrive, and what a listener is told of them, is
``service.article_translation``'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from service.article_translation import (
    ArticleTranslation,
    ParagraphSink,
    TranslatedSink,
    lead_length,
)
from service.constants import MIN_GERMAN_SHARE
from service.errors import EmptyTextError, NotGermanError
from service.glossary_steps import GlossaryRun, merged_names
from service.nlp.backends import load_engines
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import Engines, ForbiddenForms, SummaryEngine
from service.nlp.priority import lower_this_thread
from service.nlp.summarize import CHUNKS_PER_BATCH, SummaryOutcome, summarize
from service.presets import Preset, PresetRegistry
from service.schemas import ModelInfo, Result
from service.settings import Settings
from service.summary_check import summarize_checked
from service.summary_pipeline import EarlyMap
from service.text.glossary import Glossary
from service.text.glossary_report import GlossaryReport
from service.text.language import detect_language
from service.text.segment import join_sentences, split_sentences

#: ``Pipeline.ordered_part``'s default: one batch each (a seed article's sentences fill three).
ORDERED_PART_SENTENCES = 12
#: German characters per summary-model token, about: an article shorter than one map batch of
#: chunks (in these units) has nothing to map early and keeps its length-sorted batches.
CHARS_PER_SUMMARY_TOKEN = 4

ProgressSink = Callable[[str, int, int], None]
"""Called with (stage, done, total) as the article advances; must not block."""


class SentenceCache(Protocol):
    """Translations of single sentences, keyed by the translation model and the sentence, and by
    ``variant`` (the digest of the forbidden spellings they were translated under) if any."""

    async def get_many(
        self, sentences: Sequence[str], *, variant: str | None = None
    ) -> list[str | None]: ...

    async def set_many(
        self, pairs: Sequence[tuple[str, str]], *, variant: str | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class ArticleRequest:
    """What one article asks for."""

    text: str
    title: str | None = None
    style: str = "standard"
    allow_non_german: bool = False
    #: German -> English name forms (glossary targets) that the summary's fact check accepts.
    names: Mapping[str, str] | None = None
    #: Applied to the source, checked in the translation and summary (``service.glossary_steps``).
    glossary: Glossary | None = None


class Pipeline:
    """Holds the loaded engines; ``run`` processes one article."""

    def __init__(
        self,
        scheduler: InferenceScheduler,
        summarizer: SummaryEngine,
        presets: PresetRegistry,
        *,
        urgent: InferenceScheduler | None = None,
        background_nice: int = 0,
    ) -> None:
        self.scheduler = scheduler
        #: The translate lane's scheduler: its own thread (and, on CTranslate2, its own copy of
        #: the model), so a lane request never waits for the article batch in hand.
        self.urgent = urgent or scheduler
        self.summarizer = summarizer
        self.presets = presets
        self._summary_executor = ThreadPoolExecutor(
            1,
            thread_name_prefix="summarization",
            initializer=lower_this_thread,
            initargs=(background_nice,),
        )
        #: Start the summary's map step on each batch of chunks as soon as its translation is
        #: settled (``service.summary_pipeline``); off, the summary starts after the whole
        #: translation (``benchmarks/early_map_bench.py`` compares the two).
        self.early_map = True
        #: With ``early_map``, the sentences left after the lead go to the scheduler in runs of
        #: this many, in article order, each run after the one before (0: all at once, sorted by
        #: length across the article).  A chunk can only be summarized early once every sentence
        #: before its end is translated; length-sorted batches finish the article's opening
        #: last as often as first.  The price is smaller translation batches.
        self.ordered_part = ORDERED_PART_SENTENCES

    def close(self) -> None:
        """Stop the inference threads."""
        self.scheduler.close()
        if self.urgent is not self.scheduler:
            self.urgent.close()
        self._summary_executor.shutdown(wait=True, cancel_futures=True)

    @property
    def models(self) -> dict[str, ModelInfo]:
        """The models this pipeline runs, as results report them."""
        translation = self.scheduler.engine.ref
        summarization = self.summarizer.ref
        return {
            "translation": ModelInfo(
                translation.id,
                translation.revision,
                translation.backend,
                translation.compute_type,
            ),
            "summarization": ModelInfo(
                summarization.id,
                summarization.revision,
                summarization.backend,
                summarization.compute_type,
            ),
        }

    async def run(
        self,
        request: ArticleRequest,
        *,
        on_progress: ProgressSink | None = None,
        sentence_cache: SentenceCache | None = None,
        on_paragraphs: ParagraphSink | None = None,
    ) -> Result:
        """Translate and summarize one article; raises ``InputError`` subclasses for bad input.

        ``sentence_cache`` is the worker's (it is keyed by the translation model, which is only
        known once the models are loaded); without one every sentence is translated.
        ``on_paragraphs`` hears of each paragraph as soon as it is translated, long before the
        summary is written; the result's ``alignment`` holds the same sentences.
        """
        progress = on_progress or (lambda stage, done, total: None)
        preset = self.presets.get(request.style)
        timings: dict[str, float] = {}
        started = time.perf_counter()

        progress("segment", 0, 1)
        sentences = await asyncio.to_thread(split_sentences, request.text)
        if not sentences:
            raise EmptyTextError()
        german = [s.text for s in sentences]
        language = await asyncio.to_thread(detect_language, german)
        if not request.allow_non_german and language.german_share < MIN_GERMAN_SHARE:
            raise NotGermanError(language.language, language.german_share)
        timings["segment_ms"] = _elapsed_ms(started)

        mark = time.perf_counter()
        title = request.title.strip() if request.title else ""
        to_translate = german + ([title] if title else [])
        glossary = GlossaryRun.start(request.glossary, to_translate) if request.glossary else None
        forbidden = (
            [glossary.forbidden if c else None for c in glossary.constrained] if glossary else None
        )
        early = (
            EarlyMap(self.summarizer, preset, self._summary_executor) if self.early_map else None
        )
        translation = ArticleTranslation(sentences, to_translate, glossary, on_paragraphs)
        if early is not None:
            early.follow(translation)
        lead = lead_length(sentences) if on_paragraphs is not None else 0
        try:
            await translation.run(
                lambda texts, on_translated: self._translate(
                    texts,
                    sentence_cache,
                    progress,
                    len(german),
                    on_translated,
                    forbidden,
                    lead=lead,
                    ordered=self._ordered_part(german),
                ),
                self._nbest,
            )
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        english = translation.english()
        reports = translation.reports()[: len(german)]  # the title's report is not a sentence's
        title_en = english.pop() if title else None
        timings["translate_ms"] = _elapsed_ms(mark)

        mark = time.perf_counter()
        progress("summarize", 0, 1)
        # The map job in hand, if any, ends first: the summary would queue behind it anyway.
        mapped = await early.finish() if early is not None else []
        loop = asyncio.get_running_loop()
        glossary_reports: list[tuple[SummaryOutcome, GlossaryReport]] = []

        async def summarize_repaired(attempt: Preset) -> SummaryOutcome:
            """One summary, its German name forms already replaced by the glossary's English
            ones: the fact checks must judge (and point into) the text the result returns."""
            reuse = mapped if attempt is preset else []  # a retry decodes otherwise
            outcome = await loop.run_in_executor(
                self._summary_executor,
                functools.partial(summarize, self.summarizer, english, attempt, mapped=reuse),
            )
            if glossary is None:
                return outcome
            text, report = glossary.finish(outcome.text, reports)
            repaired = dataclasses.replace(outcome, text=text)
            glossary_reports.append((repaired, report))
            return repaired

        checked = await summarize_checked(
            summarize_repaired,
            english,
            german,
            preset,
            names=merged_names(request.names, glossary),
        )
        outcome = checked.outcome
        summary = outcome.text
        glossary_report = next(
            (report for made, report in glossary_reports if made is outcome), None
        )
        progress("summarize", 1, 1)
        timings["summarize_ms"] = _elapsed_ms(mark)
        timings["total_ms"] = _elapsed_ms(started)

        cached_flags = translation.cached[: len(german)]
        return Result(
            title_en=title_en,
            translation=join_sentences(sentences, english),
            summary=summary,
            style=request.style,
            source_language=language.language,
            german_share=round(language.german_share, 4),
            sentences_in=len(german),
            sentences_translated=len(english),
            sentences_from_cache=sum(cached_flags),
            alignment=[translation.aligned(i) for i in range(len(german))],
            models=self.models,
            timings_ms=timings,
            summary_chunks=outcome.chunks,
            summary_rounds=outcome.rounds,
            checks=checked.checks,
            summary_flags=checked.flags,
            summary_attempts=checked.attempts,
            summary_kept=checked.kept,
            glossary=glossary_report,
        )

    def _ordered_part(self, german: Sequence[str]) -> int:
        """The runs, in sentences, in which this article goes to the scheduler (0: at once):
        only with the early map step, and only for an article likely to fill more than one
        map batch of chunks, the least ``EarlyMap`` starts early on (an estimate from its
        length; a wrong guess costs batch efficiency, not correctness)."""
        if not self.early_map:
            return 0
        limit = CHUNKS_PER_BATCH * self.summarizer.max_input_tokens * CHARS_PER_SUMMARY_TOKEN
        return self.ordered_part if sum(len(text) for text in german) > limit else 0

    async def _nbest(
        self, texts: list[str], n: int, forbidden: ForbiddenForms | None
    ) -> list[list[str]]:
        """The ``n`` best translations of each text, none with a forbidden spelling, on the
        inference thread before its next batch (the glossary fallback)."""
        return await self.scheduler.translate_nbest(texts, n, forbidden=forbidden)

    async def _translate(
        self,
        texts: list[str],
        cache: SentenceCache | None,
        progress: ProgressSink,
        reported_total: int,
        on_translated: TranslatedSink,
        forbidden: Sequence[ForbiddenForms | None] | None = None,
        *,
        lead: int = 0,
        ordered: int = 0,
    ) -> tuple[list[str], list[bool]]:
        """Translate every text exactly once, in order, taking what the cache already has;
        ``on_translated`` hears of the cache's texts at once and of the others batch by batch.

        ``forbidden`` gives each text the spellings its translation must not contain (None:
        nothing): texts under the same set go to the scheduler as one request and are cached
        under that set's digest; the requests run at once and report progress together.  The
        first ``lead`` texts still missing go to the model first, in requests of their own (see
        ``service.article_translation.LEAD_SENTENCES``), unless they are all that is missing.
        ``ordered`` > 0 cuts every request further into runs of that many texts, in order, each
        sent after the one before has come back (see ``Pipeline.ordered_part``).
        """
        per_text = list(forbidden) if forbidden is not None else [None] * len(texts)
        groups: dict[ForbiddenForms | None, list[int]] = {}
        for index, forms in enumerate(per_text):
            groups.setdefault(forms, []).append(index)
        known: list[str | None] = [None] * len(texts)
        if cache is not None:
            for forms, indices in groups.items():
                hits = await cache.get_many([texts[i] for i in indices], variant=_variant(forms))
                for index, hit in zip(indices, hits, strict=True):
                    known[index] = hit
        missing = [i for i, hit in enumerate(known) if hit is None]
        cached = len(texts) - len(missing)
        first = [i for i in missing if i < lead]
        parts = [first, missing[len(first) :]] if 0 < len(first) < len(missing) else [missing]
        if ordered > 0:
            parts = [
                part[start : start + ordered]
                for part in parts
                for start in range(0, len(part), ordered)
            ]
        done: dict[object, int] = {}

        def report() -> None:
            progress("translate", min(reported_total, cached + sum(done.values())), reported_total)

        report()
        on_translated([(i, hit) for i, hit in enumerate(known) if hit is not None], True)
        result = list(known)

        async def run(forms: ForbiddenForms | None, indices: list[int]) -> None:
            slot = object()  # this request's share of the progress

            def on_batch(count: int) -> None:
                done[slot] = count
                report()

            def on_sentences(pairs: list[tuple[int, str]]) -> None:
                on_translated([(indices[j], english) for j, english in pairs], False)

            fresh = await self.scheduler.translate(
                [texts[i] for i in indices], on_batch, forbidden=forms, on_sentences=on_sentences
            )
            for index, english in zip(indices, fresh, strict=True):
                result[index] = english
            done[slot] = len(indices)
            if cache is not None:
                pairs = [(texts[i], result[i] or "") for i in indices]
                await cache.set_many(pairs, variant=_variant(forms))

        for part in parts:
            by_set: dict[ForbiddenForms | None, list[int]] = {}
            for index in part:
                by_set.setdefault(per_text[index], []).append(index)
            await _all(run(forms, indices) for forms, indices in by_set.items() if indices)
        flags = [hit is not None for hit in known]
        return [text or "" for text in result], flags


def _variant(forbidden: ForbiddenForms | None) -> str | None:
    """The sentence-cache variant of translations made under ``forbidden``."""
    return None if forbidden is None else forbidden.digest


async def _all(jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Await every job at once; the first failure cancels the others and is raised as is (no
    exception group: the worker maps typed errors to job outcomes)."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def build_pipeline(
    settings: Settings,
    *,
    presets: PresetRegistry | None = None,
    engines: Engines | None = None,
) -> Pipeline:
    """Load the models and presets the settings name and wire them into a ``Pipeline``.

    ``engines`` already loaded are used as they are (the benchmarks load theirs with fixed
    output lengths); the batching settings still come from ``settings``.
    """
    registry = presets or PresetRegistry.from_directory(settings.prompts_dir)
    if engines is None:
        engines = load_engines(settings)
    budget, most = settings.batch_token_budget, settings.max_batch_sentences
    scheduler = InferenceScheduler(
        engines.translation, token_budget=budget, max_sentences=most, nice=settings.background_nice
    )
    # The lane's thread stays at the worker's priority; without a copy of its own it drives the
    # article side's model (transformers: one module serves both threads).
    urgent = InferenceScheduler(
        engines.urgent_translation or engines.translation,
        token_budget=budget,
        max_sentences=most,
        name="lane-inference",
    )
    return Pipeline(
        scheduler,
        engines.summarization,
        registry,
        urgent=urgent,
        background_nice=settings.background_nice,
    )
