"""Prometheus metrics of the API, and of the workers as they record them in Redis.

Each app gets its own ``CollectorRegistry`` rather than prometheus_client's global one, so that
tests (or one process serving two apps) can build as many apps as they like without "duplicated
timeseries" errors.

Two kinds of series live here:

* what this process sees: request counts and latency per route, result-cache hits and misses;
* what the whole deployment does, read from Redis when Prometheus scrapes: queue depth, live
  workers, and the counters every worker adds to the ``Keys.stats()`` hash (jobs, sentences,
  seconds per pipeline stage).  Reading them at scrape time makes every API replica report the
  same cluster-wide numbers, and a scrape while Redis is down still answers (``kurz_redis_up 0``).
  A snapshot serves the scrapes of the next :data:`SNAPSHOT_MAX_AGE_S` seconds.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.queue import JobQueue
from service.store.stats import STAGE_COUNT, STAGE_SUM, Stats
from service.store.workers import WorkerRegistry

__all__ = ["ApiMetrics", "ClusterSnapshot", "MetricsMiddleware", "read_snapshot"]

NAMESPACE = "kurz"
#: How long one Redis snapshot answers scrapes: far below any scrape interval, so one scraper
#: always sees fresh figures, while many scrapers or a scrape loop cost Redis little.
SNAPSHOT_MAX_AGE_S = 2.0
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
#: Request latency buckets: from cache hits (ms) to ``wait=60`` long polls.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_WORKER_HELP: Mapping[str, str] = {
    "jobs_succeeded": "Jobs the workers finished successfully.",
    "jobs_failed": "Jobs that failed because of their input.",
    "sentences_translated": "Sentences in finished jobs (cached ones included).",
    "sentences_from_cache": "Sentences served from the sentence cache instead of the model.",
}


@dataclass(slots=True)
class ClusterSnapshot:
    """What Redis said at the last scrape; ``redis_up`` False leaves the rest empty."""

    redis_up: bool = False
    queued: int = 0
    active: int = 0
    workers: int = 0
    stats: dict[str, float] = field(default_factory=dict)


class _ClusterCollector(Collector):
    """Turns the latest :class:`ClusterSnapshot` into metric families when the registry asks."""

    def __init__(self) -> None:
        self.snapshot = ClusterSnapshot()

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield _gauge("redis_up", "1 when Redis answered at this scrape.", float(snap.redis_up))
        if not snap.redis_up:
            return
        yield _gauge("queue_depth", "Jobs waiting for a worker.", snap.queued)
        yield _gauge("queue_active", "Jobs a worker is running.", snap.active)
        yield _gauge("workers_alive", "Workers with a fresh heartbeat key.", snap.workers)
        yield from _worker_counters(snap.stats)
        yield _stage_summary(snap.stats)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)


def _worker_counters(stats: Mapping[str, float]) -> Iterator[Metric]:
    """One counter per plain field of the stats hash (``jobs_succeeded`` and so on)."""
    for name in sorted(stats):
        if ":" in name:
            continue
        documentation = _WORKER_HELP.get(name, f"Worker counter {name!r}.")
        metric = _UNSAFE.sub("_", name)
        yield CounterMetricFamily(f"{NAMESPACE}_worker_{metric}", documentation, value=stats[name])


def _stage_summary(stats: Mapping[str, float]) -> SummaryMetricFamily:
    """Seconds spent per pipeline stage, as Prometheus summary sum and count."""
    family = SummaryMetricFamily(
        f"{NAMESPACE}_job_stage_seconds",
        "Seconds finished jobs spent in each pipeline stage.",
        labels=["stage"],
    )
    stages = sorted(name.removeprefix(STAGE_SUM) for name in stats if name.startswith(STAGE_SUM))
    for stage in stages:
        family.add_metric(
            [stage],
            count_value=int(stats.get(f"{STAGE_COUNT}{stage}", 0)),
            sum_value=stats[f"{STAGE_SUM}{stage}"],
        )
    return family


class ApiMetrics:
    """Every series of one app, in that app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            f"{NAMESPACE}_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{NAMESPACE}_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: until it closes).",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            f"{NAMESPACE}_result_cache_hits",
            "Requests answered from the result cache.",
            registry=self.registry,
        )
        self.cache_misses = Counter(
            f"{NAMESPACE}_result_cache_misses",
            "Requests that needed a job.",
            registry=self.registry,
        )
        self.jobs_created = Counter(
            f"{NAMESPACE}_jobs_created",
            "Jobs this API process enqueued (requests sharing a running job not counted).",
            registry=self.registry,
        )
        self._cluster = _ClusterCollector()
        self.registry.register(self._cluster)
        self._taken = -math.inf
        self._refreshing = asyncio.Lock()

    def update(self, snapshot: ClusterSnapshot) -> None:
        self._cluster.snapshot = snapshot
        self._taken = time.monotonic()

    async def refresh(self, read: Callable[[], Awaitable[ClusterSnapshot]]) -> None:
        """Take a new cluster snapshot with ``read`` unless the last is younger than
        :data:`SNAPSHOT_MAX_AGE_S`: several scrapers (an HA Prometheus pair, a dashboard) then
        cost Redis one snapshot per interval, not one each.  Concurrent scrapes share a read."""
        async with self._refreshing:
            if time.monotonic() - self._taken >= SNAPSHOT_MAX_AGE_S:
                self.update(await read())

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Everything in this registry, in the format the scraper asks for, and its media type.

        Prometheus text format 0.0.4 unless the Accept header asks for OpenMetrics (or newer).
        """
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


async def read_snapshot(queue: JobQueue, workers: WorkerRegistry, stats: Stats) -> ClusterSnapshot:
    """Read queue lengths, live workers and worker counters from Redis.

    Redis errors give a snapshot with ``redis_up`` False rather than a failed scrape.
    """
    try:
        queued = await queue.depth()
        active = await queue.active()
        counters = await stats.read()
        alive = await workers.count()
    except (RedisConnectionError, RedisTimeoutError, OSError):
        return ClusterSnapshot(redis_up=False)
    return ClusterSnapshot(
        redis_up=True, queued=queued, active=active, workers=alive, stats=counters
    )


class MetricsMiddleware(ASGIMiddleware):
    """Counts and times every routed HTTP request, labelled by route template, not raw path.

    The template (``/jobs/{job_id:str}``) keeps the label set small: raw paths would make one
    series per job id.
    """

    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await next_app(scope, receive, send_and_record)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", "GET"))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
