"""``python -m service api`` serves with ``KURZ_API_PROCESSES`` processes on one port.

A cache hit costs CPU in one Python process; on a machine with more cores a single process is
the ceiling.  Real API processes, a real Redis: the processes are the uvicorn workers the
command starts, and stopping the command stops every one of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.processes import ServiceProcess, free_port, service_env, wait_until_live

pytestmark = pytest.mark.redis


def serving_children(pid: int) -> list[int]:
    """The API worker processes ``pid`` started (multiprocessing's spawned children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue  # gone meanwhile
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        if int(parent.split()[1]) == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_api(
    tmp_path: Path, redis_url: str, prefix: str, **settings: str
) -> tuple[ServiceProcess, str]:
    port = free_port()
    env = service_env(redis_url, tmp_path, KURZ_PORT=str(port), KURZ_KEY_PREFIX=prefix, **settings)
    process = ServiceProcess("api", env, tmp_path / f"api-{port}.log")
    base_url = f"http://127.0.0.1:{port}"
    wait_until_live(base_url, process)
    return process, base_url


def children_within(pid: int, count: int, timeout_s: float = 30.0) -> list[int]:
    """The serving children once there are ``count`` of them (their start is asynchronous)."""
    deadline = time.monotonic() + timeout_s
    children = serving_children(pid)
    while len(children) != count and time.monotonic() < deadline:
        time.sleep(0.2)
        children = serving_children(pid)
    return children


def test_the_api_serves_with_the_processes_its_setting_names(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """KURZ_API_PROCESSES=3 starts three serving processes on one port; stopping the command
    stops them all."""
    process, base_url = start_api(tmp_path, redis_url, prefix, KURZ_API_PROCESSES="3")
    try:
        children = children_within(process.pid, 3)
        assert len(children) == 3, process.output()
        for _ in range(20):  # every process answers on the shared port, whichever takes it
            assert httpx.get(f"{base_url}/health/live", timeout=10).status_code == 200
    finally:
        process.stop()
    assert not [pid for pid in children if alive(pid)]


def test_by_default_the_api_serves_with_one_process_per_usable_core(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    """Without the setting there is one process per core the command may run on (one process,
    without a supervisor above it, on a single core)."""
    cores = len(os.sched_getaffinity(0))
    assert Settings(_env_file=None).api_process_count == cores  # type: ignore[call-arg]
    process, _ = start_api(tmp_path, redis_url, prefix)
    try:
        assert len(children_within(process.pid, cores if cores > 1 else 0)) == (
            cores if cores > 1 else 0
        ), process.output()
    finally:
        process.stop()
