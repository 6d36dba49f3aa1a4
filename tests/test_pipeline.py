"""The pipeline on the tiny models: coverage, long input, map-reduce, styles, structure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from service.errors import EmptyTextError, NotGermanError, UnknownStyleError
from service.nlp.engine import TranslationEngine
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.settings import Settings
from service.text.segment import split_sentences


class RecordingEngine:
    """Wraps the real translation engine and remembers the longest input it was given."""

    def __init__(self, inner: TranslationEngine) -> None:
        self.inner = inner
        self.ref = inner.ref
        self.max_source_tokens = inner.max_source_tokens
        self.longest_input = 0
        self.texts_seen = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        self.longest_input = max([self.longest_input, *self.inner.count_tokens(texts)])
        self.texts_seen += len(texts)
        return self.inner.translate_batch(texts)


@pytest.fixture(scope="module")
def pipeline(tiny_settings: Settings) -> Iterator[Pipeline]:
    built = build_pipeline(tiny_settings)
    built.scheduler.engine = RecordingEngine(built.scheduler.engine)
    yield built
    built.close()


@pytest.mark.parametrize(
    "seed", sorted(p.name for p in (Path(__file__).parent.parent / "seeds").glob("*.txt"))
)
async def test_every_seed_sentence_is_translated_once_in_order(
    pipeline: Pipeline, seed_texts: dict[str, str], seed: str
) -> None:
    """Each seed comes back with one English sentence per German sentence, in order."""
    text = seed_texts[seed]
    result = await pipeline.run(ArticleRequest(text=text, title="Eine Überschrift"))
    german = [s.text for s in split_sentences(text)]
    assert result.sentences_in == len(german) > 5
    assert result.sentences_translated == result.sentences_in
    assert [pair.de for pair in result.alignment] == german
    assert result.source_language == "de"
    assert result.title_en is not None
    paragraphs_in = len({s.paragraph for s in split_sentences(text)})
    assert len(result.translation.split("\n\n")) == paragraphs_in
    assert set(result.timings_ms) >= {"segment_ms", "translate_ms", "summarize_ms", "total_ms"}
    assert result.models["translation"].backend == "transformers"
    assert result.models["translation"].revision.startswith("local-")


@pytest.mark.slow
async def test_long_article_is_fully_translated_and_map_reduced(
    pipeline: Pipeline, long_article: str
) -> None:
    """A 30,000+ character article loses no sentence and its summary covers every chunk."""
    assert len(long_article) > 30_000
    result = await pipeline.run(ArticleRequest(text=long_article))
    assert result.sentences_in == len(split_sentences(long_article))
    assert result.sentences_translated == result.sentences_in
    # The tiny summarizer reads 256 tokens: the article needs many chunks and several rounds.
    assert result.summary_chunks > 10
    assert result.summary_rounds >= 2
    assert result.summary


async def test_over_long_sentence_is_split_not_truncated(pipeline: Pipeline) -> None:
    """An 800-token sentence is translated in pieces the model can read, none over its limit."""
    engine = pipeline.scheduler.engine
    clause = "der Kanzler sagte am Montag in Berlin, dass die Regierung handeln werde"
    sentence = ", ".join([clause] * 60) + "."
    tokens = engine.count_tokens([sentence])[0]
    assert tokens > 800
    engine.longest_input = 0
    result = await pipeline.run(ArticleRequest(text=sentence))
    assert result.sentences_in == result.sentences_translated == 1
    assert 0 < engine.longest_input <= engine.max_source_tokens
    assert result.alignment[0].de == sentence


async def test_word_longer_than_the_model_limit_is_hard_split(pipeline: Pipeline) -> None:
    """A 20,000-character 'word' with no spaces still goes through, in model-sized pieces."""
    engine = pipeline.scheduler.engine
    engine.longest_input = 0
    text = "Der Text lautet wie folgt.\n\n" + "Donaudampfschiff" * 1250
    result = await pipeline.run(ArticleRequest(text=text))
    assert result.sentences_translated == result.sentences_in
    assert engine.longest_input <= engine.max_source_tokens


@pytest.mark.parametrize("style", ["standard", "brief", "bullets", "headline"])
async def test_every_style_produces_a_summary(
    pipeline: Pipeline, seed_texts: dict[str, str], style: str
) -> None:
    """Each shipped preset runs end to end and shapes its output as it promises."""
    text = next(iter(seed_texts.values()))
    result = await pipeline.run(ArticleRequest(text=text, style=style))
    assert result.style == style
    assert result.summary.strip()
    if style == "bullets":
        assert all(line.startswith("- ") for line in result.summary.splitlines())
        assert len(result.summary.splitlines()) <= 5
    if style == "headline":
        assert "\n" not in result.summary


async def test_bad_inputs_raise_typed_errors(pipeline: Pipeline) -> None:
    """Empty text, unknown styles and non-German text fail with the error the API maps."""
    with pytest.raises(EmptyTextError):
        await pipeline.run(ArticleRequest(text="  \n\n \t "))
    with pytest.raises(UnknownStyleError) as unknown:
        await pipeline.run(ArticleRequest(text="Ein Satz.", style="poem"))
    assert "standard" in str(unknown.value)
    english = (
        "The government announced on Monday that it would raise taxes on tobacco. "
        "Critics said the plan would hurt small shops across the country."
    )
    with pytest.raises(NotGermanError) as not_german:
        await pipeline.run(ArticleRequest(text=english))
    assert not_german.value.detected == "en"
    allowed = await pipeline.run(ArticleRequest(text=english, allow_non_german=True))
    assert allowed.source_language == "en"


async def test_concurrent_articles_share_translation_batches(
    pipeline: Pipeline, seed_texts: dict[str, str]
) -> None:
    """Ten short articles at once cost far fewer batches than ten articles one by one."""
    texts = ["\n".join(t.splitlines()[:8]) for t in seed_texts.values()] * 2
    before = pipeline.scheduler.batches_run
    for text in texts:
        await pipeline.run(ArticleRequest(text=text))
    sequential = pipeline.scheduler.batches_run - before
    before = pipeline.scheduler.batches_run
    results = await asyncio.gather(*(pipeline.run(ArticleRequest(text=t)) for t in texts))
    concurrent = pipeline.scheduler.batches_run - before
    assert all(r.sentences_translated == r.sentences_in for r in results)
    assert concurrent < sequential / 2
