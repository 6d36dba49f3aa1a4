"""Desks sharing one deployment: a job belongs to the keys that submitted it.

A job's id is a digest of public inputs, so knowing an article is enough to name its job.  With
API keys on, every job endpoint answers a key that never submitted the job as if the job did not
exist (404), and keys that submitted the same article share its job but each see only what they
attached to it (``external_id``, ``metadata``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from service.api.app import create_app
from service.api.keys import key_digest
from service.constants import Keys
from service.queue import JobQueue
from service.settings import Settings
from service.webhooks.delivery import AttemptRecord, Outcome
from service.webhooks.events import now_iso
from service.webhooks.notifier import Notifier, StoredDelivery
from tests.conftest import AppServer
from tests.test_api import GERMAN, a_result, announce_models, assert_problem, finish

pytestmark = pytest.mark.redis

SPORT = "s" * 40
POLITIK = "p" * 40


def key(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_another_desk_cannot_read_cancel_or_redeliver_a_job(
    make_settings: Callable[..., Settings], serve_app: AppServer, redis: object, prefix: str
) -> None:
    """Every job endpoint answers 404 to a key that did not submit the job, and 404 is what
    it answers for a job that does not exist: nothing tells the two apart."""
    await announce_models(redis, prefix)  # type: ignore[arg-type]
    client = await serve_app(create_app(make_settings(api_keys=[SPORT, POLITIK])))
    body = {"text": GERMAN, "external_id": "sport-1", "metadata": {"desk": "sport"}}
    submitted = await client.post("/summarize", json=body, headers=key(SPORT))
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    calls: list[tuple[str, str]] = [
        ("GET", f"/jobs/{job}"),
        ("GET", f"/jobs/{job}/events"),
        ("GET", f"/jobs/{job}/deliveries"),
        ("POST", f"/jobs/{job}/deliveries/redeliver"),
        ("DELETE", f"/jobs/{job}"),
    ]
    for method, path in calls:
        other = await client.request(method, path, headers=key(POLITIK))
        assert_problem(other, 404, "job_not_found")
        missing = await client.request(method, path.replace(job, "0" * 64), headers=key(SPORT))
        assert_problem(missing, 404, "job_not_found")
    own = await client.get(f"/jobs/{job}", headers=key(SPORT))
    assert own.status_code == 200 and own.json()["status"] == "queued"
    assert own.json()["external_id"] == "sport-1"


async def test_desks_sharing_an_article_each_see_their_own_attachments(
    make_settings: Callable[..., Settings], serve_app: AppServer, redis: object, prefix: str
) -> None:
    """The same article from two desks is one job; each desk's views carry its own
    ``external_id`` and metadata, never the other's."""
    await announce_models(redis, prefix)  # type: ignore[arg-type]
    client: httpx.AsyncClient = await serve_app(
        create_app(make_settings(api_keys=[SPORT, POLITIK]))
    )
    sport = await client.post(
        "/summarize",
        json={"text": GERMAN, "external_id": "sport-1", "metadata": {"desk": "sport"}},
        headers=key(SPORT),
    )
    politik = await client.post(
        "/summarize",
        json={"text": GERMAN, "external_id": "pol-9", "metadata": {"desk": "politik"}},
        headers=key(POLITIK),
    )
    assert sport.json()["id"] == politik.json()["id"]
    job = sport.json()["id"]
    for desk, external_id, metadata in ((SPORT, "sport-1", "sport"), (POLITIK, "pol-9", "politik")):
        view = (await client.get(f"/jobs/{job}", headers=key(desk))).json()
        assert view["external_id"] == external_id
        assert view["metadata"] == {"desk": metadata}
        canceled = await client.delete(f"/jobs/{job}", headers=key(desk))
        assert canceled.json()["external_id"] == external_id


async def test_without_keys_every_caller_reads_every_job(
    make_settings: Callable[..., Settings], serve_app: AppServer, redis: object, prefix: str
) -> None:
    """An open deployment has one public caller: jobs read as before, as stored."""
    await announce_models(redis, prefix)  # type: ignore[arg-type]
    client = await serve_app(create_app(make_settings()))
    submitted = await client.post("/summarize", json={"text": GERMAN, "external_id": "a"})
    view = await client.get(f"/jobs/{submitted.json()['id']}")
    assert view.status_code == 200 and view.json()["external_id"] == "a"


async def test_desks_sharing_a_job_each_get_their_own_webhook_event(
    make_settings: Callable[..., Settings], serve_app: AppServer, redis: Redis, prefix: str
) -> None:
    """Two desks send one article with callbacks (to the same receiver, even): when the job
    ends, each desk's event carries its own ``external_id``, metadata and name, under an id of
    its own, so neither body overwrites the other; each desk lists and redelivers only its
    own deliveries."""
    await announce_models(redis, prefix)
    settings = make_settings(api_keys=[SPORT, POLITIK])
    client = await serve_app(create_app(settings))
    url = "https://hooks.example.com/desks"
    for desk, external_id in ((SPORT, "sport-1"), (POLITIK, "pol-9")):
        body = {
            "text": GERMAN,
            "external_id": external_id,
            "metadata": {"desk": external_id},
            "callback_url": url,
        }
        submitted = await client.post("/summarize", json=body, headers=key(desk))
        assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    queue = JobQueue(redis, Keys(prefix))
    await finish(queue, job, a_result())
    view = await queue.view(job)
    assert view is not None
    notifier = Notifier.from_settings(settings, redis, queue, signing=False)
    assert await notifier.announce(view) == 2  # as the worker does when the job ends

    stored = await redis.hgetall(Keys(prefix).deliveries_state(job))  # type: ignore[misc]
    events: dict[str, tuple[str, dict[str, Any]]] = {}
    for raw in stored.values():
        record = msgspec.json.decode(raw, type=StoredDelivery)
        data = json.loads(record.body)["data"]
        events[data["external_id"]] = (record.delivery.msg_id, data)
    assert sorted(events) == ["pol-9", "sport-1"]
    for desk, external_id in ((SPORT, "sport-1"), (POLITIK, "pol-9")):
        _, data = events[external_id]
        assert data["metadata"] == {"desk": external_id}
        assert data["submitted_by"] == key_digest(desk)
    assert events["sport-1"][0] != events["pol-9"][0]

    for msg_id, _ in events.values():
        await notifier.log.append(job, delivered(msg_id, url))
    listed = await client.get(f"/jobs/{job}/deliveries", headers=key(SPORT))
    assert [a["msg_id"] for a in listed.json()] == [events["sport-1"][0]]
    again = await client.post(f"/jobs/{job}/deliveries/redeliver", headers=key(POLITIK))
    assert again.status_code == 202 and again.json()["scheduled"] == 1


def delivered(msg_id: str, url: str) -> AttemptRecord:
    return AttemptRecord(
        msg_id=msg_id,
        endpoint=url,
        attempt=1,
        at=now_iso(),
        status_code=204,
        latency_ms=3.0,
        error=None,
        outcome=Outcome.DELIVERED,
    )
