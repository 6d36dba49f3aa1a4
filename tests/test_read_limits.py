"""Following your jobs is not throttled like submitting them: reads have their own bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from service.api.app import create_app
from service.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import AppServer

pytestmark = pytest.mark.redis

SUBMITS_PER_MINUTE = 3
READS_PER_MINUTE = 40
ARTICLE = "Die Bundesregierung hat am Montag in Berlin neue Regeln für den Wohnungsbau beschlossen."


@pytest.fixture
async def client(make_settings: Callable[..., Settings], serve_app: AppServer) -> httpx.AsyncClient:
    """The app with a low submission limit and a larger read limit, on this test's prefix."""
    settings = make_settings(
        rate_limit_per_minute=SUBMITS_PER_MINUTE, read_rate_limit_per_minute=READS_PER_MINUTE
    )
    return await serve_app(create_app(settings))


async def test_polling_a_job_is_counted_apart_from_submissions(
    client: httpx.AsyncClient,
) -> None:
    """A client may poll its job (and its webhook deliveries) far more often than it may
    submit: twenty reads pass with a submission limit of three, and the submissions are still
    limited."""
    submitted = await client.post("/summarize", json={"text": ARTICLE})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()["id"]
    for _ in range(10):
        polled = await client.get(f"/jobs/{job}")
        assert polled.status_code == 200, polled.text
        deliveries = await client.get(f"/jobs/{job}/deliveries")
        assert deliveries.status_code == 200, deliveries.text
    answers = [
        (await client.post("/summarize", json={"text": f"{ARTICLE} Nummer {n}."})).status_code
        for n in range(SUBMITS_PER_MINUTE)
    ]
    assert answers[-1] == 429
    assert answers.count(202) == SUBMITS_PER_MINUTE - 1


async def test_reads_have_a_limit_of_their_own(client: httpx.AsyncClient) -> None:
    """Past the read limit, reads get 429 with Retry-After, while a submission still passes."""
    submitted = await client.post("/summarize", json={"text": ARTICLE})
    job = submitted.json()["id"]
    codes = [(await client.get(f"/jobs/{job}")).status_code for _ in range(READS_PER_MINUTE + 1)]
    assert codes[:READS_PER_MINUTE] == [200] * READS_PER_MINUTE
    refused = await client.get(f"/jobs/{job}")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    again = await client.post("/summarize", json={"text": f"{ARTICLE} Noch einmal."})
    assert again.status_code == 202
