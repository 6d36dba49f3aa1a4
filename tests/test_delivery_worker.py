"""Webhook deliveries on their own worker: a cap per receiving host, and deferral instead of
waiting when a host is at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from service.constants import Keys
from service.delivery_worker import HostSlots, deliver
from service.queue import JobQueue
from service.webhooks.delivery import Delivery


def test_a_host_gets_at_most_its_slots_and_others_are_not_held_back() -> None:
    slots = HostSlots(per_host=2)
    with (
        slots.take("https://a.example/1") as first,
        slots.take("https://A.example:443/2") as second,
    ):
        assert first and second
        with slots.take("https://a.example/3") as third, slots.take("https://b.example/") as other:
            assert not third  # a.example is at its cap (its name is case-blind)
            assert other  # another host is not
    assert not slots.in_flight
    with slots.take("https://a.example/4") as again:
        assert again  # slots come back when attempts end


@dataclass
class FakeNotifier:
    queue: JobQueue
    attempted: list[Delivery] = field(default_factory=list)

    async def attempt(self, http: Any, delivery: Delivery, body: str | None = None) -> None:
        self.attempted.append(delivery)


@dataclass
class FakeState:
    notifier: FakeNotifier
    http: Any = None


@pytest.mark.redis
async def test_a_delivery_to_a_busy_host_is_deferred_with_its_attempt_count(
    redis: Redis, prefix: str
) -> None:
    """At the host's cap the attempt is not made and not waited for: the same attempt is queued
    again a moment later under a key of its own (the running job still holds the first)."""
    queue = JobQueue(redis, Keys(prefix))
    notifier = FakeNotifier(queue)
    hosts = HostSlots(per_host=1)
    ctx = {"state": FakeState(notifier), "hosts": hosts}
    delivery = Delivery(
        job_id="0" * 64, url="https://busy.example/hook", event_type="summary.succeeded", attempts=2
    )
    with hosts.take("https://busy.example/other"):
        await deliver(ctx, delivery=msgspec.to_builtins(delivery))
    assert notifier.attempted == []
    jobs = [job async for job in queue.deliveries.iter_jobs()]
    assert len(jobs) == 1 and ":deferred:" in jobs[0].key
    assert jobs[0].kwargs is not None
    assert jobs[0].kwargs["delivery"]["attempts"] == 2
    assert jobs[0].scheduled > 0  # later, not at once

    await deliver(ctx, delivery=msgspec.to_builtins(delivery))  # the host is free again
    assert [d.msg_id for d in notifier.attempted] == [delivery.msg_id]
