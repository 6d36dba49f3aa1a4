"""Choosing the inference backend for both models from the settings, and loading them.

The backends (``transformers_engine``, ``ct2``) sit side by side and know nothing of each other
or of this module; this is the one place that picks between them.  Each is imported only when it
is chosen, so a transformers worker never loads ctranslate2's native library.
"""

from __future__ import annotations

import importlib.util

import structlog

from service.errors import ConfigError
from service.nlp.device import configure_threads, resolve_device
from service.nlp.engine import Engines
from service.settings import Settings

__all__ = ["load_engines"]

log = structlog.get_logger(__name__)


def load_engines(settings: Settings) -> Engines:
    """Load both models under the configured backend; fails with ``ModelUnavailableError``.

    The transformers backend computes with torch, which an environment made for the ctranslate2
    backend leaves out (the default image): that is one ``ConfigError`` up front, not an import
    error from deep inside.
    """
    if settings.backend == "transformers" and importlib.util.find_spec("torch") is None:
        raise ConfigError(
            "KURZ_BACKEND=transformers needs torch, which is not installed here (an environment "
            "made for the ctranslate2 backend); use KURZ_BACKEND=ctranslate2, or build the image "
            "with --build-arg KURZ_BACKEND=transformers (scripts/install.sh: without WITH_TORCH=0)"
        )
    threads = configure_threads(settings)
    device = resolve_device(settings.device, settings.backend)
    if settings.backend == "ctranslate2":
        from service.nlp.ct2 import load_ct2_engines

        engines = load_ct2_engines(settings, device=device, threads=threads)
    else:
        from service.nlp.transformers_engine import load_transformers_engines

        engines = load_transformers_engines(settings, device=device)
    log.info(
        "models loaded",
        backend=engines.translation.ref.backend,
        device=str(device),
        compute_type=engines.translation.ref.compute_type,
        threads=threads,
        translation=engines.translation.ref.id,
        summarization=engines.summarization.ref.id,
    )
    return engines
