"""Progressive results through real processes: an API and a worker on the tiny models stream
each paragraph as it is translated, a running job's view carries them, and the webhook still
announces only the end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync
from standardwebhooks.webhooks import Webhook

from service.constants import Keys
from service.webhooks import generate_secret
from tests.processes import ServiceStack, service_stack
from tests.receivers import ThreadedReceiver

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WEBHOOK_SECRET = generate_secret()


@pytest.fixture(scope="module")
def receiver() -> Iterator[ThreadedReceiver]:
    receiver = ThreadedReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path
) -> Iterator[ServiceStack]:
    with service_stack(
        tmp_path_factory.mktemp("progressive-stack"),
        tiny_models_dir,
        KURZ_WEBHOOK_SECRET=WEBHOOK_SECRET,
        KURZ_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
        KURZ_WEBHOOK_RETRY_SCHEDULE="0,1,1",
    ) as running:
        yield running


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, decoded data) pairs of a server-sent event stream as they arrive."""
    name, data = "", []
    for line in response.iter_lines():
        if not line:
            if name:
                yield name, json.loads("\n".join(data))
            name, data = "", []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())


def stored(stack: ServiceStack, job_id: str) -> bool:
    """Whether the job's paragraphs are in Redis (under the stack's default key prefix)."""
    client = redis_sync.Redis.from_url(stack.redis_url)
    try:
        return bool(client.exists(Keys("kurz").partial(job_id)))
    finally:
        client.close()


def paragraphs_of(result: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The result's alignment grouped by paragraph."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for pair in result["alignment"]:
        grouped.setdefault(pair["paragraph"], []).append(pair)
    return grouped


def test_paragraphs_stream_before_the_summary_and_the_webhook_is_one_final_event(
    stack: ServiceStack, receiver: ThreadedReceiver, seed_texts: dict[str, str]
) -> None:
    """All five seeds as one article: `translation` events arrive while it is still being
    translated (before any summary progress), a GET meanwhile shows them under `partial`, each
    paragraph once and as the result has it; the callback gets one `summary.succeeded` only,
    and the job's stored paragraphs are deleted once it has ended."""
    article = "\n\n".join(seed_texts.values())
    submitted = httpx.post(
        f"{stack.base_url}/summarize",
        json={"text": article, "callback_url": receiver.url},
        timeout=30,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    seen: list[tuple[str, Any]] = []
    running_view: dict[str, Any] | None = None
    stored_while_running = False
    with httpx.stream(
        "GET", f"{stack.base_url}/jobs/{job_id}/events", timeout=httpx.Timeout(30, read=600)
    ) as response:
        assert response.status_code == 200
        for name, data in events(response):
            seen.append((name, data))
            if name == "translation" and running_view is None:
                running_view = httpx.get(f"{stack.base_url}/jobs/{job_id}", timeout=30).json()
                stored_while_running = stored(stack, job_id)
            if name == "done":
                break
    names = [name for name, _ in seen]
    assert names[-1] == "done" and names.count("done") == 1
    view = seen[-1][1]
    assert view["status"] == "succeeded", view
    assert "partial" not in view
    expected = paragraphs_of(view["result"])

    translations = [data for name, data in seen if name == "translation"]
    assert len(translations) > 1
    numbers = [t["paragraph"] for t in translations]
    assert len(set(numbers)) == len(numbers)
    for translation in translations:
        assert translation["sentences"] == expected[translation["paragraph"]]
        first = view["result"]["alignment"][translation["first_sentence"]]
        assert first == translation["sentences"][0]
    # The stream polls, so a stage shorter than its interval (the summary, now that most of it
    # is mapped while the article translates) may never show; what is seen is in order.
    first = names.index("translation")
    stages = [data["progress"]["stage"] for name, data in seen[:first] if name == "progress"]
    assert stages and "summarize" not in stages, stages

    assert running_view is not None
    assert running_view["status"] == "running", running_view["status"]
    assert running_view["partial"], "a running job shows the paragraphs done so far"
    assert numbers[0] in [p["paragraph"] for p in running_view["partial"]]
    for shown in running_view["partial"]:
        assert shown["sentences"] == expected[shown["paragraph"]]

    deadline = time.monotonic() + 120
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    deliveries = httpx.get(f"{stack.base_url}/jobs/{job_id}/deliveries", timeout=30).json()
    assert [d["outcome"] for d in deliveries] == ["delivered"]
    [received] = receiver.requests
    event = Webhook(WEBHOOK_SECRET).verify(received.body, received.headers)
    assert event["type"] == "summary.succeeded"
    assert "partial" not in event["data"]
    assert event["data"]["result"]["alignment"] == view["result"]["alignment"]

    assert stored_while_running
    deadline = time.monotonic() + 60
    while stored(stack, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not stored(stack, job_id)
