"""The API keeps its OpenAPI contract under fuzzing: no server errors, every response as documented.

Schemathesis reads ``GET /schema`` of :func:`service.api.app.create_app` and generates requests for
every operation, schema-valid ("positive") and schema-invalid ("negative"), sent straight into
the ASGI app (no socket) which runs against a real Redis (DB 14, a key prefix of this run's own,
its keys deleted afterwards).  Per operation: 100 cases by default, 1,000 with ``KURZ_SOAK=1``
(an operation without parameters has one possible request, and gets just that one).

Checks on every response:

* ``not_a_server_error``: no 5xx at all; a worker heartbeat is written, so even
  ``/health/ready`` has no dependency missing;
* ``response_schema_conformance``, ``status_code_conformance``, ``content_type_conformance``,
  ``response_headers_conformance``: status, media type, headers and body as documented;
* ``negative_data_rejection``: schema-invalid requests are refused with a 4xx.

Random job ids only ever meet 404s, so a second test puts real jobs in every state into the queue
(queued, running, succeeded with a result and webhook deliveries, failed, canceled, and a result
with no job record) and sends every job operation to each of them, checked the same way.

``positive_data_acceptance`` is not run: the schema cannot say "German" or "not only whitespace",
so schema-valid articles are rightly refused with 422 ``not_german`` or ``empty_text``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from redis.asyncio import Redis
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.api.app import create_app
from service.constants import Keys
from service.queue import JobPayload, JobQueue, Status, view_of
from service.schemas import AlignedSentence, ModelInfo, Result
from service.settings import Settings
from service.store.cache import ResultCache
from service.webhooks import AttemptRecord, Outcome
from service.webhooks.notifier import Notifier

pytestmark = pytest.mark.redis

SOAK = os.environ.get("KURZ_SOAK", "") not in ("", "0")
POSITIVE_CASES = 600 if SOAK else 60
NEGATIVE_CASES = 400 if SOAK else 40
#: ``?wait=`` holds a request up to 60 s for a job no worker here will run: fuzzed values in
#: the valid range are shortened to this (invalid ones are sent as generated).
WAIT_S = 0.01
#: An event stream of a job that never finishes is cut after this long (its events are kept).
STREAM_S = 1.0
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

#: The batch answers 202 with a per-article problem for an article the schema calls invalid
#: (one bad article spoils nothing, as its description says), so "invalid data rejected" cannot
#: hold there; a malformed batch as a whole is still refused, and the 202's body is checked.
PARTIAL_ACCEPTANCE = {"POST /summarize/batch"}


def checks_for(label: str) -> list[Any]:
    if label in PARTIAL_ACCEPTANCE:
        return [check for check in CHECKS if check is not negative_data_rejection]
    return CHECKS


#: The ``figures`` fixture (tests/reliability/conftest.py) prints and records a test's figures.
Figures = Callable[..., None]


# --- the app, its Redis keys and its schema -------------------------------------------------------


@dataclass
class Target:
    schema: Any
    prefix: str
    settings: Settings
    jobs: dict[str, str]
    """Seeded job ids by the state they were put in."""


async def _delete_prefix(redis_url: str, prefix: str) -> int:
    client = Redis.from_url(redis_url)
    try:
        deleted = 0
        for pattern in (f"{prefix}:*", f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=500)]
            if keys:
                deleted += int(await client.delete(*keys))
        return deleted
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def target(redis_url: str, settings_for: Callable[..., Settings]) -> Iterator[Target]:
    """The app on a fresh key prefix, a live worker heartbeat, seeded jobs, and its schema."""
    prefix = f"test-schema-{uuid.uuid4().hex}"
    app_settings = settings_for(prefix)
    try:
        jobs = asyncio.run(_seed(app_settings))
        schema = schemathesis.openapi.from_asgi("/schema", create_app(app_settings))
        yield Target(schema, prefix, app_settings, jobs)
    finally:
        with contextlib.suppress(Exception):
            shutdown_lifespans()  # the app's lifespan runs on schemathesis' own loop thread
        asyncio.run(_delete_prefix(redis_url, prefix))


MODELS = {
    "translation": ModelInfo("Helsinki-NLP/opus-mt-de-en", "abc123", "transformers", "float32"),
    "summarization": ModelInfo("sshleifer/distilbart-cnn-12-6", "def456", "transformers", "f32"),
}


def a_result() -> Result:
    return Result(
        title_en="A headline",
        translation="The sun is shining.\n\nIt is warm.",
        summary="Sunny and warm.",
        style="standard",
        source_language="de",
        german_share=1.0,
        sentences_in=2,
        sentences_translated=2,
        sentences_from_cache=1,
        alignment=[
            AlignedSentence(de="Die Sonne scheint.", en="The sun is shining.", paragraph=0),
            AlignedSentence(de="Es ist warm.", en="It is warm.", paragraph=1, cached=True),
        ],
        models=MODELS,
        timings_ms={"segment_ms": 1.0, "translate_ms": 20.5, "total_ms": 30.0},
        summary_chunks=1,
        summary_rounds=1,
    )


async def _seed(app_settings: Settings) -> dict[str, str]:
    """Jobs in every state a client can meet, written the way the API and a worker write them."""
    redis = Redis.from_url(app_settings.redis_url)
    keys = Keys(app_settings.key_prefix)
    queue = JobQueue(redis, keys)
    results = ResultCache(redis, keys, 3600)
    notifier = Notifier(
        redis,
        keys,
        queue,
        endpoints=[],
        retry_schedule=[0, 5],
        public_url="http://127.0.0.1:8000",
        signer=None,
        timeout_s=5,
    )
    jobs: dict[str, str] = {}

    async def submit(state: str) -> str:
        key = uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, like the API's job ids
        payload = JobPayload(
            text=f"Die Sonne scheint. ({state})",
            external_id=f"cms-{state}",
            metadata={"desk": "politik", "priority": 2, "breaking": False, "score": 0.5},
            callback_url="https://hooks.example/kurz",
        )
        job, created = await queue.submit(key, payload)
        assert created
        jobs[state] = job.key
        return key

    try:
        # A worker's heartbeat, so /health/ready has every dependency it asks for.
        # Alive for the whole run (a real worker's heartbeat lasts 15 s and is renewed).
        await redis.zadd(keys.workers_alive(), {"fuzz-worker": time.time() + 3600})
        await redis.set(keys.models(), msgspec.json.encode(MODELS), ex=3600)

        key = await submit("running")
        running = await queue.saq.dequeue(timeout=1)
        assert running is not None and running.key == key
        running.attempts += 1
        running.meta["progress"] = {"stage": "translate", "done": 1, "total": 2}
        await running.update(status=Status.ACTIVE)

        await submit("queued")

        key = await submit("succeeded")
        done = await queue.get(key)
        assert done is not None
        await results.put(key, a_result())
        await queue.saq.finish(done, Status.COMPLETE, result=msgspec.to_builtins(a_result()))
        await notifier.add_callback(key, "https://hooks.example/kurz")
        finished = await queue.get(key)
        assert finished is not None
        await notifier.announce(view_of(finished))
        attempt = AttemptRecord(
            msg_id="msg_1",
            endpoint="https://hooks.example/kurz",
            attempt=1,
            at="2025-11-21T12:00:00.000+00:00",
            status_code=503,
            latency_ms=12.5,
            error="503 Service Unavailable",
            outcome=Outcome.FAILED,
        )
        await notifier.log.append(key, attempt)

        key = await submit("failed")
        failing = await queue.get(key)
        assert failing is not None
        failing.meta["error"] = {"code": "not_german", "detail": "the article is not German"}
        await queue.saq.finish(failing, Status.FAILED, error="Traceback ...\nNotGermanError")

        key = await submit("canceled")
        await queue.cancel(key)

        cached_only = uuid.uuid4().hex + uuid.uuid4().hex
        await results.put(cached_only, a_result())
        jobs["cached-result"] = cached_only
        return jobs
    finally:
        await redis.aclose()


# --- running and judging cases --------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[int]
    failures: dict[str, str]
    cases: int = 0

    def run(self, case: Case, **call: Any) -> int:
        """Send the case, check the response; a failed check is recorded, not raised."""
        query = case.query if isinstance(case.query, dict) else None
        wait = query.get("wait") if query is not None else None
        fuzzed_number = isinstance(wait, int | float) and not isinstance(wait, bool)
        if query is not None and fuzzed_number and 0 < wait <= 60:
            query["wait"] = WAIT_S
        response = case.call(**call)
        self.cases += 1
        self.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks_for(case.operation.label))
        except (Failure, FailureGroup) as failure:
            found = failure.exceptions if isinstance(failure, FailureGroup) else (failure,)
            titles = ", ".join(sorted({item.title for item in found}))
            title = f"{case.operation.label} -> {response.status_code}: {titles}"
            self.failures.setdefault(title, f"{title}\n{failure}\n{case.as_curl_command()}"[:3000])
        return response.status_code


def fuzz(operation: Any, mode: GenerationMode, examples: int, tally: Tally) -> None:
    """Up to ``examples`` generated cases of one operation in one generation mode."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:
        tally.run(case)

    with contextlib.suppress(Unsatisfiable):  # no parameters, no body: nothing to make invalid
        run()


@pytest.mark.slow
def test_fuzzed_requests_get_documented_answers_and_no_server_error(
    target: Target, figures: Figures
) -> None:
    """Generated valid and invalid requests to every operation: no 5xx, all as documented."""
    per_operation: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for result in target.schema.get_all_operations():
        operation = result.ok()
        tally = Tally(Counter(), failures)
        fuzz(operation, GenerationMode.POSITIVE, POSITIVE_CASES, tally)
        fuzz(operation, GenerationMode.NEGATIVE, NEGATIVE_CASES, tally)
        per_operation[operation.label] = {
            "cases": tally.cases,
            **dict(sorted(tally.statuses.items())),
        }
    total = sum(counts["cases"] for counts in per_operation.values())
    server_errors = sum(
        count
        for counts in per_operation.values()
        for status, count in counts.items()
        if isinstance(status, int) and status >= 500
    )
    figures(
        "schema-fuzz",
        operations=len(per_operation),
        cases=total,
        server_errors=server_errors,
        failures=len(failures),
    )
    for label, counts in per_operation.items():
        figures(f"schema-fuzz:{label}", **{str(k): v for k, v in counts.items()})
    assert len(per_operation) >= 10
    assert not failures, "\n\n".join(failures.values())
    assert server_errors == 0


JOB_OPERATIONS = [
    "GET /jobs/{job_id}",
    "GET /jobs/{job_id}/events",
    "GET /jobs/{job_id}/deliveries",
    "POST /jobs/{job_id}/deliveries/redeliver",
    "DELETE /jobs/{job_id}",
    "GET /jobs/{job_id}",  # again, after the cancel
]


@pytest.mark.slow
def test_every_job_operation_on_jobs_in_every_state_is_as_documented(
    target: Target, figures: Figures
) -> None:
    """Real jobs (queued … canceled, cached) answer each job endpoint as the schema says."""
    failures: dict[str, str] = {}
    tally = Tally(Counter(), failures)
    seen: dict[str, list[int]] = {}
    for state, job_id in target.jobs.items():
        for label in JOB_OPERATIONS:
            operation = target.schema.find_operation_by_label(label)
            assert operation is not None, label
            case = operation.Case(path_parameters={"job_id": job_id})
            status = tally.run(case, timeout=STREAM_S)
            seen.setdefault(state, []).append(status)
    figures("schema-jobs", **{state: statuses for state, statuses in seen.items()})
    assert not failures, "\n\n".join(failures.values())
    assert set(seen) == {"queued", "running", "succeeded", "failed", "canceled", "cached-result"}
    # The states really were different: a result, a cancel, a conflict, a redelivery.
    assert seen["succeeded"][0] == 200 and seen["succeeded"][3] == 202
    assert seen["queued"][4] == 200 and seen["running"][4] == 202
    assert seen["succeeded"][4] == 409 and seen["cached-result"][4] == 409
