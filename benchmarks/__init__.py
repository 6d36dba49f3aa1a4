"""Benchmarks for Kurzgefasst: ``python -m benchmarks [NAME ...]`` (``make bench``).

Each benchmark is a function that returns a flat mapping of figure name to value, so that the
runner (``benchmarks.__main__``) can print one table and write every figure to
``benchmarks/last-run.json`` under its own key, and a later run can be compared key by key.

* ``pipeline_bench``: translation throughput of the pipeline against sentence-by-sentence
  generation, and summary latency, with real-size random-weight models (``benchmarks.models``).
* ``http_bench``: cache-hit ``POST /summarize`` against a bare Litestar endpoint, and the
  queue's enqueue-to-start latency, with the API, a worker and Redis on loopback.
* ``ct2_bench``: the ctranslate2 backend (maintained separately; skipped if it does not import).
* ``progressive_bench``: when the first translated paragraph and the whole translation arrive,
  as shares of the time to the full result, on the default backend and real-size models.
* ``script_baseline``: an article end to end with the service's defaults against the plain
  transformers script a user would write (4 beams, batches of 16, map-reduce over 1,024-token
  chunks), and the worker's translation as a share of the int8 matmul ceiling.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BENCH_DIR", "ROOT", "SEEDS_DIR", "Figures"]

#: One run's figures: flat, one key per figure, values JSON can hold.
Figures = dict[str, float | int | str | bool]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SEEDS_DIR = ROOT / "seeds"
