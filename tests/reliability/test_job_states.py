"""Job states under any interleaving of enqueue, start, touch, crash, retry, cancel and finish.

A Hypothesis state machine drives the real SAQ queue on Redis (DB 14, a queue name of its own):
the API side through :class:`service.queue.JobQueue` (``submit``, ``cancel``, ``get``), the worker
side through the worker's own queue class (:class:`service.worker.DrainingQueue`) with exactly
the calls SAQ's ``Worker`` and ``service.worker`` make: dequeue then ``update(status=ACTIVE)``
(start), ``update(meta=...)`` every few seconds (the progress toucher), ``finish(COMPLETE)``
(success), ``retry`` or ``finish(FAILED)`` (failure), the abort check's ``finish_abort`` and
``finish(ABORTED)`` (a canceled job noticed), no further writes (a crashed worker), and the sweep,
which re-queues or fails a crashed worker's job once its heartbeat is stale.  Time is advanced
explicitly: ``tick`` lets retry delays run out and abort markers expire.

What a client relies on, checked after every step through :func:`service.queue.status_of` and
:func:`service.queue.view_of` (what ``GET /jobs/{id}`` shows):

* every job is in exactly one state, and SAQ's lists agree with it (a queued job waits in the
  queue once or is scheduled, a running one is in the active list once, a finished one in none);
* the state is the one the API promised (a cancel shows ``canceled`` at once, a retry ``queued``);
* a terminal state (succeeded, failed, canceled) never changes, until the same article is
  submitted again as a new job;
* a job being canceled stays on the active list until its worker (or, if that worker died, the
  sweep) ends it;
* after draining (workers finish whatever is left), every job ends in exactly one terminal state.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from unittest import mock

import msgspec
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from service.constants import CANCELED_BY_CLIENT, Keys
from service.queue import DrainingQueue, Job, JobPayload, JobQueue, Status, status_of, view_of
from service.schemas import TERMINAL, JobStatus, Result

pytestmark = pytest.mark.redis

SOAK = os.environ.get("KURZ_SOAK", "") not in ("", "0")
#: Distinct articles per run: few, so the same article is submitted again after it finished.
ARTICLES = 3
RETRIES = 2
EXAMPLES = 500 if SOAK else 150
STEPS = 50 if SOAK else 25
DRAIN_ROUNDS = 50
HOUR_MS = 3_600_000
RESULT = msgspec.to_builtins(
    Result(
        title_en=None,
        translation="The sun is shining.",
        summary="Sunny.",
        style="standard",
        source_language="de",
        german_share=1.0,
        sentences_in=1,
        sentences_translated=1,
        sentences_from_cache=0,
        alignment=[],
        models={},
        timings_ms={},
        summary_chunks=1,
        summary_rounds=1,
    )
)

T = TypeVar("T")

#: The ``figures`` fixture (tests/reliability/conftest.py) prints and records a test's figures.
Figures = Callable[..., None]


@dataclass
class Article:
    """The model's view of one article's current job (one "generation" per accepted submit)."""

    key: str
    generation: int = 0
    expected: JobStatus | None = None
    """What the API must show; None before the first submit."""
    terminal_seen: JobStatus | None = None
    held: Job | None = None
    """The in-memory job of the live worker running it."""
    crashed: bool = False
    """A worker started it and died: its record still says active, nobody touches it."""
    attempts: int = 0


@dataclass
class Stats:
    steps: Counter[str] = field(default_factory=Counter)
    finals: Counter[str] = field(default_factory=Counter)
    machines: int = 0


STATS = Stats()


class JobStates(RuleBasedStateMachine):
    """The queue of one deployment: one API, workers that may die, a sweep, a clock."""

    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = Redis.from_url(redis_url)
        self.keys = Keys(f"test-states-{uuid.uuid4().hex}")
        self.api = JobQueue(self.redis, self.keys, retries=RETRIES)
        self.worker = DrainingQueue(self.redis, name=self.keys.queue_name)
        self.draining = False
        run_id = uuid.uuid4().hex[:40]
        self.articles = [Article(key=f"{run_id}{index:024x}") for index in range(ARTICLES)]
        STATS.machines += 1

    # --- plumbing ---------------------------------------------------------------------------------

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def step(self, name: str) -> None:
        STATS.steps[f"drain:{name}" if self.draining else name] += 1

    def stored(self, article: Article) -> Job | None:
        return self.run(self.api.get(article.key))

    def api_status(self, article: Article) -> JobStatus | None:
        job = self.stored(article)
        return None if job is None else view_of(job).status

    def held(self) -> list[Article]:
        return [a for a in self.articles if a.held is not None]

    def pick(self, candidates: list[Article], index: int) -> Article:
        return candidates[index % len(candidates)]

    # --- the API ----------------------------------------------------------------------------------

    @initialize()
    def start_clean(self) -> None:
        self.step("init")

    @rule(index=st.integers(0, ARTICLES - 1))
    def enqueue(self, index: int) -> None:
        """POST /summarize: a new job, or the running one shared, or refused while canceling."""
        article = self.articles[index]
        before = self.api_status(article)
        payload = JobPayload(text=f"Artikel {index}", metadata={"article": index})
        job, created = self.run(self.api.submit(article.key, payload))
        self.step("enqueue" if created else "enqueue-shared")
        if created:
            # A new job only replaces a finished one: identical articles share a running job.
            assert before is None or before in TERMINAL, f"second job while {before}"
            assert article.held is None, "a new job while a live worker runs the old one"
            article.generation += 1
            article.expected = JobStatus.QUEUED
            article.terminal_seen = None
            article.crashed = False
            article.attempts = 0
        else:
            assert job.key == article.key

    @rule(index=st.integers(0, ARTICLES - 1))
    def cancel(self, index: int) -> None:
        """DELETE /jobs/{id}: a queued or running job is canceled; a finished one is left alone."""
        article = self.articles[index]
        self.step("cancel")
        self.run(self.api.cancel(article.key))
        if article.expected in (JobStatus.QUEUED, JobStatus.RUNNING):
            article.expected = JobStatus.CANCELED

    # --- a worker ---------------------------------------------------------------------------------

    @precondition(lambda self: any(a.expected == JobStatus.QUEUED for a in self.articles))
    @rule()
    def start(self) -> None:
        """A worker dequeues the next job and marks it active (SAQ ``Worker.process``)."""
        job = self.run(self.worker.dequeue(timeout=0.01))
        self.step("start" if job is not None else "start-nothing-due")
        if job is None:
            return
        article = next(a for a in self.articles if a.key == job.key)
        assert article.expected == JobStatus.QUEUED, f"dequeued a job the API shows {article}"
        assert article.held is None, "a job held by a live worker was dequeued again"
        job.started = _now_ms()
        job.attempts += 1
        self.run(job.update(status=Status.ACTIVE))
        article.held, article.crashed = job, False
        article.attempts = job.attempts
        article.expected = JobStatus.RUNNING

    @precondition(lambda self: bool(self.held()))
    @rule(index=st.integers(0, 7))
    def touch(self, index: int) -> None:
        """The running job's progress toucher writes progress (``_touch_while_running``)."""
        article = self.pick(self.held(), index)
        assert article.held is not None
        self.step("touch")
        article.held.meta["progress"] = {"stage": "translate", "done": index, "total": 8}
        self.run(article.held.update(meta=article.held.meta))

    @precondition(lambda self: bool(self.held()))
    @rule(index=st.integers(0, 7))
    def succeed(self, index: int) -> None:
        """The job function returns: SAQ marks the job complete."""
        article = self.pick(self.held(), index)
        assert article.held is not None
        self.step("succeed")
        self.run(article.held.finish(Status.COMPLETE, result=RESULT))
        article.held = None
        if article.expected == JobStatus.RUNNING:
            article.expected = JobStatus.SUCCEEDED

    @precondition(lambda self: bool(self.held()))
    @rule(index=st.integers(0, 7), permanent=st.booleans())
    def fail(self, index: int, permanent: bool) -> None:
        """The job function raises: retried while attempts remain, else failed.

        ``permanent`` is an ``InputError``: the worker makes it the last attempt.
        """
        article = self.pick(self.held(), index)
        job = article.held
        assert job is not None
        self.step("fail-permanent" if permanent else "fail")
        if permanent:
            job.meta["error"] = {"code": "not_german", "detail": "not German"}
            job.retries = job.attempts
        if job.retryable:
            self.run(job.retry("Traceback ...\nRuntimeError: boom"))
            outcome = JobStatus.QUEUED
        else:
            self.run(job.finish(Status.FAILED, error="Traceback ...\nRuntimeError: boom"))
            outcome = JobStatus.FAILED
        article.held = None
        if article.expected == JobStatus.RUNNING:
            article.expected = outcome

    def notice_abort_of(self, article: Article) -> None:
        """SAQ's abort check (``Worker.abort``) then ``Worker.process`` for one held job."""
        job = article.held
        assert job is not None
        (fetched,) = self.run(self.worker.jobs([job.key]))
        if fetched is None or fetched.status not in (Status.ABORTING, Status.ABORTED):
            return
        aborted = "abort" if fetched.error is None else fetched.error
        self.run(self.worker.finish_abort(fetched))
        self.run(job.finish(Status.ABORTED, error=aborted))
        article.held = None

    @precondition(lambda self: bool(self.held()))
    @rule(index=st.integers(0, 7))
    def notice_abort(self, index: int) -> None:
        """The worker's abort check (once a second) sees the cancel and stops the job."""
        self.step("notice-abort")
        self.notice_abort_of(self.pick(self.held(), index))

    @precondition(lambda self: bool(self.held()))
    @rule(index=st.integers(0, 7))
    def crash(self, index: int) -> None:
        """The worker holding the job is SIGKILLed: nothing is written any more."""
        article = self.pick(self.held(), index)
        self.step("crash")
        article.held, article.crashed = None, True

    @precondition(lambda self: self.draining or any(a.crashed for a in self.articles))
    @rule()
    def sweep(self) -> None:
        """A worker's sweep, once a crashed worker's job has gone unheard for longer than its
        heartbeat: re-queued while attempts remain, else failed."""
        self.step("sweep")
        for article in self.articles:
            if article.crashed:
                self.run(self._age(article))
        self.run(self.redis.delete(self.worker.namespace("sweep")))
        # The sweep waits (over pub/sub, seconds per job) for the dead worker to confirm each
        # abort; none will, so the wait is skipped: the same outcome, sooner.
        with mock.patch.object(Job, "refresh", _refresh_without_waiting):
            swept = self.run(self.worker.sweep())
        for article in self.articles:
            if not article.crashed or self.worker.job_id(article.key) not in swept:
                continue
            article.crashed = False
            if article.expected == JobStatus.RUNNING:
                article.expected = (
                    JobStatus.QUEUED if article.attempts < RETRIES else JobStatus.FAILED
                )

    async def _age(self, article: Article) -> None:
        """The crashed job's last heartbeat, an hour ago (what passes before a sweep sees it)."""
        job = await self.api.get(article.key)
        if job is not None and job.status in (Status.ACTIVE, Status.ABORTING):
            job.touched = _now_ms() - HOUR_MS
            await self.redis.set(job.id, self.api.saq.serialize(job))

    @precondition(
        lambda self: (
            self.draining
            or any(a.held is not None or a.expected == JobStatus.QUEUED for a in self.articles)
        )
    )
    @rule()
    def tick(self) -> None:
        """Seconds pass: live workers notice cancels, abort markers expire, retries fall due."""
        self.step("tick")
        for article in self.held():
            self.notice_abort_of(article)
        for article in self.articles:
            self.run(self.redis.delete(f"abort:{article.key}"))
        self.run(self.redis.delete(self.worker.namespace("schedule")))
        later = _now_ms() // 1000 + 3600
        with mock.patch("saq.queue.redis.now_seconds", return_value=later):
            self.run(self.worker.schedule())

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def each_job_is_in_one_state_as_promised(self) -> None:
        for article in self.articles:
            if article.expected is None:
                continue
            job = self.stored(article)
            assert job is not None, f"the job record of {article.key[-4:]} is gone"
            view = view_of(job)
            status = status_of(job)
            assert view.status == status
            where = self.run(self._placement(job))
            assert where == _placement_for(job, where), (job.status, job.error, where)
            if article.terminal_seen is not None:
                assert status == article.terminal_seen, (
                    f"terminal state changed: {article.terminal_seen} -> {status} "
                    f"(SAQ {job.status}, error {job.error!r})"
                )
            elif status in TERMINAL:
                article.terminal_seen = status
            assert status == article.expected, (
                f"the API shows {status}, promised {article.expected} "
                f"(SAQ {job.status}, error {job.error!r}, steps {dict(STATS.steps)})"
            )
            if status == JobStatus.CANCELED:
                assert view.error is not None and view.error.code == "canceled"
                assert job.error == CANCELED_BY_CLIENT

    async def _placement(self, job: Job) -> Placement:
        queued: list[bytes] = await self.redis.lrange(self.worker.namespace("queued"), 0, -1)  # type: ignore[misc]
        active: list[bytes] = await self.redis.lrange(self.worker.namespace("active"), 0, -1)  # type: ignore[misc]
        score = await self.redis.zscore(self.worker.namespace("incomplete"), job.id)
        job_id = job.id.encode()
        return Placement(queued.count(job_id), active.count(job_id), score)

    # --- the end: drain, then every job is finished -----------------------------------------------

    def drain(self) -> None:
        """Workers finish whatever is left: crashed jobs are swept, retries run and succeed."""
        self.draining = True
        for _ in range(DRAIN_ROUNDS):
            self.tick()
            while self.held():
                self.succeed(0)
            self.sweep()
            while any(a.expected == JobStatus.QUEUED for a in self.articles):
                before = STATS.steps["start"]
                self.start()
                if STATS.steps["start"] == before:
                    break
                while self.held():
                    self.succeed(0)
            self.each_job_is_in_one_state_as_promised()
            if all(a.expected in TERMINAL for a in self.articles if a.expected is not None):
                return
        raise AssertionError(f"not drained after {DRAIN_ROUNDS} rounds: {self.articles}")

    def teardown(self) -> None:
        try:
            # Called from a ``finally``: after a failed step there is nothing to drain.
            if sys.exc_info()[1] is None:
                self.drain()
                for article in self.articles:
                    if article.expected is None:
                        continue
                    job = self.stored(article)
                    assert job is not None
                    view = view_of(job)
                    assert view.status in TERMINAL, view
                    # Stored as finished too: a cancel a dead worker never acknowledged is
                    # ended by the sweep, so nothing later re-runs or re-reports it.
                    assert job.status in (Status.COMPLETE, Status.FAILED, Status.ABORTED), job
                    assert view.finished_at is not None, view
                    if view.status == JobStatus.SUCCEEDED:
                        assert view.result is not None
                    STATS.finals[view.status.value] += 1
        finally:
            try:
                self.run(self._cleanup())
                self.run(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    async def _cleanup(self) -> None:
        prefix = self.keys.prefix
        for pattern in (f"{prefix}:*", f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
            keys = [key async for key in self.redis.scan_iter(match=pattern, count=500)]
            if keys:
                await self.redis.delete(*keys)
        await self.redis.delete(*(f"abort:{article.key}" for article in self.articles))
        await self.redis.aclose()


_REFRESH = Job.refresh


async def _refresh_without_waiting(job: Job, until_complete: float | None = None) -> None:
    """``Job.refresh`` minus the wait for the job to finish (which no simulated worker does)."""
    await _REFRESH(job)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Placement:
    """Where SAQ keeps a job: times in the queued list, in the active list, its incomplete score."""

    queued: int
    active: int
    incomplete: float | None


def _placement_for(job: Job, where: Placement) -> Placement:
    """Where SAQ must keep a job in this state."""
    if job.status == Status.QUEUED:
        # Waiting in the queue (score 0), or scheduled for later (a retry's delay) and not in it.
        assert where.incomplete is not None, "a queued job is missing from the incomplete set"
        return Placement(1 if where.incomplete == 0 else 0, 0, where.incomplete)
    if job.status == Status.ACTIVE:
        return Placement(0, 1, where.incomplete if where.incomplete is not None else -1.0)
    if job.status == Status.ABORTING:
        # Being stopped: kept on the active list, so a sweep ends it if its worker is dead.
        return Placement(0, 1, None)
    return Placement(0, 0, None)


def test_job_states_survive_any_interleaving(redis_url: str, figures: Figures) -> None:
    """Whatever workers, clients and crashes do, a job shows one state, and terminal is final."""
    run_state_machine_as_test(
        lambda: JobStates(redis_url),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    steps = {name: n for name, n in STATS.steps.items() if not name.startswith("drain:")}
    figures(
        "job-states",
        machines=STATS.machines,
        steps=sum(steps.values()),
        drain_steps=sum(STATS.steps.values()) - sum(steps.values()),
        by_rule=dict(sorted(steps.items())),
        final_states=dict(STATS.finals),
    )
    assert STATS.finals, "no job ever finished"


#: What a worker may do in the second between a client's cancel and its abort check.
AFTER_CANCEL: dict[str, Callable[[JobStates], None]] = {
    "touch": lambda m: m.touch(0),
    "succeed": lambda m: m.succeed(0),
    "fail-and-retry": lambda m: m.fail(0, permanent=False),
    "fail-for-good": lambda m: m.fail(0, permanent=True),
    "notice-abort": lambda m: m.notice_abort(0),
    "crash-and-sweep": lambda m: (m.crash(0), m.sweep()),
    "touch-then-succeed": lambda m: (m.touch(0), m.succeed(0)),
    # A second DELETE must not end the job its worker still runs (a resubmit would run it twice).
    "cancel-again-and-resubmit": lambda m: (m.cancel(0), m.enqueue(0)),
}


@pytest.mark.parametrize("then", list(AFTER_CANCEL), ids=list(AFTER_CANCEL))
def test_cancel_of_a_running_job_is_final_whatever_its_worker_does(
    then: str, redis_url: str
) -> None:
    """A running job the client canceled stays canceled, even if its worker writes afterwards."""
    machine = JobStates(redis_url)
    try:
        machine.enqueue(0)
        machine.start()
        machine.cancel(0)
        machine.each_job_is_in_one_state_as_promised()
        AFTER_CANCEL[then](machine)
        machine.each_job_is_in_one_state_as_promised()
        assert machine.api_status(machine.articles[0]) == JobStatus.CANCELED
    finally:
        machine.teardown()
