"""A running job's translation so far through the API: ``partial`` on ``GET /jobs/{id}`` and
``translation`` events on ``GET /jobs/{id}/events``.

No worker runs here: the test plays the worker, writing the job's state and its paragraphs to
Redis the way a worker does, and reads the event stream one event at a time (the generator
itself, so each step follows the last without sleeping).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis

from service.api.app import create_app
from service.api.jobs import event_stream, with_partial
from service.api.services import Services
from service.constants import Keys
from service.queue import JobQueue, Status
from service.schemas import AlignedSentence, TranslatedParagraph
from service.settings import Settings
from tests.test_api import GERMAN, a_result, finish

if TYPE_CHECKING:
    from tests.conftest import AppServer

pytestmark = pytest.mark.redis


@pytest.fixture
def queue(redis: Redis, prefix: str) -> JobQueue:
    """The job queue as the worker sees it."""
    return JobQueue(redis, Keys(prefix))


def paragraph(index: int, english: str) -> TranslatedParagraph:
    return TranslatedParagraph(
        paragraph=index,
        first_sentence=index,
        sentences=[AlignedSentence(de=f"Absatz {index}.", en=english, paragraph=index)],
    )


async def next_event(stream: AsyncIterator[ServerSentEventMessage]) -> tuple[str, Any]:
    """The stream's next named event and its decoded data (keep-alive comments skipped)."""
    async for message in stream:
        if message.event:
            assert isinstance(message.data, str)
            return message.event, json.loads(message.data)
    raise AssertionError("the stream ended")


async def start_running(queue: JobQueue, job_id: str) -> None:
    """Mark the job as a worker does when its first attempt begins."""
    job = await queue.get(job_id)
    assert job is not None
    job.attempts = 1
    job.meta["progress"] = {"stage": "translate", "done": 3, "total": 9}
    await job.update(meta=job.meta, status=Status.ACTIVE, attempts=1)


async def test_running_job_shows_and_streams_its_paragraphs_then_the_result(
    make_settings: Callable[..., Settings],
    redis: Redis,
    queue: JobQueue,
    serve_app: AppServer,
) -> None:
    """Queued: no ``partial``.  Running: ``partial`` in paragraph order, and a late stream gets
    the paragraphs done so far, then each new one once, then ``done`` without ``partial``."""
    app = create_app(make_settings(), redis=redis)
    client = await serve_app(app)
    job_id = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
    services: Services = app.state.services
    queued = (await client.get(f"/jobs/{job_id}")).json()
    assert queued["status"] == "queued" and "partial" not in queued

    await start_running(queue, job_id)
    running = (await client.get(f"/jobs/{job_id}")).json()
    assert running["status"] == "running" and running["partial"] == []
    await services.partials.add(job_id, 1, [paragraph(2, "Third."), paragraph(0, "First.")])
    running = (await client.get(f"/jobs/{job_id}")).json()
    assert [p["paragraph"] for p in running["partial"]] == [0, 2]
    assert running["partial"][0] == msgspec.to_builtins(paragraph(0, "First."))

    view = await services.queue.view(job_id)
    assert view is not None
    stream = event_stream(services, await with_partial(services, view))
    assert await next_event(stream) == (
        "progress",
        {"status": "running", "progress": {"stage": "translate", "done": 3, "total": 9}},
    )
    assert await next_event(stream) == ("translation", msgspec.to_builtins(paragraph(0, "First.")))
    assert await next_event(stream) == ("translation", msgspec.to_builtins(paragraph(2, "Third.")))
    await services.partials.add(job_id, 1, [paragraph(1, "Second."), paragraph(2, "Third.")])
    assert await next_event(stream) == (
        "translation",
        msgspec.to_builtins(paragraph(1, "Second.")),
    )
    await finish(queue, job_id, a_result())
    name, done = await next_event(stream)
    assert name == "done" and done["status"] == "succeeded" and "partial" not in done
    finished = (await client.get(f"/jobs/{job_id}")).json()
    assert finished["status"] == "succeeded" and "partial" not in finished


async def test_a_retried_job_shows_only_its_current_attempts_paragraphs(
    make_settings: Callable[..., Settings],
    redis: Redis,
    queue: JobQueue,
    serve_app: AppServer,
) -> None:
    """Paragraphs written by an earlier attempt are not in a retried job's ``partial``."""
    app = create_app(make_settings(), redis=redis)
    client = await serve_app(app)
    job_id = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
    services: Services = app.state.services
    await start_running(queue, job_id)
    await services.partials.add(job_id, 1, [paragraph(0, "From the crashed attempt.")])
    job = await queue.get(job_id)
    assert job is not None
    await job.update(attempts=2)
    await services.partials.add(job_id, 2, [paragraph(1, "From the retry.")])
    running = (await client.get(f"/jobs/{job_id}")).json()
    assert [p["sentences"][0]["en"] for p in running["partial"]] == ["From the retry."]


def test_the_schema_documents_partial_and_translation_events() -> None:
    """The OpenAPI document describes ``partial`` on the job and the ``translation`` event."""
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    document = app.openapi_schema.to_schema()
    job = document["components"]["schemas"]["JobView"]["properties"]["partial"]
    assert "running" in job["description"]
    assert "TranslatedParagraph" in json.dumps(job)
    events = document["paths"]["/jobs/{job_id}/events"]["get"]
    assert "`translation`" in events["description"]
