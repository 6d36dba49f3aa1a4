"""Cache-hit ``POST /summarize`` against a bare endpoint, and the queue's enqueue-to-start time.

Why: a newsroom re-sends the same article (edits of other articles, retries, several desks), and
those requests are answered from the result cache without a model.  The claim to check is that
the cache-hit path adds little to the HTTP stack itself: at least 70% of the requests/s of a
bare Litestar endpoint that does one Redis GET of a stored body of the same size and returns it,
and p99 under 20 ms at 50 concurrent connections.  The
second figure, enqueue-to-start, is the queue's own overhead between ``POST`` and a worker
starting the job.

How:

* the API runs as users run it (``python -m service api``) and the bare endpoint
  (``benchmarks.bare_app``) under the same uvicorn options and logging, each with the same
  number of processes (``KURZ_API_PROCESSES``'s default, one per usable core), on free loopback
  ports, against the local Redis under a unique key prefix;
* the load comes from a third process (``benchmarks.loadgen``), the two endpoints take turns
  (``rounds`` each) so a change in the machine's load hits both alike, and every round is
  bounded in time and in requests;
* the cache hit is real: the article is POSTed once, the job this creates is canceled, and a
  result is stored in the ``ResultCache`` under its job id (which is the cache key), so the API
  takes its ordinary path (validation, language check, cache-key hash, Redis) to a 200; that
  200's body is stored for the bare endpoint, which GETs and sends it;
* enqueue-to-start starts a worker with the tiny models, POSTs fresh articles one by one, and
  reads ``started - queued`` from the SAQ job records.

Everything started here is stopped in ``finally`` (also on Ctrl-C), and only this run's keys are
deleted from Redis afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit

import httpx
from redis import Redis as SyncRedis

from benchmarks import ROOT, SEEDS_DIR, Figures
from benchmarks.loadgen import percentile
from service.settings import Settings

__all__ = ["HttpBenchOptions", "run_http_benchmark"]

HOST = "127.0.0.1"
#: How long a server or worker may take to come up before the benchmark gives up.
START_TIMEOUT_S = 60.0
WORKER_START_TIMEOUT_S = 180.0
#: How long a subprocess gets after SIGTERM before it is killed.
STOP_GRACE_S = 15.0


@dataclass(frozen=True, slots=True)
class HttpBenchOptions:
    """Knobs of one run."""

    seconds: float = 5.0
    """Measured seconds per round and endpoint."""
    rounds: int = 2
    """Rounds per endpoint, alternating bare and API."""
    connections: int = 50
    warmup_s: float = 1.0
    """Seconds at the start of each round that are not counted."""
    max_requests: int = 200_000
    """Upper bound on requests per round, whatever the time."""
    redis_url: str = "redis://127.0.0.1:6379/13"
    fresh_articles: int = 8
    """Articles POSTed one by one for the enqueue-to-start latency."""
    fresh_gap_s: float = 0.5
    """Pause between those POSTs, so each finds an idle worker."""
    seed_file: Path = field(default_factory=lambda: sorted(SEEDS_DIR.glob("*.txt"))[0])
    enqueue_to_start: bool = True
    """Also start a worker and measure the queue's enqueue-to-start latency."""
    api_command: tuple[str, ...] = (sys.executable, "-m", "service", "api")
    """How the API is started (a variant command lets one measure a proposed change)."""


def run_http_benchmark(options: HttpBenchOptions | None = None) -> Figures:
    """Start the servers (and later a worker), measure, stop them, return every figure."""
    options = options or HttpBenchOptions()
    redis_host = urlsplit(options.redis_url).hostname or ""
    if redis_host != "localhost" and not ipaddress.ip_address(redis_host).is_loopback:
        raise ValueError(f"the benchmark only talks to a loopback Redis, not {redis_host}")
    prefix = f"kurzbench-{os.getpid()}-{secrets.token_hex(4)}"
    redis = SyncRedis.from_url(options.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        redis.ping()
    except Exception as error:  # noqa: BLE001 - no Redis means "skipped", with the reason
        print(f"  skipped: Redis at {options.redis_url} does not answer ({error})")
        return {"http_skipped": f"Redis at {options.redis_url} does not answer"}
    figures: Figures = {"http_connections": options.connections}
    with (
        tempfile.TemporaryDirectory(prefix="kurz-bench-http-") as scratch,
        _Processes(Path(scratch)) as processes,
    ):
        try:
            env = _service_env(options.redis_url, prefix)
            api_port = _free_port()
            processes.start("api", list(options.api_command), {**env, "KURZ_PORT": str(api_port)})
            api = f"http://{HOST}:{api_port}"
            _wait_until_up(processes, "api", f"{api}/health/live", method="GET")
            figures.update(_measure_cache_hits(options, processes, env, api, Path(scratch)))
            if options.enqueue_to_start:
                figures.update(_measure_enqueue_to_start(options, processes, env, api, prefix))
        finally:
            processes.stop_all()
            deleted = _delete_prefix(redis, prefix)
            print(f"  cleaned up {deleted} Redis keys under {prefix}")
            redis.close()
    return figures


# --- cache hits against the bare endpoint ---------------------------------------------------


def _measure_cache_hits(
    options: HttpBenchOptions,
    processes: _Processes,
    env: dict[str, str],
    api: str,
    scratch: Path,
) -> Figures:
    article = {"text": options.seed_file.read_text(encoding="utf-8"), "style": "standard"}
    body_file = scratch / "article.json"
    body_file.write_bytes(json.dumps(article).encode())
    job_id, hit_body = _prime_cache(api, article, options.redis_url, env["KURZ_KEY_PREFIX"])
    bare_key = f"{env['KURZ_KEY_PREFIX']}:bench:bare-body"
    with SyncRedis.from_url(options.redis_url) as redis:
        redis.set(bare_key, hit_body, ex=3600)
    bare_port = _free_port()
    processes.start(
        "bare",
        [
            sys.executable,
            "-m",
            "benchmarks.bare_app",
            "--host",
            HOST,
            "--port",
            str(bare_port),
            "--redis-url",
            options.redis_url,
            "--key",
            bare_key,
        ],
        env,
    )
    bare = f"http://{HOST}:{bare_port}"
    _wait_until_up(processes, "bare", f"{bare}/summarize", method="POST")
    print(f"  cache primed for job {job_id[:12]}; {options.rounds} rounds per endpoint")

    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "api": []}
    for round_number in range(1, options.rounds + 1):
        for name, url in (("bare", f"{bare}/summarize"), ("api", f"{api}/summarize")):
            summary = _load(url, body_file, options)
            runs[name].append(summary)
            print(
                f"  round {round_number} {name:4}: {summary['requests_per_s']:8.1f} req/s, "
                f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms, "
                f"statuses {summary['statuses']}",
                flush=True,
            )
    bare_figures = _pooled(runs["bare"])
    hit_figures = _pooled(runs["api"])
    for name, pooled in (("bare", bare_figures), ("api", hit_figures)):
        unexpected = {code: n for code, n in pooled["statuses"].items() if code != "200"}
        if unexpected or pooled["errors"]:
            raise RuntimeError(
                f"{name}: not every request was a 200 ({pooled['statuses']}, "
                f"{pooled['errors']} connection errors); see the server log above"
            )
    figures: Figures = {"http_api_processes": Settings().api_process_count}
    for label, pooled in (("http_bare", bare_figures), ("http_cache_hit", hit_figures)):
        figures[f"{label}_requests"] = pooled["requests"]
        figures[f"{label}_rps"] = pooled["requests_per_s"]
        figures[f"{label}_p50_ms"] = pooled["p50_ms"]
        figures[f"{label}_p90_ms"] = pooled["p90_ms"]
        figures[f"{label}_p99_ms"] = pooled["p99_ms"]
        figures[f"{label}_max_ms"] = pooled["max_ms"]
        figures[f"{label}_response_bytes"] = pooled["response_bytes_mean"]
    figures["http_request_bytes"] = body_file.stat().st_size
    share = float(hit_figures["requests_per_s"]) / float(bare_figures["requests_per_s"])
    figures["http_cache_hit_rps_share_of_bare"] = round(share, 3)
    figures["http_cache_hit_rps_target_met"] = share >= 0.7
    figures["http_cache_hit_p99_target_met"] = float(hit_figures["p99_ms"]) < 20.0
    figures["http_load_1m"] = round(os.getloadavg()[0], 2)
    processes.stop("bare")
    return figures


def _prime_cache(
    api: str, article: dict[str, str], redis_url: str, prefix: str
) -> tuple[str, bytes]:
    """Make the article a cache hit: POST it, cancel its job, store a result under its id.
    Returns the job id and the cache hit's response body."""
    with httpx.Client(base_url=api, timeout=30) as client:
        first = client.post("/summarize", json=article)
        if first.status_code not in (200, 202):
            raise RuntimeError(f"POST /summarize answered {first.status_code}: {first.text}")
        job_id = str(first.json()["id"])
        if first.status_code == 202:
            client.delete(f"/jobs/{job_id}")  # no worker runs yet; keep the queue clean
        asyncio.run(_store_result(redis_url, prefix, job_id, article["text"]))
        check = client.post("/summarize", json=article)
        if check.status_code != 200 or not check.json().get("result", {}).get("cached"):
            raise RuntimeError(f"the primed article is not a cache hit: {check.status_code}")
    return job_id, check.content


async def _store_result(redis_url: str, prefix: str, key: str, text: str) -> None:
    """A result the size of a real one: every sentence with a translation, and a summary."""
    from redis.asyncio import Redis

    from service.constants import Keys
    from service.schemas import AlignedSentence, ModelInfo, Result
    from service.store.cache import ResultCache

    sentences = [
        (paragraph, line.strip())
        for paragraph, block in enumerate(text.split("\n\n"))
        for line in block.replace(". ", ".\n").splitlines()
        if line.strip()
    ]
    model = ModelInfo("benchmark", "unresolved", "transformers", "float32")
    result = Result(
        title_en=None,
        translation=text,
        summary=" ".join(s for _, s in sentences[:4]),
        style="standard",
        source_language="de",
        german_share=1.0,
        sentences_in=len(sentences),
        sentences_translated=len(sentences),
        sentences_from_cache=0,
        alignment=[AlignedSentence(de=s, en=s, paragraph=p) for p, s in sentences],
        models={"translation": model, "summarization": model},
        timings_ms={"total_ms": 1.0},
        summary_chunks=1,
        summary_rounds=1,
    )
    redis = Redis.from_url(redis_url)
    try:
        await ResultCache(redis, Keys(prefix), ttl_s=3600).put(key, result)
    finally:
        await redis.aclose()


def _load(url: str, body_file: Path, options: HttpBenchOptions) -> dict[str, Any]:
    """One round from the load generator, in its own process; adds its raw latencies."""
    samples = body_file.with_name(f"samples-{secrets.token_hex(4)}.txt")
    command = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        url,
        str(body_file),
        "--samples",
        str(samples),
        "--connections",
        str(options.connections),
        "--seconds",
        str(options.seconds),
        "--warmup",
        str(options.warmup_s),
        "--max-requests",
        str(options.max_requests),
    ]
    limit = options.seconds + options.warmup_s + 60
    done = subprocess.run(command, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    summary["samples"] = [float(line) for line in samples.read_text().split()]
    return summary


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of one endpoint together: all requests over all measured time, percentiles over
    every latency of every round."""
    requests = sum(int(run["requests"]) for run in runs)
    window = sum(float(run["window_s"]) for run in runs)
    samples = sorted(latency for run in runs for latency in run["samples"])
    statuses: dict[str, int] = {}
    for run in runs:
        for code, count in run["statuses"].items():
            statuses[code] = statuses.get(code, 0) + int(count)
    return {
        "requests": requests,
        "requests_per_s": round(requests / window, 1) if window else 0.0,
        "p50_ms": round(percentile(samples, 0.50), 2),
        "p90_ms": round(percentile(samples, 0.90), 2),
        "p99_ms": round(percentile(samples, 0.99), 2),
        "max_ms": round(samples[-1], 2) if samples else 0.0,
        "response_bytes_mean": runs[-1]["response_bytes_mean"],
        "statuses": statuses,
        "errors": sum(int(run["errors"]) for run in runs),
    }


# --- enqueue to start -----------------------------------------------------------------------


def _measure_enqueue_to_start(
    options: HttpBenchOptions, processes: _Processes, env: dict[str, str], api: str, prefix: str
) -> Figures:
    """Start a worker with the tiny models, POST fresh articles, read queued/started."""
    worker_env = {**env, "KURZ_MODELS": "tiny", "KURZ_DEVICE": "cpu", "KURZ_SHUTDOWN_GRACE_S": "5"}
    processes.start("worker", [sys.executable, "-m", "service", "worker"], worker_env)
    print("  waiting for the worker (tiny models) ...", flush=True)
    _wait_until_up(
        processes, "worker", f"{api}/health/ready", method="GET", timeout=WORKER_START_TIMEOUT_S
    )
    base = options.seed_file.read_text(encoding="utf-8").split("\n\n")[0]
    stamp = time.strftime("%H:%M:%S")
    keys: list[str] = []
    with httpx.Client(base_url=api, timeout=30) as client:
        for number in range(1, options.fresh_articles + 1):
            text = f"{base}\n\nDies ist die Meldung Nummer {number}, eingegangen um {stamp}."
            answer = client.post("/summarize", json={"text": text})
            if answer.status_code != 202:
                raise RuntimeError(f"fresh article got {answer.status_code}: {answer.text}")
            keys.append(str(answer.json()["id"]))
            time.sleep(options.fresh_gap_s)
    delays = asyncio.run(_started_minus_queued(options.redis_url, prefix, keys))
    processes.stop("worker")
    ordered = sorted(delays)
    return {
        "queue_enqueue_to_start_jobs": len(ordered),
        "queue_enqueue_to_start_p50_ms": round(statistics.median(ordered), 1),
        "queue_enqueue_to_start_max_ms": round(ordered[-1], 1),
    }


async def _started_minus_queued(redis_url: str, prefix: str, keys: list[str]) -> list[float]:
    """Wait until every job has started (bounded), then ``started - queued`` in ms."""
    from redis.asyncio import Redis

    from service.constants import Keys
    from service.queue import JobQueue

    redis = Redis.from_url(redis_url)
    try:
        queue = JobQueue(redis, Keys(prefix))
        deadline = time.monotonic() + 60
        while True:
            jobs = [await queue.get(key) for key in keys]
            if all(job is not None and job.started for job in jobs):
                return [float(job.started - job.queued) for job in jobs if job is not None]
            if time.monotonic() > deadline:
                waiting = sum(1 for job in jobs if job is None or not job.started)
                raise RuntimeError(f"{waiting} of {len(keys)} jobs did not start within 60 s")
            await asyncio.sleep(0.2)
    finally:
        await redis.aclose()


# --- processes, ports, Redis --------------------------------------------------------------------


def _service_env(redis_url: str, prefix: str) -> dict[str, str]:
    """The environment of every service process: this Redis and prefix, an open API, and the
    defaults for everything else, whatever a local ``.env`` says (process variables win)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KURZ_")}
    env.update(
        {
            "KURZ_REDIS_URL": redis_url,
            "KURZ_KEY_PREFIX": prefix,
            "KURZ_HOST": HOST,
            "KURZ_API_KEYS": "",
            "KURZ_RATE_LIMIT_PER_MINUTE": "0",
            "KURZ_LOG_LEVEL": "info",
            "KURZ_WEBHOOK_ENDPOINTS": "",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_until_up(
    processes: _Processes, name: str, url: str, *, method: str, timeout: float = START_TIMEOUT_S
) -> None:
    """Poll ``url`` until it answers 2xx; fail early if the process died."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            processes.check_alive(name)
            with contextlib.suppress(httpx.HTTPError):
                answer = client.request(method, url, json={} if method == "POST" else None)
                if answer.is_success:
                    return
            time.sleep(0.25)
    raise RuntimeError(
        f"{name} did not come up within {timeout:.0f} s:\n{processes.log_tail(name)}"
    )


def _delete_prefix(redis: SyncRedis, prefix: str) -> int:
    """Delete this run's keys only: the service's (``prefix:``) and SAQ's for its queue."""
    deleted = 0
    for pattern in (f"{prefix}:*", f"saq:{prefix}:*", f"saq:job:{prefix}:*"):
        keys: list[bytes] = list(redis.scan_iter(match=pattern, count=500))
        for start in range(0, len(keys), 500):
            deleted += cast("int", redis.delete(*keys[start : start + 500]))
    return deleted


class _Processes:
    """The subprocesses one benchmark started; each in its own session, so a Ctrl-C at the
    terminal reaches only the benchmark, which then stops them in order."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes], Path]] = {}

    def __enter__(self) -> _Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        if name in self._running:
            self.stop(name)
        log_path = self.scratch / f"{name}-{len(list(self.scratch.glob(f'{name}-*')))}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._running[name] = (process, log, log_path)

    def check_alive(self, name: str) -> None:
        process, _, _ = self._running[name]
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with status {process.returncode}:\n{self.log_tail(name)}"
            )

    def log_tail(self, name: str, lines: int = 30) -> str:
        _, log, path = self._running[name]
        log.flush()
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, name: str) -> None:
        """SIGTERM the process's group (it is the group's leader), then SIGKILL if it lingers."""
        entry = self._running.pop(name, None)
        if entry is None:
            return
        process, log, _ = entry
        try:
            stop_process_group(process, STOP_GRACE_S)
        finally:
            log.close()

    def stop_all(self) -> None:
        for name in reversed(list(self._running)):
            self.stop(name)


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Stop a process that leads its own group: SIGTERM to the group, as a container stop
    does, then SIGKILL if it lingers past ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace_s)
