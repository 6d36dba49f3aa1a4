"""Shared fixtures: tiny offline models, seed articles, the test Redis, settings, apps, receivers.

Fixtures that make things are factories (the arq pattern): a test asks for as many as it needs,
and the fixture closes everything it made when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis as redis_sync
from litestar import Litestar
from redis.asyncio import Redis

from service.settings import ROOT, Settings
from service.webhooks import generate_secret
from tests.processes import RedisServer, environ_without_kurz
from tests.receivers import Receiver, Script, always_204

SEEDS_DIR = ROOT / "seeds"

TEST_REDIS_URL = os.environ.get("KURZGEFASST_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
"""The shared Redis of the tests.  DB 14 keeps them off a developer's data in DB 0; each test
writes under a key prefix of its own and deletes only that prefix (nothing flushes the DB).  The
variable is deliberately not ``KURZ_``-prefixed: the tests scrub those from every environment."""

# Tests never reach the hub: a model that is not local must fail fast, not hang on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """The five German seed articles by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))}


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight models built from the seeds, once per test session."""
    from service.dev.tiny import make_tiny_models

    directory = tmp_path_factory.mktemp("tiny-models")
    make_tiny_models(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_settings(tiny_models_dir: Path) -> Settings:
    """Settings that run the pipeline on the tiny models, on the CPU."""
    return Settings(
        models="tiny",
        tiny_models_dir=tiny_models_dir,
        device="cpu",
        backend="transformers",
        inference_threads=2,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def long_article(seed_texts: dict[str, str]) -> str:
    """All seeds repeated until the article passes 30,000 characters."""
    parts: list[str] = []
    while sum(len(p) for p in parts) <= 30_000:
        parts.extend(seed_texts.values())
    return "\n\n".join(parts)


# --- the environment ------------------------------------------------------------------------------


def scrub_kurz_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every KURZ_ variable from this process until ``monkeypatch`` restores them.

    Subprocesses get the same scrub from :func:`tests.processes.environ_without_kurz`.
    """
    for name in set(os.environ) - set(environ_without_kurz()):
        monkeypatch.delenv(name)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KURZ_ variable from the developer's shell leaks into a test."""
    scrub_kurz_env(monkeypatch)


# --- Redis ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, once something answers there; otherwise the test is skipped."""
    client = redis_sync.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis_sync.ConnectionError, redis_sync.TimeoutError, OSError) as error:
        pytest.skip(
            f"needs Redis at {TEST_REDIS_URL} (set KURZGEFASST_TEST_REDIS_URL to use another): "
            f"{error}"
        )
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test Redis in the test's own event loop, closed afterwards."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def delete_prefix(client: Redis, prefix: str) -> int:
    """Delete a key prefix's keys and its SAQ queue's; nothing else.  Returns how many went."""
    deleted = 0
    for pattern in (f"{prefix}:*", f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
        keys = [key async for key in client.scan_iter(match=pattern, count=500)]
        if keys:
            deleted += int(await client.delete(*keys))
    return deleted


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys (and its SAQ queue's) are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    await delete_prefix(redis, name)


RedisServers = Callable[..., RedisServer]


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[RedisServers]:
    """Start private redis-servers (``start(port=None, aof=False)``) a test may stop, kill or
    restart; all are stopped when it ends."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers: list[RedisServer] = []

    def start(*, port: int | None = None, aof: bool = False) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", port, aof=aof)
        servers.append(server)  # before start: a server that fails half-way is stopped too
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


# --- settings and apps ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings_for(redis_url: str) -> Callable[..., Settings]:
    """Build Settings on the test Redis for a key prefix (``build(prefix, **overrides)``), from
    the arguments alone: no .env file, no KURZ_ variable of the shell, a fresh webhook secret."""

    def build(prefix: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "key_prefix": prefix,
            "webhook_secret": generate_secret(),
            **overrides,
        }
        with pytest.MonkeyPatch.context() as patch:
            scrub_kurz_env(patch)
            return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def make_settings(
    settings_for: Callable[..., Settings], prefix: str, clean_env: None
) -> Callable[..., Settings]:
    """Settings on this test's prefix (``make_settings(**overrides)``); the whole test runs
    without the shell's KURZ_ variables."""

    def build(**overrides: Any) -> Settings:
        return settings_for(prefix, **overrides)

    return build


AppServer = Callable[[Litestar], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def serve_app() -> AsyncIterator[AppServer]:
    """Serve apps in this event loop (``client = await serve_app(app)``), so requests and a
    simulated worker truly overlap; every app's client and lifespan is closed afterwards."""
    stop = asyncio.Event()
    lifespans: list[asyncio.Task[None]] = []
    clients: list[httpx.AsyncClient] = []

    async def run_lifespan(app: Litestar, ready: asyncio.Event) -> None:
        # One task enters and leaves the lifespan, as an ASGI server does: its anyio cancel
        # scope must be exited by the task that entered it, and teardown runs in another one.
        async with app.lifespan():
            ready.set()
            await stop.wait()

    async def serve(app: Litestar) -> httpx.AsyncClient:
        ready = asyncio.Event()
        lifespan = asyncio.create_task(run_lifespan(app, ready))
        lifespans.append(lifespan)
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({lifespan, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if lifespan.done():  # start-up failed: its error is raised here, not at teardown
            lifespans.remove(lifespan)
            lifespan.result()
        transport = httpx.ASGITransport(app=cast("Any", app))  # httpx types ASGI apps loosely
        client = httpx.AsyncClient(transport=transport, base_url="http://t")
        clients.append(client)
        return client

    try:
        yield serve
    finally:
        for client in clients:
            await client.aclose()
        stop.set()
        for lifespan in lifespans:
            await lifespan


# --- webhook receivers ----------------------------------------------------------------------------

Receivers = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    """Start loopback receivers (``await receivers(script, keep_alive=, ipv6=, ssl_context=)``);
    all are closed at the end of the test."""
    started: list[Receiver] = []

    async def start(
        script: Script = always_204,
        *,
        keep_alive: bool = False,
        ipv6: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Receiver:
        receiver = Receiver(script, keep_alive=keep_alive)
        started.append(receiver)
        return await receiver.start(ssl_context=ssl_context, ipv6=ipv6)

    try:
        yield start
    finally:
        for receiver in started:
            await receiver.close()
