"""Which workers are alive, answered without walking the keyspace.

Readiness, ``/metrics`` and the container probes ask this every few seconds.  They once SCANned
for heartbeat keys: with a month of sentence cache that is tens of thousands of round trips per
probe.  Now each worker's id sits in one sorted set, scored by when its heartbeat runs out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from unittest import mock

import pytest
from redis.asyncio import Redis

from service.api.app import create_app
from service.constants import WORKER_HEARTBEAT_TTL_S, Keys
from service.settings import Settings
from service.store.workers import WorkerRegistry
from tests.conftest import AppServer, RedisServers
from tests.test_api import metric_samples

pytestmark = pytest.mark.redis

#: Commands that walk the keyspace.
WALKS = ("cmdstat_scan", "cmdstat_keys")


async def test_workers_are_live_while_they_beat(redis: Redis, prefix: str) -> None:
    """A beating worker is listed and counted; one that stops cleanly, or whose heartbeat ran
    out without a word (SIGKILL), is not, and its entry does not linger."""
    keys = Keys(prefix)
    registry = WorkerRegistry(redis, keys)
    assert await registry.live() == [] and await registry.count() == 0
    await registry.beat("host-b-2", {})
    await registry.beat("host-a-1", {})
    await registry.beat("host-a-1", {})  # a renewal is still one worker
    assert await registry.live() == ["host-a-1", "host-b-2"]
    assert await registry.count() == 2
    await registry.remove("host-b-2")
    assert await registry.live() == ["host-a-1"]
    # A killed worker writes nothing more: its score is the moment its heartbeat ran out.
    await redis.zadd(keys.workers_alive(), {"host-c-3": time.time() - 1})
    assert await registry.count() == 1
    assert await registry.live() == ["host-a-1"]
    assert await redis.zscore(keys.workers_alive(), "host-c-3") is None, "not pruned"
    # The set itself expires when the last worker stops beating.
    assert 0 < await redis.ttl(keys.workers_alive()) <= WORKER_HEARTBEAT_TTL_S


async def test_readiness_and_metrics_never_scan_the_keyspace(
    redis_servers: RedisServers, settings_for: Callable[..., Settings], serve_app: AppServer
) -> None:
    """With 20,000 cache entries in Redis, readiness probes and metrics scrapes send no SCAN
    (or KEYS) at all, and still see the worker."""
    server = redis_servers()
    client = Redis.from_url(server.url)
    try:
        settings = settings_for("probe", redis_url=server.url)
        keys = Keys(settings.key_prefix)
        async with client.pipeline(transaction=False) as pipe:
            for index in range(20_000):
                pipe.set(keys.sentence("m", f"{index:064x}"), b"The sun is shining.")
            await pipe.execute()
        await WorkerRegistry(client, keys).beat("host-a-1", {})
        api = await serve_app(create_app(settings))
        await client.config_resetstat()
        for _ in range(3):
            ready = await api.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["workers"] == ["host-a-1"]
            scrape = await api.get("/metrics")
            assert metric_samples(scrape.text)["kurz_workers_alive"] == 1
        stats = await client.info("commandstats")
        walked = {name: stat for name, stat in stats.items() if name in WALKS}
        assert not walked, f"the probes walked the keyspace: {walked}"
    finally:
        await client.aclose()


async def test_metrics_scrapes_share_a_recent_snapshot(
    redis: Redis, make_settings: Callable[..., Settings], prefix: str, serve_app: AppServer
) -> None:
    """Scrapes within the snapshot's age are answered from it (Redis is asked once); an older
    snapshot is read again, so the figures follow the deployment."""
    api = await serve_app(create_app(make_settings()))
    registry = WorkerRegistry(redis, Keys(prefix))
    with mock.patch("service.api.metrics.SNAPSHOT_MAX_AGE_S", 3600):
        first = metric_samples((await api.get("/metrics")).text)
        await registry.beat("host-a-1", {})
        again = metric_samples((await api.get("/metrics")).text)
    assert first["kurz_workers_alive"] == again["kurz_workers_alive"] == 0
    with mock.patch("service.api.metrics.SNAPSHOT_MAX_AGE_S", 0):
        fresh = metric_samples((await api.get("/metrics")).text)
    assert fresh["kurz_workers_alive"] == 1
