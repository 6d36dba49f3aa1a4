"""The delivery log: every attempt per job, and "endpoint gone" marks, in Redis.

Keys come from :class:`service.constants.Keys` like every other record's.
"""

from __future__ import annotations

import builtins
from typing import Final

import msgspec
from redis.asyncio import Redis

from service.constants import Keys
from service.webhooks.delivery import AttemptRecord
from service.webhooks.events import now_iso

__all__ = ["DELIVERY_LOG_MAX_RECORDS", "DELIVERY_LOG_TTL_S", "DeliveryLog"]

DELIVERY_LOG_TTL_S: Final = 30 * 24 * 3600
#: The newest records kept per job: enough for every attempt to several endpoints.
DELIVERY_LOG_MAX_RECORDS: Final = 500


class _GoneMark(msgspec.Struct, frozen=True):
    url: str
    at: str


class DeliveryLog:
    """Delivery attempts per job, and "endpoint gone" marks, in Redis.

    Attempts go to a list (``Keys.deliveries``: oldest first, the newest
    ``DELIVERY_LOG_MAX_RECORDS`` kept) that expires ``ttl_s`` after the last append.  A gone mark
    (``Keys.webhook_gone``, by the URL's sha256) has the same TTL, so an endpoint that answered
    410 is skipped for a month and then tried again.
    """

    def __init__(self, redis: Redis, keys: Keys, *, ttl_s: int = DELIVERY_LOG_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    def key(self, job_id: str) -> str:
        return self.keys.deliveries(job_id)

    def gone_key(self, url: str) -> str:
        return self.keys.webhook_gone(url)

    async def append(self, job_id: str, record: AttemptRecord) -> None:
        """Add one attempt and renew the list's TTL, atomically."""
        key = self.key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, msgspec.json.encode(record))
            pipe.ltrim(key, -DELIVERY_LOG_MAX_RECORDS, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def list(self, job_id: str) -> builtins.list[AttemptRecord]:
        """Every kept attempt for ``job_id``, oldest first; empty when none or expired."""
        raw: builtins.list[bytes] = await self.redis.lrange(self.key(job_id), 0, -1)  # type: ignore[misc]
        return [msgspec.json.decode(item, type=AttemptRecord) for item in raw]

    async def mark_gone(self, url: str) -> None:
        """Remember that ``url`` answered 410, so later events skip it."""
        mark = _GoneMark(url=url, at=now_iso())
        await self.redis.set(self.gone_key(url), msgspec.json.encode(mark), ex=self.ttl_s)

    async def is_gone(self, url: str) -> bool:
        return bool(await self.redis.exists(self.gone_key(url)))

    async def clear_gone(self, url: str) -> None:
        """Forget a gone mark (an operator fixed the endpoint)."""
        await self.redis.delete(self.gone_key(url))
