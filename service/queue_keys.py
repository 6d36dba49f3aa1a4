"""The Redis keys of the queue library that something outside this service reads.

KEDA scales the workers on the length of the list in which SAQ keeps the jobs waiting to start.
That list's name belongs to SAQ, not to us (``saq:<queue name>:queued`` in SAQ 0.26), so it is
asked of SAQ's own ``RedisQueue.namespace`` through ``JobQueue`` rather than spelled out here: a
SAQ release that renames it changes this answer, and the manifest test then fails instead of the
autoscaler silently reading an empty key.  ``tests/test_kubernetes.py`` checks the answer against
a live queue.
"""

from __future__ import annotations

from redis.asyncio import Redis

from service.constants import Keys
from service.queue import JobQueue


def waiting_list_key(key_prefix: str) -> str:
    """The Redis list of jobs waiting for a worker, for deployments using ``key_prefix``.

    The Redis client is never connected: building a ``JobQueue`` only names its keys.
    """
    unconnected = Redis()
    return JobQueue(unconnected, Keys(key_prefix)).saq.namespace("queued")
