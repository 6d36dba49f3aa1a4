"""The sweep: giving back the jobs of workers that died, and only those.

Every few seconds one worker (under a lock) looks at every job on the active list.  SAQ's own
sweep treats any job there whose status is not ``active`` as stuck, and re-queues it.  Three
kinds of job are on that list without being stuck, and SAQ's rule broke each:

- a job a live worker has just taken: the worker moves it onto the active list, reads it, and
  only then marks it ``active``.  Under load that takes a while; a sweep in between re-queued the
  job while its worker ran it (the job ran twice, and the re-queue pushed the waiting list past
  ``KURZ_MAX_QUEUE_DEPTH``).  Such a job is swept only when it is still not started a heartbeat
  period after a sweep first saw it (its worker died between taking and starting it);
- a job a client canceled while it ran: its worker stops it at its next abort check.  When that
  worker is dead (its heartbeat stale), the sweep finishes the job as canceled; it is never
  re-run;
- a finished job (its worker finished it while a cancel or a sweep re-listed it): taken off
  the list and left as it is.

A stuck job (``active`` with a stale heartbeat, or left ``aborting`` by a sweep that died
midway) is re-queued while it has retries left, as SAQ does.  One with none left fails, and the
``on_failed`` hook announces it (``summary.failed``): no worker's after-job hook runs for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from saq import Job, Status
from saq.queue.redis import RedisQueue

from service.constants import CANCELED_BY_CLIENT, JOB_HEARTBEAT_S, SWEEP_ABORT_WAIT_S

__all__ = ["SweepingQueue"]

#: The active list and each job on it, read in one step while taking the sweep's lock (SAQ's
#: script); ``false`` (None in Python) if another worker holds the lock.
_ACTIVE_JOBS = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SETEX', KEYS[1], ARGV[1], 1)
    local id_jobs = {}
    for i, v in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
        id_jobs[i] = {v, redis.call('GET', v)}
    end
    return id_jobs
end
return false
"""

_NOT_STARTED = (Status.NEW, Status.QUEUED)
_FINISHED = (Status.COMPLETE, Status.FAILED, Status.ABORTED)


def _now_ms() -> int:
    return int(time.time() * 1000)


class SweepingQueue(RedisQueue):
    """A Redis queue whose sweep re-queues only the jobs of dead workers (module docstring)."""

    #: Called with each job the sweep fails for good (out of retries); set by the worker.
    on_failed: Callable[[Job], Awaitable[None]] | None = None
    #: How long a taken job may stay unstarted before the sweep counts its worker dead: a
    #: heartbeat period, the time a running job may go untouched (tests shorten it).
    not_started_grace_s: float = JOB_HEARTBEAT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._active_jobs = self.redis.register_script(_ACTIVE_JOBS)

    @property
    def _not_started_key(self) -> str:
        """When a sweep first saw each taken-but-not-started job (a hash of epoch ms)."""
        return self.namespace("sweep-not-started")

    async def sweep(self, lock: int = 60, abort: float = SWEEP_ABORT_WAIT_S) -> list[str]:
        """Sweep the active list under the lock; the ids of the jobs given back or ended."""
        id_jobs = await self._active_jobs(
            keys=[self.namespace("sweep"), self.namespace("active")], args=[lock]
        )
        if id_jobs is None:
            # Another worker sweeps now.  Returning before the pruning below matters: a sweep
            # that saw no list used to forget every first sighting, so with two workers taking
            # turns a dead worker's taken job was "first seen" again and again, never given back.
            return []
        swept: list[str] = []
        not_started: set[str] = set()
        for position, (raw_id, raw_job) in enumerate(id_jobs):
            job_id = raw_id.decode()
            if position and swept:
                # Giving back the jobs before this one took seconds (each waits on its dead
                # worker): judge this one by its record as it is now.  By the snapshot, a job
                # its live worker kept touching looked stale by then, and was aborted and run
                # again (and its webhook sent twice).
                raw_job = await self.redis.get(job_id)
            job = self.deserialize(raw_job)
            if job is None:
                await self._forget(job_id)
                swept.append(job_id)
            elif job.status in _FINISHED:
                await self.redis.lrem(self.namespace("active"), 0, job_id)  # type: ignore[misc]
            elif job.status in _NOT_STARTED:
                not_started.add(job_id)
                if await self._long_not_started(job_id):
                    await self._give_back(job, abort)
                    swept.append(job_id)
            elif job.status == Status.ABORTING and job.error == CANCELED_BY_CLIENT:
                if _heartbeat_stale(job):
                    await self.finish(job, Status.ABORTED, error=CANCELED_BY_CLIENT)
                    swept.append(job_id)
            elif job.status == Status.ABORTING or job.stuck:
                await self._give_back(job, abort)
                swept.append(job_id)
        await self._prune_not_started(not_started)
        return swept

    async def _forget(self, job_id: str) -> None:
        """A listed job whose record is gone: off the lists."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self.namespace("active"), 0, job_id)
            pipe.zrem(self.namespace("incomplete"), job_id)
            await pipe.execute()

    async def _long_not_started(self, job_id: str) -> bool:
        """Whether a sweep saw this job taken but not started a heartbeat period ago or more."""
        now = _now_ms()
        # redis-py types its commands for the sync and async clients alike.
        await self.redis.hsetnx(self._not_started_key, job_id, str(now))  # type: ignore[misc]
        await self.redis.expire(self._not_started_key, 10 * JOB_HEARTBEAT_S)
        first_seen = await self.redis.hget(self._not_started_key, job_id)  # type: ignore[misc]
        return first_seen is not None and now - int(first_seen) >= self.not_started_grace_s * 1000

    async def _prune_not_started(self, current: set[str]) -> None:
        """Forget first sightings of jobs that have started (or left the list) since."""
        known = await self.redis.hkeys(self._not_started_key)  # type: ignore[misc]
        stale = [key for key in known if key.decode() not in current]
        if stale:
            await self.redis.hdel(self._not_started_key, *stale)  # type: ignore[misc]

    async def _give_back(self, job: Job, abort_wait_s: float) -> None:
        """SAQ's treatment of a stuck job: abort it, wait for a live worker to confirm, then
        re-queue it, or fail it (and announce that) when it has no retries left."""
        await self.abort(job, error=self.swept_error_message)
        with contextlib.suppress(TimeoutError):  # its worker is dead: nobody confirms
            await job.refresh(abort_wait_s)
        if job.retryable:
            await self.retry(job, error=self.swept_error_message)
            return
        await self.finish(job, Status.ABORTED, error=self.swept_error_message)
        if self.on_failed is not None:
            await self.on_failed(job)


def _heartbeat_stale(job: Job) -> bool:
    """Whether the job's worker has not touched it for longer than its heartbeat allows."""
    heartbeat_s = job.heartbeat or JOB_HEARTBEAT_S
    return _now_ms() - job.touched > heartbeat_s * 1000
