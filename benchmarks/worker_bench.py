"""A lean worker: what leaving torch out of a ctranslate2 worker saves, and how fast it starts.

Three measurements, on the random-weight real-size models (``benchmarks.ct2_bench``'s
convertible copies of ``benchmarks.models``), converted to int8 beforehand in a child process
of their own (converting needs torch; a worker started on converted models does not):

Resident memory
    A fresh interpreter imports the worker's modules, builds the pipeline from ``Settings`` as
    the worker does (both models, plus the translate lane's own copy of the translator), and
    translates one sentence; then it reads ``VmRSS`` (and the peak, ``VmHWM``) from
    ``/proc/self/status``.  As the service runs now (no torch), and with ``import torch`` done
    first, which is what every ctranslate2 worker paid before torch was kept out; the two take
    turns, twice each, and the medians are reported (with the pipeline's load time).

Start-up time to ready
    The real ``python -m service worker`` process against Redis (DB 13, a key prefix of its own
    per start, deleted afterwards; nothing is flushed), from ``Popen`` until its heartbeat is in
    the live-workers set: the same set ``/health/ready`` reads.  No API process runs meanwhile,
    so nothing else competes for the cores.  Again without and with torch (the latter starts the
    same module behind an ``import torch``), taking turns, ``startups`` times each (medians),
    and the running worker's ``VmRSS`` at that moment.

Runtime environment size (what an image without torch would save)
    ``du``'s measure (allocated blocks) of the installed files of every distribution the
    service needs at run time: the closure of ``kurzgefasst``'s own requirements, without its
    ``dev`` extra, read from the installed metadata (markers evaluated here).  "Without torch"
    is the closure with torch removed, so it also drops what only torch needs (sympy, networkx
    and the like); packages torch shares with others stay.  The whole site-packages directory
    (developer tools included) is given too, from ``du -sk``.  torch's headers, tests and test
    binaries, which the image already deletes, are counted here, and given separately.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

from packaging.requirements import Requirement
from redis import Redis as SyncRedis

from benchmarks import ROOT, Figures
from benchmarks.http_bench import (
    WORKER_START_TIMEOUT_S,
    _delete_prefix,
    _service_env,
    stop_process_group,
)
from service.constants import Keys

__all__ = ["WorkerBenchOptions", "run_worker_benchmark"]

MIB = 1024 * 1024
#: How long a stopped worker may take to hand its jobs back and exit.
STOP_GRACE_S = 30.0
SENTENCE = "Die Bürgermeisterin eröffnete am Morgen die neue Brücke über den Fluss."
#: Prepended to a child's code to measure the same thing with torch in memory.
_IMPORT_TORCH = "import torch  # noqa: F401\n"
#: Builds and converts the models in a child, so this process never holds them.
_PREPARE_CHILD = """
import json, sys, time
from pathlib import Path
from benchmarks.ct2_bench import prepare_ct2_models
from service.nlp.conversion import convert_model
from service.nlp.loading import resolve_model_dir

models, converted = Path(sys.argv[1]), Path(sys.argv[2])
built = prepare_ct2_models(models)
started = time.perf_counter()
for path in (built.translation, built.summarization):
    source_dir, revision = resolve_model_dir(str(path))
    convert_model(source_dir, revision, str(path), "int8", converted)
print(json.dumps({
    "translation": str(built.translation),
    "summarization": str(built.summarization),
    "build_s": built.build_s,
    "convert_s": time.perf_counter() - started,
}))
"""
#: The worker's load path and one sentence, then what the process holds.
_RSS_CHILD = """
import asyncio, json, sys, time
started = time.perf_counter()
import service.worker  # noqa: F401 - the worker process's own modules, as it imports them
from service.pipeline import build_pipeline
from service.settings import Settings

pipeline = build_pipeline(Settings())
loaded_s = time.perf_counter() - started
try:
    [english] = asyncio.run(pipeline.scheduler.translate([sys.argv[1]]))
finally:
    pipeline.close()
status = dict(
    line.split(":", 1) for line in open("/proc/self/status", encoding="ascii") if ":" in line
)
print(json.dumps({
    "rss_kib": int(status["VmRSS"].split()[0]),
    "hwm_kib": int(status["VmHWM"].split()[0]),
    "loaded_s": loaded_s,
    "torch": sys.modules.get("torch") is not None,
    "backend": pipeline.models["translation"].backend,
    "english": english,
}))
"""
_WORKER_CODE = "import runpy\nrunpy.run_module('service', run_name='__main__', alter_sys=True)\n"


@dataclass(frozen=True, slots=True)
class WorkerBenchOptions:
    """Knobs of one run."""

    startups: int = 2
    """Worker starts per variant (without torch, with torch); the median is reported."""
    redis_url: str = "redis://127.0.0.1:6379/13"
    """The Redis the started workers register in (the lane benchmark's DB; own key prefixes)."""


def run_worker_benchmark(options: WorkerBenchOptions | None = None) -> Figures:
    """Prepare the models, measure memory, start-up and environment size; return the figures."""
    options = options or WorkerBenchOptions()
    figures: Figures = {}
    figures.update(runtime_env_figures())
    with tempfile.TemporaryDirectory(prefix="kurz-bench-worker-") as scratch_dir:
        scratch = Path(scratch_dir)
        print("  building and converting the real-size models ...", flush=True)
        prepared = _prepare_models(scratch)
        figures["worker_models_convert_s"] = round(float(prepared["convert_s"]), 1)
        env = _model_env(prepared, scratch / "converted")
        figures.update(_memory_figures(env))
        figures.update(_startup_figures(env, options, scratch))
    return figures


# --- models ---------------------------------------------------------------------------------------


def _prepare_models(scratch: Path) -> dict[str, str | float]:
    done = subprocess.run(
        [sys.executable, "-c", _PREPARE_CHILD, str(scratch / "models"), str(scratch / "converted")],
        cwd=ROOT,
        env=_child_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    prepared: dict[str, str | float] = json.loads(done.stdout.strip().splitlines()[-1])
    return prepared


def _child_env() -> dict[str, str]:
    """This environment without KURZ_ variables (a local shell's must not change the figures)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KURZ_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def _model_env(prepared: dict[str, str | float], converted: Path) -> dict[str, str]:
    """The settings a worker on the converted models gets: CPU, int8, the default backend."""
    return {
        "KURZ_TRANSLATION_MODEL": str(prepared["translation"]),
        "KURZ_SUMMARIZATION_MODEL": str(prepared["summarization"]),
        "KURZ_BACKEND": "ctranslate2",
        "KURZ_DEVICE": "cpu",
        "KURZ_COMPUTE_TYPE": "int8",
        "KURZ_CONVERTED_MODELS_DIR": str(converted),
    }


# --- resident memory ------------------------------------------------------------------------------


def _memory_figures(model_env: dict[str, str], rounds: int = 2) -> Figures:
    """RSS after loading and one sentence, in fresh interpreters without and with torch.

    The variants take turns, ``rounds`` times each, and the medians are reported: the first
    load after the conversion may find the converted files outside the page cache.
    """
    reports: dict[str, list[dict[str, float]]] = {"without_torch": [], "with_torch": []}
    for _ in range(rounds):
        for variant, prefix in (("without_torch", ""), ("with_torch", _IMPORT_TORCH)):
            done = subprocess.run(
                [sys.executable, "-c", prefix + _RSS_CHILD, SENTENCE],
                cwd=ROOT,
                env={**_child_env(), **model_env},
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
            report = json.loads(done.stdout.strip().splitlines()[-1])
            if report["torch"] != (variant == "with_torch"):
                raise RuntimeError(f"{variant}: torch in memory is {report['torch']}")
            reports[variant].append(report)
            print(
                f"  {variant}: {report['rss_kib'] / 1024:.0f} MiB resident, "
                f"loaded in {report['loaded_s']:.1f} s",
                flush=True,
            )
    figures: Figures = {"worker_memory_rounds": rounds}
    for variant, runs in reports.items():
        figures[f"worker_rss_mib_{variant}"] = round(_median(runs, "rss_kib") / 1024, 1)
        figures[f"worker_peak_rss_mib_{variant}"] = round(_median(runs, "hwm_kib") / 1024, 1)
        figures[f"worker_load_s_{variant}"] = round(_median(runs, "loaded_s"), 2)
    without = float(figures["worker_rss_mib_without_torch"])
    with_torch = float(figures["worker_rss_mib_with_torch"])
    figures["worker_rss_saving_mib"] = round(with_torch - without, 1)
    figures["worker_rss_saving_ratio"] = round(1 - without / with_torch, 3)
    return figures


def _median(runs: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(float(run[key]) for run in runs))


# --- start-up -------------------------------------------------------------------------------------


def _startup_figures(
    model_env: dict[str, str], options: WorkerBenchOptions, scratch: Path
) -> Figures:
    """Seconds from ``Popen`` to the heartbeat, and the worker's RSS then, per variant."""
    redis = SyncRedis.from_url(options.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        redis.ping()
    except Exception as error:  # noqa: BLE001 - no Redis means "skipped", with the reason
        print(f"  start-up skipped: Redis at {options.redis_url} does not answer ({error})")
        redis.close()
        return {"worker_startup_skipped": f"Redis at {options.redis_url} does not answer"}
    figures: Figures = {"worker_startups_per_variant": options.startups}
    variants = (("without_torch", ""), ("with_torch", _IMPORT_TORCH))
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    rss: dict[str, list[float]] = {name: [] for name, _ in variants}
    try:
        # Taking turns, so that a machine that gets busier or quieter (or a page cache that
        # warms up) during the run weighs on both variants alike.
        for _ in range(options.startups):
            for name, code_prefix in variants:
                seconds, rss_mib = _start_once(
                    redis, options.redis_url, model_env, code_prefix, scratch
                )
                times[name].append(seconds)
                rss[name].append(rss_mib)
                print(f"  start-up {name}: {seconds:.2f} s, {rss_mib:.0f} MiB", flush=True)
        for name, _ in variants:
            suffix = "" if name == "without_torch" else "_with_torch"
            figures[f"worker_startup_s{suffix}"] = round(statistics.median(times[name]), 2)
            figures[f"worker_process_rss_mib{suffix}"] = round(statistics.median(rss[name]), 1)
    finally:
        redis.close()
    return figures


def _start_once(
    redis: SyncRedis, redis_url: str, model_env: dict[str, str], code_prefix: str, scratch: Path
) -> tuple[float, float]:
    """Start one worker, wait for its heartbeat, read its RSS, stop it, delete its keys."""
    key_prefix = f"kurzbench-worker-{os.getpid()}-{secrets.token_hex(4)}"
    alive = Keys(key_prefix).workers_alive()
    env = {**_service_env(redis_url, key_prefix), **model_env}
    argv = [sys.executable, "-c", code_prefix + _WORKER_CODE, "worker"]
    log_path = scratch / f"worker-{key_prefix}.log"
    try:
        with log_path.open("wb") as log, _worker_process(argv, env, log) as worker:
            started = time.perf_counter()
            deadline = time.monotonic() + WORKER_START_TIMEOUT_S
            while not redis.zrangebyscore(alive, time.time(), "+inf"):
                if worker.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                    raise RuntimeError(f"the worker never beat (status {worker.poll()}):\n{tail}")
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            rss_mib = _rss_mib(worker.pid)
    finally:
        _delete_prefix(redis, key_prefix)
    return seconds, rss_mib


@contextlib.contextmanager
def _worker_process(
    argv: list[str], env: dict[str, str], log: IO[bytes]
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker in a session of its own (a Ctrl-C reaches only the benchmark), stopped after:
    SIGTERM to its group, as a container stop does, then SIGKILL if it lingers."""
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield process
    finally:
        stop_process_group(process, STOP_GRACE_S)


def _rss_mib(pid: int) -> float:
    """A process's resident memory in MiB (``VmRSS``)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no VmRSS for process {pid}")
    return int(match.group(1)) / 1024


# --- the runtime environment's size ---------------------------------------------------------------


#: The project's extras a worker with torch installs: torch is the ``torch`` extra, which the
#: install script adds unless ``WITH_TORCH=0`` (the image's runtime environment).
RUNTIME_EXTRAS = frozenset({"torch"})


def runtime_env_figures(project: str = "kurzgefasst") -> Figures:
    """Installed size of the run-time closure of ``project``'s requirements, with and without
    torch, and of the whole site-packages directory (see the module docstring)."""
    with_torch = _closure(project, skip=frozenset())
    without_torch = _closure(project, skip=frozenset({"torch"}))
    only_torch = sorted(with_torch - without_torch)
    sizes = {name: _installed_bytes(name) for name in with_torch}
    site_packages = Path(sysconfig.get_paths()["purelib"])
    du = subprocess.run(
        ["du", "-sk", str(site_packages)], check=True, capture_output=True, text=True
    )
    torch_dir = site_packages / "torch"
    trimmed = [torch_dir / "include", torch_dir / "test", *torch_dir.glob("bin/test_*")]
    trimmed += [*torch_dir.glob("bin/*Test"), *torch_dir.glob("bin/protoc*")]
    return {
        "worker_runtime_env_mib_with_torch": _mib(sum(sizes.values())),
        "worker_runtime_env_mib_without_torch": _mib(sum(sizes[name] for name in without_torch)),
        "worker_runtime_env_packages_with_torch": len(with_torch),
        "worker_runtime_env_torch_only": ",".join(only_torch),
        "worker_torch_package_mib": _mib(sizes.get("torch", 0)),
        "worker_torch_trimmed_in_image_mib": _mib(sum(_tree_bytes(p) for p in trimmed)),
        "worker_site_packages_mib": round(int(du.stdout.split()[0]) / 1024, 1),
    }


def _closure(
    project: str, *, skip: frozenset[str], extras: frozenset[str] = RUNTIME_EXTRAS
) -> set[str]:
    """Normalized names of the installed distributions ``project`` (with ``extras``) needs at
    run time.

    Requirements are followed with the extras they ask for (``litestar[standard]``); one that
    is not installed here (another platform's or Python's) is left out, as is anything in
    ``skip``, with everything only it would have brought in.
    """
    names: set[str] = set()
    walked: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [(_normalize(project), extras)]
    while pending:
        item = pending.pop()
        if item in walked:
            continue
        walked.add(item)
        name, extras = item
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        names.add(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            wanted = _normalize(requirement.name)
            marker = requirement.marker
            if wanted in skip or (
                marker is not None
                and not any(marker.evaluate({"extra": extra}) for extra in ("", *extras))
            ):
                continue
            pending.append((wanted, frozenset(requirement.extras)))
    names.discard(_normalize(project))
    return names


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_bytes(name: str) -> int:
    """Allocated bytes of a distribution's installed files (``du``'s measure), each once."""
    dist = metadata.distribution(name)
    total = 0
    inodes: set[tuple[int, int]] = set()
    for file in dist.files or []:
        with contextlib.suppress(OSError):
            stat = Path(str(file.locate())).stat()
            if (stat.st_dev, stat.st_ino) not in inodes:
                inodes.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def _tree_bytes(path: Path) -> int:
    """Allocated bytes of a file or of every file under a directory."""
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def _mib(size: int) -> float:
    return round(size / MIB, 1)
