"""The ctranslate2 backend against the transformers backend, on real-size random-weight models.

Why this benchmark exists: the issue claims that MarianMT and BART run several times faster
under CTranslate2 with int8 weights on a CPU (targets on the 2-core machine the service is sized
for: translation >= ``TARGET_TRANSLATION_SPEEDUP`` x, summary at 4 beams >=
``TARGET_SUMMARY_SPEEDUP`` x).  It measures, through the service's own engines
(``TransformersTranslator``/``TransformersSummarizer`` against ``CT2Translator``/
``CT2Summarizer``), so tokenization, guards and decoding are what users run:

* translation source tokens/s, greedy, batches of ``BATCH_SENTENCES`` seed sentences sorted by
  length, for transformers float32 (the default CPU pipeline), transformers with dynamic int8
  ``Linear`` layers, ctranslate2 int8 and ctranslate2 float32;
* summary latency per seed article (its first 1024-token chunk, as the map-reduce hands it
  over) at 4 beams, transformers float32 against ctranslate2 int8;
* the peak resident memory of a process holding both models and having run each once, per
  backend, each in a fresh subprocess, next to the same process's memory before any model is
  loaded (``VmHWM``: with ``ru_maxrss`` a child would inherit the benchmark's own peak);
* achieved arithmetic rates against a matrix-multiplication ceiling measured in the same run.

All engines of one stage are loaded together and take turns batch by batch (``_interleaved``),
so that on a shared machine every backend sees the same background load; the 1-minute load
average at the start and the end is recorded with the figures.

How it stays honest offline: the models have the real architectures (``benchmarks.models``:
opus-mt-de-en and distilbart-cnn-12-6 dimensions) and random weights, and every output length is
fixed (1.1 x the source tokens, ``SUMMARY_TOKENS`` per summary), so a random model does exactly
the work the real one does.  Two adjustments make them convertible, both free at run time:

* ctranslate2 needs one vocabulary entry per embedding row, so the borrowed tiny tokenizers are
  padded with unused entries up to the real vocabulary sizes (the ids they produce for text do
  not change, and ``final_logits_bias`` keeps generation away from the unused ids);
* opus-mt puts ``<pad>`` (its decoder start token) at the last id, 58100, and ctranslate2's
  Marian converter relies on that; ``benchmarks.models`` puts it right after the tiny
  vocabulary, so the Marian copy used here swaps that row with the last one (same weights,
  relabelled).

Operation counts are the matrix multiplications a minimal implementation needs (weight
matmuls, attention scores and mixing; the encoder and the cross-attention keys/values once per
source, not per beam), so the "achieved" rate is the useful work per second.  The ceiling is a
1024 x 1024 x 1024 multiplication with the same thread count: ``torch.matmul`` in float32 and
``torch._int_mm`` (int8 x int8 -> int32) in int8.  It is measured twice: best of a few runs
before anything else (``*_best_gops``: the machine when quiet), and as one more runner taking
turns with the engines (``*_gops_during_<stage>``: the machine as the engines saw it); the
shares compare each engine with the ceiling of its precision during the same stage.
ctranslate2's own int8 GEMM (oneDNN) is not reachable from Python; torch's int8 kernel may be
slower than it, so a share of the int8 ceiling can exceed 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks import ROOT, SEEDS_DIR
from benchmarks.models import BART_DIMENSIONS, MARIAN_DIMENSIONS, build_real_size_models

__all__ = [
    "TARGET_SUMMARY_SPEEDUP",
    "TARGET_TRANSLATION_SPEEDUP",
    "prepare_ct2_models",
    "run_ct2_benchmark",
    "seq2seq_ops",
]

#: The issue's targets on the 2-core machine.
TARGET_TRANSLATION_SPEEDUP = 3.0
TARGET_SUMMARY_SPEEDUP = 3.0
#: Translation output per sentence, as a multiple of its source tokens (as pipeline_bench).
LENGTH_FACTOR = 1.1
#: distilbart-cnn's summary length (its generation max_length), generated in full every time.
SUMMARY_TOKENS = 142
SUMMARY_BEAMS = 4
#: The translation engines compared, in the order they take turns.
ENGINE_NAMES = ("transformers_fp32", "transformers_int8", "ct2_int8", "ct2_float32")
#: Sentences per translation batch, sorted by length.
BATCH_SENTENCES = 32
#: Default workload, sized to finish in about five minutes on 2 cores: a third of the seed
#: sentences (spread over all seeds; rates are per token, so a spread sample is representative)
#: and the first chunk of two seed articles (the summary costs about the same per 1024-token
#: chunk).
DEFAULT_SENTENCES = 64
DEFAULT_SUMMARY_SEEDS = 2
#: Translation batches are timed this many times per engine, keeping each batch's best time.
TRANSLATION_ROUNDS = 2
_MATMUL_SIZE = 1024
_MATMUL_CALLS = 4
_MATMUL_OPS_PER_RUN = 2.0 * _MATMUL_SIZE**3 * _MATMUL_CALLS
_MATMUL_REPEATS = 5
_RSS_CHILD_FLAG = "--rss-child"
_SACREMOSES_WARNING = r".*sacremoses.*"


@dataclass(frozen=True, slots=True)
class BenchModels:
    """The two convertible real-size models and what building them took."""

    translation: Path
    summarization: Path
    build_s: float
    translation_parameters: int = 0
    summarization_parameters: int = 0


# --- models -------------------------------------------------------------------------------------


def prepare_ct2_models(out_dir: Path, *, seed: int = 0) -> BenchModels:
    """Build the real-size random-weight models and their convertible copies under ``out_dir``."""
    started = time.perf_counter()
    built = build_real_size_models(out_dir / "built", seed=seed)
    translation = out_dir / "translation"
    summarization = out_dir / "summarization"
    _marian_with_pad_last(built.translation, translation)
    _bart_with_full_vocabulary(built.summarization, summarization)
    # The transformers-format Marian is rewritten above; the original is no longer needed.
    shutil.rmtree(built.translation, ignore_errors=True)
    return BenchModels(
        translation,
        summarization,
        time.perf_counter() - started,
        built.translation_parameters,
        built.summarization_parameters,
    )


def _marian_with_pad_last(source: Path, target: Path) -> None:
    """Copy the Marian model with ``<pad>`` moved to the last id, as in opus-mt-de-en."""
    from transformers import MarianMTModel

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SACREMOSES_WARNING, category=UserWarning)
        model: Any = MarianMTModel.from_pretrained(str(source))
    vocab: dict[str, int] = json.loads((source / "vocab.json").read_text(encoding="utf-8"))
    old_pad = int(model.config.pad_token_id)
    new_pad = int(MARIAN_DIMENSIONS["vocab_size"]) - 1
    if vocab.get("<pad>") != old_pad or max(vocab.values()) != old_pad:
        raise RuntimeError("unexpected Marian vocabulary layout from benchmarks.models")
    swap = torch.tensor([new_pad, old_pad])
    with torch.no_grad():
        seen: set[int] = set()
        for module in (
            model.get_input_embeddings(),
            model.get_decoder().embed_tokens,
            model.get_encoder().embed_tokens,
            model.get_output_embeddings(),
        ):
            weight = module.weight
            if weight.data_ptr() in seen:
                continue
            seen.add(weight.data_ptr())
            weight[[old_pad, new_pad]] = weight[swap]
        bias = model.final_logits_bias
        bias[:, [old_pad, new_pad]] = bias[:, swap]
    for config in (model.config, model.generation_config):
        config.pad_token_id = new_pad
        config.decoder_start_token_id = new_pad
    model.generation_config.bad_words_ids = [[new_pad]]
    model.save_pretrained(str(target))

    del vocab["<pad>"]
    vocab.update({f"<unused{i}>": i for i in range(old_pad, new_pad)})
    vocab["<pad>"] = new_pad
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        shutil.copy2(source / name, target / name)
    tokenizer_config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    added = tokenizer_config.get("added_tokens_decoder", {})
    if str(old_pad) in added:
        added[str(new_pad)] = added.pop(str(old_pad))
    (target / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config, indent=2, ensure_ascii=False), encoding="utf-8"
    )


def _bart_with_full_vocabulary(source: Path, target: Path) -> None:
    """Link the BART model with its tokenizer padded to the real vocabulary size."""
    target.mkdir(parents=True, exist_ok=True)
    for file in source.iterdir():
        if file.suffix == ".safetensors":
            (target / file.name).symlink_to(file.resolve())
        elif file.name != "tokenizer.json":
            shutil.copy2(file, target / file.name)
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    size = int(BART_DIMENSIONS["vocab_size"])
    vocab.update({f"<unused{i}>": i for i in range(len(vocab), size)})
    (target / "tokenizer.json").write_text(
        json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8"
    )


# --- operation counts ---------------------------------------------------------------------------


def seq2seq_ops(
    dims: dict[str, int], *, batch: int, source: int, steps: int, beams: int = 1
) -> float:
    """Arithmetic operations (2 x multiply-adds) of one encoder-decoder generation call.

    ``source`` is the padded source length, ``steps`` the decoding steps.  Counts weight
    matmuls, attention scores and mixing, and the output projection; the encoder and the
    cross-attention keys and values are computed once per source (not per beam).
    """
    d, ffn, vocab = dims["d_model"], dims["ffn_dim"], dims["vocab_size"]
    encoder_layers, decoder_layers = dims["encoder_layers"], dims["decoder_layers"]
    encoder = batch * encoder_layers * (source * (4 * d * d + 2 * d * ffn) + 2 * source**2 * d)
    cross_keys_values = batch * decoder_layers * source * 2 * d * d
    per_token = decoder_layers * (6 * d * d + 2 * d * ffn) + d * vocab
    attention = decoder_layers * 2 * d * (steps * (steps + 1) / 2 + steps * source)
    decoder = batch * beams * (steps * per_token + attention)
    return 2.0 * (encoder + cross_keys_values + decoder)


# --- measurements -------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"  [ct2 {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def _quiet() -> Iterator[None]:
    """No per-call generation notices or deprecation warnings in the benchmark's output."""
    from transformers.utils import logging as transformers_logging

    hf_logging: Any = transformers_logging
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _matmul_runners() -> dict[str, Callable[[object], object]]:
    """Runners that each do ``_MATMUL_CALLS`` 1024^3 matmuls: float32, and int8 if available.

    int8 uses ``torch._int_mm`` (int8 x int8 -> int32); a torch build without a CPU kernel for
    it gets no int8 runner, and the int8 figures are left out.
    """
    n = _MATMUL_SIZE
    a, b = torch.randn(n, n), torch.randn(n, n)
    qa = torch.randint(-128, 128, (n, n), dtype=torch.int8)
    qb = torch.randint(-128, 128, (n, n), dtype=torch.int8)

    def fp32(_: object) -> object:
        return [torch.matmul(a, b) for _ in range(_MATMUL_CALLS)]

    def int8(_: object) -> object:
        return [torch._int_mm(qa, qb) for _ in range(_MATMUL_CALLS)]

    runners: dict[str, Callable[[object], object]] = {"matmul_fp32": fp32}
    try:
        int8(None)
    except (RuntimeError, NotImplementedError):
        return runners
    runners["matmul_int8"] = int8
    return runners


def matmul_best(threads: int) -> dict[str, float]:
    """Best GOP/s of each matmul runner over a few runs: the machine's ceiling when quiet."""
    torch.set_num_threads(threads)
    best: dict[str, float] = {}
    for name, run in _matmul_runners().items():
        run(None)
        times = []
        for _ in range(_MATMUL_REPEATS):
            started = time.perf_counter()
            run(None)
            times.append(time.perf_counter() - started)
        best[name] = _MATMUL_OPS_PER_RUN / min(times) / 1e9
    return best


def _translation_batches(counter: Any, sentences: Sequence[str]) -> list[list[str]]:
    """Batches of ``BATCH_SENTENCES`` sentences, shortest first."""
    counts = counter.count_tokens(sentences)
    order = sorted(range(len(sentences)), key=lambda i: counts[i])
    return [
        [sentences[i] for i in order[start : start + BATCH_SENTENCES]]
        for start in range(0, len(order), BATCH_SENTENCES)
    ]


def _interleaved(
    runners: dict[str, Callable[[Any], object]], items: Sequence[Any], *, rounds: int = 1
) -> dict[str, list[float]]:
    """Seconds per item for every runner, the runners taking turns item by item.

    Taking turns (in an order that rotates from item to item) exposes every backend to the same
    machine load: on a shared machine, running one backend after the other would hand one of
    them a quiet minute and the other a busy one, and the ratio would measure the neighbours.
    With several ``rounds`` each item's time is the best of its rounds, which filters out the
    bursts of load that hit the short runs (ctranslate2's) hardest.
    """
    names = list(runners)
    best: dict[str, list[float]] = {name: [math.inf] * len(items) for name in names}
    turn = 0
    for _ in range(rounds):
        for index, item in enumerate(items):
            shift = turn % len(names)
            turn += 1
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                runners[name](item)
                elapsed = time.perf_counter() - started
                best[name][index] = min(best[name][index], elapsed)
    return best


def _summary_chunks(engine: Any, seeds: Sequence[str]) -> list[str]:
    """The first chunk of each seed article that the map-reduce would hand the summarizer."""
    from service.nlp.summarize import pack_chunks
    from service.text.segment import split_sentences

    overhead = engine.count_tokens([""])[0]
    limit = engine.max_input_tokens - overhead
    return [
        pack_chunks([s.text for s in split_sentences(text)], engine, limit)[0] for text in seeds
    ]


def _summary_generation() -> Any:
    """distilbart-cnn's generation settings: 4 beams, length penalty 2, no repeated trigrams."""
    from service.presets import Generation

    return Generation(
        min_length=56,
        max_length=SUMMARY_TOKENS,
        num_beams=SUMMARY_BEAMS,
        length_penalty=2.0,
        no_repeat_ngram_size=3,
    )


def _ceiling_figures(
    figures: dict[str, float], phase: str, seconds: dict[str, list[float]], items: int
) -> None:
    """The matmul rates measured alongside ``phase``, and each engine's share of them.

    A float32 engine is compared with the float32 ceiling, an int8 engine with the int8 one.
    """
    for precision in ("fp32", "int8"):
        runner = f"matmul_{precision}"
        if runner not in seconds:
            continue
        ceiling = _MATMUL_OPS_PER_RUN * items / sum(seconds[runner]) / 1e9
        figures[f"ct2_{runner}_gops_during_{phase}"] = ceiling
        for name in ENGINE_NAMES:
            achieved = figures.get(f"ct2_{phase}_gops_{name}")
            if achieved is not None and name.endswith(
                ("fp32", "float32") if precision == "fp32" else "int8"
            ):
                figures[f"ct2_{phase}_share_of_{precision}_ceiling_{name}"] = achieved / ceiling


def _one_summary(engine: Any, generation: Any) -> Callable[[str], object]:
    """Summarize one chunk with ``engine`` (a runner for ``_interleaved``)."""

    def run(chunk: str) -> object:
        return engine.summarize_batch([chunk], generation)

    return run


def _peak_rss(
    backends: Sequence[str], models: BenchModels, converted: Path, threads: int
) -> dict[str, dict[str, float]]:
    """Run ``_rss_child`` for every backend, each in a fresh interpreter, side by side.

    Memory is not a timing, so the probes may share the CPU; each has its own address space.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    children = {
        backend: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.ct2_bench",
                _RSS_CHILD_FLAG,
                backend,
                str(models.translation),
                str(models.summarization),
                str(converted),
                str(threads),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in backends
    }
    figures: dict[str, dict[str, float]] = {}
    try:
        for backend, child in children.items():
            stdout, stderr = child.communicate(timeout=600)
            if child.returncode != 0:
                raise RuntimeError(f"memory probe for {backend} failed:\n{stderr[-2000:]}")
            figures[backend] = json.loads(stdout.strip().splitlines()[-1])
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    return figures


def _maxrss_mb() -> float:
    """This process's peak resident set so far, in MiB.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent
    through fork and exec, so a child of this (large) benchmark process would report the
    parent's peak; ``VmHWM`` belongs to the child's own address space.
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_child(backend: str, translation: str, summarization: str, root: str, threads: int) -> None:
    """Load both models under ``backend``, run each once, print the peak RSS as JSON."""
    import service.nlp.ct2 as ct2
    from service.nlp.loading import load_seq2seq
    from service.nlp.transformers_engine import TransformersSummarizer, TransformersTranslator
    from service.presets import Generation

    torch.set_num_threads(threads)
    baseline = _maxrss_mb()
    cpu = torch.device("cpu")
    with _quiet():
        if backend == "transformers":
            translator: Any = TransformersTranslator(
                load_seq2seq(translation, device=cpu, compute_type="float32")
            )
            summarizer: Any = TransformersSummarizer(
                load_seq2seq(summarization, device=cpu, compute_type="float32")
            )
        else:
            common: dict[str, Any] = {
                "device": cpu,
                "compute_type": "int8",
                "out_root": Path(root),
                "threads": threads,
            }
            translator = ct2.CT2Translator(ct2.load_ct2_model(translation, **common))
            summarizer = ct2.CT2Summarizer(ct2.load_ct2_model(summarization, **common))
        loaded = _maxrss_mb()
        translator.translate_batch(["Die Gespräche finden in Washington statt."])
        summarizer.summarize_batch(
            ["Die Gespräche finden in Washington statt."], Generation(max_length=20)
        )
    print(json.dumps({"baseline_mb": baseline, "loaded_mb": loaded, "peak_mb": _maxrss_mb()}))


# --- the benchmark ------------------------------------------------------------------------------


def run_ct2_benchmark(
    *,
    threads: int | None = None,
    work_dir: Path | None = None,
    max_sentences: int | None = DEFAULT_SENTENCES,
    summary_seeds: int | None = DEFAULT_SUMMARY_SEEDS,
    seed: int = 0,
) -> dict[str, float]:
    """Measure both backends; returns flat figures (rates, latencies, memory, ceilings).

    ``threads`` defaults to the cores this process may use; ``work_dir`` (default: a temporary
    directory, deleted afterwards) receives the models and their converted copies;
    ``max_sentences`` / ``summary_seeds`` limit the workload (``None``: every seed sentence and
    every seed article, about three times as long).
    """
    from benchmarks.fixed_length import (
        FixedLengthCT2Summarizer,
        FixedLengthCT2Translator,
        FixedLengthTransformersSummarizer,
        FixedLengthTransformersTranslator,
    )
    from service.nlp import ct2
    from service.nlp.device import usable_cores
    from service.nlp.loading import load_seq2seq
    from service.text.segment import split_sentences

    threads = threads or usable_cores()
    torch.set_num_threads(threads)
    cpu = torch.device("cpu")
    figures: dict[str, float] = {
        "ct2_threads": float(threads),
        "ct2_load_1m_start": os.getloadavg()[0],
    }
    started = time.perf_counter()
    with (
        _work_dir(work_dir) as work,
        _quiet(),
    ):
        _progress("building real-size random-weight models")
        models = prepare_ct2_models(work, seed=seed)
        figures["ct2_model_build_s"] = models.build_s
        converted = work / "ct2"

        seeds = [p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))]
        sentences = [s.text for text in seeds for s in split_sentences(text)]
        if max_sentences and max_sentences < len(sentences):
            spacing = len(sentences) / max_sentences  # evenly spread over every seed
            sentences = [sentences[int(i * spacing)] for i in range(max_sentences)]
        if summary_seeds:
            seeds = seeds[:: max(1, len(seeds) // summary_seeds)][:summary_seeds]

        def ct2_model(source: Path, compute_type: str) -> Any:
            began = time.perf_counter()
            model = ct2.load_ct2_model(
                str(source),
                device=cpu,
                compute_type=compute_type,
                out_root=converted,
                threads=threads,
            )
            # The first start converts: this is conversion plus load, a one-time cost.
            figures[f"ct2_convert_and_load_{source.name}_{compute_type}_s"] = (
                time.perf_counter() - began
            )
            return model

        _progress("matmul ceilings (best of a few runs)")
        for name, rate in matmul_best(threads).items():
            figures[f"ct2_{name}_best_gops"] = rate
        matmuls = _matmul_runners()

        # --- translation ------------------------------------------------------------------
        _progress("translation: loading transformers fp32 and int8, ctranslate2 int8 and fp32")
        translators: dict[str, Any] = {
            "transformers_fp32": FixedLengthTransformersTranslator(
                load_seq2seq(str(models.translation), device=cpu, compute_type="float32"),
                length_factor=LENGTH_FACTOR,
            ),
            "transformers_int8": FixedLengthTransformersTranslator(
                load_seq2seq(str(models.translation), device=cpu, compute_type="int8"),
                length_factor=LENGTH_FACTOR,
            ),
            "ct2_int8": FixedLengthCT2Translator(
                ct2_model(models.translation, "int8"), length_factor=LENGTH_FACTOR
            ),
            "ct2_float32": FixedLengthCT2Translator(
                ct2_model(models.translation, "float32"), length_factor=LENGTH_FACTOR
            ),
        }
        reference = translators["transformers_fp32"]
        batches = _translation_batches(reference, sentences)
        source_tokens = 0
        translation_ops = 0.0
        for batch in batches:
            counts = reference.count_tokens(batch)
            steps = max(1, math.ceil(LENGTH_FACTOR * max(counts)) - 1)  # last slot: end token
            source_tokens += sum(counts)
            translation_ops += seq2seq_ops(
                MARIAN_DIMENSIONS, batch=len(batch), source=max(counts), steps=steps
            )
        for engine in translators.values():  # warm-up: first-call allocations and caches
            engine.translate_batch(batches[0][:4])
        _progress(
            f"translation: {len(sentences)} sentences, {len(batches)} batches, "
            f"{TRANSLATION_ROUNDS} interleaved rounds"
        )
        seconds = _interleaved(
            {**{name: e.translate_batch for name, e in translators.items()}, **matmuls},
            batches,
            rounds=TRANSLATION_ROUNDS,
        )
        del translators, reference
        gc.collect()
        rates = {name: source_tokens / sum(seconds[name]) for name in ENGINE_NAMES}
        for name in ENGINE_NAMES:
            figures[f"ct2_translation_src_tok_per_s_{name}"] = rates[name]
            figures[f"ct2_translation_gops_{name}"] = translation_ops / sum(seconds[name]) / 1e9
        _ceiling_figures(figures, "translation", seconds, len(batches))
        figures["ct2_translation_sentences"] = float(len(sentences))
        figures["ct2_translation_source_tokens"] = float(source_tokens)
        figures["ctranslate2_speedup_vs_transformers"] = (
            rates["ct2_int8"] / rates["transformers_fp32"]
        )
        figures["ct2_float32_speedup_vs_transformers"] = (
            rates["ct2_float32"] / rates["transformers_fp32"]
        )
        figures["ct2_transformers_int8_speedup_vs_fp32"] = (
            rates["transformers_int8"] / rates["transformers_fp32"]
        )

        # --- summary ----------------------------------------------------------------------
        _progress("summary: loading transformers fp32 and ctranslate2 int8")
        began = time.perf_counter()
        hf_bart = load_seq2seq(str(models.summarization), device=cpu, compute_type="float32")
        figures["ct2_load_summarization_transformers_s"] = time.perf_counter() - began
        ct2_bart = ct2_model(models.summarization, "int8")
        summarizers: dict[str, Any] = {
            "transformers_fp32": FixedLengthTransformersSummarizer(
                hf_bart, summary_tokens=SUMMARY_TOKENS
            ),
            "ct2_int8": FixedLengthCT2Summarizer(ct2_bart, summary_tokens=SUMMARY_TOKENS),
        }
        generation = _summary_generation()
        # Warm-up on the same loaded models, with short outputs (a full one costs seconds).
        FixedLengthTransformersSummarizer(hf_bart, summary_tokens=8).summarize_batch(
            [seeds[0][:300]], generation
        )
        FixedLengthCT2Summarizer(ct2_bart, summary_tokens=8).summarize_batch(
            [seeds[0][:300]], generation
        )
        counter = summarizers["ct2_int8"]
        chunks = _summary_chunks(counter, seeds)
        chunk_tokens = counter.count_tokens(chunks)
        summary_ops = sum(
            seq2seq_ops(
                BART_DIMENSIONS, batch=1, source=n, steps=SUMMARY_TOKENS - 1, beams=SUMMARY_BEAMS
            )
            for n in chunk_tokens
        )
        _progress(f"summary: {len(chunks)} chunks at {SUMMARY_BEAMS} beams, interleaved")
        seconds = _interleaved(
            {
                **{name: _one_summary(e, generation) for name, e in summarizers.items()},
                **matmuls,
            },
            chunks,
        )
        del summarizers, counter, hf_bart, ct2_bart
        gc.collect()
        hf_seconds = seconds["transformers_fp32"]
        ct2_seconds = seconds["ct2_int8"]
        figures["ct2_summary_seeds"] = float(len(chunks))
        figures["ct2_summary_chunk_tokens_mean"] = statistics.mean(chunk_tokens)
        figures["ct2_summary_s_per_seed_transformers_fp32"] = statistics.mean(hf_seconds)
        figures["ct2_summary_s_per_seed_ct2_int8"] = statistics.mean(ct2_seconds)
        figures["summary_speedup_ct2_vs_transformers"] = sum(hf_seconds) / sum(ct2_seconds)
        figures["ct2_summary_gops_transformers_fp32"] = summary_ops / sum(hf_seconds) / 1e9
        figures["ct2_summary_gops_ct2_int8"] = summary_ops / sum(ct2_seconds) / 1e9
        _ceiling_figures(figures, "summary", seconds, len(chunks))

        # --- memory -----------------------------------------------------------------------
        _progress("peak memory: one fresh process per backend")
        rss = _peak_rss(("transformers", "ctranslate2"), models, converted, threads)
        for backend, measured in rss.items():
            figures[f"ct2_rss_peak_mb_{backend}"] = measured["peak_mb"]
            figures[f"ct2_rss_loaded_mb_{backend}"] = measured["loaded_mb"]
            figures[f"ct2_rss_before_models_mb_{backend}"] = measured["baseline_mb"]
        figures["ct2_rss_peak_ratio_ct2_vs_transformers"] = (
            figures["ct2_rss_peak_mb_ctranslate2"] / figures["ct2_rss_peak_mb_transformers"]
        )
        figures["ct2_converted_int8_mb"] = (
            sum(f.stat().st_size for d in converted.glob("*-int8") for f in d.iterdir()) / 2**20
        )
    figures["ct2_benchmark_s"] = time.perf_counter() - started
    figures["ct2_load_1m_end"] = os.getloadavg()[0]
    return {key: round(value, 4) for key, value in figures.items()}


@contextmanager
def _work_dir(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="kurz-ct2-bench-") as temporary:
        yield Path(temporary)


def _quiet_logs() -> None:
    """Only warnings from the service's structlog loggers (they print to stdout by default)."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.ct2_bench``: run the benchmark alone and print its figures."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    _quiet_logs()
    if arguments[:1] == [_RSS_CHILD_FLAG]:
        backend, translation, summarization, root, threads = arguments[1:6]
        _rss_child(backend, translation, summarization, root, int(threads))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ct2_bench", description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="threads (0: all usable cores)")
    parser.add_argument("--work-dir", type=Path, help="keep models and conversions here")
    parser.add_argument(
        "--sentences",
        type=int,
        default=DEFAULT_SENTENCES,
        help=f"sample this many sentences (0: all; default {DEFAULT_SENTENCES})",
    )
    parser.add_argument(
        "--summaries",
        type=int,
        default=DEFAULT_SUMMARY_SEEDS,
        help=f"summarize this many seeds (0: all; default {DEFAULT_SUMMARY_SEEDS})",
    )
    args = parser.parse_args(arguments)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures = run_ct2_benchmark(
        threads=args.threads or None,
        work_dir=args.work_dir,
        max_sentences=args.sentences or None,
        summary_seeds=args.summaries or None,
    )
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key.ljust(width)}  {value:,.3f}")
    for key, target in (
        ("ctranslate2_speedup_vs_transformers", TARGET_TRANSLATION_SPEEDUP),
        ("summary_speedup_ct2_vs_transformers", TARGET_SUMMARY_SPEEDUP),
    ):
        verdict = "MET" if figures[key] >= target else "NOT MET"
        print(f"target {key} >= {target:g}: {figures[key]:.2f} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
