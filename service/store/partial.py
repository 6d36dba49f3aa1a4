"""A running job's translation so far: the paragraphs the worker has finished, for the API.

Why a hash of its own rather than the job record's ``meta``: SAQ rewrites the whole job record
on every progress touch (up to twice a second), so a translation kept there would be re-sent
to Redis, growing, hundreds of times per article.  Here each finished paragraph is written
once, under its paragraph index, and the API reads the hash when it shows a running job.

Retries cannot show stale or doubled paragraphs: each attempt clears the hash when it starts,
every entry carries the attempt that wrote it, and a reader keeps only the entries of the
attempt the job record says is running (a swept worker that still writes after its job was
taken back writes under an older attempt).  Fields are paragraph indices, so a paragraph
written twice is one entry.  The worker deletes the hash when the job ends; ``PARTIAL_TTL_S``
bounds what a crashed worker leaves behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import cast

import msgspec
from redis.asyncio import Redis

from service.constants import PARTIAL_TTL_S, Keys
from service.schemas import TranslatedParagraph

__all__ = ["PartialTranslations"]


class _Entry(msgspec.Struct, frozen=True):
    """One stored paragraph and the attempt of the job that translated it."""

    attempt: int
    paragraph: TranslatedParagraph


_decoder = msgspec.json.Decoder(_Entry)


class PartialTranslations:
    """The paragraphs of running jobs, one Redis hash per job (``Keys.partial``)."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int = PARTIAL_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def start(self, job_key: str) -> None:
        """Forget an earlier attempt's paragraphs (called as an attempt begins)."""
        await self.redis.delete(self.keys.partial(job_key))

    async def add(
        self, job_key: str, attempt: int, paragraphs: Sequence[TranslatedParagraph]
    ) -> None:
        """Record finished paragraphs in one round trip, renewing the hash's TTL."""
        if not paragraphs:
            return
        key = self.keys.partial(job_key)
        mapping = {str(p.paragraph): msgspec.json.encode(_Entry(attempt, p)) for p in paragraphs}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def read(self, job_key: str, attempt: int) -> list[TranslatedParagraph]:
        """The paragraphs ``attempt`` has finished, in paragraph order."""
        raw = await cast(
            "Awaitable[dict[bytes, bytes]]", self.redis.hgetall(self.keys.partial(job_key))
        )
        kept: list[TranslatedParagraph] = []
        for value in raw.values():
            try:
                entry = _decoder.decode(value)
            except msgspec.DecodeError:  # written by another version mid-deploy: not shown
                continue
            if entry.attempt == attempt:
                kept.append(entry.paragraph)
        return sorted(kept, key=lambda paragraph: paragraph.paragraph)

    async def discard(self, job_key: str) -> int:
        """Delete the job's paragraphs (it ended: its result, if any, holds them all); returns
        the bytes they held in Redis, which the storage guard learns to reserve."""
        key = self.keys.partial(job_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.memory_usage(key)
            pipe.delete(key)
            held, _ = await pipe.execute()
        return int(held or 0)
