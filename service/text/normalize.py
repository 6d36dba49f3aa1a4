"""Text normalization shared by cache keys and language identification.

Both must see through encoding noise (NFC vs NFD, stray blanks) without ever becoming quadratic
on hostile input: Unicode's stream-safe text format allows 30 combining marks in a row, and
longer runs are cut before NFC, whose canonical reordering is quadratic in a run's length (one
letter under 100,000 accents took seconds of the API's CPU just to compute its cache key).
"""

from __future__ import annotations

import re
import unicodedata

import regex  # type: ignore[import-untyped]  # \p{M}; installed with SoMaJo and transformers

__all__ = ["MAX_COMBINING_RUN", "cut_combining_runs", "nfc", "normalize_text"]

_WHITESPACE = re.compile(r"\s+")
#: Longest run of combining marks kept (Unicode's stream-safe limit; see the module docstring).
MAX_COMBINING_RUN = 30
_LONG_COMBINING_RUN = regex.compile(rf"(\p{{M}}{{{MAX_COMBINING_RUN}}})\p{{M}}+")


def cut_combining_runs(text: str) -> str:
    """``text`` with every run of combining marks cut to :data:`MAX_COMBINING_RUN`."""
    return str(_LONG_COMBINING_RUN.sub(r"\1", text))


def nfc(text: str) -> str:
    """NFC of ``text`` after cutting combining-mark runs to the stream-safe limit."""
    return unicodedata.normalize("NFC", cut_combining_runs(text))


def normalize_text(text: str) -> str:
    """NFC, with runs of blanks folded, but paragraph and line breaks kept (they shape output)."""
    text = nfc(text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = re.split(r"\n\s*\n", text)
    folded = []
    for paragraph in paragraphs:
        lines = [_WHITESPACE.sub(" ", line).strip() for line in paragraph.split("\n")]
        kept = "\n".join(line for line in lines if line)
        if kept:
            folded.append(kept)
    return "\n\n".join(folded)
