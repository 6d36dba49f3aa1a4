"""The sweep, which gives a dead worker's jobs back, must itself survive dying midway.

SAQ's sweep marks a stuck job aborting and takes it off the active list, waits for the job's
worker to confirm, and only then re-queues it.  A sweeping worker killed during that wait used to
leave the job aborting and on no list at all: no later sweep could see it, and the article
showed "queued" for ever (the soak run of ``test_faults.py`` lost 6 of 200 jobs to this).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from saq import Status

from service.constants import Keys
from service.queue import DrainingQueue, JobPayload, JobQueue
from tests.reliability.conftest import PREFIX

if TYPE_CHECKING:
    from tests.conftest import RedisServers

pytestmark = pytest.mark.redis

KEY = "5" * 64
#: How long the last sweep waits for the dead worker to confirm the abort (passed in): long next
#: to the few Redis round trips that sweep does otherwise, so waiting twice stands out however
#: slow the machine is.
ABORT_WAIT_S = 2.0


@pytest.fixture
async def private_redis(redis_servers: RedisServers) -> AsyncIterator[Redis]:
    """A client of a redis-server of this test's own, so the stacks' fixed queue name is free."""
    client = Redis.from_url(redis_servers().url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_sweep_killed_midway_leaves_the_job_for_the_next_sweep(
    private_redis: Redis,
) -> None:
    """A worker killed while it sweeps a dead worker's job leaves that job where the next
    sweep (by any worker) finds it and re-queues it."""
    api = JobQueue(private_redis, Keys(PREFIX), retries=3)
    await api.submit(KEY, JobPayload(text="Ein Artikel, dessen Worker gleich stirbt."))
    crashed = DrainingQueue(private_redis, name=PREFIX)
    sweeper = DrainingQueue(private_redis, name=PREFIX)
    survivor = DrainingQueue(private_redis, name=PREFIX)
    try:
        # A worker takes the job, starts it, and dies: its heartbeat is a minute old.
        job = await crashed.dequeue(timeout=1)
        assert job is not None
        job.attempts, job.started, job.status = 1, int(time.time() * 1000), Status.ACTIVE
        job.touched = job.started - 60_000
        await private_redis.set(job.id, crashed.serialize(job))

        # A second worker sweeps, and is killed while it waits for the abort to be confirmed.
        sweep = asyncio.create_task(sweeper.sweep(5))
        deadline = time.monotonic() + 5
        while (stored := await api.get(KEY)) and stored.status != Status.ABORTING:
            assert time.monotonic() < deadline, stored
            await asyncio.sleep(0.01)
        sweep.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweep

        # The lock it held lapses; the next sweep, on a third worker, takes the job back.
        await private_redis.delete(survivor.namespace("sweep"))
        began = time.monotonic()
        swept = await survivor.sweep(5, abort=ABORT_WAIT_S)
        took = time.monotonic() - began
    finally:
        for queue in (crashed, sweeper, survivor):
            await queue.disconnect()
    stored = await api.get(KEY)
    assert stored is not None
    assert swept == [stored.id], swept
    assert stored.status == Status.QUEUED, stored.status
    # One wait for the dead worker's confirmation, not one per stuck state the job went through.
    assert took < 2 * ABORT_WAIT_S, took
