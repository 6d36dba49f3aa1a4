"""``GET /styles`` says, per style, whether the loaded summarizer follows its instruction."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import pytest
from redis.asyncio import Redis

from service.api.app import create_app
from service.constants import Keys
from service.schemas import ModelInfo
from service.settings import Settings
from service.store.workers import WorkerRegistry

if TYPE_CHECKING:
    from tests.conftest import AppServer

pytestmark = pytest.mark.redis

MODELS = {
    "translation": ModelInfo("Helsinki-NLP/opus-mt-de-en", "abc", "ctranslate2", "int8"),
    "summarization": ModelInfo("google/flan-t5-large", "def", "ctranslate2", "int8"),
}


@pytest.fixture
def registry(redis: Redis, prefix: str) -> WorkerRegistry:
    """The worker registry on this test's key prefix."""
    return WorkerRegistry(redis, Keys(prefix))


@pytest.fixture
async def client(make_settings: Callable[..., Settings], serve_app: AppServer) -> httpx.AsyncClient:
    """The app on the same key prefix as the registry."""
    return await serve_app(create_app(make_settings()))


async def test_before_any_worker_the_report_says_it_does_not_know(
    client: httpx.AsyncClient,
) -> None:
    """No worker has announced its summarizer: every style says null, with its layout."""
    styles = (await client.get("/styles")).json()
    assert {style["name"] for style in styles} >= {"standard", "bullets", "headline"}
    for style in styles:
        assert style["instruction_applies"] is None
        assert style["summarizer"] is None
        assert style["layout"] in ("paragraph", "bullets", "headline")


@pytest.mark.parametrize("follows", [True, False])
async def test_the_report_follows_what_the_workers_announced(
    client: httpx.AsyncClient, registry: WorkerRegistry, follows: bool
) -> None:
    """An instruction-following summarizer makes every instruction apply; a BART-style one
    makes none apply, and the report names the model either way."""
    await registry.announce_models(MODELS, follows_instructions=follows)
    styles = (await client.get("/styles")).json()
    assert {style["instruction_applies"] for style in styles} == {follows}
    assert {style["summarizer"] for style in styles} == {"google/flan-t5-large"}
