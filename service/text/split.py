"""Cutting text that is too long for a model into pieces that fit, losing nothing.

MarianMT reads at most 512 tokens and a summarizer 1024 or 512; a sentence over the limit is cut
at clause boundaries (commas, semicolons, colons, dashes), then at word boundaries, then, for a
single monstrous "word", at character boundaries, and the caller joins the outputs again.  The
token count comes from the caller (the model's tokenizer), so this module needs no model and no
torch: the inference scheduler and the summary map-reduce both use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["split_long"]

#: Clause boundaries: punctuation followed by a space.  The punctuation stays with the left part.
_CLAUSE_BOUNDARY = re.compile(r"(?<=[,;:–—)])\s+|\s+(?=[–—(])")
_WORD_BOUNDARY = re.compile(r"\s+")


def split_long(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` tokens, preferring clause boundaries."""
    if count(text) <= limit:
        return [text]
    for pattern in (_CLAUSE_BOUNDARY, _WORD_BOUNDARY):
        parts = [p for p in pattern.split(text) if p.strip()]
        if len(parts) > 1:
            pieces: list[str] = []
            for part in _pack(parts, count, limit):
                pieces.extend(split_long(part, count, limit))
            return pieces
    return _hard_split(text, count, limit)


def _pack(parts: list[str], count: Callable[[str], int], limit: int) -> list[str]:
    """Greedily join neighbouring parts with spaces while the result stays within ``limit``."""
    packed: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if current and count(candidate) > limit:
            packed.append(current)
            current = part
        else:
            current = candidate
    if current:
        packed.append(current)
    return packed


def _hard_split(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """Last resort for text with no spaces: the longest prefix that fits, found by bisection."""
    pieces = []
    rest = text
    while rest:
        if count(rest) <= limit:
            pieces.append(rest)
            break
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if count(rest[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        pieces.append(rest[:low])
        rest = rest[low:]
    return pieces
