"""The exception tree.  Every error the service raises on purpose is a ``KurzError``::

    KurzError                     500 internal
    ├── ConfigError               500 config: bad settings or files; the process refuses to start
    │   ├── PresetError           500 preset: one prompts/<style>.toml is invalid (file and field)
    │   ├── AllowListError        500 webhook_allow_hosts: an allow-list entry is malformed
    │   ├── WebhookConfigError    500 webhook_config: no secret, or a malformed one
    │   └── GlossaryFileError     500 glossary_file: a glossaries/*.tsv line is invalid
    ├── ModelUnavailableError     500 model_unavailable: neither a local directory nor cached
    ├── InputError                422 invalid_input: the request itself is wrong
    │   ├── EmptyTextError        422 empty_text: nothing but whitespace
    │   ├── TextTooLongError      413 text_too_long: more characters than KURZ_MAX_TEXT_CHARS
    │   ├── UnknownStyleError     422 unknown_style: style not among prompts/*.toml
    │   ├── NotGermanError        422 not_german: the article is in another language
    │   ├── CallbackRefusedError  422 callback_url_refused: a URL webhooks may not call
    │   ├── MarkupAsTextError     422 markup_as_text: ``text`` that is plainly HTML
    │   ├── NotHtmlError          415 not_html: a page or response that is not HTML
    │   ├── PageTooLargeError     413 page_too_large: a page over the size limit
    │   ├── NothingExtractedError 422 nothing_extracted: no article text on the page
    │   ├── ExtractionTimeoutError 422 extraction_timeout: extraction ran past its limit
    │   ├── UrlRefusedError       422 url_refused: a URL the fetcher may not read
    │   ├── GlossaryError         400 invalid_glossary: a glossary in a request is invalid
    │   │   ├── GlossaryEntriesError 400 invalid_glossary_entries: one line is invalid
    │   │   ├── GlossaryTooLargeError 400 glossary_too_large: over the size or entry limit
    │   │   └── UnsupportedGlossaryLanguagesError 400 unsupported_glossary_languages: not DE->EN
    │   ├── GlossaryNotFoundError 404 glossary_not_found: none with this id for this caller
    │   └── GlossaryLimitError    400 glossary_limit: the owner has the most allowed
    ├── FetchFailedError          502 fetch_failed: the article's site failed (its status kept)
    ├── LaneTimeoutError          503 translate_timeout: a translate-lane job outran the wait
    ├── LaneFailedError           500 translate_failed: a translate-lane job failed
    └── ApiProblem                (its own) a refusal the API decides: unknown job, bad key, ...
        └── QueueFullError        429 queue_full: the waiting list is at its limit

``code`` is the stable machine-readable name an API client can switch on; ``status`` is the HTTP
status the API answers with (``service.api.problems`` maps the tree, and nothing else does).  A
500's message stays in the log: clients get a generic "internal" problem.
``tests/test_errors.py`` checks that this drawing matches the classes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "AllowListError",
    "ApiProblem",
    "CallbackRefusedError",
    "ConfigError",
    "EmptyTextError",
    "ExtractionTimeoutError",
    "FetchFailedError",
    "GlossaryEntriesError",
    "GlossaryError",
    "GlossaryFileError",
    "GlossaryLimitError",
    "GlossaryNotFoundError",
    "GlossaryTooLargeError",
    "InputError",
    "KurzError",
    "LaneFailedError",
    "LaneTimeoutError",
    "MarkupAsTextError",
    "ModelUnavailableError",
    "NotGermanError",
    "NotHtmlError",
    "NothingExtractedError",
    "PageTooLargeError",
    "PresetError",
    "QueueFullError",
    "TextTooLongError",
    "UnknownStyleError",
    "UnsupportedGlossaryLanguagesError",
    "UrlRefusedError",
    "WebhookConfigError",
]


class KurzError(Exception):
    """Base of every deliberate error; ``code`` is stable across releases."""

    code: str = "internal"
    status: int = 500
    #: Response headers the error asks for (``Retry-After``, ``WWW-Authenticate``).
    headers: Mapping[str, str] = {}

    def extensions(self) -> dict[str, Any]:
        """Extra members of the problem document (the limit, the detected language, ...)."""
        return {}


class ConfigError(KurzError):
    """Settings or files that make the process unable to start."""

    code = "config"


class PresetError(ConfigError):
    """A style preset file is invalid; the message names the file and the field."""

    code = "preset"

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: field {field!r}: {problem}")


class AllowListError(ConfigError):
    """An entry of ``KURZ_WEBHOOK_ALLOW_HOSTS`` is neither a hostname nor an IP network."""

    code = "webhook_allow_hosts"


class WebhookConfigError(ConfigError):
    """Webhook settings that make deliveries impossible (no secret, a malformed secret)."""

    code = "webhook_config"


class ModelUnavailableError(KurzError):
    """A configured model cannot be loaded; the message says which and how to fetch it."""

    code = "model_unavailable"

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        message = (
            f"model {model!r} is not available: {reason}. "
            "Fetch it on a machine with internet with `python -m service download-models`, "
            "or point the setting at a local directory (KURZ_MODELS=tiny uses the offline models)."
        )
        super().__init__(message)


class InputError(KurzError):
    """The request is wrong; retrying it unchanged cannot succeed."""

    code = "invalid_input"
    status = 422


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


# --- article sources (HTML and URLs) --------------------------------------------------------------


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


# --- glossaries -----------------------------------------------------------------------------------


class GlossaryError(InputError):
    """A glossary in a request is invalid; the API answers 400, as DeepL does."""

    code = "invalid_glossary"
    status = 400


class GlossaryEntriesError(GlossaryError):
    """One line of the entries is invalid; ``line`` counts from 1, as an editor's does."""

    code = "invalid_glossary_entries"

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"glossary entries, line {line}: {problem}")


class GlossaryTooLargeError(GlossaryError):
    """The entries are over DeepL's size limit or our entry-count limit."""

    code = "glossary_too_large"


class UnsupportedGlossaryLanguagesError(GlossaryError):
    """The glossary is not German to English, the one pair this service translates."""

    code = "unsupported_glossary_languages"

    def __init__(self, source_lang: str, target_lang: str) -> None:
        self.source_lang = source_lang
        self.target_lang = target_lang
        super().__init__(
            f"unsupported glossary language pair {source_lang!r} -> {target_lang!r}; "
            "this service translates DE -> EN only"
        )


class GlossaryNotFoundError(InputError):
    """No glossary with this id belongs to the caller (another owner's is not found either)."""

    code = "glossary_not_found"
    status = 404

    def __init__(self, glossary_id: str) -> None:
        self.glossary_id = glossary_id
        super().__init__(f"glossary {glossary_id!r} not found")


class GlossaryLimitError(InputError):
    """The owner already has the most glossaries allowed (DeepL: 1,000 per account)."""

    code = "glossary_limit"
    status = 400

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"at most {limit} glossaries per owner; delete one first")


class GlossaryFileError(ConfigError):
    """A file of the default glossary is invalid; the message names the file and the line."""

    code = "glossary_file"

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")


class LaneTimeoutError(KurzError):
    """A translate-lane job was not done within the synchronous endpoints' wait (the job goes
    on; asked again, the same texts join it)."""

    code = "translate_timeout"
    status = 503
    #: Seconds a client should wait before it asks again.
    retry_after_s: ClassVar[int] = 5

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.headers = {"Retry-After": str(self.retry_after_s)}
        super().__init__(f"the translation took longer than {wait_s:g} s; retry shortly")


class LaneFailedError(KurzError):
    """A translate-lane job failed for good (its worker's error, kept in the log)."""

    code = "translate_failed"
    status = 500


class ApiProblem(KurzError):  # noqa: N818 - it is raised, but it is a problem document
    """A refusal the API decides itself, with its own status and code (queue full, unknown job,
    bad key, conflicting Idempotency-Key, ...); keyword arguments become extension members."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self._extensions = extensions

    def extensions(self) -> dict[str, Any]:
        return dict(self._extensions)


class QueueFullError(ApiProblem):
    """``depth`` jobs are waiting already, at least the configured limit."""

    code = "queue_full"
    status = 429
    #: Seconds a refused client should wait before it submits again.
    retry_after_s: ClassVar[int] = 15

    def __init__(self, depth: int) -> None:
        super().__init__(
            self.status,
            self.code,
            f"{depth} articles are waiting; retry later",
            headers={"Retry-After": str(self.retry_after_s)},
            queue_depth=depth,
        )
        self.depth = depth
