"""The worker's translate lane: translate-only jobs, run beside the article jobs.

A second SAQ worker in the same process takes jobs from the lane's own queue, with its own
slots (``KURZ_TRANSLATE_CONCURRENCY``).  Its sentences go to an inference scheduler of its own
(``Pipeline.urgent``: its own thread and, on CTranslate2, its own copy of the translation model),
which runs at the worker's priority while the article side runs lowered
(``service.nlp.priority``).  A one-sentence request therefore never waits for the article batch
in hand, nor for the cores the articles keep busy.  Nothing is summarized; the sentence cache is
read and written like an article's.

A job that names a glossary applies it as an article does (``service.glossary_steps``): the
glossary's target forms are written into the German sentences before translation, so the
sentence cache is keyed by the rewritten text the model sees; each translation is then checked
for its terms, with the scheduler's n-best lists as the fallback, and German forms that survived
are repaired.  Every mode goes through the same sentence step, so ``tag_handling=html``,
``split_sentences`` and LibreTranslate's alternatives keep working with a glossary.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.constants import JOB_TOUCH_INTERVAL_S, TRANSLATE_TASK, Keys
from service.errors import GlossaryNotFoundError
from service.glossary_steps import GlossaryRun
from service.intake import job_error
from service.nlp.engine import ForbiddenForms
from service.queue import (
    DrainingWorker,
    LaneGlossary,
    LaneOutcome,
    TranslatePayload,
    make_helper_worker,
)
from service.settings import Settings
from service.sources.markup import sentence_translator, translate_html
from service.store.glossaries import GlossaryStore
from service.text.glossary import Glossary
from service.text.glossary_files import DEFAULT_GLOSSARY_ID
from service.text.glossary_terms import repair_output
from service.text.segment import join_sentences, split_sentences

log = structlog.get_logger(__name__)

#: What a Redis outage raises (as in ``service.worker_state``).
REDIS_DOWN = (OSError, RedisConnectionError, RedisTimeoutError)
#: Glossaries one lane worker keeps loaded.  A lane request is often one sentence (tens of
#: milliseconds of work), while loading a 10,000-entry glossary costs about 0.2 s to parse and
#: 0.06 s to index; a newsroom's plugins name a handful of glossaries, over and over.
GLOSSARIES_KEPT = 16


class LaneGlossaries:
    """The glossaries lane jobs name, loaded once each and kept (least recently used out).

    Keeping them is exact: glossaries are immutable, and each is kept under its owner, id and
    content digest.  A glossary deleted while kept can still serve a job the API accepted just
    before the deletion (the API checks it exists before it enqueues).
    """

    def __init__(
        self, store: GlossaryStore, default: Glossary | None, *, size: int = GLOSSARIES_KEPT
    ) -> None:
        self.store = store
        self.default = default
        self.size = size
        self._kept: OrderedDict[tuple[str | None, str, str], Glossary] = OrderedDict()

    async def get(self, ref: LaneGlossary) -> Glossary:
        """The glossary ``ref`` names; ``GlossaryNotFoundError`` when it is gone."""
        key = (ref.owner, ref.glossary_id, ref.digest)
        glossary = self._kept.get(key)
        if glossary is not None:
            self._kept.move_to_end(key)
            return glossary
        glossary = await self._load(ref)
        if glossary.digest != ref.digest:
            # Only the default can differ: an API and a worker reading different
            # glossaries/*.tsv.  Translating with this one would file its output under the
            # other content's job key.
            message = (
                f"glossary {ref.glossary_id!r} here has digest {glossary.digest[:12]}, "
                f"the API's has {ref.digest[:12]}: deploy the same glossaries to both"
            )
            raise RuntimeError(message)
        self._kept[key] = glossary
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return glossary

    async def _load(self, ref: LaneGlossary) -> Glossary:
        if ref.owner is None and ref.glossary_id == DEFAULT_GLOSSARY_ID:
            if self.default is None:
                raise GlossaryNotFoundError(DEFAULT_GLOSSARY_ID)
            return self.default
        return await self.store.get(ref.owner or "", ref.glossary_id)


class LaneTranslator:
    """Sentences through the glossary (when the job names one), the sentence cache and the
    scheduler, with the lane's priority."""

    def __init__(
        self, state: Any, glossary: Glossary | None = None, cache_scope: str | None = None
    ) -> None:
        self.state = state
        self.glossary = glossary
        #: The sentence cache as the requesting desk sees it (its own, if it does not share).
        self.cache = state.sentence_cache.for_scope(cache_scope)

    async def sentences(
        self, sentences: Sequence[str], forbidden: ForbiddenForms | None = None
    ) -> tuple[list[str], int]:
        """Translations in order, and how many came from the cache; ``forbidden`` spellings are
        kept out of them (and their cache entries apart from unconstrained ones)."""
        if not sentences:
            return [], 0
        cache = self.cache
        variant = None if forbidden is None else forbidden.digest
        known: list[str | None] = await cache.get_many(sentences, variant=variant)
        missing = [i for i, hit in enumerate(known) if hit is None]
        fresh = await self.state.pipeline.urgent.translate(
            [sentences[i] for i in missing], priority=True, forbidden=forbidden
        )
        result = list(known)
        for index, english in zip(missing, fresh, strict=True):
            result[index] = english
        if missing:
            pairs = [(sentences[i], result[i] or "") for i in missing]
            await cache.set_many(pairs, variant=variant)
        return [text or "" for text in result], len(sentences) - len(missing)

    async def translated(self, sentences: Sequence[str]) -> tuple[list[str], int]:
        """Translations in order with the glossary applied and settled (step 1 before the
        model, step 2 after: see ``GlossaryRun``), and how many came from the cache.

        As in an article, only the sentences that require a target form are translated with
        the entries' wrong spellings forbidden; both groups are asked for at once."""
        if self.glossary is None:
            return await self.sentences(sentences)
        run = GlossaryRun.start(self.glossary, sentences)
        sources = run.sources
        bound = [i for i, constrained in enumerate(run.constrained) if constrained]
        free = [i for i, constrained in enumerate(run.constrained) if not constrained]
        (free_en, free_hits), (bound_en, bound_hits) = await asyncio.gather(
            self.sentences([sources[i] for i in free]),
            self.sentences([sources[i] for i in bound], run.forbidden),
        )
        english = [""] * len(sources)
        for index, text in [*zip(free, free_en, strict=True), *zip(bound, bound_en, strict=True)]:
            english[index] = text
        scheduler = self.state.pipeline.urgent

        async def nbest(
            texts: list[str], n: int, forbidden: ForbiddenForms | None
        ) -> list[list[str]]:
            return await scheduler.translate_nbest(texts, n, forbidden=forbidden)  # type: ignore[no-any-return]

        settled, _ = await run.settle(english, nbest)
        return settled, free_hits + bound_hits

    async def run(self, payload: TranslatePayload) -> LaneOutcome:
        """Every text of the request, laid out as it came (lines and paragraphs kept)."""
        cached = 0

        async def plain(flat: list[str]) -> list[str]:
            nonlocal cached
            english, hits = await self.translated(flat)
            cached += hits
            return english

        translations: list[str] = []
        alternatives: list[list[str]] = []
        for text in payload.texts:
            if payload.html:
                translations.append(await translate_html(text, sentence_translator(plain)))
                continue
            if payload.split == "0":
                translations.append(" ".join(await plain([" ".join(text.split())])))
                alternatives.append([])
                continue
            if payload.split == "nonewlines":
                text = " ".join(text.split())
            sentences = split_sentences(text)
            if not sentences:
                translations.append(text)
                alternatives.append([])
                continue
            translations.append(join_sentences(sentences, await plain([s.text for s in sentences])))
            if payload.alternatives:
                alternatives.append(await self._alternatives(sentences, payload.alternatives))
        return LaneOutcome(
            translations=translations,
            alternatives=alternatives if payload.alternatives else [],
            sentences_from_cache=cached,
        )

    async def _alternatives(self, sentences: Sequence[Any], n: int) -> list[str]:
        """Up to ``n`` other readings of the text: the k-th alternative joins each sentence's
        (k+1)-th best translation (its best where beam search found fewer).  With a glossary
        the hypotheses are of the rewritten German, and German forms in them are repaired."""
        texts = [s.text for s in sentences]
        glossary = self.glossary
        sources = GlossaryRun.start(glossary, texts).sources if glossary is not None else texts
        nbest = await self.state.pipeline.urgent.translate_nbest(sources, n + 1)
        if glossary is not None:
            nbest = [[repair_output(text, glossary).text for text in options] for options in nbest]
        readings: list[str] = []
        for k in range(1, n + 1):
            if all(len(options) <= k for options in nbest):
                break
            picked = [options[k] if len(options) > k else options[0] for options in nbest]
            readings.append(join_sentences(sentences, picked))
        return readings


async def translate_texts(ctx: Any, **kwargs: Any) -> dict[str, Any]:
    """The SAQ task of the lane: one request's texts, translated (no summary)."""
    payload = msgspec.convert(kwargs, TranslatePayload)
    job = ctx["job"]
    done = asyncio.Event()
    toucher = asyncio.create_task(_touch_until(job, done))
    try:
        glossary = await ctx["glossaries"].get(payload.glossary) if payload.glossary else None
        translator = LaneTranslator(ctx["state"], glossary, payload.cache_scope)
        outcome = await translator.run(payload)
    except GlossaryNotFoundError as error:
        # Deleted after the API accepted the request: another attempt cannot find it either.
        # The API reads the code from the record and answers its client 404.
        job.meta["error"] = job_error(error)
        job.retries = job.attempts
        raise
    finally:
        done.set()
        await toucher
    return msgspec.to_builtins(outcome)  # type: ignore[no-any-return]


async def _touch_until(job: Any, done: asyncio.Event) -> None:
    """Keep the job's heartbeat fresh: behind busy batches a lane job can run past SAQ's
    15 s heartbeat (a real-size model on two cores: about 30 s), and the sweep would fail it."""
    while not done.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(JOB_TOUCH_INTERVAL_S):
                await done.wait()
        if not done.is_set():
            try:
                await job.update(meta=job.meta)
            except REDIS_DOWN as error:
                log.warning("lane job heartbeat failed", error=repr(error))


def build_lane_worker(
    settings: Settings, redis: Redis, state: asyncio.Future[Any]
) -> DrainingWorker:
    """A worker on the lane's queue; its start-up waits for ``state``, the article worker's
    loaded models, so one process loads them once."""

    def prepare(ctx: Any) -> None:
        ready = ctx["state"]
        ctx["glossaries"] = LaneGlossaries(ready.glossaries, ready.default_glossary)
        log.info("translate lane ready", concurrency=settings.translate_concurrency)

    return make_helper_worker(
        redis,
        Keys(settings.key_prefix).translate_queue_name,
        state,
        functions=[(TRANSLATE_TASK, translate_texts)],
        concurrency=settings.translate_concurrency,
        shutdown_grace_s=settings.shutdown_grace_s,
        prepare=prepare,
    )
