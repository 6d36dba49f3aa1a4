"""The compose stack built and run as a user runs it: ``make test-image``.

The images come from ``scripts/image.sh`` (the service's with the tiny offline models baked in,
``BAKE_MODELS=tiny``, and Redis's), the stack from ``docker-compose.yml`` with
``tests/image/compose.yml`` over it, under a project name of its own, with Docker Compose where a
Docker engine answers and podman-compose otherwise.  The checks run in order on one stack, each on
what the ones before left: the image itself, the services healthy, a seed through
``POST /summarize``, its repeat a cache hit, a webhook to a receiver container, a worker container
killed mid-job, Redis re-created on its AOF volume, ``compose down`` and ``up`` with the cache
still warm, and the worker's stop grace on ``compose stop``.  Each prints one ``[name] ...`` line
of figures.

Not part of ``make test``: pytest does not collect this file (its name does not start with
``test_``), since it needs a container engine and the images, and takes several minutes.

Podman runs no healthcheck timers without systemd: there each check's wait runs the containers'
healthchecks itself (``podman healthcheck run``, the command the engine would run), and reads the
status the engine records.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from service.settings import ROOT
from service.webhooks import generate_secret
from tests.processes import free_port, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

IMAGE = os.environ.get("IMAGE", "kurzgefasst:test")
REDIS_IMAGE = os.environ.get("REDIS_IMAGE", "kurzgefasst-redis:local")
SCRIPT = ROOT / "scripts" / "image.sh"
FILES = ("docker-compose.yml", "tests/image/compose.yml")
SEED = sorted((ROOT / "seeds").glob("*.txt"))[0]
#: The runtime image without models must stay under this (the issue's bound).
MAX_IMAGE_BYTES = 1_500_000_000
#: Seconds an engine waits after SIGTERM before SIGKILL when nobody says otherwise.
ENGINE_DEFAULT_STOP_S = 10
TERMINAL = {"succeeded", "failed", "canceled"}


def image_script(*args: str) -> str:
    """Run ``scripts/image.sh`` and return its output (it picks the engine the same way)."""
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, check=False, timeout=900
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


Figures = Callable[..., None]


@pytest.fixture
def figures(capsys: pytest.CaptureFixture[str]) -> Figures:
    """Print a check's figures past pytest's capture."""

    def emit(name: str, **values: Any) -> None:
        with capsys.disabled():
            text = ", ".join(f"{key}={value}" for key, value in values.items())
            print(f"\n[{name}] {text}")  # noqa: T201 - the figures are this check's output

    return emit


@dataclass
class Stack:
    """One compose project of the checked files, and what the checks learned along the way."""

    engine: str
    compose_command: list[str]
    project: str
    env: dict[str, str]
    api_url: str
    receiver_url: str
    secret: str
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Finished jobs by id: the views the later checks expect to find again."""
    seed_translation: str = ""

    def compose_line(self, *args: str) -> list[str]:
        """The compose command for this project and the checked files, with ``args``."""
        command = [*self.compose_command, "-p", self.project]
        for name in FILES:
            command += ["-f", name]
        return [*command, *args]

    def compose(self, *args: str, timeout_s: float = 900) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.compose_line(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout_s,
        )
        assert result.returncode == 0, f"{shlex.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def engine_run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [self.engine, *args], capture_output=True, text=True, check=False, timeout=300
        )
        if check:
            assert result.returncode == 0, f"{self.engine} {shlex.join(args)}: {result.stderr}"
        return result.stdout.strip()

    def container(self, service: str) -> str:
        """The name of the service's container (running or not)."""
        names = self.engine_run(
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
            "--format",
            "{{.Names}}",
        ).split()
        assert len(names) == 1, (service, names)
        return names[0]

    def state(self, service: str) -> dict[str, Any]:
        """The engine's ``State`` of the service's container, with its restart count."""
        name = self.container(service)
        found = json.loads(self.engine_run("inspect", "--type", "container", name))[0]
        state = dict(found["State"])
        state["RestartCount"] = found.get("RestartCount", 0)
        return state

    def health(self, service: str) -> str:
        health = self.state(service).get("Health") or self.state(service).get("Healthcheck")
        return str((health or {}).get("Status", ""))

    def wait_healthy(self, service: str, timeout_s: float = 600) -> float:
        """Seconds until the engine reports the service healthy (podman: running its check)."""
        started = time.monotonic()
        name = self.container(service)
        while time.monotonic() - started < timeout_s:
            if self.engine == "podman":
                self.engine_run("healthcheck", "run", name, check=False)
            if self.health(service) == "healthy":
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(f"{service} not healthy after {timeout_s} s: {self.state(service)}")

    def wait_ready(self, timeout_s: float = 600) -> None:
        """Until the API says Redis answers and a worker is alive."""
        wait_until_ready(self.api_url, timeout_s)

    def logs(self) -> str:
        """The last lines of every container of the project, for a failure's report."""
        parts = []
        for service in ("redis", "cache", "api", "worker", "receiver"):
            try:
                name = self.container(service)
            except AssertionError:
                continue
            result = subprocess.run(
                [self.engine, "logs", "--tail", "40", name],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            parts.append(f"--- {service}\n{result.stdout}{result.stderr}")
        return "\n".join(parts)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The images built (cached), and the project's containers, network and volumes removed
    at the end; the stack itself is brought up by the first check that needs it."""
    image_script("report", IMAGE)  # fails here, with a hint, when `make test-image` did not build
    engine = image_script("engine")
    compose_command = shlex.split(image_script("compose"))
    api_port, receiver_port = free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_PASSWORD": secrets.token_hex(24),
        "API_PORT": str(api_port),
        "RECEIVER_PORT": str(receiver_port),
        "WEBHOOK_SECRET": generate_secret(),
        "IMAGE": IMAGE,
        "REDIS_IMAGE": REDIS_IMAGE,
    }
    made = Stack(
        engine=engine,
        compose_command=compose_command,
        project=f"kurzcheck{os.getpid()}",
        env=env,
        api_url=f"http://127.0.0.1:{api_port}",
        receiver_url=f"http://127.0.0.1:{receiver_port}",
        secret=env["WEBHOOK_SECRET"],
    )
    try:
        yield made
    finally:
        if request.session.testsfailed:
            print(made.logs())  # noqa: T201 - what the containers said, for the failure
        subprocess.run(
            made.compose_line("down", "-v", "-t", "5"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            check=False,
            timeout=600,
        )


# --- articles and jobs -----------------------------------------------------------------------


def sentences() -> list[str]:
    """German sentences of the seeds (long enough to be told German on their own)."""
    found = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            for part in line.replace("! ", "!\n").replace(". ", ".\n").splitlines():
                if len(part) >= 40 and part[0].isupper() and part.endswith((".", "!")):
                    found.append(part)
    assert len(found) > 50
    return found


def long_article(tag: str, count: int = 400) -> str:
    """An article of ``count`` sentences that no cache has seen: each names ``tag`` and its
    number, so the sentence cache cannot shorten the job (on the tiny models, about ten seconds
    of work on two busy cores)."""
    pool = sentences()
    lines = [f"Meldung {i} von {tag}: {pool[i % len(pool)]}" for i in range(count)]
    return "\n".join(" ".join(lines[i : i + 5]) for i in range(0, count, 5))


def submit(http: httpx.Client, body: dict[str, Any], wait_s: int = 0) -> dict[str, Any]:
    response = http.post("/summarize", params={"wait": wait_s}, json=body)
    assert response.status_code in (200, 202), response.text
    view: dict[str, Any] = response.json()
    return view


def view_of(http: httpx.Client, job_id: str) -> dict[str, Any]:
    response = http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def wait_finished(http: httpx.Client, job_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = view_of(http, job_id)
        if view["status"] in TERMINAL:
            return view
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished after {timeout_s} s: {view}")


def wait_running(
    http: httpx.Client, job_id: str, timeout_s: float = 300, *, working: bool = False
) -> dict[str, Any]:
    """The job's view once a worker has taken it (``working``: once it reports a stage of the
    article's work, past being taken)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = view_of(http, job_id)
        if view["status"] != "queued" and not (
            working and view["status"] == "running" and view["progress"]["stage"] == "queued"
        ):
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not started after {timeout_s} s: {view}")


def remember(stack: Stack, view: dict[str, Any]) -> None:
    """Keep a finished job for the checks that expect to find it again."""
    assert view["status"] == "succeeded", view
    stack.jobs[view["id"]] = view


def assert_nothing_lost(stack: Stack, http: httpx.Client) -> int:
    """Every job finished before is there with the same result; returns how many."""
    for job_id, before in stack.jobs.items():
        now = view_of(http, job_id)
        assert now["status"] == "succeeded", (job_id, now)
        assert now["result"]["translation"] == before["result"]["translation"], job_id
        assert now["result"]["summary"] == before["result"]["summary"], job_id
    return len(stack.jobs)


def assert_seed_is_a_cache_hit(stack: Stack, http: httpx.Client) -> None:
    view = submit(http, {"text": SEED.read_text(encoding="utf-8")})
    assert view["status"] == "succeeded", view
    assert view["result"]["cached"] is True, view["result"]
    assert view["result"]["translation"] == stack.seed_translation


# --- the checks, in order --------------------------------------------------------------------


def layer_sizes(stack: Stack) -> list[tuple[int, str]]:
    """(bytes, instruction) of each layer of the image, newest first."""
    if stack.engine == "podman":
        # Its JSON has bytes; its templates print sizes for people whatever --human says.
        rows = json.loads(stack.engine_run("history", "--no-trunc", "--format", "json", IMAGE))
        return [(int(row["size"]), str(row["CreatedBy"])) for row in rows]
    lines = stack.engine_run(
        "history", "--no-trunc", "--human=false", "--format", "{{.Size}}\t{{.CreatedBy}}", IMAGE
    ).splitlines()
    return [(int(size), step) for size, step in (line.split("\t", 1) for line in lines)]


def test_image_is_lean_small_and_carries_no_build_configuration(
    stack: Stack, figures: Figures, tmp_path: Path
) -> None:
    """The image (the default backend, models baked in) holds neither torch nor any nvidia-*
    package: its worker runs the converted models with tokenizers and CTranslate2 alone.  It
    stays under 1.5 GB without its models, and keeps nothing of the machine's pip configuration
    that reached the build."""
    probe = stack.engine_run(
        "run",
        "--rm",
        "--entrypoint",
        "/app/.venv/bin/python",
        IMAGE,
        "-c",
        "import importlib.metadata as m, importlib.util as u, json;"
        " print(json.dumps({'torch': u.find_spec('torch') is not None,"
        " 'torch_dist': [d.version for d in m.distributions() if d.metadata['Name'] == 'torch'],"
        " 'ctranslate2': m.version('ctranslate2'), 'nvidia': sorted(d.metadata['Name'] for d in"
        " m.distributions() if d.metadata['Name'].lower().startswith('nvidia-'))}))",
    )
    found = json.loads(probe.splitlines()[-1])
    assert found["torch"] is False and found["torch_dist"] == [], found
    assert found["nvidia"] == [], found
    venv_mb = stack.engine_run(
        "run", "--rm", "--entrypoint", "/usr/bin/du", IMAGE, "-sm", "/app/.venv"
    ).split()[0]
    mounts = image_script("pip-mounts", str(tmp_path)).splitlines()
    paths = {"/etc/pip.conf", "/etc/xdg/pip", "/root/.config/pip"}
    paths |= {line.split(":")[1] for line in mounts}
    present = stack.engine_run(
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        IMAGE,
        "-c",
        " ".join(f"[ -e {shlex.quote(p)} ] && echo {shlex.quote(p)};" for p in sorted(paths))
        + " true",
    ).split()
    assert present == [], f"the image keeps paths of the build's pip configuration: {present}"
    total = int(stack.engine_run("image", "inspect", "--format", "{{.Size}}", IMAGE))
    layers = layer_sizes(stack)
    models = sum(
        size
        for size, step in layers
        if "COPY" in step
        and step.split(" # ")[0].rstrip().endswith(("/home/kurz/.cache/huggingface", "/app/var"))
    )
    figures(
        "image",
        image=IMAGE,
        torch="absent",
        ctranslate2=found["ctranslate2"],
        venv_mb=venv_mb,
        total_mb=round(total / 1e6),
        without_models_mb=round((total - models) / 1e6),
        layers_mb="; ".join(f"{size / 1e6:.1f}" for size, _ in layers if size >= 1e6),
    )
    assert total - models < MAX_IMAGE_BYTES, (total, models)


def test_services_become_healthy(stack: Stack, figures: Figures) -> None:
    """`compose up -d` brings Redis, the API and the worker to healthy, the API ready."""
    started = time.monotonic()
    stack.compose("up", "-d")
    up_s = time.monotonic() - started
    healthy = {
        service: stack.wait_healthy(service) for service in ("redis", "cache", "worker", "api")
    }
    stack.wait_ready()
    figures(
        "healthy",
        engine=stack.engine,
        compose=Path(stack.compose_command[0]).name,
        up_s=round(up_s, 1),
        **{f"{service}_s": round(seconds, 1) for service, seconds in healthy.items()},
        all_healthy_s=round(time.monotonic() - started, 1),
    )


def test_containers_run_unprivileged_and_no_command_line_shows_the_password(
    stack: Stack, figures: Figures
) -> None:
    """What compose asks for is what the engine runs: no capabilities, no privilege gain, the
    API's root read-only (its /tmp writable), both Redis servers as ``redis`` with their
    configuration from the start script, and the password on no process's command line."""
    password = stack.env["REDIS_PASSWORD"]
    for service in ("redis", "cache", "api", "worker"):
        name = stack.container(service)
        found = json.loads(stack.engine_run("inspect", "--type", "container", name))[0]
        host = found["HostConfig"]
        dropped = {cap.upper().removeprefix("CAP_") for cap in host.get("CapDrop") or []}
        added = host.get("CapAdd") or []
        assert "ALL" in dropped or len(dropped) >= 10, (service, dropped)
        assert not added, (service, added)
        assert any("no-new-privileges" in opt for opt in host.get("SecurityOpt") or []), service
        effective = stack.engine_run("exec", name, "sh", "-c", "grep CapEff /proc/1/status")
        assert effective.split()[-1].strip("0") == "", (service, effective)
        commands = stack.engine_run(
            "exec", name, "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '"
        )
        assert password not in commands, service
    api = stack.container("api")
    refused = subprocess.run(
        [stack.engine, "exec", api, "sh", "-c", "touch /app/written"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode != 0 and "Read-only" in refused.stderr, refused
    stack.engine_run("exec", api, "sh", "-c", "touch /tmp/written && rm /tmp/written")
    for service in ("redis", "cache"):
        user = stack.engine_run("exec", stack.container(service), "id", "-un")
        assert user == "redis", (service, user)
    figures("unprivileged", services=4, api_root="read-only", password_on_command_lines=0)


def test_a_seed_is_summarized_through_post_summarize(stack: Stack, figures: Figures) -> None:
    """The README's first request works against the containers: a German seed in, its
    translation, every sentence once, and a summary out."""
    started = time.monotonic()
    with httpx.Client(base_url=stack.api_url, timeout=90) as http:
        view = submit(http, {"text": SEED.read_text(encoding="utf-8")}, wait_s=60)
        if view["status"] not in TERMINAL:
            view = wait_finished(http, view["id"])
    result = view["result"]
    assert result["cached"] is False
    assert result["sentences_in"] == result["sentences_translated"] > 0
    assert result["translation"].strip() and result["summary"].strip()
    # Translated and summarized by the image's worker, which has no torch (the first check).
    assert {m["backend"] for m in result["models"].values()} == {"ctranslate2"}, result["models"]
    remember(stack, view)
    stack.seed_translation = result["translation"]
    figures(
        "seed",
        file=SEED.name,
        sentences=result["sentences_in"],
        seconds=round(time.monotonic() - started, 1),
        models=",".join(
            f"{role}:{Path(m['id']).name}/{m['backend']}/{m['compute_type']}"
            for role, m in result["models"].items()
        ),
    )


def test_the_repeat_is_a_cache_hit(stack: Stack, figures: Figures) -> None:
    """The same article again is answered from Redis at once: 200, `cached`, same text."""
    started = time.monotonic()
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        assert_seed_is_a_cache_hit(stack, http)
    figures("cache hit", seconds=round(time.monotonic() - started, 2))


def test_a_webhook_reaches_the_receiver_container(stack: Stack, figures: Figures) -> None:
    """A callback to another container on the stack's network arrives, signed with the
    stack's secret, as `summary.succeeded` for the job."""
    text = long_article(f"webhook-{stack.project}", count=10)
    started = time.monotonic()
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        view = submit(http, {"text": text, "callback_url": "http://receiver:8080/hook"})
        view = wait_finished(http, view["id"])
    remember(stack, view)
    verifier = Webhook(stack.secret)
    event: dict[str, Any] = {}
    deadline = time.monotonic() + 120
    while not event and time.monotonic() < deadline:
        received = httpx.get(f"{stack.receiver_url}/received", timeout=10).json()
        for request in received:
            payload = verifier.verify(request["body"], request["headers"])
            if payload["data"]["id"] == view["id"]:
                event = payload
        time.sleep(0.5)
    assert event, f"no webhook for {view['id']} after 120 s: {received}"
    assert event["type"] == "summary.succeeded"
    assert event["data"]["result"]["summary"] == view["result"]["summary"]
    figures("webhook", seconds=round(time.monotonic() - started, 1), verified=True)


def test_a_worker_container_killed_mid_job_restarts_and_finishes_it(
    stack: Stack, figures: Figures
) -> None:
    """SIGKILL to the worker container's main process while it runs a job: the engine restarts
    the container (restart: unless-stopped), and the job is run again to success."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        job_id = submit(http, {"text": long_article(f"kill-{stack.project}")})["id"]
        running = wait_running(http, job_id, working=True)
        before = stack.state("worker")
        os.kill(int(before["Pid"]), signal.SIGKILL)
        killed_at = time.monotonic()
        after_kill = view_of(http, job_id)
        assert running["status"] == "running" and after_kill["status"] not in TERMINAL, (
            f"the job was not running when the worker died: {running} / {after_kill}"
        )
        deadline = time.monotonic() + 300
        while stack.state("worker")["RestartCount"] <= before["RestartCount"]:
            assert time.monotonic() < deadline, f"worker not restarted: {stack.state('worker')}"
            time.sleep(1)
        restarted_s = time.monotonic() - killed_at
        view = wait_finished(http, job_id)
    remember(stack, view)
    assert view["attempts"] >= 2, view
    figures(
        "worker killed",
        progress_at_kill=f"{running['progress'].get('stage')} "
        f"{running['progress'].get('done')}/{running['progress'].get('total')}",
        restarted_after_s=round(restarted_s, 1),
        finished_after_kill_s=round(time.monotonic() - killed_at, 1),
        attempts=view["attempts"],
        restart_count=stack.state("worker")["RestartCount"],
    )


def test_redis_killed_restarts_on_its_aof_volume_and_loses_nothing(
    stack: Stack, figures: Figures
) -> None:
    """SIGKILL to Redis: the engine restarts it, it reloads its append-only file from the
    volume, and every job and cached result is still there; the stack takes new work."""
    # Acknowledged writes reach the AOF file before the reply; everysec's fsync matters for a
    # machine crash, not for a killed process.  Two seconds let even that pass.
    time.sleep(2)
    before = stack.state("redis")
    os.kill(int(before["Pid"]), signal.SIGKILL)
    started = time.monotonic()
    deadline = started + 300
    while stack.state("redis")["RestartCount"] <= before["RestartCount"]:
        assert time.monotonic() < deadline, f"redis not restarted: {stack.state('redis')}"
        time.sleep(1)
    stack.wait_healthy("redis")
    stack.wait_ready()
    back_s = time.monotonic() - started
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        kept = assert_nothing_lost(stack, http)
        assert_seed_is_a_cache_hit(stack, http)
        view = submit(http, {"text": long_article(f"after-redis-{stack.project}", count=10)})
        remember(stack, wait_finished(http, view["id"]))
    figures("redis killed", back_s=round(back_s, 1), jobs_kept=kept, cache_hit=True)


def test_compose_down_and_up_keeps_the_cache_warm(stack: Stack, figures: Figures) -> None:
    """`compose down` removes the containers and keeps the volumes; after `compose up` the seed
    is still a cache hit and every job is still there."""
    started = time.monotonic()
    stack.compose("down")
    down_s = time.monotonic() - started
    listed = stack.engine_run(
        "ps", "-a", "--filter", f"label=com.docker.compose.project={stack.project}", "-q"
    )
    assert listed == "", f"containers left after down: {listed}"
    started = time.monotonic()
    stack.compose("up", "-d")
    for service in ("redis", "cache", "worker", "api"):
        stack.wait_healthy(service)
    stack.wait_ready()
    up_s = time.monotonic() - started
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        kept = assert_nothing_lost(stack, http)
        assert_seed_is_a_cache_hit(stack, http)
    figures("down and up", down_s=round(down_s, 1), up_healthy_s=round(up_s, 1), jobs_kept=kept)


def test_compose_stop_gives_the_worker_its_grace(stack: Stack, figures: Figures) -> None:
    """`compose stop` waits out the worker's stop_grace_period instead of the engine's 10 s: the
    worker finishes the jobs in hand, each on its first attempt, and exits 0 (not SIGKILLed)."""
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        # How long one long job takes here sizes the work in hand: well past 10 s in all.
        started = time.monotonic()
        first = submit(http, {"text": long_article(f"size-{stack.project}")})
        one = wait_finished(http, first["id"])
        remember(stack, one)
        one_s = time.monotonic() - started
        count = min(8, max(2, math.ceil(3 * ENGINE_DEFAULT_STOP_S / one_s)))
        ids = [
            submit(http, {"text": long_article(f"stop-{stack.project}-{n}")})["id"]
            for n in range(count)
        ]
        for job_id in ids:
            wait_running(http, job_id)
        started = time.monotonic()
        stack.compose("stop", "worker")
        stop_s = time.monotonic() - started
        views = [view_of(http, job_id) for job_id in ids]
    state = stack.state("worker")
    figures(
        "stop grace",
        one_job_s=round(one_s, 1),
        jobs_in_hand=count,
        stop_s=round(stop_s, 1),
        exit_code=state["ExitCode"],
        statuses=",".join(v["status"] for v in views),
        attempts=",".join(str(v.get("attempts")) for v in views),
    )
    assert stop_s > ENGINE_DEFAULT_STOP_S, (
        f"the work in hand took {stop_s:.1f} s, not more than the engine's default grace: "
        "this check could not tell the two apart"
    )
    assert state["ExitCode"] == 0 and not state.get("OOMKilled"), state
    for view in views:
        assert view["status"] == "succeeded" and view["attempts"] == 1, view
        remember(stack, view)
