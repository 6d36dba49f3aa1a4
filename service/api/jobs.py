"""Job endpoints: a job's view, its event stream, cancel, and its webhook deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import structlog
from litestar import Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import ServerSentEvent, ServerSentEventMessage

from service.api.auth import RATE_BUCKET, READ_BUCKET, caller_of
from service.api.deps import ServicesDep
from service.api.glossary_use import owner_of
from service.api.problems import problem_for, problem_responses
from service.api.schemas import Redelivery
from service.api.services import Services
from service.api.submission import (
    checked_job_id,
    find_view,
    job_not_found,
    personal,
    submitter_copy,
)
from service.errors import ApiProblem
from service.schemas import TERMINAL, JobStatus, JobView, Progress, TranslatedParagraph
from service.store.submitters import SubmitterCopy
from service.webhooks import AttemptRecord

__all__ = ["cancel_job", "get_job", "job_events", "list_deliveries", "redeliver"]

log = structlog.get_logger(__name__)

#: How often an event stream looks at its job again.
EVENTS_POLL_INTERVAL_S = 0.25
#: Redeliveries of one job per minute, whoever asks.
REDELIVERIES_PER_MINUTE = 5
#: An event stream with nothing new sends a comment this often, so proxies keep it open.
EVENTS_KEEPALIVE_S = 15.0


@get(
    "/jobs/{job_id:str}",
    opt={RATE_BUCKET: READ_BUCKET},
    responses=problem_responses(401, 404, 429, 503),
    summary="A job's status, progress and, once finished, its result",
    description=(
        "While the job runs, `partial` holds the paragraphs translated so far (in paragraph "
        "order), so the English can be read before the summary is written; once the job has "
        "finished, `result` holds everything and `partial` is absent."
    ),
    tags=["jobs"],
)
async def get_job(
    job_id: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
) -> JobView:
    """``GET /jobs/{id}``."""
    checked, copy = await _mine(request, services, job_id)
    view = await find_view(services, checked, copy)
    if view is None:
        raise job_not_found(job_id)
    return await with_partial(services, view)


async def with_partial(services: Services, view: JobView) -> JobView:
    """A running job's view with the paragraphs its current attempt has translated so far."""
    if view.status != JobStatus.RUNNING:
        return view
    paragraphs = await services.partials.read(view.id, view.attempts)
    return msgspec.structs.replace(view, partial=paragraphs)


@get(
    "/jobs/{job_id:str}/events",
    opt={RATE_BUCKET: READ_BUCKET},
    media_type="text/event-stream",
    responses=problem_responses(401, 404, 429, 503),
    summary=(
        "Server-sent events: `progress` and `translation` while the job runs, then `done` with "
        "the job"
    ),
    description=(
        "Emits a `progress` event (`{status, progress}`) whenever either changes, and a "
        "`translation` event (a `TranslatedParagraph`: `{paragraph, first_sentence, sentences}`) "
        "for each paragraph as soon as it is translated; a client that connects late gets the "
        "paragraphs done so far at once.  Then one `done` event carrying the full job view, and "
        "the stream closes; paragraphs finished just before the end may come only in the "
        "`done` event's result.  An `error` event with a problem document ends the stream if "
        "the job store becomes unreachable."
    ),
    tags=["jobs"],
)
async def job_events(
    job_id: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
) -> ServerSentEvent:
    """``GET /jobs/{id}/events``."""
    checked, copy = await _mine(request, services, job_id)
    first = await find_view(services, checked, copy)
    if first is None:
        raise job_not_found(job_id)
    return ServerSentEvent(
        event_stream(services, await with_partial(services, first), copy),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def event_stream(
    services: Services, view: JobView, copy: SubmitterCopy | None = None
) -> AsyncIterator[ServerSentEventMessage]:
    """Progress and paragraph events while the job changes, then ``done`` (the job as
    ``copy``'s submitter sees it); polling keeps it replica-safe.  Each paragraph is sent
    once, even if a retry translates it again."""
    loop = asyncio.get_running_loop()
    last: tuple[JobStatus, Progress] | None = None
    last_sent = loop.time()
    sent: set[int] = set()
    while view.status not in TERMINAL:
        state = (view.status, view.progress)
        if state != last:
            last, last_sent = state, loop.time()
            yield _event("progress", {"status": view.status, "progress": view.progress})
        elif loop.time() - last_sent >= EVENTS_KEEPALIVE_S:
            last_sent = loop.time()
            yield ServerSentEventMessage(comment="keep-alive")
        for paragraph in _unsent(view.partial or [], sent):
            last_sent = loop.time()
            yield _event("translation", paragraph)
        await asyncio.sleep(EVENTS_POLL_INTERVAL_S)
        try:
            latest = await find_view(services, view.id, copy)
            if latest is not None:
                latest = await with_partial(services, latest)
        except Exception as exc:  # noqa: BLE001 - the stream has begun: report, then end it
            log.warning("event stream ended by an error", job=view.id[:12], error=repr(exc))
            yield _event("error", problem_for(exc).body())
            return
        if latest is None:
            yield _event("error", problem_for(job_not_found(view.id)).body())
            return
        view = latest
    yield _event("done", view)


def _unsent(paragraphs: list[TranslatedParagraph], sent: set[int]) -> list[TranslatedParagraph]:
    """The paragraphs not sent yet, in order; marks them sent."""
    fresh = [p for p in paragraphs if p.paragraph not in sent]
    sent.update(p.paragraph for p in fresh)
    return fresh


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
async def cancel_job(
    job_id: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
) -> Response[JobView]:
    """``DELETE /jobs/{id}``: 200 once canceled, 202 while a worker is still stopping it."""
    checked, copy = await _mine(request, services, job_id)
    outcome = await services.queue.cancel(checked)
    if outcome is None:
        if await services.results.get(job_id) is not None:
            raise _job_finished(job_id, JobStatus.SUCCEEDED)
        raise job_not_found(job_id)
    view = outcome.view
    if view.status != JobStatus.CANCELED:
        raise _job_finished(job_id, view.status)
    status_code = 202 if outcome.pending else 200
    log.info("job canceled", job=job_id[:12])
    return Response(personal(view, copy), status_code=status_code)


@get(
    "/jobs/{job_id:str}/deliveries",
    opt={RATE_BUCKET: READ_BUCKET},
    responses=problem_responses(401, 404, 429, 503),
    summary="The job's webhook delivery attempts, oldest first",
    description=(
        "Every attempt to every endpoint: time, HTTP status (if any), latency, a coarse error "
        "(`refused`, `connect_failed`, `tls_failed`, `timeout`, `transport_error`, "
        "`redirect_not_followed`, `http_410_gone`, `http_4xx`, `http_5xx`) and outcome "
        "(`delivered`, `failed`, `gone`).  Retries of one event share its `msg_id`."
    ),
    tags=["webhooks"],
)
async def list_deliveries(
    job_id: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
) -> list[AttemptRecord]:
    """``GET /jobs/{id}/deliveries``."""
    checked, _ = await _mine(request, services, job_id)
    attempts = await services.notifier.log.list(checked)
    if not attempts and await find_view(services, checked) is None:
        raise job_not_found(job_id)
    own = await services.notifier.own_message_ids(checked, _desk(request, services))
    return attempts if own is None else [a for a in attempts if a.msg_id in own]


@post(
    "/jobs/{job_id:str}/deliveries/redeliver",
    status_code=202,
    responses=problem_responses(401, 404, 409, 429, 503),
    summary="Send the job's webhook events again, with their original ids",
    tags=["webhooks"],
)
async def redeliver(
    job_id: FromPath[str], request: Request[Any, Any, Any], services: ServicesDep
) -> Redelivery:
    """``POST /jobs/{id}/deliveries/redeliver``: each endpoint gets the same body and id again."""
    checked, _ = await _mine(request, services, job_id)
    # Each redelivery sends every event of the job again: a loop of them would make this
    # service hammer its receivers, so a job gets a few a minute (a pending one is not
    # queued twice anyway).
    await services.limiter.check(f"redeliver:{checked}", REDELIVERIES_PER_MINUTE)
    await services.storage.check()
    scheduled = await services.notifier.redeliver(checked, owner=_desk(request, services))
    if scheduled == 0:
        if await find_view(services, checked) is None:
            raise job_not_found(job_id)
        raise ApiProblem(409, "no_deliveries", "this job has sent no webhook events yet")
    log.info("webhooks redelivered", job=checked[:12], deliveries=scheduled)
    return Redelivery(job_id=checked, scheduled=scheduled)


async def _mine(
    request: Request[Any, Any, Any], services: Services, job_id: str
) -> tuple[str, SubmitterCopy | None]:
    """The checked job id and what this caller attached to the job; 404 (as for a job that
    does not exist) when API keys are on and this caller never submitted it."""
    checked = checked_job_id(job_id)
    return checked, await submitter_copy(services, checked, owner_of(caller_of(request)))


def _desk(request: Request[Any, Any, Any], services: Services) -> str | None:
    """The caller as webhook deliveries name their submitter (None: an open API, where every
    caller sees every delivery)."""
    return owner_of(caller_of(request)) if services.api_keys.enabled else None


def _job_finished(job_id: str, status: JobStatus) -> ApiProblem:
    return ApiProblem(
        409,
        "job_finished",
        f"the job has already {status.value}",
        job_id=job_id,
        job_status=status.value,
    )
