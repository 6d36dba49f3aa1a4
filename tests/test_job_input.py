"""An article's text stays out of its job: stored beside it while the job lives, put back by the
worker, dropped when the job ends, and a clear failure when it is gone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from service.constants import CANCELED_BY_CLIENT, Keys
from service.errors import InputExpiredError
from service.queue import Job, JobPayload, JobQueue, Status
from service.worker import _with_input, after_job

pytestmark = pytest.mark.redis

TEXT = "Die Elbphilharmonie feiert ihr Jubiläum mit einem Konzert für alle Hamburger."


@dataclass
class Notifier:
    queue: JobQueue

    async def announce(self, view: Any) -> int:
        return 0  # a failed job's webhook: not what these tests look at


@dataclass
class Partials:
    async def discard(self, key: str) -> int:
        return 0


@dataclass
class State:
    notifier: Notifier
    partials: Partials


async def queued(redis: Redis, prefix: str, key: str) -> tuple[JobQueue, Job]:
    queue = JobQueue(redis, Keys(prefix))
    _, created = await queue.submit(key, JobPayload(text=TEXT), max_depth=10)
    assert created
    stored = await queue.get(key)
    assert stored is not None
    return queue, stored


async def test_the_text_is_stored_beside_the_job_not_in_it(redis: Redis, prefix: str) -> None:
    queue, job = await queued(redis, prefix, "a" * 64)
    assert job.kwargs is not None
    assert TEXT not in str(job.kwargs)
    assert job.kwargs["input_chars"] == len(TEXT)
    key = Keys(prefix).job_input(job.key, job.queued)
    assert await redis.ttl(key) > 0  # it goes on its own if the job is never run
    state: Any = State(Notifier(queue), Partials())
    payload = JobPayload(**job.kwargs)
    assert payload.timed_chars == len(TEXT)  # the timeout is still sized for the article
    assert (await _with_input(state, job, payload)).text == TEXT


async def test_a_job_whose_text_is_gone_fails_saying_so(redis: Redis, prefix: str) -> None:
    queue, job = await queued(redis, prefix, "b" * 64)
    await redis.delete(Keys(prefix).job_input(job.key, job.queued))
    state: Any = State(Notifier(queue), Partials())
    assert job.kwargs is not None
    with pytest.raises(InputExpiredError):
        await _with_input(state, job, JobPayload(**job.kwargs))


@pytest.mark.parametrize(
    ("status", "error", "kept"),
    [
        (Status.COMPLETE, None, False),
        (Status.FAILED, "boom", False),
        (Status.ABORTED, CANCELED_BY_CLIENT, False),
        (Status.ABORTED, "swept", True),  # queued again by the sweep next: still needed
        (Status.QUEUED, "retrying", True),
    ],
)
async def test_the_text_goes_when_the_job_ends_for_good(
    redis: Redis, prefix: str, status: Status, error: str | None, kept: bool
) -> None:
    queue, job = await queued(redis, prefix, "c" * 64)
    job.status = status
    job.error = error
    state: Any = State(Notifier(queue), Partials())
    await after_job({"job": job, "state": state})
    assert (await queue.stored_input(job) is not None) is kept


async def pending_bytes(redis: Redis, prefix: str) -> int:
    return int(await redis.get(Keys(prefix).pending_input_bytes) or 0)


async def test_stored_articles_are_counted_until_their_jobs_end(redis: Redis, prefix: str) -> None:
    """The storage guard reserves room for what unfinished jobs will still write, from this
    count: it must rise with each stored article and fall when the article goes, once."""
    queue, first = await queued(redis, prefix, "d" * 64)
    one = await pending_bytes(redis, prefix)
    assert one == await redis.strlen(Keys(prefix).job_input(first.key, first.queued)) > len(TEXT)
    _, second = await queued(redis, prefix, "e" * 64)
    assert await pending_bytes(redis, prefix) == 2 * one
    # The same article again shares the job: nothing more is stored or counted.
    _, created = await queue.submit("e" * 64, JobPayload(text=TEXT), max_depth=10)
    assert not created and await pending_bytes(redis, prefix) == 2 * one
    await queue.forget_input(first)
    await queue.forget_input(first)  # a cancel and the worker's end: subtracted once
    assert await pending_bytes(redis, prefix) == one
    # A waiting job canceled by its client: no worker will end it, the cancel drops its article.
    outcome = await queue.cancel(second.key)
    assert outcome is not None and outcome.view.status == "canceled"
    assert await queue.stored_input(second) is None
    assert await pending_bytes(redis, prefix) == 0


async def test_a_finished_job_adds_its_weight_to_the_growth_sums(redis: Redis, prefix: str) -> None:
    """The guard learns how much a finished record, with the paragraphs its job held, outweighs
    its article from these sums; a failed or canceled job adds nothing (its record holds no
    result)."""
    keys = Keys(prefix)
    queue, done = await queued(redis, prefix, "f" * 64)
    _, failed = await queued(redis, prefix, "0" * 64)
    stored = await redis.strlen(keys.job_input(done.key, done.queued))
    done.status = Status.COMPLETE
    done.result = {"translation": "x" * 500}
    await queue.forget_input(done, 3000)
    failed.status = Status.FAILED
    await queue.forget_input(failed, 3000)
    sums = await redis.hgetall(keys.result_growth)
    assert int(sums[b"input"]) == stored
    assert int(sums[b"record"]) == len(queue.saq.serialize(done)) + 3000 > 3500
