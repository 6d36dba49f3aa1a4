"""The HTTP API against a real Redis: validation, jobs, caching, limits, health, metrics, schema.

Every test uses its own key prefix in the test Redis (DB 14 unless KURZGEFASST_TEST_REDIS_URL says
otherwise) and deletes only its own keys afterwards.  No worker runs here: where a test needs the
worker side (a finished job, a heartbeat, the models record, the stats hash) it writes that to
Redis itself, the way the worker would.

Most tests use Litestar's ``AsyncTestClient``.  It runs the app on a thread of its own and each
request blocks the calling event loop until the response is complete, so requests sent with
``asyncio.gather`` are in fact served one after another, and nothing in the test's loop runs
while a request waits.  Tests that need requests (or a simulated worker) to overlap therefore
drive the ASGI app in the test's own loop with the ``serve_app`` fixture (``httpx.ASGITransport``
and ``app.lifespan()``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.api.app import create_app
from service.api.problems import problem_for
from service.constants import Keys
from service.errors import ConfigError
from service.presets import PresetRegistry
from service.queue import JobQueue, Status
from service.schemas import ModelInfo, Result
from service.settings import ROOT, Settings
from service.store.cache import ResultCache, result_key
from service.store.workers import WorkerRegistry
from service.text.glossary_files import load_default_glossary
from tests.processes import environ_without_kurz

if TYPE_CHECKING:
    from tests.conftest import AppServer, RedisServers

pytestmark = pytest.mark.redis

SEEDS = ROOT / "seeds"
GERMAN = (SEEDS / "000_1e1de29cccfa5500.txt").read_text(encoding="utf-8")
OTHER_GERMAN = (SEEDS / "001_81d73fe107ac92a6.txt").read_text(encoding="utf-8")
ENGLISH = (
    "The city council met on Tuesday evening to discuss the new budget for public transport.\n\n"
    "Several members argued that bus fares should stay the same for another year, while others "
    "wanted to invest more in cycling lanes across the northern districts."
)
WORKER_MODELS = {
    "translation": ModelInfo("Helsinki-NLP/opus-mt-de-en", "abc123", "transformers", "float32"),
    "summarization": ModelInfo(
        "sshleifer/distilbart-cnn-12-6", "def456", "transformers", "float32"
    ),
}
PROBLEM_JSON = "application/problem+json"
ALPHA_KEY = "alpha-key-0123456789abcdef0123456789"
BETA_KEY = "beta-key-0123456789abcdef0123456789"


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An open API (no keys, no rate limit) on this test's prefix."""
    async with AsyncTestClient(create_app(make_settings())) as test_client:
        yield test_client


@pytest.fixture
def queue(redis: Redis, prefix: str) -> JobQueue:
    """The job queue as the worker sees it, to inspect and finish jobs by hand."""
    return JobQueue(redis, Keys(prefix))


def a_result(**changes: Any) -> Result:
    """A plausible finished result, as a worker stores it."""
    values: dict[str, Any] = {
        "title_en": None,
        "translation": "Putin sends a surprising proposal.",
        "summary": "Russia has resumed talks with the United States.",
        "style": "standard",
        "source_language": "de",
        "german_share": 1.0,
        "sentences_in": 1,
        "sentences_translated": 1,
        "sentences_from_cache": 0,
        "alignment": [],
        "models": WORKER_MODELS,
        "timings_ms": {"translate_ms": 10.0},
        "summary_chunks": 1,
        "summary_rounds": 1,
    }
    values.update(changes)
    return Result(**values)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith(f"/problems/{code}")
    assert body["title"] and body["detail"]
    return body


async def announce_models(redis: Redis, prefix: str) -> None:
    """Write the models record a worker writes at start-up."""
    await redis.set(Keys(prefix).models(), msgspec.json.encode(WORKER_MODELS))


async def heartbeat(redis: Redis, prefix: str, worker_id: str = "worker-1") -> None:
    """Beat as a live worker does (its record and its entry among the live workers)."""
    await WorkerRegistry(redis, Keys(prefix)).beat(worker_id, WORKER_MODELS)


def expected_key(text: str, style: str = "standard") -> str:
    """The job id the API gives ``text`` once the worker models are announced (with the
    server's default glossary, which a request that names none gets)."""
    preset = PresetRegistry.from_directory(ROOT / "prompts").get(style)
    glossary = load_default_glossary(ROOT / "glossaries")
    assert glossary is not None
    return result_key(
        text=text,
        title=None,
        style=style,
        style_digest=preset.digest,
        models=WORKER_MODELS,
        glossary=(glossary.glossary_id, glossary.digest),
    )


async def finish(queue: JobQueue, job_id: str, result: Result) -> None:
    """Complete a job as a worker does: result cached, job marked complete."""
    job = await queue.get(job_id)
    assert job is not None
    await ResultCache(queue.redis, queue.keys, 3600).put(job_id, result)
    await queue.saq.finish(job, Status.COMPLETE, result=msgspec.to_builtins(result))


async def wait_until_queued(queue: JobQueue, job_id: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await queue.get(job_id) is None:
        assert time.monotonic() < deadline, "the job was never enqueued"
        await asyncio.sleep(0.02)


# --- submitting -----------------------------------------------------------------------------------


async def test_submit_answers_202_with_location_and_retry_after(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """A new article is queued: 202, Location of the job, Retry-After, and links to follow."""
    response = await client.post("/summarize", json={"text": GERMAN})
    assert response.status_code == 202
    body = response.json()
    assert len(body["id"]) == 64
    assert body["status"] == "queued"
    assert response.headers["location"] == f"/jobs/{body['id']}"
    assert response.headers["retry-after"] == "2"
    assert body["links"] == {"self": f"/jobs/{body['id']}", "events": f"/jobs/{body['id']}/events"}
    assert await queue.depth() == 1


async def test_get_job_shows_a_queued_job_with_its_metadata(
    client: AsyncTestClient[Litestar],
) -> None:
    """GET /jobs/{id} shows the queued job, with the client's external id and metadata."""
    submitted = await client.post(
        "/summarize",
        json={"text": GERMAN, "external_id": "cms-1", "metadata": {"desk": "politics", "n": 3}},
    )
    response = await client.get(submitted.headers["location"])
    assert response.status_code == 200
    view = response.json()
    assert view["id"] == submitted.json()["id"]
    assert view["status"] == "queued"
    assert view["progress"] == {"stage": "queued", "done": 0, "total": 0}
    assert view["external_id"] == "cms-1"
    assert view["metadata"] == {"desk": "politics", "n": 3}


async def test_title_and_style_change_the_job(client: AsyncTestClient[Litestar]) -> None:
    """The same text with another style or title is a different job; the default style is named."""
    plain = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
    default = (await client.post("/summarize", json={"text": GERMAN, "style": "standard"})).json()
    brief = (await client.post("/summarize", json={"text": GERMAN, "style": "brief"})).json()
    titled = (await client.post("/summarize", json={"text": GERMAN, "title": "Putin"})).json()
    assert default["id"] == plain
    assert len({plain, brief["id"], titled["id"]}) == 3


BAD_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    ("empty text", {"json": {"text": "  \n\n \t "}}, 422, "empty_text"),
    ("unknown style", {"json": {"text": GERMAN, "style": "poem"}}, 422, "unknown_style"),
    ("english text", {"json": {"text": ENGLISH}}, 422, "not_german"),
    (
        "malformed json",
        {"content": b'{"text": "Hallo', "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
    ),
    (
        "empty body",
        {"content": b"", "headers": {"content-type": "application/json"}},
        400,
        "malformed_json",
    ),
    ("text not a string", {"json": {"text": 42}}, 400, "invalid_body"),
    ("unknown field", {"json": {"text": GERMAN, "stlye": "brief"}}, 400, "invalid_body"),
    ("body not an object", {"json": [GERMAN]}, 400, "invalid_body"),
    (
        "external id too long",
        {"json": {"text": GERMAN, "external_id": "x" * 201}},
        400,
        "invalid_body",
    ),
    (
        "too much metadata",
        {"json": {"text": GERMAN, "metadata": {f"k{i}": i for i in range(51)}}},
        400,
        "invalid_body",
    ),
    (
        "metadata value a list",
        {"json": {"text": GERMAN, "metadata": {"tags": ["a"]}}},
        400,
        "invalid_body",
    ),
    (
        "plain text body",
        {"content": GERMAN.encode(), "headers": {"content-type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "wait too long",
        {"json": {"text": GERMAN}, "params": {"wait": "61"}},
        400,
        "invalid_parameter",
    ),
    (
        "wait not a number",
        {"json": {"text": GERMAN}, "params": {"wait": "soon"}},
        400,
        "invalid_parameter",
    ),
]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_requests_are_problems_and_queue_nothing(
    client: AsyncTestClient[Litestar],
    queue: JobQueue,
    request_kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    """Each kind of bad request gets its status and stable code as problem+json; nothing queued."""
    response = await client.post("/summarize", **request_kwargs)
    assert_problem(response, status, code)
    assert await queue.depth() == 0


async def test_problems_name_what_is_wrong(client: AsyncTestClient[Litestar]) -> None:
    """Problems carry the details a client needs: known styles, detected language, bad field."""
    style = assert_problem(
        await client.post("/summarize", json={"text": GERMAN, "style": "poem"}),
        422,
        "unknown_style",
    )
    assert style["known_styles"] == ["brief", "bullets", "headline", "standard"]
    language = assert_problem(
        await client.post("/summarize", json={"text": ENGLISH}), 422, "not_german"
    )
    assert language["detected_language"] == "en"
    field = assert_problem(
        await client.post("/summarize", json={"text": GERMAN, "external_id": 7}),
        400,
        "invalid_body",
    )
    assert field["field"] == "external_id"


async def test_non_german_text_is_accepted_when_allowed(client: AsyncTestClient[Litestar]) -> None:
    """allow_non_german lets an English article through to the queue."""
    response = await client.post("/summarize", json={"text": ENGLISH, "allow_non_german": True})
    assert response.status_code == 202


async def test_text_over_the_character_limit_is_413(
    make_settings: Callable[..., Settings],
) -> None:
    """An article longer than max_text_chars is refused with 413 text_too_long and the limit."""
    app = create_app(make_settings(max_text_chars=1000))
    async with AsyncTestClient(app) as client:
        response = await client.post("/summarize", json={"text": GERMAN})
    body = assert_problem(response, 413, "text_too_long")
    assert body["limit"] == 1000
    assert body["length"] == len(GERMAN)


async def test_body_over_the_byte_limit_is_413_announced_or_streamed(
    make_settings: Callable[..., Settings], redis: Redis, serve_app: AppServer
) -> None:
    """A body over max_body_bytes is refused with 413, by Content-Length or while streaming."""
    body = msgspec.json.encode({"text": GERMAN})
    assert len(body) > 2048
    json_headers = {"content-type": "application/json"}

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    async with AsyncTestClient(create_app(make_settings(max_body_bytes=2048))) as client:
        announced = await client.post("/summarize", content=body, headers=json_headers)
    # Litestar's test transport cannot stream a request body; httpx's ASGI transport can.
    c = await serve_app(create_app(make_settings(max_body_bytes=2048), redis=redis))
    streamed = await c.post("/summarize", content=chunks(), headers=json_headers)
    assert_problem(announced, 413, "body_too_large")
    assert "content-length" not in streamed.request.headers
    assert_problem(streamed, 413, "body_too_large")


async def test_callback_url_to_a_private_address_is_refused(
    client: AsyncTestClient[Litestar],
) -> None:
    """A callback URL pointing inside the network is refused before anything is queued."""
    pytest.importorskip("service.webhooks.ssrf")
    for url in (
        "http://127.0.0.1:6379/",
        "http://169.254.169.254/latest",
        "file:///etc/passwd",
        "https://hooks.example.com:8443/kurz",  # a public host, but not on port 80 or 443
    ):
        response = await client.post("/summarize", json={"text": GERMAN, "callback_url": url})
        assert_problem(response, 422, "callback_url_refused")
    accepted = await client.post(
        "/summarize", json={"text": GERMAN, "callback_url": "https://hooks.example.com/kurz"}
    )
    assert accepted.status_code == 202


async def test_callbacks_need_a_signing_secret(make_settings: Callable[..., Settings]) -> None:
    """Without KURZ_WEBHOOK_SECRET a callback could never be sent, so it is refused up front."""
    async with AsyncTestClient(create_app(make_settings(webhook_secret=""))) as client:
        response = await client.post(
            "/summarize", json={"text": GERMAN, "callback_url": "https://hooks.example.com/k"}
        )
        assert_problem(response, 422, "webhooks_not_configured")


async def test_callback_is_registered_for_the_job(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str
) -> None:
    """Each request's callback URL is remembered with the (shared) job, for the worker."""
    urls = ["https://hooks.example.com/a", "https://hooks.example.com/b"]
    ids = set()
    for url in urls:
        response = await client.post("/summarize", json={"text": GERMAN, "callback_url": url})
        assert response.status_code == 202
        ids.add(response.json()["id"])
    [job_id] = ids
    stored = await redis.smembers(Keys(prefix).callbacks(job_id))
    assert sorted(bytes(u).decode() for u in stored) == urls


async def test_cache_hit_with_callback_schedules_one_delivery(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str, queue: JobQueue
) -> None:
    """A cached answer still tells the caller's callback URL, as a queued delivery job."""
    first = await client.post("/summarize", json={"text": GERMAN})
    job_id = first.json()["id"]
    await ResultCache(redis, Keys(prefix), 60).put(job_id, a_result())
    url = "https://hooks.example.com/cached"
    hit = await client.post("/summarize", json={"text": GERMAN, "callback_url": url})
    assert hit.status_code == 200
    deliveries = [j async for j in queue.deliveries.iter_jobs() if j.function == "deliver_webhook"]
    assert len(deliveries) == 1
    assert deliveries[0].kwargs is not None
    assert deliveries[0].kwargs["delivery"]["url"] == url
    # The job names the delivery; the event body is stored once, beside it, not in the job.
    assert "body" not in deliveries[0].kwargs
    stored = await redis.hget(  # type: ignore[misc]
        Keys(prefix).deliveries_state(job_id), deliveries[0].kwargs["delivery"]["msg_id"]
    )
    assert stored is not None and b"summary.succeeded" in stored


async def test_a_caller_may_register_a_few_callbacks_per_job(
    make_settings: Callable[..., Settings], redis: Redis, prefix: str
) -> None:
    """Each callback URL is one more POST of the job's event: a key gets a few per job (a URL
    it sent before does not count again), and another key has its own allowance."""
    await announce_models(redis, prefix)
    app = create_app(make_settings(api_keys=[ALPHA_KEY, BETA_KEY], max_callbacks_per_job=2))

    def body(n: int) -> dict[str, Any]:
        return {"text": GERMAN, "callback_url": f"https://hooks.example.com/{n}"}

    alpha, beta = {"X-API-Key": ALPHA_KEY}, {"X-API-Key": BETA_KEY}
    async with AsyncTestClient(app) as client:
        taken = [await client.post("/summarize", json=body(n), headers=alpha) for n in (1, 2, 1)]
        refused = await client.post("/summarize", json=body(3), headers=alpha)
        other = await client.post("/summarize", json=body(3), headers=beta)
    assert [r.status_code for r in taken] == [202, 202, 202]
    assert assert_problem(refused, 422, "too_many_callbacks")["limit"] == 2
    assert other.status_code == 202
    stored = await redis.smembers(Keys(prefix).callbacks(taken[0].json()["id"]))  # type: ignore[misc]
    assert len(stored) == 3


async def test_redelivery_is_queued_once_while_pending_and_limited_per_job(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str, queue: JobQueue
) -> None:
    """Asking again while a redelivery waits queues nothing more; past a few a minute the job's
    redeliveries are refused, so a loop cannot make the service hammer its receivers."""
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 50:  # keep all requests inside one fixed window
        await asyncio.sleep(60 - seconds_into_minute + 0.1)
    first = await client.post("/summarize", json={"text": GERMAN})
    job_id = first.json()["id"]
    await ResultCache(redis, Keys(prefix), 60).put(job_id, a_result())
    url = "https://hooks.example.com/again"
    await client.post("/summarize", json={"text": GERMAN, "callback_url": url})
    answers = [await client.post(f"/jobs/{job_id}/deliveries/redeliver") for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    assert_problem(answers[5], 429, "rate_limited")
    keys = [j.key async for j in queue.deliveries.iter_jobs() if j.function == "deliver_webhook"]
    assert len(keys) == 2, keys  # the first attempt, and one redelivery


async def test_delivery_log_and_redelivery_endpoints(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str
) -> None:
    """Deliveries list as [] for a job without any; redelivery is 409 then, 404 for no job."""
    job_id = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
    listed = await client.get(f"/jobs/{job_id}/deliveries")
    assert listed.status_code == 200
    assert listed.json() == []
    assert_problem(await client.post(f"/jobs/{job_id}/deliveries/redeliver"), 409, "no_deliveries")
    unknown = "f" * 64
    assert_problem(await client.get(f"/jobs/{unknown}/deliveries"), 404, "job_not_found")
    assert_problem(await client.post(f"/jobs/{unknown}/deliveries/redeliver"), 404, "job_not_found")


async def test_identical_concurrent_posts_share_one_job(
    make_settings: Callable[..., Settings], redis: Redis, queue: JobQueue, serve_app: AppServer
) -> None:
    """Twenty identical requests at once get the same job id, and the queue holds one job."""
    client = await serve_app(create_app(make_settings(), redis=redis))
    responses = await asyncio.gather(
        *(client.post("/summarize", json={"text": GERMAN}) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await queue.depth() == 1
    assert await queue.saq.count("incomplete") == 1


async def test_queue_full_is_429_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    """Beyond max_queue_depth waiting jobs new articles get 429 queue_full and Retry-After."""
    app = create_app(make_settings(max_queue_depth=1))
    async with AsyncTestClient(app) as client:
        first = await client.post("/summarize", json={"text": GERMAN})
        second = await client.post("/summarize", json={"text": OTHER_GERMAN})
        same_again = await client.post("/summarize", json={"text": GERMAN})
    assert first.status_code == 202
    assert_problem(second, 429, "queue_full")
    assert int(second.headers["retry-after"]) > 0
    # Joining the queued job adds nothing to the queue, so it is not refused.
    assert same_again.status_code == 202
    assert same_again.json()["id"] == first.json()["id"]


# --- idempotency ----------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_same_job(
    make_settings: Callable[..., Settings], redis: Redis, prefix: str
) -> None:
    """A retry with the same Idempotency-Key and body gets the first job, even if keys moved on."""
    headers = {"Idempotency-Key": "retry-me-1"}
    # Models read on every request (KURZ_MODELS_REFRESH_S=0), so the keys move on at once.
    app = create_app(make_settings(models_refresh_s=0))
    async with AsyncTestClient(app) as client:
        first = await client.post("/summarize", json={"text": GERMAN}, headers=headers)
        assert first.status_code == 202
        # The workers announce new models: the same article would now be a different job ...
        await announce_models(redis, prefix)
        fresh = await client.post("/summarize", json={"text": GERMAN})
        assert fresh.json()["id"] != first.json()["id"]
        # ... but the retry still gets the job its key stands for.
        retry = await client.post("/summarize", json={"text": GERMAN}, headers=headers)
    assert retry.status_code == 202
    assert retry.json()["id"] == first.json()["id"]


async def test_idempotency_key_with_another_body_is_409(client: AsyncTestClient[Litestar]) -> None:
    """Reusing an Idempotency-Key for a different article is refused with 409."""
    headers = {"Idempotency-Key": "retry-me-2"}
    first = await client.post("/summarize", json={"text": GERMAN}, headers=headers)
    assert first.status_code == 202
    other = await client.post("/summarize", json={"text": OTHER_GERMAN}, headers=headers)
    assert_problem(other, 409, "idempotency_conflict")


async def test_idempotency_ignores_json_key_order(client: AsyncTestClient[Litestar]) -> None:
    """The same request with its JSON members in another order is the same request."""
    headers = {"Idempotency-Key": "retry-me-3"}
    first = await client.post(
        "/summarize",
        json={"text": GERMAN, "metadata": {"desk": "politics", "page": 3}},
        headers=headers,
    )
    again = await client.post(
        "/summarize",
        json={"metadata": {"page": 3, "desk": "politics"}, "text": GERMAN},
        headers=headers,
    )
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]


async def test_refused_request_does_not_use_up_its_idempotency_key(
    make_settings: Callable[..., Settings],
) -> None:
    """A request refused because the queue is full can be retried with the same key later."""
    app = create_app(make_settings(max_queue_depth=1))
    headers = {"Idempotency-Key": "queue-was-full"}
    async with AsyncTestClient(app) as client:
        first = await client.post("/summarize", json={"text": GERMAN})
        refused = await client.post("/summarize", json={"text": OTHER_GERMAN}, headers=headers)
        await client.delete(first.headers["location"])
        retried = await client.post("/summarize", json={"text": OTHER_GERMAN}, headers=headers)
    assert_problem(refused, 429, "queue_full")
    assert retried.status_code == 202


# --- cache, wait, events --------------------------------------------------------------------------


async def test_cached_result_is_answered_at_once(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str, queue: JobQueue
) -> None:
    """An article already summarized comes back 200 with cached=true, without a job."""
    await announce_models(redis, prefix)
    key = expected_key(GERMAN)
    await ResultCache(redis, Keys(prefix), 3600).put(key, a_result())
    response = await client.post("/summarize", json={"text": GERMAN, "external_id": "cms-9"})
    assert response.status_code == 200
    view = response.json()
    assert view["id"] == key
    assert view["status"] == "succeeded"
    assert view["result"]["cached"] is True
    assert view["result"]["summary"] == "Russia has resumed talks with the United States."
    assert view["external_id"] == "cms-9"
    assert await queue.depth() == 0
    assert await queue.get(key) is None
    stored = await client.get(f"/jobs/{key}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "succeeded"


async def test_wait_returns_the_result_when_the_job_finishes_in_time(
    make_settings: Callable[..., Settings],
    redis: Redis,
    prefix: str,
    queue: JobQueue,
    serve_app: AppServer,
) -> None:
    """With ?wait the request answers 200 with the result as soon as the worker finishes."""
    await announce_models(redis, prefix)
    key = expected_key(GERMAN)

    async def worker() -> None:
        await wait_until_queued(queue, key)
        await asyncio.sleep(0.3)
        await finish(queue, key, a_result())

    client = await serve_app(create_app(make_settings(), redis=redis))
    started = time.monotonic()
    response, _ = await asyncio.gather(
        client.post("/summarize", params={"wait": 10}, json={"text": GERMAN}), worker()
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.json()["result"]["cached"] is False
    assert elapsed < 5


async def test_wait_gives_up_with_202(client: AsyncTestClient[Litestar]) -> None:
    """When the job is not done within ?wait, the answer is the usual 202, after the wait."""
    started = time.monotonic()
    response = await client.post("/summarize", params={"wait": 0.5}, json={"text": GERMAN})
    assert response.status_code == 202
    assert time.monotonic() - started >= 0.5


async def test_events_stream_progress_then_done(
    make_settings: Callable[..., Settings],
    redis: Redis,
    prefix: str,
    queue: JobQueue,
    serve_app: AppServer,
) -> None:
    """The event stream reports each progress change, then the finished job, then closes."""
    client = await serve_app(create_app(make_settings(), redis=redis))
    job_id = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]

    async def worker() -> None:
        await asyncio.sleep(0.4)
        job = await queue.get(job_id)
        assert job is not None
        job.meta["progress"] = {"stage": "translate", "done": 2, "total": 9}
        await job.update(meta=job.meta, status=Status.ACTIVE)
        await asyncio.sleep(0.6)
        await finish(queue, job_id, a_result())

    response, _ = await asyncio.gather(client.get(f"/jobs/{job_id}/events"), worker())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    assert [name for name, _ in events] == ["progress", "progress", "done"]
    assert events[0][1] == {
        "status": "queued",
        "progress": {"stage": "queued", "done": 0, "total": 0},
    }
    assert events[1][1]["status"] == "running"
    assert events[1][1]["progress"] == {"stage": "translate", "done": 2, "total": 9}
    assert events[2][1]["status"] == "succeeded"
    assert events[2][1]["result"]["summary"] == "Russia has resumed talks with the United States."


def parse_events(stream: str) -> list[tuple[str, Any]]:
    """(event, decoded data) pairs of a server-sent event stream; comments skipped."""
    events: list[tuple[str, Any]] = []
    for block in stream.replace("\r\n", "\n").strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


# --- jobs -----------------------------------------------------------------------------------------


async def test_unknown_and_malformed_job_ids_are_404(client: AsyncTestClient[Litestar]) -> None:
    """A job id that does not exist, or cannot, is 404 job_not_found for every job endpoint."""
    unknown = "0" * 64
    for path in (f"/jobs/{unknown}", f"/jobs/{unknown}/events", "/jobs/not-a-job-id"):
        assert_problem(await client.get(path), 404, "job_not_found")
    assert_problem(await client.delete(f"/jobs/{unknown}"), 404, "job_not_found")


async def test_cancel_a_queued_job(client: AsyncTestClient[Litestar], queue: JobQueue) -> None:
    """DELETE cancels a queued job: it leaves the queue and shows as canceled."""
    location = (await client.post("/summarize", json={"text": GERMAN})).headers["location"]
    response = await client.delete(location)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["error"]["code"] == "canceled"
    assert (await client.get(location)).json()["status"] == "canceled"
    assert await queue.depth() == 0


async def test_cancel_a_running_job(client: AsyncTestClient[Litestar], queue: JobQueue) -> None:
    """DELETE on a running job asks its worker to stop: 202, canceled; resubmitting waits."""
    # SAQ's abort marker is not namespaced by queue: a text of its own keeps other tests clear.
    text = f"{GERMAN}\n\nTestlauf {uuid.uuid4().hex}"
    submitted = await client.post("/summarize", json={"text": text})
    job = await queue.saq.dequeue(timeout=1)  # a worker takes the job ...
    assert job is not None and job.key == submitted.json()["id"]
    await job.update(status=Status.ACTIVE)  # ... and starts it
    response = await client.delete(submitted.headers["location"])
    assert response.status_code == 202
    assert response.json()["status"] == "canceled"
    stored = await queue.get(submitted.json()["id"])
    assert stored is not None and stored.status == Status.ABORTING
    resubmitted = await client.post("/summarize", json={"text": text})
    assert_problem(resubmitted, 409, "job_canceling")
    assert resubmitted.headers["retry-after"] == "5"


async def test_canceled_article_can_be_submitted_again(client: AsyncTestClient[Litestar]) -> None:
    """After a cancel, the same article makes a fresh queued job rather than the canceled one."""
    first = await client.post("/summarize", json={"text": GERMAN})
    await client.delete(first.headers["location"])
    again = await client.post("/summarize", json={"text": GERMAN})
    assert again.status_code == 202
    assert again.json()["status"] == "queued"


async def test_cancel_a_finished_job_is_409(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """A job that has already succeeded cannot be canceled: 409 job_finished."""
    submitted = await client.post("/summarize", json={"text": GERMAN})
    await finish(queue, submitted.json()["id"], a_result())
    body = assert_problem(await client.delete(submitted.headers["location"]), 409, "job_finished")
    assert body["job_status"] == "succeeded"


# --- batch ----------------------------------------------------------------------------------------


async def test_batch_reports_each_article_on_its_own(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """In a batch, bad articles get their problem and good ones their job, by index."""
    articles = [
        {"text": GERMAN},
        {"text": ""},
        {"text": OTHER_GERMAN, "style": "poem"},
        {"text": 5},
        {"text": OTHER_GERMAN, "style": "brief"},
    ]
    response = await client.post("/summarize/batch", json={"articles": articles})
    assert response.status_code == 202
    jobs = response.json()["jobs"]
    assert [item["index"] for item in jobs] == [0, 1, 2, 3, 4]
    assert jobs[0]["status"] == "queued" and len(jobs[0]["id"]) == 64
    assert jobs[1]["error"]["code"] == "empty_text"
    assert jobs[2]["error"]["code"] == "unknown_style"
    assert jobs[3]["error"]["code"] == "invalid_body"
    assert jobs[3]["error"]["field"] == "text"
    assert jobs[4]["links"]["self"] == f"/jobs/{jobs[4]['id']}"
    assert await queue.depth() == 2


async def test_batch_over_100_articles_is_422(client: AsyncTestClient[Litestar]) -> None:
    """A batch of more than 100 articles is refused as a whole with too_many_articles."""
    response = await client.post("/summarize/batch", json={"articles": [{"text": "Hallo"}] * 101})
    assert_problem(response, 422, "too_many_articles")


# --- styles, auth, rate limit ---------------------------------------------------------------------


async def test_styles_lists_every_preset(client: AsyncTestClient[Litestar]) -> None:
    """GET /styles lists each preset with its description, version and digest."""
    styles = (await client.get("/styles")).json()
    registry = PresetRegistry.from_directory(ROOT / "prompts")
    assert [s["name"] for s in styles] == registry.names
    assert all(s["description"] and s["digest"] and s["version"] >= 1 for s in styles)


async def test_api_keys_are_required_when_configured(
    make_settings: Callable[..., Settings],
) -> None:
    """With API keys set, a missing or wrong key is 401; either header works; health stays open."""
    app = create_app(make_settings(api_keys=[ALPHA_KEY, BETA_KEY]))
    async with AsyncTestClient(app) as client:
        missing = await client.post("/summarize", json={"text": GERMAN})
        wrong = await client.get("/styles", headers={"Authorization": "Bearer nope"})
        bearer = await client.get("/styles", headers={"Authorization": f"Bearer {BETA_KEY}"})
        header = await client.post(
            "/summarize", json={"text": GERMAN}, headers={"X-API-Key": ALPHA_KEY}
        )
        open_paths = [await client.get(p) for p in ("/health/live", "/metrics", "/schema")]
    assert_problem(missing, 401, "unauthorized")
    assert "www-authenticate" in missing.headers
    assert_problem(wrong, 401, "unauthorized")
    assert bearer.status_code == 200
    assert header.status_code == 202
    assert [r.status_code for r in open_paths] == [200, 200, 200]


async def test_rate_limit_is_429_with_retry_after(
    make_settings: Callable[..., Settings], redis: Redis, prefix: str
) -> None:
    """Past rate_limit_per_minute a key gets 429 rate_limited until its window ends; others not."""
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 55:  # keep all requests inside one fixed window
        await asyncio.sleep(60 - seconds_into_minute + 0.1)
    app = create_app(make_settings(api_keys=[ALPHA_KEY, BETA_KEY], rate_limit_per_minute=3))
    alpha = {"X-API-Key": ALPHA_KEY}
    async with AsyncTestClient(app) as client:
        allowed = [await client.get("/styles", headers=alpha) for _ in range(3)]
        limited = await client.get("/styles", headers=alpha)
        other = await client.get("/styles", headers={"X-API-Key": BETA_KEY})
    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert_problem(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert other.status_code == 200
    assert [key async for key in redis.scan_iter(match=f"{prefix}:rate:*")], "counted in Redis"


async def test_a_batch_counts_each_article_against_the_rate_limit(
    make_settings: Callable[..., Settings],
) -> None:
    """A batch of n articles uses n submissions of the key's minute: batches cannot multiply
    what a key may submit."""
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 55:  # keep all requests inside one fixed window
        await asyncio.sleep(60 - seconds_into_minute + 0.1)
    app = create_app(make_settings(api_keys=[ALPHA_KEY], rate_limit_per_minute=5))
    alpha = {"X-API-Key": ALPHA_KEY}
    articles = [{"text": f"{GERMAN} Artikel {index}."} for index in range(4)]
    async with AsyncTestClient(app) as client:
        first = await client.post("/summarize/batch", json={"articles": articles}, headers=alpha)
        second = await client.post("/summarize/batch", json={"articles": articles}, headers=alpha)
        single = await client.get("/styles", headers=alpha)
    assert first.status_code == 202, first.text
    assert_problem(second, 429, "rate_limited")  # 4 + 4 > 5
    assert_problem(single, 429, "rate_limited")  # the key's minute is used up


# --- health, metrics, schema ----------------------------------------------------------------------


async def test_liveness_is_always_ok(client: AsyncTestClient[Litestar]) -> None:
    """GET /health/live answers 200 ok."""
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_needs_a_worker_heartbeat(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str
) -> None:
    """Ready only while a worker heartbeat exists: 503 not_ready with Retry-After, then 200."""
    not_ready = await client.get("/health/ready")
    body = assert_problem(not_ready, 503, "not_ready")
    assert body["reasons"]
    assert not_ready.headers["retry-after"] == "5"
    await heartbeat(redis, prefix, "worker-7")
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "workers": ["worker-7"]}


async def test_metrics_report_cache_queue_and_worker_counters(
    client: AsyncTestClient[Litestar], redis: Redis, prefix: str
) -> None:
    """/metrics shows cache hits and misses, queue depth and the workers' counters from Redis."""
    await announce_models(redis, prefix)
    await ResultCache(redis, Keys(prefix), 3600).put(expected_key(OTHER_GERMAN), a_result())
    await client.post("/summarize", json={"text": GERMAN})  # miss: queued
    await client.post("/summarize", json={"text": OTHER_GERMAN})  # hit
    stats = Keys(prefix).stats()
    async with redis.pipeline(transaction=False) as pipe:  # what workers add as jobs finish
        pipe.hincrby(stats, "jobs_succeeded", 4)
        pipe.hincrby(stats, "jobs_failed", 1)
        pipe.hincrby(stats, "sentences_translated", 120)
        pipe.hincrbyfloat(stats, "stage_seconds_sum:translate", 2.5)
        pipe.hincrby(stats, "stage_count:translate", 4)
        await pipe.execute()
    await heartbeat(redis, prefix)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    assert samples["kurz_result_cache_hits_total"] == 1
    assert samples["kurz_result_cache_misses_total"] == 1
    assert samples["kurz_queue_depth"] == 1
    assert samples["kurz_workers_alive"] == 1
    assert samples["kurz_worker_jobs_succeeded_total"] == 4
    assert samples["kurz_worker_jobs_failed_total"] == 1
    assert samples["kurz_worker_sentences_translated_total"] == 120
    assert samples['kurz_job_stage_seconds_sum{stage="translate"}'] == 2.5
    assert samples['kurz_job_stage_seconds_count{stage="translate"}'] == 4
    route = 'method="POST",route="/summarize",status="202"'
    assert samples[f"kurz_http_requests_total{{{route}}}"] == 1


def metric_samples(exposition: str) -> dict[str, float]:
    """Sample name (with labels) to value, from the Prometheus text format."""
    samples: dict[str, float] = {}
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_registries_are_per_app(make_settings: Callable[..., Settings]) -> None:
    """Two apps in one process count separately (no global Prometheus registry)."""
    first, second = create_app(make_settings()), create_app(make_settings())
    async with AsyncTestClient(first) as client:
        await client.post("/summarize", json={"text": GERMAN})
    async with AsyncTestClient(second) as client:
        text = (await client.get("/metrics")).text
    assert metric_samples(text)["kurz_result_cache_misses_total"] == 0


async def test_schema_documents_every_endpoint(client: AsyncTestClient[Litestar]) -> None:
    """GET /schema is the OpenAPI JSON: every path, problem responses, and a seed example."""
    response = await client.get("/schema")
    assert response.status_code == 200
    schema = response.json()
    assert set(schema["paths"]) == {
        "/summarize",
        "/summarize/batch",
        "/jobs/{job_id}",
        "/jobs/{job_id}/deliveries",
        "/jobs/{job_id}/deliveries/redeliver",
        "/jobs/{job_id}/events",
        "/styles",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/v2/glossaries",
        "/v2/glossaries/{glossary_id}",
        "/v2/glossaries/{glossary_id}/entries",
        "/v2/glossary-language-pairs",
    }
    submit = schema["paths"]["/summarize"]["post"]
    example = submit["requestBody"]["content"]["application/json"]["examples"]["seed"]["value"]
    assert example["text"] and GERMAN.startswith(example["text"][:100])
    assert PROBLEM_JSON in submit["responses"]["422"]["content"]
    assert {"get", "delete"} <= set(schema["paths"]["/jobs/{job_id}"])
    batch = schema["paths"]["/summarize/batch"]["post"]["requestBody"]["content"]
    items = batch["application/json"]["schema"]["properties"]["articles"]["items"]
    assert items["$ref"].rsplit("/", 1)[-1] in schema["components"]["schemas"]


# --- failures -------------------------------------------------------------------------------------


async def test_redis_outage_is_503_and_the_api_recovers(
    make_settings: Callable[..., Settings], redis_servers: RedisServers
) -> None:
    """While Redis is down requests get 503 redis_unavailable; once it is back they work again."""
    server = redis_servers()
    app = create_app(make_settings(redis_url=server.url))
    async with AsyncTestClient(app) as client:
        before = await client.post("/summarize", json={"text": GERMAN})
        server.stop()
        started = time.monotonic()
        during = await client.post("/summarize", json={"text": OTHER_GERMAN})
        job = await client.get(before.headers["location"])
        elapsed = time.monotonic() - started
        ready = await client.get("/health/ready")
        live = await client.get("/health/live")
        scrape = await client.get("/metrics")
        server.start()
        after = await client.post("/summarize", json={"text": OTHER_GERMAN})
    assert before.status_code == 202
    for response in (during, job):
        assert_problem(response, 503, "redis_unavailable")
        assert response.headers["retry-after"] == "5"
    assert elapsed < 5, "requests must fail fast while Redis is down"
    assert "redis unreachable" in assert_problem(ready, 503, "not_ready")["detail"]
    assert live.status_code == 200
    assert metric_samples(scrape.text)["kurz_redis_up"] == 0
    assert after.status_code == 202


def test_bad_configuration_stops_the_app_before_it_serves(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A bad callback allow-list entry or an empty prompts directory fails create_app itself."""
    with pytest.raises(ConfigError):
        create_app(make_settings(webhook_allow_hosts=["not a host!"]))
    with pytest.raises(ConfigError):
        create_app(make_settings(prompts_dir=tmp_path))


async def test_unexpected_errors_are_500_without_details() -> None:
    """A bug becomes a bare 500 problem: no exception text or traceback reaches the client."""
    problem = problem_for(RuntimeError("secret path /srv/app.py line 3"))
    assert problem.status == 500
    assert problem.code == "internal"
    assert "secret" not in json.dumps(problem.body())


def test_the_api_never_imports_torch() -> None:
    """Importing and building the API (language check included) does not load torch."""
    script = (
        "import asyncio, sys\n"
        "import service.api.app\n"
        "from service.settings import Settings\n"
        "app = service.api.app.create_app(Settings(_env_file=None))\n"
        "async def main():\n"
        "    async with app.lifespan():\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "assert 'service.text.language' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = environ_without_kurz()
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
