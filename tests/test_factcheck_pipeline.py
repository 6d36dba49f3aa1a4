"""The fact check through the real pipeline on the tiny models, including the retry style.

The tiny models translate and summarize into gibberish, so their summaries carry names the
article does not have: flags must appear, and each one must really be missing from the
translation (and each supported fact really present), judged here by plain word search rather
than by the checker's own matching.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.presets import PresetRegistry
from service.schemas import FactCheck, Result
from service.settings import Settings
from service.summary_check import retry_preset

SEEDS = sorted(p.name for p in (Path(__file__).parent.parent / "seeds").glob("*.txt"))[:2]


@pytest.fixture(scope="module")
def pipeline(tiny_settings: Settings) -> Iterator[Pipeline]:
    """The tiny-model pipeline with an extra "strict" style: standard, but fact_check = retry."""
    built = build_pipeline(tiny_settings)
    shipped = {name: built.presets.get(name) for name in built.presets.names}
    strict = msgspec.structs.replace(shipped["standard"], fact_check="retry", name="strict")
    built.presets = PresetRegistry({**shipped, "strict": strict})
    yield built
    built.close()


def words(text: str) -> set[str]:
    """Lowercased letter runs of ``text``, split at everything else."""
    return {w.lower() for w in re.findall(r"[^\W\d_]+", text)}


def name_words(check: FactCheck) -> set[str]:
    """The capitalized words of a name span, lowercased."""
    return {w.lower() for w in re.findall(r"[^\W\d_]+", check.text) if w[:1].isupper()}


def assert_checks_are_honest(result: Result) -> None:
    """Each flagged name is absent from every sentence; each supported fact is in its sentence."""
    english = [pair.en for pair in result.alignment]
    german = [pair.de for pair in result.alignment]
    for check in result.checks:
        assert result.summary[check.start : check.end] == check.text
        if check.supported:
            assert check.sentence is not None
            side = english if check.found_in == "translation" else german
            sentence = side[check.sentence]
            if check.kind == "name":
                assert name_words(check) <= words(sentence), (check, sentence)
            else:
                assert re.search(r"\d|[^\W\d_]", sentence), (check, sentence)
        else:
            assert check.sentence is None
            assert check.text in result.summary_flags
            if check.kind == "name":
                assert not any(name_words(check) <= words(s) for s in english), check
            else:
                digits = re.sub(r"\D", "", check.text)
                if digits:
                    assert not any(digits in re.sub(r"\D", "", s) for s in english + german)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "style"),
    [(SEEDS[0], "standard"), (SEEDS[0], "bullets"), (SEEDS[1], "brief")],
    ids=["000-standard", "000-bullets", "001-brief"],
)
async def test_tiny_model_summaries_are_flagged_honestly(
    pipeline: Pipeline, seed_texts: dict[str, str], seed: str, style: str
) -> None:
    """Gibberish summaries get flags, and every flag and every support is true to the article."""
    result = await pipeline.run(ArticleRequest(text=seed_texts[seed], style=style))
    assert result.checks
    assert result.summary_flags
    assert result.summary_flags == [c.text for c in result.checks if not c.supported]
    assert (result.summary_attempts, result.summary_kept) == (1, 1)
    assert_checks_are_honest(result)


@pytest.mark.slow
async def test_retry_style_regenerates_once_and_keeps_the_better_summary(
    pipeline: Pipeline, seed_texts: dict[str, str]
) -> None:
    """Under fact_check = "retry" a flagged summary is made twice; the kept one has fewer flags."""
    text = seed_texts[SEEDS[0]]
    first = await pipeline.run(ArticleRequest(text=text, style="standard"))
    strict = await pipeline.run(ArticleRequest(text=text, style="strict"))
    assert first.summary_flags
    assert strict.summary_attempts == 2
    assert strict.summary_kept in (1, 2)
    assert len(strict.summary_flags) <= len(first.summary_flags)
    if strict.summary_kept == 1:
        assert strict.summary == first.summary
    else:
        assert len(strict.summary_flags) < len(first.summary_flags)
    assert_checks_are_honest(strict)


def test_retry_decodes_differently() -> None:
    """The retry preset doubles the beams (at most 16) and blocks repeated bigrams."""
    registry = PresetRegistry.from_directory(Path(__file__).parent.parent / "prompts")
    for preset in registry.all():
        retry = retry_preset(preset)
        assert retry.generation.num_beams == min(16, max(2, preset.generation.num_beams * 2))
        assert retry.generation.no_repeat_ngram_size == 2
        assert retry.generation != preset.generation
        assert (retry.instruction, retry.layout) == (preset.instruction, preset.layout)
