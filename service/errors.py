"""The exception tree.  Every error the service raises on purpose is a ``KurzError``::

    KurzError                     500 internal
    ├── ConfigError               500 config: bad settings or files; the process refuses to start
    │   ├── PresetError           500 preset: one prompts/<style>.toml is invalid (file and field)
    │   ├── AllowListError        500 webhook_allow_hosts: an allow-list entry is malformed
    │   └── WebhookConfigError    500 webhook_config: no secret, or a malformed one
    ├── ModelUnavailableError     500 model_unavailable: neither a local directory nor cached
    ├── InputError                422 invalid_input: the request itself is wrong
    │   ├── EmptyTextError        422 empty_text: nothing but whitespace
    │   ├── TextTooLongError      413 text_too_long: more characters than KURZ_MAX_TEXT_CHARS
    │   ├── UnknownStyleError     422 unknown_style: style not among prompts/*.toml
    │   ├── NotGermanError        422 not_german: the article is in another language
    │   └── CallbackRefusedError  422 callback_url_refused: a URL webhooks may not call
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
    "InputError",
    "KurzError",
    "ModelUnavailableError",
    "NotGermanError",
    "PresetError",
    "QueueFullError",
    "TextTooLongError",
    "UnknownStyleError",
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
