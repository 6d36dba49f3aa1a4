"""Running transformers' tokenizers and configs in a process that never loads torch.

A worker on the ctranslate2 backend needs tokenizers and CTranslate2, not torch (about a
quarter of its resident memory): :func:`keep_torch_out` makes transformers run as if torch were
not installed, once the models are converted (converting needs torch).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["keep_torch_out"]


class _TorchNoticeFilter(logging.Filter):
    """Drops transformers' "PyTorch was not found" notice: without torch is the point here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PyTorch was not found" not in record.getMessage()


@contextmanager
def _without_torch_notice() -> Iterator[None]:
    """Silence transformers' notice about torch for the import that would print it."""
    hf_logger = logging.getLogger("transformers")  # transformers' own root logger, by name
    notice_filter = _TorchNoticeFilter()
    hf_logger.addFilter(notice_filter)
    try:
        yield
    finally:
        hf_logger.removeFilter(notice_filter)


def keep_torch_out() -> bool:
    """Make transformers run without torch in this process, if it is not too late; say if it is.

    The ctranslate2 backend uses transformers only for tokenizers and configs, which need no
    torch.  But transformers 5 has no switch to leave an installed torch alone (the old
    ``USE_TORCH`` variable is gone): ``is_torch_available`` only asks ``importlib`` whether the
    package can be found, and when it can, ``configuration_utils`` (through its RoPE helpers)
    imports torch, so even ``AutoTokenizer`` loads all of it.  ``None`` in ``sys.modules`` is
    Python's documented mark of a module that must not be imported: ``find_spec`` then answers
    that there is none, and transformers takes the same path as in an environment without torch
    (an image built without it), where tokenizers, configs and file utilities all work.

    The mark is for the rest of the process (transformers caches its answer), so it is set only
    when neither torch nor transformers is imported yet: a process that already has torch, or
    whose transformers already counted on it (a test session, a benchmark comparing the two),
    is left as it is.  Call it only once every model is converted: converting needs torch.
    """
    if "torch" in sys.modules:
        return sys.modules["torch"] is None  # marked already, or imported
    if "transformers" in sys.modules:
        return False
    sys.modules["torch"] = None  # type: ignore[assignment]  # "not importable", see above
    with _without_torch_notice():
        # Imported now, with the mark in place, so that it decides that torch is absent.
        import transformers  # noqa: F401
    return True
