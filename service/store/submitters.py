"""Who submitted each job, and what each of them attached to it.

A job's id is a digest of public inputs (the article and its options), so anyone who knows an
article could otherwise read another desk's job, its ``external_id`` and metadata, and cancel it.
Each submission records its caller here (one hash per job: caller -> that caller's own
``external_id`` and ``metadata``); with API keys on, the job endpoints answer 404 to callers who
never submitted the job, and every caller sees its own copy of what it attached, never another's.

Records live as long as the result they lead to (``result_ttl_s``), since a job's view falls
back to the cached result once its queue record is gone.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from service.constants import Keys
from service.schemas import JobView

__all__ = ["SubmitterCopy", "Submitters", "personal", "submitter_name"]


class SubmitterCopy(msgspec.Struct, frozen=True):
    """What one caller attached to its submission of a job."""

    external_id: str | None = None
    metadata: dict[str, Any] | None = None


def personal(view: JobView, copy: SubmitterCopy | None) -> JobView:
    """``view`` with one submitter's ``external_id`` and metadata (None: as stored)."""
    if copy is None:
        return view
    return msgspec.structs.replace(view, external_id=copy.external_id, metadata=copy.metadata)


def submitter_name(owner: str) -> str:
    """How events name a submitter (``submitted_by``): a keys-file desk by its tenant name, a
    key of ``KURZ_API_KEYS`` by its short digest (``key:...``), which is all the server knows."""
    return owner.removeprefix("tenant:")


class Submitters:
    """The per-job submitter records, in Redis."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def record(self, job_id: str, caller: str, copy: SubmitterCopy) -> None:
        """Note that ``caller`` submitted ``job_id`` with ``copy`` (its latest submission's
        ``external_id`` and metadata win)."""
        key = self.keys.submitters(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, caller, msgspec.json.encode(copy).decode())
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def copy_of(self, job_id: str, caller: str) -> SubmitterCopy | None:
        """What ``caller`` attached to ``job_id``; None if it never submitted that job."""
        raw = await self.redis.hget(self.keys.submitters(job_id), caller)  # type: ignore[misc]
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=SubmitterCopy)
        except msgspec.DecodeError:
            return SubmitterCopy()
