"""The summary's early map step against the summary after the whole translation, side by side.

Why: issue 17 starts the map step on each chunk as soon as its sentences are translated
(``service.summary_pipeline``) and sends an article's sentences to the scheduler in runs, in
article order (``Pipeline.ordered_part``), so chunks complete early.  Both change the time to
the full result, in opposite directions (overlap against smaller batches); the machine's load
moves between runs, so the two modes run alternately on the same loaded models, each seed
``rounds`` times, and the 1-minute load is printed beside each run.

Run: ``python -m benchmarks.early_map_bench [SEED_PREFIX ... | long] [--rounds N] [--part N]``
(``long``: every seed joined into one article, about 19,000 characters); the
models, lengths and settings are those of ``benchmarks.progressive_bench`` (real-size random
weights, CTranslate2 int8, fixed output lengths).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import SEEDS_DIR
from benchmarks.progressive_bench import (
    STYLE,
    ProgressiveBenchOptions,
    _pipeline,
    _settings,
    _warm_up,
)
from service.pipeline import ArticleRequest, Pipeline
from service.schemas import TranslatedParagraph


async def _one(pipeline: Pipeline, text: str) -> tuple[float, float, int]:
    """Seconds to the whole translation and to the full result, and the first-round chunks."""
    started = time.perf_counter()
    arrivals: list[float] = []

    def on_paragraphs(paragraphs: list[TranslatedParagraph]) -> None:
        arrivals.extend(time.perf_counter() - started for _ in paragraphs)

    result = await pipeline.run(ArticleRequest(text=text, style=STYLE), on_paragraphs=on_paragraphs)
    return max(arrivals), time.perf_counter() - started, result.summary_chunks


def main() -> None:
    """Parse the arguments, load the models once, run both modes alternately, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seeds", nargs="*", default=["004", "001"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--part", type=int, default=0, help="ordered_part (0: the default)")
    args = parser.parse_args()
    seeds = sorted(SEEDS_DIR.glob("*.txt"))
    articles = {
        p.name[:3]: p.read_text(encoding="utf-8") for p in seeds if p.name[:3] in args.seeds
    }
    if "long" in args.seeds:
        articles["long"] = "\n\n".join(p.read_text(encoding="utf-8") for p in seeds)
    with tempfile.TemporaryDirectory(prefix="kurz-bench-early-map-") as scratch:
        settings = _settings(ProgressiveBenchOptions(), Path(scratch), {})
        pipeline = _pipeline(settings, fixed_lengths=True)
        if args.part:
            pipeline.ordered_part = args.part
        try:
            asyncio.run(_warm_up(pipeline))
            times: dict[tuple[str, bool], list[float]] = {}
            for round_number in range(args.rounds):
                for name, text in articles.items():
                    order = (False, True) if round_number % 2 == 0 else (True, False)
                    for early in order:
                        pipeline.early_map = early
                        load = round(os.getloadavg()[0], 2)
                        translated_s, full_s, chunks = asyncio.run(_one(pipeline, text))
                        times.setdefault((name, early), []).append(full_s)
                        print(
                            f"[early_map] seed={name} early={early} chunks={chunks} "
                            f"translation_s={translated_s:.1f} full_s={full_s:.1f} load_1m={load}",
                            flush=True,
                        )
            for (seed, early), values in sorted(times.items()):
                print(
                    f"[early_map_median] seed={seed} early={early} "
                    f"full_s={statistics.median(values):.1f} runs={len(values)}"
                )
        finally:
            pipeline.close()


if __name__ == "__main__":
    main()
