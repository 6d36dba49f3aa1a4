"""Real processes for end-to-end tests: a private Redis, API servers and workers.

Each test stack gets its own ``redis-server`` on a free port (so a test may kill or restart it
without touching anyone's data) and its own key prefix.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.settings import ROOT
from tests.receivers import ThreadedReceiver


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on a loopback port, optionally with AOF persistence."""

    def __init__(self, directory: Path, port: int | None = None, *, aof: bool = False) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.aof = aof
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes" if self.aof else "no",
            "--appendfsync",
            "everysec",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)
        self.process = None


class ComposeRedis:
    """One of the compose stack's Redis servers, started by the script compose runs
    (``deploy/redis/start.sh queue|cache``) on a loopback port: its memory policy and its ACL,
    with the app's user ``kurz`` and ``password``."""

    SCRIPT = ROOT / "deploy" / "redis" / "start.sh"

    def __init__(
        self, directory: Path, role: str, password: str, *, maxmemory: str | None = None
    ) -> None:
        self.directory = directory
        self.role = role
        self.password = password
        self.maxmemory = maxmemory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The app's URL: user ``kurz`` and its password."""
        return f"redis://kurz:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        data, run = self.directory / "data", self.directory / "run"
        data.mkdir(parents=True, exist_ok=True)
        env = {
            **environ_without_kurz(),
            "REDIS_PASSWORD": self.password,
            "REDIS_PORT": str(self.port),
            "REDIS_BIND": "127.0.0.1",
            "REDIS_DATA_DIR": str(data),
            "REDIS_RUN_DIR": str(run),
        }
        if self.maxmemory is not None:
            env["REDIS_MAXMEMORY" if self.role == "queue" else "CACHE_MAXMEMORY"] = self.maxmemory
        log = (self.directory / "redis.log").open("wb")
        self.process = subprocess.Popen(
            ["sh", str(self.SCRIPT), self.role], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        output = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.role} Redis on port {self.port} did not start:\n{output}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.process = None


def environ_without_kurz() -> dict[str, str]:
    """A copy of this process's environment without any KURZ_ variable, for a subprocess that
    the test alone configures (the ``clean_env`` fixture does the same to the test process)."""
    return {name: value for name, value in os.environ.items() if not name.startswith("KURZ_")}


def service_env(redis_url: str, tiny_models_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a service process: tiny models, the test Redis, nothing from the shell."""
    env = environ_without_kurz()
    env.update(
        KURZ_REDIS_URL=redis_url,
        KURZ_MODELS="tiny",
        KURZ_TINY_MODELS_DIR=str(tiny_models_dir),
        KURZ_CONVERTED_MODELS_DIR=str(tiny_models_dir / "converted"),
        KURZ_DEVICE="cpu",
        KURZ_INFERENCE_THREADS="2",
        KURZ_LOG_LEVEL="warning",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class ServiceProcess:
    """``python -m service <command>`` in its own process group, output kept in a file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", command],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, sig: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running(*processes: ServiceProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()


def wait_until_ready(base_url: str, timeout_s: float = 120.0) -> None:
    """Poll /health/ready until the API says a worker with models is there."""
    _wait_for(base_url, "ready", timeout_s)


def wait_until_live(
    base_url: str, process: ServiceProcess | None = None, timeout_s: float = 60.0
) -> None:
    """Poll /health/live until the API process answers (it needs no worker for that)."""
    _wait_for(base_url, "live", timeout_s, process)


def _wait_for(
    base_url: str, state: str, timeout_s: float, process: ServiceProcess | None = None
) -> None:
    """Poll ``/health/<state>`` until it answers 200; a ``process`` that exits first, or an
    API that never answers, is reported with the last answer and the process's output."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if process is not None and process.process.poll() is not None:
            raise RuntimeError(
                f"the API exited with {process.process.returncode}: {process.output()}"
            )
        try:
            response = httpx.get(f"{base_url}/health/{state}", timeout=2)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.2)
    output = process.output()[-3000:] if process is not None else ""
    raise TimeoutError(f"{base_url} not {state} after {timeout_s} s: {last}\n{output}")


@dataclass(frozen=True)
class ServiceStack:
    """A running private Redis, one API process and one worker (see :func:`service_stack`)."""

    base_url: str
    redis_url: str


@contextmanager
def service_stack(logs: Path, tiny_models_dir: Path, **settings: str) -> Iterator[ServiceStack]:
    """Start a private Redis, one API and one worker on the tiny models with ``settings``
    (``KURZ_`` variables), wait until the API is ready, and stop all three afterwards; a stack
    that fails to come up shows the processes' last output."""
    redis = RedisServer(logs / "redis")
    redis.start()
    port = free_port()
    env = service_env(redis.url, tiny_models_dir, KURZ_PORT=str(port), **settings)
    api = ServiceProcess("api", env, logs / "api.log")
    worker = ServiceProcess("worker", env, logs / "worker.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_ready(base_url)
        except TimeoutError as error:
            raise TimeoutError(
                f"{error}\n{api.output()[-3000:]}\n{worker.output()[-3000:]}"
            ) from None
        yield ServiceStack(base_url=base_url, redis_url=redis.url)
    finally:
        api.stop()
        worker.stop()
        redis.stop()


@dataclass
class ComposeStack:
    """The compose stack's two Redis servers (see :class:`ComposeRedis`), one API and one worker
    on the tiny models logged in as the app's user, and a loopback webhook receiver."""

    queue: ComposeRedis
    cache: ComposeRedis
    receiver: ThreadedReceiver
    base_url: str
    processes: list[ServiceProcess]

    def logs(self) -> str:
        """Everything the API and the worker wrote (whole: tests search it)."""
        return "\n".join(process.output() for process in self.processes)


@contextmanager
def compose_stack(
    directory: Path,
    tiny_models_dir: Path,
    *,
    queue_maxmemory: str | None = None,
    cache_maxmemory: str | None = None,
    **settings: str,
) -> Iterator[ComposeStack]:
    """Start a :class:`ComposeStack` with ``settings`` (``KURZ_`` variables; callbacks may
    reach 127.0.0.1), wait until the API is ready, and stop everything afterwards."""
    password = secrets.token_hex(24)
    queue = ComposeRedis(directory / "queue", "queue", password, maxmemory=queue_maxmemory)
    cache = ComposeRedis(directory / "cache", "cache", password, maxmemory=cache_maxmemory)
    receiver = ThreadedReceiver()
    processes: list[ServiceProcess] = []
    try:
        queue.start()
        cache.start()
        port = free_port()
        env = service_env(
            queue.url,
            tiny_models_dir,
            KURZ_CACHE_REDIS_URL=cache.url,
            KURZ_PORT=str(port),
            KURZ_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
            KURZ_WEBHOOK_RETRY_SCHEDULE="0,1",
            **settings,
        )
        processes.append(ServiceProcess("api", env, directory / "api.log"))
        processes.append(ServiceProcess("worker", env, directory / "worker.log"))
        stack = ComposeStack(queue, cache, receiver, f"http://127.0.0.1:{port}", processes)
        try:
            wait_until_ready(stack.base_url)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{stack.logs()[-6000:]}") from None
        yield stack
    finally:
        for process in processes:
            process.stop()
        queue.stop()
        cache.stop()
        receiver.close()
