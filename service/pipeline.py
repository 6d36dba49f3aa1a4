"""One article, start to finish: segment → detect language → translate → summarize → result.

The pipeline is asynchronous so a worker can run several articles at once: translation goes
through the shared ``InferenceScheduler`` (sentences of all articles batched together) and
summarization through its own single-thread executor, so the event loop never blocks on a model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from service.constants import MIN_GERMAN_SHARE
from service.errors import EmptyTextError, NotGermanError
from service.glossary_steps import GlossaryRun, NbestTranslator, merged_names
from service.nlp.backends import load_engines
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import Engines, ForbiddenForms, SummaryEngine
from service.nlp.priority import lower_this_thread
from service.nlp.summarize import summarize
from service.presets import PresetRegistry
from service.schemas import AlignedSentence, ModelInfo, Result, TranslatedParagraph
from service.settings import Settings
from service.summary_check import summarize_checked
from service.text.glossary import Glossary
from service.text.glossary_report import SentenceGlossaryReport
from service.text.language import detect_language
from service.text.segment import Sentence, join_sentences, split_sentences

ProgressSink = Callable[[str, int, int], None]
"""Called with (stage, done, total) as the article advances; must not block."""

ParagraphSink = Callable[[list[TranslatedParagraph]], None]
"""Called with the paragraphs whose every sentence is translated (with a glossary: settled) as
they finish, in paragraph order within one call, each paragraph once; must not block."""

TranslatedSink = Callable[[list[tuple[int, str]], bool], None]
"""Called with ``(index, translation)`` of texts now translated, and whether from the cache."""

Translate = Callable[[list[str], TranslatedSink], Awaitable[tuple[list[str], list[bool]]]]
"""``Pipeline._translate`` with its cache and progress bound: texts in, English and cache flags
out, each text handed to the sink as soon as it is done."""


#: With a listener for paragraphs, the article's opening paragraphs (whole paragraphs, at least
#: the first, up to this many sentences) are translated in a request of their own before the
#: rest.  Batches are cut by sentence length across the article, so otherwise a seed article is
#: one batch and its first paragraph comes with its last; split, the top of the article arrives
#: after one small batch.  The price is that batch, about one more per article.
LEAD_SENTENCES = 8


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
        translation = _ArticleTranslation(sentences, to_translate, glossary, on_paragraphs)
        lead = lead_length(sentences) if on_paragraphs is not None else 0
        await translation.run(
            lambda texts, on_translated: self._translate(
                texts,
                sentence_cache,
                progress,
                len(german),
                on_translated,
                forbidden,
                lead=lead,
            ),
            self._nbest,
        )
        english = translation.english()
        reports = translation.reports()[: len(german)]  # the title's report is not a sentence's
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
    ) -> tuple[list[str], list[bool]]:
        """Translate every text exactly once, in order, taking what the cache already has;
        ``on_translated`` hears of the cache's texts at once and of the others batch by batch.

        ``forbidden`` gives each text the spellings its translation must not contain (None:
        nothing): texts under the same set go to the scheduler as one request and are cached
        under that set's digest; the requests run at once and report progress together.  The
        first ``lead`` texts still missing go to the model first, in requests of their own (see
        ``LEAD_SENTENCES``), unless they are all that is missing.
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


def lead_length(sentences: Sequence[Sentence], limit: int = LEAD_SENTENCES) -> int:
    """How many sentences the article's opening paragraphs hold: whole paragraphs, at least the
    first, at most ``limit`` sentences unless the first paragraph alone is longer."""
    count = 0
    index = 0
    while index < len(sentences):
        paragraph = sentences[index].paragraph
        end = index
        while end < len(sentences) and sentences[end].paragraph == paragraph:
            end += 1
        if count and end > limit:
            break
        count = end
        index = end
    return count


class _ArticleTranslation:
    """One article's translation as it comes in: which paragraphs are complete, their glossary
    settling, and what ``on_paragraphs`` is told.

    Paragraphs complete out of order (batches are cut by sentence length, across the article
    and across jobs), so each sentence done counts its paragraph down; a paragraph at zero is
    settled against the glossary (if any, n-best fallback included) and then published.  What is
    published is final: the result is assembled from the same settled sentences.  Texts past the
    article's sentences (the title) belong to no paragraph and are settled at the end.
    """

    def __init__(
        self,
        sentences: Sequence[Sentence],
        texts: Sequence[str],
        glossary: GlossaryRun | None,
        sink: ParagraphSink | None,
    ) -> None:
        self.sentences = sentences
        self.texts = list(texts)
        self.glossary = glossary
        self.sink = sink
        self.cached = [False] * len(texts)
        self._raw: list[str | None] = [None] * len(texts)
        self._final: list[str | None] = [None] * len(texts)
        self._reports: list[SentenceGlossaryReport | None] = [None] * len(texts)
        self._members: dict[int, list[int]] = {}
        for index, sentence in enumerate(sentences):
            self._members.setdefault(sentence.paragraph, []).append(index)
        self._left = {paragraph: len(members) for paragraph, members in self._members.items()}
        self._settling: list[asyncio.Task[None]] = []
        self._nbest: NbestTranslator | None = None

    async def run(self, translate: Translate, nbest: NbestTranslator) -> None:
        """Translate every text, settling and publishing paragraphs as they complete."""
        self._nbest = nbest
        sources = self.glossary.sources if self.glossary else self.texts
        try:
            english, self.cached = await translate(sources, self._on_translated)
            if self._settling:
                await asyncio.gather(*self._settling)
        finally:
            for task in self._settling:
                task.cancel()
        self._raw = list(english)
        await self._settle([i for i, text in enumerate(self._final) if text is None])

    def english(self) -> list[str]:
        """Every text's settled English, in order (after :meth:`run`)."""
        return [text or "" for text in self._final]

    def reports(self) -> list[SentenceGlossaryReport]:
        """Every text's glossary report, in order; empty without a glossary."""
        return [r for r in self._reports if r is not None] if self.glossary else []

    def aligned(self, index: int) -> AlignedSentence:
        """Sentence ``index`` as the result's ``alignment`` (and a published paragraph) has it."""
        sentence = self.sentences[index]
        return AlignedSentence(
            de=sentence.text,
            en=self._final[index] or "",
            paragraph=sentence.paragraph,
            cached=self.cached[index],
            glossary=self._reports[index],
        )

    def _on_translated(self, pairs: list[tuple[int, str]], cached: bool) -> None:
        complete: list[int] = []
        for index, english in pairs:
            self._raw[index] = english
            self.cached[index] = cached
            if index < len(self.sentences):
                paragraph = self.sentences[index].paragraph
                self._left[paragraph] -= 1
                if self._left[paragraph] == 0:
                    complete.append(paragraph)
        if not complete:
            return
        if self.glossary is None:
            for paragraph in complete:
                for index in self._members[paragraph]:
                    self._final[index] = self._raw[index]
            self._publish(complete)
        else:
            self._settling.append(asyncio.create_task(self._settle_and_publish(complete)))

    async def _settle_and_publish(self, paragraphs: list[int]) -> None:
        await self._settle([i for p in paragraphs for i in self._members[p]])
        self._publish(paragraphs)

    async def _settle(self, indices: list[int]) -> None:
        """Fix the English of ``indices``: as translated, or settled against the glossary."""
        if not indices:
            return
        raw = [self._raw[i] or "" for i in indices]
        if self.glossary is None or self._nbest is None:
            for index, english in zip(indices, raw, strict=True):
                self._final[index] = english
            return
        settled, reports = await self.glossary.settle_some(indices, raw, self._nbest)
        for index, english, report in zip(indices, settled, reports, strict=True):
            self._final[index] = english
            self._reports[index] = report

    def _publish(self, paragraphs: list[int]) -> None:
        if self.sink is None:
            return
        self.sink(
            [
                TranslatedParagraph(
                    paragraph=paragraph,
                    first_sentence=self._members[paragraph][0],
                    sentences=[self.aligned(i) for i in self._members[paragraph]],
                )
                for paragraph in sorted(paragraphs)
            ]
        )


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
