"""From finished jobs to webhook deliveries, each delivery attempt a queued job of its own.

``Notifier.announce`` runs when a job ends (in the worker) or when a cached result answers a
request with a ``callback_url`` (in the API).  It schedules one delivery per endpoint: the
request's callback URLs (everyone who asked for this shared job) plus the globally configured
ones.  The ``webhook-id`` of a delivery is derived from the job, the event, the endpoint and the
submitter, so when a crash makes a job run twice, the second announcement reuses the first
one's queue key and id: receivers see at most a repeat, never a new event.

With API keys on, desks sharing a job are kept apart: each callback is recorded with the
submitter that registered it, and its event is built from that submitter's own ``external_id``
and metadata, names it (``submitted_by``), and is stored under its own id, so one desk's event
never carries, overwrites or reveals another's.  A desk lists and redelivers only its own.

``Notifier.attempt`` is the body of the delivery task: one signed POST, logged, then either
done or re-scheduled per ``KURZ_WEBHOOK_RETRY_SCHEDULE``.  A worker killed mid-attempt leaves a
queue job that SAQ re-runs, with the same id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import httpx
import msgspec
import structlog
from redis.asyncio import Redis

from service.constants import JOB_RECORD_TTL_S, Keys
from service.errors import TooManyCallbacksError, WebhookConfigError
from service.queue import JobQueue
from service.schemas import JobStatus, JobView
from service.settings import Settings
from service.store.submitters import Submitters, personal, submitter_name
from service.tenants import load_keys_file
from service.webhooks.delivery import Delivery, DeliveryStatus, attempt_delivery, next_delay
from service.webhooks.events import EventType, build_event
from service.webhooks.log import DeliveryLog
from service.webhooks.signing import WebhookSigner

log = structlog.get_logger(__name__)


class StoredDelivery(msgspec.Struct):
    """What a redelivery needs: the delivery's identity and the exact body that was sent."""

    delivery: Delivery
    body: str


def message_id(job_key: str, event_type: str, url: str, owner: str | None = None) -> str:
    """A stable ``webhook-id`` for one event of one job to one endpoint (of one submitter)."""
    named = f"{job_key}\0{event_type}\0{url}" + (f"\0{owner}" if owner is not None else "")
    digest = hashlib.sha256(named.encode()).hexdigest()
    return f"msg_{digest[:32]}"


#: Separates the submitter from the URL in a job's set of callbacks (neither contains it).
_OWNER_SEPARATOR = "\0"


def _callback_member(owner: str | None, url: str) -> str:
    return url if owner is None else f"{owner}{_OWNER_SEPARATOR}{url}"


def _callback_of(member: bytes) -> tuple[str | None, str]:
    """(submitter, URL) of a stored callback; a bare URL is an open API's."""
    text = bytes(member).decode()
    owner, separator, url = text.partition(_OWNER_SEPARATOR)
    return (owner, url) if separator else (None, text)


def event_type_of(view: JobView) -> EventType | None:
    """The event a job's final state announces (None while it is still going)."""
    if view.status == JobStatus.SUCCEEDED:
        return "summary.succeeded"
    if view.status == JobStatus.FAILED:
        return "summary.failed"
    return None


def _target_order(target: tuple[str | None, str]) -> tuple[str, str]:
    return (target[0] or "", target[1])


class Notifier:
    """Schedules and performs webhook deliveries for one deployment."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        queue: JobQueue,
        *,
        endpoints: Sequence[str],
        retry_schedule: Sequence[float],
        public_url: str,
        signer: WebhookSigner | None,
        timeout_s: float,
        desk_signers: Mapping[str, WebhookSigner] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.queue = queue
        self.endpoints = list(endpoints)
        self.retry_schedule = list(retry_schedule)
        self.public_url = public_url.rstrip("/")
        self.signer = signer
        #: Desks with webhook secrets of their own (the keys file), by submitter name.
        self.desk_signers = dict(desk_signers or {})
        self.timeout_s = timeout_s
        self.log = DeliveryLog(redis, keys)
        self.submitters = Submitters(redis, keys, JOB_RECORD_TTL_S)

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: Redis, queue: JobQueue, *, signing: bool
    ) -> Notifier:
        """The notifier of a deployment.  The API only schedules deliveries (``signing``
        False); workers sign and send them, and refuse to start with endpoints but no secret."""
        signer = None
        if signing and settings.webhook_secret:
            signer = WebhookSigner.from_setting(settings.webhook_secret)
        if signing and settings.webhook_endpoints and signer is None:
            raise WebhookConfigError("KURZ_WEBHOOK_ENDPOINTS is set but KURZ_WEBHOOK_SECRET is not")
        desk_signers: dict[str, WebhookSigner] = {}
        if signing and settings.api_keys_file is not None:
            desk_signers = load_keys_file(settings.api_keys_file).signers()
        return cls(
            redis,
            queue.keys,
            queue,
            endpoints=settings.webhook_endpoints,
            retry_schedule=settings.webhook_retry_schedule,
            public_url=settings.public_url,
            signer=signer,
            timeout_s=settings.webhook_timeout_s,
            desk_signers=desk_signers,
        )

    async def add_callback(
        self, job_key: str, url: str, *, owner: str | None = None, limit: int = 0
    ) -> None:
        """Remember a request's callback URL for the (possibly shared) job it waits on, with
        the submitter whose event it gets (None: an open API's single public caller).

        With ``limit``, ``owner`` may register at most that many distinct URLs for the job
        (``TooManyCallbacksError`` past it; a URL it registered before does not count again).
        """
        if limit > 0:
            mine = self.keys.callbacks_of(job_key, owner or "public")
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.sadd(mine, url)
                pipe.scard(mine)
                pipe.expire(mine, JOB_RECORD_TTL_S)
                added, count, _ = await pipe.execute()
            if added and count > limit:
                await self.redis.srem(mine, url)  # type: ignore[misc]
                raise TooManyCallbacksError(limit)
        key = self.keys.callbacks(job_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, _callback_member(owner, url))
            pipe.expire(key, JOB_RECORD_TTL_S)
            await pipe.execute()

    async def announce(
        self, view: JobView, *, only: Sequence[str] | None = None, owner: str | None = None
    ) -> int:
        """Schedule the job's final event; returns how many deliveries were scheduled.

        By default the event goes to every callback URL registered for the job (each built
        for the submitter that registered it) and to the global endpoints; ``only`` names the
        URLs instead, all of ``owner`` (a cache hit answers one request).
        """
        event_type = event_type_of(view)
        if event_type is None:
            return 0
        if only is not None:
            targets = sorted({(owner, url) for url in only}, key=_target_order)
        else:
            stored: set[bytes] = await self.redis.smembers(  # type: ignore[misc]
                self.keys.callbacks(view.id)
            )
            callbacks = {_callback_of(member) for member in stored}
            endpoints = {(None, endpoint) for endpoint in self.endpoints}
            targets = sorted(callbacks | endpoints, key=_target_order)
        bodies: dict[str | None, bytes] = {}
        scheduled = 0
        for submitter, url in targets:
            if await self.log.is_gone(url):
                log.info("webhook endpoint gone, skipped", job=view.id[:12])
                continue
            if submitter not in bodies:
                bodies[submitter] = await self._event(event_type, view, submitter)
            delivery = Delivery(
                job_id=view.id,
                url=url,
                event_type=event_type,
                msg_id=message_id(view.id, event_type, url, submitter),
                owner=submitter,
            )
            await self._remember(delivery, bodies[submitter])
            first = next_delay(self.retry_schedule, 1) or 0.0
            await self.queue.schedule_delivery(delivery, first)
            scheduled += 1
        return scheduled

    async def _event(self, event_type: EventType, view: JobView, submitter: str | None) -> bytes:
        """The event body one submitter's endpoints get: the job with that submitter's own
        attachments and name; the job as stored for the deployment's endpoints."""
        link = f"{self.public_url}/jobs/{view.id}"
        if submitter is None:
            return build_event(event_type, view, link=link)
        copy = await self.submitters.copy_of(view.id, submitter)
        data = msgspec.to_builtins(personal(view, copy))
        data["submitted_by"] = submitter_name(submitter)
        return build_event(event_type, data, link=link)

    async def own_message_ids(self, job_key: str, owner: str | None) -> set[str] | None:
        """The ``webhook-id``s of ``owner``'s deliveries of a job (None: no filter, every one)."""
        if owner is None:
            return None
        return {d.msg_id for d in await self._stored(job_key) if d.owner == owner}

    async def _stored(self, job_key: str) -> list[Delivery]:
        raw: dict[bytes, bytes] = await self.redis.hgetall(  # type: ignore[misc]
            self.keys.deliveries_state(job_key)
        )
        return [msgspec.json.decode(value, type=StoredDelivery).delivery for value in raw.values()]

    async def redeliver(self, job_key: str, *, owner: str | None = None) -> int:
        """Send the deliveries of a job again, with their original ``webhook-id`` and body: all
        of them, or only ``owner``'s (a desk redelivers its own events, never another's)."""
        count = 0
        for delivery in await self._stored(job_key):
            if owner is not None and delivery.owner != owner:
                continue
            fresh = msgspec.structs.replace(delivery, attempts=0, status=DeliveryStatus.PENDING)
            await self.log.clear_gone(fresh.url)
            await self.queue.schedule_delivery(fresh, 0.0, redelivery=True)
            count += 1
        return count

    async def _remember(self, delivery: Delivery, body: bytes) -> None:
        key = self.keys.deliveries_state(delivery.job_id)
        record = msgspec.json.encode(StoredDelivery(delivery=delivery, body=body.decode()))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, delivery.msg_id, record.decode())
            pipe.expire(key, JOB_RECORD_TTL_S)
            await pipe.execute()

    async def stored_body(self, delivery: Delivery) -> str | None:
        """The exact body of ``delivery``'s event as first built (None once it has expired)."""
        raw = await self.redis.hget(  # type: ignore[misc]
            self.keys.deliveries_state(delivery.job_id), delivery.msg_id
        )
        if raw is None:
            return None
        return msgspec.json.decode(raw, type=StoredDelivery).body

    async def attempt(
        self, client: httpx.AsyncClient, delivery: Delivery, body: str | None = None
    ) -> None:
        """One attempt of one delivery, then the next attempt scheduled if the schedule allows.

        The body is the stored one (a job queued by an older release may carry its own)."""
        signer = self.desk_signers.get(delivery.owner or "", self.signer)
        if signer is None:
            raise RuntimeError("webhook deliveries need KURZ_WEBHOOK_SECRET")
        if body is None:
            body = await self.stored_body(delivery)
            if body is None:
                log.warning("webhook event expired before delivery", job=delivery.job_id[:12])
                return
        outcome = await attempt_delivery(
            client,
            delivery.url,
            delivery.msg_id,
            body.encode(),
            signer,
            timeout_s=self.timeout_s,
            attempt=delivery.attempts + 1,
        )
        await self.log.append(delivery.job_id, outcome.record)
        delay = delivery.advance(outcome, self.retry_schedule)
        if delivery.status is DeliveryStatus.GONE:
            await self.log.mark_gone(delivery.url)
        if delay is not None:
            await self.queue.schedule_delivery(delivery, delay)
        log.info(
            "webhook attempt",
            job=delivery.job_id[:12],
            attempt=delivery.attempts,
            endpoint=outcome.record.endpoint,
            outcome=str(outcome.outcome),
            error=outcome.record.error,
            detail=outcome.detail,
            status=delivery.status.value,
            next_in_s=None if delay is None else round(delay, 1),
        )
