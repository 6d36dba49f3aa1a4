"""Room in the queue's Redis: new work is refused before Redis itself would refuse writes.

The queue's Redis runs with ``maxmemory-policy noeviction`` (docker-compose.yml): evicting a
queued job's article, its submitters or a delivery body would lose work, so Redis answers
writes with an OOM error instead once it is full.  At that point a worker could not even take
the next job or store a result, and the jobs already accepted would stall until records
expire.  So the API stops accepting new work at a high-water mark below ``maxmemory``
(``KURZ_REDIS_MEMORY_HIGH_WATER``), answering 503 ``storage_full``, and the room above it is
left to the jobs in flight.  A Redis without ``maxmemory`` (``make run``'s) is never refused.

Memory grows after a job is accepted, too: its result (the translation, each sentence again
beside its source, the summary), its paragraphs as they arrive and its webhook bodies are
written while it runs.  So the mark is compared with the memory in use plus what the jobs not
yet ended will still write: the articles they stored (``Keys.pending_input_bytes``, kept by
the enqueue script and by ``JobQueue.forget_input``) times how much a finished record, with
the paragraphs its job held while running, has outweighed its article so far
(``Keys.result_growth``, summed by the workers), or ``DEFAULT_GROWTH`` before any job has
finished.  A fixed factor would be wrong for someone: the ratio depends on the models and on
the language of the articles.

``INFO memory`` and those counters are read in one round trip, at most once a second per API
process while Redis is less than half way to the mark (a flood of submissions then costs
Redis three small commands a second, not one per request), and for every new job beyond it.
A reading that old cannot know the jobs enqueued since, on this process or another, nor
what they stored, so the same comparison is made again inside the enqueue script
(``MemoryRoom``), against the memory Redis reports at that moment and the pending bytes it
is about to add to: a burst on any number of API processes cannot take the same room twice.
The reading stays as a quick refusal that costs Redis nothing per request; it counts the
articles its process is enqueuing at that moment too (``StorageGuard.admit``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from service.constants import Keys
from service.errors import StorageFullError

__all__ = ["DEFAULT_GROWTH", "MemoryRoom", "MemorySnapshot", "StorageGuard", "growth"]

#: Seconds one ``INFO memory`` answer is trusted.
REFRESH_S = 1.0
#: Bytes a finished record holds per byte of its stored article, before any job has finished:
#: the translation, and the aligned sentences with their sources, are three times the article;
#: the paragraphs kept while a job runs add one more.
DEFAULT_GROWTH = 5.0


@dataclass(frozen=True, slots=True)
class MemoryRoom:
    """The rule the enqueue step applies with Redis's own figures of that moment: refuse a job
    whose article would take the memory in use, plus ``growth`` times the pending articles,
    to ``high_water`` of ``maxmemory`` (a Redis without ``maxmemory`` refuses nothing)."""

    high_water: float
    growth: float


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    """Redis's ``used_memory`` and ``maxmemory`` (0: no limit), and the articles of the jobs
    not yet ended, in bytes."""

    used_bytes: int
    limit_bytes: int
    pending_input_bytes: int = 0
    growth: float = DEFAULT_GROWTH

    @property
    def committed_bytes(self) -> int:
        """What Redis will hold once the jobs accepted so far have written their results."""
        return self.used_bytes + int(self.growth * self.pending_input_bytes)

    def over(self, high_water: float, admitting_bytes: int = 0) -> bool:
        """Whether new work should be refused at this share of the limit, with articles of
        ``admitting_bytes`` being enqueued besides the jobs accepted already."""
        committed = self.committed_bytes + int(self.growth * admitting_bytes)
        return self.limit_bytes > 0 and committed >= high_water * self.limit_bytes


class StorageGuard:
    """Refuses new work (``StorageFullError``) while Redis is above its high-water mark."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        high_water: float,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.high_water = high_water
        self.refresh_s = refresh_s
        self._clock = clock
        self._snapshot: MemorySnapshot | None = None
        self._read_at = 0.0
        self._admitting = 0

    async def check(self) -> None:
        """Return if there is room for new work; raise ``StorageFullError`` if not."""
        await self._check(0)

    @asynccontextmanager
    async def admit(self, article_bytes: int) -> AsyncIterator[MemoryRoom]:
        """Room for one new article job of ``article_bytes``, held while it is enqueued;
        yields the rule the enqueue step must check again with current figures.

        The quick check here counts the articles this process is enqueuing right now; the
        enqueue step's check is what stops a burst across processes, or one faster than the
        readings.
        """
        snapshot = await self._check(article_bytes)
        self._admitting += article_bytes
        try:
            yield MemoryRoom(self.high_water, snapshot.growth)
        finally:
            self._admitting -= article_bytes

    async def _check(self, article_bytes: int) -> MemorySnapshot:
        snapshot = await self.snapshot()
        if snapshot.over(self.high_water, self._admitting + article_bytes):
            raise StorageFullError()
        return snapshot

    async def snapshot(self) -> MemorySnapshot:
        """The last reading, read again when older than ``refresh_s``, or on every call once
        Redis is over half way to the mark: near it, a second's burst could overrun it."""
        now = self._clock()
        snapshot = self._snapshot
        if (
            snapshot is None
            or now - self._read_at >= self.refresh_s
            or snapshot.over(self.high_water / 2)
        ):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.info("memory")
                pipe.get(self.keys.pending_input_bytes)
                pipe.hmget(self.keys.result_growth, ["input", "record"])
                info, pending, (inputs, records) = await pipe.execute()
            snapshot = MemorySnapshot(
                used_bytes=int(info.get("used_memory", 0)),
                limit_bytes=int(info.get("maxmemory", 0)),
                pending_input_bytes=max(0, int(pending or 0)),
                growth=growth(int(inputs or 0), int(records or 0)),
            )
            self._snapshot, self._read_at = snapshot, now
        return snapshot


def growth(inputs: int, records: int) -> float:
    """Finished records' bytes, with the paragraphs their jobs held while running, per byte of
    their articles; ``DEFAULT_GROWTH`` until a job has finished."""
    if inputs <= 0 or records <= 0:
        return DEFAULT_GROWTH
    return records / inputs
