"""``POST /summarize`` with ``html`` and ``url`` inputs: the request-time checks, over HTTP.

No worker runs here (``tests/test_service_e2e_sources.py`` has the jobs); these are the refusals
the API itself answers, as RFC 9457 problems, before any job exists, and the jobs it makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.api.app import create_app
from service.constants import Keys
from service.queue import JobQueue
from service.settings import ROOT, Settings
from tests.pages import cms_fragment, news_page, read_seed

pytestmark = pytest.mark.redis

GERMAN = (ROOT / "seeds" / "000_1e1de29cccfa5500.txt").read_text(encoding="utf-8")
PAGE = news_page(read_seed(GERMAN))
FRAGMENT = cms_fragment(read_seed(GERMAN))
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
async def client(
    make_settings: Callable[..., Settings],
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An open API whose fetch allow-list admits the documentation network only."""
    settings = make_settings(fetch_allow_hosts="192.0.2.0/24", webhook_allow_hosts="127.0.0.1")
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def queue(redis: Redis, prefix: str) -> JobQueue:
    return JobQueue(redis, Keys(prefix))


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"].endswith(f"/problems/{code}")
    assert body["title"] and body["detail"] and body["instance"] == "/summarize"
    return body


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"text": GERMAN, "html": PAGE}, "conflicting_inputs", ["text", "html"]),
        ({"html": PAGE, "url": "https://example.org/a"}, "conflicting_inputs", ["html", "url"]),
        (
            {"text": GERMAN, "html": PAGE, "url": "https://example.org/a"},
            "conflicting_inputs",
            ["text", "html", "url"],
        ),
        ({"title": "Nur ein Titel"}, "missing_input", ["text", "html", "url"]),
    ],
    ids=["text+html", "html+url", "all three", "none"],
)
async def test_not_exactly_one_input_is_422_naming_the_fields(
    client: AsyncTestClient[Litestar],
    queue: JobQueue,
    body: dict[str, Any],
    code: str,
    fields: list[str],
) -> None:
    """Two inputs or none: a 422 whose `fields` names them, and no job."""
    problem = assert_problem(await client.post("/summarize", json=body), 422, code)
    assert problem["fields"] == fields
    for name in fields:
        assert f"`{name}`" in problem["detail"]
    assert await queue.depth() == 0


async def test_markup_sent_as_text_is_refused_with_a_pointer_to_html(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """A page or a CMS fragment in `text` is 422 markup_as_text; prose with <Zitat> is not."""
    for markup in (PAGE, FRAGMENT):
        problem = assert_problem(
            await client.post("/summarize", json={"text": markup}), 422, "markup_as_text"
        )
        assert "`html`" in problem["detail"]
    assert await queue.depth() == 0
    prose = GERMAN + "\n\nEr nannte das <Zitat> eine Zumutung."
    assert (await client.post("/summarize", json={"text": prose})).status_code == 202


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/artikel",  # loopback: allowed for webhooks, not for fetches
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/intranet",
        "file:///etc/passwd",
        "ftp://example.org/artikel.html",
        "https://user:secret@example.org/artikel",
        "http://0x7f.1/",
    ],
)
async def test_a_url_no_worker_may_fetch_is_422_before_any_job(
    client: AsyncTestClient[Litestar], queue: JobQueue, url: str
) -> None:
    """Scheme, credentials and non-public addresses are refused at request time: url_refused."""
    problem = assert_problem(await client.post("/summarize", json={"url": url}), 422, "url_refused")
    assert problem["detail"].startswith("URL refused:")
    assert await queue.depth() == 0


async def test_url_jobs_carry_the_url_and_identical_urls_share_one(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """An allowed URL makes a job whose payload is the URL; the same URL joins it, another not."""
    first = await client.post("/summarize", json={"url": "http://192.0.2.7/politik/a.html"})
    assert first.status_code == 202, first.text
    again = await client.post("/summarize", json={"url": "http://192.0.2.7/politik/a.html"})
    other = await client.post("/summarize", json={"url": "http://192.0.2.7/politik/b.html"})
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]
    job = await queue.get(first.json()["id"])
    assert job is not None and job.kwargs is not None
    assert job.kwargs["url"] == "http://192.0.2.7/politik/a.html"
    assert (job.kwargs["text"], job.kwargs["html"]) == ("", None)
    assert await queue.depth() == 2


async def test_html_jobs_carry_the_page_and_are_keyed_apart_from_text(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """HTML is queued as sent (extracted by the worker), stored beside the job rather than in
    its arguments; its job key is not a text's key."""
    first = await client.post("/summarize", json={"html": FRAGMENT, "title": ""})
    assert first.status_code == 202, first.text
    job = await queue.get(first.json()["id"])
    assert job is not None and job.kwargs is not None
    assert FRAGMENT not in str(job.kwargs) and job.kwargs["input_stored"] is True
    stored = await queue.stored_input(job)
    assert stored is not None and (stored.html, stored.text) == (FRAGMENT, "")
    again = await client.post("/summarize", json={"html": FRAGMENT, "title": ""})
    assert again.json()["id"] == first.json()["id"]
    # The fragment's words as text (tags stripped) are a different job: text is keyed by its
    # content, HTML by the raw page, and only the worker can tell they are the same article.
    as_text = "\n\n".join(text for _, text in read_seed(GERMAN).blocks)
    text_job = await client.post("/summarize", json={"text": as_text})
    assert text_job.status_code == 202 and text_job.json()["id"] != first.json()["id"]
    blank = assert_problem(
        await client.post("/summarize", json={"html": " \n "}), 422, "empty_text"
    )
    assert blank["detail"]


async def test_html_over_the_body_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    """A page larger than the request body limit is refused before it is read whole."""
    async with AsyncTestClient(create_app(make_settings(max_body_bytes=4096))) as client:
        response = await client.post("/summarize", json={"html": PAGE})
    assert_problem(response, 413, "body_too_large")


async def test_batch_items_get_the_same_refusals_by_index(
    client: AsyncTestClient[Litestar], queue: JobQueue
) -> None:
    """In a batch each article is checked on its own: problems by index, good pages queued."""
    response = await client.post(
        "/summarize/batch",
        json={
            "articles": [
                {"html": FRAGMENT},
                {"text": GERMAN, "url": "http://192.0.2.7/a"},
                {"text": PAGE},
                {"url": "http://127.0.0.1/a"},
                {"url": "http://192.0.2.7/c"},
            ]
        },
    )
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    assert [job.get("error", {}).get("code") for job in jobs] == [
        None,
        "conflicting_inputs",
        "markup_as_text",
        "url_refused",
        None,
    ]
    assert jobs[1]["error"]["fields"] == ["text", "url"]
    assert await queue.depth() == 2
