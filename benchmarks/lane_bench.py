"""The translate lane under load: one-sentence latency idle and behind ten articles, and
throughput of many concurrent short requests against the same requests one at a time.

Real processes (API and one worker) over a loopback Redis, like the HTTP benchmark, on the
random-weight real-size models (``benchmarks.models``, built in a child process) unless
``--lane-models tiny`` asks for the test models (a quick check that the part runs; its figures
say nothing about speed).  Every request carries its own sentence, so no answer comes from a
cache.  The issue's target: the loaded p99 at most twice the idle p99.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis import Redis as SyncRedis

from benchmarks import ROOT, SEEDS_DIR, Figures
from benchmarks.http_bench import (
    HOST,
    WORKER_START_TIMEOUT_S,
    _delete_prefix,
    _free_port,
    _Processes,
    _service_env,
    _wait_until_up,
)
from benchmarks.loadgen import percentile

__all__ = ["LaneBenchOptions", "run_lane_benchmark"]

SENTENCE = "Die Bürgermeisterin eröffnete am Morgen die neue Brücke über den Fluss Nummer {n}."


@dataclass(frozen=True, slots=True)
class LaneBenchOptions:
    """Knobs of one run."""

    models: str = "real-size"
    """``real-size`` (random weights, real architectures) or ``tiny``."""
    backend: str = "ctranslate2"
    """The worker's backend for the real-size models: ``ctranslate2`` (the service's default,
    on copies made convertible as in the CTranslate2 benchmark) or ``transformers``."""
    requests: int = 40
    """One-sentence requests per latency phase (idle, loaded), one at a time."""
    articles: int = 10
    """Seed articles queued for the loaded phase."""
    burst: int = 32
    """Short requests sent together for the throughput figure (and one by one to compare)."""
    redis_url: str = "redis://127.0.0.1:6379/13"


def run_lane_benchmark(options: LaneBenchOptions | None = None) -> Figures:
    """Start API and worker, measure the three phases, stop them, return the figures."""
    options = options or LaneBenchOptions()
    prefix = f"kurzbench-lane-{os.getpid()}-{secrets.token_hex(4)}"
    redis = SyncRedis.from_url(options.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        redis.ping()
    except Exception as error:  # noqa: BLE001 - no Redis means "skipped", with the reason
        print(f"  skipped: Redis at {options.redis_url} does not answer ({error})")
        return {"lane_skipped": f"Redis at {options.redis_url} does not answer"}
    figures: Figures = {"lane_models": options.models, "lane_backend": options.backend}
    with (
        tempfile.TemporaryDirectory(prefix="kurz-bench-lane-") as scratch,
        _Processes(Path(scratch)) as processes,
    ):
        try:
            env = {**_service_env(options.redis_url, prefix), **_model_env(options, Path(scratch))}
            env["KURZ_WORKER_CONCURRENCY"] = "4"
            port = _free_port()
            api = f"http://{HOST}:{port}"
            processes.start(
                "api", [sys.executable, "-m", "service", "api"], {**env, "KURZ_PORT": str(port)}
            )
            processes.start("worker", [sys.executable, "-m", "service", "worker"], env)
            print(f"  waiting for the worker ({options.models} models) ...", flush=True)
            _wait_until_up(
                processes,
                "worker",
                f"{api}/health/ready",
                method="GET",
                timeout=WORKER_START_TIMEOUT_S * 3,
            )
            with httpx.Client(base_url=api, timeout=600) as client:
                _translate(client, "Guten Morgen.")  # warm-up: first batch, first job
                idle_timeouts: list[float] = []
                loaded_timeouts: list[float] = []
                idle = _latencies(client, options.requests, "idle", idle_timeouts)
                articles = _queue_articles(client, options.articles)
                loaded = _latencies(client, options.requests, "loaded", loaded_timeouts)
                figures.update(_latency_figures(idle, loaded))
                figures["lane_idle_timeouts"] = len(idle_timeouts)
                figures["lane_loaded_timeouts"] = len(loaded_timeouts)
                # The loaded phase counts only if articles were still running at its end.
                figures["lane_articles_unfinished_after_loaded"] = _unfinished(client, articles)
                print(f"  latency: {figures}", flush=True)
                try:
                    figures.update(_throughput(api, options.burst))
                except RuntimeError as error:  # the latency figures stand without it
                    figures["lane_throughput_error"] = str(error)[:200]
        except Exception:
            for name in ("api", "worker"):
                print(f"  --- {name} log ---\n{processes.log_tail(name, 40)}", flush=True)
            raise
        finally:
            processes.stop_all()
            deleted = _delete_prefix(redis, prefix)
            print(f"  cleaned up {deleted} Redis keys under {prefix}")
            redis.close()
    return figures


def _model_env(options: LaneBenchOptions, scratch: Path) -> dict[str, str]:
    if options.models == "tiny":
        return {"KURZ_MODELS": "tiny", "KURZ_TINY_MODELS_DIR": str(scratch / "tiny")}
    if options.backend == "ctranslate2":
        from benchmarks.ct2_bench import prepare_ct2_models

        print("  building the real-size models (random weights, convertible) ...", flush=True)
        built = prepare_ct2_models(scratch / "models")
        return {
            "KURZ_TRANSLATION_MODEL": str(built.translation),
            "KURZ_SUMMARIZATION_MODEL": str(built.summarization),
            "KURZ_BACKEND": "ctranslate2",
            "KURZ_CONVERTED_MODELS_DIR": str(scratch / "converted"),
        }
    print("  building the real-size models (random weights) ...", flush=True)
    built = subprocess.run(
        [sys.executable, "-m", "benchmarks.models", str(scratch / "models")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    paths = json.loads(built.stdout.strip().splitlines()[-1])
    return {
        "KURZ_TRANSLATION_MODEL": paths["translation"],
        "KURZ_SUMMARIZATION_MODEL": paths["summarization"],
        # CTranslate2 cannot convert them: their tokenizer (the tiny one) is smaller than their
        # vocabulary.  The transformers backend runs them as built.
        "KURZ_BACKEND": "transformers",
    }


def _translate(client: httpx.Client, text: str, timeouts: list[float] | None = None) -> float:
    """One LibreTranslate request; its latency in ms.

    A request the service gave up on (503 after ``KURZ_TRANSLATE_WAIT_S``) counts with the time
    it took, which is at least that wait, and is noted in ``timeouts``: dropping it would hide
    the slowest requests from the percentiles."""
    started = time.perf_counter()
    answer = client.post("/translate", json={"q": text, "source": "de", "target": "en"})
    elapsed_ms = (time.perf_counter() - started) * 1000
    if answer.status_code == 503 and timeouts is not None:
        timeouts.append(elapsed_ms)
        return elapsed_ms
    if answer.status_code != 200:
        raise RuntimeError(f"/translate answered {answer.status_code}: {answer.text}")
    return elapsed_ms


def _latencies(client: httpx.Client, count: int, phase: str, timeouts: list[float]) -> list[float]:
    tag = secrets.token_hex(3)
    return [
        _translate(client, SENTENCE.format(n=f"{phase}-{tag}-{n}"), timeouts) for n in range(count)
    ]


def _queue_articles(client: httpx.Client, count: int) -> list[str]:
    """Submit ``count`` distinct seed articles, wait until the worker runs some; their ids."""
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))]
    ids = []
    for number in range(count):
        text = f"{seeds[number % len(seeds)]}\n\nMeldung {number}, {secrets.token_hex(3)}."
        answer = client.post("/summarize", json={"text": text})
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"article got {answer.status_code}: {answer.text}")
        ids.append(answer.json()["id"])
    deadline = time.monotonic() + 120
    while client.get(f"/jobs/{ids[0]}").json()["status"] != "running":
        if time.monotonic() > deadline:
            raise RuntimeError("no article started within 120 s")
        time.sleep(0.1)
    return ids


def _unfinished(client: httpx.Client, ids: list[str]) -> int:
    """How many of the articles are still queued or running."""
    states = [client.get(f"/jobs/{job_id}").json()["status"] for job_id in ids]
    return sum(state in ("queued", "running") for state in states)


def _latency_figures(idle: list[float], loaded: list[float]) -> Figures:
    idle_sorted, loaded_sorted = sorted(idle), sorted(loaded)
    idle_p99 = percentile(idle_sorted, 0.99)
    loaded_p99 = percentile(loaded_sorted, 0.99)
    return {
        "lane_requests_per_phase": len(idle),
        "lane_idle_p50_ms": round(statistics.median(idle_sorted), 1),
        "lane_idle_p99_ms": round(idle_p99, 1),
        "lane_loaded_p50_ms": round(statistics.median(loaded_sorted), 1),
        "lane_loaded_p99_ms": round(loaded_p99, 1),
        "lane_loaded_to_idle_p99": round(loaded_p99 / idle_p99, 2),
    }


def _throughput(api: str, burst: int) -> Figures:
    """``burst`` distinct short sentences sent together, then as many one at a time."""
    tag = secrets.token_hex(3)
    together = [SENTENCE.format(n=f"burst-{tag}-{n}") for n in range(burst)]
    alone = [SENTENCE.format(n=f"alone-{tag}-{n}") for n in range(burst)]
    with httpx.Client(base_url=api, timeout=600, limits=httpx.Limits(max_connections=burst)) as c:
        started = time.perf_counter()
        with ThreadPoolExecutor(burst) as pool:
            list(pool.map(lambda text: _translate(c, text), together))
        concurrent_s = time.perf_counter() - started
        started = time.perf_counter()
        for text in alone:
            _translate(c, text)
        sequential_s = time.perf_counter() - started
    return {
        "lane_burst_requests": burst,
        "lane_concurrent_rps": round(burst / concurrent_s, 2),
        "lane_sequential_rps": round(burst / sequential_s, 2),
        "lane_concurrency_speedup": round(sequential_s / concurrent_s, 2),
    }
