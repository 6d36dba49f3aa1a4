"""Progressive results: the partial-translation store, the scheduler's per-sentence reports, and
the pipeline handing over each paragraph as soon as it is translated."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from service.article_translation import LEAD_SENTENCES, lead_length
from service.constants import PARTIAL_TTL_S, Keys
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ModelRef
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.schemas import AlignedSentence, Result, TranslatedParagraph
from service.settings import ROOT, Settings
from service.store.partial import PartialTranslations
from service.text.glossary import Glossary
from service.text.glossary_files import load_default_glossary
from service.text.segment import Sentence, split_sentences

JOB = "a" * 64


def paragraph(index: int, first: int, *english: str) -> TranslatedParagraph:
    return TranslatedParagraph(
        paragraph=index,
        first_sentence=first,
        sentences=[
            AlignedSentence(de=f"Satz {first + k}.", en=text, paragraph=index)
            for k, text in enumerate(english)
        ],
    )


# --- the store ----------------------------------------------------------------------------------


@pytest.fixture
def store(redis: Redis, prefix: str) -> PartialTranslations:
    return PartialTranslations(redis, Keys(prefix))


@pytest.mark.redis
async def test_paragraphs_read_back_in_order_once_each(store: PartialTranslations) -> None:
    """Paragraphs written out of order come back in paragraph order; one written twice is one."""
    await store.add(JOB, 1, [paragraph(2, 3, "Three."), paragraph(0, 0, "One.", "Two.")])
    await store.add(JOB, 1, [paragraph(1, 2, "Between."), paragraph(2, 3, "Three.")])
    read = await store.read(JOB, 1)
    assert [p.paragraph for p in read] == [0, 1, 2]
    assert read[0] == paragraph(0, 0, "One.", "Two.")


@pytest.mark.redis
async def test_an_earlier_attempts_paragraphs_are_never_shown(
    store: PartialTranslations,
) -> None:
    """A retry clears what the failed attempt wrote, and a late write of an old attempt (a
    swept worker that still runs) is not shown to readers of the current one."""
    await store.add(JOB, 1, [paragraph(0, 0, "Old one."), paragraph(1, 1, "Old two.")])
    await store.start(JOB)
    assert await store.read(JOB, 2) == []
    await store.add(JOB, 2, [paragraph(1, 1, "New two.")])
    await store.add(JOB, 1, [paragraph(0, 0, "Late old one.")])
    assert await store.read(JOB, 2) == [paragraph(1, 1, "New two.")]


@pytest.mark.redis
async def test_paragraphs_expire_and_are_deleted_when_the_job_ends(
    store: PartialTranslations, redis: Redis
) -> None:
    """The hash lives under its own key with the job record's TTL, and discard removes it,
    saying what it held (the storage guard learns from that)."""
    await store.add(JOB, 1, [paragraph(0, 0, "One.")])
    key = store.keys.partial(JOB)
    assert key == f"{store.keys.prefix}:partial:{JOB}"
    assert 0 < await redis.ttl(key) <= PARTIAL_TTL_S
    held = await redis.memory_usage(key)
    assert held and await store.discard(JOB) == held
    assert await redis.exists(key) == 0
    assert await store.discard(JOB) == 0
    assert await store.read(JOB, 1) == []


@pytest.mark.redis
async def test_an_unreadable_entry_is_skipped_not_fatal(
    store: PartialTranslations, redis: Redis
) -> None:
    """An entry another version wrote in another shape is left out; the rest still show."""
    await store.add(JOB, 1, [paragraph(0, 0, "One.")])
    await redis.hset(store.keys.partial(JOB), "1", b'{"shape": "unknown"}')
    assert await store.read(JOB, 1) == [paragraph(0, 0, "One.")]


# --- the scheduler ------------------------------------------------------------------------------


class WordEngine:
    """A stand-in engine: one token per word, upper-cases, records batches."""

    ref = ModelRef("words", "1", "test", "none")
    max_source_tokens = 8

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        self.batches.append(list(texts))
        return [text.upper() for text in texts]

    def translate_nbest(self, texts: Sequence[str], n: int) -> list[list[str]]:
        return [[text.upper()] for text in texts]


async def test_scheduler_reports_each_sentence_once_as_its_batch_ends() -> None:
    """With two sentences per batch, sentences are reported batch by batch (not all at the end),
    each once, an over-long one only when all its pieces are done, all before the result."""
    engine = WordEngine()
    scheduler = InferenceScheduler(engine, token_budget=64, max_sentences=2)
    long_sentence = " ".join(f"wort{i}" for i in range(20))  # 21 tokens: three pieces
    sentences = ["eins zwei.", "drei vier fünf.", long_sentence, "sechs."]
    reports: list[list[tuple[int, str]]] = []
    try:
        result = await scheduler.translate(sentences, on_sentences=reports.append)
    finally:
        scheduler.close()
    assert result == [s.upper() for s in sentences]
    assert len(reports) > 1
    reported = [pair for report in reports for pair in report]
    assert sorted(reported) == list(enumerate(result))
    # The long sentence's pieces are batched apart; it is reported whole, after its last one.
    assert sum(any(text.startswith("wort") for text in b) for b in engine.batches) > 1
    assert reports[-1] == [(2, result[2])]


# --- the pipeline -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_batches(tiny_settings: Settings) -> Iterator[Pipeline]:
    """The tiny pipeline cutting batches of four sentences, so an article takes many batches."""
    built = build_pipeline(tiny_settings.model_copy(update={"max_batch_sentences": 4}))
    yield built
    built.close()


@dataclass
class Recorder:
    """What the pipeline told: paragraphs, and the stage and sentences done at each call."""

    calls: list[tuple[str, int, list[TranslatedParagraph]]] = field(default_factory=list)
    stage: tuple[str, int, int] = ("", 0, 0)
    batches_at_call: list[int] = field(default_factory=list)
    scheduler: InferenceScheduler | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage = (stage, done, total)

    def paragraphs(self, paragraphs: list[TranslatedParagraph]) -> None:
        self.calls.append((self.stage[0], self.stage[1], paragraphs))
        if self.scheduler is not None:
            self.batches_at_call.append(self.scheduler.batches_run)

    @property
    def published(self) -> list[TranslatedParagraph]:
        return [p for _, _, paragraphs in self.calls for p in paragraphs]


def by_paragraph(result: Result) -> list[TranslatedParagraph]:
    """The result's alignment cut into paragraphs, as the pipeline should have published it."""
    grouped: dict[int, list[int]] = {}
    for index, pair in enumerate(result.alignment):
        grouped.setdefault(pair.paragraph, []).append(index)
    return [
        TranslatedParagraph(
            paragraph=number,
            first_sentence=indices[0],
            sentences=[result.alignment[i] for i in indices],
        )
        for number, indices in grouped.items()
    ]


async def run(
    pipeline: Pipeline, text: str, recorder: Recorder, glossary: Glossary | None = None
) -> Result:
    return await pipeline.run(
        ArticleRequest(text=text, glossary=glossary),
        on_progress=recorder.progress,
        on_paragraphs=recorder.paragraphs,
    )


async def test_paragraphs_arrive_while_translating_and_equal_the_result(
    small_batches: Pipeline, seed_texts: dict[str, str]
) -> None:
    """Every paragraph is handed over once, during the translate stage, the first one before
    most sentences are done; together they are exactly the result's alignment."""
    text = seed_texts["000_1e1de29cccfa5500.txt"]
    recorder = Recorder()
    result = await run(small_batches, text, recorder)
    published = recorder.published
    assert sorted(published, key=lambda p: p.paragraph) == by_paragraph(result)
    assert len({p.paragraph for p in published}) == len(published)
    assert {stage for stage, _, _ in recorder.calls} == {"translate"}
    first_done = recorder.calls[0][1]
    assert first_done < result.sentences_in / 2, (first_done, result.sentences_in)


async def test_with_a_glossary_paragraphs_are_published_settled(
    small_batches: Pipeline, seed_texts: dict[str, str]
) -> None:
    """With a glossary, each published paragraph already carries its glossary reports and the
    English the result keeps."""
    glossary = load_default_glossary(ROOT / "glossaries")
    assert glossary is not None
    recorder = Recorder()
    result = await run(
        small_batches, seed_texts["000_1e1de29cccfa5500.txt"], recorder, glossary=glossary
    )
    assert result.glossary is not None
    assert sorted(recorder.published, key=lambda p: p.paragraph) == by_paragraph(result)
    assert all(s.glossary is not None for p in recorder.published for s in p.sentences)


class DictCache:
    """A sentence cache in a dict."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    async def get_many(
        self, sentences: Sequence[str], *, variant: str | None = None
    ) -> list[str | None]:
        return [self.known.get(f"{variant}:{s}" if variant else s) for s in sentences]

    async def set_many(
        self, pairs: Sequence[tuple[str, str]], *, variant: str | None = None
    ) -> None:
        self.known.update((f"{variant}:{s}" if variant else s, e) for s, e in pairs)


async def test_paragraphs_from_the_sentence_cache_come_before_any_batch(
    small_batches: Pipeline, seed_texts: dict[str, str]
) -> None:
    """An edited article's unchanged paragraph is handed over at once, marked cached, before the
    model has run a single batch for the article."""
    text = seed_texts["001_81d73fe107ac92a6.txt"]
    sentences = split_sentences(text)
    second = [s.text for s in sentences if s.paragraph == sentences[-1].paragraph]
    cache = DictCache()
    cache.known.update((s, f"Cached: {s}") for s in second)
    recorder = Recorder(scheduler=small_batches.scheduler)
    before = small_batches.scheduler.batches_run
    result = await small_batches.run(
        ArticleRequest(text=text),
        on_progress=recorder.progress,
        sentence_cache=cache,
        on_paragraphs=recorder.paragraphs,
    )
    first_call = recorder.calls[0][2]
    assert [p.paragraph for p in first_call] == [sentences[-1].paragraph]
    assert recorder.batches_at_call[0] == before
    assert all(s.cached and s.en == f"Cached: {s.de}" for s in first_call[0].sentences)
    assert sorted(recorder.published, key=lambda p: p.paragraph) == by_paragraph(result)


def test_the_lead_is_whole_opening_paragraphs_up_to_a_few_sentences() -> None:
    """The lead takes whole paragraphs from the top, stops before passing the limit, and is at
    least the first paragraph however long it is."""

    def layout(*sizes: int) -> list[Sentence]:
        return [
            Sentence(f"Satz {p}.{k}.", p, 0) for p, size in enumerate(sizes) for k in range(size)
        ]

    assert lead_length(layout(1, 2, 3, 4), limit=6) == 6
    assert lead_length(layout(1, 2, 4, 1), limit=6) == 3
    assert lead_length(layout(30, 1), limit=6) == 30
    assert lead_length(layout(2), limit=6) == 2
    assert lead_length([], limit=6) == 0


@pytest.fixture(scope="module")
def default_batches(tiny_settings: Settings) -> Iterator[Pipeline]:
    """The tiny pipeline with the service's batch settings (a seed article fits one batch),
    without the summary's early map step, which sends an article longer than the summarizer
    reads (the tiny one: 256 tokens) in runs of sentences in order (test_summary_pipeline.py)."""
    built = build_pipeline(tiny_settings)
    built.early_map = False
    yield built
    built.close()


async def test_the_opening_paragraphs_come_first_in_a_batch_of_their_own(
    default_batches: Pipeline, seed_texts: dict[str, str]
) -> None:
    """An article that would be one batch is translated as its lead, then the rest: the
    opening paragraphs are handed over first, alone, while most sentences are still waiting;
    without a paragraph listener the article stays one batch."""
    text = seed_texts["000_1e1de29cccfa5500.txt"]
    sentences = split_sentences(text)
    lead = lead_length(sentences)
    assert 1 <= lead <= LEAD_SENTENCES < len(sentences)
    recorder = Recorder(scheduler=default_batches.scheduler)
    before = default_batches.scheduler.batches_run
    result = await run(default_batches, text, recorder)
    assert default_batches.scheduler.batches_run - before == 2
    opening = sorted({s.paragraph for s in sentences[:lead]})
    assert [p.paragraph for p in recorder.calls[0][2]] == opening
    assert recorder.calls[0][1] < result.sentences_in / 2
    assert sorted(recorder.published, key=lambda p: p.paragraph) == by_paragraph(result)

    before = default_batches.scheduler.batches_run
    await default_batches.run(ArticleRequest(text=text + "\n\nNoch ein letzter Satz."))
    assert default_batches.scheduler.batches_run - before == 1
