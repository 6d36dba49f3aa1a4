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
    async def discard(self, key: str) -> None:
        return None


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
