"""What a glossary did to one article: per sentence and in total, nothing silently skipped.

Every entry that touched a sentence ends in exactly one of three lists of that sentence:

- ``applied``: written into the German before translation, and its target is in the English;
- ``fallback``: its target is in the English only thanks to a fallback, ``nbest`` (a lower-ranked
  hypothesis had it) or ``repair`` (the German form survived into the English and was replaced
  there; this also covers German forms the source step did not see, such as one the model
  produced from a compound);
- ``missed``: applied to the German, but its target is not in the English after all fallbacks.

:func:`settle_sentence` runs steps 2 and 3 of ``glossary_terms`` for one sentence and fills the
report; :func:`article_report` sums the sentences and the summary check up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import msgspec

from service.text.glossary import Glossary, GlossaryEntry
from service.text.glossary_terms import (
    SourceApplication,
    check_summary,
    check_translation,
    choose_hypothesis,
    repair_output,
)

__all__ = [
    "FallbackTerm",
    "GlossaryReport",
    "SentenceGlossaryReport",
    "SettledSentence",
    "Term",
    "article_report",
    "needs_fallback",
    "settle_sentence",
]


class Term(msgspec.Struct, frozen=True):
    """One glossary entry, as reports name it."""

    source: str
    target: str


class FallbackTerm(msgspec.Struct, frozen=True):
    """An entry whose target reached the English through a fallback."""

    source: str
    target: str
    method: Literal["nbest", "repair"]


class SentenceGlossaryReport(msgspec.Struct, frozen=True):
    """The glossary's effect on one sentence (a field of that sentence in ``alignment``)."""

    applied: tuple[Term, ...] = ()
    fallback: tuple[FallbackTerm, ...] = ()
    missed: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.applied or self.fallback or self.missed)


class SettledSentence(msgspec.Struct, frozen=True):
    """The English sentence to keep, which hypothesis it came from, and the report."""

    text: str
    hypothesis: int
    report: SentenceGlossaryReport


class GlossaryReport(msgspec.Struct, frozen=True):
    """The glossary's effect on a whole article (a field of the result)."""

    glossary_id: str
    digest: str
    applied: int
    fallback: int
    missed: int
    missed_terms: tuple[Term, ...]
    summary_replaced: tuple[Term, ...]


def needs_fallback(application: SourceApplication, translation: str) -> bool:
    """Whether the first translation lacks a required term (then ask for n-best hypotheses)."""
    return bool(check_translation(translation, application.required_terms))


def settle_sentence(
    application: SourceApplication,
    translation: str,
    glossary: Glossary,
    nbest: Sequence[str] = (),
) -> SettledSentence:
    """Check one translated sentence and apply the fallbacks: n-best, then repair.

    ``translation`` is the model's best output for ``application.text``; ``nbest`` its
    hypotheses best first (empty when none were asked for, because nothing was missing).
    """
    required = application.entries
    targets = [entry.target for entry in required]
    text, hypothesis = translation, 0
    missing = set(check_translation(translation, targets))
    from_nbest: set[str] = set()
    if missing and nbest:
        choice = choose_hypothesis(nbest, targets)
        if len(choice.missing) < len(missing):
            from_nbest = missing - set(choice.missing)
            text, hypothesis, missing = choice.text, choice.index, set(choice.missing)
    repair = repair_output(text, glossary)
    if repair.hits:
        text = repair.text
        still = set(check_translation(text, targets))
        repaired_targets = missing - still
        missing = still
    else:
        repaired_targets = set()
    applied: list[Term] = []
    fallback: list[FallbackTerm] = []
    missed: list[Term] = []
    for entry in required:
        term = Term(entry.source, entry.target)
        if entry.target in missing:
            missed.append(term)
        elif entry.target in from_nbest:
            fallback.append(FallbackTerm(entry.source, entry.target, "nbest"))
        elif entry.target in repaired_targets:
            fallback.append(FallbackTerm(entry.source, entry.target, "repair"))
        else:
            applied.append(term)
    seen = set(required)
    for hit in repair.hits:
        if hit.entry not in seen:  # a German form the source step never wrote: repaired only
            seen.add(hit.entry)
            fallback.append(FallbackTerm(hit.entry.source, hit.entry.target, "repair"))
    report = SentenceGlossaryReport(tuple(applied), tuple(fallback), tuple(missed))
    return SettledSentence(text, hypothesis, report)


def article_report(
    glossary: Glossary,
    sentences: Sequence[SentenceGlossaryReport],
    summary_en: str,
) -> tuple[str, GlossaryReport]:
    """The summary with German forms replaced, and the article's totals."""
    summary = check_summary(summary_en, glossary)
    missed = dict.fromkeys(term for report in sentences for term in report.missed)
    replaced = dict.fromkeys(_term(hit.entry) for hit in summary.hits)
    report = GlossaryReport(
        glossary_id=glossary.glossary_id,
        digest=glossary.digest,
        applied=sum(len(report.applied) for report in sentences),
        fallback=sum(len(report.fallback) for report in sentences),
        missed=sum(len(report.missed) for report in sentences),
        missed_terms=tuple(missed),
        summary_replaced=tuple(replaced),
    )
    return summary.text, report


def _term(entry: GlossaryEntry) -> Term:
    return Term(entry.source, entry.target)
