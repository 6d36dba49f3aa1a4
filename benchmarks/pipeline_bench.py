"""Translation throughput of the pipeline against sentence-by-sentence generation.

Why this benchmark exists: translating an article sentence by sentence at batch 1 leaves most of
a CPU's arithmetic idle; the pipeline cuts the article into sentences, sorts them by length and
runs them in token-budget batches (``InferenceScheduler``).  The claim to check is that this is
at least ``TARGET_SPEEDUP`` times faster on the 2-core machine the service is sized for, and
what an article then costs end to end (summary included).

What runs, in one process, on one loaded copy of each model:

* (a) ``model.generate`` on one sentence at a time, greedy, on a fixed sample of the seed
  sentences (every ``sample_every``-th, over all seeds): its rates are per token, so the sample
  only has to be representative, not complete;
* (b) every seed through ``Pipeline.run``, greedy, one article after another (per-article and
  per-stage timings, per-seed summary latency).  (a) and (b) take turns article by article, so
  a change in the machine's load hits both alike;
* then all seeds submitted at once to the pipeline's own scheduler (the translate stage of a
  worker holding them all as jobs), and the pipeline with 4 beams (translation and summary) on
  ``beam4_seeds`` seeds.

Which backend: by default the service's own (CTranslate2, int8 on a CPU), so
``translation_speedup_vs_batch1`` is what issue 17 means by it: the default pipeline against
(a), sentence-by-sentence transformers float32 ``generate`` (the plain script a user would
write).  ``backend``/``device``/``compute_type`` pick another (``--backend transformers`` for the
float32 pipeline the figure measured before; ``--device cuda --compute-type float16`` on a GPU,
where (a) runs on the GPU too, in float32).  The figures name what ran
(``translation_backend``, ``translation_compute_type``, ``device``).  CTranslate2 drops a
sentence from its decoding batch once it has ended (``decoding.cc``), so a real model pays no
padding past a sentence's own end; the fixed lengths here make every sentence of a batch run
to the batch's longest, so ``translation_pipeline_generated_padding_share`` of the measured work
is padding a real run would not do (the figures lean low by that much).

How it stays honest offline:

* the models are random-weight models with the real architectures (``benchmarks.models``),
  loaded through the service's own ``build_pipeline``, so segmentation, batching, the summary's
  map-reduce and every guard run exactly as users run them;
* every output length is fixed (1.1 x the source tokens for translation, 142 tokens for each
  summary), so random weights do the real models' amount of work; each translation is then cut
  to its own sentence's length before decoding (``OwnLengthOutputs``), so the summarizer reads
  as much text as a real translation gives it;
* tokens are the borrowed tiny tokenizer's (``seed_source_tokens_per_word`` says how many per
  word; opus-mt's own vocabulary cuts German into fewer, longer pieces), so per-token rates
  compare (a) with (b) exactly, while absolute article latencies lean high.

Rates are wall-clock rates, with CPU-second rates beside them.  The machine may be shared: the
1-minute load average is recorded beside each phase, and a ratio measured under load is less
trustworthy than one measured idle (batch 1 suffers more from competing processes than batches
do, so load inflates the ratio).  Peak memory is the process's peak resident set
(``ru_maxrss``) after each phase: it never goes down, so each figure is "the most this process
has held so far".  The models are built in a child process, so building them does not count.

A Ctrl-C stops the run after the model call in progress (a ``generate`` cannot be interrupted).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import torch

from benchmarks import ROOT, SEEDS_DIR, Figures
from benchmarks.fixed_length import (
    FixedLengthCT2Translator,
    FixedLengthTransformersTranslator,
    with_fixed_lengths,
)
from benchmarks.models import RealSizeModels
from service.nlp.backends import load_engines
from service.nlp.batch_pool import plan_batches
from service.nlp.batching import InferenceScheduler
from service.nlp.ct2 import CT2Translator
from service.nlp.engine import TokenSequences, TranslationEngine
from service.nlp.loading import LoadedModel, load_seq2seq
from service.nlp.transformers_engine import TransformersTranslator
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.presets import Preset, PresetRegistry
from service.schemas import Result
from service.settings import Settings
from service.text.language import detect_language
from service.text.segment import split_sentences

__all__ = [
    "TARGET_SPEEDUP",
    "OwnLengthCT2Translator",
    "PipelineBenchOptions",
    "check_device",
    "run_pipeline_benchmark",
]

#: Translation output per sentence, as a multiple of its source tokens (about what opus-mt
#: produces for German news).
LENGTH_FACTOR = 1.1
#: distilbart-cnn's default summary length, generated in full by every summarize call.
SUMMARY_TOKENS = 142
#: The issue's target for (b) / (a), source tokens per second.
TARGET_SPEEDUP = 5.0
#: The style every article is summarized in.
STYLE = "standard"
#: Building both models takes about 15 s on 2 cores; this only stops a hung build.
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class PipelineBenchOptions:
    """Knobs of one run; the defaults are the service's defaults."""

    sample_every: int = 8
    """The baseline translates every n-th sentence (over all seeds, in order): 24 of the 187
    seed sentences by default, which keeps (a) to about a minute on 2 cores."""
    beam4_seeds: int = 1
    """Also run the pipeline with 4 beams (translation and summary) on this many seeds, reported
    beside greedy (0: skip).  One article at 4 beams costs nearly as much as all five greedy
    (the summary dominates), so more would take ``make bench`` far past its ten minutes."""
    token_budget: int = 4096
    """``KURZ_BATCH_TOKEN_BUDGET`` for the pipeline under test."""
    max_sentences: int = 64
    """``KURZ_MAX_BATCH_SENTENCES`` for the pipeline under test."""
    threads: int = 0
    """``KURZ_INFERENCE_THREADS`` (0: all usable cores)."""
    explore: bool = False
    """After the main run, sweep batch budget, batch size, torch threads and int8 (translation
    only; about six minutes on 2 cores)."""
    explore_only: bool = False
    """Run (a) and the sweep only: no ``Pipeline.run`` (and so no summaries)."""
    explore_seeds: int = 2
    """How many seeds each point of the sweep translates (a sweep point costs about as much as
    the greedy pipeline's translation of that many articles)."""
    seeds_dir: Path = SEEDS_DIR
    backend: str = "ctranslate2"
    """``KURZ_BACKEND`` of the pipeline under test (the service's default)."""
    device: str = "cpu"
    """``KURZ_DEVICE``: ``cpu`` or ``cuda`` (the run fails at once when CUDA is missing)."""
    compute_type: str = "auto"
    """``KURZ_COMPUTE_TYPE`` (``auto``: int8 for ctranslate2 on a CPU, float16 on CUDA)."""
    converted_dir: Path | None = None
    """Where ctranslate2's conversions go (set by the run: a scratch directory)."""


@dataclass(slots=True)
class Article:
    """One seed article, cut into sentences the way the pipeline cuts it, with token counts."""

    name: str
    text: str
    sentences: list[str]
    source_tokens: list[int] = field(default_factory=list)

    @property
    def generated_tokens(self) -> list[int]:
        """What each sentence's translation costs: ``ceil(1.1 x its source tokens)``."""
        return [math.ceil(LENGTH_FACTOR * n) for n in self.source_tokens]


def run_pipeline_benchmark(options: PipelineBenchOptions | None = None) -> Figures:
    """Build the models, run baseline (a) and pipeline (b), and return every figure."""
    options = options or PipelineBenchOptions()
    check_device(options)
    figures: Figures = {
        "translation_backend": options.backend,
        "device": options.device,
    }
    with tempfile.TemporaryDirectory(prefix="kurz-bench-models-") as scratch:
        print("  building real-size random-weight models (in a child process) ...", flush=True)
        models = _build_models_in_child(Path(scratch))
        options = dataclasses.replace(options, converted_dir=Path(scratch) / "ct2")
        figures["models_build_s"] = round(models.build_s, 1)
        figures["translation_model_parameters_m"] = round(models.translation_parameters / 1e6, 1)
        figures["summary_model_parameters_m"] = round(models.summarization_parameters / 1e6, 1)
        articles = [_read_article(path) for path in sorted(options.seeds_dir.glob("*.txt"))]
        if not articles:
            raise RuntimeError(f"no seed articles in {options.seeds_dir}")
        _run_greedy(models, articles, options, figures)
        _release_memory()
        beam4_articles = articles[: options.beam4_seeds]
        if beam4_articles and not options.explore_only:
            print(
                f"  (b) the pipeline, 4 beams, on {len(beam4_articles)} of {len(articles)} "
                "articles ...",
                flush=True,
            )
            settings = _settings(models, options, beams=4)
            pipeline = _fixed_length_pipeline(settings, _beam_presets(settings))
            try:
                _cut_outputs_to_own_length(pipeline.scheduler.engine)
                figures["pipeline_beam4_articles"] = len(beam4_articles)
                figures.update(_run_pipeline(pipeline, beam4_articles, options, label="beam4"))
                figures["peak_rss_mb_after_pipeline_beam4"] = _peak_rss_mb()
            finally:
                pipeline.close()

    baseline = float(figures["translation_batch1_best_source_tokens_per_s"])
    if "translation_pipeline_source_tokens_per_s" in figures:
        pipelined = float(figures["translation_pipeline_source_tokens_per_s"])
        figures["translation_speedup_vs_batch1"] = round(pipelined / baseline, 2)
        figures["translation_speedup_vs_batch1_same_threads"] = round(
            pipelined / float(figures["translation_batch1_source_tokens_per_s"]), 2
        )
        figures["translation_speedup_vs_batch1_by_cpu_time"] = round(
            float(figures["translation_pipeline_source_tokens_per_cpu_s"])
            / float(figures["translation_batch1_best_source_tokens_per_cpu_s"]),
            2,
        )
        figures["translation_speedup_target"] = TARGET_SPEEDUP
        figures["translation_speedup_target_met"] = pipelined / baseline >= TARGET_SPEEDUP
    if "translation_together_source_tokens_per_s" in figures:
        together = float(figures["translation_together_source_tokens_per_s"])
        figures["translation_speedup_vs_batch1_articles_together"] = round(together / baseline, 2)
    if "translation_pipeline_beam4_source_tokens_per_s" in figures:
        beam4 = float(figures["translation_pipeline_beam4_source_tokens_per_s"])
        figures["translation_beam4_speedup_vs_batch1_greedy"] = round(beam4 / baseline, 2)
    return figures


def _run_greedy(
    models: RealSizeModels,
    articles: Sequence[Article],
    options: PipelineBenchOptions,
    figures: Figures,
) -> None:
    """Load the greedy pipeline; run (a) and (b) by turns, then (b) all at once, then the sweep.

    (a) and (b) take turns article by article (the article's sample at batch 1, then the article
    through the pipeline), so a change in the machine's load during the run hits both alike.
    """
    settings = _settings(models, options, beams=1)
    started = time.perf_counter()
    pipeline = _fixed_length_pipeline(settings, _greedy_presets(settings))
    try:
        figures["pipeline_load_s"] = round(time.perf_counter() - started, 1)
        figures["torch_threads"] = torch.get_num_threads()
        engine = pipeline.scheduler.engine
        figures["translation_compute_type"] = engine.ref.compute_type
        _cut_outputs_to_own_length(engine)
        for article in articles:
            article.source_tokens = engine.count_tokens(article.sentences)
        figures.update(_corpus_figures(articles))
        _warm_up(pipeline)
        figures["peak_rss_mb_after_load"] = _peak_rss_mb()

        batch1 = _Batch1(_baseline_model(engine, settings))
        samples = _baseline_samples(articles, options.sample_every)
        pipelined: Figures = {}
        if options.explore_only:
            print("  (a) batch 1, sentence by sentence, greedy ...", flush=True)
            for sample in samples:
                batch1.run(sample)
        else:
            print(
                f"  (a) batch 1 on every {options.sample_every}th sentence, and (b) the pipeline, "
                f"greedy, taking turns article by article ({len(articles)} articles) ...",
                flush=True,
            )
            pipelined = _run_pipeline(
                pipeline, articles, options, label="greedy", batch1=(batch1, samples)
            )
        figures.update(batch1.figures())
        figures.update(pipelined)
        print(
            f"      (a) {figures['translation_batch1_source_tokens']} source tokens: "
            f"{figures['translation_batch1_source_tokens_per_s']} source tokens/s with "
            f"{figures['torch_threads']} threads, "
            f"{figures['translation_batch1_1thread_source_tokens_per_s']} with 1",
            flush=True,
        )
        if pipelined:
            figures["peak_rss_mb_after_pipeline_greedy"] = _peak_rss_mb()
            print(f"  (b) the pipeline's scheduler, {len(articles)} articles at once ...")
            figures.update(_run_together(pipeline, articles))
        if options.explore or options.explore_only:
            print("  exploring batch budget, batch size and threads ...", flush=True)
            if not isinstance(engine, TransformersTranslator):
                raise TypeError("the sweep explores the transformers backend only")
            figures.update(
                _explore(
                    engine,
                    articles[: options.explore_seeds],
                    settings,
                    float(figures["translation_batch1_best_source_tokens_per_s"]),
                    float(figures["translation_batch1_best_source_tokens_per_cpu_s"]),
                )
            )
            torch.set_num_threads(int(figures["torch_threads"]))
    finally:
        pipeline.close()


# --- set-up -----------------------------------------------------------------------------------


def _build_models_in_child(directory: Path) -> RealSizeModels:
    """Build in a fresh process: its memory then never counts towards this process's peak."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.models", str(directory), "--convertible"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the models failed:\n{done.stderr[-3000:]}")
    built = json.loads(done.stdout.strip().splitlines()[-1])
    return RealSizeModels(
        translation=Path(built["translation"]),
        summarization=Path(built["summarization"]),
        translation_parameters=int(built["translation_parameters"]),
        summarization_parameters=int(built["summarization_parameters"]),
        build_s=float(built["build_s"]),
    )


def _settings(models: RealSizeModels, options: PipelineBenchOptions, *, beams: int) -> Settings:
    """The service's settings for these models; ``.env`` and ``KURZ_*`` are ignored on purpose,
    so a developer's local configuration cannot change what the benchmark measures."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        translation_model=str(models.translation),
        summarization_model=str(models.summarization),
        models="hub",
        device=options.device,  # type: ignore[arg-type]
        backend=options.backend,  # type: ignore[arg-type]
        compute_type=options.compute_type,  # type: ignore[arg-type]
        converted_models_dir=options.converted_dir or ROOT / "var" / "ct2",
        batch_token_budget=options.token_budget,
        max_batch_sentences=options.max_sentences,
        translation_beams=beams,
        inference_threads=options.threads,
        # The batch-1 baseline runs on this thread at its priority: the pipeline's threads must
        # not run lower, or a busy machine would bias the comparison against them.
        background_nice=0,
    )


def _fixed_length_pipeline(settings: Settings, presets: PresetRegistry) -> Pipeline:
    """The service's pipeline on these models, every output length fixed (``fixed_length``)."""
    engines = with_fixed_lengths(
        load_engines(settings), length_factor=LENGTH_FACTOR, summary_tokens=SUMMARY_TOKENS
    )
    if isinstance(engines.translation, CT2Translator):
        own_length = OwnLengthCT2Translator(
            engines.translation.model,
            num_beams=engines.translation.num_beams,
            length_factor=LENGTH_FACTOR,
        )
        engines = dataclasses.replace(engines, translation=own_length)
    return build_pipeline(settings, presets=presets, engines=engines)


def _beam_presets(settings: Settings) -> PresetRegistry:
    """The shipped presets (the standard style decodes with 4 beams)."""
    return PresetRegistry.from_directory(settings.prompts_dir)


def _greedy_presets(settings: Settings) -> PresetRegistry:
    """The shipped presets with greedy decoding, everything else unchanged."""
    shipped = _beam_presets(settings)
    greedy: dict[str, Preset] = {}
    for preset in shipped.all():
        generation = msgspec.structs.replace(preset.generation, num_beams=1)
        greedy[preset.name] = msgspec.structs.replace(preset, generation=generation)
    return PresetRegistry(greedy)


def _read_article(path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    return Article(
        name=path.stem.split("_", 1)[0],
        text=text,
        sentences=[sentence.text for sentence in split_sentences(text)],
    )


def check_device(options: PipelineBenchOptions) -> None:
    """Fail before building anything when the run asks for CUDA and there is none."""
    if options.device != "cuda":
        return
    if not torch.cuda.is_available():
        raise RuntimeError(
            "--device cuda: torch sees no CUDA device (needs a GPU and a CUDA build of torch)"
        )
    if options.backend == "ctranslate2":
        import ctranslate2

        if ctranslate2.get_cuda_device_count() < 1:
            raise RuntimeError(
                "--device cuda: ctranslate2 sees no CUDA device (its wheel needs the CUDA 12 "
                "runtime, cuBLAS and cuDNN 9 libraries)"
            )


def _baseline_model(engine: TranslationEngine, settings: Settings) -> LoadedModel:
    """(a)'s model: transformers in float32 on the pipeline's device, the pipeline's own copy
    when it is one, else a copy of its own (with ctranslate2, or float16 on a GPU)."""
    if isinstance(engine, TransformersTranslator) and engine.ref.compute_type == "float32":
        return engine.loaded
    device = torch.device("cuda" if settings.device == "cuda" else "cpu")
    return load_seq2seq(settings.translation_source, device=device, compute_type="float32")


class OwnLengthCT2Translator(FixedLengthCT2Translator):
    """The ctranslate2 twin of ``OwnLengthOutputs``: each output cut to its own sentence's
    length after the batch is generated (generation itself is left as it is)."""

    def translate_tokens(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        tokens = super().translate_tokens(texts, forbidden)
        counts = self.count_tokens(texts)
        return [
            row[: max(1, math.ceil(self.length_factor * n) - 1)]  # the last slot: the end token
            for row, n in zip(tokens, counts, strict=True)
        ]


class OwnLengthOutputs:
    """The translation model, with each output cut to its own sentence's length after generation.

    With a fixed length factor every sentence of a batch is generated to the batch's longest
    length: that is the work a real model does too (a batch runs until its longest member is
    done), so generation is left exactly as it is.  But a real model's shorter sentences end
    early and their translations are short, while here each of them would decode to the longest
    one's length, and the summarizer would be handed about 2.5 times as much text as a real
    translation gives it (``translation_pipeline_generated_padding_share`` says how much).  So
    after ``generate`` returns, the ids past ``ceil(factor x the row's own source tokens)`` are
    replaced by ``<pad>``, which decoding skips.  It costs a tensor slice; the translator code
    runs unchanged.  (Doing this in ``FixedLengthTransformersTranslator`` itself would make this
    wrapper unnecessary.)
    """

    def __init__(self, model: Any, factor: float) -> None:
        self._model = model
        self._factor = factor
        self._pad_id = int(model.config.pad_token_id)

    def generate(self, **kwargs: Any) -> torch.Tensor:
        output: torch.Tensor = self._model.generate(**kwargs)
        own_lengths = kwargs["attention_mask"].sum(dim=1).tolist()
        for row, source in enumerate(own_lengths):
            keep = 1 + math.ceil(self._factor * int(source))  # the decoder start token, then ids
            output[row, keep:] = self._pad_id
        return output

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def _cut_outputs_to_own_length(engine: TranslationEngine) -> None:
    """Transformers only; a ctranslate2 pipeline has ``OwnLengthCT2Translator`` already."""
    if isinstance(engine, TransformersTranslator) and not isinstance(
        engine.loaded.model, OwnLengthOutputs
    ):
        model = OwnLengthOutputs(engine.loaded.model, LENGTH_FACTOR)
        engine.loaded = dataclasses.replace(engine.loaded, model=model)


def _warm_up(pipeline: Pipeline) -> None:
    """Load SoMaJo and py3langid and run one small batch, so no phase pays first-call costs."""
    split_sentences("Das ist ein Satz. Das ist noch einer.")
    detect_language(["Das ist ein deutscher Satz."])
    pipeline.scheduler.engine.translate_batch(["Das ist ein kurzer Satz.", "Noch einer."])


def _corpus_figures(articles: Sequence[Article]) -> Figures:
    sentences = [n for article in articles for n in article.source_tokens]
    words = sum(len(s.split()) for article in articles for s in article.sentences)
    return {
        "seed_articles": len(articles),
        "seed_sentences": len(sentences),
        "seed_source_tokens": sum(sentences),
        "seed_source_tokens_per_word": round(sum(sentences) / max(1, words), 2),
        "seed_sentence_tokens_max": max(sentences),
        "seed_sentence_tokens_median": statistics.median(sentences),
    }


def _release_memory() -> None:
    """Free the greedy pipeline's models before the 4-beam one loads its own copy, and hand the
    freed memory back to the system, so the beam-4 peak is not the sum of both."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _peak_rss_mb() -> float:
    """The process's peak resident set so far (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load_1m() -> float:
    return round(os.getloadavg()[0], 2)


# --- (a) baseline -----------------------------------------------------------------------------


def _baseline_samples(articles: Sequence[Article], every: int) -> list[list[str]]:
    """Every ``every``-th sentence over all articles in order, grouped by article."""
    samples: list[list[str]] = []
    first = 0
    for article in articles:
        samples.append(
            [s for offset, s in enumerate(article.sentences) if (first + offset) % every == 0]
        )
        first += len(article.sentences)
    return samples


@dataclass
class _Arm:
    """What one thread setting of (a) accumulated."""

    threads: int
    source: int = 0
    generated: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0


class _Batch1:
    """(a): ``model.generate`` on one sentence at a time, each exactly ceil(1.1 x its tokens).

    Each sentence runs twice, with the torch threads the service uses (all cores) and with one
    thread, in alternating order.  At batch 1 the second core buys little, and on a machine
    where other processes compete for the cores a two-thread ``generate`` waits for a
    descheduled partner at every operation: it can be several times slower than one thread.
    The baseline the pipeline is compared with is the faster of the two, so a busy machine
    cannot make the pipeline look better than it is.
    """

    def __init__(self, loaded: LoadedModel) -> None:
        model = loaded.model
        if isinstance(model, OwnLengthOutputs):
            model = model._model  # batch 1 generates exactly its own length: nothing to cut
        self.model = model
        self.tokenizer = loaded.tokenizer
        self.sentences = 0
        self.arms = (_Arm(torch.get_num_threads()), _Arm(1))
        self.loads: list[float] = []

    @torch.inference_mode()
    def run(self, sentences: Sequence[str]) -> None:
        self.loads.append(_load_1m())
        service_threads = self.arms[0].threads
        try:
            for sentence in sentences:
                batch = self.tokenizer([sentence], return_tensors="pt").to(self.model.device)
                tokens = int(batch["input_ids"].shape[1])
                new_tokens = math.ceil(LENGTH_FACTOR * tokens)
                order = self.arms if self.sentences % 2 == 0 else self.arms[::-1]
                for arm in order:
                    torch.set_num_threads(arm.threads)
                    started, cpu_started = time.perf_counter(), time.process_time()
                    self.model.generate(
                        **batch,
                        max_new_tokens=new_tokens,
                        min_new_tokens=new_tokens,
                        num_beams=1,
                        do_sample=False,
                    )
                    arm.elapsed += time.perf_counter() - started
                    arm.cpu += time.process_time() - cpu_started
                    arm.source += tokens
                    arm.generated += new_tokens
                self.sentences += 1
        finally:
            torch.set_num_threads(service_threads)

    def figures(self) -> Figures:
        service, single = self.arms
        best = max(self.arms, key=lambda arm: arm.source / arm.elapsed)
        return {
            "translation_batch1_sentences": self.sentences,
            "translation_batch1_source_tokens": service.source,
            "translation_batch1_s": round(service.elapsed, 2),
            "translation_batch1_source_tokens_per_s": round(service.source / service.elapsed, 1),
            "translation_batch1_generated_tokens_per_s": round(
                service.generated / service.elapsed, 1
            ),
            "translation_batch1_source_tokens_per_cpu_s": round(service.source / service.cpu, 1),
            "translation_batch1_1thread_s": round(single.elapsed, 2),
            "translation_batch1_1thread_source_tokens_per_s": round(
                single.source / single.elapsed, 1
            ),
            "translation_batch1_best_threads": best.threads,
            "translation_batch1_best_source_tokens_per_s": round(best.source / best.elapsed, 1),
            "translation_batch1_best_generated_tokens_per_s": round(
                best.generated / best.elapsed, 1
            ),
            "translation_batch1_best_source_tokens_per_cpu_s": round(best.source / best.cpu, 1),
            "translation_batch1_load_1m": round(statistics.fmean(self.loads), 2),
        }


# --- (b) the pipeline -------------------------------------------------------------------------


def _run_pipeline(
    pipeline: Pipeline,
    articles: Sequence[Article],
    options: PipelineBenchOptions,
    *,
    label: str,
    batch1: tuple[_Batch1, list[list[str]]] | None = None,
) -> Figures:
    """Every seed through ``Pipeline.run``, one article after another, as one user sends them.

    One at a time keeps the stages apart (the summary of one article would otherwise compete
    for the cores with the translation of the next), so the stage timings the pipeline reports
    are clean.  Translation rates use the pipeline's own ``translate_ms``.
    """
    load_before = _load_1m()
    batches_before = pipeline.scheduler.batches_run
    started = time.perf_counter()
    clock = _StageClock()
    results = asyncio.run(_run_articles(pipeline, articles, clock, batch1))
    wall_s = time.perf_counter() - started
    load_after = _load_1m()
    prefix = "translation_pipeline" if label == "greedy" else f"translation_pipeline_{label}"
    translate_s = sum(r.timings_ms["translate_ms"] for r in results) / 1000
    source = sum(sum(a.source_tokens) for a in articles)
    needed = sum(sum(a.generated_tokens) for a in articles)
    figures: Figures = {
        f"{prefix}_s": round(translate_s, 2),
        f"{prefix}_source_tokens_per_s": round(source / translate_s, 1),
        f"{prefix}_generated_tokens_per_s": round(needed / translate_s, 1),
        f"{prefix}_source_tokens_per_cpu_s": round(source / clock.translate_cpu_s, 1),
        f"{prefix}_batches": pipeline.scheduler.batches_run - batches_before,
        f"{prefix}_load_1m": round((load_before + load_after) / 2, 2),
    }
    print(
        f"      translation {figures[f'{prefix}_source_tokens_per_s']} source tokens/s; "
        f"summaries {statistics.fmean(r.timings_ms['summarize_ms'] for r in results) / 1000:.1f}"
        f" s per article on average; {wall_s:.0f} s in all",
        flush=True,
    )
    if label == "greedy":
        figures.update(_padding_figures(articles, options))
    figures[f"pipeline_{label}_wall_s"] = round(wall_s, 1)
    summary_ms = [r.timings_ms["summarize_ms"] for r in results]
    figures[f"summary_{label}_ms_mean"] = round(statistics.fmean(summary_ms), 1)
    figures[f"pipeline_{label}_article_ms_mean"] = round(
        statistics.fmean(r.timings_ms["total_ms"] for r in results), 1
    )
    if label == "greedy":
        english_tokens = sum(
            sum(pipeline.summarizer.count_tokens([s.en for s in result.alignment]))
            for result in results
        )
        figures["summary_input_tokens_per_source_token"] = round(english_tokens / source, 2)
    for article, result in zip(articles, results, strict=True):
        seed = f"seed{article.name}"
        figures[f"summary_{label}_ms_{seed}"] = result.timings_ms["summarize_ms"]
        figures[f"pipeline_{label}_article_ms_{seed}"] = result.timings_ms["total_ms"]
        if label == "greedy":
            english = [sentence.en for sentence in result.alignment]
            figures[f"summary_input_tokens_{seed}"] = sum(pipeline.summarizer.count_tokens(english))
            figures[f"summary_chunks_{seed}"] = result.summary_chunks
            figures[f"summary_rounds_{seed}"] = result.summary_rounds
    return figures


def _run_together(pipeline: Pipeline, articles: Sequence[Article]) -> Figures:
    """Every article's sentences submitted at once to the pipeline's own scheduler.

    This is the translate stage of a worker that holds all the articles as jobs at once
    (``KURZ_WORKER_CONCURRENCY`` is 8): the scheduler pools and sorts the sentences of all of
    them, so its batches are fuller and more even than one article's.  Summaries are left out:
    in a worker they would run beside the translation and blur both stages' timings.
    """
    load_before = _load_1m()
    cpu_started = time.process_time()
    elapsed = _timed(lambda: asyncio.run(_translate_all(pipeline.scheduler, articles, True)))
    cpu = time.process_time() - cpu_started
    source = sum(sum(a.source_tokens) for a in articles)
    needed = sum(sum(a.generated_tokens) for a in articles)
    rate = source / elapsed
    print(f"      translation {rate:.1f} source tokens/s", flush=True)
    return {
        "translation_together_s": round(elapsed, 2),
        "translation_together_source_tokens_per_s": round(rate, 1),
        "translation_together_generated_tokens_per_s": round(needed / elapsed, 1),
        "translation_together_source_tokens_per_cpu_s": round(source / cpu, 1),
        "translation_together_load_1m": round((load_before + _load_1m()) / 2, 2),
    }


class _StageClock:
    """Process CPU time spent in the translate stage, from the pipeline's progress reports.

    Wall-clock rates on a shared machine depend on what else runs; CPU seconds per token depend
    on it much less, so they are recorded beside.  The stage starts at the first ``translate``
    report and ends at ``summarize`` (both are sent on the event loop as the stage changes).
    """

    def __init__(self) -> None:
        self.translate_cpu_s = 0.0
        self._mark: float | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "translate" and self._mark is None:
            self._mark = time.process_time()
        elif stage == "summarize" and done == 0 and self._mark is not None:
            self.translate_cpu_s += time.process_time() - self._mark
            self._mark = None


async def _run_articles(
    pipeline: Pipeline,
    articles: Sequence[Article],
    clock: _StageClock,
    batch1: tuple[_Batch1, list[list[str]]] | None,
) -> list[Result]:
    """The articles one by one; with ``batch1``, each article's (a) sample runs just before it.

    (a) blocks the event loop while it runs, which is harmless: nothing else is in flight.
    """
    results = []
    for index, article in enumerate(articles):
        if batch1 is not None:
            batch1[0].run(batch1[1][index])
        request = ArticleRequest(text=article.text, style=STYLE)
        result = await pipeline.run(request, on_progress=clock)
        results.append(result)
        timings = result.timings_ms
        print(
            f"      seed {article.name}: translate {timings['translate_ms'] / 1000:.1f} s, "
            f"summarize {timings['summarize_ms'] / 1000:.1f} s",
            flush=True,
        )
    return results


def _padding_figures(articles: Sequence[Article], options: PipelineBenchOptions) -> Figures:
    """How much of the batched work is padding, from the scheduler's own batch plan.

    Every sentence of a batch is generated to the batch's longest length, so sorting by length
    is what keeps this small.
    """
    positions = needed = batches = sentences = 0
    for article in articles:
        plan = plan_batches(
            article.source_tokens,
            token_budget=options.token_budget,
            max_sentences=options.max_sentences,
        )
        for batch in plan:
            longest = max(article.source_tokens[i] for i in batch)
            positions += len(batch) * math.ceil(LENGTH_FACTOR * longest)
        needed += sum(article.generated_tokens)
        batches += len(plan)
        sentences += len(article.sentences)
    return {
        "translation_pipeline_sentences_per_batch_mean": round(sentences / batches, 1),
        "translation_pipeline_generated_padding_share": round(1 - needed / positions, 3),
    }


# --- knob exploration -------------------------------------------------------------------------

#: (token budget, max sentences per batch, torch threads, articles at once, compute type);
#: 0 threads means "all cores"; "at once" submits the articles together, as a worker holding
#: several jobs does; "int8" is ``KURZ_COMPUTE_TYPE=int8`` (dynamic int8 ``Linear`` layers).
#: The defaults run first and again last: the difference shows how much the machine drifted.
SWEEP: tuple[tuple[int, int, int, bool, str], ...] = (
    (4096, 64, 0, False, "float32"),
    (4096, 64, 1, False, "float32"),
    (2048, 64, 0, False, "float32"),
    (1024, 64, 0, False, "float32"),
    (4096, 32, 0, False, "float32"),
    (4096, 16, 0, False, "float32"),
    (4096, 8, 0, False, "float32"),
    (4096, 64, 0, True, "float32"),
    (4096, 16, 0, True, "float32"),
    (4096, 64, 0, False, "int8"),
    (4096, 16, 0, False, "int8"),
    (4096, 64, 0, True, "int8"),
    (4096, 64, 0, False, "float32"),
)


def _explore(
    engine: TransformersTranslator,
    articles: Sequence[Article],
    settings: Settings,
    baseline_rate: float,
    baseline_cpu_rate: float,
) -> Figures:
    """Translation throughput of the scheduler under other budgets, batch sizes, threads and
    number formats, against the fp32 batch-1 baseline (a) (the faster of its two settings).

    Each point translates the same articles through a fresh ``InferenceScheduler`` over the
    same loaded model (int8: the same weights, loaded with ``compute_type="int8"`` as
    ``KURZ_COMPUTE_TYPE=int8`` does): what ``Pipeline.run``'s translate stage does, minus the
    (here absent) sentence cache.
    """
    from service.nlp.device import usable_cores
    from service.nlp.loading import load_seq2seq

    engines: dict[str, TransformersTranslator] = {"float32": engine}
    figures: Figures = {}
    seen: set[str] = set()
    source = sum(sum(a.source_tokens) for a in articles)
    for budget, max_sentences, threads, together, compute in SWEEP:
        if compute not in engines:
            loaded = load_seq2seq(
                settings.translation_source, device=torch.device("cpu"), compute_type=compute
            )
            engines[compute] = FixedLengthTransformersTranslator(
                loaded, num_beams=1, length_factor=LENGTH_FACTOR
            )
            engines[compute].translate_batch(["Ein kurzer Satz zum Aufwärmen."])
        torch.set_num_threads(threads or settings.inference_threads or usable_cores())
        scheduler = InferenceScheduler(
            engines[compute], token_budget=budget, max_sentences=max_sentences
        )
        cpu_started = time.process_time()
        try:
            elapsed = _timed(partial(asyncio.run, _translate_all(scheduler, articles, together)))
        finally:
            scheduler.close()
        cpu = time.process_time() - cpu_started
        name = f"explore_budget{budget}_max{max_sentences}_threads{torch.get_num_threads()}"
        if together:
            name += "_together"
        if compute != "float32":
            name += f"_{compute}"
        if name in seen:
            name += "_again"
        seen.add(name)
        rate = source / elapsed
        figures[f"{name}_source_tokens_per_s"] = round(rate, 1)
        figures[f"{name}_source_tokens_per_cpu_s"] = round(source / cpu, 1)
        figures[f"{name}_speedup_vs_batch1"] = round(rate / baseline_rate, 2)
        figures[f"{name}_speedup_vs_batch1_by_cpu_time"] = round(
            source / cpu / baseline_cpu_rate, 2
        )
        print(
            f"    {name}: {rate:.1f} source tokens/s ({rate / baseline_rate:.2f}x batch 1), "
            f"{source / cpu:.1f} per CPU-s ({source / cpu / baseline_cpu_rate:.2f}x), "
            f"load {_load_1m()}",
            flush=True,
        )
    return figures


async def _translate_all(
    scheduler: InferenceScheduler, articles: Sequence[Article], together: bool
) -> None:
    if together:
        await asyncio.gather(*(scheduler.translate(a.sentences) for a in articles))
        return
    for article in articles:
        await scheduler.translate(article.sentences)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
