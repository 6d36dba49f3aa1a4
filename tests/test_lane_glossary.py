"""Glossaries on the translate lane: a real SAQ lane worker in this process, real Redis, and a
stand-in engine whose "translation" is visible, so what reaches the model can be asserted."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from service.constants import Keys
from service.errors import GlossaryNotFoundError
from service.lane_worker import LaneGlossaries, build_lane_worker
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ForbiddenForms, ModelRef, TokenSequences
from service.queue import LaneGlossary, TranslatePayload, TranslateQueue
from service.settings import Settings
from service.store.glossaries import GlossaryStore
from service.text.glossary import Glossary

pytestmark = pytest.mark.redis

OWNER = "owner-a"
GERMAN = "Lawrow sagte am Montag in Moskau, die Gespräche seien schwierig gewesen."


class EchoEngine:
    """A stand-in model that "translates" by echoing its input through ``rewrite`` (so a test
    sees what the model was sent), with n-best lists whose second hypothesis is the plain
    echo; every text it is sent, and every n-best request, is recorded."""

    ref = ModelRef("echo", "1", "test", "none")
    max_source_tokens = 512

    def __init__(self, rewrite: Callable[[str], str] = lambda text: text) -> None:
        self.rewrite = rewrite
        self.sent: list[str] = []
        self.nbest_sent: list[str] = []
        #: The forbidden token sequences of each batch.
        self.forbidden: list[TokenSequences] = []
        self.lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def forbidden_sequences(self, forbidden: ForbiddenForms) -> TokenSequences:
        """One "token" per character: enough to see which batches carried which forms."""
        return frozenset(tuple(ord(c) for c in form) for form in forbidden.forms)

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        with self.lock:
            self.sent.extend(texts)
            self.forbidden.append(forbidden)
        return [self.rewrite(text) for text in texts]

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        with self.lock:
            self.nbest_sent.extend(texts)
        return [[self.rewrite(text), text, text.upper()][:n] for text in texts]


class RevertingEngine(EchoEngine):
    """A model that writes the German form back in every hypothesis."""

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        return [[self.rewrite(text)] * n for text in texts]


@dataclass
class MemoryCache:
    """The sentence cache's interface over a dict."""

    entries: dict[str, str] = field(default_factory=dict)

    #: The variant (the digest of forbidden spellings) each cached sentence was made under.
    variants: dict[str, str | None] = field(default_factory=dict)

    async def get_many(
        self, sentences: Sequence[str], *, variant: str | None = None
    ) -> list[str | None]:
        return [
            self.entries.get(s) if self.variants.get(s, variant) == variant else None
            for s in sentences
        ]

    async def set_many(
        self, pairs: Sequence[tuple[str, str]], *, variant: str | None = None
    ) -> None:
        self.entries.update(pairs)
        self.variants.update((source, variant) for source, _ in pairs)

    def for_scope(self, scope: str | None) -> MemoryCache:
        assert scope is None, "these tests translate for desks that share the cache"
        return self


@dataclass
class LaneState:
    """The parts of the worker's state the lane uses."""

    glossaries: GlossaryStore
    default_glossary: Glossary | None
    pipeline: Any
    sentence_cache: MemoryCache = field(default_factory=MemoryCache)


@dataclass
class Lane:
    """A running lane worker and what a test needs around it."""

    queue: TranslateQueue
    store: GlossaryStore
    engine: EchoEngine
    state: LaneState

    async def translate(self, key: str, payload: TranslatePayload) -> list[str]:
        outcome = await self.queue.translate(key, payload, 60)
        return outcome.translations


def glossary(entries: str, glossary_id: str | None = None) -> Glossary:
    return Glossary.create(
        name="newsroom",
        source_lang="DE",
        target_lang="EN",
        entries=entries,
        glossary_id=glossary_id,
    )


def ref(made: Glossary, owner: str | None = OWNER) -> LaneGlossary:
    return LaneGlossary(glossary_id=made.glossary_id, digest=made.digest, owner=owner)


@contextlib.asynccontextmanager
async def running_lane(
    redis: Redis,
    settings: Settings,
    engine: EchoEngine,
    default: Glossary | None = None,
) -> AsyncIterator[Lane]:
    keys = Keys(settings.key_prefix)
    store = GlossaryStore(redis, keys)
    scheduler = InferenceScheduler(engine)
    state = LaneState(store, default, type("Pipeline", (), {"urgent": scheduler})())
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ready.set_result(state)
    worker = build_lane_worker(settings, redis, ready)
    worker.SIGNALS = []
    task = asyncio.create_task(worker.start())
    try:
        yield Lane(TranslateQueue(redis, keys, retries=3), store, engine, state)
    finally:
        await worker.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        scheduler.close()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(translate_concurrency=2)


async def test_the_model_is_sent_the_english_form_and_the_cache_is_keyed_by_it(
    redis: Redis, settings: Settings
) -> None:
    """With a glossary the model sees ``Lavrov sagte ...``, the sentence cache holds that
    rewritten sentence, and the answer has the English form; without, the German form stays."""
    async with running_lane(redis, settings, EchoEngine()) as lane:
        made = glossary("Lawrow\tLavrov")
        await lane.store.create(OWNER, made)
        with_glossary = await lane.translate(
            "with", TranslatePayload(texts=[GERMAN], glossary=ref(made))
        )
        without = await lane.translate("without", TranslatePayload(texts=[GERMAN]))
    rewritten = GERMAN.replace("Lawrow", "Lavrov")
    assert with_glossary == [rewritten]
    assert without == [GERMAN]
    assert lane.engine.sent == [rewritten, GERMAN]
    assert set(lane.state.sentence_cache.entries) == {rewritten, GERMAN}
    # The sentence that requires "Lavrov" was translated with the German spelling forbidden,
    # and cached apart from translations made without that constraint.
    constrained, free = lane.engine.forbidden
    assert tuple(ord(c) for c in "Lawrow") in constrained and not free
    variants = lane.state.sentence_cache.variants
    assert variants[GERMAN] is None and variants[rewritten] is not None


async def test_a_lost_name_comes_back_from_the_nbest_list_of_the_rewritten_sentence(
    redis: Redis, settings: Settings
) -> None:
    """A model whose best output drops ``Lavrov`` is asked for n-best hypotheses of the
    rewritten sentence (through the scheduler), and the one that keeps the name is taken."""
    engine = EchoEngine(lambda text: text.replace("Lavrov ", ""))
    async with running_lane(redis, settings, engine) as lane:
        made = glossary("Lawrow\tLavrov")
        await lane.store.create(OWNER, made)
        english = await lane.translate(
            "nbest", TranslatePayload(texts=[GERMAN], glossary=ref(made))
        )
    rewritten = GERMAN.replace("Lawrow", "Lavrov")
    assert engine.nbest_sent == [rewritten]
    assert english == [rewritten]


async def test_a_german_form_the_model_put_back_is_repaired(
    redis: Redis, settings: Settings
) -> None:
    """A model that turns ``Lavrov`` back into ``Lawrow`` in every hypothesis is repaired."""
    engine = RevertingEngine(lambda text: text.replace("Lavrov", "Lawrow"))
    async with running_lane(redis, settings, engine) as lane:
        made = glossary("Lawrow\tLavrov")
        await lane.store.create(OWNER, made)
        english = await lane.translate(
            "repair", TranslatePayload(texts=[GERMAN], glossary=ref(made))
        )
    assert english == [GERMAN.replace("Lawrow", "Lavrov")]


async def test_html_split_modes_and_alternatives_keep_working_with_a_glossary(
    redis: Redis, settings: Settings
) -> None:
    """HTML keeps its elements around the English form; ``split=0`` and ``nonewlines``
    rewrite too; LibreTranslate's alternatives carry the English form."""
    engine = EchoEngine()
    async with running_lane(redis, settings, engine) as lane:
        made = glossary("Lawrow\tLavrov\nKyjiw\tKyiv")
        await lane.store.create(OWNER, made)
        html = "<p>Der Minister <b>Lawrow</b> reiste am Dienstag nach Kyjiw.</p>"
        two_lines = "Lawrow reiste ab.\nEr kam in Kyjiw an."
        payloads = {
            "html": TranslatePayload(texts=[html], html=True, glossary=ref(made)),
            "whole": TranslatePayload(texts=[two_lines], split="0", glossary=ref(made)),
            "lines": TranslatePayload(texts=[two_lines], split="nonewlines", glossary=ref(made)),
            "alternatives": TranslatePayload(texts=[GERMAN], alternatives=2, glossary=ref(made)),
        }
        answers = {name: await lane.queue.translate(name, p, 60) for name, p in payloads.items()}
    assert answers["html"].translations == [
        "<p>Der Minister <b>Lavrov</b> reiste am Dienstag nach Kyiv.</p>"
    ]
    for name in ("whole", "lines"):
        (english,) = answers[name].translations
        assert "Lavrov" in english and "Kyiv" in english and "\n" not in english, name
        assert "Lawrow" not in english and "Kyjiw" not in english, name
    (readings,) = answers["alternatives"].alternatives
    assert len(readings) == 2
    assert all("lavrov" in r.lower() and "lawrow" not in r.lower() for r in readings)
    assert not any("Lawrow" in text or "Kyjiw" in text for text in engine.sent)


async def test_the_default_glossary_is_used_by_its_id(redis: Redis, settings: Settings) -> None:
    """``default`` with no owner is the server's glossary, not looked up in the store."""
    default = glossary("Lawrow\tLavrov", glossary_id="default")
    async with running_lane(redis, settings, EchoEngine(), default) as lane:
        english = await lane.translate(
            "default", TranslatePayload(texts=[GERMAN], glossary=ref(default, owner=None))
        )
    assert english == [GERMAN.replace("Lawrow", "Lavrov")]


async def test_a_glossary_deleted_before_the_job_ran_is_a_404_without_retries(
    redis: Redis, settings: Settings
) -> None:
    """The worker records ``glossary_not_found`` and does not retry; the waiting API side
    raises ``GlossaryNotFoundError`` (its client's 404), not a 500."""
    async with running_lane(redis, settings, EchoEngine()) as lane:
        made = glossary("Lawrow\tLavrov")
        await lane.store.create(OWNER, made)
        await lane.store.delete(OWNER, made.glossary_id)
        with pytest.raises(GlossaryNotFoundError):
            await lane.translate("gone", TranslatePayload(texts=[GERMAN], glossary=ref(made)))
        job = await lane.queue.saq.job("gone")
    assert job is not None and job.attempts == 1
    assert lane.engine.sent == []


async def test_another_owners_glossary_is_not_found_by_the_worker(
    redis: Redis, settings: Settings
) -> None:
    """The worker loads a glossary as its owner only: another owner's id is not found."""
    store = GlossaryStore(redis, Keys(settings.key_prefix))
    made = glossary("Lawrow\tLavrov")
    await store.create(OWNER, made)
    shelf = LaneGlossaries(store, None)
    assert (await shelf.get(ref(made))).digest == made.digest
    with pytest.raises(GlossaryNotFoundError):
        await shelf.get(ref(made, owner="owner-b"))


async def test_a_glossary_is_loaded_once_and_a_changed_default_is_refused(
    redis: Redis, settings: Settings
) -> None:
    """Kept glossaries are not read from Redis again; a default whose content differs from the
    digest the API saw fails the job instead of filing output under the wrong key."""
    store = GlossaryStore(redis, Keys(settings.key_prefix))
    made = glossary("Lawrow\tLavrov")
    await store.create(OWNER, made)
    reads: list[str] = []
    original = store.get

    async def counted(owner: str, glossary_id: str) -> Glossary:
        reads.append(glossary_id)
        return await original(owner, glossary_id)

    store.get = counted  # type: ignore[method-assign]
    shelf = LaneGlossaries(store, glossary("Kyjiw\tKyiv", glossary_id="default"))
    for _ in range(3):
        assert await shelf.get(ref(made)) is await shelf.get(ref(made))
    assert reads == [made.glossary_id]
    stale = LaneGlossary(glossary_id="default", digest="0" * 64, owner=None)
    with pytest.raises(RuntimeError, match="digest"):
        await shelf.get(stale)
