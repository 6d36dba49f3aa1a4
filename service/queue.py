"""The job queue: the only module that imports SAQ.

A job's key is the request's cache key, so SAQ's "duplicate key while incomplete = no-op"
rule makes identical concurrent requests share one job.  Job settings are sized for ML work
(see ``service.constants``): a timeout that grows with the article, a heartbeat that the worker
renews every few seconds while the job runs, retries with exponential backoff.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import msgspec
from redis.asyncio import Redis
from saq import Job, Queue, Status
from saq.queue.redis import RedisQueue

from service.constants import (
    CANCELED_BY_CLIENT,
    DELIVER_TASK,
    DELIVERY_JOB_SLACK_S,
    JOB_HEARTBEAT_S,
    JOB_RECORD_TTL_S,
    JOB_RETRY_BACKOFF_MAX_S,
    JOB_RETRY_DELAY_S,
    SUMMARIZE_TASK,
    Keys,
    job_timeout_s,
)
from service.schemas import JobError, JobStatus, JobView, Links, Progress, Result

if TYPE_CHECKING:
    from service.webhooks import Delivery

__all__ = ["Job", "JobQueue", "Queue", "QueueFull", "Status"]


class JobPayload(msgspec.Struct, kw_only=True):
    """What the worker needs to process one article (stored as the SAQ job's kwargs)."""

    text: str
    title: str | None = None
    style: str = "standard"
    allow_non_german: bool = False
    external_id: str | None = None
    metadata: dict[str, str | int | float | bool | None] | None = None
    callback_url: str | None = None


def _iso(epoch_ms: int) -> str | None:
    if not epoch_ms:
        return None
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def job_links(job_id: str) -> Links:
    return Links(self=f"/jobs/{job_id}", events=f"/jobs/{job_id}/events")


def status_of(job: Job) -> JobStatus:
    """Map SAQ's statuses onto the API's.

    An abort is a cancel only if a client asked for it.  Otherwise ``aborting`` is the sweep
    taking a dead worker's job back (it is re-queued next, or failed if out of attempts), so it
    shows as queued; only ``aborted`` without a client's request is a failure.
    """
    if job.status in (Status.NEW, Status.QUEUED):
        return JobStatus.QUEUED
    if job.status == Status.ACTIVE:
        return JobStatus.RUNNING
    if job.status == Status.COMPLETE:
        return JobStatus.SUCCEEDED
    if job.error == CANCELED_BY_CLIENT and job.status in (Status.ABORTING, Status.ABORTED):
        return JobStatus.CANCELED
    if job.status == Status.ABORTING:
        return JobStatus.QUEUED
    return JobStatus.FAILED


def finished_view(job: Job, result: Result) -> JobView:
    """The view of a job whose result is ready but which SAQ has not marked complete yet."""
    view = view_of(job)
    now_iso = dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")
    return msgspec.structs.replace(
        view,
        status=JobStatus.SUCCEEDED,
        progress=Progress(stage="done", done=result.sentences_in, total=result.sentences_in),
        result=result,
        error=None,
        finished_at=now_iso,
    )


def view_of(job: Job) -> JobView:
    """The API's view of a SAQ job."""
    kwargs = job.kwargs or {}
    status = status_of(job)
    meta = job.meta or {}
    progress = msgspec.convert(meta.get("progress") or {}, Progress)
    if status == JobStatus.QUEUED:
        progress = Progress(stage="queued")
    result = None
    if status == JobStatus.SUCCEEDED and job.result is not None:
        result = msgspec.convert(job.result, Result)
        progress = Progress(stage="done", done=result.sentences_in, total=result.sentences_in)
    error = None
    if status == JobStatus.FAILED:
        stored = meta.get("error")
        error = (
            msgspec.convert(stored, JobError)
            if stored
            else JobError(code="job_failed", detail=_last_line(job.error))
        )
    elif status == JobStatus.CANCELED:
        error = JobError(code="canceled", detail=CANCELED_BY_CLIENT)
    return JobView(
        id=job.key,
        status=status,
        progress=progress,
        created_at=_iso(job.queued) or "",
        finished_at=_iso(job.completed)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
        else None,
        attempts=job.attempts,
        links=job_links(job.key),
        result=result,
        error=error,
        external_id=kwargs.get("external_id"),
        metadata=kwargs.get("metadata"),
    )


def _last_line(text: str | None) -> str:
    """The last line of a traceback: the exception, without the frames (and their paths)."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the job failed"


class QueueFull(Exception):  # noqa: N818 - a refusal, named as the API names it
    """``JobQueue.submit`` found ``depth`` jobs waiting already, at least its ``max_depth``."""

    def __init__(self, depth: int) -> None:
        super().__init__(f"{depth} jobs are waiting")
        self.depth = depth


#: SAQ's enqueue script with the room check inside it: checked first and enqueued after, every
#: request arriving together (on any API replica) saw room and the limit was overrun.  Returns
#: 1 (enqueued), nil (the key has an unfinished job) or -1 - depth (no room).
_ENQUEUE_IF_ROOM = """
if redis.call('ZSCORE', KEYS[1], KEYS[2]) or redis.call('EXISTS', KEYS[4]) == 1 then
    return nil
end
local depth = redis.call('LLEN', KEYS[3])
if depth >= tonumber(ARGV[2]) then
    return -1 - depth
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], 0, KEYS[2])
redis.call('RPUSH', KEYS[3], KEYS[2])
return 1
"""


class JobQueue:
    """Enqueue, look up and cancel article jobs."""

    def __init__(self, redis: Redis, keys: Keys, *, retries: int = 3) -> None:
        self.redis = redis
        self.keys = keys
        self.retries = retries
        self.saq: RedisQueue = RedisQueue(redis, name=keys.queue_name)
        self._enqueue_if_room = redis.register_script(_ENQUEUE_IF_ROOM)

    async def submit(
        self, key: str, payload: JobPayload, *, max_depth: int | None = None
    ) -> tuple[Job, bool]:
        """Enqueue a job under ``key``; returns the job and whether this call created it.

        With ``max_depth``, a new job is refused (``QueueFull``) while that many jobs wait.
        """
        options: dict[str, Any] = {
            "key": key,
            "timeout": job_timeout_s(len(payload.text)),
            "heartbeat": JOB_HEARTBEAT_S,
            "retries": self.retries,
            "retry_delay": JOB_RETRY_DELAY_S,
            "retry_backoff": JOB_RETRY_BACKOFF_MAX_S,
            "ttl": JOB_RECORD_TTL_S,
        }
        job = Job(function=SUMMARIZE_TASK, kwargs=msgspec.to_builtins(payload), **options)
        created = await self._enqueue(job, max_depth)
        if created is not None:
            return created, True
        existing = await self.saq.job(key)
        if existing is None:  # finished and expired between the two calls: enqueue again
            again = await self._enqueue(
                Job(function=SUMMARIZE_TASK, kwargs=msgspec.to_builtins(payload), **options),
                max_depth,
            )
            return (again or job), again is not None
        return existing, False

    async def _enqueue(self, job: Job, max_depth: int | None) -> Job | None:
        """SAQ's ``enqueue``, or the same with the room check when there is a limit."""
        if max_depth is None:
            return await self.saq.enqueue(job)
        job.queue = self.saq
        job.queued = int(time.time() * 1000)
        job.status = Status.QUEUED
        outcome = await self._enqueue_if_room(
            keys=[
                self.saq.namespace("incomplete"),
                job.id,
                self.saq.namespace("queued"),
                job.abort_id,
            ],
            args=[self.saq.serialize(job), max_depth],
        )
        if outcome is None:
            return None
        if int(outcome) < 0:
            raise QueueFull(-1 - int(outcome))
        return job

    async def schedule_delivery(
        self,
        delivery: Delivery,
        body: str,
        delay_s: float,
        *,
        redelivery: bool = False,
        timeout_s: float = 15.0,
    ) -> None:
        """Queue one webhook attempt ``delay_s`` from now (a crash re-runs it, same id).

        The queue key names the message and the attempt, so announcing the same event twice
        (a job that ran twice after a crash) schedules its first attempt only once.
        """
        suffix = f"r{time.time_ns()}" if redelivery else str(delivery.attempts)
        job = Job(
            function=DELIVER_TASK,
            kwargs={"delivery": msgspec.to_builtins(delivery), "body": body},
            key=f"delivery:{delivery.msg_id}:{suffix}",
            timeout=int(timeout_s + DELIVERY_JOB_SLACK_S),
            retries=3,
            retry_delay=JOB_RETRY_DELAY_S,
            retry_backoff=JOB_RETRY_BACKOFF_MAX_S,
            ttl=JOB_RECORD_TTL_S,
            scheduled=int(time.time() + delay_s) if delay_s > 0 else 0,
        )
        await self.saq.enqueue(job)

    async def get(self, key: str) -> Job | None:
        return await self.saq.job(key)

    async def cancel(self, key: str) -> Job | None:
        """Abort a queued or running job; a finished job is returned unchanged."""
        job = await self.saq.job(key)
        if job is None or job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
            return job
        await self.saq.abort(job, CANCELED_BY_CLIENT)
        return await self.saq.job(key)

    async def depth(self) -> int:
        """Jobs waiting to start."""
        return int(await self.saq.count("queued"))

    async def active(self) -> int:
        return int(await self.saq.count("active"))
