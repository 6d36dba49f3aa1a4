"""Characters translated per key and calendar month: what DeepL's ``/v2/usage`` reports.

One counter per subject (a key's digest, or ``public``) and month, incremented once per
answered request by the characters it carried, kept a little over two months so the month
just ended can still be read.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from service.constants import Keys

__all__ = ["CharacterUsage"]

#: A counter outlives its month by about one more, then Redis drops it.
USAGE_TTL_S = 62 * 24 * 3600


def current_period(now: float | None = None) -> str:
    """The billing period of ``now`` (UTC calendar month), as ``YYYY-MM``."""
    return time.strftime("%Y-%m", time.gmtime(time.time() if now is None else now))


class CharacterUsage:
    """Read and add to a subject's character count for the current month."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def count(self, subject: str) -> int:
        raw = await self.redis.get(self.keys.usage(subject, current_period()))
        return int(raw or 0)

    async def add(self, subject: str, characters: int) -> int:
        """Count ``characters`` more; returns the new total for the month."""
        key = self.keys.usage(subject, current_period())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, characters)
            pipe.expire(key, USAGE_TTL_S)
            total, _ = await pipe.execute()
        return int(total)
