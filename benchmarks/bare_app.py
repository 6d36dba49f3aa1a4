"""The bare endpoint: ``python -m benchmarks.bare_app --port N --redis-url URL --key KEY``.

Why it exists: "requests per second" means little without a ceiling to compare with.  This is
Litestar and uvicorn doing the least a cache hit can: one POST route that reads the body, does
one Redis GET of a stored body (the benchmark stores the API's own cache-hit answer there, so
both send the same bytes) and returns it.  It is served as ``python -m service api`` serves the
API (the service's logging set-up, the same ``uvicorn.run`` options and the same number of
processes, ``KURZ_API_PROCESSES``), so the only difference the HTTP benchmark measures is the
work of the cache-hit path beyond "read the body, read one key, send it".
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, post

from service.api.app import GRACEFUL_SHUTDOWN_S
from service.logs import configure_logging
from service.settings import Settings
from service.store.connection import make_redis

__all__ = ["app_from_environment", "create_bare_app"]

#: Where the bare processes find their Redis and key (spawned processes inherit only the
#: environment, as the API's do).
REDIS_URL_VARIABLE = "KURZBENCH_BARE_REDIS_URL"
KEY_VARIABLE = "KURZBENCH_BARE_KEY"


@post("/summarize", status_code=200)
async def bare(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Receive the whole body (as the real endpoint must), GET the stored body, send it."""
    await request.body()
    stored = await request.app.state.redis.get(request.app.state.key)
    return Response(content=stored or b"{}", media_type="application/json", status_code=200)


def create_bare_app(redis_url: str, key: str) -> Litestar:
    """One route, no middleware, no dependencies, no OpenAPI work per request; a Redis client
    made as the API makes its own (``make_redis``)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.redis = make_redis(redis_url)
        app.state.key = key
        try:
            yield
        finally:
            await app.state.redis.aclose()

    return Litestar(
        route_handlers=[bare], lifespan=[lifespan], logging_config=None, openapi_config=None
    )


def app_from_environment() -> Litestar:
    """The app of one bare process, from the variables :func:`main` set."""
    configure_logging(Settings())
    return create_bare_app(os.environ[REDIS_URL_VARIABLE], os.environ[KEY_VARIABLE])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True, help="the Redis holding the body")
    parser.add_argument("--key", required=True, help="the key of the body every answer sends")
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("the bare endpoint only listens on loopback")
    settings = Settings()
    configure_logging(settings)
    os.environ[REDIS_URL_VARIABLE] = args.redis_url
    os.environ[KEY_VARIABLE] = args.key
    processes = settings.api_process_count
    # The same options as service.api.app.serve, so both servers differ only in the app.
    uvicorn.run(
        "benchmarks.bare_app:app_from_environment" if processes > 1 else app_from_environment(),
        factory=processes > 1,
        workers=processes,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
