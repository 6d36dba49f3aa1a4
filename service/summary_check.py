"""A summary with its facts checked, regenerated once when the style asks for strictness.

The pipeline makes the summary; this module decides what happens next.  Under
``fact_check = "flag"`` the summary's facts are checked and reported.  Under ``"retry"`` a summary
with an unsupported fact is generated once more with other decoding (:func:`retry_preset`), and
the attempt with fewer unsupported facts is kept (the first on a tie: a retry that is no better
is not worth the change).  Two attempts at most, so a strict style at most doubles the summary
stage's time and never loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from service.presets import Preset
from service.schemas import FactCheck
from service.text.factcheck import check_summary, flagged

if TYPE_CHECKING:
    from service.nlp.summarize import SummaryOutcome

__all__ = ["CheckedSummary", "retry_preset", "summarize_checked"]

Summarizer = Callable[[Preset], Awaitable["SummaryOutcome"]]
"""Makes one summary of the article with the given preset."""


@dataclass(frozen=True, slots=True)
class CheckedSummary:
    """The kept summary, its fact checks, how many attempts were made and which one was kept."""

    outcome: SummaryOutcome
    checks: list[FactCheck]
    attempts: int
    kept: int

    @property
    def flags(self) -> list[str]:
        """The unsupported facts, as ``Result.summary_flags`` lists them."""
        return flagged(self.checks)


def retry_preset(preset: Preset) -> Preset:
    """The preset for a second attempt: twice the beams (at most 16) and a bigram repeat block.

    A wider beam search favours sequences the model is surer of, and those copy figures and
    names from the input more often than they invent them; blocking repeated bigrams breaks the
    loops in which a model garbles a name.  The preset's generation settings are the decoding
    knobs both backends (transformers and CTranslate2) share, so the retry changes only those.
    """
    generation = preset.generation
    stricter = msgspec.structs.replace(
        generation,
        num_beams=min(16, max(2, generation.num_beams * 2)),
        no_repeat_ngram_size=1 if generation.no_repeat_ngram_size == 1 else 2,
    )
    return msgspec.structs.replace(preset, generation=stricter)


async def summarize_checked(
    summarize: Summarizer,
    english: Sequence[str],
    german: Sequence[str],
    preset: Preset,
    *,
    names: Mapping[str, str] | None = None,
) -> CheckedSummary:
    """Summarize, check the summary's facts against the article, and retry once if the style asks.

    ``english[i]`` is the translation of ``german[i]``; ``names`` maps German name forms to
    English ones (glossary targets) for the name checks.
    """
    attempts: list[CheckedSummary] = []
    for number, attempt_preset in enumerate((preset, retry_preset(preset)), start=1):
        outcome = await summarize(attempt_preset)
        checks = await asyncio.to_thread(check_summary, outcome.text, english, german, names=names)
        attempts.append(CheckedSummary(outcome, checks, attempts=number, kept=number))
        if preset.fact_check != "retry" or not flagged(checks):
            break
    best = min(attempts, key=lambda attempt: (len(attempt.flags), attempt.kept))
    return CheckedSummary(best.outcome, best.checks, attempts=len(attempts), kept=best.kept)
