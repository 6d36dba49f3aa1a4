"""The HTTP endpoints: submit articles, follow and cancel jobs, list styles, health, metrics.

A request is validated completely before it touches the queue (empty text, length, style,
callback URL, language), so a job that reaches a worker is one it can run.  The job id is the
request's cache key: identical articles share one job while it runs, and one cached result
after it has finished.

Handlers get the app's :class:`Services` by dependency injection; the two guards (API key, rate
limit) apply to every endpoint except health, metrics and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, cast

import msgspec
import structlog
from litestar import Request, Response, Router, delete, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter, SkipValidation
from litestar.response import ServerSentEvent, ServerSentEventMessage
from msgspec import Meta
from redis.asyncio import Redis

from service.cache import ResultCache, result_key
from service.constants import IDEMPOTENCY_TTL_S, MIN_GERMAN_SHARE, Keys
from service.errors import EmptyTextError, KurzError, NotGermanError, TextTooLongError
from service.metrics import ApiMetrics, read_snapshot
from service.notify import Notifier
from service.presets import PresetRegistry
from service.problems import ApiProblem, problem_for, problem_responses
from service.queue import (
    Job,
    JobPayload,
    JobQueue,
    QueueFull,
    Status,
    job_links,
    status_of,
    view_of,
)
from service.ratelimit import ApiKeys, Caller, FixedWindowLimiter
from service.schemas import TERMINAL, JobStatus, JobView, Links, ModelInfo, Progress, Result
from service.settings import Settings
from service.text.language import detect_language
from service.webhooks import AttemptRecord

if TYPE_CHECKING:
    # Imported where used: the SSRF guard is optional for the rest of the API.
    from service.ssrf import AllowList

__all__ = [
    "BatchRequest",
    "JobAccepted",
    "Services",
    "SummarizeRequest",
    "open_routes",
    "protected_router",
    "provide_services",
]

log = structlog.get_logger(__name__)

#: Below this share of German text (by length) an article is refused unless the client allows it.
MAX_BATCH = 100
#: How often a waiting request or an event stream looks at its job again.
POLL_INTERVAL_S = 0.15
EVENTS_POLL_INTERVAL_S = 0.25
#: An event stream with nothing new sends a comment this often, so proxies keep it open.
EVENTS_KEEPALIVE_S = 15.0
ACCEPTED_RETRY_AFTER_S = 2
QUEUE_FULL_RETRY_AFTER_S = 15
NOT_READY_RETRY_AFTER_S = 5
#: SAQ blocks a key for up to 5 s after a running job of that key is aborted.
CANCELING_RETRY_AFTER_S = 5
_JOB_ID = re.compile(r"^[0-9a-f]{64}$")

# --- request and response shapes ------------------------------------------------------------------

MetadataValue = Annotated[str, Meta(max_length=1000)] | int | float | bool | None
Metadata = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=100)], MetadataValue],
    Meta(max_length=50, description="Up to 50 keys, echoed back on the job."),
]


class SummarizeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One German article to translate into English and summarize."""

    text: Annotated[str, Meta(description="The article body; paragraphs separated by blank lines.")]
    title: Annotated[str, Meta(max_length=1000, description="The headline.")] | None = None
    style: (
        Annotated[
            str,
            Meta(
                max_length=64,
                description="A summary style from GET /styles; the server's default if omitted.",
            ),
        ]
        | None
    ) = None
    callback_url: (
        Annotated[
            str,
            Meta(max_length=2048, description="Public http(s) URL that receives webhook events."),
        ]
        | None
    ) = None
    external_id: (
        Annotated[str, Meta(max_length=200, description="Your own id for the article.")] | None
    ) = None
    metadata: Metadata | None = None
    allow_non_german: Annotated[
        bool, Meta(description="Translate even when the text does not look German.")
    ] = False


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Up to 100 articles.  Each is validated on its own, so one bad article spoils nothing."""

    articles: list[dict[str, Any]]


class JobAccepted(msgspec.Struct, kw_only=True):
    """A job that is not finished yet: follow ``links.self`` or ``links.events``."""

    id: str
    status: JobStatus
    links: Links


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One article of a batch: its job (``id``, ``status``, ``links``), or its ``error``.

    ``error`` is the problem document the same article would get from ``POST /summarize``.
    """

    index: int
    id: str | None = None
    status: JobStatus | None = None
    links: Links | None = None
    error: dict[str, Any] | None = None


class BatchAccepted(msgspec.Struct, kw_only=True):
    jobs: list[BatchItem]


class StyleInfo(msgspec.Struct, kw_only=True):
    name: str
    description: str
    version: int
    digest: str


class Liveness(msgspec.Struct):
    status: str = "ok"


class Redelivery(msgspec.Struct, kw_only=True):
    """How many deliveries were scheduled again."""

    job_id: str
    scheduled: int


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    workers: list[str]


# --- services -------------------------------------------------------------------------------------


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
    callbacks: AllowList
    """Where callback URLs may point besides public addresses (``webhook_allow_hosts``)."""
    notifier: Notifier
    """Registers callback URLs and schedules webhook deliveries (the workers send them)."""


#: How handlers receive the services: by name, and passed as is (not re-validated per request).
ServicesDep = NamedDependency[SkipValidation[Services]]


def services_of(state: State) -> Services:
    services = state.get("services")
    if not isinstance(services, Services):
        raise RuntimeError("the app's lifespan has not run: no services in app state")
    return services


def provide_services(state: State) -> Services:
    """Dependency provider: the app's :class:`Services`."""
    return services_of(state)


# --- guards ---------------------------------------------------------------------------------------


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Require an API key when keys are configured; count the request against the rate limit."""
    services = services_of(connection.app.state)
    peer = connection.client.host if connection.client else None
    caller = services.api_keys.identify(connection.headers, peer)
    connection.state.caller = caller
    await services.limiter.check(caller.rate_subject)


def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse bodies that are not JSON (415) and empty bodies (400) before anything is read.

    Compressed bodies are refused too (415 ``unsupported_content_encoding``): neither Litestar
    nor uvicorn decodes a ``Content-Encoding``, so a gzip body would otherwise be parsed as
    garbage, and decoding one here would let a small body inflate past the byte limit.
    """
    codings = [
        coding.strip().lower()
        for value in connection.headers.getall("content-encoding", [])
        for coding in value.split(",")
    ]
    refused = [coding for coding in codings if coding not in ("", "identity")]
    if refused:
        raise ApiProblem(
            415,
            "unsupported_content_encoding",
            f"send the body uncompressed, not as {', '.join(refused)[:100]}",
            headers={"Accept-Encoding": "identity"},
        )
    content_type = connection.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not (media_type == "application/json" or media_type.endswith("+json")):
        raise ApiProblem(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media_type or '(no content type)'}",
        )
    if connection.headers.get("content-length") == "0":
        raise ApiProblem(400, "malformed_json", "the request body is empty")


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    caller = request.state.get("caller")
    if not isinstance(caller, Caller):
        raise RuntimeError("the authenticate guard did not run for this route")
    return caller


# --- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated article: its job key and what the worker gets."""

    key: str
    payload: JobPayload


async def current_models(services: Services) -> dict[str, ModelInfo]:
    """The models the workers announced; before any worker has, placeholders from settings.

    The models are part of the cache key, so a model upgrade never serves an old summary.
    """
    raw = await services.redis.get(services.keys.models())
    if raw is not None:
        try:
            return msgspec.json.decode(raw, type=dict[str, ModelInfo])
        except msgspec.DecodeError:
            log.warning("unreadable models record in redis; using placeholders")
    settings = services.settings
    return {
        "translation": ModelInfo(settings.translation_model, "unresolved", "", ""),
        "summarization": ModelInfo(settings.summarization_model, "unresolved", "", ""),
    }


async def prepare(
    article: SummarizeRequest, services: Services, models: dict[str, ModelInfo]
) -> Prepared:
    """Validate one article (cheapest checks first) and compute its job key."""
    settings = services.settings
    if not article.text.strip():
        raise EmptyTextError()
    if len(article.text) > settings.max_text_chars:
        raise TextTooLongError(len(article.text), settings.max_text_chars)
    style = article.style or settings.default_style
    preset = services.presets.get(style)
    if article.callback_url is not None:
        check_callback(article.callback_url, services)
    key = result_key(
        text=article.text,
        title=article.title,
        style=style,
        style_digest=preset.digest,
        models=models,
    )
    payload = JobPayload(
        text=article.text,
        title=article.title,
        style=style,
        allow_non_german=article.allow_non_german,
        external_id=article.external_id,
        metadata=article.metadata,
        callback_url=article.callback_url,
    )
    return Prepared(key=key, payload=payload)


def check_callback(url: str, services: Services) -> None:
    """Refuse callback URLs the webhook sender would refuse too (loopback, private networks),
    and any callback at all when no signing secret is configured (it could never be sent)."""
    from service.ssrf import check_url

    if not services.settings.webhook_secret:
        raise ApiProblem(
            422,
            "webhooks_not_configured",
            "this server has no KURZ_WEBHOOK_SECRET, so it cannot send signed callbacks",
        )
    check_url(url, services.callbacks)


async def check_german(text: str) -> None:
    """Refuse non-German articles here, rather than after a wait in the queue.

    Judged line by line (the worker judges sentence by sentence); py3langid runs in a thread,
    as a long article takes a few milliseconds of CPU.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    report = await asyncio.to_thread(detect_language, lines)
    if report.german_share < MIN_GERMAN_SHARE:
        raise NotGermanError(report.language, report.german_share)


# --- job views ------------------------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")


def cached_view(key: str, result: Result, payload: JobPayload | None = None) -> JobView:
    """A finished-job view of a cached result (no job record needed)."""
    now = _now_iso()
    return JobView(
        id=key,
        status=JobStatus.SUCCEEDED,
        progress=Progress(stage="done", done=1, total=1),
        created_at=now,
        finished_at=now,
        links=job_links(key),
        result=msgspec.structs.replace(result, cached=True),
        external_id=payload.external_id if payload else None,
        metadata=payload.metadata if payload else None,
    )


async def find_view(services: Services, job_id: str) -> JobView | None:
    """The job's view, or a cached result's when the job record has expired, or None."""
    job = await services.queue.get(job_id)
    if job is not None:
        return view_of(job)
    result = await services.results.get(job_id)
    return cached_view(job_id, result) if result is not None else None


def checked_job_id(job_id: str) -> str:
    """Job ids are sha256 hex digests; anything else cannot exist (and is not looked up)."""
    if not _JOB_ID.match(job_id):
        raise _job_not_found(job_id)
    return job_id


def _job_not_found(job_id: str) -> ApiProblem:
    return ApiProblem(404, "job_not_found", f"no job {job_id[:80]!r}", job_id=job_id[:80])


def respond(view: JobView) -> Response[Any]:
    """200 with the full view once it succeeded; otherwise 202 pointing at the job."""
    if view.status == JobStatus.SUCCEEDED:
        return Response(view, status_code=200)
    return Response(
        JobAccepted(id=view.id, status=view.status, links=view.links),
        status_code=202,
        headers={"Location": view.links.self, "Retry-After": str(ACCEPTED_RETRY_AFTER_S)},
    )


async def wait_for(services: Services, view: JobView, wait_s: float) -> JobView:
    """Poll the job until it is finished or ``wait_s`` has passed; the latest view."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while view.status not in TERMINAL:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.sleep(min(POLL_INTERVAL_S, remaining))
        latest = await find_view(services, view.id)
        if latest is None:  # expired while we waited: nothing better to say
            break
        view = latest
    return view


# --- idempotency ----------------------------------------------------------------------------------


class IdempotencyRecord(msgspec.Struct):
    body: str
    job: str


def body_fingerprint(article: SummarizeRequest) -> str:
    """sha256 of the request as decoded, so key order and whitespace do not make it "other"."""
    return hashlib.sha256(msgspec.json.encode(article, order="deterministic")).hexdigest()


async def claim_idempotency(
    services: Services, client: str, idem_key: str, fingerprint: str, job_id: str
) -> str | None:
    """Remember this key for 24 h; None if it is new, else the job it already stands for.

    The same key with another body is a client bug: 409, never a silent second job.
    """
    redis_key = services.keys.idempotency(client, idem_key)
    record = msgspec.json.encode(IdempotencyRecord(body=fingerprint, job=job_id))
    if await services.redis.set(redis_key, record, nx=True, ex=IDEMPOTENCY_TTL_S):
        return None
    raw = await services.redis.get(redis_key)
    if raw is None:  # expired between the two commands: claim it again
        await services.redis.set(redis_key, record, ex=IDEMPOTENCY_TTL_S)
        return None
    stored = msgspec.json.decode(raw, type=IdempotencyRecord)
    if stored.body != fingerprint:
        raise ApiProblem(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was used with a different request body",
            job_id=stored.job,
        )
    return stored.job


# --- handlers: articles ---------------------------------------------------------------------------

_SUBMIT_RESPONSES: dict[int, ResponseSpec] = {
    200: ResponseSpec(
        data_container=JobView,
        description="Answered from the result cache, or the job finished within `wait`",
        generate_examples=False,
    ),
    **problem_responses(400, 401, 409, 413, 415, 422, 429, 503),
}


@post(
    "/summarize",
    status_code=202,
    guards=[require_json],
    responses=_SUBMIT_RESPONSES,
    summary="Translate and summarize one German article",
    description=(
        "Validates the article and enqueues a job, or answers at once from the result cache. "
        "Identical articles share one job.  `202` carries `Location: /jobs/{id}`; with "
        "`wait` the request holds up to that many seconds for the result.  An "
        "`Idempotency-Key` makes retries of the same request return the same job."
    ),
    tags=["articles"],
)
async def summarize(
    request: Request[Any, Any, Any],
    data: JSONBody[SummarizeRequest],
    services: ServicesDep,
    wait: Annotated[
        float,
        QueryParameter(ge=0, le=60, description="Seconds to wait for the result before a 202."),
    ] = 0.0,
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retries with the same key and body return the same job for 24 h.",
        ),
    ] = None,
) -> Response[Any]:
    """``POST /summarize``."""
    prepared = await prepare(data, services, await current_models(services))
    if idempotency_key is None:
        view = await submit(services, prepared)
    else:
        client = caller_of(request).client
        fingerprint = body_fingerprint(data)
        view = await submit_once(services, prepared, client, idempotency_key, fingerprint)
    return respond(await wait_for(services, view, wait))


async def submit_once(
    services: Services, prepared: Prepared, client: str, idem_key: str, fingerprint: str
) -> JobView:
    """:func:`submit` at most once per Idempotency-Key: a retry gets the job its key names."""
    earlier = await claim_idempotency(services, client, idem_key, fingerprint, prepared.key)
    if earlier is not None:
        view = await find_view(services, earlier)
        if view is not None:
            return view
        # That job and its result have expired: this request is as good as new.
    try:
        return await submit(services, prepared)
    except BaseException:
        if earlier is None:  # nothing was accepted: let a retry with this key try again
            await _release(services, services.keys.idempotency(client, idem_key))
        raise


async def _release(services: Services, redis_key: str) -> None:
    try:
        await services.redis.delete(redis_key)
    except Exception as error:  # noqa: BLE001 - Redis down: the key expires on its own
        log.warning("could not release idempotency key", error=repr(error))


async def submit(services: Services, prepared: Prepared) -> JobView:
    """A cached result, or the (new or shared) job for this article; 429 when the queue is full."""
    callback_url = prepared.payload.callback_url
    payload = prepared.payload
    # The cache first: a hit already knows its language, and judging it again costs
    # milliseconds of CPU per request, several times the rest of a cache hit.
    result = await services.results.get(prepared.key)
    if result is not None:
        if not payload.allow_non_german and result.german_share < MIN_GERMAN_SHARE:
            raise NotGermanError(result.source_language, result.german_share)
        services.metrics.cache_hits.inc()
        view = cached_view(prepared.key, result, payload)
        if callback_url is not None:
            await services.notifier.announce(view, only=[callback_url])
        return view
    if not payload.allow_non_german:
        await check_german(payload.text)
    services.metrics.cache_misses.inc()
    if callback_url is not None:
        # Registered before the job is enqueued or joined, so a job finishing right after
        # cannot announce itself without this URL.
        await services.notifier.add_callback(prepared.key, callback_url)
    running = await services.queue.get(prepared.key)
    if running is not None and status_of(running) not in TERMINAL:
        return view_of(running)  # joining a job adds nothing to the queue: no depth check
    await _ensure_room(services)
    try:
        job, created = await services.queue.submit(
            prepared.key, prepared.payload, max_depth=services.settings.max_queue_depth
        )
    except QueueFull as full:  # filled up since the check above
        raise _queue_full(full.depth) from None
    if not created:
        return view_of(await _stored(services, prepared.key))
    services.metrics.jobs_created.inc()
    log.info(
        "job enqueued",
        job=prepared.key[:12],
        chars=len(prepared.payload.text),
        style=prepared.payload.style,
    )
    return view_of(job)


async def _stored(services: Services, key: str) -> Job:
    """The job another request enqueued a moment ago, or a 409 while a cancel is under way.

    SAQ refuses to enqueue a key while a running job of that key is being aborted (for up to
    a few seconds).  Only the canceled record (or nothing) is there then, and answering 202
    would promise a job that will never run.
    """
    job = await services.queue.get(key)
    if job is None or status_of(job) in TERMINAL:
        raise ApiProblem(
            409,
            "job_canceling",
            "the previous job for this article is being canceled; retry in a few seconds",
            headers={"Retry-After": str(CANCELING_RETRY_AFTER_S)},
        )
    return job


async def _ensure_room(services: Services) -> None:
    depth = await services.queue.depth()
    if depth >= services.settings.max_queue_depth:
        raise _queue_full(depth)


def _queue_full(depth: int) -> ApiProblem:
    return ApiProblem(
        429,
        "queue_full",
        f"{depth} articles are waiting; retry later",
        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
        queue_depth=depth,
    )


@post(
    "/summarize/batch",
    status_code=202,
    guards=[require_json],
    responses=problem_responses(400, 401, 413, 415, 422, 429, 503),
    summary="Submit up to 100 articles at once",
    description=(
        "Each article is validated and submitted on its own: the answer lists, by index, either "
        "the job (`id`, `status`, `links`) or the problem that article has.  Articles already "
        "in the result cache come back with status `succeeded`."
    ),
    tags=["articles"],
)
async def summarize_batch(data: JSONBody[BatchRequest], services: ServicesDep) -> BatchAccepted:
    """``POST /summarize/batch``."""
    count = len(data.articles)
    if count == 0:
        raise ApiProblem(422, "no_articles", "the batch has no articles")
    if count > MAX_BATCH:
        raise ApiProblem(
            422,
            "too_many_articles",
            f"a batch holds at most {MAX_BATCH} articles, not {count}",
            limit=MAX_BATCH,
            count=count,
        )
    models = await current_models(services)
    items: list[BatchItem] = []
    for index, raw in enumerate(data.articles):
        items.append(await _batch_item(services, models, index, raw))
    return BatchAccepted(jobs=items)


async def _batch_item(
    services: Services, models: dict[str, ModelInfo], index: int, raw: dict[str, Any]
) -> BatchItem:
    """One article of a batch; its own problems become its entry, Redis outages fail the batch."""
    try:
        article = msgspec.convert(raw, SummarizeRequest)
        view = await submit(services, await prepare(article, services, models))
    except (KurzError, ApiProblem, msgspec.ValidationError) as exc:
        return BatchItem(index=index, error=problem_for(exc).body())
    return BatchItem(index=index, id=view.id, status=view.status, links=view.links)


# --- handlers: jobs -------------------------------------------------------------------------------


@get(
    "/jobs/{job_id:str}",
    responses=problem_responses(401, 404, 429, 503),
    summary="A job's status, progress and, once finished, its result",
    tags=["jobs"],
)
async def get_job(job_id: FromPath[str], services: ServicesDep) -> JobView:
    """``GET /jobs/{id}``."""
    view = await find_view(services, checked_job_id(job_id))
    if view is None:
        raise _job_not_found(job_id)
    return view


@get(
    "/jobs/{job_id:str}/events",
    media_type="text/event-stream",
    responses=problem_responses(401, 404, 429, 503),
    summary="Server-sent events: `progress` while the job runs, then `done` with the job",
    description=(
        "Emits a `progress` event (`{status, progress}`) whenever either changes, then one "
        "`done` event carrying the full job view, and closes.  An `error` event with a problem "
        "document ends the stream if the job store becomes unreachable."
    ),
    tags=["jobs"],
)
async def job_events(job_id: FromPath[str], services: ServicesDep) -> ServerSentEvent:
    """``GET /jobs/{id}/events``."""
    first = await find_view(services, checked_job_id(job_id))
    if first is None:
        raise _job_not_found(job_id)
    return ServerSentEvent(
        event_stream(services, first),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def event_stream(services: Services, view: JobView) -> AsyncIterator[ServerSentEventMessage]:
    """Progress events while the job changes, then ``done``; polling keeps it replica-safe."""
    loop = asyncio.get_running_loop()
    last: tuple[JobStatus, Progress] | None = None
    last_sent = loop.time()
    while view.status not in TERMINAL:
        state = (view.status, view.progress)
        if state != last:
            last, last_sent = state, loop.time()
            yield _event("progress", {"status": view.status, "progress": view.progress})
        elif loop.time() - last_sent >= EVENTS_KEEPALIVE_S:
            last_sent = loop.time()
            yield ServerSentEventMessage(comment="keep-alive")
        await asyncio.sleep(EVENTS_POLL_INTERVAL_S)
        try:
            latest = await find_view(services, view.id)
        except Exception as exc:  # noqa: BLE001 - the stream has begun: report, then end it
            log.warning("event stream ended by an error", job=view.id[:12], error=repr(exc))
            yield _event("error", problem_for(exc).body())
            return
        if latest is None:
            yield _event("error", _job_not_found(view.id).problem.body())
            return
        view = latest
    yield _event("done", view)


def _event(name: str, data: object) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=name, data=msgspec.json.encode(data).decode())


@delete(
    "/jobs/{job_id:str}",
    status_code=200,
    responses={
        202: ResponseSpec(
            data_container=JobView,
            description="Cancel requested; the worker running the job stops it shortly",
            generate_examples=False,
        ),
        **problem_responses(401, 404, 409, 429, 503),
    },
    summary="Cancel a queued or running job",
    description="Every client waiting on the same article's job sees it canceled.",
    tags=["jobs"],
)
async def cancel_job(job_id: FromPath[str], services: ServicesDep) -> Response[JobView]:
    """``DELETE /jobs/{id}``: 200 once canceled, 202 while a worker is still stopping it."""
    job = await services.queue.cancel(checked_job_id(job_id))
    if job is None:
        if await services.results.get(job_id) is not None:
            raise _job_finished(job_id, JobStatus.SUCCEEDED)
        raise _job_not_found(job_id)
    view = view_of(job)
    if view.status != JobStatus.CANCELED:
        raise _job_finished(job_id, view.status)
    status_code = 202 if job.status == Status.ABORTING else 200
    log.info("job canceled", job=job_id[:12])
    return Response(view, status_code=status_code)


@get(
    "/jobs/{job_id:str}/deliveries",
    responses=problem_responses(401, 404, 429, 503),
    summary="The job's webhook delivery attempts, oldest first",
    description=(
        "Every attempt to every endpoint: time, HTTP status (if any), latency, error and "
        "outcome (`delivered`, `failed`, `gone`).  Retries of one event share its `msg_id`."
    ),
    tags=["webhooks"],
)
async def list_deliveries(job_id: FromPath[str], services: ServicesDep) -> list[AttemptRecord]:
    """``GET /jobs/{id}/deliveries``."""
    checked = checked_job_id(job_id)
    attempts = await services.notifier.log.list(checked)
    if not attempts and await find_view(services, checked) is None:
        raise _job_not_found(job_id)
    return attempts


@post(
    "/jobs/{job_id:str}/deliveries/redeliver",
    status_code=202,
    responses=problem_responses(401, 404, 409, 429, 503),
    summary="Send the job's webhook events again, with their original ids",
    tags=["webhooks"],
)
async def redeliver(job_id: FromPath[str], services: ServicesDep) -> Redelivery:
    """``POST /jobs/{id}/deliveries/redeliver``: each endpoint gets the same body and id again."""
    checked = checked_job_id(job_id)
    scheduled = await services.notifier.redeliver(checked)
    if scheduled == 0:
        if await find_view(services, checked) is None:
            raise _job_not_found(job_id)
        raise ApiProblem(409, "no_deliveries", "this job has sent no webhook events yet")
    log.info("webhooks redelivered", job=checked[:12], deliveries=scheduled)
    return Redelivery(job_id=checked, scheduled=scheduled)


def _job_finished(job_id: str, status: JobStatus) -> ApiProblem:
    return ApiProblem(
        409,
        "job_finished",
        f"the job has already {status.value}",
        job_id=job_id,
        job_status=status.value,
    )


# --- handlers: styles, health, metrics ------------------------------------------------------------


@get("/styles", summary="The summary styles and their preset versions", tags=["articles"])
async def list_styles(services: ServicesDep) -> list[StyleInfo]:
    """``GET /styles``."""
    return [
        StyleInfo(
            name=preset.name,
            description=preset.description,
            version=preset.version,
            digest=preset.digest,
        )
        for preset in services.presets.all()
    ]


@get("/health/live", summary="The process is up", tags=["health"])
async def health_live() -> Liveness:
    """``GET /health/live``: answers as long as the event loop does; never touches Redis."""
    return Liveness()


@get(
    "/health/ready",
    responses=problem_responses(503),
    summary="Redis answers and at least one worker is alive",
    tags=["health"],
)
async def health_ready(services: ServicesDep) -> Readiness:
    """``GET /health/ready``: whether a submitted article would be processed."""
    reasons: list[str] = []
    workers: list[str] = []
    try:
        await cast("Awaitable[bool]", services.redis.ping())
        workers = await live_workers(services)
    except Exception as exc:  # noqa: BLE001 - any failure to ask Redis means "not ready"
        reasons.append(f"redis unreachable: {problem_for(exc).detail}")
    else:
        if not workers:
            reasons.append("no worker heartbeat: start one with `python -m service worker`")
    if reasons:
        raise ApiProblem(
            503,
            "not_ready",
            "; ".join(reasons),
            headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
            reasons=reasons,
        )
    return Readiness(status="ready", workers=workers)


async def live_workers(services: Services, limit: int = 1000) -> list[str]:
    """Ids of the workers whose heartbeat key has not expired."""
    keys: list[bytes | str] = []
    async for key in services.redis.scan_iter(match=services.keys.workers_pattern(), count=100):
        keys.append(key)
        if len(keys) >= limit:
            break
    if not keys:
        return []
    records = await services.redis.mget(keys)
    return sorted(_worker_id(key, record) for key, record in zip(keys, records, strict=True))


def _worker_id(key: bytes | str, record: bytes | None) -> str:
    """The id a heartbeat record names, else the key's last part."""
    fallback = (key.decode() if isinstance(key, bytes) else key).rsplit(":", 1)[-1]
    if record is None:
        return fallback
    try:
        decoded = msgspec.json.decode(record)
    except msgspec.DecodeError:
        return fallback
    return str(decoded.get("id", fallback)) if isinstance(decoded, dict) else fallback


@get(
    "/metrics",
    media_type="text/plain",
    summary="Prometheus metrics of this API process and of the workers",
    tags=["health"],
)
async def metrics(request: Request[Any, Any, Any], services: ServicesDep) -> Response[bytes]:
    """``GET /metrics``: cluster series are read from Redis now, not cached."""
    snapshot = await read_snapshot(services.redis, services.keys, services.queue)
    services.metrics.update(snapshot)
    body, content_type = services.metrics.render(request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})


# --- assembly -------------------------------------------------------------------------------------

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def protected_router() -> Router:
    """The endpoints behind the API key and the rate limit."""
    return Router(
        path="/",
        route_handlers=[
            summarize,
            summarize_batch,
            get_job,
            job_events,
            cancel_job,
            list_deliveries,
            redeliver,
            list_styles,
        ],
        guards=[authenticate],
        security=SECURITY,
    )


def open_routes() -> Sequence[Any]:
    """Endpoints a load balancer or Prometheus reaches without a key."""
    return [health_live, health_ready, metrics]


SERVICES_DEPENDENCY = {"services": Provide(provide_services, sync_to_thread=False)}
