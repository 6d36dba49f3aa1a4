"""A vocabulary map for CTranslate2: score only likely output tokens, not all 58k of them.

Why: opus-mt-de-en's output layer is a 512 x 58,101 matrix, about 30 M multiply-adds per
generated token against about 22 M for the six decoder layers together, so more than half of
every decoding step is spent scoring words that cannot plausibly come next.  CTranslate2 can
restrict that layer to a per-batch candidate list (``translate_batch(..., use_vmap=True)``); it
reads the rules from ``vmap.txt`` in the converted model's directory when the model is loaded
(``models/sequence_to_sequence.cc``), one rule a line::

    <source n-gram> TAB <target token> <target token> ...

A line whose source side is empty lists tokens that are always candidates (ctranslate2 adds
the unknown, start and end tokens itself).  The batch's candidates are the union over every
source n-gram that matches.

What this module writes, with no alignment data to learn a real lexical table from:

* the ``frequent`` most frequent English tokens, always: the first pieces of the model's target
  SentencePiece model (a unigram model lists its pieces by score, that is by frequency), or the
  first entries of the target vocabulary when the tokenizer has no such model;
* every other target token as a candidate for itself on the source side: names, numbers and
  other words that a news translation copies through (opus-mt's vocabulary is shared, so a
  source piece is also a target piece).

So a batch scores ``frequent`` tokens plus those of its own source pieces, rounded up by
ctranslate2 to a multiple of 16.  A token outside that set can never be produced, which can
change a translation; that cost cannot be measured without the real weights, so the map is
opt-in (``KURZ_TRANSLATION_VOCABULARY_MAP``, the number of frequent tokens; 0: off).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "VMAP_FILE",
    "english_tokens_by_frequency",
    "vocabulary_map_text",
    "write_vocabulary_map",
]

#: The file name ctranslate2 looks for in a converted model's directory.
VMAP_FILE = "vmap.txt"


def english_tokens_by_frequency(tokenizer: Any, vocabulary: Sequence[str]) -> list[str]:
    """Target tokens, most frequent first: the target SentencePiece model's pieces by score,
    then the rest of the vocabulary in its own order (how opus-mt's vocabularies are built)."""
    processor = getattr(tokenizer, "spm_target", None)
    ranked: dict[str, None] = {}
    if processor is not None:
        known = set(vocabulary)
        size = int(processor.get_piece_size())
        pieces = [str(processor.id_to_piece(i)) for i in range(size)]
        for i in sorted(range(size), key=lambda i: -float(processor.get_score(i))):
            if pieces[i] in known:
                ranked[pieces[i]] = None
    ranked.update(dict.fromkeys(vocabulary))
    return list(ranked)


def vocabulary_map_text(
    vocabulary: Sequence[str], english_by_frequency: Iterable[str], *, frequent: int
) -> str:
    """The ``vmap.txt`` contents: ``frequent`` tokens always, every other token for itself."""
    usable = [t for t in vocabulary if _usable(t)]
    always: list[str] = []
    chosen: set[str] = set()
    known = set(usable)
    for token in english_by_frequency:
        if len(always) >= frequent:
            break
        if token in known and token not in chosen:
            always.append(token)
            chosen.add(token)
    lines = ["\t" + " ".join(always)]
    lines.extend(f"{token}\t{token}" for token in usable if token not in chosen)
    return "\n".join(lines) + "\n"


def write_vocabulary_map(directory: Path, text: str) -> Path:
    """Write ``vmap.txt`` into a converted model's directory, atomically, if it differs.

    Several workers share one converted copy; each writes the same text, and a rename means a
    loading worker sees either the old file or the new one, never half of one.
    """
    path = directory / VMAP_FILE
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    handle, staging = tempfile.mkstemp(prefix=".vmap-", suffix=".txt", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        Path(staging).replace(path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path


def _usable(token: str) -> bool:
    """Whether a token can be written into a rule (the format splits on spaces and tabs)."""
    return bool(token) and not any(c.isspace() for c in token)
