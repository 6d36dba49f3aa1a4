"""Choosing the inference backend for both models from the settings, and loading them.

The backends (``transformers_engine``, ``ct2``) sit side by side and know nothing of each other
or of this module; this is the one place that picks between them.  Each is imported only when it
is chosen, so a transformers worker never loads ctranslate2's native library.
"""

from __future__ import annotations

import structlog

from service.nlp.device import configure_threads, resolve_device
from service.nlp.engine import Engines
from service.settings import Settings

__all__ = ["load_engines"]

log = structlog.get_logger(__name__)


def load_engines(settings: Settings) -> Engines:
    """Load both models under the configured backend; fails with ``ModelUnavailableError``."""
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
