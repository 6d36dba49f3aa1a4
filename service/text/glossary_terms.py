"""Glossary enforcement on text: no constrained decoding exists in either backend, so do what works.

MarianMT copies Latin-script names it does not know, so the German spelling of a Russian or
Ukrainian name (``Lawrow``) comes out unchanged in the English.  The steps, in pipeline order:

1. :func:`apply_to_source` writes the target form into the German sentence before translation
   (``Lawrow`` -> ``Lavrov``), whole words only, longest entry first, the case of the occurrence
   kept, and the German genitive made English (``Lawrows`` -> ``Lavrov's``).  A term inside a
   compound (``Lawrowsche``) is left alone unless the compound is itself an entry; a hyphen is a
   word boundary (``Selenskyj-Regierung`` -> ``Zelensky-Regierung``).
2. :func:`check_translation` says which required target terms a translated sentence lacks;
   :func:`choose_hypothesis` then takes the best n-best hypothesis that has them.
3. :func:`repair_output` replaces German forms that survived into English text; the summary gets
   the same treatment (:func:`check_summary`), but a term it lost is not an error.

Beside step 2, :func:`wrong_spellings` lists the German forms of entries (with the genitives the
matcher knows) that the translation engines are told never to generate where the entries'
target forms are required.

Case-insensitive matching uses Python's simple case folding (``str.lower``), as ``re`` does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from service.text.glossary import GlossaryEntry

if TYPE_CHECKING:
    from service.text.glossary import Glossary

__all__ = [
    "HypothesisChoice",
    "Repair",
    "SourceApplication",
    "TermHit",
    "TermMatcher",
    "apply_to_source",
    "check_summary",
    "check_translation",
    "choose_hypothesis",
    "repair_output",
    "wrong_spellings",
]

#: German genitive endings of names: ``Lawrows``, ``Lawrow's`` (common, though not standard),
#: and the bare apostrophe of names ending in a sibilant (``Klaus'``).
_GENITIVE = r"(?P<suffix>['’]s|s|['’])?"
#: Names ending in these sounds take the bare apostrophe in the German genitive.
_SIBILANT_ENDINGS = ("s", "ss", "ß", "x", "z", "tz", "ce")
#: Where a term may start: a word (taken whole, for the index) or a single symbol character.
_START = re.compile(r"(?<!\w)\w+|[^\w\s]")
#: ``die Rede des Bundeskanzlers``: after an article the genitive is "of the X", not "X's".
_GENITIVE_ARTICLE = re.compile(r"(?<!\w)(?:des|eines|dieses|jenes)\s+$", re.IGNORECASE)
#: How far before a term the article is looked for (``dieses`` and a few blanks).
_ARTICLE_WINDOW = 16


@dataclass(frozen=True, slots=True)
class TermHit:
    """One occurrence of a glossary source form and what replaced it.

    ``start``/``end`` are offsets in the text given, ``new_start``/``new_end`` in the text
    returned; ``found`` is the occurrence as written (with any genitive ending).
    """

    entry: GlossaryEntry
    found: str
    replacement: str
    start: int
    end: int
    new_start: int
    new_end: int


@dataclass(frozen=True, slots=True)
class SourceApplication:
    """A German sentence with the glossary applied, and where."""

    text: str
    hits: tuple[TermHit, ...]

    @property
    def entries(self) -> tuple[GlossaryEntry, ...]:
        """The distinct entries applied, in order of first occurrence."""
        return tuple(dict.fromkeys(hit.entry for hit in self.hits))

    @property
    def required_terms(self) -> tuple[str, ...]:
        """The target terms the translation must contain."""
        return tuple(dict.fromkeys(hit.entry.target for hit in self.hits))


@dataclass(frozen=True, slots=True)
class Repair:
    """English text after German source forms in it were replaced, and which were."""

    text: str
    hits: tuple[TermHit, ...]


@dataclass(frozen=True, slots=True)
class HypothesisChoice:
    """The hypothesis taken (index into the n-best list, best first) and what it still lacks."""

    index: int
    text: str
    missing: tuple[str, ...]


class TermMatcher:
    """Finds a glossary's source terms in text, longest entry first, in time linear in the text.

    One regular expression with an alternative per entry would try all 10,000 entries at every
    word of an article; instead the entries are indexed by their first word (lower case), and
    at each word of the text only the entries starting with that word (or with that word less a
    genitive ``s``) are tried, longest first (``Wladimir Klitschko`` before ``Wladimir``).  An
    entry that starts with a symbol is indexed by that character.  Words in a multi-word term
    match any run of whitespace, since articles wrap lines anywhere.
    """

    def __init__(self, entries: Sequence[GlossaryEntry]) -> None:
        self._exact: dict[str, GlossaryEntry] = {}
        self._folded: dict[str, GlossaryEntry] = {}
        for entry in entries:
            key = _spaced(entry.source)
            self._exact.setdefault(key, entry)
            self._folded.setdefault(key.lower(), entry)
        index: dict[str, list[str]] = {}
        for term in self._folded:
            index.setdefault(_index_key(term), []).append(term)
        self._index = {
            key: sorted(terms, key=lambda term: (-len(term), term)) for key, terms in index.items()
        }
        self._patterns: dict[str, re.Pattern[str]] = {}

    def _pattern(self, term: str) -> re.Pattern[str]:
        pattern = self._patterns.get(term)
        if pattern is None:
            pattern = re.compile(
                rf"(?<!\w)(?P<term>{_term_pattern(term)}){_GENITIVE}(?!\w)", re.IGNORECASE
            )
            self._patterns[term] = pattern
        return pattern

    def _matches(self, text: str) -> Iterator[re.Match[str]]:
        """Non-overlapping matches, left to right, the longest entry at each position."""
        position = 0
        for start in _START.finditer(text):
            at = start.start()
            if at < position:
                continue
            word = start.group().lower()
            keys = [word, word[:-1]] if len(word) > 1 and word.endswith("s") else [word]
            for key in keys:
                found = next(
                    (
                        match
                        for term in self._index.get(key, ())
                        if (match := self._pattern(term).match(text, at)) is not None
                    ),
                    None,
                )
                if found is not None:
                    yield found
                    position = found.end()
                    break

    def replace(self, text: str, *, german: bool) -> tuple[str, tuple[TermHit, ...]]:
        """``text`` with every source form replaced by its target form, and the hits.

        ``german`` says the text is German, so ``des Lawrows`` reads "of the" (no ``'s``);
        in English output every genitive ending becomes ``'s``.
        """
        parts: list[str] = []
        hits: list[TermHit] = []
        position = 0
        new_length = 0
        for match in self._matches(text):
            found_term = match.group("term")
            entry = self._exact.get(_spaced(found_term)) or self._folded.get(
                _spaced(found_term).lower()
            )
            if entry is None:  # a case folding re knows and str.lower does not: leave it
                continue
            suffix = match.group("suffix") or ""
            end = match.end()
            if suffix in ("'", "’") and not entry.source.lower().endswith(_SIBILANT_ENDINGS):
                suffix, end = "", match.end("term")  # a closing quote, not a genitive
            found = text[match.start() : end]
            replacement = _keep_case(found_term, entry.source, entry.target)
            if suffix and not (german and _after_article(text, match.start())):
                replacement += "'" if replacement.lower().endswith("s") else "'s"
            if found_term.isupper() and not entry.source.isupper():
                replacement = replacement.upper()  # LAWROWS -> LAVROV'S, the ending too
            between = text[position : match.start()]
            parts.append(between)
            new_start = new_length + len(between)
            parts.append(replacement)
            new_length = new_start + len(replacement)
            hits.append(
                TermHit(entry, found, replacement, match.start(), end, new_start, new_length)
            )
            position = end
        parts.append(text[position:])
        return "".join(parts), tuple(hits)


def apply_to_source(text: str, glossary: Glossary) -> SourceApplication:
    """Replace German source forms with their target forms before translation (step 1)."""
    new_text, hits = glossary.matcher.replace(text, german=True)
    return SourceApplication(new_text, hits)


def check_translation(sentence_en: str, required_terms: Sequence[str]) -> tuple[str, ...]:
    """The required target terms that ``sentence_en`` lacks (whole words, any case), in order.

    ``Lavrov`` is present in ``Lavrov's``; ``Zelensky`` is not present in ``Zelenskyy``.
    """
    return tuple(
        term
        for term in dict.fromkeys(required_terms)
        if _presence_pattern(term).search(sentence_en) is None
    )


def choose_hypothesis(hypotheses: Sequence[str], required_terms: Sequence[str]) -> HypothesisChoice:
    """The best hypothesis with the most required terms (ties go to the better-ranked one)."""
    if not hypotheses:
        raise ValueError("choose_hypothesis needs at least one hypothesis")
    best: HypothesisChoice | None = None
    for index, text in enumerate(hypotheses):
        missing = check_translation(text, required_terms)
        if best is None or len(missing) < len(best.missing):
            best = HypothesisChoice(index, text, missing)
            if not missing:
                break
    assert best is not None
    return best


def repair_output(text_en: str, glossary: Glossary) -> Repair:
    """Replace German source forms that survived into the English (step 2's last resort).

    Entries whose target equals the source (kept as written) change nothing and are not hits.
    """
    new_text, hits = glossary.matcher.replace(text_en, german=False)
    return Repair(new_text, tuple(hit for hit in hits if hit.found != hit.replacement))


def check_summary(summary_en: str, glossary: Glossary) -> Repair:
    """A source form left in the summary is replaced by its target form (step 4).

    A target term the summary dropped is not checked: a summary leaves people out by design.
    """
    return repair_output(summary_en, glossary)


def wrong_spellings(entries: Sequence[GlossaryEntry]) -> tuple[str, ...]:
    """The spellings of ``entries`` that English output must not contain, in a stable order.

    For each entry its German source form (``Lawrow``), capitalized as at a sentence start, and
    the genitives the matcher rewrites (``Lawrows``, ``Lawrow's``, ``Lawrow’s``; ``Klaus'`` for
    a sibilant ending).  A source form that is a word of any of these entries' targets is left
    out with all its endings (its English genitive is right): an entry kept as written
    (``Bundestag``, ``Wladimir Klitschko``) forbids nothing, and does not let another entry that
    rewrites ``Wladimir`` to ``Vladimir`` forbid the ``Wladimir`` it needs.
    """
    targets = [entry.target for entry in entries]
    forms: dict[str, None] = {}
    for entry in entries:
        source = _spaced(entry.source)
        for base in dict.fromkeys([source, source[:1].upper() + source[1:]]):
            if any(_presence_pattern(base).search(target) for target in targets):
                continue
            endings = ["", "s", "'s", "’s"]
            if base.lower().endswith(_SIBILANT_ENDINGS):
                endings += ["'", "’"]
            forms.update(dict.fromkeys(base + ending for ending in endings))
    return tuple(forms)


def _after_article(text: str, start: int) -> bool:
    """Whether a genitive article (``des``, ``eines``...) stands right before ``start``."""
    window_start = max(0, start - _ARTICLE_WINDOW)
    return _GENITIVE_ARTICLE.search(text, window_start, start) is not None


def _index_key(term: str) -> str:
    """The first word of ``term`` in lower case, or its first character if that is a symbol."""
    first = _START.match(term)
    return first.group().lower() if first is not None else term[:1].lower()


def _spaced(term: str) -> str:
    return " ".join(term.split())


def _term_pattern(term: str) -> str:
    return r"\s+".join(re.escape(word) for word in term.split(" "))


@lru_cache(maxsize=4096)
def _presence_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){_term_pattern(_spaced(term))}(?!\w)", re.IGNORECASE)


def _keep_case(found: str, source: str, target: str) -> str:
    """``target`` in the case ``found`` has relative to ``source``.

    As written: the target as written.  All capitals (``LAWROW``): capitals.  All lower case
    where the source is not: lower case.  Capitalized where the source is not (a sentence
    start): the target capitalized.
    """
    if found == source or _spaced(found) == _spaced(source):
        return target
    if found.isupper() and not source.isupper():
        return target.upper()
    if found.islower() and not source.islower():
        return target.lower()
    if found[:1].isupper() and not source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target
