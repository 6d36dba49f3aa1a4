"""The worker's webhook deliveries: their own queue and slots, and a cap per receiving host.

Delivery attempts used to share the article queue: a receiver that was down, or a storm of
redeliveries, filled the waiting list (holding new articles back, as the queue cap counts that
list) and took article slots.  They now have a queue of their own (``Keys.delivery_queue_name``)
served by a third SAQ worker in the worker process, with ``KURZ_DELIVERY_CONCURRENCY`` slots; it
shares the article worker's state (its HTTP client, notifier and signers) and never loads a
model.

Within it, ``KURZ_WEBHOOK_HOST_CONCURRENCY`` caps the attempts in flight to any one host: a
host at its cap is skipped for now (the delivery is queued again a moment later, with its
attempt count unchanged) rather than waited for, so one slow or flooded receiver holds at most
that many slots and every other receiver's events keep moving.  Delivery jobs that an earlier
release queued on the article queue still run there (the article worker keeps the task).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from redis.asyncio import Redis

from service.constants import DELIVER_TASK, Keys
from service.queue import DrainingWorker, make_helper_worker
from service.settings import Settings
from service.webhooks.delivery import Delivery

__all__ = ["HOST_BUSY_DELAY_S", "HostSlots", "build_delivery_worker", "deliver"]

log = structlog.get_logger(__name__)

#: How long a delivery to a host at its cap waits before it is tried again.
HOST_BUSY_DELAY_S = 1.0


class HostSlots:
    """Attempts in flight per receiving host, within one worker process."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self.in_flight: Counter[str] = Counter()

    @contextmanager
    def take(self, url: str) -> Iterator[bool]:
        """Yields whether a slot for the URL's host was free (and holds it until the end)."""
        host = (urlsplit(url).hostname or "").lower()
        if self.in_flight[host] >= self.per_host:
            yield False
            return
        self.in_flight[host] += 1
        try:
            yield True
        finally:
            self.in_flight[host] -= 1
            if self.in_flight[host] <= 0:
                del self.in_flight[host]


async def deliver(ctx: Any, *, delivery: Any, body: str | None = None) -> None:
    """The SAQ task of one webhook attempt on the delivery queue (see ``Notifier.attempt``);
    a host at its cap gets the delivery again a moment later instead."""
    state = ctx["state"]
    decoded = msgspec.convert(delivery, Delivery)
    with ctx["hosts"].take(decoded.url) as free:
        if free:
            await state.notifier.attempt(state.http, decoded, body)
            return
    log.info("webhook host at its cap, delivery deferred", job=decoded.job_id[:12])
    await state.notifier.queue.defer_delivery(decoded, HOST_BUSY_DELAY_S)


def build_delivery_worker(
    settings: Settings, redis: Redis, state: asyncio.Future[Any]
) -> DrainingWorker:
    """A worker on the delivery queue; its start-up waits for ``state``, the article worker's
    (the HTTP client with its SSRF guard, the notifier and its signers)."""

    def prepare(ctx: Any) -> None:
        ctx["hosts"] = HostSlots(settings.webhook_host_concurrency)
        log.info("webhook deliveries ready", concurrency=settings.delivery_concurrency)

    return make_helper_worker(
        redis,
        Keys(settings.key_prefix).delivery_queue_name,
        state,
        functions=[(DELIVER_TASK, deliver)],
        concurrency=settings.delivery_concurrency,
        shutdown_grace_s=settings.shutdown_grace_s,
        prepare=prepare,
    )
