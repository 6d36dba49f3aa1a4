"""The workers' announced models as an API process sees them: read from Redis at most once per
``KURZ_MODELS_REFRESH_S``.

Why: the models are part of every cache key, so the API needs them on every ``POST /summarize``,
yet they change only when a worker with other models starts.  Reading the record per request
was one Redis round trip on each cache hit, as much as the hit's own read of its result.  Kept
here for ``refresh_s`` (default 1 s), a model upgrade reaches this process's cache keys at most
that long after the worker announced it; until then a request may still be answered from the
old models' result, which is exactly what it got a moment before the upgrade.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.schemas import ModelInfo
from service.store.workers import WorkerRegistry

__all__ = ["AnnouncedModels"]


class AnnouncedModels:
    """The latest models record of ``workers``, re-read once it is ``refresh_s`` old."""

    def __init__(
        self,
        workers: WorkerRegistry,
        refresh_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = workers
        self.refresh_s = refresh_s
        self.clock = clock
        self._models: dict[str, ModelInfo] | None = None
        self._read_at: float | None = None

    async def get(self) -> dict[str, ModelInfo] | None:
        """The announced models (None before any worker announced), at most ``refresh_s`` old.

        Concurrent requests at the moment the record runs out may each read it once; that is
        cheaper than making them wait on a lock, and they all read the same record.
        """
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.refresh_s:
            return self._models
        models = await self.workers.models()
        self._models, self._read_at = models, now
        return models
