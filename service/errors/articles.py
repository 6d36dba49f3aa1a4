"""What is wrong with an article: its text, its style, its language, its callback, its page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.errors.base import InputError, KurzError


class EmptyTextError(InputError):
    """The article has no text."""

    code = "empty_text"

    def __init__(self) -> None:
        super().__init__("the article text is empty")


class TextTooLongError(InputError):
    """The article is over the character limit."""

    code = "text_too_long"
    status = 413

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(f"the article has {length} characters; the limit is {limit}")

    def extensions(self) -> dict[str, Any]:
        return {"length": self.length, "limit": self.limit}


class UnknownStyleError(InputError):
    """The requested style has no preset."""

    code = "unknown_style"

    def __init__(self, style: str, known: Sequence[str]) -> None:
        self.style = style
        self.known = list(known)
        super().__init__(f"unknown style {style!r}; known styles: {', '.join(self.known)}")

    def extensions(self) -> dict[str, Any]:
        return {"style": self.style, "known_styles": self.known}


class NotGermanError(InputError):
    """The article is not German."""

    code = "not_german"

    def __init__(self, detected: str, german_share: float) -> None:
        self.detected = detected
        self.german_share = german_share
        message = (
            f"the article does not look German (detected {detected!r}, "
            f"{german_share:.0%} of sentences German)"
        )
        super().__init__(message)

    def extensions(self) -> dict[str, Any]:
        return {"detected_language": self.detected, "german_share": self.german_share}


class CallbackRefusedError(InputError):
    """A callback URL or the address it leads to is not one webhooks may call."""

    code = "callback_url_refused"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"callback URL refused: {reason}")


class TooManyCallbacksError(InputError):
    """A caller has registered as many callback URLs for one job as it may: each is another
    POST of the job's event, so unbounded they would make the service a request amplifier."""

    code = "too_many_callbacks"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"this job already has {limit} callback URLs of yours; reuse one of them")

    def extensions(self) -> dict[str, Any]:
        return {"limit": self.limit}


class InputExpiredError(InputError):
    """A queued job's article was no longer stored when a worker took the job (it waited past
    the record's lifetime, or Redis evicted it); submitting the article again starts afresh."""

    code = "input_expired"
    status = 410

    def __init__(self) -> None:
        super().__init__("the article of this job is no longer stored; submit it again")


class MarkupAsTextError(InputError):
    """Plain ``text`` that is plainly HTML: the client should send it as ``html``."""

    code = "markup_as_text"
    status = 422

    def __init__(self) -> None:
        super().__init__("the text is HTML markup; send it in the `html` field instead")


class NotHtmlError(InputError):
    """The page (or the fetched response) is not HTML."""

    code = "not_html"
    status = 415

    def __init__(self, reason: str, content_type: str | None = None) -> None:
        self.content_type = content_type
        super().__init__(f"not an HTML page: {reason}")


class PageTooLargeError(InputError):
    """The page is over the size limit; ``size`` may be a lower bound when reading stopped."""

    code = "page_too_large"
    status = 413

    def __init__(self, size: int, limit: int, unit: str = "bytes") -> None:
        self.size = size
        self.limit = limit
        qualifier = "at least " if size > limit else ""
        super().__init__(f"the page has {qualifier}{size} {unit}; the limit is {limit}")


class NothingExtractedError(InputError):
    """The page holds no article text trafilatura could find."""

    code = "nothing_extracted"
    status = 422

    def __init__(self, reason: str = "no article text found on the page") -> None:
        super().__init__(reason)


class ExtractionTimeoutError(InputError):
    """Extraction ran past its hard time limit and its process was killed."""

    code = "extraction_timeout"
    status = 422

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        super().__init__(f"extracting the article took longer than {limit_s:g} s and was stopped")


class UrlRefusedError(InputError):
    """A URL the fetcher may not read (scheme, credentials, or a non-public address)."""

    code = "url_refused"
    status = 422

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"URL refused: {reason}")


class FetchFailedError(KurzError):
    """The page could not be fetched; ``upstream_status`` is the site's HTTP status, if any."""

    code = "fetch_failed"
    status = 502

    def __init__(self, url: str, reason: str, *, upstream_status: int | None = None) -> None:
        self.url = url
        self.reason = reason
        self.upstream_status = upstream_status
        #: Whether a later attempt may succeed: network errors, timeouts, 429 and 5xx.
        self.retryable = upstream_status is None or upstream_status == 429 or upstream_status >= 500
        super().__init__(f"fetching the page failed: {reason}")
