"""Content-addressed caches: whole results, and single translated sentences.

The result key is a sha256 over everything that changes the output: the NFC-normalized,
whitespace-folded text and title, the style and its preset's digest, the model ids and
revisions, and the pipeline version.  It is also the job key, so identical requests arriving
while a job runs share that job.

The sentence cache keys each translation by the translation model (id, revision, backend,
compute type) and the sentence, so an edited article re-translates only its changed sentences.
A sentence translated under a glossary's forbidden spellings is kept under that set's digest as
well (``variant``): the same sentence without them (or with others) may translate differently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import msgspec
from redis.asyncio import Redis

from service import PIPELINE_VERSION
from service.constants import Keys
from service.schemas import ModelInfo, Result
from service.text.normalize import nfc, normalize_text


def result_key(
    *,
    text: str,
    title: str | None,
    style: str,
    style_digest: str,
    models: Mapping[str, ModelInfo],
    glossary: tuple[str, str] | None = None,
    scope: str | None = None,
) -> str:
    """The cache key (and job id) of one request; ``glossary`` is its (id, content digest),
    ``scope`` the desk whose results are its own (None: the shared cache)."""
    article = {"text": normalize_text(text)}
    return _digest(article, title, style, style_digest, models, glossary, scope)


def page_key(
    *,
    kind: str,
    value: str,
    title: str | None,
    style: str,
    style_digest: str,
    models: Mapping[str, ModelInfo],
    glossary: tuple[str, str] | None = None,
    scope: str | None = None,
) -> str:
    """The job key of an ``html`` or ``url`` request: a hash of the raw input, not of its text.

    The API cannot know the article's text before the worker has extracted it, so identical
    pages (or URLs) share a job by this key; the worker then also files the result under
    :func:`result_key` of the extracted text, where text and other pages of the same article
    find it.  ``kind`` puts these keys in a namespace of their own: no text hashes to one.
    """
    article = {"input": kind, "value": value}
    return _digest(article, title, style, style_digest, models, glossary, scope)


def _digest(
    article: Mapping[str, str],
    title: str | None,
    style: str,
    style_digest: str,
    models: Mapping[str, ModelInfo],
    glossary: tuple[str, str] | None,
    scope: str | None = None,
) -> str:
    """sha256 over the article's identity and everything else that changes its output (and,
    for a desk that keeps its results to itself, that desk: its own namespace of keys)."""
    payload = msgspec.json.encode(
        {
            **({"scope": scope} if scope is not None else {}),
            **({"glossary": list(glossary)} if glossary is not None else {}),
            **article,
            "title": normalize_text(title or ""),
            "style": style,
            "style_digest": style_digest,
            "models": {name: msgspec.to_builtins(info) for name, info in sorted(models.items())},
            "pipeline": PIPELINE_VERSION,
        }
    )
    return hashlib.sha256(payload).hexdigest()


class ResultCache:
    """Finished results by cache key, with a TTL."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def get(self, key: str) -> Result | None:
        raw = await self.redis.get(self.keys.result(key))
        return None if raw is None else msgspec.json.decode(raw, type=Result)

    async def put(self, key: str, result: Result) -> None:
        await self.redis.set(self.keys.result(key), msgspec.json.encode(result), ex=self.ttl_s)


def model_digest(model: ModelInfo) -> str:
    """Short digest of everything about a translation model that changes its output."""
    raw = f"{model.id}\0{model.revision}\0{model.backend}\0{model.compute_type}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class RedisSentenceCache:
    """Translated sentences of one translation model, in Redis, shared by every worker."""

    def __init__(
        self, redis: Redis, keys: Keys, model: ModelInfo, ttl_s: int, scope: str | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.model = model
        self.ttl_s = ttl_s
        #: The desk whose sentences these are (None: the cache every sharing desk reads).
        self.scope = scope
        self._model_digest = model_digest(model)

    def for_scope(self, scope: str | None) -> RedisSentenceCache:
        """The same cache seen by one desk: its own entries when it does not share (``scope``),
        the shared ones otherwise."""
        if scope == self.scope:
            return self
        return RedisSentenceCache(self.redis, self.keys, self.model, self.ttl_s, scope)

    def _key(self, sentence: str, variant: str | None) -> str:
        normalized = nfc(sentence).strip()
        keyed = normalized if variant is None else f"{variant}\x00{normalized}"
        if self.scope is not None:
            keyed = f"scope\x00{self.scope}\x00{keyed}"
        digest = hashlib.sha256(keyed.encode()).hexdigest()
        return self.keys.sentence(self._model_digest, digest)

    async def get_many(
        self, sentences: Sequence[str], *, variant: str | None = None
    ) -> list[str | None]:
        """The cached translations (None where there is none); ``variant``: the digest of what
        else they were translated under (forbidden spellings), None for a plain translation."""
        if not sentences:
            return []
        values = await self.redis.mget([self._key(s, variant) for s in sentences])
        return [None if v is None else bytes(v).decode() for v in values]

    async def set_many(
        self, pairs: Sequence[tuple[str, str]], *, variant: str | None = None
    ) -> None:
        """Keep (sentence, translation) pairs made under ``variant`` (see ``get_many``)."""
        if not pairs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for sentence, english in pairs:
                pipe.set(self._key(sentence, variant), english.encode(), ex=self.ttl_s)
            await pipe.execute()
