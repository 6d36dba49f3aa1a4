"""Failed API-key attempts per client address, as an API process sees them: the count in Redis
read at most once a second per address, and this process's own failures counted at once.

Why: with keys on, every request asked Redis how often its address had failed this minute, one
round trip per cache hit just to learn "never".  The failures themselves are still counted in
Redis with INCR as they happen, across every process, and a failing request is refused on that
INCR's answer, so guessing keys gets no more tries than before.  What may lag is only this:
after an address went over its limit through *another* process, a request with a valid key
from that address may be served here for up to :data:`REFRESH_S` more.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.api.ratelimit import WINDOW_S, FixedWindowLimiter

__all__ = ["REFRESH_S", "FailedAttempts"]

#: How long a count read from Redis is reused (see the module docstring for what may lag).
REFRESH_S = 1.0
#: Addresses remembered at most; past it the memory starts afresh (each address is then read
#: once more), so a scan from many addresses cannot grow a process without bound.
MAX_ADDRESSES = 10_000


class FailedAttempts:
    """This minute's failed attempts of each subject, through ``limiter``'s Redis counters."""

    def __init__(
        self,
        limiter: FixedWindowLimiter,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limiter = limiter
        self.refresh_s = refresh_s
        self.clock = clock
        #: subject -> (limiter window, count, when read)
        self._seen: dict[str, tuple[int, int, float]] = {}

    def _window(self) -> int:
        return int(self.limiter.clock() // WINDOW_S)

    async def count(self, subject: str) -> int:
        """Failures of ``subject`` this minute, at most ``refresh_s`` old."""
        window, now = self._window(), self.clock()
        seen = self._seen.get(subject)
        if seen is not None and seen[0] == window and now - seen[2] < self.refresh_s:
            return seen[1]
        count = await self.limiter.used(subject)
        self._remember(subject, window, count, now)
        return count

    async def fail(self, subject: str, limit: int) -> bool:
        """Count one failure of ``subject`` in Redis; whether it is still within ``limit``."""
        decision = await self.limiter.hit(subject, limit)
        count = limit + 1 if not decision.allowed else limit - decision.remaining
        self._remember(subject, self._window(), count, self.clock())
        return decision.allowed

    def _remember(self, subject: str, window: int, count: int, now: float) -> None:
        if len(self._seen) >= MAX_ADDRESSES and subject not in self._seen:
            self._seen.clear()
        self._seen[subject] = (window, count, now)
