"""The one place Redis clients are made, for the API, the worker and ``make run``.

The two processes want different failure behaviour, so the policy is chosen by role here rather
than by each caller:

- ``api``: connect and command timeouts of 2 s, one retry of a dropped connection, idle
  connections pinged after 15 s.  A request fails fast with 503 instead of hanging on Redis, the
  app starts while Redis is still down, and a restart is noticed on the next command.
- ``worker``: a 5 s connect timeout and no command timeout.  The worker's commands include SAQ's
  blocking dequeue and long pipelines; it rides out a Redis outage by retrying in its loops
  (heartbeats and job touches log and go on), not by failing the command.

Bytes in and out (``decode_responses`` off), as SAQ and the caches expect.
"""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

__all__ = ["API_REDIS_TIMEOUT_S", "Role", "make_redis"]

Role = Literal["api", "worker"]

#: The API's connect and command timeout.
API_REDIS_TIMEOUT_S = 2.0
#: Idle pooled API connections are pinged before reuse after this long.
API_HEALTH_CHECK_S = 15
WORKER_CONNECT_TIMEOUT_S = 5.0
WORKER_HEALTH_CHECK_S = 30


def make_redis(url: str, role: Role = "api") -> Redis:
    """A Redis client for ``url`` with the failure policy of ``role`` (see the module docstring)."""
    if role == "worker":
        return Redis.from_url(
            url,
            socket_connect_timeout=WORKER_CONNECT_TIMEOUT_S,
            health_check_interval=WORKER_HEALTH_CHECK_S,
        )
    return Redis.from_url(
        url,
        socket_connect_timeout=API_REDIS_TIMEOUT_S,
        socket_timeout=API_REDIS_TIMEOUT_S,
        health_check_interval=API_HEALTH_CHECK_S,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=1),
    )
