"""An API process reads an address's failed-key count from Redis at most once a second, and
counts its own failures at once: the hit path skips a round trip, guessing gets no more tries.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from service.api.auth_failures import FailedAttempts
from service.api.ratelimit import FixedWindowLimiter
from service.constants import Keys

pytestmark = pytest.mark.redis

SUBJECT = "auth-failures:ip:203.0.113.9"


class Clock:
    """A clock the test moves by hand (the limiter's minute stays the same)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def two_processes(redis: Redis, prefix: str) -> tuple[FailedAttempts, FailedAttempts, Clock]:
    """Two processes' views of the same Redis counters, on one hand-moved clock."""
    clock = Clock(600.0)  # a minute starts here; the second or two below stay inside it
    limiter = FixedWindowLimiter(redis, Keys(prefix), 0, clock=clock)
    return (
        FailedAttempts(limiter, refresh_s=1.0, clock=clock),
        FailedAttempts(limiter, refresh_s=1.0, clock=clock),
        clock,
    )


async def test_own_failures_count_at_once(redis: Redis, prefix: str) -> None:
    """A process's own failures raise its count without waiting for a refresh."""
    here, _, _ = two_processes(redis, prefix)
    assert await here.count(SUBJECT) == 0
    assert await here.fail(SUBJECT, 2)
    assert await here.count(SUBJECT) == 1
    assert await here.fail(SUBJECT, 2)
    assert not await here.fail(SUBJECT, 2)  # the third is over the limit, on INCR's answer
    assert await here.count(SUBJECT) >= 2


async def test_another_process_failures_are_seen_within_the_bound(
    redis: Redis, prefix: str
) -> None:
    """Failures through another process reach this one's count within refresh_s."""
    here, there, clock = two_processes(redis, prefix)
    assert await here.count(SUBJECT) == 0
    for _ in range(3):
        await there.fail(SUBJECT, 3)
    clock.now += 0.5
    assert await here.count(SUBJECT) == 0  # still the count read half a second ago
    clock.now += 0.6
    assert await here.count(SUBJECT) == 3
