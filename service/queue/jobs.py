"""Enqueue, look up and cancel article jobs (and schedule webhook deliveries) on SAQ.

A job's key is the request's cache key, so SAQ's "duplicate key while incomplete = no-op"
rule makes identical concurrent requests share one job.  Job settings are sized for ML work
(see ``service.constants``): a timeout that grows with the article, a heartbeat that the worker
renews every few seconds while the job runs, retries with exponential backoff.

The queue cap (``KURZ_MAX_QUEUE_DEPTH``) bounds *admission*: a new article job is checked and
pushed in one atomic step (``_ENQUEUE_IF_ROOM``), so no number of API replicas can push past
it.  Jobs already accepted are never dropped, so these paths put jobs back on the waiting list
without the check, each by a bounded amount (``tests/reliability/test_queue_paths.py`` has a
test for each):

- a failed attempt with retries left comes back after its delay (SAQ's scheduler moves it):
  at most one per running job, so workers x ``KURZ_WORKER_CONCURRENCY`` in all;
- the sweep gives back a dead worker's jobs: at most that worker's concurrency;
- a worker told to stop hands back what it took after the signal: it only returns the room it
  made, unless new articles filled that room meanwhile (then at most one per worker slot);
- nothing else: webhook delivery attempts have a queue of their own
  (``Keys.delivery_queue_name``), so a backlog of them neither counts in the depth nor holds
  new articles back.

The sweep used to give back jobs that live workers had just taken but not yet started
(``service.queue.sweep``): with no worker dead, that pushed the list past the cap in the
overload test and ran those jobs twice.  It no longer does.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from redis.asyncio import Redis
from saq import Job, Status
from saq.queue.redis import RedisQueue

from service.constants import (
    CANCELED_BY_CLIENT,
    DELIVER_TASK,
    DELIVERY_JOB_SLACK_S,
    JOB_HEARTBEAT_S,
    JOB_RECORD_TTL_S,
    JOB_RETRY_BACKOFF_MAX_S,
    JOB_RETRY_DELAY_S,
    SUMMARIZE_TASK,
    Keys,
    job_timeout_s,
)
from service.errors import QueueFullError, StorageFullError
from service.queue.views import view_of
from service.schemas import JobView
from service.store.memory import MemoryRoom

if TYPE_CHECKING:
    from service.webhooks import Delivery

__all__ = ["CancelOutcome", "Job", "JobPayload", "JobQueue", "Status"]


#: Characters a job over an HTML page or a URL is timed for: its text is only known once the
#: worker has extracted it, and ``KURZ_MAX_TEXT_CHARS`` (100,000 by default) bounds it then.
PAGE_TIMEOUT_CHARS = 100_000


class JobPayload(msgspec.Struct, kw_only=True):
    """What the worker needs to process one article (stored as the SAQ job's kwargs).

    Exactly one of ``text``, ``html`` and ``url`` holds the article; the worker extracts the
    text of the other two.
    """

    text: str = ""
    html: str | None = None
    url: str | None = None
    title: str | None = None
    style: str = "standard"
    allow_non_german: bool = False
    external_id: str | None = None
    metadata: dict[str, str | int | float | bool | None] | None = None
    callback_url: str | None = None
    #: The glossary to apply (``default``: the server's) and whose it is (None for the default).
    glossary_id: str | None = None
    glossary_owner: str | None = None
    #: The desk whose results and sentences are its own (keys file ``shares_cache = false``);
    #: None: the shared caches.
    cache_scope: str | None = None
    #: The text or HTML is stored apart from the job (``Keys.job_input``), and how long it is.
    input_stored: bool = False
    input_chars: int = 0

    @property
    def timed_chars(self) -> int:
        """The article length the job's timeout is sized for."""
        if self.text:
            return len(self.text)
        if self.input_stored and not self.url:
            return min(self.input_chars, PAGE_TIMEOUT_CHARS) if self.html else self.input_chars
        return min(len(self.html or ""), PAGE_TIMEOUT_CHARS) if self.html else PAGE_TIMEOUT_CHARS

    def without_input(self) -> JobPayload:
        """This payload with its text or HTML taken out (to be stored apart, see ``JobQueue``)."""
        if not self.text and self.html is None:
            return self
        chars = len(self.text or self.html or "")
        html = "" if self.html is not None else None
        return msgspec.structs.replace(
            self, text="", html=html, input_stored=True, input_chars=chars
        )


class StoredInput(msgspec.Struct, frozen=True):
    """A queued article's text or HTML, as kept apart from its job."""

    text: str = ""
    html: str | None = None


def _encode_input(stored: StoredInput) -> str:
    """JSON with every character escaped, as SAQ writes a job's arguments: text that reaches
    the queue unchecked (a lone surrogate) is stored as it came, and fails in the worker's
    pipeline, where a failure is retried, counted and announced, not at enqueue."""
    return json.dumps({"text": stored.text, "html": stored.html})


#: SAQ's enqueue script with the room check inside it: checked first and enqueued after, every
#: request arriving together (on any API replica) saw room and the limit was overrun.  The
#: article's text or HTML (ARGV[3]) is stored beside the job (KEYS[5], for ARGV[4] seconds) in
#: the same step, and only when the job is created; its size is added to the pending bytes
#: (KEYS[6], ``Keys.pending_input_bytes``).  With ARGV[5] and ARGV[6] (``MemoryRoom``: a share
#: of ``maxmemory`` and the growth factor), the job is refused when the memory in use now plus
#: the growth times the pending bytes, this article's included, reaches that share.  Returns
#: 1 (enqueued), nil (the key has an unfinished job), 0 (no room in memory) or -1 - depth (no
#: room in the queue).
_ENQUEUE_IF_ROOM = """
if redis.call('ZSCORE', KEYS[1], KEYS[2]) or redis.call('EXISTS', KEYS[4]) == 1 then
    return nil
end
local depth = redis.call('LLEN', KEYS[3])
if depth >= tonumber(ARGV[2]) then
    return -1 - depth
end
if ARGV[3] ~= '' and ARGV[5] ~= '' then
    local info = redis.call('INFO', 'memory')
    local limit = tonumber(string.match(info, 'maxmemory:(%d+)'))
    if limit > 0 then
        local used = tonumber(string.match(info, 'used_memory:(%d+)'))
        local pending = tonumber(redis.call('GET', KEYS[6]) or '0') + string.len(ARGV[3])
        if used + tonumber(ARGV[6]) * pending >= tonumber(ARGV[5]) * limit then
            return 0
        end
    end
end
if ARGV[3] ~= '' then
    redis.call('SET', KEYS[5], ARGV[3], 'EX', tonumber(ARGV[4]))
    redis.call('INCRBY', KEYS[6], string.len(ARGV[3]))
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], 0, KEYS[2])
redis.call('RPUSH', KEYS[3], KEYS[2])
return 1
"""


#: Delete a job's stored article (KEYS[1]) and take its size off the pending bytes (KEYS[2]),
#: in one step: twice called (a cancel and the worker's end), it is subtracted once.  With a
#: finished record's size (ARGV[1] > 0), both sizes are added to the growth sums (KEYS[3]).
_FORGET_INPUT = """
local size = redis.call('STRLEN', KEYS[1])
if size > 0 then
    redis.call('DEL', KEYS[1])
    if redis.call('DECRBY', KEYS[2], size) < 0 then
        redis.call('SET', KEYS[2], 0)
    end
    local record = tonumber(ARGV[1])
    if record > 0 then
        redis.call('HINCRBY', KEYS[3], 'input', size)
        redis.call('HINCRBY', KEYS[3], 'record', record)
    end
end
return size
"""


#: Put a job back on the active list if (and only if) it is still being aborted: checked and done
#: in one step, so a worker finishing the job at that moment never leaves it listed.
_RELIST_ABORTING = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['status'] == 'aborting' then
    redis.call('LREM', KEYS[2], 0, KEYS[1])
    redis.call('RPUSH', KEYS[2], KEYS[1])
    return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class _Limits:
    """What a new job must fit within: the jobs waiting, and the queue Redis's memory (None:
    no limit)."""

    depth: int | None
    room: MemoryRoom | None


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    """What a cancel did: the job as it now is, and whether its worker is still stopping it."""

    view: JobView
    pending: bool


class JobQueue:
    """Enqueue, look up and cancel article jobs."""

    def __init__(self, redis: Redis, keys: Keys, *, retries: int = 3) -> None:
        self.redis = redis
        self.keys = keys
        self.retries = retries
        self.saq: RedisQueue = RedisQueue(redis, name=keys.queue_name)
        #: Webhook delivery attempts, on their own queue (``Keys.delivery_queue_name``).
        self.deliveries: RedisQueue = RedisQueue(redis, name=keys.delivery_queue_name)
        self._enqueue_if_room = redis.register_script(_ENQUEUE_IF_ROOM)
        self._relist_aborting = redis.register_script(_RELIST_ABORTING)
        self._forget_input = redis.register_script(_FORGET_INPUT)

    async def submit(
        self,
        key: str,
        payload: JobPayload,
        *,
        max_depth: int | None = None,
        room: MemoryRoom | None = None,
    ) -> tuple[Job, bool]:
        """Enqueue a job under ``key``; returns the job and whether this call created it.

        With ``max_depth``, a new job is refused (``QueueFullError``) while that many jobs wait;
        with ``room``, it is refused (``StorageFullError``) when Redis has no room for its
        article and for what the jobs not yet ended will still write.
        """
        options: dict[str, Any] = {
            "key": key,
            "timeout": job_timeout_s(payload.timed_chars),
            "heartbeat": JOB_HEARTBEAT_S,
            "retries": self.retries,
            "retry_delay": JOB_RETRY_DELAY_S,
            "retry_backoff": JOB_RETRY_BACKOFF_MAX_S,
            "ttl": JOB_RECORD_TTL_S,
        }
        # The article goes beside the job, not into it: SAQ keeps a job's arguments in its
        # record and writes them to its log (``service.logs`` redacts them there too).
        stored = StoredInput(text=payload.text, html=payload.html)
        kwargs = msgspec.to_builtins(payload.without_input())
        job = Job(function=SUMMARIZE_TASK, kwargs=kwargs, **options)
        limits = _Limits(max_depth, room)
        created = await self._enqueue(job, limits, stored)
        if created is not None:
            return created, True
        existing = await self.saq.job(key)
        if existing is None:  # finished and expired between the two calls: enqueue again
            again = await self._enqueue(
                Job(function=SUMMARIZE_TASK, kwargs=kwargs, **options), limits, stored
            )
            return (again or job), again is not None
        return existing, False

    async def _enqueue(
        self, job: Job, limits: _Limits, stored: StoredInput | None = None
    ) -> Job | None:
        """SAQ's ``enqueue`` with the room checks (none without limits) and the article stored
        beside the job, all in one step."""
        job.queue = self.saq
        job.queued = int(time.time() * 1000)
        job.status = Status.QUEUED
        encoded = (
            _encode_input(stored)
            if stored is not None and (stored.text or stored.html is not None)
            else ""
        )
        outcome = await self._enqueue_if_room(
            keys=[
                self.saq.namespace("incomplete"),
                job.id,
                self.saq.namespace("queued"),
                job.abort_id,
                self.keys.job_input(job.key, job.queued),
                self.keys.pending_input_bytes,
            ],
            args=[
                self.saq.serialize(job),
                limits.depth if limits.depth is not None else 2**62,
                encoded,
                JOB_RECORD_TTL_S,
                "" if limits.room is None else limits.room.high_water,
                "" if limits.room is None else limits.room.growth,
            ],
        )
        if outcome is None:
            return None
        if int(outcome) == 0:
            raise StorageFullError()
        if int(outcome) < 0:
            raise QueueFullError(-1 - int(outcome))
        return job

    async def schedule_delivery(
        self,
        delivery: Delivery,
        delay_s: float,
        *,
        redelivery: bool = False,
        timeout_s: float = 15.0,
        deferral: str | None = None,
    ) -> None:
        """Queue one webhook attempt ``delay_s`` from now (a crash re-runs it, same id).

        The job names the delivery only: its body is read from the delivery's stored record
        when the attempt runs, so neither the queue's records nor its logs carry a copy of the
        event (a redelivery storm would otherwise copy the body once per job).

        The queue key names the message and the attempt, so announcing the same event twice
        (a job that ran twice after a crash) schedules its first attempt only once.
        """
        # A redelivery has one key per message: asked for again while it is still pending, it
        # is not queued twice (SAQ keeps one incomplete job per key).
        suffix = "redeliver" if redelivery else str(delivery.attempts)
        if deferral is not None:  # the same attempt again, under a key of its own
            suffix = f"{suffix}:deferred:{deferral}"
        job = Job(
            function=DELIVER_TASK,
            kwargs={"delivery": msgspec.to_builtins(delivery)},
            key=f"delivery:{delivery.msg_id}:{suffix}",
            timeout=int(timeout_s + DELIVERY_JOB_SLACK_S),
            retries=3,
            retry_delay=JOB_RETRY_DELAY_S,
            retry_backoff=JOB_RETRY_BACKOFF_MAX_S,
            ttl=JOB_RECORD_TTL_S,
            scheduled=int(time.time() + delay_s) if delay_s > 0 else 0,
        )
        await self.deliveries.enqueue(job)

    async def defer_delivery(self, delivery: Delivery, delay_s: float) -> None:
        """Queue the attempt in hand again ``delay_s`` from now (its receiving host is busy).

        The job running it still holds the attempt's key, so the new one gets a key of its
        own; the attempt count is unchanged, so deferrals never use up the retry schedule."""
        await self.schedule_delivery(delivery, delay_s, deferral=uuid.uuid4().hex[:12])

    async def stored_input(self, job: Job) -> StoredInput | None:
        """The text or HTML stored beside ``job`` (None once it is gone)."""
        raw = await self.redis.get(self.keys.job_input(job.key, job.queued))
        return None if raw is None else StoredInput(**json.loads(raw))

    async def forget_input(self, job: Job, paragraph_bytes: int = 0) -> None:
        """Drop the stored article of a job that has ended (its TTL would, a week later), and
        take its size off the pending bytes.  A job that succeeded also adds its article's
        size, and its record's with the ``paragraph_bytes`` its paragraphs held while it ran,
        to ``Keys.result_growth``: how much a job outweighs its article, which the API's
        storage guard reserves for the jobs not yet ended."""
        record = (
            len(self.saq.serialize(job)) + paragraph_bytes if job.status == Status.COMPLETE else 0
        )
        await self._forget_input(
            keys=[
                self.keys.job_input(job.key, job.queued),
                self.keys.pending_input_bytes,
                self.keys.result_growth,
            ],
            args=[record],
        )

    async def get(self, key: str) -> Job | None:
        return await self.saq.job(key)

    async def view(self, key: str) -> JobView | None:
        """The API's view of the job under ``key``, or None when there is no such job."""
        job = await self.saq.job(key)
        return view_of(job) if job is not None else None

    async def cancel(self, key: str) -> CancelOutcome | None:
        """Abort a queued or running job; a finished job is reported unchanged.

        None when there is no such job.  A queued job is canceled at once; a running one is
        marked and its worker stops it at its next abort check (``pending``).
        """
        job = await self.saq.job(key)
        if job is None:
            return None
        if job.status == Status.ABORTING:
            # Canceled before and its worker is stopping it: a second abort would take it off
            # the active list (where the sweep looks) and, seen as not running, end it here
            # while that worker still runs it, so a resubmit would run the article twice.
            return CancelOutcome(view=view_of(job), pending=True)
        if job.status not in (Status.COMPLETE, Status.FAILED, Status.ABORTED):
            running = job.status == Status.ACTIVE
            await self.saq.abort(job, CANCELED_BY_CLIENT)
            after: Status = job.status  # abort sets it: ABORTING, or ABORTED if it was waiting
            if after == Status.ABORTING and running:
                # SAQ takes a running job off the active list here; its worker finishes it
                # within a second.  Kept listed, a sweep finds it if that worker is dead and
                # makes it terminal (``service.queue.sweep``); otherwise nothing ever would.
                await self._relist_aborting(keys=[job.id, self.saq.namespace("active")])
            elif after == Status.ABORTING:
                # Waiting out a retry delay (scheduled, so not on the waiting list SAQ looked
                # in): no worker holds it, so it is canceled here and now.
                await self.saq.finish(job, Status.ABORTED, error=CANCELED_BY_CLIENT)
                await self.redis.delete(job.abort_id)
            job = await self.saq.job(key) or job
            if job.status == Status.ABORTED:  # no worker ends a waiting job: its article goes
                await self.forget_input(job)
        return CancelOutcome(view=view_of(job), pending=job.status == Status.ABORTING)

    async def depth(self) -> int:
        """Jobs waiting to start."""
        return int(await self.saq.count("queued"))

    def waiting_list_key(self) -> str:
        """The Redis list of the jobs that ``depth`` counts, for autoscalers that read it.

        The name belongs to SAQ (``saq:<queue name>:queued`` in SAQ 0.26), so it is asked of
        SAQ rather than spelled out: a release that renames it changes this answer and fails
        the manifest test instead of leaving KEDA to read an empty key.
        """
        return str(self.saq.namespace("queued"))

    async def active(self) -> int:
        return int(await self.saq.count("active"))


def waiting_list_key(keys: Keys) -> str:
    """``JobQueue.waiting_list_key`` for a deployment using ``keys``, without a Redis server
    (the client is never connected: building the queue only names its keys)."""
    return JobQueue(Redis(), keys).waiting_list_key()
