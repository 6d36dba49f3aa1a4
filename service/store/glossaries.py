"""User glossaries in Redis: immutable, without expiry, visible only to the owner who made them.

Two keys per owner and glossary, built by ``service.constants.Keys``:

- ``<prefix>:glossary:<id>``: a hash with ``owner``, ``meta`` (JSON: name, languages, creation
  time, entry count, digest) and ``entries`` (the TSV), so a listing reads no entries;
- ``<prefix>:glossaries:<owner>``: a sorted set of the owner's ids, scored by creation time.

Creating and deleting each run as one Lua script, so the two keys never disagree and the
per-owner limit cannot be raced past.  There is no update: as in DeepL v2 a glossary never
changes once made (a cached result keyed by its id and digest stays right).  Another owner's
glossary answers exactly as a missing one does, so ids cannot be probed.

``owner`` is whatever identifies the caller and is safe to appear in a key name (a tenant name
or a hash of the API key; never the key itself).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import cast

import msgspec
from redis.asyncio import Redis

from service.constants import Keys
from service.text.glossary import (
    Glossary,
    GlossaryInfo,
    GlossaryLimitError,
    GlossaryNotFoundError,
    parse_entries,
)

__all__ = ["MAX_GLOSSARIES_PER_OWNER", "GlossaryStore"]

#: DeepL: "A total of 1000 glossaries are allowed per account."
MAX_GLOSSARIES_PER_OWNER = 1000
#: Ids are UUIDs (36 characters); a longer one in a request cannot exist.
MAX_ID_CHARS = 128

# KEYS: glossary key, owner's set.  ARGV: owner, meta, entries, score, id, limit.
# Returns 1 when stored, 0 when the id exists, -1 when the owner is at the limit.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[6]) then return -1 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'meta', ARGV[2], 'entries', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
return 1
"""

# KEYS: glossary key, owner's set.  ARGV: owner, id.  Returns 1 when deleted, 0 when not found.
_DELETE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
"""


class _Meta(msgspec.Struct, frozen=True):
    name: str
    source_lang: str
    target_lang: str
    creation_time: datetime
    entry_count: int
    digest: str


class GlossaryStore:
    """Create, list, read and delete one owner's glossaries."""

    def __init__(
        self, redis: Redis, keys: Keys, *, max_per_owner: int = MAX_GLOSSARIES_PER_OWNER
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.max_per_owner = max_per_owner
        self._create = redis.register_script(_CREATE)
        self._delete = redis.register_script(_DELETE)

    async def create(self, owner: str, glossary: Glossary) -> GlossaryInfo:
        """Store a new glossary for ``owner``; an id that exists is never overwritten."""
        _check_owner(owner)
        meta = _Meta(
            name=glossary.name,
            source_lang=glossary.source_lang,
            target_lang=glossary.target_lang,
            creation_time=glossary.creation_time,
            entry_count=len(glossary.entries),
            digest=glossary.digest,
        )
        stored = await self._create(
            keys=[self.keys.glossary(glossary.glossary_id), self.keys.glossaries(owner)],
            args=[
                owner,
                msgspec.json.encode(meta),
                glossary.to_tsv(),
                glossary.creation_time.timestamp(),
                glossary.glossary_id,
                self.max_per_owner,
            ],
        )
        if stored == -1:
            raise GlossaryLimitError(self.max_per_owner)
        if stored == 0:
            message = f"glossary {glossary.glossary_id!r} exists; glossaries are immutable"
            raise ValueError(message)
        return glossary.info()

    async def list_by_owner(self, owner: str) -> list[GlossaryInfo]:
        """The owner's glossaries, oldest first, without their entries."""
        _check_owner(owner)
        members = await self.redis.zrange(self.keys.glossaries(owner), 0, -1)
        ids = [bytes(i).decode() for i in members]
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for glossary_id in ids:
                pipe.hmget(self.keys.glossary(glossary_id), ["owner", "meta"])
            rows = await pipe.execute()
        infos = []
        for glossary_id, (stored_owner, meta) in zip(ids, rows, strict=True):
            if meta is not None and _owned(stored_owner, owner):
                infos.append(_info(glossary_id, msgspec.json.decode(meta, type=_Meta)))
        return infos

    async def info(self, owner: str, glossary_id: str) -> GlossaryInfo:
        """One glossary's metadata, or ``GlossaryNotFoundError`` (also for another's)."""
        stored_owner, meta = await self._fields(glossary_id, "owner", "meta")
        if meta is None or not _owned(stored_owner, owner):
            raise GlossaryNotFoundError(glossary_id)
        return _info(glossary_id, msgspec.json.decode(meta, type=_Meta))

    async def digest(self, owner: str, glossary_id: str) -> str:
        """The glossary's content digest, for cache keys, without reading its entries."""
        stored_owner, meta = await self._fields(glossary_id, "owner", "meta")
        if meta is None or not _owned(stored_owner, owner):
            raise GlossaryNotFoundError(glossary_id)
        return msgspec.json.decode(meta, type=_Meta).digest

    async def entries(self, owner: str, glossary_id: str) -> str:
        """The entries as TSV, as DeepL's ``GET /v2/glossaries/{id}/entries`` returns them."""
        stored_owner, entries = await self._fields(glossary_id, "owner", "entries")
        if entries is None or not _owned(stored_owner, owner):
            raise GlossaryNotFoundError(glossary_id)
        return bytes(entries).decode()

    async def get(self, owner: str, glossary_id: str) -> Glossary:
        """The whole glossary, ready to apply, or ``GlossaryNotFoundError``."""
        stored_owner, meta_raw, entries = await self._fields(
            glossary_id, "owner", "meta", "entries"
        )
        if meta_raw is None or entries is None or not _owned(stored_owner, owner):
            raise GlossaryNotFoundError(glossary_id)
        meta = msgspec.json.decode(meta_raw, type=_Meta)
        glossary = Glossary(
            glossary_id=glossary_id,
            name=meta.name,
            source_lang=meta.source_lang,
            target_lang=meta.target_lang,
            entries=parse_entries(bytes(entries).decode(), "tsv"),
            creation_time=meta.creation_time,
        )
        if glossary.digest != meta.digest:
            message = f"glossary {glossary_id!r} in Redis does not match its stored digest"
            raise RuntimeError(message)
        return glossary

    async def _fields(self, glossary_id: str, *names: str) -> list[bytes | None]:
        """Fields of a glossary's hash (None each when it does not exist)."""
        if len(glossary_id) > MAX_ID_CHARS:  # no such id is ever made; skip the round trip
            return [None] * len(names)
        pending = self.redis.hmget(self.keys.glossary(glossary_id), list(names))
        return await cast("Awaitable[list[bytes | None]]", pending)

    async def delete(self, owner: str, glossary_id: str) -> None:
        """Delete the owner's glossary, or ``GlossaryNotFoundError``."""
        deleted = await self._delete(
            keys=[self.keys.glossary(glossary_id), self.keys.glossaries(owner)],
            args=[owner, glossary_id],
        )
        if deleted != 1:
            raise GlossaryNotFoundError(glossary_id)


def _info(glossary_id: str, meta: _Meta) -> GlossaryInfo:
    return GlossaryInfo(
        glossary_id=glossary_id,
        name=meta.name,
        source_lang=meta.source_lang.lower(),
        target_lang=meta.target_lang.lower(),
        creation_time=meta.creation_time,
        entry_count=meta.entry_count,
    )


def _owned(stored_owner: bytes | None, owner: str) -> bool:
    return stored_owner is not None and bytes(stored_owner) == owner.encode()


def _check_owner(owner: str) -> None:
    if not owner or any(c.isspace() for c in owner):
        raise ValueError(f"owner must be a non-empty key-safe id, got {owner!r}")
