"""One webhook delivery attempt, its outcome, the retry timing, and the guarded HTTP client.

The queue worker drives a delivery; this module holds no loop and never sleeps, so a retry
hours away is a scheduled queue job rather than a coroutine blocking a worker slot::

    signer = WebhookSigner.from_setting(settings.webhook_secret)   # refuses an empty secret
    client = make_client(AllowList.from_settings(settings.webhook_allow_hosts, callbacks=True),
                         settings.webhook_timeout_s)
    log = DeliveryLog(redis, Keys(settings.key_prefix))

    body = build_event("summary.succeeded", job_view, link=job_url)   # once per event
    delivery = Delivery(job_id=job_id, url=url, event_type="summary.succeeded",
                        msg_id=message_id(job_id, "summary.succeeded", url))  # per endpoint
    if await log.is_gone(url): ...   # skip endpoints that answered 410
    # per attempt (the first after next_delay(schedule, 1, None), normally 0 s):
    outcome = await attempt_delivery(client, delivery.url, delivery.msg_id, body, signer,
                                     timeout_s=settings.webhook_timeout_s,
                                     attempt=delivery.attempts + 1)
    await log.append(job_id, outcome.record)
    delay = delivery.advance(outcome, settings.webhook_retry_schedule)
    if delivery.status is DeliveryStatus.GONE:
        await log.mark_gone(delivery.url)
    if delay is not None:
        ...  # enqueue the next attempt ``delay`` seconds from now, with the same body and msg_id
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import enum
import random
import ssl
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Final

import httpx
import msgspec

from service.errors import CallbackRefusedError
from service.webhooks.events import new_message_id, now_iso
from service.webhooks.signing import WebhookSigner
from service.webhooks.ssrf import (
    AllowList,
    GuardedTransport,
    Resolver,
    check_url_syntax,
    system_resolver,
)

__all__ = [
    "MAX_RESPONSE_BYTES",
    "AttemptError",
    "AttemptOutcome",
    "AttemptRecord",
    "Delivery",
    "DeliveryStatus",
    "Outcome",
    "attempt_delivery",
    "make_client",
    "next_delay",
    "parse_retry_after",
]

#: How much of a receiver's response is read; only the first few hundred bytes are kept, as the
#: error text of a failed attempt.
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: Kept of a failed attempt's response body in its record.
_ERROR_SNIPPET_CHARS: Final = 200
#: A receiver's Retry-After is honoured up to this; a larger one would park the delivery forever.
MAX_RETRY_AFTER_S: Final = 24 * 3600.0
USER_AGENT: Final = "Kurzgefasst-Webhooks/1"


class Outcome(enum.StrEnum):
    """What one attempt achieved."""

    DELIVERED = "delivered"
    """A 2xx: done."""
    GONE = "gone"
    """A 410: the receiver says the endpoint no longer exists; never retried."""
    FAILED = "failed"
    """Anything else (3xx, 4xx, 5xx, timeout, connection error, refused address): retried."""


class AttemptRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt, as the delivery log keeps it and ``GET /jobs/{id}`` may show it."""

    msg_id: str
    #: The URL without query string or fragment, which often carry receiver tokens.
    endpoint: str
    attempt: int
    at: str
    status_code: int | None
    latency_ms: float
    #: What went wrong, coarsely (:class:`AttemptError`): a client reading its log learns that
    #: an attempt failed and how, never the addresses a name resolved to or what the receiver
    #: answered (callback URLs are the client's to choose, so the log must not become a probe
    #: of the private network).  The details go to the server's log.
    error: str | None
    outcome: Outcome


class AttemptError(enum.StrEnum):
    """The coarse reasons an attempt failed, as the delivery log shows them."""

    REFUSED = "refused"
    """The URL or an address it resolved to may not be called."""
    CONNECT_FAILED = "connect_failed"
    """The name did not resolve, or nothing accepted the connection."""
    TLS_FAILED = "tls_failed"
    """The receiver's certificate or TLS handshake was refused."""
    TIMEOUT = "timeout"
    TRANSPORT = "transport_error"
    """The connection broke mid-request, or the answer was not HTTP."""
    REDIRECT = "redirect_not_followed"
    GONE = "http_410_gone"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"


class AttemptOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`attempt_delivery`: its record and the receiver's Retry-After."""

    record: AttemptRecord
    retry_after: float | None = None
    """Seconds the receiver asked to wait (429 or 503 with Retry-After), else None."""
    detail: str | None = None
    """What exactly went wrong, for the server's log only (resolved addresses, the receiver's
    words)."""

    @property
    def outcome(self) -> Outcome:
        return self.record.outcome


class DeliveryStatus(enum.StrEnum):
    """Where one delivery stands; anything but ``PENDING`` is final."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """The retry schedule ran out."""
    GONE = "gone"


class Delivery(msgspec.Struct, kw_only=True):
    """One event on its way to one endpoint: the state the queue keeps between attempts."""

    job_id: str
    url: str
    event_type: str
    msg_id: str = msgspec.field(default_factory=new_message_id)
    attempts: int = 0
    status: DeliveryStatus = DeliveryStatus.PENDING
    #: The submitter whose callback this is (``service.store.submitters``); None: an endpoint
    #: of the deployment (``KURZ_WEBHOOK_ENDPOINTS``) or a callback of an open API.
    owner: str | None = None

    def advance(
        self,
        outcome: AttemptOutcome,
        schedule: Sequence[float],
        *,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> float | None:
        """Count one attempt; return the delay before the next, or None when this is final."""
        if self.status is not DeliveryStatus.PENDING:
            raise ValueError(f"delivery {self.msg_id} is already {self.status}")
        self.attempts += 1
        if outcome.outcome is Outcome.DELIVERED:
            self.status = DeliveryStatus.DELIVERED
            return None
        if outcome.outcome is Outcome.GONE:
            self.status = DeliveryStatus.GONE
            return None
        delay = next_delay(schedule, self.attempts + 1, outcome.retry_after, jitter, rng=rng)
        if delay is None:
            self.status = DeliveryStatus.FAILED
        return delay


def next_delay(
    schedule: Sequence[float],
    attempt_number: int,
    retry_after: float | None = None,
    jitter: float = 0.1,
    *,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before attempt ``attempt_number`` (1-based), or None past the schedule.

    ``schedule[n - 1]`` is the delay before attempt ``n`` (the default starts with 0: the first
    attempt is immediate).  Delays get ±``jitter`` (a fraction) so endpoints that failed together
    are not retried in lockstep; a zero delay stays zero.  A receiver's Retry-After (capped at
    ``MAX_RETRY_AFTER_S``) is a floor: the larger of it and the scheduled delay wins.
    """
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    if attempt_number > len(schedule):
        return None
    base = max(float(schedule[attempt_number - 1]), 0.0)
    uniform = rng.uniform if rng is not None else random.uniform
    delay = base * (1.0 + uniform(-jitter, jitter)) if base > 0 else 0.0
    if retry_after is not None:
        delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - (now or dt.datetime.now(tz=dt.UTC))).total_seconds(), 0.0)


def _endpoint(url: str) -> str:
    """``url`` without query and fragment, for records that others may read."""
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return url.split("?", 1)[0].split("#", 1)[0][:200]


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    """Up to ``limit`` bytes of the raw body, then stop reading.

    Raw rather than decoded bytes: a small gzip body can inflate to gigabytes in one chunk.
    """
    kept = bytearray()
    chunks = response.aiter_raw()
    try:
        async for chunk in chunks:
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
    return bytes(kept)


async def attempt_delivery(
    client: httpx.AsyncClient,
    url: str,
    msg_id: str,
    body: bytes,
    signer: WebhookSigner,
    *,
    timeout_s: float,
    attempt: int = 1,
) -> AttemptOutcome:
    """One signed POST of ``body`` to ``url``, classified; never raises for receiver trouble.

    2xx is delivered, 410 gone; everything else is a failed attempt, with 429 and 503 carrying
    their Retry-After.  ``timeout_s`` bounds the whole attempt (DNS, connect, send, response),
    not just each read, so a receiver dripping bytes cannot hold a worker; once a status line has
    arrived, it decides the outcome even if reading the rest times out.  Redirects are not
    followed (a 3xx fails).  Use a client from :func:`make_client`, whose
    transport refuses non-public addresses.
    """
    headers = signer.sign(msg_id, int(time.time()), body)
    headers.update(
        {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "user-agent": USER_AGENT,
        }
    )
    at = now_iso()
    started = time.perf_counter()
    status_code: int | None = None
    response_headers: httpx.Headers | None = None
    snippet = b""
    error: str | None = None
    code: AttemptError | None = None
    try:
        check_url_syntax(url)
        async with (
            asyncio.timeout(timeout_s),
            client.stream(
                "POST",
                url,
                content=body,
                headers=headers,
                timeout=timeout_s,
                follow_redirects=False,
            ) as response,
        ):
            status_code = response.status_code
            response_headers = response.headers
            if not response.is_success:  # a 2xx body says nothing we keep: done at the status
                snippet = await _read_capped(response, MAX_RESPONSE_BYTES)
    except CallbackRefusedError as exc:
        code, error = AttemptError.REFUSED, f"refused: {exc.reason}"
    except httpx.InvalidURL as exc:
        code, error = AttemptError.REFUSED, f"refused: not a valid URL ({exc})"
    except (TimeoutError, httpx.TimeoutException):
        code, error = AttemptError.TIMEOUT, f"timed out after {timeout_s:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        code = _transport_error(exc)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)

    retry_after: float | None = None
    if status_code is None:
        outcome = Outcome.FAILED
    elif 200 <= status_code < 300:
        outcome, error = Outcome.DELIVERED, None
    elif status_code == 410:
        outcome, error = Outcome.GONE, "HTTP 410: the receiver says this endpoint is gone"
        code = AttemptError.GONE
    else:
        outcome = Outcome.FAILED
        error = _status_error(status_code, response_headers, snippet)
        code = _status_code_error(status_code)
        if status_code in (429, 503) and response_headers is not None:
            retry_after = parse_retry_after(response_headers.get("retry-after"))
    record = AttemptRecord(
        msg_id=msg_id,
        endpoint=_endpoint(url),
        attempt=attempt,
        at=at,
        status_code=status_code,
        latency_ms=latency_ms,
        error=None if outcome is Outcome.DELIVERED else str(code or AttemptError.TRANSPORT),
        outcome=outcome,
    )
    return AttemptOutcome(record=record, retry_after=retry_after, detail=error)


def _transport_error(exc: httpx.HTTPError) -> AttemptError:
    """The coarse kind of a failure before any answer."""
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        tls = "certificate" in text or "ssl" in text or "tls" in text
        return AttemptError.TLS_FAILED if tls else AttemptError.CONNECT_FAILED
    return AttemptError.TRANSPORT


def _status_code_error(status_code: int) -> AttemptError:
    if 300 <= status_code < 400:
        return AttemptError.REDIRECT
    return AttemptError.HTTP_5XX if status_code >= 500 else AttemptError.HTTP_4XX


def _status_error(status_code: int, headers: httpx.Headers | None, snippet: bytes) -> str:
    """The error text of a non-2xx answer: the status and what the receiver said."""
    if 300 <= status_code < 400:
        location = headers.get("location", "") if headers is not None else ""
        return f"HTTP {status_code}: redirect to {location[:200]!r} not followed"
    said = snippet[: _ERROR_SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    said = " ".join(said.split())[:_ERROR_SNIPPET_CHARS]
    return f"HTTP {status_code}: {said}" if said else f"HTTP {status_code}"


def make_client(
    allow: AllowList,
    timeout_s: float,
    *,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The HTTP client for deliveries: SSRF-guarded, no redirects, no proxies from the env.

    ``trust_env=False`` keeps ``HTTP(S)_PROXY`` and ``.netrc`` out of it: a proxy would make the
    connection on the guard's behalf to whatever address it resolves.  ``verify`` takes an
    ``ssl.SSLContext`` for receivers behind a private CA; ``resolver`` and ``inner`` exist for
    tests.
    """
    return httpx.AsyncClient(
        transport=GuardedTransport(allow, resolver=resolver, verify=verify, inner=inner),
        follow_redirects=False,
        timeout=httpx.Timeout(timeout_s),
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )
