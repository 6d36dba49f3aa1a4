"""The worker's side of the queue: a queue that drains on shutdown, and the SAQ worker around it.

The worker module hands in its task functions and hooks and never touches SAQ itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from saq import Job, Worker
from saq.types import Context, PartialTimersDict

from service.constants import (
    CANCELED_BY_CLIENT,
    SWEEP_INTERVAL_S,
    SWEEP_LOCK_HOLD_S,
)
from service.queue.jobs import Status
from service.queue.sweep import SweepingQueue

__all__ = [
    "DrainingQueue",
    "DrainingWorker",
    "TaskContext",
    "make_helper_worker",
    "make_worker",
    "run_beside",
]

#: The context SAQ hands every task and hook (``job`` and what start-up put there).
TaskContext = Context

#: SAQ's abort check runs this often; it is the one upkeep task a draining worker keeps.
ABORT_CHECK_S = 1


class DrainingQueue(SweepingQueue):
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

    async def abort(self, job: Job, error: str, ttl: float = 5) -> None:
        """Abort a stuck job for the sweep (nothing else aborts through a worker's queue),
        keeping the job findable and the sweep's lock held until the sweep re-queues it.

        A stuck job waits ``SWEEP_ABORT_WAIT_S`` for its worker to confirm (SAQ's default is 5 s
        per job, one after another: a SIGKILLed worker's eight jobs came back 8 x 5 s = 40 s
        after its heartbeat ran out; a live worker confirms within about a second).

        SAQ takes the job off the active list here and re-queues it only after waiting on it:
        a sweeping worker killed in between left the job aborting and on no list, lost for
        good.  Left on the active list, the next sweep finds it again (re-queueing takes it
        off).  And SAQ's lock lasts one sweep interval from the start of a sweep: a sweep
        waiting on several stuck jobs outlasted it, another worker's sweep took the same jobs
        too, and each was re-queued twice and ran twice.
        """
        await self.redis.expire(self.namespace("sweep"), SWEEP_LOCK_HOLD_S)
        await super().abort(job, error, ttl)
        if job.status == Status.ABORTING:  # not a queued job, which SAQ finished at once
            active = self.namespace("active")
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lrem(active, 0, job.id)
                pipe.rpush(active, job.id)
                await pipe.execute()


class DrainingWorker(Worker[Any]):
    """SAQ's worker, flipping its queue to draining the moment it is told to stop.

    SIGTERM and SIGINT set SAQ's stop event (its own signal handlers); ``stop`` is also called
    directly.  Either way no job starts after the signal: a watcher sees the event within 50 ms
    and the queue hands back whatever it dequeues from then on.  Upkeep that has nothing to
    finish (schedule, sweep, worker info, which sleep up to 10 s between runs) is cancelled at
    once, so an idle worker stops in about a second instead of waiting out its longest sleep;
    the abort check keeps running so clients can still cancel the jobs in hand.
    """

    queue: DrainingQueue

    def __init__(self, queue: DrainingQueue, **options: Any) -> None:
        super().__init__(queue, **options)
        self._idle_upkeep: list[asyncio.Task[None]] = []

    async def upkeep(self) -> list[asyncio.Task[None]]:
        tasks = await super().upkeep()
        # SAQ's order: abort, schedule, sweep, worker_info.
        self._idle_upkeep = tasks[1:]
        return tasks

    async def start(self) -> None:
        async def watch() -> None:
            # SAQ replaces ``self.event`` inside ``start``: re-read it on every check.
            while not self.event.is_set():  # noqa: ASYNC110 - the event object is replaced
                await asyncio.sleep(0.05)
            self._begin_draining()

        watcher = asyncio.create_task(watch())
        try:
            await super().start()
        finally:
            watcher.cancel()

    async def stop(self) -> None:
        self._begin_draining()
        await super().stop()

    def _begin_draining(self) -> None:
        self.queue.draining = True
        for task in self._idle_upkeep:
            task.cancel()


async def run_beside(main: DrainingWorker, *helpers: DrainingWorker) -> None:
    """Run a worker and its helpers (the translate lane, the deliveries) together until
    SIGTERM or SIGINT.

    Only the main worker listens for the signals (a second handler would replace the first);
    the helpers are told to stop the moment it sees them, and their short jobs finish while
    the main worker's grace period runs.
    """
    tasks = []
    for helper in helpers:
        helper.SIGNALS = []
        tasks.append(asyncio.create_task(helper.start(), name=f"worker-{helper.queue.name}"))

    async def follow() -> None:
        while True:
            event = getattr(main, "event", None)
            if event is not None and event.is_set():
                break
            await asyncio.sleep(0.05)
        await asyncio.gather(*(helper.stop() for helper in helpers))

    follower = asyncio.create_task(follow(), name="helpers-stop")
    try:
        await main.start()
    finally:
        follower.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


Hook = Callable[[Any], Awaitable[None]]


def make_worker(
    redis: Redis,
    queue_name: str,
    *,
    functions: Sequence[tuple[str, Callable[..., Awaitable[Any]]]],
    concurrency: int,
    startup: Hook,
    shutdown: Hook,
    after_process: Hook,
    shutdown_grace_s: float,
    on_failed_by_sweep: Callable[[Job], Awaitable[None]] | None = None,
) -> DrainingWorker:
    """A SAQ worker configured for ML jobs on a draining queue.

    ``on_failed_by_sweep`` is called with each job the sweep fails for good (its workers died
    on every attempt), which no after-job hook sees.
    """
    queue = DrainingQueue(redis, name=queue_name)
    queue.on_failed = on_failed_by_sweep
    return DrainingWorker(
        queue,
        functions=list(functions),
        concurrency=concurrency,
        startup=startup,
        shutdown=shutdown,
        after_process=after_process,
        # SAQ's defaults but for the sweep, which must notice dead workers quickly.
        timers=PartialTimersDict(
            schedule=1, worker_info=10, sweep=SWEEP_INTERVAL_S, abort=ABORT_CHECK_S
        ),
        dequeue_timeout=1.0,
        shutdown_grace_period_s=shutdown_grace_s,
        cancellation_hard_deadline_s=5.0,
    )


def make_helper_worker(
    redis: Redis,
    queue_name: str,
    state: asyncio.Future[Any],
    *,
    functions: Sequence[tuple[str, Callable[..., Awaitable[Any]]]],
    concurrency: int,
    shutdown_grace_s: float,
    prepare: Callable[[Any], None],
) -> DrainingWorker:
    """A helper worker for :func:`run_beside` (the translate lane, the deliveries) on a queue of
    its own: its start-up waits for ``state``, the main worker's, puts it in the context as
    ``state`` and lets ``prepare`` add its own; it has nothing to do after a job or at shutdown
    (the main worker owns and closes the shared state)."""

    async def startup(ctx: Any) -> None:
        ctx["state"] = await asyncio.shield(state)
        prepare(ctx)

    async def nothing(ctx: Any) -> None:
        return None

    return make_worker(
        redis,
        queue_name,
        functions=functions,
        concurrency=concurrency,
        startup=startup,
        shutdown=nothing,
        after_process=nothing,
        shutdown_grace_s=shutdown_grace_s,
    )
