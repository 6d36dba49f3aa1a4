"""The sweep gives back only dead workers' jobs; the paths that may pass the queue cap do so
only by what ``service.queue.jobs`` documents.

Each test drives the real queue classes on a private redis-server, playing the worker's part
step by step, so a race that needs an overloaded machine to show up in the fault tests (a sweep
landing between a worker taking a job and starting it) is made to happen every time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis

from service.constants import CANCELED_BY_CLIENT, JOB_HEARTBEAT_S, Keys
from service.errors import QueueFullError
from service.queue import DrainingQueue, Job, JobPayload, JobQueue, Status, status_of
from service.schemas import JobStatus

if TYPE_CHECKING:
    from tests.conftest import RedisServers

pytestmark = pytest.mark.redis

PREFIX = "paths"
CAP = 3


@pytest.fixture
async def redis(redis_servers: RedisServers) -> AsyncIterator[Redis]:
    """A client of a private redis-server (stopped by ``redis_servers``)."""
    client = Redis.from_url(redis_servers().url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def api(redis: Redis) -> JobQueue:
    """The API's side of the queue, with two retries per job."""
    return JobQueue(redis, Keys(PREFIX), retries=2)


@pytest.fixture
async def workers(redis: Redis) -> AsyncIterator[list[DrainingQueue]]:
    """Three workers' queues (a worker that takes jobs, a sweeper, a spare)."""
    queues = [DrainingQueue(redis, name=PREFIX) for _ in range(3)]
    yield queues
    for queue in queues:
        await queue.disconnect()


def key(n: int) -> str:
    return f"{n:064x}"


async def submit(api: JobQueue, n: int, *, cap: int | None = CAP) -> Job:
    job, created = await api.submit(key(n), JobPayload(text=f"Artikel Nummer {n}."), max_depth=cap)
    assert created
    return job


async def start(queue: DrainingQueue) -> Job:
    """Take the next job and start it as SAQ's worker does (attempts, started, active)."""
    job = await queue.dequeue(timeout=1)
    assert job is not None
    job.started = int(time.time() * 1000)
    job.attempts += 1
    await job.update(status=Status.ACTIVE)
    return job


async def die(redis: Redis, queue: DrainingQueue, job: Job) -> None:
    """The job's worker dies: the stored job's last touch is a minute old."""
    stored = await queue.job(job.key)
    assert stored is not None
    stored.touched = int(time.time() * 1000) - 60_000
    await redis.set(job.id, queue.serialize(stored))


async def unlock(redis: Redis, queue: DrainingQueue) -> None:
    """Let the next sweep run at once (the last one's lock would hold it for seconds)."""
    await redis.delete(queue.namespace("sweep"))


async def sweep(redis: Redis, queue: DrainingQueue) -> list[str]:
    await unlock(redis, queue)
    return await queue.sweep(5, abort=0.2)


async def test_a_job_just_taken_by_a_live_worker_is_not_swept(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """A sweep between a worker taking a job and starting it leaves the job to that worker
    (it used to re-queue it: the job ran twice and the waiting list grew past the cap)."""
    taker, sweeper, _ = workers
    await submit(api, 1)
    taken = await taker.dequeue(timeout=1)  # on the active list, not yet marked active
    assert taken is not None
    assert await sweep(redis, sweeper) == []
    taken.attempts += 1
    await taken.update(status=Status.ACTIVE)
    stored = await api.get(key(1))
    assert stored is not None and stored.status == Status.ACTIVE
    assert await api.depth() == 0
    assert await redis.zscore(sweeper.namespace("incomplete"), taken.id) == 0  # not rescheduled


async def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_given_back(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """Taken but still not started a grace period after a sweep first saw it: given back."""
    taker, sweeper, _ = workers
    sweeper.not_started_grace_s = 0.3
    await submit(api, 2)
    assert await taker.dequeue(timeout=1) is not None
    assert await sweep(redis, sweeper) == []  # first sighting
    await asyncio.sleep(0.4)
    assert await sweep(redis, sweeper) == [f"saq:job:{PREFIX}:{key(2)}"]
    stored = await api.get(key(2))
    assert stored is not None and status_of(stored) == JobStatus.QUEUED


async def test_a_sweep_that_finds_the_lock_held_keeps_the_first_sightings(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """Workers take turns at the sweep; one that finds another's lock must not make a dead
    worker's taken job look newly seen (it was never given back while two workers swept)."""
    taker, sweeper, other = workers
    sweeper.not_started_grace_s = other.not_started_grace_s = 0.3
    await submit(api, 3)
    assert await taker.dequeue(timeout=1) is not None
    assert await sweep(redis, sweeper) == []  # first sighting; the lock is now held
    assert await other.sweep(5, abort=0.2) == []  # locked out: sees nothing, forgets nothing
    await asyncio.sleep(0.4)
    assert await sweep(redis, other) == [f"saq:job:{PREFIX}:{key(3)}"]


async def test_a_canceled_job_whose_worker_died_ends_canceled_and_never_runs_again(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """A client cancels a running job, then its worker dies: a sweep ends the job canceled
    (terminal), takes it off every list, and nothing re-runs it."""
    taker, sweeper, spare = workers
    await submit(api, 3)
    job = await start(taker)
    outcome = await api.cancel(key(3))
    assert outcome is not None and outcome.pending
    await die(redis, taker, job)
    swept = await sweep(redis, sweeper)
    assert swept == [job.id]
    stored = await api.get(key(3))
    assert stored is not None
    assert (stored.status, stored.error) == (Status.ABORTED, CANCELED_BY_CLIENT)
    assert await redis.llen(sweeper.namespace("active")) == 0
    assert await redis.zscore(sweeper.namespace("incomplete"), job.id) is None
    assert await sweep(redis, sweeper) == []
    assert await spare.dequeue(timeout=0.2) is None


async def test_a_live_workers_job_is_judged_by_its_record_now_not_by_the_sweeps_snapshot(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """A sweep waits on each dead worker's job in turn (seconds each); a live worker's job
    listed after them must be judged by its record as it is then.  Judged by the snapshot the
    sweep began with, a job its worker kept touching looked stale by then: the sweep aborted
    it, its worker stopped it, and it ran again: the likeliest cause of the six re-runs no kill
    explained, each with a duplicate webhook, that failed the crash test in CI."""
    taker, sweeper, _ = workers
    await submit(api, 7)
    await submit(api, 8)
    dead = await start(taker)  # listed first: taken first
    live = await start(taker)
    await die(redis, taker, dead)
    # The live job's last touch, when the sweep begins, is a little inside its heartbeat ...
    stored = await taker.job(live.key)
    assert stored is not None
    stored.touched = int(time.time() * 1000) - (JOB_HEARTBEAT_S - 1) * 1000
    await redis.set(live.id, taker.serialize(stored))

    async def keep_touching() -> None:  # ... and its worker keeps touching it meanwhile
        while True:
            await asyncio.sleep(0.2)
            await live.update()

    give_back = sweeper._give_back

    async def slowly(job: Job, abort_wait_s: float) -> None:  # a dead worker's job takes time
        await asyncio.sleep(1.5)
        await give_back(job, abort_wait_s)

    sweeper._give_back = slowly  # type: ignore[method-assign]
    toucher = asyncio.create_task(keep_touching())
    try:
        await unlock(redis, sweeper)
        swept = await sweeper.sweep(5, abort=0.2)
    finally:
        toucher.cancel()
    assert swept == [dead.id]
    after = await api.get(key(8))
    assert after is not None and after.status == Status.ACTIVE and after.attempts == 1


async def test_a_canceled_job_whose_worker_lives_is_left_to_that_worker(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """While the job's worker still touches it, the sweep leaves a canceled job alone: that
    worker stops it at its next abort check."""
    taker, sweeper, _ = workers
    await submit(api, 4)
    await start(taker)
    await api.cancel(key(4))
    assert await sweep(redis, sweeper) == []
    stored = await api.get(key(4))
    assert stored is not None and stored.status == Status.ABORTING


async def test_a_job_out_of_retries_by_sweeps_fails_and_is_announced_once(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """Its workers died on every attempt: the last sweep fails it and calls the failure hook
    once (the worker sends ``summary.failed`` from it); later sweeps do nothing more."""
    taker, sweeper, _ = workers
    failed: list[str] = []

    async def on_failed(job: Job) -> None:
        failed.append(job.key)

    sweeper.on_failed = on_failed
    await submit(api, 5)
    for attempt in (1, 2):
        job = await start(taker)
        assert job.attempts == attempt
        await die(redis, taker, job)
        assert await sweep(redis, sweeper) == [job.id]
        await redis.zadd(sweeper.namespace("incomplete"), {job.id: 0})  # due now
        if attempt == 1:
            await redis.rpush(sweeper.namespace("queued"), job.id)
    stored = await api.get(key(5))
    assert stored is not None and status_of(stored) == JobStatus.FAILED
    assert failed == [key(5)]
    assert await sweep(redis, sweeper) == []
    assert failed == [key(5)]


async def test_new_jobs_never_pass_the_cap(api: JobQueue) -> None:
    """Admission is checked and done in one step: the cap refuses the next new job."""
    for n in range(CAP):
        await submit(api, 10 + n)
    with pytest.raises(QueueFullError) as refused:
        await submit(api, 20)
    assert refused.value.depth == CAP
    assert await api.depth() == CAP


async def test_a_retried_attempt_may_pass_the_cap_by_one_per_running_job(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """A failed attempt of an accepted job comes back (after its delay) even onto a full
    list: at most one per job running, and new jobs stay refused until there is room."""
    taker, _, _ = workers
    await submit(api, 30)
    job = await start(taker)
    for n in range(CAP):
        await submit(api, 31 + n)
    await taker.retry(job, "a failure")
    await redis.zadd(taker.namespace("incomplete"), {job.id: 1})  # its delay is over
    moved = await taker.schedule()
    assert moved == [job.id]
    assert await api.depth() == CAP + 1
    with pytest.raises(QueueFullError):
        await submit(api, 40)


async def test_a_dead_workers_job_may_pass_the_cap_when_swept(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """The sweep gives a dead worker's job back even onto a full list: at most that worker's
    concurrency."""
    taker, sweeper, _ = workers
    await submit(api, 50)
    job = await start(taker)
    for n in range(CAP):
        await submit(api, 51 + n)
    await die(redis, taker, job)
    assert await sweep(redis, sweeper) == [job.id]
    await redis.zadd(sweeper.namespace("incomplete"), {job.id: 1})
    assert await sweeper.schedule() == [job.id]
    assert await api.depth() == CAP + 1


async def test_a_draining_workers_hand_back_takes_back_only_the_room_it_made(
    api: JobQueue, workers: list[DrainingQueue], redis: Redis
) -> None:
    """A worker told to stop hands back a job it took after the signal: the list is as long
    as before it took it (never longer), and the job is not lost."""
    taker, _, _ = workers
    for n in range(CAP):
        await submit(api, 60 + n)
    taker.draining = True
    assert await taker.dequeue(timeout=1) is None  # taken and handed back
    await redis.zadd(taker.namespace("incomplete"), {f"saq:job:{PREFIX}:{key(60)}": 1})
    await taker.schedule()
    assert await api.depth() == CAP
    stored = await api.get(key(60))
    assert stored is not None and status_of(stored) == JobStatus.QUEUED


async def test_webhook_deliveries_have_their_own_queue_and_never_hold_articles_back(
    api: JobQueue, workers: list[DrainingQueue]
) -> None:
    """Delivery attempts are never refused (a finished job's event is never dropped) and wait
    on a queue of their own: a backlog of them neither counts in the articles' depth nor keeps
    an article out (they used to share the list, so a redelivery storm refused articles)."""
    from service.webhooks import Delivery

    for n in range(CAP + 5):
        delivery = Delivery(job_id=key(70), url=f"https://hooks.example/{n}", event_type="x")
        await api.schedule_delivery(delivery, 0)
    assert await api.deliveries.count("queued") == CAP + 5
    assert await api.depth() == 0
    for n in range(CAP):
        await submit(api, 70 + n)  # the whole article queue is still there for articles
    assert await api.depth() == CAP
