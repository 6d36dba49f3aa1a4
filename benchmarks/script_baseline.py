"""An article end to end with the service's defaults against a plain transformers script.

Why this benchmark exists: the issue asks whether the service is worth running instead of the
script a user would write with transformers and the same two models (target:
``TARGET_SPEEDUP`` times faster on the 2-core machine the service is sized for), and how much of
the CPU's int8 arithmetic the worker's translation actually uses (target: a share of at least
``TARGET_INT8_SHARE`` of the int8 matrix-multiplication ceiling measured in the same run).

The script (``TransformersScript``), written as a user would write it from the model cards:

* ``MarianMTModel``/``MarianTokenizer`` on the translation model; the article cut into sentences
  by the project's own segmenter (SoMaJo, ``split_sentences``: a regex would cut German dates
  and abbreviations differently, and both sides must translate the same sentences); batches of
  ``SCRIPT_BATCH_SENTENCES`` sentences in document order; ``generate(num_beams=4)``, as
  opus-mt's card sets;
* the English joined with spaces, tokenized with the summarizer's tokenizer, cut into chunks of
  ``max_position_embeddings`` (1,024) tokens with their start and end tokens, each chunk
  summarized on its own with ``generate(num_beams=4)`` and distilbart-cnn's length penalty and
  trigram block; when there was more than one chunk, the joined chunk summaries are summarized
  once more (the reduce step, as the service's map-reduce does);
* torch with every usable core, as the service's worker configures it.

The defaults: the service's ``Pipeline`` built as a worker builds it (``build_pipeline`` on
``load_engines``) from default ``Settings``, so the CTranslate2 backend in int8, greedy
translation in the scheduler's token-budget batches, the shipped ``standard`` style (4 beams)
for the summary, with its map-reduce, language detection and fact check, and a paragraph sink as
a worker passes one (so the opening paragraphs go first, in a batch of their own). Two settings
differ from a worker's, both on purpose: ``background_nice`` is 0, because the script runs at
normal priority in the same process and on a shared machine a lowered pipeline would lose to the
neighbours, not to the script; and no glossary is applied (random weights miss every term, so
its n-best fallbacks would run for sentences a real model gets right).

Both run every seed article, one at a time, taking turns seed by seed (in alternating order),
so that a change in the machine's load hits both alike.  Each side's warm-up runs first,
outside the timings.

How it stays honest offline: the models are random-weight models of the real architectures
(``benchmarks.models``, made convertible by ``ct2_bench.prepare_ct2_models``), and every output
length follows the pipeline benchmark's rule (``pipeline_bench.LENGTH_FACTOR``): a translation
batch generates ``ceil(1.1 x its longest source)`` tokens, a summary exactly ``SUMMARY_TOKENS``,
map and reduce alike.  Each translation is then cut to its own sentence's length before
decoding (the script through ``pipeline_bench.OwnLengthOutputs``, the pipeline through
``progressive_bench.OwnLengthCT2Translator``), so both summarizers read as much English as behind
a real translator; the English tokens and chunks of each side are reported per seed, because
beam search and greedy decoding pick different pieces.  The script's batches are in document
order, so it generates more padding than the pipeline's length-sorted ones: that is the cost a
real model pays too (a batch runs until its longest sentence is done).

The int8 share: the pipeline's translator records every batch it runs (sentences, longest
source) and the seconds inside the engine call.  The useful work of each batch is counted as
``ct2_bench.seq2seq_ops`` counts it (the padded source through the encoder once, the decoder
for the generated tokens but the forced end token), so the achieved rate is
``sum(ops) / sum(engine seconds)``.  The int8 ceiling is ``ct2_bench``'s (``torch._int_mm``, 1024
cubed, the same thread count), measured twice in this run: best of a few runs before anything
else, and once per seed right beside the pipeline's run (``ct2_bench._ceiling_figures``: the
machine as the worker saw it).  ``translation_share_of_int8_ceiling`` is the share of the
latter, as ct2_bench's shares are; the share of the best is reported beside it.  Both move
a lot with the machine's load: on 2 cores shared with other work, a two-thread int8 matmul
waits for a descheduled partner at every step, and its rate fell from about 800 GOP/s at a load
of 1 to 50 to 160 GOP/s at a load of 5 (one thread: about 450).  Quote the share with the load.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks import SEEDS_DIR, Figures
from benchmarks.ct2_bench import (
    _ceiling_figures,
    _matmul_runners,
    matmul_best,
    prepare_ct2_models,
    seq2seq_ops,
)
from benchmarks.fixed_length import with_fixed_lengths
from benchmarks.pipeline_bench import LENGTH_FACTOR, SUMMARY_TOKENS, OwnLengthOutputs
from benchmarks.progressive_bench import OwnLengthCT2Translator
from service.nlp.backends import load_engines
from service.nlp.ct2 import CT2Translator
from service.nlp.device import usable_cores
from service.nlp.engine import Engines, TokenSequences
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.schemas import TranslatedParagraph
from service.settings import Settings
from service.text.segment import split_sentences

__all__ = [
    "TARGET_INT8_SHARE",
    "TARGET_SPEEDUP",
    "ScriptBaselineOptions",
    "TransformersScript",
    "run_script_baseline_benchmark",
]

#: The issue's targets: the article end to end, and the worker's translation arithmetic.
TARGET_SPEEDUP = 4.0
TARGET_INT8_SHARE = 0.30
#: What the plain script does: sentences per translation batch, beams for both models (as the
#: model cards set them), and distilbart-cnn's length penalty and n-gram block.
SCRIPT_BATCH_SENTENCES = 16
SCRIPT_BEAMS = 4
SCRIPT_LENGTH_PENALTY = 2.0
SCRIPT_NO_REPEAT_NGRAM = 3
#: The tiny test models read 256 tokens: a 142-token summary of each chunk would never shrink
#: the text enough for the map-reduce to end, so their summaries are this long instead.
TINY_SUMMARY_TOKENS = 24
STYLE = "standard"


@dataclass(frozen=True, slots=True)
class ScriptBaselineOptions:
    """Knobs of one run."""

    models: str = "real-size"
    """``real-size`` (random weights, real architectures) or ``tiny`` (a quick check that the
    part runs: the tiny models' speeds say nothing)."""
    seeds: int = 0
    """How many seed articles to run, in file order (0: all five).  All five take about a
    quarter of an hour on 2 cores, most of it the script's float32 summaries at 4 beams."""
    seeds_dir: Path = SEEDS_DIR


@dataclass(slots=True)
class ScriptOutcome:
    """What the script did for one article and how long each part took."""

    seconds: float
    translate_s: float
    summarize_s: float
    english_tokens: int
    chunks: int


@dataclass(slots=True)
class SeedRun:
    """One seed on both sides."""

    name: str
    sentences: int
    script: ScriptOutcome
    pipeline_s: float
    pipeline_translate_s: float
    pipeline_summarize_s: float
    pipeline_english_tokens: int
    pipeline_chunks: int


class TransformersScript:
    """The plain transformers script, as a user would write it (see the module docstring).

    The only additions are the benchmark's fixed output lengths (``max_new_tokens`` equal to
    ``min_new_tokens``, by the pipeline benchmark's rule) and ``OwnLengthOutputs`` around the
    translation model, which cuts each translation to its own sentence's length after
    ``generate``, so that the summary reads what a real translation would give it.
    """

    def __init__(self, translation: Path, summarization: Path, *, summary_tokens: int) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, MarianMTModel

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*sacremoses.*", category=UserWarning)
            self.translation_tokenizer: Any = AutoTokenizer.from_pretrained(str(translation))
        marian: Any = MarianMTModel.from_pretrained(str(translation)).eval()
        self.translation_model: Any = OwnLengthOutputs(marian, LENGTH_FACTOR)
        self.summary_tokenizer: Any = AutoTokenizer.from_pretrained(str(summarization))
        self.summary_model: Any = AutoModelForSeq2SeqLM.from_pretrained(str(summarization)).eval()
        self.summary_tokens = summary_tokens
        self.chunk_tokens = int(self.summary_model.config.max_position_embeddings)

    @torch.inference_mode()
    def translate(self, sentences: Sequence[str]) -> list[str]:
        """Batches of 16 sentences in document order, 4 beams."""
        english: list[str] = []
        for start in range(0, len(sentences), SCRIPT_BATCH_SENTENCES):
            batch = self.translation_tokenizer(
                list(sentences[start : start + SCRIPT_BATCH_SENTENCES]),
                return_tensors="pt",
                padding=True,
            )
            new_tokens = math.ceil(LENGTH_FACTOR * int(batch["attention_mask"].sum(dim=1).max()))
            output = self.translation_model.generate(
                **batch,
                num_beams=SCRIPT_BEAMS,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
            )
            english.extend(
                self.translation_tokenizer.batch_decode(output, skip_special_tokens=True)
            )
        return english

    def english_tokens(self, english: str) -> int:
        """How long ``english`` is to the summarizer, special tokens left out (both sides)."""
        return len(self.summary_tokenizer(english, add_special_tokens=False)["input_ids"])

    def chunks(self, english: str) -> list[list[int]]:
        """The English cut into model-sized chunks of token ids, start and end tokens included.

        The special tokens are the ones the tokenizer puts around an empty text (BART: ``<s>``
        and ``</s>``), so each chunk is exactly what the tokenizer would make of its text.
        """
        ids: list[int] = self.summary_tokenizer(english, add_special_tokens=False)["input_ids"]
        around: list[int] = self.summary_tokenizer("")["input_ids"]
        bos = self.summary_tokenizer.bos_token_id
        prefix = around[:1] if around and around[0] == bos else []
        suffix = around[len(prefix) :]
        room = self.chunk_tokens - len(around)
        return [prefix + ids[start : start + room] + suffix for start in range(0, len(ids), room)]

    @torch.inference_mode()
    def summarize_ids(self, ids: list[int]) -> str:
        """One chunk, 4 beams, distilbart-cnn's length penalty and trigram block."""
        output = self.summary_model.generate(
            input_ids=torch.tensor([ids]),
            num_beams=SCRIPT_BEAMS,
            length_penalty=SCRIPT_LENGTH_PENALTY,
            no_repeat_ngram_size=SCRIPT_NO_REPEAT_NGRAM,
            max_new_tokens=self.summary_tokens,
            min_new_tokens=self.summary_tokens,
        )
        summary: str = self.summary_tokenizer.decode(output[0], skip_special_tokens=True)
        return summary

    def run(self, text: str) -> ScriptOutcome:
        """Sentences, translation, map over the chunks, reduce when there was more than one."""
        started = time.perf_counter()
        english = " ".join(self.translate([s.text for s in split_sentences(text)]))
        translated = time.perf_counter()
        chunks = self.chunks(english)
        summaries = [self.summarize_ids(chunk) for chunk in chunks]
        if len(summaries) > 1:
            reduced = self.chunks(" ".join(summaries))[0]  # fits: a few summaries are short
            summaries = [self.summarize_ids(reduced)]
        ended = time.perf_counter()
        return ScriptOutcome(
            seconds=ended - started,
            translate_s=translated - started,
            summarize_s=ended - translated,
            english_tokens=self.english_tokens(english),
            chunks=len(chunks),
        )


@dataclass
class BatchRecord:
    """What the worker's translator ran: batch shapes and seconds inside the engine."""

    batches: list[tuple[int, int]] = field(default_factory=list)
    """(sentences, longest source tokens) of every batch."""
    engine_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ops(self, dims: dict[str, int]) -> float:
        """Useful arithmetic of every recorded batch, counted as ``ct2_bench`` counts it."""
        return sum(
            seq2seq_ops(
                dims,
                batch=sentences,
                source=longest,
                steps=max(1, math.ceil(LENGTH_FACTOR * longest) - 1),  # last slot: end token
            )
            for sentences, longest in self.batches
        )


class RecordingCT2Translator(OwnLengthCT2Translator):
    """The worker's translator, which also notes each batch's shape and its engine seconds.

    Counting the tokens again costs a tokenizer call per batch (milliseconds against a batch's
    seconds); it happens outside the timed engine call.
    """

    def __init__(self, *args: Any, record: BatchRecord, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.record = record

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        if forbidden:
            raise ValueError("the benchmark applies no glossary")
        started = time.perf_counter()
        translated = super().translate_batch(texts)
        elapsed = time.perf_counter() - started
        longest = max(self.count_tokens(texts), default=0)
        with self.record.lock:
            self.record.batches.append((len(texts), longest))
            self.record.engine_s += elapsed
        return translated


def run_script_baseline_benchmark(options: ScriptBaselineOptions | None = None) -> Figures:
    """Build the models, run both sides on every seed by turns, return the figures."""
    options = options or ScriptBaselineOptions()
    paths = sorted(options.seeds_dir.glob("*.txt"))[: options.seeds or None]
    if not paths:
        raise RuntimeError(f"no seed articles in {options.seeds_dir}")
    threads = usable_cores()
    torch.set_num_threads(threads)
    figures: Figures = {
        "script_models": options.models,
        "script_threads": threads,
        "script_load_1m_start": _load_1m(),
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kurz-bench-script-") as scratch:
        settings, summary_tokens = _settings(options, Path(scratch), figures)
        print("  int8 and float32 matmul ceilings (best of a few runs) ...", flush=True)
        best = matmul_best(threads)
        record = BatchRecord()
        began = time.perf_counter()
        pipeline = _default_pipeline(settings, record, summary_tokens)
        figures["script_pipeline_load_s"] = round(time.perf_counter() - began, 1)
        ref = pipeline.scheduler.engine.ref
        figures["script_pipeline_backend"] = f"{ref.backend} {ref.compute_type}"
        dims = _dimensions(pipeline.scheduler.engine)
        try:
            began = time.perf_counter()
            script = TransformersScript(
                Path(settings.translation_source),
                Path(settings.summarization_source),
                summary_tokens=summary_tokens,
            )
            figures["script_load_s"] = round(time.perf_counter() - began, 1)
            _warm_up(pipeline, script, record)
            runs, matmul_seconds = _take_turns(pipeline, script, paths)
        finally:
            pipeline.close()
    figures.update(_speed_figures(runs))
    figures.update(_share_figures(record.ops(dims), record, matmul_seconds, best))
    figures["script_load_1m_end"] = _load_1m()
    figures["script_benchmark_s"] = round(time.perf_counter() - started, 1)
    return figures


def _settings(
    options: ScriptBaselineOptions, scratch: Path, figures: Figures
) -> tuple[Settings, int]:
    """Default settings on the chosen models (``.env`` and ``KURZ_*`` ignored, so a developer's
    configuration cannot change what is measured), and the summary length to fix."""
    common: dict[str, Any] = {
        "_env_file": None,
        "device": "cpu",
        "converted_models_dir": scratch / "converted",
        "background_nice": 0,
    }
    if options.models == "tiny":
        from service.dev.tiny import make_tiny_models

        make_tiny_models(scratch / "tiny")
        return Settings(models="tiny", tiny_models_dir=scratch / "tiny", **common), (
            TINY_SUMMARY_TOKENS
        )
    print("  building real-size random-weight models (convertible copies) ...", flush=True)
    built = prepare_ct2_models(scratch / "models")
    figures["script_models_build_s"] = round(built.build_s, 1)
    settings = Settings(
        models="hub",
        translation_model=str(built.translation),
        summarization_model=str(built.summarization),
        **common,
    )
    return settings, SUMMARY_TOKENS


def _default_pipeline(settings: Settings, record: BatchRecord, summary_tokens: int) -> Pipeline:
    """The pipeline a worker builds from ``settings``, with fixed output lengths and the
    translator that records its batches."""
    loaded = load_engines(settings)
    fixed = with_fixed_lengths(loaded, length_factor=LENGTH_FACTOR, summary_tokens=summary_tokens)
    translator = loaded.translation
    if not isinstance(translator, CT2Translator):
        raise TypeError(f"expected the ctranslate2 backend, got {type(translator).__name__}")
    engines = Engines(
        translation=RecordingCT2Translator(
            translator.model,
            num_beams=translator.num_beams,
            length_factor=LENGTH_FACTOR,
            record=record,
        ),
        summarization=fixed.summarization,
        urgent_translation=loaded.urgent_translation,
    )
    return build_pipeline(settings, engines=engines)


def _warm_up(pipeline: Pipeline, script: TransformersScript, record: BatchRecord) -> None:
    """Load SoMaJo and the language model, run every model once; the record starts empty."""
    text = "Das ist ein kurzer Satz.\n\nUnd noch einer hier."
    asyncio.run(pipeline.run(ArticleRequest(text=text)))
    script.translate(["Das ist ein kurzer Satz."])
    ids = script.chunks("A short sentence.")[0]
    with torch.inference_mode():
        script.summary_model.generate(input_ids=torch.tensor([ids]), min_length=0, max_new_tokens=4)
    record.batches.clear()
    record.engine_s = 0.0


def _take_turns(
    pipeline: Pipeline, script: TransformersScript, paths: Sequence[Path]
) -> tuple[list[SeedRun], dict[str, list[float]]]:
    """Every seed on both sides, the side that goes first alternating; the matmul runners once
    per seed just before the pipeline's run (the ceiling as the worker's translation saw it)."""
    matmuls = _matmul_runners()
    matmul_seconds: dict[str, list[float]] = {name: [] for name in matmuls}
    runs: list[SeedRun] = []
    for index, path in enumerate(paths):
        name = path.stem.split("_", 1)[0]
        text = path.read_text(encoding="utf-8")

        def run_script(text: str = text) -> ScriptOutcome:
            return script.run(text)

        def run_pipeline(text: str = text) -> tuple[float, Any]:
            for runner, run in matmuls.items():
                matmul_seconds[runner].append(_timed(lambda run=run: run(None)))
            began = time.perf_counter()
            request = ArticleRequest(text=text, style=STYLE)
            result = asyncio.run(pipeline.run(request, on_paragraphs=_hand_over))
            return time.perf_counter() - began, result

        if index % 2 == 0:
            outcome = run_script()
            pipeline_s, result = run_pipeline()
        else:
            pipeline_s, result = run_pipeline()
            outcome = run_script()
        english = [sentence.en for sentence in result.alignment]
        run = SeedRun(
            name=name,
            sentences=result.sentences_in,
            script=outcome,
            pipeline_s=pipeline_s,
            pipeline_translate_s=result.timings_ms["translate_ms"] / 1000,
            pipeline_summarize_s=result.timings_ms["summarize_ms"] / 1000,
            pipeline_english_tokens=script.english_tokens(" ".join(english)),
            pipeline_chunks=result.summary_chunks,
        )
        runs.append(run)
        print(
            f"    seed {name}: script {outcome.seconds:.1f} s (translate "
            f"{outcome.translate_s:.1f}, summarize {outcome.summarize_s:.1f}, "
            f"{outcome.chunks} chunks), defaults {pipeline_s:.1f} s (translate "
            f"{run.pipeline_translate_s:.1f}, summarize {run.pipeline_summarize_s:.1f}, "
            f"{run.pipeline_chunks} chunks): {outcome.seconds / pipeline_s:.2f}x; "
            f"load {_load_1m()}",
            flush=True,
        )
    return runs, matmul_seconds


def _hand_over(paragraphs: list[TranslatedParagraph]) -> None:
    """Where a worker writes finished paragraphs to Redis (well under a millisecond).

    Passing a sink matters: with one, the pipeline translates the opening paragraphs in a
    batch of their own first, as it does in a worker.
    """


def _speed_figures(runs: Sequence[SeedRun]) -> Figures:
    """Per-seed times and chunk counts, totals, and the ratio of the total times."""
    figures: Figures = {"script_seeds": len(runs)}
    for run in runs:
        prefix = f"script_seed{run.name}"
        figures[f"{prefix}_sentences"] = run.sentences
        figures[f"{prefix}_transformers_script_s"] = _significant(run.script.seconds)
        figures[f"{prefix}_defaults_s"] = _significant(run.pipeline_s)
        figures[f"{prefix}_speedup"] = _significant(run.script.seconds / run.pipeline_s)
        figures[f"{prefix}_transformers_script_chunks"] = run.script.chunks
        figures[f"{prefix}_defaults_chunks"] = run.pipeline_chunks
        figures[f"{prefix}_transformers_script_english_tokens"] = run.script.english_tokens
        figures[f"{prefix}_defaults_english_tokens"] = run.pipeline_english_tokens
    script_s = sum(run.script.seconds for run in runs)
    pipeline_s = sum(run.pipeline_s for run in runs)
    figures["script_transformers_script_s_total"] = round(script_s, 1)
    figures["script_transformers_script_translate_s_total"] = round(
        sum(run.script.translate_s for run in runs), 1
    )
    figures["script_transformers_script_summarize_s_total"] = round(
        sum(run.script.summarize_s for run in runs), 1
    )
    figures["script_defaults_s_total"] = round(pipeline_s, 1)
    figures["script_defaults_translate_s_total"] = round(
        sum(run.pipeline_translate_s for run in runs), 1
    )
    figures["script_defaults_summarize_s_total"] = round(
        sum(run.pipeline_summarize_s for run in runs), 1
    )
    figures["script_speedup_per_seed_min"] = round(
        min(run.script.seconds / run.pipeline_s for run in runs), 2
    )
    speedup = script_s / pipeline_s
    figures["article_speedup_vs_transformers_script"] = round(speedup, 2)
    figures["article_speedup_target"] = TARGET_SPEEDUP
    figures["article_speedup_target_met"] = speedup >= TARGET_SPEEDUP
    return figures


def _dimensions(engine: Any) -> dict[str, int]:
    """The translation model's sizes, as ``seq2seq_ops`` reads them (for the real-size model,
    ``benchmarks.models.MARIAN_DIMENSIONS``), from the config the engine loaded."""
    config = engine.model.config
    return {
        "vocab_size": int(config.vocab_size),
        "d_model": int(config.d_model),
        "encoder_layers": int(config.encoder_layers),
        "decoder_layers": int(config.decoder_layers),
        "ffn_dim": int(config.encoder_ffn_dim),
    }


def _share_figures(
    ops: float,
    record: BatchRecord,
    matmul_seconds: dict[str, list[float]],
    best: dict[str, float],
) -> Figures:
    """The worker's translation rate against the int8 ceiling (beside it, and at its best)."""
    if not record.batches or record.engine_s <= 0:
        return {"translation_share_skipped": "no translation batches were recorded"}
    achieved_gops = ops / record.engine_s / 1e9
    shares: dict[str, float] = {"ct2_worker_translation_gops_ct2_int8": achieved_gops}
    seeds = len(next(iter(matmul_seconds.values())))
    _ceiling_figures(shares, "worker_translation", matmul_seconds, seeds)
    figures: Figures = {key: _significant(value) for key, value in shares.items()}
    figures["translation_worker_batches"] = len(record.batches)
    figures["translation_worker_engine_s"] = _significant(record.engine_s)
    figures["translation_worker_gops"] = _significant(achieved_gops)
    share_key = "ct2_worker_translation_share_of_int8_ceiling_ct2_int8"
    if share_key not in shares or "matmul_int8" not in best:
        figures["translation_share_skipped"] = "this torch build has no CPU int8 matmul"
        return figures
    figures["matmul_int8_best_gops"] = _significant(best["matmul_int8"])
    figures["translation_share_of_int8_ceiling"] = _significant(shares[share_key])
    figures["translation_share_of_int8_best_ceiling"] = _significant(
        achieved_gops / best["matmul_int8"]
    )
    figures["translation_share_target"] = TARGET_INT8_SHARE
    figures["translation_share_target_met"] = shares[share_key] >= TARGET_INT8_SHARE
    return figures


def _significant(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant figures: the tiny models' shares and times are small
    enough that a fixed number of decimals turns them into 0.0, which reads as "nothing ran"."""
    return float(f"{value:.{digits}g}")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _load_1m() -> float:
    return round(os.getloadavg()[0], 2)
