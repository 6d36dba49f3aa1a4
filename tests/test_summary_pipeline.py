"""The summary's map step starts on complete chunks while the article is still translating."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence

import msgspec
import pytest

from service import summary_check
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ModelRef, TokenSequences
from service.nlp.summarize import ChunkPacker, SummaryPlan, pack_chunks, summarize
from service.pipeline import ArticleRequest, Pipeline
from service.presets import Generation, PresetRegistry
from service.schemas import TranslatedParagraph
from service.settings import Settings
from service.text.glossary import Glossary

SEED = "004_cf9bdecf76701834.txt"


class FakeTranslator:
    """Deterministic "translation" (the text with a marker), a little slow per batch, logging
    each batch into the shared ``events``; raises from batch ``fail_at`` on if set."""

    ref = ModelRef("fake-translator", "1", "fake", "none")
    max_source_tokens = 512

    def __init__(self, events: list[str], *, fail_at: int | None = None) -> None:
        self.events = events
        self.fail_at = fail_at
        self.batches = 0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        self.batches += 1
        if self.fail_at is not None and self.batches >= self.fail_at:
            raise RuntimeError("the translator broke")
        time.sleep(0.02)
        self.events.append("translate")
        return [f"{text} en" for text in texts]

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        return [[f"{text} en"] * n for text in texts]

    def forbidden_sequences(self, forbidden: object) -> TokenSequences:
        return frozenset()


class FakeSummarizer:
    """Reads 60 "tokens" (words + 1); its summary of a text is that text's first words (as many
    as the generation allows, at most 12), so every output is a function of input and settings."""

    ref = ModelRef("fake-summarizer", "1", "fake", "none")
    max_input_tokens = 60
    follows_instructions = False

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.chunks_summarized: list[str] = []
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        return [len(text.split()) + 1 for text in texts]

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.01)
        self.events.append("summary")
        self.chunks_summarized.extend(texts)
        self.batch_sizes.append(len(texts))
        keep = max(1, min(12, generation.max_length))
        return [" ".join(text.split()[:keep]).rstrip(".") + "." for text in texts]


def _pipeline(events: list[str], *, fail_at: int | None = None) -> Pipeline:
    scheduler = InferenceScheduler(
        FakeTranslator(events, fail_at=fail_at), token_budget=60, max_sentences=4
    )
    presets = PresetRegistry.from_directory(Settings.model_fields["prompts_dir"].default)
    return Pipeline(scheduler, FakeSummarizer(events), presets)


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def pipeline(events: list[str]) -> Iterator[Pipeline]:
    built = _pipeline(events)
    yield built
    built.close()


def _ignore(paragraphs: list[TranslatedParagraph]) -> None:
    """A paragraph listener that keeps nothing (its presence puts the lead first)."""


def test_packer_fed_in_slices_makes_the_chunks_of_pack_chunks() -> None:
    """However the sentences arrive, the chunks are those the whole list packs into."""
    engine = FakeSummarizer([])
    sentences = [" ".join(f"w{i}x{j}" for j in range(1 + (i * 7) % 23)) for i in range(40)]
    sentences.insert(5, " ".join(f"long{j}" for j in range(130)))  # over the limit: split
    whole = pack_chunks(sentences, engine, 59)
    for step in (1, 3, 7, 50):
        packer = ChunkPacker(engine, 59)
        chunks: list[str] = []
        for start in range(0, len(sentences), step):
            chunks.extend(packer.feed(sentences[start : start + step]))
        assert chunks + packer.finish() == whole
    assert len(whole) > 5


def test_summary_with_mapped_chunks_equals_the_plain_summary() -> None:
    """Reused map outputs give the same summary; a mismatched one is recomputed, not used."""
    engine = FakeSummarizer([])
    preset = PresetRegistry.from_directory(Settings.model_fields["prompts_dir"].default).get(
        "standard"
    )
    sentences = [f"Sentence {i} says {' '.join(['more'] * (i % 9))}." for i in range(60)]
    plain = summarize(engine, sentences, preset)
    plan = SummaryPlan.of(engine, preset)
    chunks = pack_chunks(sentences, engine, plan.content_limit)
    first = engine.summarize_batch(chunks[:2], plan.map_generation)
    assert (
        summarize(engine, sentences, preset, mapped=list(zip(chunks, first, strict=False))) == plain
    )
    wrong = [(chunks[0], "Not the summary of this chunk."), (chunks[1], first[1])]
    assert summarize(engine, sentences, preset, mapped=[(chunks[0] + " x", "Stale.")]) == plain
    assert summarize(engine, sentences, preset, mapped=wrong).text != plain.text  # it is used


async def test_pipelined_summary_equals_the_sequential_one(
    pipeline: Pipeline, seed_texts: dict[str, str], events: list[str]
) -> None:
    """With the map step started early the result's summary is the one made after the whole
    translation, from the same chunks in the same batches, none summarized twice."""
    summarizer = pipeline.summarizer
    assert isinstance(summarizer, FakeSummarizer)
    request = ArticleRequest(text=seed_texts[SEED], title="Eine Überschrift")
    pipeline.early_map = False
    sequential = await pipeline.run(request, on_paragraphs=_ignore)
    sequential_chunks = list(summarizer.chunks_summarized)
    sequential_batches = list(summarizer.batch_sizes)
    summarizer.chunks_summarized.clear()
    summarizer.batch_sizes.clear()
    pipeline.early_map = True
    pipelined = await pipeline.run(request, on_paragraphs=_ignore)
    assert sequential.summary_chunks >= 3
    assert pipelined.summary == sequential.summary
    assert pipelined.summary_chunks == sequential.summary_chunks
    assert pipelined.summary_rounds == sequential.summary_rounds
    assert pipelined.translation == sequential.translation
    assert summarizer.chunks_summarized == sequential_chunks
    assert summarizer.batch_sizes == sequential_batches  # the same generate calls, in order
    # The engine is only ever driven from the summary thread (tokenizers are not thread-safe).
    assert {name.split("_")[0] for name in summarizer.threads} == {"summarization"}


@pytest.mark.parametrize("listener", [True, False], ids=["paragraph-listener", "none"])
async def test_a_map_step_starts_before_the_translation_ends(
    pipeline: Pipeline, seed_texts: dict[str, str], events: list[str], listener: bool
) -> None:
    """The first chunk is summarized while later sentences are still being translated."""
    sink = _ignore if listener else None
    await pipeline.run(ArticleRequest(text=seed_texts[SEED]), on_paragraphs=sink)
    first_summary = events.index("summary")
    last_translation = len(events) - 1 - events[::-1].index("translate")
    assert first_summary < last_translation


async def test_short_article_has_no_map_step(pipeline: Pipeline, events: list[str]) -> None:
    """An article that fits one chunk gets one summary, made after its translation."""
    text = "Die Stadt baut eine Brücke.\n\nSie kostet viel Geld."
    result = await pipeline.run(ArticleRequest(text=text), on_paragraphs=_ignore)
    assert result.summary_chunks == 1
    assert events.count("summary") == 1
    assert events[-1] == "summary"


async def _summaries_settle(events: list[str]) -> int:
    """The number of summary calls once no more come (the in-hand job may still end)."""
    count = -1
    while count != events.count("summary"):
        count = events.count("summary")
        await asyncio.sleep(0.2)
    return count


async def test_a_failed_translation_leaves_no_summary_work(
    seed_texts: dict[str, str], events: list[str]
) -> None:
    """A translation that fails midway raises as before and no map step runs after it."""
    pipeline = _pipeline(events, fail_at=6)
    try:
        with pytest.raises(RuntimeError, match="the translator broke"):
            await pipeline.run(ArticleRequest(text=seed_texts[SEED]), on_paragraphs=_ignore)
        settled = await _summaries_settle(events)
        await asyncio.sleep(0.3)
        assert events.count("summary") == settled
    finally:
        pipeline.close()


async def test_a_cancelled_article_leaves_no_summary_work(
    pipeline: Pipeline, seed_texts: dict[str, str], events: list[str]
) -> None:
    """Cancelling an article after its first map step stops its summary work there."""
    run = asyncio.create_task(
        pipeline.run(ArticleRequest(text=seed_texts[SEED]), on_paragraphs=_ignore)
    )
    while "summary" not in events:  # noqa: ASYNC110 - the engine's thread appends, no event
        await asyncio.sleep(0.005)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    settled = await _summaries_settle(events)
    await asyncio.sleep(0.3)
    assert events.count("summary") == settled
    assert settled <= 2  # the chunk in hand, at most one more already started


async def test_retry_preset_reuses_no_map_output(
    pipeline: Pipeline,
    seed_texts: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A strict style's retry (other decoding) maps every chunk itself, as before."""
    summarizer = pipeline.summarizer
    assert isinstance(summarizer, FakeSummarizer)
    standard = pipeline.presets.get("standard")
    strict = msgspec.structs.replace(standard, fact_check="retry")
    monkeypatch.setattr(pipeline.presets, "get", lambda style: strict)
    monkeypatch.setattr(summary_check, "flagged", lambda checks: ["a flagged fact"])
    result = await pipeline.run(ArticleRequest(text=seed_texts[SEED]), on_paragraphs=_ignore)
    assert result.summary_attempts == 2
    english = [pair.en for pair in result.alignment]
    assert result.summary == summarize(summarizer, english, strict).text  # kept: the first
    summarize(summarizer, english, summary_check.retry_preset(strict))
    plan = SummaryPlan.of(summarizer, strict)
    first_chunk = pack_chunks(english, summarizer, plan.content_limit)[0]
    # Made early for the first attempt, again by the retry, and by the two summaries above.
    assert summarizer.chunks_summarized.count(first_chunk) == 4


async def test_with_a_glossary_the_pipelined_summary_equals_the_sequential_one(
    pipeline: Pipeline, seed_texts: dict[str, str]
) -> None:
    """Under a glossary (sentences settle by paragraph) both modes give the same result."""
    terms = Glossary.create(
        name="t", source_lang="DE", target_lang="EN", entries="Putin\tPutin\nGespräche\ttalks"
    )
    request = ArticleRequest(text=seed_texts[SEED], glossary=terms)
    pipeline.early_map = False
    sequential = await pipeline.run(request, on_paragraphs=_ignore)
    pipeline.early_map = True
    pipelined = await pipeline.run(request, on_paragraphs=_ignore)
    assert sequential.summary_chunks >= 3
    assert pipelined.summary == sequential.summary
    assert pipelined.translation == sequential.translation
    assert pipelined.glossary == sequential.glossary
