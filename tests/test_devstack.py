"""``make run`` (``python -m service.dev.devstack``) as a user meets it: a real supervisor process
with an embedded Redis, the API and a worker on the tiny models, stopped with Ctrl-C (SIGINT).

Each run gets its own var directory, API port and key prefix, and starts in a temporary
directory so that a developer's ``.env`` does not leak in.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from service.dev.devstack import PIDS_FILE_NAME, client_host, curl_command, one_line
from service.logs import redacted_url
from service.settings import ROOT
from tests.processes import environ_without_kurz, free_port

#: Starting the stack imports torch twice and loads two models: slow on a busy 2-core machine.
READY_TIMEOUT_S = 240
STOP_TIMEOUT_S = 30


class Run:
    """A devstack process whose output lines are collected by a thread."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.var_dir = tmp_path / "var"
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.dev.devstack", "--var-dir", str(self.var_dir)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching ``pattern``; fails with the output so far."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            match = regex.search(line)
            if match:
                return match
        pytest.fail(f"no line matching {pattern!r}; output:\n" + "\n".join(self.output[-60:]))

    def drain(self) -> str:
        self._reader.join(timeout=5)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return "\n".join(self.output)

    def close(self) -> None:
        """Kill the supervisor if a test failed half-way, and close its output pipe."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def gone(pid: int) -> bool:
    """Whether a process no longer exists (a zombie no one reaped counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: dict[str, int], timeout: float) -> dict[str, int]:
    """The processes still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = dict(pids)
    while alive and time.monotonic() < deadline:
        alive = {name: pid for name, pid in alive.items() if not gone(pid)}
        time.sleep(0.2)
    return alive


@pytest.fixture
def stack_env(tiny_models_dir: Path) -> Iterator[dict[str, str]]:
    """The environment of `KURZ_MODELS=tiny make run`, isolated from the developer's own."""
    env = environ_without_kurz()
    env.update(
        KURZ_MODELS="tiny",
        KURZ_TINY_MODELS_DIR=str(tiny_models_dir),
        KURZ_PORT=str(free_port()),
        KURZ_KEY_PREFIX=f"devstack-test-{os.getpid()}",
        KURZ_DEVICE="cpu",
        KURZ_INFERENCE_THREADS="1",
        KURZ_WORKER_CONCURRENCY="2",
        HF_HUB_OFFLINE="1",
    )
    yield env


@pytest.mark.slow
def test_make_run_serves_then_ctrl_c_stops_every_process(
    tmp_path: Path, stack_env: dict[str, str]
) -> None:
    """`make run` gets ready on an embedded Redis, and Ctrl-C leaves no process behind."""
    run = Run(tmp_path, stack_env)
    try:
        port = stack_env["KURZ_PORT"]
        run.wait_for(r"Kurzgefasst is ready", READY_TIMEOUT_S)
        run.wait_for(rf"curl -s -X POST 'http://127\.0\.0\.1:{port}/summarize\?wait=60'", 10)
        pids: dict[str, int] = json.loads((run.var_dir / PIDS_FILE_NAME).read_text())
        assert set(pids) == {"devstack", "api", "worker", "redis"}
        assert pids["devstack"] == run.process.pid
        assert (run.var_dir / "redis.db.settings").exists(), "Redis keeps its data under var/"

        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["workers"], ready.text

        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=STOP_TIMEOUT_S) == 0
        left = wait_gone({k: v for k, v in pids.items() if k != "devstack"}, timeout=20)
        assert not left, f"still running after Ctrl-C: {left}"
        assert not (run.var_dir / PIDS_FILE_NAME).exists()
        assert (run.var_dir / "redis.db").exists(), "the embedded Redis saved its data"
        assert "all processes stopped" in run.drain()
    finally:
        run.close()


@pytest.mark.slow
def test_a_dying_child_takes_the_stack_down(tmp_path: Path, stack_env: dict[str, str]) -> None:
    """When the API or worker cannot start, `make run` stops the rest and shows why."""
    stack_env["KURZ_PROMPTS_DIR"] = str(tmp_path / "no-such-prompts")
    run = Run(tmp_path, stack_env)
    try:
        run.wait_for(r"started devstack", READY_TIMEOUT_S)
        pids: dict[str, int] = json.loads((run.var_dir / PIDS_FILE_NAME).read_text())
        code = run.process.wait(timeout=READY_TIMEOUT_S)
        output = run.drain()
        assert code != 0
        assert re.search(r"(api|worker) exited with status \d+", output), output
        assert re.search(r"^run +\| error: .*no-such-prompts", output, re.M), output
        left = wait_gone({k: v for k, v in pids.items() if k != "devstack"}, timeout=20)
        assert not left, f"still running after a child died: {left}"
    finally:
        run.close()


def test_offline_without_models_says_which_command_to_run(
    tmp_path: Path, stack_env: dict[str, str]
) -> None:
    """Offline with no cached models, `make run` starts nothing and names download-models."""
    stack_env.update(KURZ_MODELS="hub", KURZ_TRANSLATION_MODEL="kurzgefasst-tests/not-a-model")
    run = subprocess.run(
        [sys.executable, "-m", "service.dev.devstack", "--var-dir", str(tmp_path / "var")],
        cwd=tmp_path,
        env=stack_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert "kurzgefasst-tests/not-a-model" in last
    assert "python -m service download-models" in last
    assert not (tmp_path / "var" / PIDS_FILE_NAME).exists()


def test_the_printed_curl_command_posts_the_seed_article(tmp_path: Path) -> None:
    """The command `make run` prints submits a real seed article, with an API key if needed."""
    seed = ROOT / "seeds" / "000_1e1de29cccfa5500.txt"
    command = curl_command("http://127.0.0.1:8000", seed, [])
    assert "000_1e1de29cccfa5500.txt" in command
    assert "'http://127.0.0.1:8000/summarize?wait=60'" in command
    assert "X-API-Key" not in command
    assert "X-API-Key" in curl_command("http://127.0.0.1:8000", seed, ["secret"])
    assert "secret" not in curl_command("http://127.0.0.1:8000", seed, ["secret"])


def test_helpers_show_addresses_a_user_can_paste() -> None:
    """Wildcard binds become loopback URLs, passwords are hidden, errors fit on one line."""
    assert client_host("0.0.0.0") == "127.0.0.1"
    assert client_host("::") == "[::1]"
    assert client_host("localhost") == "localhost"
    assert redacted_url("redis://default:hunter2@redis:6379/0") == "redis://***@redis:6379/0"
    assert redacted_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert one_line("a\n  b\tc") == "a b c"
