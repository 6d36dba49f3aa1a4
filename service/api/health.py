"""Endpoints for load balancers and Prometheus: liveness, readiness, metrics (no API key)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

from litestar import Request, Response, get

from service.api.deps import ServicesDep
from service.api.metrics import read_snapshot
from service.api.problems import problem_for, problem_responses
from service.api.schemas import Liveness, Readiness
from service.errors import ApiProblem

__all__ = ["health_live", "health_ready", "metrics"]

#: What a 503 from readiness tells the load balancer.
NOT_READY_RETRY_AFTER_S = 5


@get("/health/live", summary="The process is up", tags=["health"])
async def health_live() -> Liveness:
    """``GET /health/live``: answers as long as the event loop does; never touches Redis."""
    return Liveness()


@get(
    "/health/ready",
    responses=problem_responses(503),
    summary="Redis answers and at least one worker is alive",
    tags=["health"],
)
async def health_ready(services: ServicesDep) -> Readiness:
    """``GET /health/ready``: whether a submitted article would be processed."""
    reasons: list[str] = []
    workers: list[str] = []
    try:
        await cast("Awaitable[bool]", services.redis.ping())
        workers = await services.workers.live()
    except Exception as exc:  # noqa: BLE001 - any failure to ask Redis means "not ready"
        reasons.append(f"redis unreachable: {problem_for(exc).detail}")
    else:
        if not workers:
            reasons.append("no worker heartbeat: start one with `python -m service worker`")
    if reasons:
        raise ApiProblem(
            503,
            "not_ready",
            "; ".join(reasons),
            headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)},
            reasons=reasons,
        )
    return Readiness(status="ready", workers=workers)


@get(
    "/metrics",
    media_type="text/plain",
    summary="Prometheus metrics of this API process and of the workers",
    tags=["health"],
)
async def metrics(request: Request[Any, Any, Any], services: ServicesDep) -> Response[bytes]:
    """``GET /metrics``: cluster series from a Redis snapshot at most a few seconds old."""
    await services.metrics.refresh(
        lambda: read_snapshot(services.queue, services.workers, services.stats)
    )
    body, content_type = services.metrics.render(request.headers.get("accept", ""))
    return Response(body, headers={"content-type": content_type})
