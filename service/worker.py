"""The worker process: loads the models once, then runs article jobs from the queue.

Several jobs run at once (``KURZ_WORKER_CONCURRENCY``); their sentences meet in the pipeline's
inference scheduler and are translated in shared batches.  Reliability comes from SAQ plus
three habits here:

- every running job is touched every few seconds, so a worker killed with SIGKILL leaves a job
  whose heartbeat goes stale; another worker's sweep re-queues it within about 20 seconds;
- on SIGTERM the worker stops taking jobs at once (a job dequeued after the signal is handed
  back untouched), finishes the jobs in hand within the grace period, and hands back the rest;
- a job that fails because of its input is not retried; any other failure is, with backoff.

Paragraphs are recorded as they are translated (``service.store.partial``), so the API can show
a running job's English before its summary exists; webhooks still announce only the end.

Beside the article worker the process runs two helpers on queues of their own, sharing its
state: the translate lane (``service.lane_worker``) and webhook deliveries
(``service.delivery_worker``); ``run_worker`` starts the three and stops them together.  The
state they share, built at start-up, is ``service.worker_state``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from service.constants import (
    CANCELED_BY_CLIENT,
    DELIVER_TASK,
    JOB_TOUCH_INTERVAL_S,
    SUMMARIZE_TASK,
    Keys,
)
from service.errors import FetchFailedError, GlossaryNotFoundError, InputError, InputExpiredError
from service.intake import job_error, retryable
from service.pipeline import ArticleRequest
from service.queue import (
    DrainingWorker,
    Job,
    JobPayload,
    Status,
    finished_view,
    make_worker,
    run_beside,
    view_of,
)
from service.schemas import TranslatedParagraph
from service.settings import Settings
from service.store.cache import result_key
from service.store.connection import make_redis
from service.text.glossary import Glossary
from service.text.glossary_files import DEFAULT_GLOSSARY_ID
from service.webhooks import Delivery
from service.worker_state import REDIS_DOWN, WorkerContext, WorkerState

log = structlog.get_logger(__name__)


async def summarize_article(ctx: WorkerContext, **kwargs: Any) -> dict[str, Any]:
    """The SAQ task: one article (its text, or extracted from its HTML or URL) through the
    pipeline, or served from the result another job made of the same article text."""
    state = ctx["state"]
    job: Job = ctx["job"]
    payload = msgspec.convert(kwargs, JobPayload)
    started = time.perf_counter()
    progress: dict[str, Any] = {"stage": "starting", "done": 0, "total": 0}
    finished = asyncio.Event()

    def on_progress(stage: str, done: int, total: int) -> None:
        progress.update(stage=stage, done=done, total=total)

    writes: set[asyncio.Task[None]] = set()

    def on_paragraphs(paragraphs: list[TranslatedParagraph]) -> None:
        write = asyncio.create_task(_record_paragraphs(state, job, paragraphs))
        writes.add(write)
        write.add_done_callback(writes.discard)

    toucher = asyncio.create_task(_touch_while_running(job, progress, finished))
    try:
        payload = await _with_input(state, job, payload)
        await state.partials.start(job.key)  # nothing an earlier attempt wrote stays visible
        if not payload.text:
            on_progress("extract", 0, 1)
        article = await state.intake.resolve(payload)
        glossary = await _glossary(state, payload)
        content_key = result_key(
            text=article.text,
            title=article.title,
            style=payload.style,
            style_digest=state.pipeline.presets.get(payload.style).digest,
            models=state.pipeline.models,
            glossary=(glossary.glossary_id, glossary.digest) if glossary else None,
            scope=payload.cache_scope,
        )
        result = await state.intake.known_result(
            job.key, content_key, article.source, allow_non_german=payload.allow_non_german
        )
        if result is None:
            result = await state.pipeline.run(
                ArticleRequest(
                    text=article.text,
                    title=article.title,
                    style=payload.style,
                    allow_non_german=payload.allow_non_german,
                    glossary=glossary,
                ),
                on_progress=on_progress,
                sentence_cache=state.sentence_cache.for_scope(payload.cache_scope),
                on_paragraphs=on_paragraphs,
            )
            result = msgspec.structs.replace(result, source=article.source)
    except (InputError, FetchFailedError) as error:
        # Record why.  Retrying cannot help an input error, nor a fetch the site refused for
        # good (a 404): make this the last attempt.  A timeout or a 503 may pass: retried.
        job.meta["error"] = job_error(error)
        if not retryable(error):
            job.retries = job.attempts
        if job.attempts >= job.retries:
            await _count(state, jobs_failed=1)
        raise
    finally:
        # Stopped by a flag, not by cancel(): cancelling a task inside asyncio.wait_for can be
        # swallowed on Python 3.11, leaving a toucher that keeps a finished job looking alive.
        finished.set()
        await toucher
        # No paragraph may land after the job ends (the after-job hook deletes them all).
        await asyncio.gather(*writes, return_exceptions=True)
    await state.intake.file(job.key, content_key, result, article)
    # Announced before SAQ marks the job complete: a crash in between re-runs the job, and the
    # second announcement reuses the first one's webhook ids (see service.webhooks.notifier).
    await state.notifier.announce(finished_view(job, result))
    fresh = not result.cached  # a result served from the content key translated nothing now
    await _count(
        state,
        jobs_succeeded=1,
        sentences_translated=result.sentences_translated if fresh else 0,
        sentences_from_cache=result.sentences_from_cache if fresh else 0,
        **{
            f"stage_seconds_sum:{k.removesuffix('_ms')}": v / 1000
            for k, v in result.timings_ms.items()
            if fresh
        },
        **{f"stage_count:{k.removesuffix('_ms')}": 1 for k in result.timings_ms if fresh},
    )
    log.info(
        "article done",
        job=job.key[:12],
        sentences=result.sentences_in,
        cached_sentences=result.sentences_from_cache,
        seconds=round(time.perf_counter() - started, 2),
    )
    return msgspec.to_builtins(result)  # type: ignore[no-any-return]


async def _with_input(state: WorkerState, job: Job, payload: JobPayload) -> JobPayload:
    """The payload with its article put back: the API stores the text or HTML beside the job,
    not in it (``JobQueue.submit``).  Gone (the job waited a week, or Redis evicted it): the
    job fails for good with ``input_expired`` (jobs of older releases carry it themselves)."""
    if not payload.input_stored:
        return payload
    stored = await state.notifier.queue.stored_input(job)
    if stored is None:
        raise InputExpiredError()
    return msgspec.structs.replace(payload, text=stored.text, html=stored.html)


async def _glossary(state: WorkerState, payload: JobPayload) -> Glossary | None:
    """The job's glossary: the server default, the submitter's own, or none.

    One deleted after the job was accepted fails the job (``glossary_not_found``, no retry).
    """
    if payload.glossary_id is None:
        return None
    if payload.glossary_id == DEFAULT_GLOSSARY_ID and payload.glossary_owner is None:
        if state.default_glossary is None:
            raise GlossaryNotFoundError(DEFAULT_GLOSSARY_ID)
        return state.default_glossary
    return await state.glossaries.get(payload.glossary_owner or "", payload.glossary_id)


async def deliver_webhook(ctx: WorkerContext, *, delivery: Any, body: str | None = None) -> None:
    """The SAQ task for one webhook attempt (see ``Notifier.attempt``); the body is the stored
    event's (``body`` only in jobs queued by releases that copied it into the job)."""
    state = ctx["state"]
    await state.notifier.attempt(state.http, msgspec.convert(delivery, Delivery), body)


async def after_job(ctx: WorkerContext) -> None:
    """After each attempt: an ended article job's paragraphs go (its result, if any, holds them
    all), and a job whose last attempt failed is announced (``summary.failed``)."""
    job = ctx.get("job")
    if job is None:
        return
    if job.function == SUMMARIZE_TASK and job.status in (
        Status.COMPLETE,
        Status.FAILED,
        Status.ABORTED,
    ):
        try:
            held = await ctx["state"].partials.discard(job.key)
            if job.status != Status.ABORTED or job.error == CANCELED_BY_CLIENT:
                # Aborted for a sweep (its worker looked dead), the job is queued again next:
                # it still needs its article.
                await ctx["state"].notifier.queue.forget_input(job, held)
        except REDIS_DOWN as error:  # the TTLs remove them instead
            log.warning("could not delete a job's paragraphs", job=job.key[:12], error=repr(error))
    if job.status == Status.FAILED:
        await announce_failed_job(ctx["state"], job)


async def _record_paragraphs(
    state: WorkerState, job: Job, paragraphs: list[TranslatedParagraph]
) -> None:
    """Store paragraphs the pipeline finished; a Redis hiccup costs the preview, not the job."""
    try:
        await state.partials.add(job.key, job.attempts, paragraphs)
    except REDIS_DOWN as error:
        log.warning("could not record translated paragraphs", job=job.key[:12], error=repr(error))


async def announce_failed_job(state: WorkerState, job: Job) -> None:
    """Send ``summary.failed`` for an article job that has failed for good (delivery jobs
    announce nothing).  Its webhook ids derive from the job, so announcing twice repeats."""
    if job.function != SUMMARIZE_TASK:
        return
    try:
        await state.notifier.announce(view_of(job))
    except REDIS_DOWN as error:
        log.warning("could not announce a failed job", job=job.key[:12], error=repr(error))


async def _touch_while_running(job: Job, progress: dict[str, Any], finished: asyncio.Event) -> None:
    """Keep the job's heartbeat fresh and its progress visible until ``finished`` is set.

    Progress is written when it changes (checked twice a second) and at least every
    ``JOB_TOUCH_INTERVAL_S`` regardless, which is what keeps SAQ's sweep from re-queueing a
    long summarization step.
    """
    written: dict[str, Any] = {}
    last_write = 0.0
    while not finished.is_set():
        now = time.monotonic()
        if progress != written or now - last_write >= JOB_TOUCH_INTERVAL_S:
            written = dict(progress)
            job.meta["progress"] = written
            try:
                await job.update(meta=job.meta)
            except REDIS_DOWN as error:
                log.warning("job heartbeat failed", error=repr(error))
            last_write = now
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await finished.wait()


async def _count(state: WorkerState, **counters: float) -> None:
    """Add to the shared counters the API's /metrics reports."""
    try:
        await state.stats.add(**counters)
    except REDIS_DOWN as error:
        log.warning("metrics update failed", error=repr(error))


def build_worker(
    settings: Settings,
    redis: Redis,
    *,
    worker_id: str | None = None,
    ready: asyncio.Future[WorkerState] | None = None,
) -> DrainingWorker:
    """A queue worker for article and delivery jobs, with start-up and shutdown hooks;
    ``ready`` receives its state once the models are loaded (the translate lane shares it)."""
    keys = Keys(settings.key_prefix)
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    states: list[WorkerState] = []

    async def startup(ctx: WorkerContext) -> None:
        state = await WorkerState.start(settings, redis, worker_id)
        states.append(state)
        ctx["state"] = state
        if ready is not None and not ready.done():
            ready.set_result(state)
        log.info("worker ready", worker=worker_id, concurrency=settings.worker_concurrency)

    async def announce_swept(job: Job) -> None:
        """The sweep failed a job for good: announce it as its last attempt would have."""
        for state in states:
            await announce_failed_job(state, job)

    async def shutdown(ctx: WorkerContext) -> None:
        for state in states:
            await state.close()
        log.info("worker stopped", worker=worker_id)

    return make_worker(
        redis,
        keys.queue_name,
        functions=[(SUMMARIZE_TASK, summarize_article), (DELIVER_TASK, deliver_webhook)],
        concurrency=settings.worker_concurrency,
        startup=startup,
        shutdown=shutdown,
        after_process=after_job,
        shutdown_grace_s=settings.shutdown_grace_s,
        on_failed_by_sweep=announce_swept,
    )


def run_worker(settings: Settings) -> None:
    """``python -m service worker``: run until SIGTERM or SIGINT."""

    async def main() -> None:
        from service.delivery_worker import build_delivery_worker
        from service.lane_worker import build_lane_worker

        redis = make_redis(settings.redis_url, role="worker")
        ready: asyncio.Future[WorkerState] = asyncio.get_running_loop().create_future()
        try:
            articles = build_worker(settings, redis, ready=ready)
            await run_beside(
                articles,
                build_lane_worker(settings, redis, ready),
                build_delivery_worker(settings, redis, ready),
            )
        finally:
            await redis.aclose()

    asyncio.run(main())
