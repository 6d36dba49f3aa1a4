"""What the handlers share: the app's services, built once by its lifespan.

A plain dataclass with no web-framework import, so the submission core can take it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from service.api.announced import AnnouncedModels
from service.api.auth_failures import FailedAttempts
from service.api.keys import ApiKeys
from service.api.metrics import ApiMetrics
from service.api.ratelimit import FixedWindowLimiter
from service.constants import Keys
from service.presets import PresetRegistry
from service.queue import JobQueue
from service.settings import Settings
from service.store.cache import ResultCache
from service.store.glossaries import GlossaryStore
from service.store.idempotency import IdempotencyStore
from service.store.memory import StorageGuard
from service.store.partial import PartialTranslations
from service.store.stats import Stats
from service.store.submitters import Submitters
from service.store.workers import WorkerRegistry
from service.text.glossary import Glossary
from service.webhooks.notifier import Notifier
from service.webhooks.ssrf import AllowList

__all__ = ["Services"]


@dataclass(slots=True)
class Services:
    """Everything the handlers share, built once by the app's lifespan."""

    settings: Settings
    keys: Keys
    redis: Redis
    queue: JobQueue
    results: ResultCache
    presets: PresetRegistry
    metrics: ApiMetrics
    api_keys: ApiKeys
    limiter: FixedWindowLimiter
    auth_failures: FailedAttempts
    """Failed API-key attempts per address, counted through ``limiter`` (read at most 1 s old)."""
    callbacks: AllowList
    """Where callback URLs may point besides public addresses (``webhook_allow_hosts``)."""
    fetch_allow: AllowList
    """Where article URLs may point besides public addresses (``fetch_allow_hosts``)."""
    notifier: Notifier
    """Registers callback URLs and schedules webhook deliveries (the workers send them)."""
    workers: WorkerRegistry
    """Live workers and the models they announced."""
    announced: AnnouncedModels
    """The announced models, re-read from Redis at most once per ``KURZ_MODELS_REFRESH_S``."""
    storage: StorageGuard
    """Refuses new work while the queue's Redis is nearly full."""
    idempotency: IdempotencyStore
    """What each Idempotency-Key already stands for."""
    stats: Stats
    """The counters the workers add to, for ``/metrics``."""
    glossaries: GlossaryStore
    """The callers' own glossaries."""
    submitters: Submitters
    """Who submitted each job, with their own ``external_id`` and metadata."""
    partials: PartialTranslations
    """The paragraphs running jobs have translated so far."""
    default_glossary: Glossary | None
    """The server's glossary from ``KURZ_GLOSSARIES_DIR`` (None when it has no files)."""
