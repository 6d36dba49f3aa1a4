"""A glossary applied to one article, in the pipeline's order (kept out of ``pipeline.py``).

1. :meth:`GlossaryRun.start` writes the target forms into the German sentences; those rewritten
   sentences are what the model (and so the sentence cache) sees.  It also collects the wrong
   spellings of the entries the article uses (``forbidden``): the sentences that require a
   target form (``constrained``) are translated with those spellings forbidden to the decoder.
2. :meth:`GlossaryRun.settle` checks each translation for its required target terms; sentences
   that lack one are translated again as n-best lists (one call for all of them, under the same
   forbidden spellings), and the best hypothesis that has the terms is taken; German forms that
   survived are repaired last.
3. :meth:`GlossaryRun.finish` repairs German forms left in the summary and sums the report up.

Only the constrained sentences are forbidden anything, and all of them the same article-wide
set: a sentence without a glossary term keeps sharing batches and cached translations with
every other article, and the constrained ones of one article share their batches (a forbidden
set applies to a whole batch).  The n-best call is rare (only sentences whose best output lost
a name) and small; it runs on the scheduler's thread before its next batch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from service.nlp.engine import ForbiddenForms
from service.text.glossary import Glossary
from service.text.glossary_report import (
    GlossaryReport,
    SentenceGlossaryReport,
    article_report,
    needs_fallback,
    settle_sentence,
)
from service.text.glossary_terms import SourceApplication, apply_to_source, wrong_spellings

__all__ = ["NBEST", "GlossaryRun", "NbestTranslator"]

#: Hypotheses asked for when a sentence lacks a required term: Marian's usual beam is 4-6, and
#: a name that none of the best 8 carries is left to the repair step.
NBEST = 8

NbestTranslator = Callable[[list[str], int, ForbiddenForms | None], Awaitable[list[list[str]]]]
"""Translates texts to their ``n`` best hypotheses each, best first, none with a forbidden
spelling."""


@dataclass(slots=True)
class GlossaryRun:
    """One article's glossary state between the pipeline's steps."""

    glossary: Glossary
    applications: list[SourceApplication]
    #: The wrong spellings of the entries applied anywhere in the article; None: none.
    forbidden: ForbiddenForms | None = None

    @classmethod
    def start(cls, glossary: Glossary, texts: Sequence[str]) -> GlossaryRun:
        """Apply the glossary to the German texts (step 1) and collect what to forbid."""
        applications = [apply_to_source(text, glossary) for text in texts]
        entries = tuple(dict.fromkeys(e for app in applications for e in app.entries))
        forms = wrong_spellings(entries)
        forbidden = (
            ForbiddenForms(frozenset(forms), frozenset(e.target for e in entries))
            if forms
            else None
        )
        return cls(glossary, applications, forbidden)

    @property
    def constrained(self) -> list[bool]:
        """Per text: whether it requires a target form, so is translated under ``forbidden``."""
        return [self.forbidden is not None and bool(app.hits) for app in self.applications]

    @property
    def sources(self) -> list[str]:
        """The German texts with target forms written in: what goes to the model."""
        return [application.text for application in self.applications]

    @property
    def names(self) -> dict[str, str]:
        """German -> English name forms, for the summary's fact check."""
        return {entry.source: entry.target for entry in self.glossary.entries}

    async def settle(
        self, english: Sequence[str], nbest: NbestTranslator
    ) -> tuple[list[str], list[SentenceGlossaryReport]]:
        """Check and fall back, sentence by sentence (step 2): the English kept, and reports."""
        if len(english) != len(self.applications):
            raise ValueError(f"{len(english)} translations for {len(self.applications)} texts")
        return await self.settle_some(range(len(english)), english, nbest)

    async def settle_some(
        self, indices: Sequence[int], english: Sequence[str], nbest: NbestTranslator
    ) -> tuple[list[str], list[SentenceGlossaryReport]]:
        """Step 2 for the texts at ``indices`` only (``english`` holds their translations, in
        the same order): the pipeline settles each paragraph as soon as it is translated, so
        the paragraphs it shows early are the ones the result keeps."""
        pairs = [(self.applications[i], text) for i, text in zip(indices, english, strict=True)]
        lacking = [k for k, (app, text) in enumerate(pairs) if needs_fallback(app, text)]
        hypotheses: dict[int, list[str]] = {}
        if lacking:
            lists = await nbest([pairs[k][0].text for k in lacking], NBEST, self.forbidden)
            hypotheses = dict(zip(lacking, lists, strict=True))
        settled = [
            settle_sentence(app, text, self.glossary, hypotheses.get(k, ()))
            for k, (app, text) in enumerate(pairs)
        ]
        return [s.text for s in settled], [s.report for s in settled]

    def finish(
        self, summary: str, reports: Sequence[SentenceGlossaryReport]
    ) -> tuple[str, GlossaryReport]:
        """The summary with German forms replaced, and the article's totals (step 3)."""
        return article_report(self.glossary, reports, summary)


def merged_names(
    requested: Mapping[str, str] | None, run: GlossaryRun | None
) -> Mapping[str, str] | None:
    """The fact checker's name map: the request's, plus the glossary's."""
    if run is None:
        return requested
    return {**run.names, **(requested or {})}
