"""A job's article from whichever input it came in, and the result it may already have.

The API keys an ``html`` or ``url`` job by its raw input, as it cannot know the article's text;
the worker can.  So after extraction it takes the result cache key over the extracted text and
title (:func:`~service.store.cache.result_key`, as for a text request) and, if a result is
filed there, serves that one: one article reached by two URLs, or sent as text and as HTML,
costs one run of the models.  A fresh result is filed under both keys.

Extraction runs in child processes the worker starts with itself (:class:`Extractor`), never
on an event loop; URLs are fetched through the SSRF guard with the fetch allow-list.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec

from service.constants import MIN_GERMAN_SHARE
from service.errors import FetchFailedError, KurzError, NotGermanError
from service.queue import JobPayload
from service.schemas import ArticleSource, Result
from service.settings import Settings
from service.sources.article import ResolvedArticle, resolve_article
from service.sources.extract import Extractor
from service.sources.fetch import ArticleFetcher
from service.store.cache import ResultCache
from service.webhooks.ssrf import AllowList

__all__ = ["ArticleIntake", "job_error", "retryable"]

#: Extraction processes per worker, at most: one page takes 0.02-0.3 s, so two keep up with
#: any number of concurrent jobs, and each process holds 60-80 MB (Python, lxml, trafilatura).
MAX_EXTRACT_PROCESSES = 2


@dataclass(slots=True)
class ArticleIntake:
    """Resolves job payloads into articles and files results under their content keys."""

    extractor: Extractor
    fetcher: ArticleFetcher
    results: ResultCache
    max_text_chars: int

    @classmethod
    async def start(cls, settings: Settings, results: ResultCache) -> ArticleIntake:
        """Start the extraction processes (in a thread: about a second each) and the fetcher."""
        extractor = Extractor(
            processes=min(MAX_EXTRACT_PROCESSES, settings.worker_concurrency),
            timeout_s=settings.extract_timeout_s,
            # The API's body limit bounds html; the fetch byte cap bounds pages (a character
            # takes at least one byte).
            max_html_chars=max(settings.max_body_bytes, settings.fetch_max_bytes),
        )
        await asyncio.to_thread(extractor.start)
        fetcher = ArticleFetcher(
            AllowList.from_settings(settings.fetch_allow_hosts),
            timeout_s=settings.fetch_timeout_s,
            max_bytes=settings.fetch_max_bytes,
        )
        return cls(extractor, fetcher, results, settings.max_text_chars)

    async def close(self) -> None:
        """Stop the extraction processes."""
        await asyncio.to_thread(self.extractor.close)

    async def resolve(self, payload: JobPayload) -> ResolvedArticle:
        """The article of the payload's one input; typed errors of ``service.errors``."""
        return await resolve_article(
            text=payload.text or None,
            html=payload.html,
            url=payload.url,
            title=payload.title,
            extractor=self.extractor,
            fetcher=self.fetcher,
            max_text_chars=self.max_text_chars,
        )

    async def known_result(
        self,
        job_key: str,
        content_key: str,
        source: ArticleSource,
        *,
        allow_non_german: bool = False,
    ) -> Result | None:
        """The result another job already made of this article, as this job's (``cached``).

        The language is judged as the API judges a cache hit: a result made for a request that
        allowed other languages does not let this one skip the check.
        """
        if content_key == job_key:
            return None  # the API looked there before it made this job
        found = await self.results.get(content_key)
        if found is None:
            return None
        if not allow_non_german and found.german_share < MIN_GERMAN_SHARE:
            raise NotGermanError(found.source_language, found.german_share)
        return msgspec.structs.replace(found, cached=True, source=source)

    async def file(
        self, job_key: str, content_key: str, result: Result, article: ResolvedArticle
    ) -> None:
        """File the result under the job's key and, for the article's text, under its content
        key, with the source a text request for that content would have had."""
        await self.results.put(job_key, result)
        if content_key == job_key:
            return
        source = ArticleSource(kind="text", title=article.title, characters=len(article.text))
        await self.results.put(
            content_key, msgspec.structs.replace(result, cached=False, source=source)
        )


def retryable(error: KurzError) -> bool:
    """Whether another attempt may succeed: only a fetch that failed for a passing reason."""
    return isinstance(error, FetchFailedError) and error.retryable


def job_error(error: KurzError) -> dict[str, Any]:
    """The job's ``error`` record: the stable code, the message, the status the same problem
    has over HTTP, and the site's own status when a fetch failed."""
    record: dict[str, Any] = {"code": error.code, "detail": str(error), "status": error.status}
    if isinstance(error, FetchFailedError) and error.upstream_status is not None:
        record["upstream_status"] = error.upstream_status
    return record
