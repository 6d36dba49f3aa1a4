"""Text normalization shared by cache keys and language identification.

Both must see through encoding noise (NFC vs NFD, stray blanks) without ever becoming quadratic
on hostile input: Unicode's stream-safe text format allows 30 combining marks in a row, and
longer runs are cut before NFC, whose canonical reordering is quadratic in a run's length (one
letter under 100,000 accents took seconds of the API's CPU just to compute its cache key).
"""

from __future__ import annotations

import unicodedata

import regex  # type: ignore[import-untyped]  # \p{M}; installed with SoMaJo and transformers

__all__ = ["MAX_COMBINING_RUN", "cut_combining_runs", "nfc", "normalize_text"]

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
    """NFC, with runs of blanks folded, but paragraph and line breaks kept (they shape output).

    Paragraphs are runs of lines that hold more than blanks; every line's blanks are folded to
    one space and stripped.  ``str.split()`` does that folding (it splits on exactly what
    ``str.isspace`` calls a blank, as ``\\s`` does), several times faster than a regular
    expression per line: this runs on every ``POST /summarize``, cache hits included.
    """
    text = nfc(text).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs: list[str] = []
    lines: list[str] = []
    for line in text.split("\n"):
        words = line.split()
        if words:
            lines.append(" ".join(words))
        elif lines:
            paragraphs.append("\n".join(lines))
            lines = []
    if lines:
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)
