"""``python -m benchmarks [pipeline] [http] [ct2] [lane] [progressive] [script] [worker]``.

Runs, prints and saves.  With no names every benchmark runs (``make bench``; well over half an
hour on a 2-core machine, twenty minutes of it the ``script`` baseline).
Every figure is written to ``benchmarks/last-run.json`` under its own flat key, so runs can be
diffed key by key; the file holds this run only (a partial run does not mix with an older one).

One benchmark failing does not stop the others: its error is printed and recorded as
``<name>_error``.  Ctrl-C or SIGTERM stops the run, and every benchmark cleans up the processes
it started before the runner writes what it has.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import BENCH_DIR, Figures

NAMES = ("pipeline", "ct2", "http", "lane", "progressive", "script", "worker")
DEFAULT_OUTPUT = BENCH_DIR / "last-run.json"

#: (figure, comparison, threshold, what the issue asks) for the summary at the end.
TARGETS: tuple[tuple[str, str, float, str], ...] = (
    (
        "translation_speedup_vs_batch1",
        ">=",
        25.0,
        "pipeline, one article at a time, vs batch 1, source tokens/s",
    ),
    (
        "translation_speedup_vs_batch1_articles_together",
        ">=",
        5.0,
        "pipeline's scheduler, all seeds at once, vs batch 1",
    ),
    ("http_cache_hit_rps_share_of_bare", ">=", 0.7, "cache hits vs bare endpoint, requests/s"),
    ("http_cache_hit_p99_ms", "<", 20.0, "cache-hit p99 latency at 50 connections"),
    ("lane_loaded_to_idle_p99", "<=", 2.0, "one-sentence p99 behind ten articles vs idle"),
    (
        "progressive_first_paragraph_share_max",
        "<=",
        0.15,
        "first translated paragraph, share of the time to the full result (worst seed)",
    ),
    # Both from ``python -m benchmarks script`` (``benchmarks.script_baseline``).
    (
        "article_speedup_vs_transformers_script",
        ">=",
        4.0,
        "an article end to end vs a plain transformers script (beam 4, batches of 16)",
    ),
    (
        "translation_share_of_int8_ceiling",
        ">=",
        0.30,
        "worker translation vs the int8 matmul ceiling, same run",
    ),
)


#: (figure, what it is) for the figures the issues ask for without a threshold: printed after
#: the targets, so that one look at the end of a run shows every figure the issues name.
REPORTED: tuple[tuple[str, str], ...] = (
    ("progressive_translation_share_max", "whole translation, share of the full-result time"),
    ("progressive_translation_share_mean", "the same, mean over the seeds"),
    ("progressive_first_paragraph_share_mean", "first paragraph's share, mean over the seeds"),
    ("worker_rss_mib_without_torch", "worker resident MiB, both models loaded, no torch"),
    ("worker_rss_mib_with_torch", "the same worker with torch imported"),
    ("worker_runtime_env_mib_without_torch", "runtime environment's installed MiB, no torch"),
    ("worker_runtime_env_mib_with_torch", "the same environment with torch"),
    ("worker_startup_s", "worker start-up to ready, seconds, no torch"),
    ("worker_startup_s_with_torch", "the same with torch imported"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks; exit status 1 if any of them failed."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    names = list(dict.fromkeys(args.names)) or list(NAMES)
    _quiet_libraries()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    figures: Figures = {
        "run_started_unix": round(time.time(), 1),
        "run_benchmarks": ",".join(names),
        "run_cpu_count": len(os.sched_getaffinity(0)),
        "run_load_1m_start": round(os.getloadavg()[0], 2),
        "run_python": platform.python_version(),
    }
    warning = load_warning(figures["run_load_1m_start"], figures["run_cpu_count"])
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
        figures["run_load_warning"] = warning
    sections: dict[str, Figures] = {}
    failed = False
    started = time.perf_counter()
    try:
        for name in names:
            print(f"\n== {name} ==", flush=True)
            try:
                result = _RUNNERS[name](args)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:  # noqa: BLE001 - one failure must not lose the others
                traceback.print_exc()
                result = {f"{name}_error": f"{type(error).__name__}: {error}"}
                failed = True
            sections[name] = result
            figures.update(result)
    except (KeyboardInterrupt, SystemExit):
        figures["run_interrupted"] = True
        print("\ninterrupted: writing the figures measured so far", flush=True)
        failed = True
    figures["run_duration_s"] = round(time.perf_counter() - started, 1)
    figures["run_load_1m_end"] = round(os.getloadavg()[0], 2)
    _print_table(sections)
    _print_targets(figures)
    output: Path = args.output
    output.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\n{len(figures)} figures written to {output}")
    return 1 if failed else 0


#: A 1-minute load average above this many runnable processes per core at the start means
#: something else is using the machine: speed figures come out low and noisy.
HIGH_LOAD_PER_CORE = 0.5


def load_warning(load_1m: float, cores: int) -> str | None:
    """What to tell whoever started a run on a busy machine, or None when it is quiet."""
    if load_1m <= HIGH_LOAD_PER_CORE * cores:
        return None
    return (
        f"the load average is {load_1m:.2f} on {cores} cores at the start: other work is "
        "running, so speeds will be low and noisy; quote figures with this load "
        "(run_load_1m_start in the figures file) or run again on a quiet machine"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run ({', '.join(NAMES)}); default: all",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="figures file")
    pipeline = parser.add_argument_group("pipeline")
    pipeline.add_argument(
        "--sample-every",
        type=int,
        default=8,
        help="baseline translates every n-th sentence (default 8)",
    )
    pipeline.add_argument(
        "--beam4-seeds",
        type=int,
        default=1,
        help="articles the 4-beam pipeline runs on (default 1; 5 for all; 0 skips it)",
    )
    pipeline.add_argument("--no-beam4", action="store_true", help="same as --beam4-seeds 0")
    pipeline.add_argument("--budget", type=int, default=4096, help="batch token budget")
    pipeline.add_argument("--max-sentences", type=int, default=64, help="sentences per batch")
    pipeline.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    pipeline.add_argument(
        "--backend",
        choices=("ctranslate2", "transformers"),
        default="ctranslate2",
        help="the pipeline's backend (default: the service's, ctranslate2)",
    )
    pipeline.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where the models run"
    )
    pipeline.add_argument(
        "--compute-type",
        choices=("auto", "int8", "float32", "float16", "int8_float16"),
        default="auto",
        help="KURZ_COMPUTE_TYPE (auto: int8 under ctranslate2 on a CPU, float16 on CUDA; "
        "int8_float16 is ctranslate2 on CUDA)",
    )
    pipeline.add_argument(
        "--explore",
        action="store_true",
        help="also sweep budget, batch size and threads (several minutes)",
    )
    pipeline.add_argument(
        "--explore-only",
        action="store_true",
        help="baseline and sweep only, no pipeline runs (translation knobs, fast)",
    )
    pipeline.add_argument(
        "--explore-seeds",
        type=int,
        default=2,
        help="articles each sweep point translates (default 2)",
    )
    http = parser.add_argument_group("http")
    http.add_argument(
        "--http-seconds",
        type=float,
        default=5.0,
        help="measured seconds per load round and endpoint (default 5)",
    )
    http.add_argument(
        "--http-rounds", type=int, default=2, help="alternating rounds per endpoint (default 2)"
    )
    http.add_argument("--connections", type=int, default=50, help="concurrent connections")
    http.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/13",
        help="a Redis the benchmark may write to (keys under a unique prefix)",
    )
    lane = parser.add_argument_group("lane")
    lane.add_argument(
        "--lane-models",
        choices=("real-size", "tiny"),
        default="real-size",
        help="models the lane benchmark's worker runs (tiny: a quick check, no speed figures)",
    )
    lane.add_argument(
        "--lane-requests", type=int, default=40, help="one-sentence requests per phase"
    )
    lane.add_argument(
        "--lane-backend",
        choices=("ctranslate2", "transformers"),
        default="ctranslate2",
        help="the worker's backend for the real-size models (default: the service's default)",
    )
    progressive = parser.add_argument_group("progressive")
    progressive.add_argument(
        "--progressive-models",
        choices=("real-size", "tiny"),
        default="real-size",
        help="models the progressive benchmark runs (tiny: a quick check, no meaningful shares)",
    )
    progressive.add_argument(
        "--progressive-seeds",
        type=int,
        default=0,
        help="seed articles the progressive benchmark runs (default 0: all)",
    )
    script = parser.add_argument_group("script")
    script.add_argument(
        "--script-models",
        choices=("real-size", "tiny"),
        default="real-size",
        help="models the script comparison runs (tiny: a quick check, no meaningful ratio)",
    )
    script.add_argument(
        "--script-seeds",
        type=int,
        default=0,
        help="seed articles the script comparison runs (default 0: all five, 15-20 minutes)",
    )
    return parser


def _run_script(args: argparse.Namespace) -> Figures:
    from benchmarks.script_baseline import ScriptBaselineOptions, run_script_baseline_benchmark

    return run_script_baseline_benchmark(
        ScriptBaselineOptions(models=args.script_models, seeds=args.script_seeds)
    )


def _run_progressive(args: argparse.Namespace) -> Figures:
    from benchmarks.progressive_bench import ProgressiveBenchOptions, run_progressive_benchmark

    return run_progressive_benchmark(
        ProgressiveBenchOptions(models=args.progressive_models, seeds=args.progressive_seeds)
    )


def _run_lane(args: argparse.Namespace) -> Figures:
    from benchmarks.lane_bench import LaneBenchOptions, run_lane_benchmark

    return run_lane_benchmark(
        LaneBenchOptions(
            models=args.lane_models,
            backend=args.lane_backend,
            requests=args.lane_requests,
            redis_url=args.redis_url,
        )
    )


def _run_pipeline(args: argparse.Namespace) -> Figures:
    from benchmarks.pipeline_bench import PipelineBenchOptions, run_pipeline_benchmark

    return run_pipeline_benchmark(
        PipelineBenchOptions(
            sample_every=args.sample_every,
            beam4_seeds=0 if args.no_beam4 else args.beam4_seeds,
            token_budget=args.budget,
            max_sentences=args.max_sentences,
            threads=args.threads,
            explore=args.explore,
            explore_only=args.explore_only,
            explore_seeds=args.explore_seeds,
            backend=args.backend,
            device=args.device,
            compute_type=args.compute_type,
        )
    )


def _run_http(args: argparse.Namespace) -> Figures:
    from benchmarks.http_bench import HttpBenchOptions, run_http_benchmark

    return run_http_benchmark(
        HttpBenchOptions(
            seconds=args.http_seconds,
            rounds=args.http_rounds,
            connections=args.connections,
            redis_url=args.redis_url,
        )
    )


def _run_ct2(args: argparse.Namespace) -> Figures:
    """The ctranslate2 benchmark lives in its own module, owned separately: run it if it is
    there and imports cleanly, otherwise say why it was skipped."""
    try:
        module = importlib.import_module("benchmarks.ct2_bench")
    except ModuleNotFoundError as error:
        if error.name != "benchmarks.ct2_bench":
            print(f"  skipped: benchmarks.ct2_bench does not import ({error})")
            return {"ct2_skipped": f"import failed: {error}"}
        print("  skipped: benchmarks/ct2_bench.py does not exist yet")
        return {"ct2_skipped": "benchmarks/ct2_bench.py does not exist"}
    except Exception as error:  # noqa: BLE001 - a broken module is a skip, not a crash
        print(f"  skipped: benchmarks.ct2_bench does not import ({type(error).__name__}: {error})")
        return {"ct2_skipped": f"import failed: {type(error).__name__}: {error}"}
    run: Callable[[], Any] | None = getattr(module, "run_ct2_benchmark", None)
    if run is None:
        print("  skipped: benchmarks.ct2_bench has no run_ct2_benchmark()")
        return {"ct2_skipped": "no run_ct2_benchmark()"}
    result = run()
    if not isinstance(result, Mapping):
        print(f"  run_ct2_benchmark() returned {type(result).__name__}, not a mapping of figures")
        return {"ct2_skipped": f"run_ct2_benchmark() returned {type(result).__name__}"}
    return {str(key): _json_value(value) for key, value in result.items()}


_RUNNERS: dict[str, Callable[[argparse.Namespace], Figures]] = {
    "pipeline": _run_pipeline,
    "ct2": _run_ct2,
    "http": _run_http,
    "lane": _run_lane,
    "progressive": _run_progressive,
    "script": _run_script,
    # A lean worker: memory and start-up without torch, and the runtime environment's size.
    "worker": lambda _: importlib.import_module("benchmarks.worker_bench").run_worker_benchmark(),
}


def _json_value(value: object) -> float | int | str | bool:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _quiet_libraries() -> None:
    """Keep the table readable: no per-call generation warnings, progress bars or info logs."""
    import structlog

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so ``finally`` blocks stop the subprocesses we started."""
    raise SystemExit(128 + signum)


def _print_table(sections: Mapping[str, Figures]) -> None:
    for name, figures in sections.items():
        if not figures:
            continue
        width = max(len(key) for key in figures)
        print(f"\n{name}")
        print(f"  {'figure'.ljust(width)}  value")
        print(f"  {'-' * width}  {'-' * 12}")
        for key, value in figures.items():
            print(f"  {key.ljust(width)}  {_format(value)}")


def _print_targets(figures: Figures) -> None:
    print("\ntargets")
    for key, comparison, threshold, what in TARGETS:
        value = figures.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            verdict = "not measured"
        else:
            met = _COMPARE[comparison](value, threshold)
            verdict = f"{_format(value)} {'MET' if met else 'NOT MET'}"
        print(f"  {key} {comparison} {threshold:g} ({what}): {verdict}")
    print("\nreported (no target)")
    for key, what in REPORTED:
        value = figures.get(key)
        shown = "not measured" if value is None else _format(value)
        print(f"  {key} ({what}): {shown}")


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda value, threshold: value >= threshold,
    "<": lambda value, threshold: value < threshold,
    "<=": lambda value, threshold: value <= threshold,
}


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
