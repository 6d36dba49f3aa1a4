"""Submitting articles: validation, idempotency, shared jobs and waiting, with no HTTP in it.

A request is validated completely before it touches the queue (empty text, length, style,
callback URL, language), so a job that reaches a worker is one it can run.  The job id is the
request's cache key: identical articles share one job while it runs, and one cached result
after it has finished.  Refusals are ``service.errors`` exceptions; the handlers in
``service.api.articles`` and ``service.api.jobs`` turn views into responses.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import msgspec
import structlog

from service.api.glossary_use import choose_glossary
from service.api.inputs import checked_input
from service.api.keys import PUBLIC_CLIENT
from service.api.schemas import SummarizeRequest
from service.api.services import Services
from service.constants import MIN_GERMAN_SHARE
from service.errors import ApiProblem, NotGermanError, QueueFullError
from service.queue import JobPayload, job_links, view_of
from service.schemas import TERMINAL, JobStatus, JobView, ModelInfo, Progress, Result
from service.store.submitters import SubmitterCopy, personal
from service.text.language import detect_language
from service.webhooks.events import now_iso
from service.webhooks.ssrf import check_url

__all__ = [
    "Prepared",
    "cached_view",
    "checked_job_id",
    "copy_of_request",
    "current_models",
    "find_view",
    "job_not_found",
    "personal",
    "prepare",
    "submit",
    "submit_once",
    "submitter_copy",
    "wait_for",
]

log = structlog.get_logger(__name__)

#: How often a waiting request looks at its job again.
POLL_INTERVAL_S = 0.15
#: SAQ blocks a key for up to 5 s after a running job of that key is aborted.
CANCELING_RETRY_AFTER_S = 5
_JOB_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated article: its job key, what the worker gets, and who submits it."""

    key: str
    payload: JobPayload
    owner: str = PUBLIC_CLIENT


async def current_models(services: Services) -> dict[str, ModelInfo]:
    """The models the workers announced; before any worker has, placeholders from settings.

    The models are part of the cache key, so a model upgrade never serves an old summary for
    longer than ``KURZ_MODELS_REFRESH_S`` (this process reuses the record that long).
    """
    announced = await services.announced.get()
    if announced is not None:
        return announced
    settings = services.settings
    return {
        "translation": ModelInfo(settings.translation_model, "unresolved", "", ""),
        "summarization": ModelInfo(settings.summarization_model, "unresolved", "", ""),
    }


async def prepare(
    article: SummarizeRequest,
    services: Services,
    models: dict[str, ModelInfo],
    *,
    owner: str = PUBLIC_CLIENT,
    cache_scope: str | None = None,
) -> Prepared:
    """Validate one article (cheapest checks first) and compute its job key.

    The article is exactly one of ``text``, ``html`` and ``url`` (``service.api.inputs``);
    ``owner`` is whose glossaries it may name (``service.api.glossary_use``); ``cache_scope``
    is the desk whose jobs and results are its own (None: shared with every sharing desk).
    """
    settings = services.settings
    source = checked_input(article, settings, services.fetch_allow)
    style = article.style or settings.default_style
    preset = services.presets.get(style)
    if article.callback_url is not None:
        check_callback(article.callback_url, services, owner)
    glossary = await choose_glossary(services, article.glossary_id, owner)
    key = source.job_key(
        title=article.title,
        style=style,
        style_digest=preset.digest,
        models=models,
        glossary=(glossary.glossary_id, glossary.digest) if glossary else None,
        scope=cache_scope,
    )
    payload = JobPayload(
        text=source.value if source.kind == "text" else "",
        html=source.value if source.kind == "html" else None,
        url=source.value if source.kind == "url" else None,
        title=article.title,
        style=style,
        allow_non_german=article.allow_non_german,
        external_id=article.external_id,
        metadata=article.metadata,
        callback_url=article.callback_url,
        glossary_id=glossary.glossary_id if glossary else None,
        glossary_owner=glossary.owner if glossary else None,
        cache_scope=cache_scope,
    )
    return Prepared(key=key, payload=payload, owner=owner)


def check_callback(url: str, services: Services, owner: str = PUBLIC_CLIENT) -> None:
    """Refuse callback URLs the webhook sender would refuse too (loopback, private networks),
    and any callback at all when no signing secret is configured for ``owner`` (the server's,
    or its desk's own): it could never be sent."""
    if not services.settings.webhook_secret and owner not in services.api_keys.signing_desks:
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


def cached_view(key: str, result: Result, payload: JobPayload | None = None) -> JobView:
    """A finished-job view of a cached result (no job record needed)."""
    now = now_iso()
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


async def find_view(
    services: Services, job_id: str, copy: SubmitterCopy | None = None
) -> JobView | None:
    """The job's view, or a cached result's when the job record has expired, or None; with
    ``copy``, showing that submitter's own ``external_id`` and metadata."""
    view = await services.queue.view(job_id)
    if view is None:
        result = await services.results.get(job_id)
        view = cached_view(job_id, result) if result is not None else None
    return personal(view, copy) if view is not None else None


async def submitter_copy(services: Services, job_id: str, owner: str) -> SubmitterCopy | None:
    """What ``owner`` attached to the job, when callers are told apart (API keys on);
    ``job_not_found`` (404) for a caller that never submitted it.  None without keys: every
    caller is the same public client and sees the job as stored."""
    if not services.api_keys.enabled:
        return None
    copy = await services.submitters.copy_of(job_id, owner)
    if copy is None:
        raise job_not_found(job_id)
    return copy


def checked_job_id(job_id: str) -> str:
    """Job ids are sha256 hex digests; anything else cannot exist (and is not looked up)."""
    if not _JOB_ID.match(job_id):
        raise job_not_found(job_id)
    return job_id


def job_not_found(job_id: str) -> ApiProblem:
    return ApiProblem(404, "job_not_found", f"no job {job_id[:80]!r}", job_id=job_id[:80])


async def wait_for(
    services: Services, view: JobView, wait_s: float, copy: SubmitterCopy | None = None
) -> JobView:
    """Poll the job until it is finished or ``wait_s`` has passed; the latest view (with
    ``copy``: that submitter's)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while view.status not in TERMINAL:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        await asyncio.sleep(min(POLL_INTERVAL_S, remaining))
        latest = await find_view(services, view.id, copy)
        if latest is None:  # expired while we waited: nothing better to say
            break
        view = latest
    return view


async def submit_once(
    services: Services, prepared: Prepared, client: str, idem_key: str, fingerprint: str
) -> JobView:
    """:func:`submit` at most once per Idempotency-Key: a retry gets the job its key names."""
    earlier = await services.idempotency.claim(client, idem_key, fingerprint, prepared.key)
    if earlier is not None:
        mine = (
            await services.submitters.copy_of(earlier, prepared.owner)
            if services.api_keys.enabled
            else None
        )
        view = await find_view(services, earlier, mine)
        if view is not None:
            return view
        # That job and its result have expired: this request is as good as new.
    try:
        return await submit(services, prepared)
    except BaseException:
        if earlier is None:  # nothing was accepted: let a retry with this key try again
            await services.idempotency.release(client, idem_key)
        raise


async def submit(services: Services, prepared: Prepared) -> JobView:
    """A cached result, or the (new or shared) job for this article; 429 when the queue is full.

    With API keys on, the caller is recorded as one of the job's submitters, with its own
    ``external_id`` and metadata, and the view shows those (not another submitter's)."""
    view = await _submit(services, prepared)
    if not services.api_keys.enabled:
        return view
    copy = SubmitterCopy(prepared.payload.external_id, prepared.payload.metadata)
    await services.submitters.record(view.id, prepared.owner, copy)
    return personal(view, copy)


def copy_of_request(prepared: Prepared, services: Services) -> SubmitterCopy | None:
    """The submitter copy a request's own views show (None without API keys)."""
    if not services.api_keys.enabled:
        return None
    return SubmitterCopy(prepared.payload.external_id, prepared.payload.metadata)


def _webhook_owner(services: Services, prepared: Prepared) -> str | None:
    """Whose event a callback gets: the submitter's own when keys tell callers apart."""
    return prepared.owner if services.api_keys.enabled else None


async def _submit(services: Services, prepared: Prepared) -> JobView:
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
            await services.notifier.announce(
                view, only=[callback_url], owner=_webhook_owner(services, prepared)
            )
        return view
    if not payload.allow_non_german and payload.text:  # a page's text is judged by the worker
        await check_german(payload.text)
    services.metrics.cache_misses.inc()
    if callback_url is not None:
        # Registered before the job is enqueued or joined, so a job finishing right after
        # cannot announce itself without this URL.
        await services.notifier.add_callback(
            prepared.key,
            callback_url,
            owner=_webhook_owner(services, prepared),
            limit=services.settings.max_callbacks_per_job,
        )
    running = await services.queue.view(prepared.key)
    if running is not None and running.status not in TERMINAL:
        return running  # joining a job adds nothing to the queue: no depth check
    article = prepared.payload.text or prepared.payload.html or ""
    async with services.storage.admit(len(article.encode())) as room:
        await _ensure_room(services)
        # QueueFullError or StorageFullError when it filled up since the checks above.
        job, created = await services.queue.submit(
            prepared.key,
            prepared.payload,
            max_depth=services.settings.max_queue_depth,
            room=room,
        )
    if not created:
        return await _stored(services, prepared.key)
    services.metrics.jobs_created.inc()
    log.info(
        "job enqueued",
        job=prepared.key[:12],
        chars=len(prepared.payload.text or prepared.payload.html or ""),
        style=prepared.payload.style,
    )
    return view_of(job)


async def _stored(services: Services, key: str) -> JobView:
    """The job another request enqueued a moment ago, or a 409 while a cancel is under way.

    SAQ refuses to enqueue a key while a running job of that key is being aborted (for up to
    a few seconds).  Only the canceled record (or nothing) is there then, and answering 202
    would promise a job that will never run.
    """
    view = await services.queue.view(key)
    if view is None or view.status in TERMINAL:
        raise ApiProblem(
            409,
            "job_canceling",
            "the previous job for this article is being canceled; retry in a few seconds",
            headers={"Retry-After": str(CANCELING_RETRY_AFTER_S)},
        )
    return view


async def _ensure_room(services: Services) -> None:
    depth = await services.queue.depth()
    if depth >= services.settings.max_queue_depth:
        raise QueueFullError(depth)
