"""Article work runs below the translate lane: lowered threads, what inherits the lowering, and a
lane request answered while the article batch is in hand."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from service.nlp.engine import Engines, ModelRef, TokenSequences
from service.nlp.priority import call_lowered, thread_nice
from service.pipeline import build_pipeline
from service.settings import Settings

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's"
)

ARTICLE_THREAD = "translation-inference"


def own_nice() -> int:
    return thread_nice(threading.get_native_id())


def lowered_by(steps: int) -> int:
    return min(19, own_nice() + steps)


def test_threads_started_from_a_lowered_call_inherit_its_priority() -> None:
    """What the CTranslate2 models and torch's compute threads rely on: a thread started by a
    lowered thread is lowered too; the caller keeps its own priority."""
    seen: dict[str, int] = {}

    def load() -> str:
        seen["loader"] = own_nice()
        child = threading.Thread(target=lambda: seen.setdefault("child", own_nice()))
        child.start()
        child.join()
        return "loaded"

    before = own_nice()
    assert call_lowered(load, 4) == "loaded"
    assert seen == {"loader": min(19, before + 4), "child": min(19, before + 4)}
    assert own_nice() == before


def test_a_failed_lowered_call_raises_in_the_caller() -> None:
    def load() -> None:
        raise ValueError("model missing")

    with pytest.raises(ValueError, match="model missing"):
        call_lowered(load, 4)


class ArticleGatedEngine:
    """Translates by upper-casing; a batch on the article thread waits for ``gate`` (a long
    article batch in hand), a batch on any other thread does not."""

    ref = ModelRef("gated", "1", "test", "none")
    max_source_tokens = 512

    def __init__(self) -> None:
        self.article_started = threading.Event()
        self.gate = threading.Event()
        self.threads: list[str] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(self, texts: Sequence[str], *args: TokenSequences) -> list[str]:
        name = threading.current_thread().name
        self.threads.append(name)
        if name == ARTICLE_THREAD:
            self.article_started.set()
            assert self.gate.wait(60), "the test never opened the gate"
        return [text.upper() for text in texts]


def _pipeline(engine: ArticleGatedEngine, nice: int) -> Any:
    settings = Settings(models="tiny", background_nice=nice, _env_file=None)  # type: ignore[call-arg]
    engines = Engines(translation=engine, summarization=object())  # type: ignore[arg-type]
    return build_pipeline(settings, engines=engines)


async def test_a_lane_request_is_answered_while_an_article_batch_is_in_hand() -> None:
    """The lane has an inference thread of its own: a one-sentence request does not wait for
    the article batch the other thread is running, and the article side runs lowered."""
    engine = ArticleGatedEngine()
    pipeline = _pipeline(engine, nice=5)
    try:
        article = asyncio.create_task(pipeline.scheduler.translate(["ein langer artikel"]))
        assert await asyncio.to_thread(engine.article_started.wait, 60)
        lane = await asyncio.wait_for(pipeline.urgent.translate(["ein satz"], priority=True), 30)
        assert lane == ["EIN SATZ"]
        assert not article.done()  # still held: the lane's answer did not wait for it
        engine.gate.set()
        assert await article == ["EIN LANGER ARTIKEL"]
        assert thread_nice(pipeline.scheduler.native_thread_id) == lowered_by(5)
        assert thread_nice(pipeline.urgent.native_thread_id) == own_nice()
        summarizing = await asyncio.wrap_future(pipeline._summary_executor.submit(own_nice))
        assert summarizing == lowered_by(5)
    finally:
        engine.gate.set()
        pipeline.close()


async def test_background_nice_zero_leaves_every_thread_at_the_workers_priority() -> None:
    engine = ArticleGatedEngine()
    engine.gate.set()
    pipeline = _pipeline(engine, nice=0)
    try:
        assert await pipeline.scheduler.translate(["a"]) == ["A"]
        assert await pipeline.urgent.translate(["b"], priority=True) == ["B"]
        assert thread_nice(pipeline.scheduler.native_thread_id) == own_nice()
        assert thread_nice(pipeline.urgent.native_thread_id) == own_nice()
    finally:
        pipeline.close()
