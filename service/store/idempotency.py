"""Idempotency-Key records: a retried request gets the job its key already stands for."""

from __future__ import annotations

import hashlib

import msgspec
import structlog
from redis.asyncio import Redis

from service.constants import IDEMPOTENCY_TTL_S, Keys
from service.errors import ApiProblem

__all__ = ["IdempotencyStore", "fingerprint"]

log = structlog.get_logger(__name__)


class IdempotencyRecord(msgspec.Struct):
    body: str
    job: str


def fingerprint(request: msgspec.Struct) -> str:
    """sha256 of the request as decoded, so key order and whitespace do not make it "other"."""
    return hashlib.sha256(msgspec.json.encode(request, order="deterministic")).hexdigest()


class IdempotencyStore:
    """Per client and key, the request body's fingerprint and the job it made, for 24 h."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int = IDEMPOTENCY_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def claim(self, client: str, idem_key: str, body: str, job_id: str) -> str | None:
        """Remember this key; None if it is new, else the job it already stands for.

        The same key with another body is a client bug: 409, never a silent second job.
        """
        redis_key = self.keys.idempotency(client, idem_key)
        record = msgspec.json.encode(IdempotencyRecord(body=body, job=job_id))
        if await self.redis.set(redis_key, record, nx=True, ex=self.ttl_s):
            return None
        raw = await self.redis.get(redis_key)
        if raw is None:  # expired between the two commands: claim it again
            await self.redis.set(redis_key, record, ex=self.ttl_s)
            return None
        stored = msgspec.json.decode(raw, type=IdempotencyRecord)
        if stored.body != body:
            raise ApiProblem(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different request body",
                job_id=stored.job,
            )
        return stored.job

    async def release(self, client: str, idem_key: str) -> None:
        """Forget a claim whose request was refused, so a retry with the key can try again."""
        try:
            await self.redis.delete(self.keys.idempotency(client, idem_key))
        except Exception as error:  # noqa: BLE001 - Redis down: the key expires on its own
            log.warning("could not release idempotency key", error=repr(error))
