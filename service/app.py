"""The API process: a Litestar app over Redis, and ``serve`` to run it under uvicorn.

The app never loads a model (nor imports torch): it validates requests, enqueues jobs and reads
results, so it starts in a second and any number of replicas can run beside the workers.

Redis is not contacted at start-up.  The client connects per command, with short timeouts, so
the app starts while Redis is still down, answers 503 ``redis_unavailable`` while it is, and
recovers by itself when it is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIMediaType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from service import __version__
from service.cache import ResultCache
from service.constants import Keys
from service.logs import redacted_url
from service.metrics import ApiMetrics, MetricsMiddleware
from service.notify import Notifier
from service.presets import PresetRegistry
from service.problems import handle_exception
from service.queue import JobQueue
from service.ratelimit import ApiKeys, FixedWindowLimiter
from service.routes import (
    MAX_BATCH,
    SERVICES_DEPENDENCY,
    Services,
    open_routes,
    protected_router,
)
from service.settings import ROOT, Settings

if TYPE_CHECKING:
    from service.ssrf import AllowList

__all__ = ["create_app", "make_redis", "serve"]

log = structlog.get_logger(__name__)

#: Connect and command timeouts: a request fails fast with 503 instead of hanging on Redis.
REDIS_TIMEOUT_S = 2.0
#: Idle pooled connections are pinged before reuse after this long, so a Redis restart is
#: noticed on the next command rather than by a failed request.
REDIS_HEALTH_CHECK_S = 15
SEED_EXAMPLE_FILE = ROOT / "seeds" / "000_1e1de29cccfa5500.txt"
SEED_EXAMPLE_CHARS = 600
#: How long a shutting-down server lets open event streams and long polls finish.
GRACEFUL_SHUTDOWN_S = 10


def make_redis(url: str) -> Redis:
    """A Redis client that fails fast (2 s), retries a dropped connection once, and reconnects.

    Bytes in and out (``decode_responses`` off), as SAQ and the caches expect.
    """
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        health_check_interval=REDIS_HEALTH_CHECK_S,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
    )


def create_app(settings: Settings, *, redis: Redis | None = None) -> Litestar:
    """Build the API.  ``redis`` injects a client (tests); otherwise one comes from settings.

    Presets and the callback allow-list are read here, so a bad preset file or setting stops
    the process before it serves anything.
    """
    from service.ssrf import AllowList  # imported late: the SSRF guard may be absent in a checkout

    presets = PresetRegistry.from_directory(settings.prompts_dir)
    callbacks = AllowList.from_settings(settings.webhook_allow_hosts)
    metrics = ApiMetrics()
    api_keys = ApiKeys(settings.api_keys)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        client = redis if redis is not None else make_redis(settings.redis_url)
        try:
            app.state.services = _services(settings, client, presets, callbacks, metrics, api_keys)
            await _warm_language_model()
            log.info("api ready", redis=redacted_url(settings.redis_url), styles=presets.names)
            yield
        finally:
            if redis is None:
                await client.aclose()

    app = Litestar(
        route_handlers=[protected_router(), *open_routes()],
        dependencies=SERVICES_DEPENDENCY,
        lifespan=[lifespan],
        exception_handlers={Exception: handle_exception},
        middleware=[MetricsMiddleware(metrics)],
        openapi_config=_openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
    )
    _document(app.openapi_schema, _seed_example())
    return app


def _services(
    settings: Settings,
    redis: Redis,
    presets: PresetRegistry,
    callbacks: AllowList,
    metrics: ApiMetrics,
    api_keys: ApiKeys,
) -> Services:
    keys = Keys(settings.key_prefix)
    queue = JobQueue(redis, keys, retries=settings.job_retries)
    return Services(
        settings=settings,
        keys=keys,
        redis=redis,
        queue=queue,
        results=ResultCache(redis, keys, settings.result_ttl_s),
        presets=presets,
        metrics=metrics,
        api_keys=api_keys,
        limiter=FixedWindowLimiter(redis, keys, settings.rate_limit_per_minute),
        callbacks=callbacks,
        notifier=Notifier(
            redis,
            keys,
            queue,
            endpoints=settings.webhook_endpoints,
            retry_schedule=settings.webhook_retry_schedule,
            public_url=settings.public_url,
            signer=None,  # the API schedules deliveries; workers sign and send them
            timeout_s=settings.webhook_timeout_s,
        ),
    )


async def _warm_language_model() -> None:
    """Load py3langid's model now (a few hundred ms), not in the first request."""
    from service.text.language import detect_language

    await asyncio.to_thread(detect_language, ["Die Sonne scheint heute über ganz Deutschland."])


# --- OpenAPI --------------------------------------------------------------------------------------


def _openapi_config() -> OpenAPIConfig:
    """``GET /schema`` is the JSON document itself; ``/schema/swagger`` renders it."""
    return OpenAPIConfig(
        title="Kurzgefasst",
        version=__version__,
        description=(
            "German news in, English translation and summary out.  Submit an article, follow "
            "its job, read the result.  Errors are RFC 9457 problem documents with a stable "
            "`code`."
        ),
        path="/schema",
        render_plugins=[
            JsonRenderPlugin(path=["/", "/openapi.json"]),
            SwaggerRenderPlugin(path="/swagger"),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer"),
                "apiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header"
                ),
            }
        ),
        create_examples=False,
    )


def _seed_example(path: Path = SEED_EXAMPLE_FILE) -> dict[str, Any] | None:
    """A request body from the first seed article, cut at a paragraph end; None if it is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    head = text[:SEED_EXAMPLE_CHARS]
    cut = head.rfind("\n\n")
    body = (head[:cut] if cut > 0 else head).strip()
    return {"text": body, "style": "standard", "external_id": "cms-4711"} if body else None


def _document(schema: OpenAPI, example: dict[str, Any] | None) -> None:
    """Add what Litestar cannot infer: request examples, and the batch's article schema.

    The batch body is typed loosely (each article is validated on its own), so its items are
    pointed at the ``SummarizeRequest`` schema here.
    """
    _overlapping_unions_as_any_of(schema)
    paths = schema.paths or {}
    single = paths["/summarize"].post
    batch = paths["/summarize/batch"].post
    if single is None or batch is None:
        return
    single_media = _json_body(single.request_body)
    batch_media = _json_body(batch.request_body)
    if batch_media is not None:
        batch_media.schema = Schema(
            type=OpenAPIType.OBJECT,
            required=["articles"],
            properties={
                "articles": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Reference(ref="#/components/schemas/SummarizeRequest"),
                    min_items=1,
                    max_items=MAX_BATCH,
                )
            },
        )
    if example is None:
        return
    if single_media is not None:
        single_media.examples = {"seed": Example(summary="A German news article", value=example)}
    if batch_media is not None:
        batch_media.examples = {
            "seed": Example(summary="Two articles", value={"articles": [example, example]})
        }


def _overlapping_unions_as_any_of(node: Any, seen: set[int] | None = None) -> None:
    """Turn each ``oneOf`` with both an integer and a number branch into ``anyOf``.

    Litestar writes every union as ``oneOf``, but ``int | float`` (metadata values) overlaps: 2
    is an integer and a number, matches two branches and so fails ``oneOf``.  ``anyOf`` (at least
    one branch) is what the Python type means.
    """
    seen = set() if seen is None else seen
    if id(node) in seen or isinstance(node, str | bytes | int | float | bool | None):
        return
    seen.add(id(node))
    if isinstance(node, Schema) and node.one_of:
        types = {branch.type for branch in node.one_of if isinstance(branch, Schema)}
        if OpenAPIType.INTEGER in types and OpenAPIType.NUMBER in types:
            node.any_of, node.one_of = node.one_of, None
    if isinstance(node, dict):
        children: Iterable[Any] = node.values()
    elif isinstance(node, list | tuple):
        children = node
    elif dataclasses.is_dataclass(node):
        children = (getattr(node, item.name) for item in dataclasses.fields(node))
    else:
        return
    for child in children:
        _overlapping_unions_as_any_of(child, seen)


def _json_body(body: Any) -> OpenAPIMediaType | None:
    content = getattr(body, "content", None) or {}
    media = content.get("application/json")
    return media if isinstance(media, OpenAPIMediaType) else None


def serve(settings: Settings) -> None:
    """``python -m service api``: run the app under uvicorn on settings.host:port."""
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
