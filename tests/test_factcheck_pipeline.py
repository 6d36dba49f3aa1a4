"""The fact check through the real pipeline on the tiny models, including the retry style.

The tiny models translate and summarize into gibberish, so their summaries carry names the
article does not have: flags must appear, and each one must really be missing from the
translation (and each supported fact really present), judged here by plain word search rather
than by the checker's own matching.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest

from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ForbiddenForms, Generation, ModelRef, TokenSequences
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.presets import PresetRegistry
from service.schemas import FactCheck, Result
from service.settings import ROOT, Settings
from service.summary_check import retry_preset
from service.text.glossary import Glossary

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


# --- the glossary's summary repair, then the checks ---------------------------------------------


class FixedTranslator:
    """A stand-in translation model: every sentence comes out as ``english`` (the article here
    is one sentence), so the test knows the translation the summary is checked against."""

    ref = ModelRef("fixed-translation", "1", "test", "none")
    max_source_tokens = 64

    def __init__(self, english: str) -> None:
        self.english = english

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        return [self.english for _ in texts]

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        return [[self.english] * n for _ in texts]

    def forbidden_sequences(self, forbidden: ForbiddenForms) -> TokenSequences:
        return frozenset(tuple(ord(c) for c in form) for form in forbidden.forms)


class FixedSummarizer:
    """A stand-in summarization model that writes ``summary`` whatever it is given."""

    ref = ModelRef("fixed-summary", "1", "test", "none")
    max_input_tokens = 512
    follows_instructions = False

    def __init__(self, summary: str) -> None:
        self.summary = summary

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        return [self.summary for _ in texts]


async def test_the_checks_judge_the_summary_the_glossary_repaired() -> None:
    """A summarizer that writes a German form the glossary replaces (``Kyjiw`` -> ``Kyiv``): the
    checks are made on the returned summary, so every span points at its own text there and the
    place the translation names is supported, not flagged under its German spelling."""
    terms = Glossary.create(
        name="t", source_lang="DE", target_lang="EN", entries="Lawrow\tLavrov\nKyjiw\tKyiv"
    )
    german = "Lawrow sprach am 22. Januar in Kyjiw mit Reportern."
    english = "Lavrov spoke to reporters in Kyiv on 22 January."
    pipeline = Pipeline(
        InferenceScheduler(FixedTranslator(english), token_budget=256, max_sentences=8),
        FixedSummarizer("Lawrow spoke in Kyjiw on 22 January."),
        PresetRegistry.from_directory(ROOT / "prompts"),
    )
    try:
        result = await pipeline.run(ArticleRequest(text=german, glossary=terms))
    finally:
        pipeline.close()
    assert result.summary == "Lavrov spoke in Kyiv on 22 January."
    assert result.checks
    for check in result.checks:
        assert result.summary[check.start : check.end] == check.text
    assert {check.text for check in result.checks} >= {"Lavrov", "Kyiv"}
    assert result.summary_flags == []
    assert result.glossary is not None
    assert {term.source for term in result.glossary.summary_replaced} == {"Lawrow", "Kyjiw"}
