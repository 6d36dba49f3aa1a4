"""The summary's map step, started on each chunk as soon as its translation is settled.

A long article is summarized by map-reduce (``service.nlp.summarize``): its English sentences
are packed into chunks the model can read, each chunk is summarized (map), and the chunk
summaries are summarized again (reduce).  Chunk boundaries depend only on the sentences' token
counts in order, so a chunk is complete once its sentences (a run of the article's opening, as
far as it is settled) are known and the next one does not fit beside it.  :class:`EarlyMap`
summarizes such chunks on the summary thread while the rest of the article is still being
translated; the summary itself then reuses them (``summarize(..., mapped=...)``) and only maps
the last chunks and reduces.  The outcome is the one the un-pipelined map-reduce gives: the same
chunks, the same decoding, and a reused summary only where its chunk's text is the same.

Chunks are mapped early only in whole batches of ``CHUNKS_PER_BATCH``, the batches the
un-pipelined map step cuts (chunks 0-3, 4-7, ...): so every generate call sees the same inputs
with the same padding (bit for bit the same outputs on any backend), and no batching is given
up.  Mapping each chunk alone as it completed measured no faster on the 2-core benchmark
machine (two-chunk seeds 001 and 004, alternating with the un-pipelined run: 137 s against 80,
170 against 135, 114 against 129, under a 1-minute load of 8 to 13 from other work): two
batches of one cost more than one batch of two, and the overlap with a translation of 13-26 s
did not pay for it.  So articles of up to four chunks (every seed) are summarized as before.

An article that fits one chunk has no map step (one summary of the whole text), so there is
nothing to start early: no chunk is ever complete before the article ends, and all this costs
is counting the sentences' tokens.  A retry under other decoding (``summary_check``) reuses
nothing: its map step's outputs would differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

from service.article_translation import ArticleTranslation
from service.nlp.engine import SummaryEngine
from service.nlp.summarize import CHUNKS_PER_BATCH, ChunkPacker, SummaryPlan, map_chunks
from service.presets import Preset

__all__ = ["EarlyMap"]

T = TypeVar("T")


class EarlyMap:
    """Map-step summaries of one article's complete chunks, made as its translation arrives.

    ``offer`` takes the article's next settled sentences from the event loop; one task packs
    them into chunks and summarizes each complete chunk on ``executor`` (the pipeline's summary
    thread: the engine, its tokenizer included, is only ever driven from there).  ``finish``
    stops it after the job in hand and returns what was made; ``cancel`` drops it (a job the
    executor has not started is withdrawn; the one in hand, which cannot be interrupted, ends on
    its own and nothing follows it).
    """

    def __init__(self, engine: SummaryEngine, preset: Preset, executor: Executor) -> None:
        self.engine = engine
        self.preset = preset
        self.executor = executor
        #: ``(chunk, summary)`` of the chunks mapped so far, in chunk order.
        self.mapped: list[tuple[str, str]] = []
        self._waiting: list[str] = []
        self._ready: list[str] = []
        self._packer: ChunkPacker | None = None
        self._plan: SummaryPlan | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._work(), name="summary-early-map")

    def follow(self, translation: ArticleTranslation) -> None:
        """Be offered ``translation``'s settled sentences as they come."""
        offered = 0

        def offer_settled() -> None:
            nonlocal offered
            prefix = translation.settled_prefix()
            if len(prefix) > offered:
                self.offer(prefix[offered:])
                offered = len(prefix)

        translation.on_settled = offer_settled

    def offer(self, sentences: Sequence[str]) -> None:
        """The article's next settled English sentences, in order, after those offered before."""
        self._waiting.extend(s for s in sentences if s.strip())  # as ``summarize`` skips them
        self._wake.set()

    async def finish(self) -> list[tuple[str, str]]:
        """Stop after the job in hand; the chunks mapped, as ``summarize(mapped=...)`` takes
        them.  A failed map job's error is raised here (the summary would raise it next)."""
        self._stopping = True
        self._wake.set()
        await self._task
        return list(self.mapped)

    def cancel(self) -> None:
        """Drop the work: nothing more is handed to the executor."""
        self._stopping = True
        self._task.cancel()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            sentences, self._waiting = self._waiting, []
            self._ready.extend(await self._on_thread(self._pack, sentences))
            while len(self._ready) >= CHUNKS_PER_BATCH and not self._stopping:
                batch = self._ready[:CHUNKS_PER_BATCH]
                summaries = await self._on_thread(self._map, batch)
                self.mapped.extend(zip(batch, summaries, strict=True))
                del self._ready[: len(batch)]

    async def _on_thread(self, function: Callable[[list[str]], T], texts: list[str]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, texts)

    def _pack(self, sentences: list[str]) -> list[str]:
        """On the summary thread: the chunks ``sentences`` complete."""
        if self._packer is None:
            self._plan = SummaryPlan.of(self.engine, self.preset)
            self._packer = ChunkPacker(self.engine, self._plan.content_limit)
        return self._packer.feed(sentences)

    def _map(self, chunks: list[str]) -> list[str]:
        """On the summary thread: the map step's summaries of ``chunks``."""
        if self._plan is None:
            raise RuntimeError("chunks mapped before any were packed")
        return map_chunks(self.engine, chunks, self.preset, self._plan.map_generation)
