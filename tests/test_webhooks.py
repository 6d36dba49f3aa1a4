"""Webhook deliveries against real HTTP receivers on loopback, and the delivery log in Redis.

Receivers (``tests/receivers.py``) are tiny HTTP/1.1 servers on 127.0.0.1 started per test by the
``receivers`` fixture; the client is the guarded one from ``make_client`` with 127.0.0.1
allow-listed, so the SSRF guard stays in the path.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import random
import socket
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.constants import Keys
from service.errors import WebhookConfigError
from service.webhooks import (
    MAX_EVENT_BYTES,
    AttemptOutcome,
    AttemptRecord,
    Delivery,
    DeliveryLog,
    DeliveryStatus,
    Outcome,
    WebhookSigner,
    attempt_delivery,
    build_event,
    generate_secret,
    make_client,
    next_delay,
    parse_retry_after,
)
from service.webhooks.ssrf import AllowList
from tests.receivers import Reply

if TYPE_CHECKING:
    from tests.conftest import Receivers

LOOPBACK_ONLY = AllowList(["127.0.0.1"])
SECRET = generate_secret()
SHORT_SCHEDULE = [0.0, 0.05, 0.05]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(LOOPBACK_ONLY, 2.0) as guarded:
        yield guarded


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner([SECRET])


def job_view(job_id: str = "job-1", status: str = "succeeded", **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "status": status, **extra}


async def run_delivery(
    client: httpx.AsyncClient,
    delivery: Delivery,
    body: bytes,
    signer: WebhookSigner,
    schedule: Sequence[float],
    *,
    timeout_s: float = 2.0,
    log: DeliveryLog | None = None,
) -> list[AttemptOutcome]:
    """What the queue will do, in-process: attempt, log, advance, wait, until done."""
    outcomes: list[AttemptOutcome] = []
    delay = next_delay(schedule, 1)
    while delay is not None:
        await asyncio.sleep(delay)
        outcome = await attempt_delivery(
            client,
            delivery.url,
            delivery.msg_id,
            body,
            signer,
            timeout_s=timeout_s,
            attempt=delivery.attempts + 1,
        )
        outcomes.append(outcome)
        if log is not None:
            await log.append(delivery.job_id, outcome.record)
        delay = delivery.advance(outcome, schedule)
        if delivery.status is DeliveryStatus.GONE and log is not None:
            await log.mark_gone(delivery.url)
    return outcomes


# --- signing and verification -----------------------------------------------------------------


async def test_delivery_verifies_with_the_receiver_side_library(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A receiver using the standardwebhooks library verifies what we send and gets the event."""
    receiver = await receivers()
    body = build_event("summary.succeeded", job_view(summary="Kurz."), link="https://k/jobs/job-1")
    outcome = await attempt_delivery(client, receiver.url, "msg_abc", body, signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED
    assert outcome.record.status_code == 204
    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "msg_abc"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "summary.succeeded"
    assert payload["data"] == job_view(summary="Kurz.")


def test_signature_is_hmac_sha256_over_id_timestamp_and_body(signer: WebhookSigner) -> None:
    """The header is ``v1,`` + base64(HMAC-SHA256(key, "id.timestamp.body")), per the spec."""
    body = '{"type":"summary.failed","ä":1}'.encode()
    headers = signer.sign("msg_1", 1_700_000_000, body)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(expected).decode(),
    }


async def test_tampered_body_fails_verification(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """Changing one byte of a delivered body makes verification fail at the receiver."""
    receiver = await receivers()
    body = build_event("summary.succeeded", job_view(), link="https://k/jobs/job-1")
    await attempt_delivery(client, receiver.url, "msg_t", body, signer, timeout_s=2.0)
    (request,) = receiver.requests
    Webhook(SECRET).verify(request.body, request.headers)
    tampered = request.body.replace(b"succeeded", b"succeedeD")
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError):
        signer.verify(tampered, request.headers)


def test_old_timestamps_fail_verification(signer: WebhookSigner) -> None:
    """A signature older than five minutes is refused (replay protection); a fresh one is not."""
    body = b'{"type":"summary.succeeded"}'
    now = dt.datetime.now(tz=dt.UTC)
    fresh = signer.sign("msg_1", now - dt.timedelta(minutes=4), body)
    stale = signer.sign("msg_1", now - dt.timedelta(minutes=6), body)
    Webhook(SECRET).verify(body, fresh)
    signer.verify(body, fresh)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, stale)
    with pytest.raises(WebhookVerificationError, match="too old"):
        signer.verify(body, stale)


def test_during_a_rotation_receivers_knowing_either_secret_verify_the_event() -> None:
    """Each secret signs (one signature each, space-separated, as Standard Webhooks allows), so
    a receiver still on the old secret and one already on the new both verify; a receiver with
    neither does not."""
    old, new = generate_secret(), generate_secret()
    sender = WebhookSigner.from_setting(f"{new},{old}")
    body = b'{"type":"summary.succeeded"}'
    headers = sender.sign("msg_r", int(dt.datetime.now(tz=dt.UTC).timestamp()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert WebhookSigner([old]).verify(body, headers) == {"type": "summary.succeeded"}
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(body, headers)


def test_malformed_signature_header_is_a_verification_error(signer: WebhookSigner) -> None:
    """Garbage in webhook-signature is refused as unverified, not as a crash."""
    body = b"{}"
    headers = signer.sign("msg_1", int(dt.datetime.now(tz=dt.UTC).timestamp()), body)
    headers["webhook-signature"] = "garbage-without-version"
    with pytest.raises(WebhookVerificationError):
        signer.verify(body, headers)


@pytest.mark.parametrize(
    "setting",
    [
        "",
        " , ",
        "not-a-whsec-secret-at-all-but-quite-long",
        "whsec_" + base64.b64encode(b"too short").decode(),
        "whsec_!!!not base64!!!",
    ],
)
def test_missing_or_weak_secret_refuses_deliveries(setting: str) -> None:
    """Without a usable secret the signer cannot be built; the error never echoes the secret."""
    with pytest.raises(WebhookConfigError) as caught:
        WebhookSigner.from_setting(setting)
    assert caught.value.code == "webhook_config"
    if setting.strip(" ,"):
        assert setting not in str(caught.value)


# --- the event body -------------------------------------------------------------------------


def test_event_body_has_type_utc_timestamp_and_data() -> None:
    """Events are {"type", "timestamp" (ISO-8601 UTC), "data"} with the job as data."""
    before = dt.datetime.now(tz=dt.UTC)
    body = build_event("summary.failed", job_view(status="failed"), link="https://k/jobs/job-1")
    event = msgspec.json.decode(body)
    assert set(event) == {"type", "timestamp", "data"}
    assert event["type"] == "summary.failed"
    stamp = dt.datetime.fromisoformat(event["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= stamp <= dt.datetime.now(tz=dt.UTC)
    assert event["data"] == job_view(status="failed")


async def test_large_result_is_sent_as_a_link(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 300 KiB result is replaced by id, status and a link; the small body still verifies."""
    receiver = await receivers()
    data = job_view(result={"translation": "x" * (300 * 1024)})
    link = "https://kurz.example/jobs/job-1"
    body = build_event("summary.succeeded", data, link=link)
    assert len(body) <= MAX_EVENT_BYTES
    outcome = await attempt_delivery(client, receiver.url, "msg_l", body, signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED
    payload = Webhook(SECRET).verify(receiver.requests[0].body, receiver.requests[0].headers)
    assert payload["data"] == {
        "id": "job-1",
        "status": "succeeded",
        "link": link,
        "truncated": True,
    }


def test_body_just_under_the_limit_is_sent_whole() -> None:
    """Only bodies over the limit are shortened; the limit is on the whole JSON body."""
    data = job_view(result={"translation": "x" * 1000})
    now = dt.datetime.now(tz=dt.UTC)
    whole = build_event("summary.succeeded", data, link="L", now=now)
    at_limit = build_event("summary.succeeded", data, link="L", max_bytes=len(whole), now=now)
    assert at_limit == whole
    over = build_event("summary.succeeded", data, link="L", max_bytes=len(whole) - 1, now=now)
    assert msgspec.json.decode(over)["data"]["link"] == "L"


# --- attempts and their classification ------------------------------------------------------


async def test_receiver_failing_twice_gets_three_attempts_with_one_webhook_id(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """Retries reuse the webhook-id (so receivers can de-duplicate) and stop at the first 2xx."""
    receiver = await receivers(lambda n: Reply(500 if n < 2 else 200))
    delivery = Delivery(job_id="job-1", url=receiver.url, event_type="summary.succeeded")
    body = build_event("summary.succeeded", job_view(), link="https://k/jobs/job-1")
    outcomes = await run_delivery(client, delivery, body, signer, SHORT_SCHEDULE)
    assert [o.record.status_code for o in outcomes] == [500, 500, 200]
    assert [o.record.attempt for o in outcomes] == [1, 2, 3]
    assert {r.headers["webhook-id"] for r in receiver.requests} == {delivery.msg_id}
    assert len(receiver.requests) == 3
    for request in receiver.requests:
        Webhook(SECRET).verify(request.body, request.headers)
    assert delivery.status is DeliveryStatus.DELIVERED
    assert delivery.attempts == 3


def test_delivery_state_survives_a_round_trip_through_json() -> None:
    """The queue can store a Delivery between attempts and get the same state back."""
    delivery = Delivery(job_id="job-1", url="https://hooks.example/x", event_type="summary.failed")
    delivery.attempts = 2
    restored = msgspec.json.decode(msgspec.json.encode(delivery), type=Delivery)
    assert restored == delivery
    assert restored.status is DeliveryStatus.PENDING
    assert (
        restored.msg_id.startswith("msg_")
        and restored.msg_id
        != Delivery(
            job_id="job-1", url="https://hooks.example/x", event_type="summary.failed"
        ).msg_id
    )


async def test_410_stops_retries(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 410 Gone ends the delivery after one attempt, with the endpoint marked gone."""
    receiver = await receivers(lambda n: Reply(410))
    delivery = Delivery(job_id="job-1", url=receiver.url, event_type="summary.succeeded")
    outcomes = await run_delivery(client, delivery, b"{}", signer, SHORT_SCHEDULE)
    assert [o.outcome for o in outcomes] == [Outcome.GONE]
    assert len(receiver.requests) == 1
    assert delivery.status is DeliveryStatus.GONE


async def test_exhausted_schedule_marks_the_delivery_failed(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """An endpoint that keeps failing gets one attempt per schedule entry, then it is failed."""
    receiver = await receivers(lambda n: Reply(500, body=b"database is down"))
    delivery = Delivery(job_id="job-1", url=receiver.url, event_type="summary.failed")
    outcomes = await run_delivery(client, delivery, b"{}", signer, SHORT_SCHEDULE)
    assert len(outcomes) == len(receiver.requests) == len(SHORT_SCHEDULE)
    assert delivery.status is DeliveryStatus.FAILED
    assert outcomes[-1].record.error == "http_5xx"
    assert outcomes[-1].detail == "HTTP 500: database is down"
    # What the receiver said goes to the server's log, not to the client's delivery log.
    assert b"database" not in msgspec.json.encode(outcomes[-1].record)
    with pytest.raises(ValueError, match="already failed"):
        delivery.advance(outcomes[-1], SHORT_SCHEDULE)


async def test_timeout_is_a_failed_attempt(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A receiver slower than the timeout costs one failed attempt, bounded by the timeout."""
    receiver = await receivers(lambda n: Reply(200, delay_s=3.0))
    outcome = await attempt_delivery(client, receiver.url, "msg_s", b"{}", signer, timeout_s=0.3)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.status_code is None
    assert outcome.record.error == "timeout"
    assert outcome.detail == "timed out after 0.3 s"
    assert 250 <= outcome.record.latency_ms < 2000


async def test_redirect_is_not_followed(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 302 is a failed attempt; the redirect target never sees a request."""
    target = await receivers()
    receiver = await receivers(
        lambda n: Reply(302, headers={"Location": target.url_for("/stolen")})
    )
    outcome = await attempt_delivery(client, receiver.url, "msg_r", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.status_code == 302
    assert outcome.record.error == "redirect_not_followed"
    assert outcome.detail is not None and "not followed" in outcome.detail
    assert len(receiver.requests) == 1
    assert target.connections == 0


@pytest.mark.parametrize("status", [301, 400, 404, 429, 500, 502, 503])
async def test_other_statuses_are_failed_attempts(
    status: int,
    receivers: Receivers,
    client: httpx.AsyncClient,
    signer: WebhookSigner,
) -> None:
    """3xx, 4xx other than 410, and 5xx are failed attempts that the schedule retries."""
    receiver = await receivers(lambda n: Reply(status))
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.status_code == status
    assert outcome.retry_after is None
    delivery = Delivery(job_id="j", url=receiver.url, event_type="summary.succeeded")
    assert delivery.advance(outcome, [0, 5, 300], rng=random.Random(1)) is not None


async def test_retry_after_on_503_is_honoured(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 503 with Retry-After delays the next attempt by at least that long."""
    receiver = await receivers(lambda n: Reply(503, headers={"Retry-After": "7"}))
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.retry_after == 7.0
    delivery = Delivery(job_id="j", url=receiver.url, event_type="summary.succeeded")
    assert delivery.advance(outcome, SHORT_SCHEDULE) == 7.0


async def test_retry_after_date_on_429_is_honoured(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 429 whose Retry-After is an HTTP date waits until about that date."""
    when = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    receiver = await receivers(lambda n: Reply(429, headers={"Retry-After": header}))
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.retry_after is not None and 115 <= outcome.retry_after <= 120


async def test_connection_refused_is_a_failed_attempt(
    client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """Nobody listening is a failed attempt with the connection error recorded."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.error == "connect_failed"
    assert outcome.detail is not None and outcome.detail.startswith("ConnectError")


async def test_endless_response_body_is_cut_off(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """An endless error body cannot hold the worker: reading stops after 64 KiB."""
    endless = Reply(500, chunks=10_000, chunk_size=16 * 1024, chunk_interval_s=0.01)
    receiver = await receivers(lambda n: endless)
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=3.0)
    assert outcome.record.status_code == 500
    assert outcome.record.latency_ms < 1500
    assert outcome.record.error == "http_5xx"
    assert outcome.detail is not None and len(outcome.detail) < 250
    await asyncio.sleep(0.1)
    assert receiver.bytes_streamed < 1024 * 1024


async def test_dripping_receiver_is_cut_off_at_the_timeout(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """The timeout bounds the whole attempt, not each read: a byte every 50 ms cannot stall it."""
    drip = Reply(500, chunks=200, chunk_size=1, chunk_interval_s=0.05)
    receiver = await receivers(lambda n: drip)
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=0.5)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.status_code == 500
    assert 450 <= outcome.record.latency_ms < 2000


async def test_2xx_counts_at_the_status_line(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """A 2xx is delivered as soon as it arrives; a slow or endless success body is not awaited."""
    slow = Reply(200, chunks=200, chunk_size=1, chunk_interval_s=0.05)
    receiver = await receivers(lambda n: slow)
    outcome = await attempt_delivery(client, receiver.url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED
    assert outcome.record.latency_ms < 1000


async def test_record_keeps_no_query_string(
    receivers: Receivers, client: httpx.AsyncClient, signer: WebhookSigner
) -> None:
    """Tokens in the callback's query string stay out of the stored attempt record."""
    receiver = await receivers()
    url = receiver.url_for("/hook?token=s3cret")
    outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert receiver.requests[0].path == "/hook?token=s3cret"
    assert outcome.record.endpoint == receiver.url_for("/hook")
    assert dt.datetime.fromisoformat(outcome.record.at).utcoffset() == dt.timedelta(0)


# --- retry timing ---------------------------------------------------------------------------


def test_next_delay_follows_the_schedule_with_jitter() -> None:
    """Each delay is the scheduled one ±10 %, varying between calls; past the end there is none."""
    schedule = [0, 5, 300]
    rng = random.Random(7)
    samples = [next_delay(schedule, 3, rng=rng) for _ in range(200)]
    values = [sample for sample in samples if sample is not None]
    assert len(values) == 200
    assert all(270 <= value <= 330 for value in values)
    assert len(set(values)) > 100
    assert min(values) < 285 and max(values) > 315
    assert next_delay(schedule, 4) is None


def test_zero_delays_stay_zero() -> None:
    """A scheduled immediate attempt is never pushed back by jitter."""
    assert {next_delay([0, 5], 1, rng=random.Random(seed)) for seed in range(50)} == {0.0}


def test_retry_after_is_a_floor_and_is_capped() -> None:
    """Retry-After beats a shorter scheduled delay, yields to a longer one; capped at a day."""
    assert next_delay([0, 5], 2, retry_after=60, jitter=0) == 60
    assert next_delay([0, 300], 2, retry_after=10, jitter=0) == 300
    assert next_delay([0, 5], 2, retry_after=10**9, jitter=0) == 24 * 3600
    assert next_delay([0, 5], 3, retry_after=60) is None
    with pytest.raises(ValueError):
        next_delay([0, 5], 0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date (a past date means now); junk is ignored."""
    assert parse_retry_after(header) == expected


def test_parse_retry_after_future_date() -> None:
    """An HTTP date in the future becomes the seconds until then."""
    now = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("Tue, 01 Jan 2030 12:01:30 GMT", now=now) == 90.0


# --- the delivery log in Redis --------------------------------------------------------------


@pytest.fixture
def delivery_log(redis: Redis, prefix: str) -> DeliveryLog:
    """A log under this test's own prefix (whose keys are deleted afterwards)."""
    return DeliveryLog(redis, Keys(prefix))


def record(attempt: int, outcome: Outcome = Outcome.FAILED) -> AttemptRecord:
    return AttemptRecord(
        msg_id="msg_1",
        endpoint="https://hooks.example/x",
        attempt=attempt,
        at="2030-01-01T00:00:00.000+00:00",
        status_code=500 if outcome is Outcome.FAILED else 200,
        latency_ms=12.5,
        error="HTTP 500" if outcome is Outcome.FAILED else None,
        outcome=outcome,
    )


@pytest.mark.redis
async def test_delivery_log_keeps_attempts_per_job_for_30_days(
    delivery_log: DeliveryLog, redis: Redis
) -> None:
    """Attempts come back in order, per job, under <prefix>:deliveries:<job> with a 30-day TTL."""
    await delivery_log.append("job-a", record(1))
    await delivery_log.append("job-a", record(2, Outcome.DELIVERED))
    await delivery_log.append("job-b", record(1))
    assert await delivery_log.list("job-a") == [record(1), record(2, Outcome.DELIVERED)]
    assert await delivery_log.list("job-b") == [record(1)]
    assert await delivery_log.list("job-none") == []
    key = f"{delivery_log.keys.prefix}:deliveries:job-a"
    assert delivery_log.key("job-a") == key
    ttl = await redis.ttl(key)
    assert 29 * 24 * 3600 < ttl <= 30 * 24 * 3600


@pytest.mark.redis
async def test_gone_marks_are_stored_and_cleared(delivery_log: DeliveryLog) -> None:
    """An endpoint marked gone stays gone (per URL) until cleared."""
    url = "https://hooks.example/gone"
    assert not await delivery_log.is_gone(url)
    await delivery_log.mark_gone(url)
    assert await delivery_log.is_gone(url)
    assert not await delivery_log.is_gone("https://hooks.example/other")
    await delivery_log.clear_gone(url)
    assert not await delivery_log.is_gone(url)


@pytest.mark.redis
async def test_retried_delivery_is_logged_attempt_by_attempt(
    receivers: Receivers,
    client: httpx.AsyncClient,
    signer: WebhookSigner,
    delivery_log: DeliveryLog,
) -> None:
    """A full retried delivery leaves one record per attempt; a 410 leaves a gone mark."""
    flaky = await receivers(lambda n: Reply(503 if n == 0 else 200))
    gone = await receivers(lambda n: Reply(410))
    first = Delivery(job_id="job-1", url=flaky.url, event_type="summary.succeeded")
    second = Delivery(job_id="job-1", url=gone.url, event_type="summary.succeeded")
    await run_delivery(client, first, b"{}", signer, SHORT_SCHEDULE, log=delivery_log)
    await run_delivery(client, second, b"{}", signer, SHORT_SCHEDULE, log=delivery_log)
    records = await delivery_log.list("job-1")
    assert [(r.msg_id, r.attempt, r.status_code, r.outcome) for r in records] == [
        (first.msg_id, 1, 503, Outcome.FAILED),
        (first.msg_id, 2, 200, Outcome.DELIVERED),
        (second.msg_id, 1, 410, Outcome.GONE),
    ]
    assert await delivery_log.is_gone(gone.url)
    assert not await delivery_log.is_gone(flaky.url)
