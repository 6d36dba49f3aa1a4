"""``python -m service.liveness``: is this container's worker alive?  For container probes.

A worker rewrites its heartbeat key ``<prefix>:worker:<hostname>-<pid>-<suffix>`` every
``WORKER_HEARTBEAT_INTERVAL_S`` and the key expires after ``WORKER_HEARTBEAT_TTL_S``, so the key
exists exactly while the worker's event loop runs and reaches Redis.  A probe in the worker's own
container asks whether any key of its hostname exists; in Kubernetes the hostname is the pod's
name, in Docker the container id.  Exit status 0 means alive, 1 not alive (or Redis away, which
a liveness probe should also count: a restarted worker reconnects).

The worker id ends in a process id and a random suffix the probe cannot know, so it is found
with SCAN, which walks the whole keyspace (``live_workers`` in the API's readiness does the
same).  A Redis holding millions of cached sentences makes that slow; see the deployment notes.
"""

from __future__ import annotations

import socket
import sys

from redis import Redis
from redis.exceptions import RedisError

from service.constants import Keys
from service.settings import Settings

#: Seconds the probe may wait for Redis; the Kubernetes probe's own timeout is longer.
PROBE_REDIS_TIMEOUT_S = 3.0


def worker_alive(redis: Redis, keys: Keys, hostname: str) -> bool:
    """Whether a worker on ``hostname`` has a heartbeat key that has not expired."""
    pattern = keys.worker(f"{hostname}-*")
    return next(iter(redis.scan_iter(match=pattern, count=1000)), None) is not None


def main() -> int:
    """Probe the worker of this host; the exit status is the answer."""
    settings = Settings()
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=PROBE_REDIS_TIMEOUT_S,
        socket_connect_timeout=PROBE_REDIS_TIMEOUT_S,
    )
    try:
        alive = worker_alive(redis, Keys(settings.key_prefix), socket.gethostname())
    except (OSError, RedisError):  # Redis away or refusing: not alive, as far as anyone can tell
        alive = False
    finally:
        redis.close()
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
