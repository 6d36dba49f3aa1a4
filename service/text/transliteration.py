"""Spot German transliterations of Russian and Ukrainian names, for an editor's glossary.

German writes Cyrillic names by German sound rules: ``w`` where English writes ``v``
(``Lawrow``), ``sch``/``tsch``/``schtsch`` for ``sh``/``ch``/``shch`` (``Uschakow``), ``j`` for
``y`` (``Rjabkow``, ``Selenskyj``), ``z`` for ``ts`` (``Donezk``).  ``python -m service glossary
suggest`` lists the capitalized words of some articles that show these marks, with how often
they occur and a first guess at the English form, as DeepL TSV an editor corrects and uploads.
It is a list for a person to read: it never changes a translation.

The marks are chosen to be rare in German's own words: endings such as ``-ow``, ``-ew``,
``-owsk``, ``-skyj``, ``-enko``, ``-itsch``; ``j`` after a consonant; an initial ``Wl``;
``schtsch``.  ``sch`` and ``tsch`` alone are everywhere in German (``Schritt``,
``Deutschland``), so they are no mark by themselves; the English guess respells them.
A genitive ``s`` is folded into its name (``Lawrows`` counts as ``Lawrow``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Candidate", "english_guess", "find_candidates", "to_tsv"]

#: A capitalized word, whole (``Selenskyj`` in ``Selenskyj-Regierung``; not ``Ukraine`` in
#: ``ukrainisch``).
_WORD = re.compile(r"(?<!\w)[A-ZÄÖÜ][a-zäöüß]+(?!\w)")

#: (what an editor reads, pattern over the lower-cased word).
_MARKS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        ("ending -ow/-ew", r"(?:ow|ew|owa|ewa)$"),
        ("ending -owsk/-ewsk", r"(?:owsk|ewsk|jansk)$"),
        ("ending -ski/-skyj", r"(?:skij|skyj|ski|zkyj|skaja|yj|ij)$"),
        ("ending -enko/-juk/-tschuk", r"(?:enko|juk|tschuk)$"),
        ("ending -itsch", r"(?:owitsch|ewitsch|itsch)$"),
        ("ending -iw", r"iw$"),
        ("ending -ymyr", r"ymyr$"),
        ("ending -ej/-oj", r"(?:ej|oj)$"),
        ("j after a consonant", r"[cdgklmprstvwz]j[aeiouy]"),
        ("initial Wl/Wj/Wy", r"^w[ljy]"),
        ("schtsch/schsch", r"scht?sch"),
    )
)
#: English loanwords that would otherwise match (``Interview``, ``Show``).
_LOANWORDS = frozenset({"interview", "review", "preview", "show", "know", "window", "flow"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """One word that looks like a transliteration: how often, why, and an English guess."""

    word: str
    count: int
    reasons: tuple[str, ...]
    guess: str


def find_candidates(texts: Iterable[str]) -> list[Candidate]:
    """The transliteration-looking words of ``texts``, most frequent first (then by word)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_WORD.findall(text))
    candidates: dict[str, tuple[int, tuple[str, ...]]] = {}
    for word, count in counts.items():
        base = _base_form(word, counts)
        reasons = _reasons(base)
        if not reasons:
            continue
        previous, _ = candidates.get(base, (0, ()))
        candidates[base] = (previous + count, reasons)
    ordered = sorted(candidates.items(), key=lambda item: (-item[1][0], item[0]))
    return [
        Candidate(word, count, reasons, english_guess(word)) for word, (count, reasons) in ordered
    ]


def _base_form(word: str, counts: Counter[str]) -> str:
    """``Lawrows`` -> ``Lawrow`` when the bare form occurs or is itself a candidate."""
    if len(word) > 3 and word.endswith("s"):
        stem = word[:-1]
        if stem in counts or _reasons(stem):
            return stem
    return word


def _reasons(word: str) -> tuple[str, ...]:
    lower = word.lower()
    if lower in _LOANWORDS or len(lower) < 4:
        return ()
    return tuple(reason for reason, pattern in _MARKS if pattern.search(lower))


#: German spelling -> English spelling, in one pass, the longest group first at each position
#: (so the ``ch`` of ``tsch`` is not respelled again).
_RESPELL = (
    ("schtsch", "shch"),
    ("tsch", "ch"),
    ("sch", "sh"),
    ("ch", "kh"),
    ("ss", "s"),
    ("yj", "y"),
    ("ij", "iy"),
    ("ej", "ei"),
    ("w", "v"),
    ("z", "ts"),
    ("j", "y"),
)


_RESPELL_MAP = dict(_RESPELL)
_RESPELLING = re.compile("|".join(re.escape(german) for german, _ in _RESPELL))


def english_guess(word: str) -> str:
    """A first guess at the English spelling (``Uschakow`` -> ``Ushakov``); an editor checks.

    German doubles ``s`` between vowels to keep it voiceless (``Gerassimow``); English does not.
    """
    guess = _RESPELLING.sub(lambda match: _RESPELL_MAP[match.group()], word.lower())
    return guess[:1].upper() + guess[1:]


def to_tsv(candidates: Iterable[Candidate]) -> str:
    """DeepL TSV (``German<TAB>English guess``), ready to correct and upload."""
    return "".join(f"{c.word}\t{c.guess}\n" for c in candidates)
