"""Who is calling (optional API keys) and how often they may (a per-client limit in Redis).

The limit is a fixed one-minute window counted with INCR in Redis, so it holds across every API
replica behind a load balancer: a client cannot multiply its allowance by spreading requests.
A fixed window lets a client send up to twice the limit across a window boundary; that is the
price of one round trip per request, and fine for keeping a newsroom script from flooding the
queue.

API keys are compared in constant time, and only a short digest of a key ever reaches Redis or
the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from service.constants import Keys
from service.problems import ApiProblem

__all__ = ["ApiKeys", "Caller", "FixedWindowLimiter", "RateDecision", "key_digest"]

WINDOW_S = 60
#: Clients of an open API (no keys configured) share this identity for idempotency keys.
PUBLIC_CLIENT = "public"


def key_digest(api_key: str) -> str:
    """A short, stable, non-reversible name for an API key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or anonymous) caller.

    ``client`` namespaces idempotency keys; ``rate_subject`` is what the rate limit counts: the
    key when there is one, else the peer address.
    """

    client: str
    rate_subject: str


class ApiKeys:
    """The configured API keys; none means the API is open."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [key.encode() for key in keys if key]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, headers: Mapping[str, str], peer: str | None) -> Caller:
        """The caller behind a request, or a 401 problem when a key is required but wrong."""
        if not self.enabled:
            return Caller(client=PUBLIC_CLIENT, rate_subject=f"ip:{peer or 'unknown'}")
        presented = presented_key(headers)
        if presented is None:
            raise _unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
        if not self._matches(presented):
            raise _unauthorized("the API key is not valid")
        digest = key_digest(presented)
        return Caller(client=f"key:{digest}", rate_subject=f"key:{digest}")

    def _matches(self, presented: str) -> bool:
        candidate = presented.encode()
        # Compare against every key, without stopping at a match, so timing says nothing.
        matches = [hmac.compare_digest(candidate, key) for key in self._keys]
        return any(matches)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>``, else ``X-API-Key``."""
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kurzgefasst"'}
    )


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

    async def hit(self, subject: str) -> RateDecision:
        """Count one request of ``subject`` in the current window (INCR and EXPIRE together)."""
        now = self.clock()
        window = int(now // WINDOW_S)
        key = self.keys.rate(subject, window)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + 5)
            count, _ = await pipe.execute()
        reset_after = max(1, math.ceil((window + 1) * WINDOW_S - now))
        return RateDecision(
            allowed=int(count) <= self.per_minute,
            limit=self.per_minute,
            remaining=max(0, self.per_minute - int(count)),
            reset_after_s=reset_after,
        )

    async def check(self, subject: str) -> None:
        """Count the request; over the limit, raise a 429 problem saying when to come back."""
        if not self.enabled:
            return
        decision = await self.hit(subject)
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
