"""Choosing and loading the inference backend for both models from the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog
import torch

from service.nlp.loading import load_seq2seq, resolve_device
from service.nlp.summarize import SummaryEngine, TransformersSummarizer
from service.nlp.translate import TransformersTranslator, TranslationEngine
from service.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Engines:
    """The two loaded models a worker needs."""

    translation: TranslationEngine
    summarization: SummaryEngine


#: cgroup v2's CPU bandwidth limit of this process's container: "<quota> <period>" or "max ...".
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may use: its CPU affinity, capped by a container's CPU quota.

    ``docker compose`` workers limited with ``cpus: 2`` see every core of the host in their
    affinity mask; only the cgroup quota says they get two.  Sizing thread pools from the quota
    keeps several workers on one machine from oversubscribing it.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, int(int(quota) / int(period))))


def configure_threads(settings: Settings) -> int:
    """Give torch's intra-op pool the cores this worker may use, once, before any inference."""
    threads = settings.inference_threads or usable_cores()
    torch.set_num_threads(threads)
    return threads


def load_engines(
    settings: Settings,
    *,
    fixed_length_factor: float | None = None,
    fixed_summary_tokens: int | None = None,
) -> Engines:
    """Load both models under the configured backend; fails with ``ModelUnavailableError``."""
    threads = configure_threads(settings)
    device = resolve_device(settings.device)
    if settings.backend == "ctranslate2":
        from service.nlp.ct2 import load_ct2_engines

        return load_ct2_engines(
            settings,
            device=device,
            fixed_length_factor=fixed_length_factor,
            fixed_summary_tokens=fixed_summary_tokens,
        )
    compute_type = settings.compute_type
    translation = TransformersTranslator(
        load_seq2seq(settings.translation_source, device=device, compute_type=compute_type),
        num_beams=settings.translation_beams,
        fixed_length_factor=fixed_length_factor,
    )
    summarization = TransformersSummarizer(
        load_seq2seq(settings.summarization_source, device=device, compute_type=compute_type),
        fixed_summary_tokens=fixed_summary_tokens,
    )
    log.info(
        "models loaded",
        backend="transformers",
        device=str(device),
        threads=threads,
        translation=translation.ref.id,
        summarization=summarization.ref.id,
    )
    return Engines(translation=translation, summarization=summarization)
