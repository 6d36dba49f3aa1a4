"""The API process: a Litestar app over Redis, and ``serve`` to run it under uvicorn.

The app never loads a model (nor imports torch): it validates requests, enqueues jobs and reads
results, so it starts in a second and any number of replicas can run beside the workers.

Redis is not contacted at start-up.  The client connects per command, with short timeouts, so
the app starts while Redis is still down, answers 503 ``redis_unavailable`` while it is, and
recovers by itself when it is back.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
import uvicorn
from litestar import Litestar, Router
from redis.asyncio import Redis

from service.api import articles, deepl, glossaries, health, jobs, libretranslate
from service.api.announced import AnnouncedModels
from service.api.auth import authenticate
from service.api.auth_failures import FailedAttempts
from service.api.deps import SERVICES_DEPENDENCY
from service.api.keys import ApiKeys
from service.api.metrics import ApiMetrics, MetricsMiddleware
from service.api.openapi import SECURITY, document, openapi_config, seed_example
from service.api.pages import (
    EDITOR_CSP,
    PageHeadersMiddleware,
    home,
    static_files,
    template_config,
)
from service.api.problems import handle_exception
from service.api.ratelimit import FixedWindowLimiter
from service.api.request import KurzRequest
from service.api.services import Services
from service.constants import JOB_RECORD_TTL_S, Keys
from service.errors import ConfigError
from service.logs import configure_logging, redacted_url
from service.presets import PresetRegistry
from service.queue import JobQueue
from service.settings import Settings
from service.store.cache import ResultCache
from service.store.connection import make_redis
from service.store.glossaries import GlossaryStore
from service.store.idempotency import IdempotencyStore
from service.store.memory import StorageGuard
from service.store.partial import PartialTranslations
from service.store.stats import Stats
from service.store.submitters import Submitters
from service.store.workers import WorkerRegistry
from service.tenants import load_keys_file
from service.text.glossary import Glossary
from service.text.glossary_files import load_default_glossary
from service.webhooks.notifier import Notifier
from service.webhooks.ssrf import AllowList

__all__ = ["app_from_environment", "create_app", "serve"]

log = structlog.get_logger(__name__)

#: How long a shutting-down server lets open event streams and long polls finish.
GRACEFUL_SHUTDOWN_S = 10


def create_app(settings: Settings, *, redis: Redis | None = None) -> Litestar:
    """Build the API.  ``redis`` injects a client (tests); otherwise one comes from settings.

    Presets, the default glossary and the callback and fetch allow-lists are read here, so a bad
    preset or glossary file or setting stops the process before it serves anything.
    """
    presets = PresetRegistry.from_directory(settings.prompts_dir)
    default_glossary = load_default_glossary(settings.glossaries_dir)
    callbacks = AllowList.from_settings(settings.webhook_allow_hosts, callbacks=True)
    AllowList.from_settings(settings.fetch_allow_hosts)  # a bad entry stops start-up here
    metrics = ApiMetrics()
    keys_file = load_keys_file(settings.api_keys_file) if settings.api_keys_file else None
    api_keys = ApiKeys(
        settings.api_keys,
        keys_file.keys if keys_file is not None else (),
        signing_desks=frozenset(keys_file.signers()) if keys_file is not None else frozenset(),
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        client = redis if redis is not None else make_redis(settings.redis_url)
        cache_client = make_redis(settings.cache_redis_url) if settings.cache_redis_url else client
        try:
            app.state.services = _services(
                settings,
                client,
                cache_client,
                presets,
                callbacks,
                metrics,
                api_keys,
                default_glossary,
            )
            await _warm_language_model()
            log.info("api ready", redis=redacted_url(settings.redis_url), styles=presets.names)
            yield
        finally:
            if cache_client is not client:
                await cache_client.aclose()
            if redis is None:
                await client.aclose()

    app = Litestar(
        route_handlers=[
            _protected_router(),
            glossaries.router(),
            health.health_live,
            health.health_ready,
            health.metrics,
            home,
            static_files(),
            libretranslate.router(),
            deepl.router(),
        ],
        dependencies=SERVICES_DEPENDENCY,
        lifespan=[lifespan],
        exception_handlers={Exception: handle_exception},
        middleware=[
            MetricsMiddleware(metrics),
            PageHeadersMiddleware(),
            PageHeadersMiddleware(pages=("/",), csp=EDITOR_CSP),
            libretranslate.LibreCorsMiddleware,
        ],
        template_config=template_config(),
        openapi_config=openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        request_class=KurzRequest,
        logging_config=None,
    )
    document(app.openapi_schema, seed_example())
    return app


def _protected_router() -> Router:
    """The endpoints behind the API key and the rate limit."""
    return Router(
        path="/",
        route_handlers=[
            articles.summarize,
            articles.summarize_batch,
            jobs.get_job,
            jobs.job_events,
            jobs.cancel_job,
            jobs.list_deliveries,
            jobs.redeliver,
            articles.list_styles,
        ],
        guards=[authenticate],
        security=SECURITY,
    )


def _services(
    settings: Settings,
    redis: Redis,
    cache: Redis,
    presets: PresetRegistry,
    callbacks: AllowList,
    metrics: ApiMetrics,
    api_keys: ApiKeys,
    default_glossary: Glossary | None,
) -> Services:
    keys = Keys(settings.key_prefix)
    queue = JobQueue(redis, keys, retries=settings.job_retries)
    workers = WorkerRegistry(redis, keys)
    limiter = FixedWindowLimiter(redis, keys, settings.rate_limit_per_minute)
    return Services(
        settings=settings,
        keys=keys,
        redis=redis,
        queue=queue,
        results=ResultCache(cache, keys, settings.result_ttl_s),
        presets=presets,
        metrics=metrics,
        api_keys=api_keys,
        limiter=limiter,
        auth_failures=FailedAttempts(limiter),
        callbacks=callbacks,
        fetch_allow=AllowList.from_settings(settings.fetch_allow_hosts),
        notifier=Notifier.from_settings(settings, redis, queue, signing=False),
        workers=workers,
        announced=AnnouncedModels(workers, settings.models_refresh_s),
        storage=StorageGuard(redis, keys, settings.redis_memory_high_water),
        idempotency=IdempotencyStore(redis, keys),
        stats=Stats(redis, keys),
        glossaries=GlossaryStore(redis, keys),
        submitters=Submitters(redis, keys, max(settings.result_ttl_s, JOB_RECORD_TTL_S)),
        default_glossary=default_glossary,
        partials=PartialTranslations(redis, keys),
    )


async def _warm_language_model() -> None:
    """Load py3langid's model now (a few hundred ms), not in the first request."""
    from service.text.language import detect_language

    await asyncio.to_thread(detect_language, ["Die Sonne scheint heute über ganz Deutschland."])


def refuse_accidental_exposure(settings: Settings) -> None:
    """``ConfigError`` when the API would listen where others can reach it with no keys,
    unless ``KURZ_ALLOW_OPEN_API`` says that is meant: anyone who can connect could then read
    every job and fill the queue."""
    if (
        settings.api_keys
        or settings.api_keys_file is not None
        or settings.allow_open_api
        or _is_loopback(settings.host)
    ):
        return
    raise ConfigError(
        f"the API would listen on {settings.host} without API keys: set KURZ_API_KEYS, listen "
        "on 127.0.0.1 (KURZ_HOST), or set KURZ_ALLOW_OPEN_API=true to serve everyone on purpose"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to any interface


def serve(settings: Settings) -> None:
    """``python -m service api``: run the app under uvicorn on settings.host:port, in
    ``settings.api_process_count`` processes.

    One process serves from this one.  Several are uvicorn's workers on one shared socket; each
    builds its app with :func:`app_from_environment`, so it reads its settings from the
    environment (and ``.env``) as this command did.  A cache hit costs a core's CPU, so a
    single process would leave every other core idle.

    The client address (rate limits without keys) is the connection's, unless it comes from a
    proxy in ``KURZ_TRUSTED_PROXIES``: then it is the one that proxy puts in X-Forwarded-For.
    """
    refuse_accidental_exposure(settings)
    processes = settings.api_process_count
    log.info("api starting", processes=processes, port=settings.port)
    uvicorn.run(
        create_app(settings) if processes == 1 else f"{__name__}:{app_from_environment.__name__}",
        factory=processes > 1,
        workers=processes,
        host=settings.host,
        port=settings.port,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )


def app_from_environment() -> Litestar:
    """The app of one of several API processes (uvicorn calls this in each): settings and
    logging as ``python -m service api`` sets them up, since a spawned process inherits the
    environment but none of its parent's objects."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)
