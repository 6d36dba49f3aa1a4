"""The worker process's shared state: what its tasks need, built whole at start-up.

The article worker builds it once (models, caches, stores, the webhook client and notifier),
keeps its heartbeat going and closes it at shutdown; the translate lane and the delivery worker
run in the same process and share it.  It lives apart from the tasks (``service.worker``) so
that building and tearing down the state reads in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.constants import WORKER_HEARTBEAT_INTERVAL_S, Keys
from service.intake import ArticleIntake
from service.pipeline import Pipeline, build_pipeline
from service.queue import JobQueue, TaskContext
from service.settings import Settings
from service.store.cache import RedisSentenceCache, ResultCache
from service.store.connection import make_redis
from service.store.glossaries import GlossaryStore
from service.store.partial import PartialTranslations
from service.store.stats import Stats
from service.store.workers import WorkerRegistry
from service.text.glossary import Glossary
from service.text.glossary_files import load_default_glossary
from service.webhooks import make_client
from service.webhooks.notifier import Notifier
from service.webhooks.ssrf import AllowList

__all__ = ["REDIS_DOWN", "WorkerContext", "WorkerState"]

log = structlog.get_logger(__name__)

#: What a Redis outage raises: socket errors, and redis-py's own (not OSError subclasses).
REDIS_DOWN = (OSError, RedisConnectionError, RedisTimeoutError)


class WorkerContext(TaskContext, total=False):
    """SAQ's task context plus the worker state its start-up put there."""

    state: WorkerState


@dataclass(slots=True)
class WorkerState:
    """What the tasks need, built whole at start-up by :meth:`start` (no half-built state)."""

    settings: Settings
    redis: Redis
    cache_redis: Redis
    """The caches' Redis: ``redis`` itself, or ``KURZ_CACHE_REDIS_URL``'s (closed by us)."""
    worker_id: str
    keys: Keys
    results: ResultCache
    notifier: Notifier
    http: Any
    pipeline: Pipeline
    sentence_cache: RedisSentenceCache
    registry: WorkerRegistry
    stats: Stats
    intake: ArticleIntake
    glossaries: GlossaryStore
    default_glossary: Glossary | None
    partials: PartialTranslations
    heartbeat_task: asyncio.Task[None] | None = field(default=None)

    @classmethod
    async def start(cls, settings: Settings, redis: Redis, worker_id: str) -> WorkerState:
        """Load the models (in a thread: seconds to minutes), announce them, start beating."""
        keys = Keys(settings.key_prefix)
        notifier = Notifier.from_settings(
            settings, redis, JobQueue(redis, keys, retries=settings.job_retries), signing=True
        )
        default_glossary = load_default_glossary(settings.glossaries_dir)  # before the models
        pipeline = await asyncio.to_thread(build_pipeline, settings)
        cache_redis = (
            make_redis(settings.cache_redis_url, "worker") if settings.cache_redis_url else redis
        )
        results = ResultCache(cache_redis, keys, settings.result_ttl_s)
        state = cls(
            settings=settings,
            redis=redis,
            cache_redis=cache_redis,
            worker_id=worker_id,
            keys=keys,
            results=results,
            notifier=notifier,
            http=make_client(
                AllowList.from_settings(settings.webhook_allow_hosts, callbacks=True),
                settings.webhook_timeout_s,
            ),
            pipeline=pipeline,
            sentence_cache=RedisSentenceCache(
                cache_redis, keys, pipeline.models["translation"], settings.sentence_cache_ttl_s
            ),
            registry=WorkerRegistry(redis, keys),
            stats=Stats(redis, keys),
            intake=await ArticleIntake.start(settings, results),
            glossaries=GlossaryStore(redis, keys),
            default_glossary=default_glossary,
            partials=PartialTranslations(redis, keys),
        )
        await state.registry.announce_models(
            pipeline.models, follows_instructions=pipeline.summarizer.follows_instructions
        )
        await state.registry.beat(worker_id, pipeline.models)
        state.heartbeat_task = asyncio.create_task(state._heartbeat_loop(), name="heartbeat")
        return state

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(WORKER_HEARTBEAT_INTERVAL_S)
            try:
                await self.registry.beat(self.worker_id, self.pipeline.models)
            except REDIS_DOWN as error:  # Redis briefly away: readiness lapses, work goes on
                log.warning("worker heartbeat failed", error=repr(error))

    async def close(self) -> None:
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat_task
        with contextlib.suppress(*REDIS_DOWN):
            await self.registry.remove(self.worker_id)
        await self.http.aclose()
        await self.intake.close()
        await asyncio.to_thread(self.pipeline.close)
        if self.cache_redis is not self.redis:
            await self.cache_redis.aclose()
