"""Guessing API keys gets a few tries a minute per address, not thousands.

Every endpoint with a key (ours, LibreTranslate's, DeepL's) counts missing or wrong keys per
client address; past ``KURZ_AUTH_FAILURES_PER_MINUTE`` that address gets 429 until the minute
ends, even with the right key, while other addresses are unaffected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import AppServer

pytestmark = pytest.mark.redis

KEY = "k" * 40
WRONG = "w" * 40
LIMIT = 3


async def one_window() -> None:
    """Start well inside a rate-limit minute, so that every request of a test counts in it."""
    seconds_into_minute = time.time() % 60
    if seconds_into_minute > 50:
        await asyncio.sleep(60 - seconds_into_minute + 0.1)


def other_address(app: Any) -> httpx.AsyncClient:
    """A client of the same (running) app that connects from another address."""
    transport = httpx.ASGITransport(app=cast("Any", app), client=("10.0.0.9", 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.mark.parametrize(
    ("path", "refused", "with_key"),
    [
        ("/styles", 401, {"Authorization": f"Bearer {KEY}"}),
        ("/v2/usage", 403, {"Authorization": f"DeepL-Auth-Key {KEY}"}),
        ("/languages", None, {"Authorization": f"Bearer {WRONG}"}),
    ],
    ids=["ours", "deepl", "open-endpoint"],
)
async def test_wrong_keys_are_limited_per_address(
    make_settings: Callable[..., Settings],
    serve_app: AppServer,
    path: str,
    refused: int | None,
    with_key: dict[str, str],
) -> None:
    await one_window()
    app = create_app(make_settings(api_keys=[KEY], auth_failures_per_minute=LIMIT))
    """Missing or wrong keys answer as usual up to the limit, then 429 for that address."""
    client = await serve_app(app)
    if refused is None:  # an endpoint that takes no key never counts anything
        for _ in range(LIMIT + 2):
            assert (await client.get(path, headers=with_key)).status_code == 200
        return
    scheme = with_key["Authorization"].split(" ")[0]
    wrong = {"Authorization": f"{scheme} {WRONG}"}
    for _ in range(LIMIT):
        assert (await client.get(path, headers=wrong)).status_code == refused
    blocked = await client.get(path, headers=wrong)
    assert blocked.status_code == 429, blocked.text
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    # The right key from the same address waits out the minute too: guessing must not pay.
    assert (await client.get(path, headers=with_key)).status_code == 429
    # Another address is not affected.
    async with other_address(app) as elsewhere:
        assert (await elsewhere.get(path, headers=with_key)).status_code == 200


async def test_libretranslate_wrong_keys_are_limited(
    make_settings: Callable[..., Settings], serve_app: AppServer
) -> None:
    """LibreTranslate's key is a body field: a wrong one is 403 until the limit, then 429."""
    await one_window()
    app = create_app(make_settings(api_keys=[KEY], auth_failures_per_minute=LIMIT))
    client = await serve_app(app)
    body = {"q": "Guten Morgen", "api_key": WRONG}
    for _ in range(LIMIT):
        assert (await client.post("/detect", json=body)).status_code == 403
    blocked = await client.post("/detect", json=body)
    assert blocked.status_code == 429
    assert "error" in blocked.json()


async def test_without_keys_nothing_is_counted(
    make_settings: Callable[..., Settings], serve_app: AppServer
) -> None:
    """An open API has no keys to guess: requests with any key header are not refused."""
    client = await serve_app(create_app(make_settings(auth_failures_per_minute=1)))
    for _ in range(5):
        response = await client.get("/styles", headers={"Authorization": f"Bearer {WRONG}"})
        assert response.status_code == 200
