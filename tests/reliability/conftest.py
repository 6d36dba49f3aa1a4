"""Shared pieces of the fault and overload tests: whole stacks of real processes, and sizes.

Every test builds its own stack (a private ``redis-server``, API processes, workers on the tiny
models, a loopback webhook receiver) through :func:`stack_factory`, and every process it starts is
stopped, and checked gone, when the test ends.  Sizes are small by default (the suite runs in CI);
``KURZ_SOAK=1`` (``make soak``) runs the full sizes of the reliability issue.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_lib
from standardwebhooks.webhooks import Webhook

from service.webhooks import generate_secret
from tests.processes import (
    RedisServer,
    ServiceProcess,
    free_port,
    service_env,
    wait_until_live,
    wait_until_ready,
)
from tests.receivers import ThreadedReceiver

SOAK = os.environ.get("KURZ_SOAK", "") not in ("", "0")
PREFIX = "kurz"
#: SAQ's keys for the queue named after the prefix.
QUEUED_KEY = f"saq:{PREFIX}:queued"
WORKER_INFO_PATTERN = f"saq:{PREFIX}:worker_info:*"
TERMINAL = {"complete", "failed", "aborted"}


def sized(ci: int, soak: int) -> int:
    """The CI size, or the issue's full size under ``KURZ_SOAK=1``."""
    return soak if SOAK else ci


Figures = Callable[..., None]


@pytest.fixture
def figures(
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, Any], None]
) -> Figures:
    """Print a test's figures past pytest's capture (and keep them in the JUnit XML)."""

    def emit(name: str, **values: Any) -> None:
        for key, value in values.items():
            record_property(f"{name}.{key}", value)
        with capsys.disabled():
            text = ", ".join(f"{key}={value}" for key, value in values.items())
            print(f"\n[{name}] {text}")  # noqa: T201 - the figures are this test's output

    return emit


def describe(**values: Any) -> str:
    """Figures for an assertion message."""
    return ", ".join(f"{key}={value}" for key, value in values.items())


# --- articles -------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@pytest.fixture(scope="session")
def seed_sentences(seed_texts: dict[str, str]) -> list[str]:
    """Plain German sentences from the seeds (long enough to vote as German)."""
    sentences: list[str] = []
    for text in seed_texts.values():
        for line in text.splitlines():
            for sentence in _SENTENCE_END.split(line.strip()):
                if len(sentence) >= 40 and sentence[0].isupper() and sentence[-1] in ".!?":
                    sentences.append(sentence)
    assert len(sentences) > 50
    return sentences


def article(sentences: list[str], index: int, tag: str, *, length: int = 4) -> str:
    """A short article: ``length`` seed sentences plus one that makes it (and its job) unique."""
    picked = [sentences[(index * 7 + k * 13) % len(sentences)] for k in range(length)]
    return " ".join(picked) + f"\n\nMeldung Nummer {index} ({tag})."


# --- processes ------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS) in MB; 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_alive(pgid: int) -> bool:
    """Whether any process of a process group is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_processes(processes: Iterable[ServiceProcess], timeout_s: float = 3) -> None:
    """SIGTERM every process group at once, wait a little, then SIGKILL what is left.

    A stack is thrown away after its test, so nothing is gained by waiting out an idle SAQ
    worker's shutdown (its upkeep loops sleep up to 10 s).
    """
    processes = list(processes)
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.signal(signal.SIGKILL)
            process.wait(timeout=10)
    for process in processes:
        if group_alive(process.pid):  # a child left behind in the group (an extraction process)
            os.killpg(process.pid, signal.SIGKILL)
            # Killed grandchildren are reaped by whoever adopted them, a moment later.
            gone_by = time.monotonic() + 10
            while group_alive(process.pid) and time.monotonic() < gone_by:
                time.sleep(0.05)
        process.stop()  # closes the log file


@dataclass
class Stack:
    """A private Redis, API processes, workers and a webhook receiver, torn down together."""

    root: Path
    redis: RedisServer
    env: dict[str, str]
    receiver: ThreadedReceiver
    secret: str
    apis: list[tuple[ServiceProcess, str]] = field(default_factory=list)
    workers: list[ServiceProcess] = field(default_factory=list)
    started: list[ServiceProcess] = field(default_factory=list)
    """Every process this stack ever started (killed ones included), for the orphan check."""

    @property
    def base_url(self) -> str:
        return self.apis[0][1]

    def start_api(self, name: str = "api", **extra: str) -> str:
        port = free_port()
        env = {**self.env, "KURZ_PORT": str(port), **extra}
        process = ServiceProcess("api", env, self.root / f"{name}.log")
        self.started.append(process)
        url = f"http://127.0.0.1:{port}"
        self.apis.append((process, url))
        return url

    def start_worker(self, name: str, **extra: str) -> ServiceProcess:
        log = self.root / f"{name}.log"
        if log.exists():
            log = self.root / f"{name}-{len(self.started)}.log"
        process = ServiceProcess("worker", {**self.env, **extra}, log)
        self.started.append(process)
        self.workers.append(process)
        return process

    def wait_api(self, url: str, timeout_s: float = 60) -> None:
        """Wait for an API process to answer (liveness: it needs no worker)."""
        wait_until_live(url, timeout_s=timeout_s)

    def wait_ready(self, timeout_s: float = 120) -> None:
        wait_until_ready(self.base_url, timeout_s)

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.redis.url, socket_timeout=5)

    def heartbeat_pids(self) -> set[int]:
        """Pids of the workers whose heartbeat record (written once models are loaded) exists."""
        with self.client() as client:
            keys = list(client.scan_iter(match=f"{PREFIX}:worker:*", count=1000))
            records = client.mget(keys) if keys else []
        return {int(json.loads(raw)["pid"]) for raw in records if raw}

    def wait_worker(self, process: ServiceProcess, timeout_s: float = 120) -> None:
        """Wait until a worker has loaded its models and announced itself."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.process.poll() is not None:
                raise RuntimeError(f"worker exited: {process.output()[-3000:]}")
            if process.pid in self.heartbeat_pids():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {process.pid} not ready: {process.output()[-3000:]}")

    def start_identified_worker(self, name: str, **extra: str) -> tuple[ServiceProcess, str]:
        """Start a worker alone and learn its SAQ worker id (job records name that id).

        SAQ's id is a random uuid, not the pid: it is the ``worker_info`` key that appears
        once the new worker runs, which is why workers are started one at a time here.
        """
        known = self.saq_worker_ids()
        process = self.start_worker(name, **extra)
        self.wait_worker(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            fresh = self.saq_worker_ids() - known
            if len(fresh) == 1:
                return process, fresh.pop()
            assert len(fresh) < 2, f"two new SAQ workers appeared at once: {fresh}"
            time.sleep(0.05)
        raise TimeoutError(f"no worker_info record from worker {process.pid}")

    def saq_worker_ids(self) -> set[str]:
        with self.client() as client:
            return {
                key.decode().rsplit(":", 1)[-1]
                for key in client.scan_iter(match=WORKER_INFO_PATTERN, count=1000)
            }

    def records(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """SAQ's job records by job id (None where there is none)."""
        ids = list(job_ids)
        if not ids:
            return {}
        with self.client() as client:
            raw = client.mget([f"saq:job:{PREFIX}:{job_id}" for job_id in ids])
        return {
            job_id: (json.loads(value) if value else None)
            for job_id, value in zip(ids, raw, strict=True)
        }

    def wait_finished(
        self, job_ids: Iterable[str], timeout_s: float
    ) -> dict[str, dict[str, Any] | None]:
        """Poll the job records until every job has ended (or the deadline passes)."""
        ids = list(job_ids)
        deadline = time.monotonic() + timeout_s
        records = self.records(ids)
        while time.monotonic() < deadline:
            records = self.records(ids)
            if all(r is not None and r["status"] in TERMINAL for r in records.values()):
                break
            time.sleep(0.25)
        return records

    def views(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The API's view of every job (what a newsroom polling ``/jobs/{id}`` sees)."""
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            return {job_id: http.get(f"/jobs/{job_id}").json() for job_id in job_ids}

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Every webhook received so far, its signature checked: (webhook-id, event)."""
        return [
            (request.headers["webhook-id"], verified(self.secret, request.headers, request.body))
            for request in list(self.receiver.requests)
        ]

    def logs(self) -> str:
        return "\n".join(
            f"--- {process.log_path.name} ---\n{process.output()[-4000:]}"
            for process in self.started
        )


StackFactory = Callable[..., Stack]


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The event, once its Standard Webhooks signature checks out.

    ``Webhook.verify`` also refuses messages sent over five minutes ago (a receiver's replay
    window); a soak run reads its first deliveries later than that, so only the signature
    over id, timestamp and body is checked here.
    """
    sent = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(secret).sign(headers["webhook-id"], sent, body.decode()).split(",", 1)[1]
    offered = [
        signature.split(",", 1)[1]
        for signature in headers["webhook-signature"].split()
        if signature.startswith("v1,")
    ]
    assert any(hmac.compare_digest(expected, s) for s in offered), f"bad signature: {headers}"
    event: dict[str, Any] = json.loads(body)
    return event


@pytest.fixture
def stack_factory(tmp_path: Path, tiny_models_dir: Path) -> Iterator[Callable[..., Stack]]:
    """Build a :class:`Stack` (``make(aof=..., **env)``); everything stops when the test ends."""
    stacks: list[Stack] = []

    def make(*, aof: bool = False, **extra: str) -> Stack:
        root = tmp_path / f"stack-{len(stacks)}"
        root.mkdir()
        secret = generate_secret()
        settings = {
            "KURZ_INFERENCE_THREADS": "1",  # two workers share this machine's cores
            "KURZ_WORKER_CONCURRENCY": "4",
            "KURZ_WEBHOOK_SECRET": secret,
            "KURZ_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
            "KURZ_WEBHOOK_RETRY_SCHEDULE": "0,1,1",
            "KURZ_KEY_PREFIX": PREFIX,
            **extra,
        }
        redis = RedisServer(root / "redis", aof=aof)
        stack = Stack(
            root=root,
            redis=redis,
            env=service_env(redis.url, tiny_models_dir, **settings),
            receiver=ThreadedReceiver(),
            secret=secret,
        )
        stacks.append(stack)  # before anything can fail: the teardown stops what started
        redis.start()
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            try:
                stop_processes(stack.started)
            finally:
                stack.redis.stop()
                stack.receiver.close()
        leftovers = [
            process.pid
            for stack in stacks
            for process in stack.started
            if process.process.poll() is None or group_alive(process.pid)
        ]
        assert not leftovers, f"processes left running: {leftovers}"
