"""The worker registry: who is alive (heartbeats) and which models they run (the models record).

Each worker rewrites its heartbeat every ``WORKER_HEARTBEAT_INTERVAL_S``: its record (host, pid,
models) under its own key with a TTL of ``WORKER_HEARTBEAT_TTL_S``, and its id in one sorted set
(``Keys.workers_alive``) scored by the time that heartbeat runs out.  A worker is alive while its
score lies in the future; readers drop the entries of workers that stopped beating, so the set
stays as small as the deployment.  Nothing SCANs the keyspace: readiness, metrics and the
container probes cost one or two commands however large the caches grow.  Scores are the
workers' wall clocks, compared with the reader's: hosts' clocks must agree to within a few
seconds (NTP), far less than the heartbeat's 15 s.  The models record holds the
model ids and revisions the workers announced at start-up; the API folds them into cache keys,
so a model upgrade never serves an old summary.

With each beat the worker also renews its host's key (``Keys.worker_host``), so a container's
liveness probe (``python -m service worker-alive``) asks one EXISTS of the host it runs on
instead of SCANning the keyspace for a worker id whose pid and suffix it cannot know.
"""

from __future__ import annotations

import os
import socket
import time

import msgspec
import structlog
from redis.asyncio import Redis

from service.constants import WORKER_HEARTBEAT_TTL_S, Keys
from service.schemas import ModelInfo

__all__ = ["SummarizerTraits", "WorkerRegistry"]

log = structlog.get_logger(__name__)


class SummarizerTraits(msgspec.Struct, frozen=True):
    """What the workers' summarizer does with a style."""

    model: str
    follows_instructions: bool


class WorkerRegistry:
    """Heartbeats and the models record, written by workers and read by the API."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    # --- the worker's side ------------------------------------------------------------------------

    async def announce_models(
        self, models: dict[str, ModelInfo], *, follows_instructions: bool
    ) -> None:
        """Record what this deployment's workers run (the last worker to start wins), and
        whether its summarizer follows a style's instruction (T5-family models do; BART-CNN
        style models summarize whatever they are given and ignore it)."""
        traits = SummarizerTraits(
            model=models["summarization"].id, follows_instructions=follows_instructions
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.models(), msgspec.json.encode(models))
            pipe.set(self.keys.summarizer(), msgspec.json.encode(traits))
            await pipe.execute()

    async def beat(self, worker_id: str, models: dict[str, ModelInfo]) -> None:
        """Write (or renew) this worker's heartbeat."""
        host = socket.gethostname()
        record = {
            "id": worker_id,
            "host": host,
            "pid": os.getpid(),
            "models": msgspec.to_builtins(models),
        }
        expires = time.time() + WORKER_HEARTBEAT_TTL_S
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(
                self.keys.worker(worker_id), msgspec.json.encode(record), ex=WORKER_HEARTBEAT_TTL_S
            )
            pipe.set(self.keys.worker_host(host), worker_id, ex=WORKER_HEARTBEAT_TTL_S)
            pipe.zadd(self.keys.workers_alive(), {worker_id: expires})
            # The set itself goes once every worker has stopped beating.
            pipe.expire(self.keys.workers_alive(), WORKER_HEARTBEAT_TTL_S)
            await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        """Forget a worker that stops cleanly (readiness need not wait for its key to expire).

        Its host's key goes too.  Another worker on the same host (``make run`` with several)
        writes it again within ``WORKER_HEARTBEAT_INTERVAL_S``, well inside a liveness probe's
        failure threshold; in a container there is one worker per host.
        """
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.worker(worker_id), self.keys.worker_host(socket.gethostname()))
            pipe.zrem(self.keys.workers_alive(), worker_id)
            await pipe.execute()

    async def host_alive(self, hostname: str) -> bool:
        """Whether a worker on ``hostname`` has beaten within ``WORKER_HEARTBEAT_TTL_S``."""
        return bool(await self.redis.exists(self.keys.worker_host(hostname)))

    # --- the API's side ---------------------------------------------------------------------------

    async def models(self) -> dict[str, ModelInfo] | None:
        """The announced models, or None before any worker has announced (or if unreadable)."""
        raw = await self.redis.get(self.keys.models())
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=dict[str, ModelInfo])
        except msgspec.DecodeError:
            log.warning("unreadable models record in redis; using placeholders")
            return None

    async def summarizer(self) -> SummarizerTraits | None:
        """What the announced summarizer can do, or None before any worker has said."""
        raw = await self.redis.get(self.keys.summarizer())
        if raw is None:
            return None
        try:
            return msgspec.json.decode(raw, type=SummarizerTraits)
        except msgspec.DecodeError:
            return None

    async def live(self, limit: int = 1000) -> list[str]:
        """Ids of the workers whose heartbeat has not run out, sorted (at most ``limit``)."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.workers_alive(), "-inf", now)
            pipe.zrangebyscore(self.keys.workers_alive(), now, "+inf", start=0, num=limit)
            _, members = await pipe.execute()
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def count(self) -> int:
        """How many workers have a fresh heartbeat."""
        return int(await self.redis.zcount(self.keys.workers_alive(), time.time(), "+inf"))
