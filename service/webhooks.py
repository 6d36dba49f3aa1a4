"""Webhook deliveries: signed events, one HTTP attempt per call, retry timing, a delivery log.

The queue worker drives a delivery; this module holds no loop and never sleeps, so a retry
hours away is a scheduled queue job rather than a coroutine blocking a worker slot::

    signer = WebhookSigner.from_setting(settings.webhook_secret)   # refuses an empty secret
    client = make_client(AllowList.from_settings(settings.webhook_allow_hosts),
                         settings.webhook_timeout_s)
    log = DeliveryLog(redis, settings.key_prefix)

    body = build_event("summary.succeeded", job_view, link=job_url)   # once per event
    delivery = Delivery(job_id=job_id, url=url, event_type="summary.succeeded")  # per endpoint
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

Signing follows Standard Webhooks (https://www.standardwebhooks.com/): the ``webhook-id`` stays
the same across retries of one event so receivers can de-duplicate, while the timestamp and
signature are made fresh for every attempt, because receivers refuse timestamps older than five
minutes and retries come hours later.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import datetime as dt
import email.utils
import enum
import hashlib
import random
import secrets as secrets_module
import ssl
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Final, Literal

import httpx
import msgspec
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.errors import ConfigError
from service.ssrf import (
    AllowList,
    CallbackRefusedError,
    GuardedTransport,
    Resolver,
    check_url_syntax,
    system_resolver,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_RESPONSE_BYTES",
    "AttemptOutcome",
    "AttemptRecord",
    "Delivery",
    "DeliveryLog",
    "DeliveryStatus",
    "EventType",
    "Outcome",
    "WebhookConfigError",
    "WebhookSigner",
    "WebhookVerificationError",
    "attempt_delivery",
    "build_event",
    "generate_secret",
    "make_client",
    "new_message_id",
    "next_delay",
    "parse_retry_after",
]

EventType = Literal["summary.succeeded", "summary.failed"]

#: Bodies above this carry a link to the job instead of the job: receivers (and proxies in front
#: of them) commonly refuse large request bodies, and a 100,000-character article's result with
#: its sentence alignment is several times this.
MAX_EVENT_BYTES: Final = 256 * 1024
#: How much of a receiver's response is read; only the first few hundred bytes are kept, as the
#: error text of a failed attempt.
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: Kept of a failed attempt's response body in its record.
_ERROR_SNIPPET_CHARS: Final = 200
#: A receiver's Retry-After is honoured up to this; a larger one would park the delivery forever.
MAX_RETRY_AFTER_S: Final = 24 * 3600.0
#: Standard Webhooks recommends secrets of 24 to 64 random bytes; shorter ones are refused.
MIN_SECRET_BYTES: Final = 24
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the format prefix, not a secret)
DELIVERY_LOG_TTL_S: Final = 30 * 24 * 3600
#: The newest records kept per job: enough for every attempt to several endpoints.
DELIVERY_LOG_MAX_RECORDS: Final = 500
USER_AGENT: Final = "Kurzgefasst-Webhooks/1"


class WebhookConfigError(ConfigError):
    """Webhook settings that make deliveries impossible (no secret, a malformed secret)."""

    code = "webhook_config"


def generate_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes), for ``KURZ_WEBHOOK_SECRET``."""
    return _SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode("ascii")


def _check_secret(secret: str, position: int) -> str:
    """Refuse a secret that is not ``whsec_`` + base64 of enough bytes; never echo the secret."""
    where = f"KURZ_WEBHOOK_SECRET entry {position}"
    if not secret.startswith(_SECRET_PREFIX):
        raise WebhookConfigError(f"{where} does not start with {_SECRET_PREFIX!r}")
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as exc:
        raise WebhookConfigError(f"{where} is not valid base64 after {_SECRET_PREFIX!r}") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise WebhookConfigError(
            f"{where} holds {len(raw)} bytes; at least {MIN_SECRET_BYTES} random bytes are needed"
        )
    return secret


class WebhookSigner:
    """Signs outgoing events with the first secret and verifies against any of them.

    Several secrets exist for rotation: put the new secret first and keep the old one behind it
    while receivers switch over.  An empty secret list is refused rather than replaced by a
    generated secret: a secret nobody configured is one no receiver can verify, and unsigned
    deliveries would teach receivers to skip verification.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        cleaned = [secret.strip() for secret in secrets if secret.strip()]
        if not cleaned:
            raise WebhookConfigError(
                "KURZ_WEBHOOK_SECRET is empty, so webhook deliveries are refused: every event is "
                'signed. Generate a secret with `python -c "from service.webhooks import '
                'generate_secret; print(generate_secret())"` and give it to your receivers.'
            )
        self._webhooks = [
            Webhook(_check_secret(secret, position))
            for position, secret in enumerate(cleaned, start=1)
        ]

    @classmethod
    def from_setting(cls, value: str) -> WebhookSigner:
        """Build from ``KURZ_WEBHOOK_SECRET``: comma-separated, the first one signs."""
        return cls(value.split(","))

    def sign(self, msg_id: str, timestamp: int | dt.datetime, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for ``body`` (UTF-8, as JSON always is)."""
        when = (
            timestamp
            if isinstance(timestamp, dt.datetime)
            else dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        )
        if when.tzinfo is None:
            raise ValueError("the timestamp must be timezone-aware")
        when = when.astimezone(dt.UTC)
        signature: str = self._webhooks[0].sign(
            msg_id=msg_id, timestamp=when, data=body.decode("utf-8")
        )
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Any:
        """The decoded JSON body if any configured secret signed it within the last 5 minutes.

        Raises ``WebhookVerificationError`` otherwise (also for malformed signature headers).
        """
        plain = {key.lower(): value for key, value in headers.items()}
        failure: WebhookVerificationError | None = None
        for webhook in self._webhooks:
            try:
                webhook.verify(body, plain, json_parse=False)
            except WebhookVerificationError as exc:
                failure = exc
            except ValueError as exc:  # a signature without "v1,", bad base64, a non-UTF-8 body
                failure = WebhookVerificationError(f"malformed webhook: {exc}")
            else:
                return msgspec.json.decode(body)
        assert failure is not None
        raise failure


def new_message_id() -> str:
    """A fresh ``webhook-id``: made once per event and endpoint, reused by every retry.

    Random rather than derived from the job id, because identical requests share a job key and a
    later run of the same key must not look like a duplicate to receivers.
    """
    return f"msg_{uuid.uuid4().hex}"


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def build_event(
    event_type: EventType,
    data: object,
    *,
    link: str,
    max_bytes: int = MAX_EVENT_BYTES,
    now: dt.datetime | None = None,
) -> bytes:
    """The JSON body of one event: ``{"type", "timestamp", "data"}``.

    ``data`` is the job as the API shows it (a ``JobView`` or its dict).  When the body would be
    larger than ``max_bytes``, ``data`` shrinks to ``{"id", "status", "link", "truncated": true}``
    so the receiver fetches the full job from ``link`` (an absolute URL of ``GET /jobs/{id}``).
    """
    builtin = msgspec.to_builtins(data)
    timestamp = _iso(now or _now())
    body = msgspec.json.encode({"type": event_type, "timestamp": timestamp, "data": builtin})
    if len(body) <= max_bytes:
        return body
    fields = builtin if isinstance(builtin, dict) else {}
    small = {
        "id": fields.get("id"),
        "status": fields.get("status"),
        "link": link,
        "truncated": True,
    }
    body = msgspec.json.encode({"type": event_type, "timestamp": timestamp, "data": small})
    if len(body) > max_bytes:
        raise ValueError(f"even the linked form of the event exceeds {max_bytes} bytes")
    return body


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
    error: str | None
    outcome: Outcome


class AttemptOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`attempt_delivery`: its record and the receiver's Retry-After."""

    record: AttemptRecord
    retry_after: float | None = None
    """Seconds the receiver asked to wait (429 or 503 with Retry-After), else None."""

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
    return max((when - (now or _now())).total_seconds(), 0.0)


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
    at = _iso(_now())
    started = time.perf_counter()
    status_code: int | None = None
    response_headers: httpx.Headers | None = None
    snippet = b""
    error: str | None = None
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
        error = f"refused: {exc.reason}"
    except httpx.InvalidURL as exc:
        error = f"refused: not a valid URL ({exc})"
    except (TimeoutError, httpx.TimeoutException):
        error = f"timed out after {timeout_s:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    latency_ms = round((time.perf_counter() - started) * 1000, 1)

    retry_after: float | None = None
    if status_code is None:
        outcome = Outcome.FAILED
    elif 200 <= status_code < 300:
        outcome, error = Outcome.DELIVERED, None
    elif status_code == 410:
        outcome, error = Outcome.GONE, "HTTP 410: the receiver says this endpoint is gone"
    else:
        outcome = Outcome.FAILED
        error = _status_error(status_code, response_headers, snippet)
        if status_code in (429, 503) and response_headers is not None:
            retry_after = parse_retry_after(response_headers.get("retry-after"))
    record = AttemptRecord(
        msg_id=msg_id,
        endpoint=_endpoint(url),
        attempt=attempt,
        at=at,
        status_code=status_code,
        latency_ms=latency_ms,
        error=error,
        outcome=outcome,
    )
    return AttemptOutcome(record=record, retry_after=retry_after)


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


class _GoneMark(msgspec.Struct, frozen=True):
    url: str
    at: str


class DeliveryLog:
    """Delivery attempts per job, and "endpoint gone" marks, in Redis.

    Attempts go to a list ``<prefix>:deliveries:<job id>`` (oldest first, the newest
    ``DELIVERY_LOG_MAX_RECORDS`` kept) that expires ``ttl_s`` after the last append.  A gone mark
    is ``<prefix>:webhook-gone:<sha256 of the URL>`` with the same TTL, so an endpoint that
    answered 410 is skipped for a month and then tried again.
    """

    def __init__(self, redis: Redis, prefix: str, *, ttl_s: int = DELIVERY_LOG_TTL_S) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def key(self, job_id: str) -> str:
        return f"{self.prefix}:deliveries:{job_id}"

    def gone_key(self, url: str) -> str:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return f"{self.prefix}:webhook-gone:{digest}"

    async def append(self, job_id: str, record: AttemptRecord) -> None:
        """Add one attempt and renew the list's TTL, atomically."""
        key = self.key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, msgspec.json.encode(record))
            pipe.ltrim(key, -DELIVERY_LOG_MAX_RECORDS, -1)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def list(self, job_id: str) -> builtins.list[AttemptRecord]:
        """Every kept attempt for ``job_id``, oldest first; empty when none or expired."""
        raw: builtins.list[bytes] = await self.redis.lrange(self.key(job_id), 0, -1)  # type: ignore[misc]
        return [msgspec.json.decode(item, type=AttemptRecord) for item in raw]

    async def mark_gone(self, url: str) -> None:
        """Remember that ``url`` answered 410, so later events skip it."""
        mark = _GoneMark(url=url, at=_iso(_now()))
        await self.redis.set(self.gone_key(url), msgspec.json.encode(mark), ex=self.ttl_s)

    async def is_gone(self, url: str) -> bool:
        return bool(await self.redis.exists(self.gone_key(url)))

    async def clear_gone(self, url: str) -> None:
        """Forget a gone mark (an operator fixed the endpoint)."""
        await self.redis.delete(self.gone_key(url))
