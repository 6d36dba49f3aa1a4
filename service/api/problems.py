"""Every error the API returns, as an RFC 9457 ``application/problem+json`` document.

One function, :func:`problem_for`, turns any exception into a :class:`Problem`: the service's own
``KurzError`` tree by the status and stable ``code`` each class carries (the API's own
refusals, ``ApiProblem``, among them), Litestar's routing and validation errors, and Redis
outages (503, so clients retry instead of giving up).  Anything else is a bug: it becomes a 500
whose body says nothing about the cause, while the traceback goes to the log.  Keeping the
mapping in one place keeps the codes stable.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec
import redis.exceptions
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    SerializationException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec

from service.errors import KurzError, StorageFullError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_TYPE_BASE",
    "Problem",
    "ProblemDetail",
    "handle_exception",
    "problem_for",
    "problem_responses",
]

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: ``type`` is this base plus the code: a stable URI a client may compare or dereference.
PROBLEM_TYPE_BASE = "https://kurzgefasst.dev/problems/"
#: Seconds a client should wait before retrying while Redis is unreachable.
REDIS_RETRY_AFTER_S = 5

#: Where a msgspec error points: "at `$.data.text`" from Litestar, "at `$.text`" from the batch.
_FIELD_PATH = re.compile(r"at `\$\.(?:data(?:\.|(?=`)))?([^`]*)`")


class ProblemDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of every error response (for the OpenAPI document; extension members vary)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One error as the API answers it: status, stable code, text, extras and headers."""

    status: int
    code: str
    detail: str
    title: str = ""
    extensions: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """The problem document; extension members never override the standard ones."""
        document: dict[str, Any] = {
            "type": f"{PROBLEM_TYPE_BASE}{self.code}",
            "title": self.title or _title(self.status),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance is not None:
            document["instance"] = instance
        for name, value in self.extensions.items():
            document.setdefault(name, value)
        return document

    def response(self, instance: str | None = None) -> Response[dict[str, Any]]:
        return Response(
            self.body(instance),
            status_code=self.status,
            media_type=PROBLEM_MEDIA_TYPE,
            headers=dict(self.headers),
        )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_for(exc: BaseException) -> Problem:
    """The problem an exception stands for: the single exception-to-HTTP mapping of the API."""
    if isinstance(exc, KurzError):
        return _kurz_problem(exc)
    if _is_redis_outage(exc):
        return Problem(
            503,
            "redis_unavailable",
            "the job store is unreachable; retry shortly",
            headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
        )
    if _is_redis_out_of_memory(exc):
        return _kurz_problem(StorageFullError())
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, SerializationException):  # a body read by a handler itself
        return Problem(400, "malformed_json", f"the body is not valid JSON: {exc.detail}")
    if isinstance(exc, msgspec.ValidationError):  # a batch article checked by the API itself
        return _invalid_body(_field_in(str(exc)), str(exc).split(" - at ", 1)[0])
    return _internal()


def _invalid_body(field_name: str, message: str) -> Problem:
    """400 for a body of the wrong shape, naming the field unless the body as a whole is wrong."""
    if field_name in ("", "data"):
        return Problem(400, "invalid_body", f"the request body is invalid: {message}")
    return Problem(
        400,
        "invalid_body",
        f"field {field_name!r} is invalid: {message}",
        extensions={"field": field_name},
    )


def _kurz_problem(exc: KurzError) -> Problem:
    """The service's own errors carry their status, code, extension members and headers.

    A 500 is a fault of the server (bad configuration, a missing model): its message stays in
    the log.  Other statuses, 503 ``not_ready`` included, are answers the client can act on.
    """
    if exc.status == 500:
        return _internal()
    return Problem(
        exc.status, exc.code, str(exc), extensions=exc.extensions(), headers=dict(exc.headers)
    )


def _is_redis_outage(exc: BaseException) -> bool:
    """Redis unreachable or too slow: redis-py's own errors, or a socket error underneath.

    Only connection-level ``OSError``s count: a file error is a bug, not an outage.
    """
    return isinstance(
        exc,
        redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError
        | ConnectionError
        | TimeoutError,
    )


def _is_redis_out_of_memory(exc: BaseException) -> bool:
    """Redis refused a write at its ``maxmemory`` (``noeviction``): the store is full, which
    a client can wait out, not a fault of this server.  The guard in ``service.store.memory``
    refuses new work before this; a burst between two of its reads can still get here."""
    return isinstance(exc, redis.exceptions.OutOfMemoryError) or (
        # A write refused inside a Lua script comes back as the script's error.
        isinstance(exc, redis.exceptions.ResponseError) and "used memory > 'maxmemory'" in str(exc)
    )


def _http_problem(exc: HTTPException) -> Problem:
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        return _validation_problem(exc)
    if isinstance(exc, ClientException) and isinstance(exc.__cause__, SerializationException):
        reason = str(exc.detail).removeprefix("JSON is malformed: ")
        return Problem(400, "malformed_json", f"the body is not valid JSON: {reason}")
    simple: list[tuple[type[HTTPException], str, str]] = [
        (RequestEntityTooLarge, "body_too_large", "the request body is too large"),
        (NotAuthorizedException, "unauthorized", "a valid API key is required"),
        (PermissionDeniedException, "forbidden", "this API key may not do that"),
        (NotFoundException, "not_found", "no such resource"),
        (MethodNotAllowedException, "method_not_allowed", "method not allowed here"),
        (TooManyRequestsException, "rate_limited", "too many requests"),
    ]
    for kind, code, detail in simple:
        if isinstance(exc, kind):
            return Problem(exc.status_code, code, detail, headers=headers)
    if exc.status_code >= 500:
        return _internal()
    return Problem(exc.status_code, f"http_{exc.status_code}", exc.detail, headers=headers)


def _validation_problem(exc: ValidationException) -> Problem:
    """Request fields of the wrong type or shape: 400, naming the field and where it was."""
    errors = [item for item in (exc.extra or []) if isinstance(item, dict)]
    first = errors[0] if errors else {}
    source = str(first.get("source", "body"))
    message = str(first.get("message", exc.detail))
    field_name = _field_of(exc, first)
    if source == "body":
        return _invalid_body(field_name, message)
    return Problem(
        400,
        "invalid_parameter",
        f"{source} parameter {field_name!r} is invalid: {message}",
        extensions={"parameter": field_name, "in": source},
    )


def _field_of(exc: ValidationException, first: Mapping[str, Any]) -> str:
    """The full path of the bad field (``metadata.source``), from msgspec's message if it has it."""
    return _field_in(str(exc.__cause__ or "")) or str(first.get("key", ""))


def _field_in(message: str) -> str:
    """The field path in a msgspec message, without Litestar's ``data`` wrapper; "" if none."""
    match = _FIELD_PATH.search(message)
    return match.group(1) if match else ""


def _internal() -> Problem:
    return Problem(500, "internal", "an unexpected error occurred; it has been logged")


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Litestar's exception handler for everything: map, log what deserves it, answer."""
    problem = problem_for(exc)
    if problem.status >= 500 and problem.code == "internal":
        # The formatted traceback, not exc_info: renderers that show frame locals would put
        # request bodies (article text, API keys) into the log.
        log.error(
            "unhandled error",
            method=request.method,
            path=request.url.path,
            error=type(exc).__name__,
            traceback="".join(traceback.format_exception(exc)),
        )
    elif problem.code == "redis_unavailable":
        log.warning("redis unavailable", path=request.url.path, error=repr(exc))
    return problem.response(instance=request.url.path)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses an endpoint can answer with."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetail,
            media_type=PROBLEM_MEDIA_TYPE,
            description=_STATUS_DOCS.get(status, _title(status)),
            generate_examples=False,
        )
        for status in statuses
    }


_STATUS_DOCS: Mapping[int, str] = {
    400: "Malformed JSON (`malformed_json`), a field or parameter of the wrong type "
    "(`invalid_body`, `invalid_parameter`)",
    401: "Missing or invalid API key (`unauthorized`)",
    404: "No such job (`job_not_found`) or glossary (`glossary_not_found`)",
    409: "Conflict: `idempotency_conflict`, `job_finished`, or `job_canceling` (see Retry-After)",
    413: "Body over the byte limit (`body_too_large`) or text over the character limit "
    "(`text_too_long`)",
    415: "The body is not JSON (`unsupported_media_type`) or is compressed "
    "(`unsupported_content_encoding`; send it with no Content-Encoding)",
    422: "The article cannot be processed: `empty_text`, `unknown_style` (with `known_styles`), "
    "`not_german` (with `detected_language`), `callback_url_refused`, `too_many_articles`, "
    "`missing_input` / `conflicting_inputs` (not exactly one of `text`, `html`, `url`; with "
    "`fields`), `markup_as_text` (send it as `html`), `url_refused`",
    429: "`queue_full` or `rate_limited`; see Retry-After",
    503: "Redis unreachable (`redis_unavailable`), the job store full (`storage_full`) or no "
    "worker (`not_ready`); see Retry-After",
}
