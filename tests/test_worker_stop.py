"""An idle worker stops at once when told to; upkeep with nothing to finish does not hold it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from redis.asyncio import Redis

from service.queue import make_worker

if TYPE_CHECKING:
    from tests.conftest import RedisServers

pytestmark = pytest.mark.redis

#: SAQ's worker-info upkeep sleeps 10 s between runs; a stop that waited for it took 12 s.
LONGEST_UPKEEP_SLEEP_S = 10


@pytest.fixture
async def redis(redis_servers: RedisServers) -> AsyncIterator[Redis]:
    """A client of a private redis-server (stopped by ``redis_servers``)."""
    client = Redis.from_url(redis_servers().url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_an_idle_worker_stops_without_waiting_out_its_upkeep(redis: Redis) -> None:
    """Stopping a worker with no job in hand cancels its idle upkeep at once and returns well
    before the longest upkeep sleep (it used to wait that sleep out: 12 s for ``make run``)."""
    started = asyncio.Event()

    async def on_start(ctx: Any) -> None:
        started.set()

    async def nothing(ctx: Any) -> None:
        return None

    async def noop(ctx: Any, **kwargs: Any) -> None:
        return None

    worker = make_worker(
        redis,
        "stop-test",
        functions=[("noop", noop)],
        concurrency=2,
        startup=on_start,
        shutdown=nothing,
        after_process=nothing,
        shutdown_grace_s=600,
    )
    running = asyncio.create_task(worker.start())
    await asyncio.wait_for(started.wait(), 30)
    await asyncio.sleep(1.5)  # every upkeep task has run once and is asleep
    began = time.monotonic()
    worker.event.set()  # what SIGTERM does
    await asyncio.wait_for(running, LONGEST_UPKEEP_SLEEP_S + 20)
    took = time.monotonic() - began
    assert worker.queue.draining
    assert took < LONGEST_UPKEEP_SLEEP_S - 2, took
