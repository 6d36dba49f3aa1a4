"""An API process reuses the workers' announced models for ``KURZ_MODELS_REFRESH_S``, and no
longer: the models are in every cache key, so an upgrade must reach the keys within the bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.api.announced import AnnouncedModels
from service.api.app import create_app
from service.constants import Keys
from service.schemas import ModelInfo
from service.settings import Settings
from service.store.workers import WorkerRegistry
from tests.test_api import GERMAN

pytestmark = pytest.mark.redis


def models_named(name: str) -> dict[str, ModelInfo]:
    info = ModelInfo(name, "rev-1", "ctranslate2", "int8")
    return {"translation": info, "summarization": info}


async def announce(redis: Redis, prefix: str, name: str) -> None:
    await WorkerRegistry(redis, Keys(prefix)).announce_models(
        models_named(name), follows_instructions=False
    )


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_stale_models_record_is_read_again_once_its_bound_has_passed(
    redis: Redis, prefix: str
) -> None:
    """Within refresh_s the record read first is reused; after it, the new one is read."""
    clock = Clock()
    announced = AnnouncedModels(WorkerRegistry(redis, Keys(prefix)), 1.0, clock=clock)
    assert await announced.get() is None  # no worker has announced yet
    await announce(redis, prefix, "model-a")
    clock.now += 0.5
    assert await announced.get() is None  # still within the bound: not read again
    clock.now += 0.6
    assert await announced.get() == models_named("model-a")
    await announce(redis, prefix, "model-b")
    clock.now += 0.9
    assert await announced.get() == models_named("model-a")
    clock.now += 0.2
    assert await announced.get() == models_named("model-b")


async def test_a_zero_bound_reads_the_record_on_every_call(redis: Redis, prefix: str) -> None:
    """KURZ_MODELS_REFRESH_S=0 is the old behaviour: every request reads the record."""
    announced = AnnouncedModels(WorkerRegistry(redis, Keys(prefix)), 0.0, clock=Clock())
    await announce(redis, prefix, "model-a")
    assert await announced.get() == models_named("model-a")
    await announce(redis, prefix, "model-b")
    assert await announced.get() == models_named("model-b")


async def test_a_model_upgrade_changes_the_job_key_within_the_bound(
    make_settings: Callable[..., Settings], redis: Redis, prefix: str
) -> None:
    """Through the API: right after an upgrade the old key may still be used, but once the
    bound has passed the same article is another job (no old summary served for long)."""
    await announce(redis, prefix, "model-a")
    app = create_app(make_settings(models_refresh_s=0.3))
    async with AsyncTestClient(app) as client:
        before = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
        await announce(redis, prefix, "model-b")
        await asyncio.sleep(0.35)
        after = (await client.post("/summarize", json={"text": GERMAN})).json()["id"]
    assert after != before
