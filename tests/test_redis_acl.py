"""The compose stack's Redis servers as ``deploy/redis/start.sh`` configures them: the service
works through its limited ACL user, results go to the evicting cache server and job state to the
one that never evicts, and the user can do nothing else (real Redis, API and worker processes)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from redis.exceptions import AuthenticationError, NoPermissionError
from standardwebhooks.webhooks import Webhook

from service.webhooks import generate_secret
from tests.processes import ComposeRedis, ComposeStack, compose_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis]

WEBHOOK_SECRET = generate_secret()
TERMINAL = {"succeeded", "failed", "canceled"}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path
) -> Iterator[ComposeStack]:
    """Both compose Redis servers (own ports and files), one API and one worker as user kurz."""
    directory = tmp_path_factory.mktemp("acl")
    with compose_stack(directory, tiny_models_dir, KURZ_WEBHOOK_SECRET=WEBHOOK_SECRET) as made:
        yield made


def finished(base_url: str, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view: dict[str, Any] = httpx.get(f"{base_url}/jobs/{job_id}", timeout=5).json()
        if view["status"] in TERMINAL:
            return view
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} did not finish")


def keys_matching(server: ComposeRedis, pattern: str) -> list[bytes]:
    with redis_lib.Redis.from_url(server.url) as client:
        return list(client.scan_iter(pattern, count=1000))


def test_every_endpoint_works_through_the_limited_user(
    stack: ComposeStack, seed_texts: dict[str, str]
) -> None:
    """Summaries, the cache hit, webhooks and their redelivery, the event stream, the translate
    lane, cancel, health and metrics: none needs a command or key the ACL leaves out."""
    base = stack.base_url
    first, second = list(seed_texts.values())[:2]
    created = httpx.post(
        f"{base}/summarize",
        json={"text": first, "callback_url": stack.receiver.url, "external_id": "acl"},
        timeout=10,
    )
    assert created.status_code == 202, stack.logs()[-3000:]
    job_id = created.json()["id"]
    view = finished(base, job_id)
    assert view["status"] == "succeeded", view
    again = httpx.post(f"{base}/summarize", json={"text": first}, timeout=10)
    assert again.status_code == 200 and again.json()["result"]["cached"] is True

    events = httpx.get(f"{base}/jobs/{job_id}/events", timeout=30)
    assert events.status_code == 200 and "event: done" in events.text, events.text[:500]
    assert '"status":"succeeded"' in events.text
    deadline = time.monotonic() + 60
    while not stack.receiver.requests and time.monotonic() < deadline:
        time.sleep(0.2)
    [received] = stack.receiver.requests
    assert Webhook(WEBHOOK_SECRET).verify(received.body, received.headers)["data"]["id"] == job_id
    redelivered = httpx.post(f"{base}/jobs/{job_id}/deliveries/redeliver", timeout=10)
    assert redelivered.status_code == 202, redelivered.text
    deadline = time.monotonic() + 60
    while len(stack.receiver.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(stack.receiver.requests) == 2
    deliveries = httpx.get(f"{base}/jobs/{job_id}/deliveries", timeout=10)
    assert deliveries.status_code == 200 and len(deliveries.json()) >= 1

    translated = httpx.post(
        f"{base}/translate",
        json={"q": "Guten Morgen.", "source": "de", "target": "en"},
        timeout=120,
    )
    assert translated.status_code == 200, translated.text
    assert translated.json()["translatedText"]

    queued = httpx.post(f"{base}/summarize", json={"text": second, "style": "brief"}, timeout=10)
    assert queued.status_code == 202, queued.text
    canceled = httpx.delete(f"{base}/jobs/{queued.json()['id']}", timeout=10)
    assert canceled.status_code in (200, 202, 409), canceled.text  # 409: it finished first

    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=10)
    assert metrics.status_code == 200 and "kurz_workers_alive" in metrics.text
    assert not re.search(r"NOPERM|no permissions", stack.logs()), stack.logs()[-3000:]


def test_results_are_cached_on_the_cache_server_and_jobs_kept_on_the_queue_server(
    stack: ComposeStack, seed_texts: dict[str, str]
) -> None:
    """Evicting the cache server's keys loses only work that can be redone; the queue server,
    which never evicts, holds every job record."""
    text = list(seed_texts.values())[2]
    created = httpx.post(f"{stack.base_url}/summarize", json={"text": text}, timeout=10)
    assert finished(stack.base_url, created.json()["id"])["status"] == "succeeded"
    assert keys_matching(stack.cache, "kurz:result:*")
    assert keys_matching(stack.cache, "kurz:sentence:*")
    assert not keys_matching(stack.queue, "kurz:result:*")
    assert not keys_matching(stack.queue, "kurz:sentence:*")
    assert keys_matching(stack.queue, f"saq:job:kurz:{created.json()['id']}")
    assert not keys_matching(stack.cache, "saq:*")
    with redis_lib.Redis.from_url(stack.queue.url) as queue:
        assert queue.info("memory")["maxmemory_policy"] == "noeviction"
    with redis_lib.Redis.from_url(stack.cache.url) as cache:
        assert cache.info("memory")["maxmemory_policy"] == "allkeys-lru"


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "requirepass"),
        ("CONFIG", "SET", "maxmemory", "0"),
        ("ACL", "LIST"),
        ("SWAPDB", "0", "1"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("SHUTDOWN",),
        ("MONITOR",),
        ("GET", "another-app:secret"),
        ("SET", "unprefixed", "1"),
    ],
)
def test_the_app_user_may_do_nothing_else(stack: ComposeStack, command: tuple[str, ...]) -> None:
    """Someone holding the app's password still cannot wipe Redis, read its configuration or
    the password hash, stop it, or touch keys outside the service's prefixes."""
    with redis_lib.Redis.from_url(stack.queue.url) as client, pytest.raises(NoPermissionError):
        client.execute_command(*command)


def test_the_default_user_is_off(stack: ComposeStack) -> None:
    """No login without the app's user: an empty password, or the app's password for the
    ``default`` user (the one plain ``redis-cli`` and password-only URLs use), both fail."""
    url = f"redis://127.0.0.1:{stack.queue.port}/0"
    with redis_lib.Redis.from_url(url) as client, pytest.raises(AuthenticationError):
        client.get("kurz:anything")
    default = f"redis://default:{stack.queue.password}@127.0.0.1:{stack.queue.port}/0"
    with redis_lib.Redis.from_url(default) as client, pytest.raises(AuthenticationError):
        client.ping()


def test_a_restart_replays_every_transaction_of_the_append_only_file(tmp_path: Path) -> None:
    """Killed and started again on its files, Redis has every write the app's user made,
    those of MULTI/EXEC transactions (SAQ finishes jobs in one) included: Redis replays the
    file as the ``default`` user, which must keep its permissions although it is off."""
    server = ComposeRedis(tmp_path, "queue", secrets.token_hex(24))
    server.start()
    try:
        with redis_lib.Redis.from_url(server.url) as client:
            client.set("kurz:plain", "1")
            with client.pipeline(transaction=True) as pipe:
                pipe.set("kurz:in-transaction", "2").incr("kurz:counter").execute()
            assert client.get("kurz:in-transaction") == b"2"
        assert server.process is not None
        server.process.kill()
        server.process.wait(timeout=10)
        server.start()
        with redis_lib.Redis.from_url(server.url) as client:
            assert client.mget("kurz:plain", "kurz:in-transaction", "kurz:counter") == [
                b"1",
                b"2",
                b"1",
            ]
        log = (tmp_path / "redis.log").read_text(errors="replace")
        assert "AOF-loading-client" not in log, log[-2000:]
    finally:
        server.stop()
