"""Which language an article is written in, judged sentence by sentence.

The translation model only understands German, so the worker has to refuse other languages and
be able to tell a German article with an English quote in it from an English article.  A single
verdict on the whole text cannot do that, so each sentence is classified on its own with
py3langid and the verdicts are weighted by the sentence's length: a long German paragraph
outweighs a short English photo credit.

Sentences of fewer than :data:`MIN_LETTERS` letters ("SHARE", "Lesen Sie auch", a byline) are
classified little better than at random, so they do not vote unless nothing longer is there.
Texts without any letter at all ("103", "-") carry no evidence and never vote.

Runs of combining marks are cut to :data:`MAX_COMBINING_RUN` before a text is classified:
py3langid NFC-normalizes its input, and CPython's canonical reordering is quadratic in the length
of one combining sequence (a single letter under 100,000 mixed accents costs seconds of CPU with
the GIL held, in the API process).  Unicode's stream-safe format allows 30; no language uses more.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.text.normalize import MAX_COMBINING_RUN, cut_combining_runs

__all__ = ["MAX_COMBINING_RUN", "MIN_LETTERS", "UNDETERMINED", "LanguageReport", "detect_language"]

#: Sentences with fewer letters than this only vote when no sentence has at least this many.
MIN_LETTERS = 20

#: ISO 639-2 code for "undetermined", reported when there is nothing to judge.
UNDETERMINED = "und"


@dataclass(frozen=True, slots=True)
class LanguageReport:
    """The verdict on a list of sentences."""

    language: str
    """ISO 639-1 code of the dominant language, weighted by sentence length in characters."""
    german_share: float
    """Share (0..1) of the voting sentences, weighted by length, that were classified as "de"."""


_identifier: Any = None
_identifier_lock = threading.Lock()


def _get_identifier() -> Any:
    """Return this module's own py3langid identifier, loading the model on first use.

    A private instance rather than py3langid's module-level one: ``py3langid.set_languages``
    restricts that shared instance in place, and another part of the process doing so must not
    change what this module detects.  Loading decompresses the model (a few hundred ms), so it is
    done once, under a lock so that two threads do not both load it.  Classification itself
    only reads the model, so it needs no lock.
    """
    global _identifier
    if _identifier is None:
        with _identifier_lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
    return _identifier


def _letters(text: str) -> int:
    return sum(char.isalpha() for char in text)


def detect_language(texts: Sequence[str]) -> LanguageReport:
    """Classify each text and report the dominant language and the German share.

    Each text's vote is weighted by its length in characters (stripped).  Texts with fewer than
    MIN_LETTERS letters are left out unless all texts are that short; texts without letters are
    always left out.  With nothing left to judge the report is ``LanguageReport("und", 0.0)``.
    Ties between languages go to the language seen first.
    """
    candidates = [(text.strip(), _letters(text)) for text in texts]
    voters = [text for text, letters in candidates if letters >= MIN_LETTERS]
    if not voters:
        voters = [text for text, letters in candidates if letters > 0]
    if not voters:
        return LanguageReport(UNDETERMINED, 0.0)
    identifier = _get_identifier()
    weights: Counter[str] = Counter()
    for text in voters:
        language: str = identifier.classify(cut_combining_runs(text))[0]
        weights[language] += len(text)
    total = sum(weights.values())
    dominant = max(weights, key=lambda code: weights[code])
    return LanguageReport(dominant, weights["de"] / total)


def rank_languages(text: str, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` likeliest languages of ``text`` (ISO 639-1), each with its probability (0..1),
    likeliest first; what LibreTranslate's ``/detect`` reports.  Empty for text without
    letters."""
    if _letters(text) == 0:
        return []
    ranked = sorted(
        _get_identifier().rank(cut_combining_runs(text.strip())), key=lambda pair: -pair[1]
    )
    top = float(ranked[0][1])
    weights = [(str(code), math.exp(float(score) - top)) for code, score in ranked]
    total = sum(weight for _, weight in weights)
    return [(code, weight / total) for code, weight in weights[:n]]
