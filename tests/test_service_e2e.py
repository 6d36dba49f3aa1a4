"""The whole service with real processes: API, workers on the tiny models, and Redis."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from standardwebhooks.webhooks import Webhook

from service.text.segment import split_sentences
from service.webhooks import generate_secret
from tests.processes import (
    RedisServer,
    ServiceProcess,
    free_port,
    service_env,
    wait_until_ready,
)
from tests.receivers import ThreadedReceiver

pytestmark = [pytest.mark.slow, pytest.mark.redis]


WEBHOOK_SECRET = generate_secret()


@dataclass
class Stack:
    redis: RedisServer
    receiver: ThreadedReceiver
    env: dict[str, str]
    base_url: str
    logs: Path
    workers: list[ServiceProcess]

    def add_worker(self, name: str) -> ServiceProcess:
        worker = ServiceProcess("worker", self.env, self.logs / f"{name}.log")
        self.workers.append(worker)
        return worker


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> Iterator[Stack]:
    """A private Redis, one API process and one worker."""
    logs = tmp_path_factory.mktemp("stack")
    redis = RedisServer(logs / "redis")
    redis.start()
    port = free_port()
    env = service_env(
        redis.url,
        tiny_models_dir,
        KURZ_PORT=str(port),
        KURZ_WORKER_CONCURRENCY="4",
        KURZ_SHUTDOWN_GRACE_S="60",
        KURZ_WEBHOOK_SECRET=WEBHOOK_SECRET,
        KURZ_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        KURZ_WEBHOOK_RETRY_SCHEDULE="0,1,1",
    )
    receiver = ThreadedReceiver()
    api = ServiceProcess("api", env, logs / "api.log")
    stack = Stack(
        redis=redis,
        receiver=receiver,
        env=env,
        base_url=f"http://127.0.0.1:{port}",
        logs=logs,
        workers=[],
    )
    stack.add_worker("worker-1")
    try:
        wait_until_ready(stack.base_url)
        yield stack
    finally:
        for process in [api, *stack.workers]:
            process.stop()
        redis.stop()
        receiver.close()


def follow(base_url: str, job_id: str, timeout_s: float = 600) -> tuple[dict[str, Any], list[str]]:
    """Poll a job until it ends; returns the final view and the stages seen on the way."""
    stages: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = httpx.get(f"{base_url}/jobs/{job_id}", timeout=5).json()
        stage = view["progress"]["stage"]
        if not stages or stages[-1] != stage:
            stages.append(stage)
        if view["status"] in {"succeeded", "failed", "canceled"}:
            return view, stages
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish: {view}")


def test_every_seed_end_to_end_then_from_the_cache(
    stack: Stack, seed_texts: dict[str, str]
) -> None:
    """Each seed is accepted, progresses, succeeds with full coverage; the repeat is a cache hit."""
    ids = {}
    first = next(iter(seed_texts))
    for name, text in seed_texts.items():
        body: dict[str, Any] = {"text": text}
        if name == first:
            body.update(callback_url=stack.receiver.url, external_id="seed-0")
        response = httpx.post(f"{stack.base_url}/summarize", json=body, timeout=10)
        assert response.status_code == 202, response.text
        assert response.headers["location"] == f"/jobs/{response.json()['id']}"
        assert "retry-after" in response.headers
        ids[name] = response.json()["id"]
    seen: set[str] = set()
    for name, job_id in reversed(ids.items()):
        view, stages = follow(stack.base_url, job_id)
        seen.update(stages)
        assert view["status"] == "succeeded", view
        result = view["result"]
        assert result["sentences_in"] == len(split_sentences(seed_texts[name]))
        assert result["sentences_translated"] == result["sentences_in"]
        assert result["cached"] is False
        assert view["progress"]["stage"] == "done"
    # The later jobs were watched while they ran: their progress went through the stages.
    assert seen & {"translate", "summarize"}
    deadline = time.monotonic() + 60
    while not stack.receiver.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    [received] = stack.receiver.requests
    event = Webhook(WEBHOOK_SECRET).verify(received.body, received.headers)
    assert event["type"] == "summary.succeeded"
    assert event["data"]["id"] == ids[first]
    assert event["data"]["external_id"] == "seed-0"
    assert event["data"]["result"]["summary"]
    stack.receiver.requests.clear()
    for name, job_id in ids.items():
        again = httpx.post(
            f"{stack.base_url}/summarize", json={"text": seed_texts[name]}, timeout=10
        )
        assert again.status_code == 200
        assert again.json()["id"] == job_id
        assert again.json()["result"]["cached"] is True


def test_edited_article_reuses_the_sentence_cache(stack: Stack, seed_texts: dict[str, str]) -> None:
    """Changing one sentence of a translated article re-translates only that sentence."""
    text = list(seed_texts.values())[1]
    first = httpx.post(
        f"{stack.base_url}/summarize?wait=60", json={"text": text, "style": "brief"}, timeout=70
    )
    assert first.status_code in (200, 202)
    view, _ = follow(stack.base_url, first.json()["id"])
    assert view["status"] == "succeeded"
    edited = text + "\n\nDieser Satz wurde nachträglich von der Redaktion ergänzt."
    response = httpx.post(
        f"{stack.base_url}/summarize", json={"text": edited, "style": "brief"}, timeout=10
    )
    view, _ = follow(stack.base_url, response.json()["id"])
    result = view["result"]
    assert result["sentences_in"] == view["result"]["sentences_translated"]
    assert result["sentences_from_cache"] == result["sentences_in"] - 1
    assert result["alignment"][-1]["cached"] is False


def test_killed_worker_job_is_finished_by_another_worker(stack: Stack, long_article: str) -> None:
    """SIGKILL of the worker running a job: a second worker finishes it, and the newsroom's
    callback gets a signed summary.succeeded: delivered, maybe repeated, always with one id."""
    doomed = stack.workers[0]
    # The earlier tests translated these sentences; forget them so the job has real work to do.
    with redis_lib.Redis.from_url(stack.redis.url) as client:
        for key in client.scan_iter("kurz:sentence:*", count=1000):
            client.delete(key)
    text = long_article + "\n\nEin Zusatz, damit dieser Auftrag neu ist."
    job_id = httpx.post(
        f"{stack.base_url}/summarize",
        json={"text": text, "callback_url": stack.receiver.url, "external_id": "kill-test"},
        timeout=10,
    ).json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = httpx.get(f"{stack.base_url}/jobs/{job_id}", timeout=5).json()
        if view["status"] == "running" and view["progress"]["stage"] == "translate":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"job never started running: {view}")
    doomed.signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()
    rescuer = stack.add_worker("worker-2")
    final, _ = follow(stack.base_url, job_id, timeout_s=600)
    with redis_lib.Redis.from_url(stack.redis.url) as client:
        raw = client.get(f"saq:job:kurz:{job_id}")
    record = json.loads(raw or b"{}")
    assert final["status"] == "succeeded", json.dumps(
        {k: v for k, v in record.items() if k != "kwargs"}
    )
    assert final["attempts"] >= 2
    assert final["result"]["sentences_translated"] == final["result"]["sentences_in"]
    assert "Traceback" not in rescuer.output()
    # Re-queued by the sweep within the heartbeat window, not after the job timeout.
    assert time.monotonic() - killed_at < 600
    deadline = time.monotonic() + 60
    while not stack.receiver.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.receiver.requests, "no webhook arrived"
    verifier = Webhook(WEBHOOK_SECRET)
    ids = set()
    for received in stack.receiver.requests:
        event = verifier.verify(received.body, received.headers)
        assert event["type"] == "summary.succeeded"
        data = event["data"]
        assert data["id"] == job_id
        assert data["status"] == "succeeded"
        if data.get("truncated"):  # over 256 KiB: the event links to the job instead
            assert data["link"].endswith(f"/jobs/{job_id}")
        else:
            assert data["external_id"] == "kill-test"
            assert data["result"]["sentences_translated"] == final["result"]["sentences_in"]
        ids.add(received.headers["webhook-id"])
    assert len(ids) == 1
    deliveries = httpx.get(f"{stack.base_url}/jobs/{job_id}/deliveries", timeout=5).json()
    assert [d["outcome"] for d in deliveries][-1] == "delivered"
    assert {d["msg_id"] for d in deliveries} == ids
