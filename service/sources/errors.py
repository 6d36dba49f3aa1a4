"""Typed failures of article sources, each with a stable ``code`` and the HTTP status it maps to.

They extend the tree drawn in :mod:`service.errors`::

    KurzError
    ├── InputError
    │   ├── MarkupAsTextError       ``text`` that is plainly HTML (send it as ``html``)   422
    │   ├── NotHtmlError            a page or response that is not HTML                   415
    │   ├── PageTooLargeError       a page over the size limit                            413
    │   ├── NothingExtractedError   no article text found on the page                     422
    │   ├── ExtractionTimeoutError  extraction ran past its time limit                    422
    │   └── UrlRefusedError         a URL the fetcher may not read                        422
    └── FetchFailedError            the upstream site failed (status kept)           502 on the job

``http_status`` is what the API should answer (issue 10 moves that mapping onto the classes).
``FetchFailedError`` is no ``InputError``: a 503 or a timeout upstream may pass, so ``retryable``
tells the worker whether another attempt makes sense (a 404 or 410 will not change).
"""

from __future__ import annotations

from service.errors import InputError, KurzError


class MarkupAsTextError(InputError):
    """Plain ``text`` that is plainly HTML: the client should send it as ``html``."""

    code = "markup_as_text"
    http_status = 422

    def __init__(self) -> None:
        super().__init__("the text is HTML markup; send it in the `html` field instead")


class NotHtmlError(InputError):
    """The page (or the fetched response) is not HTML."""

    code = "not_html"
    http_status = 415

    def __init__(self, reason: str, content_type: str | None = None) -> None:
        self.content_type = content_type
        super().__init__(f"not an HTML page: {reason}")


class PageTooLargeError(InputError):
    """The page is over the size limit; ``size`` may be a lower bound when reading stopped."""

    code = "page_too_large"
    http_status = 413

    def __init__(self, size: int, limit: int, unit: str = "bytes") -> None:
        self.size = size
        self.limit = limit
        qualifier = "at least " if size > limit else ""
        super().__init__(f"the page has {qualifier}{size} {unit}; the limit is {limit}")


class NothingExtractedError(InputError):
    """The page holds no article text trafilatura could find."""

    code = "nothing_extracted"
    http_status = 422

    def __init__(self, reason: str = "no article text found on the page") -> None:
        super().__init__(reason)


class ExtractionTimeoutError(InputError):
    """Extraction ran past its hard time limit and its process was killed."""

    code = "extraction_timeout"
    http_status = 422

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        super().__init__(f"extracting the article took longer than {limit_s:g} s and was stopped")


class UrlRefusedError(InputError):
    """A URL the fetcher may not read (scheme, credentials, or a non-public address)."""

    code = "url_refused"
    http_status = 422

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"URL refused: {reason}")


class FetchFailedError(KurzError):
    """The page could not be fetched; ``upstream_status`` is the site's HTTP status, if any."""

    code = "fetch_failed"
    http_status = 502

    def __init__(self, url: str, reason: str, *, upstream_status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.upstream_status = upstream_status
        #: Whether a later attempt may succeed: network errors, timeouts, 429 and 5xx.
        self.retryable = upstream_status is None or upstream_status == 429 or upstream_status >= 500
        super().__init__(f"fetching the page failed: {reason}")
