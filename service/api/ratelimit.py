"""How often a caller may call: a per-client limit counted in Redis.

The limit is a fixed one-minute window counted with INCR in Redis, so it holds across every API
replica behind a load balancer: a client cannot multiply its allowance by spreading requests.
A fixed window lets a client send up to twice the limit across a window boundary; that is the
price of one round trip per request, and fine for keeping a newsroom script from flooding the
queue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from service.constants import Keys
from service.errors import ApiProblem

__all__ = ["FixedWindowLimiter", "RateDecision"]

WINDOW_S = 60


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One counted request: whether it is allowed, and when the window resets."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int


class FixedWindowLimiter:
    """``per_minute`` requests per subject and calendar minute, counted in Redis."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.per_minute = per_minute
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    async def hit(
        self, subject: str, per_minute: int | None = None, *, amount: int = 1
    ) -> RateDecision:
        """Count ``amount`` requests of ``subject`` in the current window (INCRBY and EXPIRE
        together), against ``per_minute`` (the limiter's own limit when None)."""
        limit = self.per_minute if per_minute is None else per_minute
        now = self.clock()
        window = int(now // WINDOW_S)
        key = self.keys.rate(subject, window)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, WINDOW_S + 5)
            count, _ = await pipe.execute()
        reset_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
        return RateDecision(
            allowed=int(count) <= limit,
            limit=limit,
            remaining=max(0, limit - int(count)),
            reset_after_s=reset_after,
        )

    async def used(self, subject: str) -> int:
        """How many requests ``subject`` has made in the current window (nothing is counted)."""
        raw = await self.redis.get(self.keys.rate(subject, int(self.clock() // WINDOW_S)))
        return int(raw or 0)

    def retry_in_s(self) -> int:
        """Seconds until the current window ends."""
        now = self.clock()
        return max(1, math.ceil((int(now // WINDOW_S) + 1) * WINDOW_S - now))

    async def check(self, subject: str, per_minute: int | None = None, *, amount: int = 1) -> None:
        """Count the request (as ``amount`` requests: a batch counts its articles); over the
        limit (``per_minute``, else the limiter's own; 0 is no limit), raise a 429 problem
        saying when to come back."""
        limit = self.per_minute if per_minute is None else per_minute
        if limit <= 0 or amount <= 0:
            return
        decision = await self.hit(subject, limit, amount=amount)
        if decision.allowed:
            return
        raise ApiProblem(
            429,
            "rate_limited",
            f"more than {decision.limit} requests this minute; retry in {decision.reset_after_s} s",
            headers={
                "Retry-After": str(decision.reset_after_s),
                "RateLimit-Limit": str(decision.limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(decision.reset_after_s),
            },
            limit=decision.limit,
            retry_after=decision.reset_after_s,
        )
