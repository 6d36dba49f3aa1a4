"""The worker's intake: a job's article from its input, the result another job made of the same
text, and the error record a failed job keeps (real Redis, real extraction processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from redis.asyncio import Redis

from service.constants import Keys
from service.errors import (
    ExtractionTimeoutError,
    FetchFailedError,
    NotGermanError,
    NotHtmlError,
)
from service.intake import ArticleIntake, job_error, retryable
from service.queue import JobPayload
from service.schemas import ArticleSource, ModelInfo, Result
from service.sources.extract import Extractor
from service.sources.fetch import ArticleFetcher
from service.store.cache import ResultCache
from service.webhooks.ssrf import AllowList
from tests.test_sources_extract import hang_on_marker

pytestmark = pytest.mark.redis

MODELS = {"translation": ModelInfo("m", "r", "transformers", "float32")}
PAGE = (
    "<html><head><title>Wahl in Köln</title></head><body><article><h1>Wahl in Köln</h1>"
    "<p>Die Wahl in Köln brachte am Sonntag ein überraschendes Ergebnis für alle Parteien.</p>"
    "</article></body></html>"
)


def a_result(**changes: object) -> Result:
    values: dict[str, object] = {
        "title_en": "Election in Cologne",
        "translation": "The election in Cologne brought a surprising result.",
        "summary": "A surprising result.",
        "style": "standard",
        "source_language": "de",
        "german_share": 1.0,
        "sentences_in": 1,
        "sentences_translated": 1,
        "sentences_from_cache": 0,
        "alignment": [],
        "models": MODELS,
        "timings_ms": {"total_ms": 1.0},
        "summary_chunks": 1,
        "summary_rounds": 1,
    }
    values.update(changes)
    return msgspec.convert(values, Result)


@pytest.fixture
async def intake(redis: Redis, prefix: str) -> AsyncIterator[ArticleIntake]:
    """An intake whose extractor hangs on pages that say HANG, with a 5 s limit (a fresh
    child's first page takes over a second on a busy machine: trafilatura warms up)."""
    started = ArticleIntake(
        extractor=Extractor(processes=1, timeout_s=5.0, run=hang_on_marker),
        fetcher=ArticleFetcher(AllowList()),
        results=ResultCache(redis, Keys(prefix), 3600),
        max_text_chars=100_000,
    )
    try:
        yield started
    finally:
        await started.close()


async def test_html_is_resolved_and_its_result_filed_under_both_keys(
    intake: ArticleIntake,
) -> None:
    """An html payload gives the page's text and title; its result is filed under the job key
    as it is, and under the content key with the source a text request would have had."""
    article = await intake.resolve(JobPayload(html=PAGE))
    assert article.title == "Wahl in Köln" and "überraschendes Ergebnis" in article.text
    assert article.source.kind == "html"
    result = a_result(source=article.source)
    await intake.file("job", "content", result, article)
    assert await intake.results.get("job") == result
    filed = await intake.results.get("content")
    assert filed is not None and filed.source == ArticleSource(
        kind="text", title="Wahl in Köln", characters=len(article.text)
    )


async def test_a_result_under_the_content_key_is_served_as_this_jobs(
    intake: ArticleIntake,
) -> None:
    """Another job's result for the same text comes back cached, with this job's source; none
    is looked up when the job key is the content key, and a non-German one is refused."""
    mine = ArticleSource(kind="url", url="https://example.org/a", characters=80)
    assert await intake.known_result("job", "content", mine) is None
    await intake.results.put("content", a_result(source=ArticleSource(kind="text")))
    served = await intake.known_result("job", "content", mine)
    assert served is not None and served.cached is True and served.source == mine
    assert await intake.known_result("content", "content", mine) is None
    await intake.results.put("english", a_result(german_share=0.1, source_language="en"))
    with pytest.raises(NotGermanError):
        await intake.known_result("job", "english", mine)
    allowed = await intake.known_result("job", "english", mine, allow_non_german=True)
    assert allowed is not None and allowed.source_language == "en"


async def test_a_hanging_extraction_fails_with_its_code_and_no_retry(
    intake: ArticleIntake,
) -> None:
    """Extraction past the limit is killed; the job's error names it and is not retryable."""
    with pytest.raises(ExtractionTimeoutError) as caught:
        await intake.resolve(JobPayload(html="<p>HANG</p>"))
    assert intake.extractor.children_killed == 1
    record = job_error(caught.value)
    assert record == {"code": "extraction_timeout", "detail": str(caught.value), "status": 422}
    assert not retryable(caught.value)
    # The killed child was replaced: the next page is extracted as usual.
    assert (await intake.resolve(JobPayload(html=PAGE))).title == "Wahl in Köln"


def test_job_errors_keep_the_status_and_the_sites_status() -> None:
    """A failed fetch records 502 and the site's status; only passing failures are retryable."""
    gone = FetchFailedError("https://example.org/a", "the site answered 404", upstream_status=404)
    assert job_error(gone) == {
        "code": "fetch_failed",
        "detail": str(gone),
        "status": 502,
        "upstream_status": 404,
    }
    assert not retryable(gone)
    assert retryable(FetchFailedError("https://example.org/a", "timed out"))
    assert retryable(FetchFailedError("https://example.org/a", "busy", upstream_status=503))
    assert job_error(NotHtmlError("the site sent application/pdf"))["status"] == 415
