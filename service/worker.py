"""The worker process: loads the models once, then runs article jobs from the queue.

Several jobs run at once (``KURZ_WORKER_CONCURRENCY``); their sentences meet in the pipeline's
inference scheduler and are translated in shared batches.  Reliability comes from SAQ plus
three habits here:

- every running job is touched every few seconds, so a worker killed with SIGKILL leaves a job
  whose heartbeat goes stale; another worker's sweep re-queues it within about 20 seconds;
- on SIGTERM the worker stops taking jobs at once (a job dequeued after the signal is handed
  back untouched), finishes the jobs in hand within the grace period, and hands back the rest;
- a job that fails because of its input is not retried; any other failure is, with backoff.
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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from saq import Job, Worker
from saq.queue.redis import RedisQueue
from saq.types import Context, PartialTimersDict

from service.cache import RedisSentenceCache, ResultCache
from service.constants import (
    CANCELED_BY_CLIENT,
    DELIVER_TASK,
    JOB_TOUCH_INTERVAL_S,
    SUMMARIZE_TASK,
    SWEEP_ABORT_WAIT_S,
    SWEEP_INTERVAL_S,
    SWEEP_LOCK_HOLD_S,
    WORKER_HEARTBEAT_INTERVAL_S,
    WORKER_HEARTBEAT_TTL_S,
    Keys,
)
from service.errors import ConfigError, InputError
from service.notify import Notifier
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.queue import JobPayload, JobQueue, Status, finished_view, view_of
from service.settings import Settings
from service.ssrf import AllowList
from service.webhooks import Delivery, WebhookSigner, make_client

log = structlog.get_logger(__name__)

#: What a Redis outage raises: socket errors, and redis-py's own (not OSError subclasses).
REDIS_DOWN = (OSError, RedisConnectionError, RedisTimeoutError)


class DrainingQueue(RedisQueue):
    """The worker's queue: hands back jobs while draining, and never undoes a client's cancel.

    SAQ's idle workers sit in a blocking dequeue; without the hand-back, a job arriving during
    the shutdown grace period would be started after SIGTERM.

    A client's cancel of a running job only marks it ``aborting`` (with the error "canceled by
    client"); the worker stops it when its abort check next runs, up to a second later.  SAQ
    writes the worker's whole in-memory copy of the job on every update, finish and retry, so
    in that second a progress touch would erase the cancel (the API then showed the job queued,
    then failed), and a job ending in it would turn from canceled into succeeded, failed or
    queued again.  These writes therefore check the stored job first and leave a canceled one
    canceled.  (The check and the write are two commands: a cancel landing between them, within
    a millisecond, can still be overwritten.)
    """

    draining = False

    async def _canceled_by_client(self, job: Job) -> bool:
        stored = await self.job(job.key)
        return (
            stored is not None
            and stored.status in (Status.ABORTING, Status.ABORTED)
            and stored.error == CANCELED_BY_CLIENT
        )

    async def update(self, job: Job, **kwargs: Any) -> None:
        if await self._canceled_by_client(job):
            return  # the abort check stops the job; its progress no longer matters
        await super().update(job, **kwargs)

    async def finish(
        self,
        job: Job,
        status: Status,
        *,
        result: Any = None,
        error: str | None = None,
        **kwargs: Any,
    ) -> None:
        if status in (Status.COMPLETE, Status.FAILED) and await self._canceled_by_client(job):
            status, result, error = Status.ABORTED, None, CANCELED_BY_CLIENT
        await super().finish(job, status, result=result, error=error, **kwargs)

    async def retry(self, job: Job, error: str | None) -> None:
        if await self._canceled_by_client(job):
            await super().finish(job, Status.ABORTED, error=CANCELED_BY_CLIENT)
            return
        await super().retry(job, error)

    async def dequeue(
        self,
        timeout: float = 0.0,  # noqa: ASYNC109 - SAQ's own signature
        poll_interval: float = 0.0,
    ) -> Job | None:
        job = await super().dequeue(timeout=timeout, poll_interval=poll_interval)
        if job is not None and self.draining:
            await self.retry(job, "handed back: worker shutting down")
            return None
        return job

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        """SAQ's sweep, waiting ``SWEEP_ABORT_WAIT_S`` per stuck job instead of 5 s.

        The sweep marks each stuck job aborting and waits for its worker to confirm before
        re-queueing it, one job after another.  A SIGKILLed worker never confirms, so its eight
        jobs came back 8 x 5 s = 40 s after the heartbeat ran out; a live worker confirms at its
        next abort check, within about a second.
        """
        return list(await super().sweep(lock, abort=SWEEP_ABORT_WAIT_S))

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort a stuck job for the sweep (nothing else aborts through a worker's queue),
        keeping the sweep's lock while the sweep still works through its jobs.

        SAQ's lock lasts one sweep interval from the start of a sweep.  A sweep waiting on
        several stuck jobs outlasted it, another worker's sweep took the same jobs too, and
        each was re-queued twice and ran twice.
        """
        await self.redis.expire(self.namespace("sweep"), SWEEP_LOCK_HOLD_S)
        await super().abort(job, error, ttl)


class WorkerContext(Context, total=False):
    """SAQ's task context plus what this worker's start-up put there."""

    state: WorkerState


class WorkerState:
    """What the job function needs, built once at start-up."""

    def __init__(self, settings: Settings, redis: Redis, worker_id: str) -> None:
        self.settings = settings
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.worker_id = worker_id
        self.results = ResultCache(redis, self.keys, settings.result_ttl_s)
        self.notifier = build_notifier(settings, redis)
        self.http = make_client(
            AllowList.from_settings(settings.webhook_allow_hosts), settings.webhook_timeout_s
        )
        self.pipeline: Pipeline | None = None
        self.sentence_cache: RedisSentenceCache | None = None
        self.heartbeat_task: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Load the models (in a thread: it takes seconds to minutes) and announce them."""
        self.pipeline = await asyncio.to_thread(build_pipeline, self.settings)
        self.sentence_cache = RedisSentenceCache(
            self.redis,
            self.keys,
            self.pipeline.models["translation"],
            self.settings.sentence_cache_ttl_s,
        )
        await self.redis.set(self.keys.models(), msgspec.json.encode(self.pipeline.models))
        await self._beat()
        self.heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")

    async def _beat(self) -> None:
        assert self.pipeline is not None
        record = {
            "id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "models": msgspec.to_builtins(self.pipeline.models),
        }
        await self.redis.set(
            self.keys.worker(self.worker_id), msgspec.json.encode(record), ex=WORKER_HEARTBEAT_TTL_S
        )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(WORKER_HEARTBEAT_INTERVAL_S)
            try:
                await self._beat()
            except REDIS_DOWN as error:  # Redis briefly away: readiness lapses, work goes on
                log.warning("worker heartbeat failed", error=repr(error))

    async def close(self) -> None:
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat_task
        with contextlib.suppress(*REDIS_DOWN):
            await self.redis.delete(self.keys.worker(self.worker_id))
        await self.http.aclose()
        if self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.close)


async def summarize_article(ctx: WorkerContext, **kwargs: Any) -> dict[str, Any]:
    """The SAQ task: one article through the pipeline, result cached under the job key."""
    state = ctx["state"]
    job = ctx["job"]
    assert state.pipeline is not None
    payload = msgspec.convert(kwargs, JobPayload)
    started = time.perf_counter()
    progress: dict[str, Any] = {"stage": "starting", "done": 0, "total": 0}
    finished = asyncio.Event()

    def on_progress(stage: str, done: int, total: int) -> None:
        progress.update(stage=stage, done=done, total=total)

    toucher = asyncio.create_task(_touch_while_running(job, progress, finished))
    try:
        result = await state.pipeline.run(
            ArticleRequest(
                text=payload.text,
                title=payload.title,
                style=payload.style,
                allow_non_german=payload.allow_non_german,
            ),
            on_progress=on_progress,
            sentence_cache=state.sentence_cache,
        )
    except InputError as error:
        # Retrying cannot help: record why, and make this the last attempt.
        job.meta["error"] = {"code": error.code, "detail": str(error)}
        job.retries = job.attempts
        await _count(state, jobs_failed=1)
        raise
    finally:
        # Stopped by a flag, not by cancel(): cancelling a task inside asyncio.wait_for can be
        # swallowed on Python 3.11, leaving a toucher that keeps a finished job looking alive.
        finished.set()
        await toucher
    await state.results.put(job.key, result)
    # Announced before SAQ marks the job complete: a crash in between re-runs the job, and the
    # second announcement reuses the first one's webhook ids (see service.notify).
    await state.notifier.announce(finished_view(job, result))
    await _count(
        state,
        jobs_succeeded=1,
        sentences_translated=result.sentences_translated,
        sentences_from_cache=result.sentences_from_cache,
        **{
            f"stage_seconds_sum:{k.removesuffix('_ms')}": v / 1000
            for k, v in result.timings_ms.items()
        },
        **{f"stage_count:{k.removesuffix('_ms')}": 1 for k in result.timings_ms},
    )
    log.info(
        "article done",
        job=job.key[:12],
        sentences=result.sentences_in,
        cached_sentences=result.sentences_from_cache,
        seconds=round(time.perf_counter() - started, 2),
    )
    return msgspec.to_builtins(result)  # type: ignore[no-any-return]


async def deliver_webhook(ctx: WorkerContext, *, delivery: Any, body: str) -> None:
    """The SAQ task for one webhook attempt (see ``Notifier.attempt``)."""
    state = ctx["state"]
    await state.notifier.attempt(state.http, msgspec.convert(delivery, Delivery), body)


async def announce_failure(ctx: WorkerContext) -> None:
    """After a job's last attempt failed, tell the newsroom's systems (``summary.failed``)."""
    job = ctx.get("job")
    if job is None or job.function != SUMMARIZE_TASK or job.status != Status.FAILED:
        return
    try:
        await ctx["state"].notifier.announce(view_of(job))
    except REDIS_DOWN as error:
        log.warning("could not announce a failed job", job=job.key[:12], error=repr(error))


def build_notifier(settings: Settings, redis: Redis) -> Notifier:
    """The webhook notifier; endpoints configured without a secret stop the worker at start."""
    signer = (
        WebhookSigner.from_setting(settings.webhook_secret) if settings.webhook_secret else None
    )
    if settings.webhook_endpoints and signer is None:
        raise ConfigError("KURZ_WEBHOOK_ENDPOINTS is set but KURZ_WEBHOOK_SECRET is not")
    keys = Keys(settings.key_prefix)
    return Notifier(
        redis,
        keys,
        JobQueue(redis, keys, retries=settings.job_retries),
        endpoints=settings.webhook_endpoints,
        retry_schedule=settings.webhook_retry_schedule,
        public_url=settings.public_url,
        signer=signer,
        timeout_s=settings.webhook_timeout_s,
    )


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
        async with state.redis.pipeline(transaction=False) as pipe:
            for name, value in counters.items():
                if isinstance(value, int):
                    pipe.hincrby(state.keys.stats(), name, value)
                else:
                    pipe.hincrbyfloat(state.keys.stats(), name, value)
            await pipe.execute()
    except REDIS_DOWN as error:
        log.warning("metrics update failed", error=repr(error))


def build_worker(
    settings: Settings, redis: Redis, *, worker_id: str | None = None
) -> Worker[WorkerContext]:
    """A SAQ worker configured for ML jobs, with start-up and shutdown hooks."""
    keys = Keys(settings.key_prefix)
    queue = DrainingQueue(redis, name=keys.queue_name)
    state = WorkerState(
        settings, redis, worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    )

    async def startup(ctx: WorkerContext) -> None:
        ctx["state"] = state
        await state.load()
        log.info("worker ready", worker=state.worker_id, concurrency=settings.worker_concurrency)

    async def shutdown(ctx: WorkerContext) -> None:
        await state.close()
        log.info("worker stopped", worker=state.worker_id)

    worker = Worker(
        queue,
        functions=[(SUMMARIZE_TASK, summarize_article), (DELIVER_TASK, deliver_webhook)],
        concurrency=settings.worker_concurrency,
        startup=startup,
        shutdown=shutdown,
        after_process=announce_failure,
        # SAQ's defaults but for the sweep, which must notice dead workers quickly.
        timers=PartialTimersDict(schedule=1, worker_info=10, sweep=SWEEP_INTERVAL_S, abort=1),
        dequeue_timeout=1.0,
        shutdown_grace_period_s=settings.shutdown_grace_s,
        cancellation_hard_deadline_s=5.0,
    )
    original_stop = worker.stop

    async def stop() -> None:
        queue.draining = True
        await original_stop()

    worker.stop = stop  # type: ignore[method-assign]
    _drain_on_signal(worker, queue)
    return worker


def _drain_on_signal(worker: Worker[WorkerContext], queue: DrainingQueue) -> None:
    """Flip the queue to draining the moment SAQ's stop event is set by SIGTERM or SIGINT."""
    original_start = worker.start

    async def start() -> None:
        async def watch() -> None:
            # SAQ replaces ``worker.event`` inside ``start``: re-read it on every check.
            while not worker.event.is_set():  # noqa: ASYNC110 - the event object is replaced
                await asyncio.sleep(0.05)
            queue.draining = True

        watcher = asyncio.create_task(watch())
        try:
            await original_start()
        finally:
            watcher.cancel()

    worker.start = start  # type: ignore[method-assign]


def run_worker(settings: Settings) -> None:
    """``python -m service worker``: run until SIGTERM or SIGINT."""

    async def main() -> None:
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=5, health_check_interval=30
        )
        try:
            await build_worker(settings, redis).start()
        finally:
            await redis.aclose()

    asyncio.run(main())
