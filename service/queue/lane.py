"""The translate lane: translate-only jobs on their own SAQ queue, awaited by the API.

The LibreTranslate and DeepL endpoints are synchronous, as their clients expect, but the API
never loads a model: it enqueues a job on the lane's queue (``Keys.translate_queue_name``) and
waits for it.  Each worker runs the lane with its own slots beside its article slots, so a
one-sentence request is taken at once even while every article slot is busy.

A job's key is its content key: identical texts asked together share one job, and asked again
within ``TRANSLATE_RECORD_TTL_S`` they are answered from the finished job's record.

A request with a glossary names it by reference (:class:`LaneGlossary`: id, content digest,
owner), not by its entries: the worker loads it from the glossary store (or its default), as the
article worker does.  A glossary may hold 10,000 entries (up to 10 MiB); carried in the payload
it would be written into every lane job record and kept for an hour, and re-encoded for every
one-sentence request.  Glossaries are immutable, so an id and digest name one content exactly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from saq import Job, Status
from saq.queue.redis import RedisQueue

from service.constants import (
    JOB_HEARTBEAT_S,
    TRANSLATE_RECORD_TTL_S,
    TRANSLATE_TASK,
    Keys,
)
from service.errors import GlossaryNotFoundError, LaneFailedError, LaneTimeoutError

__all__ = ["LaneGlossary", "LaneOutcome", "TranslatePayload", "TranslateQueue"]

#: Seconds between looks at a job the API waits for: first quickly (most lane jobs take tens
#: of milliseconds), then backing off to this ceiling.
_POLL_FIRST_S = 0.01
_POLL_MAX_S = 0.1


class LaneGlossary(msgspec.Struct, frozen=True, kw_only=True):
    """The glossary a lane job applies, by reference: its id, the content digest the API saw
    (part of the job key, so the same texts with another glossary, or none, are another job),
    and its owner (None: the server's default glossary)."""

    glossary_id: str
    digest: str
    owner: str | None = None


class TranslatePayload(msgspec.Struct, kw_only=True):
    """What the worker needs to translate a request's texts (the SAQ job's kwargs)."""

    texts: list[str]
    html: bool = False
    alternatives: int = 0
    #: DeepL's ``split_sentences``: "1" (sentences and newlines), "nonewlines" (sentences
    #: only: a line break is a space) or "0" (each text is one unit).
    split: str = "1"
    #: Applied to the sentences before translation and checked after (``GlossaryRun``).
    glossary: LaneGlossary | None = None
    #: The desk whose sentence cache entries are its own (None: the shared cache).
    cache_scope: str | None = None


class LaneOutcome(msgspec.Struct, kw_only=True):
    """A finished lane job: each text's translation and, when asked, its alternatives."""

    translations: list[str]
    alternatives: list[list[str]] = []
    sentences_from_cache: int = 0


class TranslateQueue:
    """Enqueue translate-lane jobs and wait for them."""

    def __init__(self, redis: Redis, keys: Keys, *, retries: int = 2) -> None:
        self.saq: RedisQueue = RedisQueue(redis, name=keys.translate_queue_name)
        self.retries = retries

    async def translate(self, key: str, payload: TranslatePayload, wait_s: float) -> LaneOutcome:
        """The texts' translations, from a finished job under ``key`` or a new (or shared)
        one; ``LaneTimeoutError`` after ``wait_s``, ``LaneFailedError`` if the job failed."""
        job = await self.saq.job(key)
        if job is None or job.status in (Status.FAILED, Status.ABORTED):
            job = await self._submit(key, payload)
        deadline = time.monotonic() + wait_s
        delay = _POLL_FIRST_S
        while job.status not in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
            if time.monotonic() >= deadline:
                raise LaneTimeoutError(wait_s)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)
            job = await self.saq.job(key) or await self._submit(key, payload)
        if job.status != Status.COMPLETE:
            if payload.glossary is not None and _failed_for_glossary(job):
                # Deleted between the API's check and the worker's load: the client's 404.
                raise GlossaryNotFoundError(payload.glossary.glossary_id)
            raise LaneFailedError(job.error or "the translation job failed")
        return msgspec.convert(job.result, LaneOutcome)

    async def _submit(self, key: str, payload: TranslatePayload) -> Job:
        """Enqueue (SAQ makes it a no-op while a job under ``key`` is unfinished)."""
        options: dict[str, Any] = {
            "key": key,
            "timeout": 120 + sum(len(text) for text in payload.texts) // 100,
            "heartbeat": JOB_HEARTBEAT_S,
            "retries": self.retries,
            "ttl": TRANSLATE_RECORD_TTL_S,
        }
        job = Job(function=TRANSLATE_TASK, kwargs=msgspec.to_builtins(payload), **options)
        created = await self.saq.enqueue(job)
        if created is not None:
            return created
        return await self.saq.job(key) or job


def _failed_for_glossary(job: Job) -> bool:
    """Whether the worker recorded that the job's glossary was not found."""
    error = job.meta.get("error")
    return isinstance(error, dict) and error.get("code") == GlossaryNotFoundError.code
