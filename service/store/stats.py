"""The shared counters: workers add to one Redis hash, the API's ``/metrics`` reads it.

Fields are plain counters (``jobs_succeeded``) or per-stage sums and counts
(``stage_seconds_sum:<stage>``, ``stage_count:<stage>``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import cast

from redis.asyncio import Redis

from service.constants import Keys

__all__ = ["STAGE_COUNT", "STAGE_SUM", "Stats"]

STAGE_SUM = "stage_seconds_sum:"
STAGE_COUNT = "stage_count:"


class Stats:
    """The deployment's counters in ``Keys.stats()``."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def add(self, **counters: float) -> None:
        """Add to several counters in one round trip (integers stay integers)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, value in counters.items():
                if isinstance(value, int):
                    pipe.hincrby(self.keys.stats(), name, value)
                else:
                    pipe.hincrbyfloat(self.keys.stats(), name, value)
            await pipe.execute()

    async def read(self) -> dict[str, float]:
        """Every counter as a number; a field that is not a number is skipped, not fatal."""
        raw = await cast("Awaitable[dict[bytes, bytes]]", self.redis.hgetall(self.keys.stats()))
        return _decode(raw)


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    stats: dict[str, float] = {}
    for name, value in raw.items():
        try:
            stats[name.decode()] = float(value)
        except ValueError:
            continue
    return stats
