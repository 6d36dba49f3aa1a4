"""The translate lane's place in the inference scheduler: urgent sentences go first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from service.constants import Keys
from service.errors import LaneTimeoutError
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ModelRef
from service.queue import TranslatePayload, TranslateQueue

#: Longer than every article sentence: by length alone it would be batched last.
URGENT = "Die Kanzlerin sprach am Abend lange und ausführlich über den neuen Haushalt."


class RecordingEngine:
    """A stand-in engine: one token per word, 5 ms per batch, every batch recorded."""

    ref = ModelRef("recording", "1", "test", "none")
    max_source_tokens = 512

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        time.sleep(0.005)
        with self.lock:
            self.batches.append(list(texts))
        return [text.upper() for text in texts]

    def translate_nbest(self, texts: Sequence[str], n: int) -> list[list[str]]:
        return [[text.upper(), text.lower(), text.title()][:n] for text in texts]


async def test_urgent_sentence_is_in_the_next_batch_not_after_the_article() -> None:
    """A lane sentence sent while an article's 400 shorter sentences wait runs within two
    batches, not after them."""
    engine = RecordingEngine()
    scheduler = InferenceScheduler(engine, token_budget=64, max_sentences=8)
    try:
        article = [f"Satz nummer {i} des langen Artikels." for i in range(400)]
        long_job = asyncio.create_task(scheduler.translate(article))
        while len(engine.batches) < 3:  # noqa: ASYNC110 - batches run on another thread
            await asyncio.sleep(0.001)
        urgent = await scheduler.translate([URGENT], priority=True)
        assert urgent == [URGENT.upper()]
        assert not long_job.done()
        position = next(i for i, b in enumerate(engine.batches) if URGENT in b)
        started = 3
        assert position <= started + 2, position
        assert await long_job == [s.upper() for s in article]
    finally:
        scheduler.close()


async def test_nbest_runs_on_the_inference_thread_and_keeps_order() -> None:
    """n-best lists come back per sentence, best first, between batches."""
    engine = RecordingEngine()
    scheduler = InferenceScheduler(engine)
    try:
        assert await scheduler.translate_nbest(["Hallo Welt", "Guten Tag"], 2) == [
            ["HALLO WELT", "hallo welt"],
            ["GUTEN TAG", "guten tag"],
        ]
        assert await scheduler.translate_nbest([], 2) == []
    finally:
        scheduler.close()


async def test_identical_requests_share_one_lane_job(redis: Redis, prefix: str) -> None:
    """Two identical requests waiting at once enqueue one job; with no worker both time out
    as 503 ``translate_timeout`` with a Retry-After."""
    lane = TranslateQueue(redis, Keys(prefix))
    payload = TranslatePayload(texts=["Es regnet."])
    outcomes = await asyncio.gather(
        lane.translate("translate:same", payload, 0.3),
        lane.translate("translate:same", payload, 0.3),
        return_exceptions=True,
    )
    assert all(isinstance(o, LaneTimeoutError) for o in outcomes)
    assert isinstance(outcomes[0], LaneTimeoutError)
    assert outcomes[0].status == 503 and outcomes[0].headers["Retry-After"]
    assert await lane.saq.count("queued") == 1
