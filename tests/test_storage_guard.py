"""New work is refused before the queue's Redis is full (``service.store.memory``), and a write
Redis refuses at its limit is a 503 the client can wait out, not a 500 (real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.exceptions
from redis.asyncio import Redis

from service.api.problems import problem_for
from service.constants import Keys
from service.errors import StorageFullError
from service.queue import JobPayload, JobQueue
from service.store.memory import DEFAULT_GROWTH, StorageGuard, growth
from tests.processes import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server: these tests change its ``maxmemory``."""
    server = RedisServer(tmp_path_factory.mktemp("guard"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def client(server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(server.url)
    await client.config_set("maxmemory", 0)
    try:
        yield client
    finally:
        await client.config_set("maxmemory", 0)
        await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def used_bytes(client: Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def test_a_redis_without_maxmemory_never_refuses(client: Redis) -> None:
    guard = StorageGuard(client, Keys("guard"), 0.01)
    await guard.check()
    assert (await guard.snapshot()).limit_bytes == 0


async def test_work_is_refused_above_the_high_water_mark_and_accepted_below(
    client: Redis,
) -> None:
    used = await used_bytes(client)
    clock = Clock()
    guard = StorageGuard(client, Keys("guard"), 0.9, clock=clock)
    # used is 95% of the limit: above the mark.
    await client.config_set("maxmemory", int(used / 0.95))
    with pytest.raises(StorageFullError) as refused:
        await guard.check()
    assert refused.value.status == 503
    assert refused.value.headers["Retry-After"] == str(StorageFullError.retry_after_s)
    # Twice the room: below the mark once the guard reads INFO again.
    await client.config_set("maxmemory", used * 2)
    clock.now += 1.0
    await guard.check()


async def test_info_is_read_at_most_once_a_second(client: Redis) -> None:
    """A flood of submissions costs Redis one INFO a second per API process."""
    used = await used_bytes(client)
    clock = Clock()
    guard = StorageGuard(client, Keys("guard"), 0.9, clock=clock)
    await client.config_set("maxmemory", used * 4)
    await guard.check()
    await client.config_set("maxmemory", int(used / 0.95))
    clock.now += 0.5
    await guard.check()  # still the snapshot with room
    clock.now += 0.5
    with pytest.raises(StorageFullError):
        await guard.check()


async def test_a_write_refused_at_maxmemory_is_a_503_storage_full(client: Redis) -> None:
    """Redis answers OOM to a plain write and, differently worded, to one inside a script."""
    await client.set("guard:filler", "x" * 200_000)
    await client.config_set("maxmemory", await used_bytes(client) - 100_000)
    try:
        with pytest.raises(redis.exceptions.ResponseError) as plain:
            await client.set("guard:more", "y" * 1000)
        with pytest.raises(redis.exceptions.ResponseError) as scripted:
            await client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "guard:s", "z")
    finally:
        await client.config_set("maxmemory", 0)
        await client.delete("guard:filler")
    for error in (plain.value, scripted.value):
        problem = problem_for(error)
        assert (problem.status, problem.code) == (503, "storage_full"), (error, problem.code)
        assert problem.headers["Retry-After"] == str(StorageFullError.retry_after_s)


def test_other_redis_errors_stay_internal() -> None:
    problem = problem_for(redis.exceptions.ResponseError("WRONGTYPE Operation against a key"))
    assert (problem.status, problem.code) == (500, "internal")


async def test_what_accepted_jobs_will_still_write_counts_against_the_room(client: Redis) -> None:
    """Room for the results of jobs not yet ended is kept: Redis at half its limit, with
    articles pending whose results will fill the rest, refuses new work already."""
    keys = Keys("guard-pending")
    used = await used_bytes(client)
    await client.config_set("maxmemory", used * 2)
    guard = StorageGuard(client, keys, 0.9, clock=Clock())
    await guard.check()
    await client.set(keys.pending_input_bytes, int(used // DEFAULT_GROWTH))
    try:
        fresh = StorageGuard(client, keys, 0.9, clock=Clock())
        with pytest.raises(StorageFullError):
            await fresh.check()
        assert (await fresh.snapshot()).committed_bytes >= 0.9 * 2 * used
    finally:
        await client.delete(keys.pending_input_bytes)


async def test_the_reserve_follows_what_finished_jobs_weighed(client: Redis) -> None:
    """Records, with the paragraphs their jobs held, eleven times their articles (small models
    writing long output, say) reserve eleven times the pending articles; before any job
    finished, the default."""
    keys = Keys("guard-growth")
    await client.set(keys.pending_input_bytes, 1000)
    await client.hset(keys.result_growth, mapping={"input": 5000, "record": 55000})
    try:
        snapshot = await StorageGuard(client, keys, 0.9, clock=Clock()).snapshot()
    finally:
        await client.delete(keys.pending_input_bytes, keys.result_growth)
    assert snapshot.growth == 11.0
    assert snapshot.committed_bytes == snapshot.used_bytes + 11_000
    assert growth(0, 0) == DEFAULT_GROWTH


async def test_articles_being_enqueued_count_against_the_room(client: Redis) -> None:
    """A burst of requests cannot all take the same room: what this process is enqueuing
    right now is reserved until it is done."""
    keys = Keys("guard-admit")
    used = await used_bytes(client)
    await client.config_set("maxmemory", used * 2)
    guard = StorageGuard(client, keys, 0.9, clock=Clock())
    article = int(used * 0.7 / DEFAULT_GROWTH / 2)  # two fit under the mark, three do not
    async with guard.admit(article), guard.admit(article):
        with pytest.raises(StorageFullError):
            async with guard.admit(article):
                pass
    async with guard.admit(article):  # the first two are done: room again
        pass


async def test_a_burst_across_api_processes_takes_the_room_once(client: Redis) -> None:
    """Two API processes, each trusting the reading it took a moment ago, take turns enqueuing
    a burst: the enqueue step measures Redis again, so together they fill the room and stop
    there.  Their own quick checks alone let every article in: neither reading knows of the
    other's jobs, nor of what the jobs stored."""
    keys = Keys("guard-burst")
    queue = JobQueue(client, keys)
    used = await used_bytes(client)
    limit = used * 4
    await client.config_set("maxmemory", limit)
    guards = [StorageGuard(client, keys, 0.9, clock=Clock()) for _ in range(2)]
    text = "Ein Wort mehr. " * (used // 150)  # a tenth of what Redis holds: a handful fit

    async def burst(checked: bool, count: int = 40) -> int:
        accepted = 0
        for n in range(count):
            try:
                async with guards[n % 2].admit(len(text.encode())) as room:
                    job = f"{checked:d}{n:063x}"
                    await queue.submit(job, JobPayload(text=text), room=room if checked else None)
                accepted += 1
            except StorageFullError:
                pass
        return accepted

    try:
        for guard in guards:
            await guard.check()  # both read Redis now, and trust that for a second
        accepted = await burst(checked=True)
        after = await StorageGuard(client, keys, 0.9, clock=Clock()).snapshot()
        assert 3 <= accepted < 40
        # The last one fitted; what it stored is all that may lie above the mark.
        assert after.committed_bytes <= 0.9 * limit + 2 * len(text), (after, limit)
        await client.flushdb()
        # Without the step's check, the same burst and three more all go in, past the mark.
        assert await burst(checked=False, count=accepted + 3) == accepted + 3
        after = await StorageGuard(client, keys, 0.9, clock=Clock()).snapshot()
        assert after.committed_bytes > 0.9 * limit
    finally:
        await client.flushdb()
