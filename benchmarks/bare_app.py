"""The bare endpoint: ``python -m benchmarks.bare_app --port N``.

Why it exists: "requests per second" means little without a ceiling to compare with.  This is
Litestar and uvicorn doing nothing but HTTP: one POST route that reads the body and returns a
constant JSON object.  It is served exactly as ``python -m service api`` serves the API (the
service's logging set-up, the same ``uvicorn.run`` options), so the only difference the HTTP
benchmark measures is the work of the cache-hit path itself.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

import uvicorn
from litestar import Litestar, Request, post

from service.api.app import GRACEFUL_SHUTDOWN_S
from service.logs import configure_logging
from service.settings import Settings

__all__ = ["CONSTANT", "create_bare_app"]

#: What every request gets back.
CONSTANT: dict[str, Any] = {"id": "bare", "status": "succeeded"}


@post("/summarize", status_code=200)
async def bare(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Receive the whole body (as the real endpoint must) and answer with the constant."""
    await request.body()
    return CONSTANT


def create_bare_app() -> Litestar:
    """One route, no middleware, no dependencies, no OpenAPI work per request."""
    return Litestar(route_handlers=[bare], logging_config=None, openapi_config=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("the bare endpoint only listens on loopback")
    configure_logging(Settings())
    # The same options as service.api.app.serve, so both servers differ only in the app.
    uvicorn.run(
        create_bare_app(),
        host=args.host,
        port=args.port,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
