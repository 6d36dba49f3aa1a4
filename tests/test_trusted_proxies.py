"""Behind a reverse proxy, without keys: each reader of the API is limited by its own address.

Without keys the rate limit counts per client address.  Behind a proxy every connection comes
from the proxy, so all readers would share one bucket; with the proxy's address in
``KURZ_TRUSTED_PROXIES`` the API takes the client's from ``X-Forwarded-For``, and from nobody
else (a client cannot pick a fresh bucket by sending the header itself).  Real API processes
(uvicorn reads the header, not the app), a real Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.processes import ServiceProcess, free_port, service_env, wait_until_live

pytestmark = pytest.mark.redis

LIMIT = 2
ARTICLE = "Die Bundesregierung hat am Montag in Berlin neue Regeln für den Wohnungsbau beschlossen."


@contextmanager
def api(tmp_path: Path, redis_url: str, prefix: str, **settings: str) -> Iterator[str]:
    """An API process (no keys, a submission limit of ``LIMIT`` per minute); its base URL."""
    port = free_port()
    env = service_env(
        redis_url,
        tmp_path,
        KURZ_PORT=str(port),
        KURZ_KEY_PREFIX=prefix,
        KURZ_RATE_LIMIT_PER_MINUTE=str(LIMIT),
        **settings,
    )
    process = ServiceProcess("api", env, tmp_path / f"api-{port}.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_live(base_url, process)
        yield base_url
    finally:
        process.stop()


def statuses(base_url: str, forwarded_for: str, count: int) -> list[int]:
    """The statuses of ``count`` submissions of distinct articles from ``forwarded_for``."""
    codes = []
    for number in range(count):
        response = httpx.post(
            f"{base_url}/summarize",
            json={"text": f"{ARTICLE} Leser {forwarded_for}, Nummer {number}."},
            headers={"X-Forwarded-For": forwarded_for},
            timeout=30,
        )
        codes.append(response.status_code)
    return codes


def test_a_trusted_proxys_clients_each_get_their_own_bucket(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Two readers behind the proxy: one at its limit does not hold the other back."""
    with api(tmp_path, redis_url, prefix, KURZ_TRUSTED_PROXIES="127.0.0.1") as base_url:
        assert statuses(base_url, "203.0.113.7", LIMIT + 1) == [202] * LIMIT + [429]
        assert statuses(base_url, "198.51.100.9", LIMIT) == [202] * LIMIT


def test_without_a_trusted_proxy_the_header_is_ignored(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """A client sending X-Forwarded-For to an API that trusts no proxy stays in its own bucket."""
    with api(tmp_path, redis_url, prefix) as base_url:
        assert statuses(base_url, "203.0.113.7", LIMIT) == [202] * LIMIT
        assert statuses(base_url, "198.51.100.9", 1) == [429]
