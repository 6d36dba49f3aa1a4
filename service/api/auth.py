"""The guards every protected endpoint passes: who is calling (and how often), and JSON bodies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from service.api.deps import services_of
from service.api.keys import Caller
from service.api.services import Services
from service.errors import ApiProblem

__all__ = [
    "RATE_BUCKET",
    "READ_BUCKET",
    "authenticate",
    "caller_of",
    "identify_limited",
    "require_json",
]


#: Route option naming a handler's rate-limit bucket; handlers without it count as submissions.
RATE_BUCKET = "rate_bucket"
#: The bucket of reads of a job (status, events, deliveries): polling is cheap and expected.
READ_BUCKET = "read"


async def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Require an API key when keys are configured; count the request against its bucket's
    rate limit (reads of jobs apart from everything else)."""
    services = services_of(connection.app.state)
    peer = connection.client.host if connection.client else None
    caller = await identify_limited(services, connection.headers, peer)
    connection.state.caller = caller
    if handler.opt.get(RATE_BUCKET) == READ_BUCKET:
        per_minute = services.settings.read_rate_limit_per_minute
        await services.limiter.check(f"{READ_BUCKET}:{caller.rate_subject}", per_minute)
    else:
        await services.limiter.check(caller.rate_subject, caller.rate_limit)


async def identify_limited(
    services: Services, headers: Mapping[str, str], peer: str | None
) -> Caller:
    """The caller behind a request's key, with failed attempts counted per client address.

    A missing or wrong key is a 401 (``ApiKeys.identify``) and counts against the address;
    once it has failed ``auth_failures_per_minute`` times this minute, every request from it is
    a 429 until the minute ends, whatever key it carries: guessing keys gets a few tries a
    minute, not thousands.  Without keys there is nothing to guess and nothing is counted.
    The count is read through ``services.auth_failures`` (at most a second old, see
    ``service.api.auth_failures``), not from Redis on every request.
    """
    limit = services.settings.auth_failures_per_minute
    if not services.api_keys.enabled or limit <= 0:
        return services.api_keys.identify(headers, peer)
    subject = f"auth-failures:ip:{peer or 'unknown'}"
    if await services.auth_failures.count(subject) >= limit:
        raise _too_many_failures(services, limit)
    try:
        return services.api_keys.identify(headers, peer)
    except ApiProblem as problem:
        if problem.status == 401 and not await services.auth_failures.fail(subject, limit):
            raise _too_many_failures(services, limit) from None
        raise


def _too_many_failures(services: Services, limit: int) -> ApiProblem:
    retry = services.limiter.retry_in_s()
    return ApiProblem(
        429,
        "too_many_auth_failures",
        f"more than {limit} requests with a wrong or missing API key from this address this "
        f"minute; retry in {retry} s",
        headers={"Retry-After": str(retry)},
        retry_after=retry,
    )


async def require_json(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Refuse bodies that are not JSON (415) and empty bodies (400) before anything is read.

    A coroutine, though it awaits nothing: Litestar runs a plain function guard in a thread,
    and that hop cost a cache hit more than its Redis read.

    Compressed bodies are refused too (415 ``unsupported_content_encoding``): neither Litestar
    nor uvicorn decodes a ``Content-Encoding``, so a gzip body would otherwise be parsed as
    garbage, and decoding one here would let a small body inflate past the byte limit.
    """
    codings = [
        coding.strip().lower()
        for value in connection.headers.getall("content-encoding", [])
        for coding in value.split(",")
    ]
    refused = [coding for coding in codings if coding not in ("", "identity")]
    if refused:
        raise ApiProblem(
            415,
            "unsupported_content_encoding",
            f"send the body uncompressed, not as {', '.join(refused)[:100]}",
            headers={"Accept-Encoding": "identity"},
        )
    content_type = connection.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not (media_type == "application/json" or media_type.endswith("+json")):
        raise ApiProblem(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media_type or '(no content type)'}",
        )
    if connection.headers.get("content-length") == "0":
        raise ApiProblem(400, "malformed_json", "the request body is empty")


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    caller = request.state.get("caller")
    if not isinstance(caller, Caller):
        raise RuntimeError("the authenticate guard did not run for this route")
    return caller
