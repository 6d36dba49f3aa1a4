"""A job whose workers die on every attempt: it must end failed, and be announced once.

No worker's after-job hook runs for such a job (each attempt ends with its worker killed), so
it is the sweep that finds it stuck with no attempts left, fails it, and must send the client's
``summary.failed`` itself (``service.queue.sweep``).  Real processes on the tiny models: a worker
is SIGKILLed while it runs the job, attempt after attempt, and two fresh workers (two sweeps
that could both announce it) see the end.

Every wait is a liveness window (minutes), never a speed rule: a job comes back about 20 s after
its worker died (a heartbeat, 15 s, then a sweep), more on a busy machine.
"""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from service.constants import SWEEP_INTERVAL_S
from tests.reliability.conftest import Figures, Stack, StackFactory, describe

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ATTEMPTS = 2
#: How long a step may take before the test calls it stuck (liveness, not speed).
WINDOW_S = 180.0
#: After the failure is announced, how long to keep listening for a second announcement: two
#: sweeps by each of the two live workers.
LISTEN_AFTER_S = 2 * SWEEP_INTERVAL_S + 2


def wait_running_on(stack: Stack, job_id: str, saq_id: str) -> int:
    """Wait until the worker with SAQ id ``saq_id`` runs the job; its attempt number."""
    deadline = time.monotonic() + WINDOW_S
    while time.monotonic() < deadline:
        record = stack.records([job_id])[job_id]
        if record and record["status"] == "active" and record.get("worker_id") == saq_id:
            return int(record["attempts"])
        assert not (record and record["status"] in ("complete", "failed", "aborted")), record
        time.sleep(0.05)
    raise TimeoutError(f"worker {saq_id} never ran {job_id}\n{stack.logs()}")


def failed_events(stack: Stack, job_id: str) -> list[tuple[str, str]]:
    """(webhook-id, event type) of every delivery received for the job."""
    return [(msg_id, e["type"]) for msg_id, e in stack.events() if e["data"]["id"] == job_id]


def test_a_job_whose_workers_all_die_ends_failed_with_one_summary_failed_webhook(
    stack_factory: StackFactory, long_article: str, figures: Figures
) -> None:
    """A job whose worker is killed on each of its attempts ends failed, and its client gets
    exactly one ``summary.failed`` webhook (sent by the sweep that failed it)."""
    stack = stack_factory(KURZ_JOB_RETRIES=str(ATTEMPTS), KURZ_WORKER_CONCURRENCY="1")
    api = stack.start_api()
    stack.wait_api(api)
    started = time.monotonic()
    killed_on: list[int] = []
    with httpx.Client(base_url=api, timeout=10) as http:
        response = http.post(
            "/summarize",
            json={"text": long_article, "callback_url": stack.receiver.url, "external_id": "doom"},
        )
        assert response.status_code == 202, response.text
        job_id = str(response.json()["id"])
        for attempt in range(ATTEMPTS):
            # One live worker at a time: the job can only go to it.
            worker, saq_id = stack.start_identified_worker(f"doomed-{attempt}")
            killed_on.append(wait_running_on(stack, job_id, saq_id))
            worker.signal(signal.SIGKILL)
            worker.wait(timeout=10)
            record = stack.records([job_id])[job_id]
            assert record and record["status"] == "active", f"the kill missed the job: {record}"
        # Two live workers now: both sweep, the job has no attempt left.
        for name in ("survivor-a", "survivor-b"):
            stack.start_identified_worker(name)
        records = stack.wait_finished([job_id], timeout_s=WINDOW_S)
        ended_s = time.monotonic() - started
        deadline = time.monotonic() + WINDOW_S
        while not failed_events(stack, job_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        announced_s = time.monotonic() - started
        time.sleep(LISTEN_AFTER_S)  # a second announcement would arrive in this time
        view = http.get(f"/jobs/{job_id}").json()
    events = failed_events(stack, job_id)
    record = records[job_id]
    numbers = dict(
        attempts_killed=killed_on,
        record_status=record and record["status"],
        record_attempts=record and record["attempts"],
        view_status=view["status"],
        webhooks=[kind for _, kind in events],
        ended_after_s=round(ended_s, 1),
        announced_after_s=round(announced_s, 1),
    )
    figures("workers die on every attempt", **numbers)
    facts = describe(**numbers)
    assert killed_on == list(range(1, ATTEMPTS + 1)), facts
    assert view["status"] == "failed", f"{facts}; {view}\n{stack.logs()}"
    assert record is not None and record["attempts"] == ATTEMPTS, facts
    assert [kind for _, kind in events] == ["summary.failed"], f"{facts}\n{stack.logs()}"
    dead = [w.pid for w in stack.workers[-2:] if w.process.poll() is not None]
    assert not dead, f"{facts}; survivors died: {dead}\n{stack.logs()}"
