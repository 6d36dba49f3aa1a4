"""One article, start to finish: segment → detect language → translate → summarize → result.

The pipeline is asynchronous so a worker can run several articles at once: translation goes
through the shared ``InferenceScheduler`` (sentences of all articles batched together) and
summarization through its own single-thread executor, so the event loop never blocks on a model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from service.constants import MIN_GERMAN_SHARE
from service.errors import EmptyTextError, NotGermanError
from service.glossary_steps import GlossaryRun, merged_names
from service.nlp.backends import load_engines
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import Engines, ForbiddenForms, SummaryEngine
from service.nlp.summarize import summarize
from service.presets import PresetRegistry
from service.schemas import AlignedSentence, ModelInfo, Result
from service.settings import Settings
from service.summary_check import summarize_checked
from service.text.glossary import Glossary
from service.text.glossary_report import SentenceGlossaryReport
from service.text.language import detect_language
from service.text.segment import join_sentences, split_sentences

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
    ) -> None:
        self.scheduler = scheduler
        self.summarizer = summarizer
        self.presets = presets
        self._summary_executor = ThreadPoolExecutor(1, thread_name_prefix="summarization")

    def close(self) -> None:
        """Stop the inference threads."""
        self.scheduler.close()
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
    ) -> Result:
        """Translate and summarize one article; raises ``InputError`` subclasses for bad input.

        ``sentence_cache`` is the worker's (it is keyed by the translation model, which is only
        known once the models are loaded); without one every sentence is translated.
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
        english, from_cache = await self._translate(
            glossary.sources if glossary else to_translate,
            sentence_cache,
            progress,
            len(german),
            forbidden,
        )
        reports: list[SentenceGlossaryReport] = []
        if glossary is not None:
            english, reports = await glossary.settle(english, self._nbest)
            del reports[len(german) :]  # the title's report is not a sentence's
        title_en = english.pop() if title else None
        timings["translate_ms"] = _elapsed_ms(mark)

        mark = time.perf_counter()
        progress("summarize", 0, 1)
        loop = asyncio.get_running_loop()
        checked = await summarize_checked(
            lambda p: loop.run_in_executor(
                self._summary_executor, summarize, self.summarizer, english, p
            ),
            english,
            german,
            preset,
            names=merged_names(request.names, glossary),
        )
        outcome = checked.outcome
        summary, glossary_report = (
            glossary.finish(outcome.text, reports) if glossary else (outcome.text, None)
        )
        progress("summarize", 1, 1)
        timings["summarize_ms"] = _elapsed_ms(mark)
        timings["total_ms"] = _elapsed_ms(started)

        cached_flags = from_cache[: len(german)]
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
            alignment=[
                AlignedSentence(
                    de=s.text,
                    en=en,
                    paragraph=s.paragraph,
                    cached=hit,
                    glossary=reports[i] if reports else None,
                )
                for i, (s, en, hit) in enumerate(zip(sentences, english, cached_flags, strict=True))
            ],
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
        forbidden: Sequence[ForbiddenForms | None] | None = None,
    ) -> tuple[list[str], list[bool]]:
        """Translate every text exactly once, in order, taking what the cache already has.

        ``forbidden`` gives each text the spellings its translation must not contain (None:
        nothing).  Texts under the same set go to the scheduler as one request, and are cached
        under that set's digest; the requests run at once and report progress together.
        """
        per_text = list(forbidden) if forbidden is not None else [None] * len(texts)
        groups: dict[ForbiddenForms | None, list[int]] = {}
        for index, forms in enumerate(per_text):
            groups.setdefault(forms, []).append(index)
        result: list[str | None] = [None] * len(texts)
        for forms, indices in groups.items():
            if cache is not None:
                known = await cache.get_many([texts[i] for i in indices], variant=_variant(forms))
                for index, hit in zip(indices, known, strict=True):
                    result[index] = hit
        flags = [hit is not None for hit in result]
        hits = sum(flags)
        done = dict.fromkeys(groups, 0)

        def report() -> None:
            progress("translate", min(reported_total, hits + sum(done.values())), reported_total)

        async def run(forms: ForbiddenForms | None, missing: list[int]) -> None:
            def on_batch(count: int) -> None:
                done[forms] = count
                report()

            fresh = await self.scheduler.translate(
                [texts[i] for i in missing], on_batch, forbidden=forms
            )
            for index, english in zip(missing, fresh, strict=True):
                result[index] = english
            if cache is not None and missing:
                pairs = [(texts[i], result[i] or "") for i in missing]
                await cache.set_many(pairs, variant=_variant(forms))

        report()
        missing = {
            forms: [i for i in indices if result[i] is None] for forms, indices in groups.items()
        }
        await _all(run(forms, indices) for forms, indices in missing.items() if indices)
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
    scheduler = InferenceScheduler(
        engines.translation,
        token_budget=settings.batch_token_budget,
        max_sentences=settings.max_batch_sentences,
    )
    return Pipeline(scheduler, engines.summarization, registry)
