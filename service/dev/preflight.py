"""What ``make run`` checks before it starts anything: the models, and an external Redis."""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from service.dev.processes import Console, StackError, shown_path
from service.logs import redacted_url
from service.settings import Settings
from service.store.connection import make_redis

__all__ = ["check_models", "check_redis"]


def check_models(settings: Settings, console: Console) -> None:
    """Make sure both models can be loaded before anything starts.

    ``KURZ_MODELS=tiny`` builds the tiny models (cached after the first time).  Hub models are
    looked up in the Hugging Face cache and fetched when missing, with the hub's progress bars;
    ``ModelUnavailableError`` (offline, unknown id) propagates with the command to run.
    """
    if settings.models == "tiny":
        from service.dev.tiny import make_tiny_models

        console.say(f"building the tiny offline models in {shown_path(settings.tiny_models_dir)} …")
        make_tiny_models(settings.tiny_models_dir)
        return
    from service.nlp.loading import resolve_model_dir

    for source in (settings.translation_source, settings.summarization_source):
        console.say(f"checking model {source} (fetched into the Hugging Face cache if missing) …")
        resolve_model_dir(source, allow_download=True)


def check_redis(url: str) -> None:
    """Fail early, with the URL, when an external Redis does not answer."""

    async def ping() -> None:
        client = make_redis(url)
        try:
            await client.ping()  # type: ignore[misc]  # redis-py types sync and async alike
        finally:
            await client.aclose()

    try:
        asyncio.run(ping())
    except (RedisError, OSError) as error:
        message = f"cannot reach Redis at {redacted_url(url)}: {' '.join(str(error).split())}"
        raise StackError(message) from None
