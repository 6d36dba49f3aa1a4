"""Typed failures of article sources: defined in the one tree of :mod:`service.errors`, named
here for the modules of this package.  ``FetchFailedError`` is no ``InputError``: a 503 or a
timeout upstream may pass, so ``retryable`` tells the worker whether another attempt makes sense
(a 404 or 410 will not change)."""

from service.errors import (
    ExtractionTimeoutError,
    FetchFailedError,
    MarkupAsTextError,
    NothingExtractedError,
    NotHtmlError,
    PageTooLargeError,
    UrlRefusedError,
)

__all__ = [
    "ExtractionTimeoutError",
    "FetchFailedError",
    "MarkupAsTextError",
    "NotHtmlError",
    "NothingExtractedError",
    "PageTooLargeError",
    "UrlRefusedError",
]
