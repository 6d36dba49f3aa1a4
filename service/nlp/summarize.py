"""Summarization: map-reduce over texts longer than the model reads, whichever backend runs it.

BART reads 1024 tokens and T5 512; a long article's translation does not fit.  Instead of
truncating (and silently dropping the end of the article), the English sentences are packed into
chunks that fit, each chunk is summarized (map), the chunk summaries are joined and summarized
again (reduce), as many rounds as it takes.  The engine does the generating
(``service.nlp.engine.SummaryEngine``); nothing here needs torch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.nlp.engine import SummaryEngine
from service.presets import Generation, Preset
from service.text.split import split_long

#: Map-reduce rounds before giving up; each round shrinks the text about four-fold, so real inputs
#: need two or three.
MAX_ROUNDS = 8
#: Chunks summarized in one generate call: bounds memory (chunks x input length x beams).
CHUNKS_PER_BATCH = 4
_ENGLISH_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9])")


@dataclass(frozen=True, slots=True)
class SummaryOutcome:
    """The summary text and how much map-reduce it took."""

    text: str
    chunks: int
    rounds: int


def pack_chunks(sentences: Sequence[str], engine: SummaryEngine, content_limit: int) -> list[str]:
    """Pack sentences, in order, into as few chunks of at most ``content_limit`` tokens."""
    packer = ChunkPacker(engine, content_limit)
    return packer.feed(sentences) + packer.finish()


class ChunkPacker:
    """:func:`pack_chunks` a few sentences at a time: each chunk is handed out as soon as it is
    known to be complete, which is when the next piece does not fit beside it.

    A chunk's boundaries depend only on the token counts of the sentences in order, so the
    summary's map step can start on a chunk while later sentences are still being translated
    (``service.summary_pipeline``); fed the same sentences, in any slicing, the chunks are those
    of :func:`pack_chunks`.
    """

    def __init__(self, engine: SummaryEngine, content_limit: int) -> None:
        self.engine = engine
        self.content_limit = content_limit
        self._current: list[str] = []
        self._tokens = 0

    def feed(self, sentences: Sequence[str]) -> list[str]:
        """Add the next sentences; the chunks they complete, in order."""
        if not sentences:
            return []
        engine, limit = self.engine, self.content_limit

        def count(text: str) -> int:
            return engine.count_tokens([text])[0]

        pieces: list[str] = []
        for sentence, tokens in zip(sentences, engine.count_tokens(list(sentences)), strict=True):
            pieces.extend([sentence] if tokens <= limit else split_long(sentence, count, limit))
        done: list[str] = []
        for piece, tokens in zip(
            pieces, engine.count_tokens(pieces) if pieces else [], strict=True
        ):
            # Joining adds at most one token per boundary; count it so a chunk never overflows.
            if self._current and self._tokens + tokens > limit:
                done.append(" ".join(self._current))
                self._current, self._tokens = [], 0
            self._current.append(piece)
            self._tokens += tokens
        return done

    def finish(self) -> list[str]:
        """The last chunk (none if nothing was fed)."""
        last = [" ".join(self._current)] if self._current else []
        self._current, self._tokens = [], 0
        return last


@dataclass(frozen=True, slots=True)
class SummaryPlan:
    """How one preset's summary is cut on one engine: chunk size and the map step's decoding."""

    content_limit: int
    map_generation: Generation

    @classmethod
    def of(cls, engine: SummaryEngine, preset: Preset) -> SummaryPlan:
        """The plan :func:`summarize` follows for ``preset`` on ``engine``."""
        if engine.follows_instructions:
            overhead = engine.count_tokens([preset.prompt("")])[0]
        else:
            overhead = engine.count_tokens([""])[0]
        content_limit = max(16, engine.max_input_tokens - overhead)
        # Map rounds produce intermediate summaries: cap them so each round really shrinks the
        # text.
        map_generation = Generation(
            min_length=0,
            max_length=max(8, min(preset.generation.max_length, content_limit // 4)),
            num_beams=preset.generation.num_beams,
            length_penalty=preset.generation.length_penalty,
            no_repeat_ngram_size=preset.generation.no_repeat_ngram_size,
        )
        return cls(content_limit, map_generation)


def map_chunks(
    engine: SummaryEngine, chunks: Sequence[str], preset: Preset, generation: Generation
) -> list[str]:
    """The map step's summaries of ``chunks``, :data:`CHUNKS_PER_BATCH` to a generate call."""
    inputs = [preset.prompt(c) if engine.follows_instructions else c for c in chunks]
    return [
        summary
        for start in range(0, len(inputs), CHUNKS_PER_BATCH)
        for summary in engine.summarize_batch(inputs[start : start + CHUNKS_PER_BATCH], generation)
    ]


def summarize(
    engine: SummaryEngine,
    sentences: Sequence[str],
    preset: Preset,
    *,
    mapped: Sequence[tuple[str, str]] = (),
) -> SummaryOutcome:
    """Summarize English sentences with ``preset``, map-reducing whatever does not fit.

    ``mapped``: first-round chunks already summarized under this preset's plan, as
    ``(chunk, summary)`` in chunk order (``service.summary_pipeline`` makes them while the
    article is still being translated); each is used only where the chunk at its place is the
    same text, so a stale or foreign entry costs a recomputation, never a wrong summary.
    """
    if not any(s.strip() for s in sentences):
        return SummaryOutcome(text="", chunks=0, rounds=0)
    plan = SummaryPlan.of(engine, preset)
    texts = [s for s in sentences if s.strip()]
    first_chunks = 0
    for round_number in range(1, MAX_ROUNDS + 1):
        chunks = pack_chunks(texts, engine, plan.content_limit)
        first_chunks = first_chunks or len(chunks)
        final = len(chunks) == 1
        generation = preset.generation if final else plan.map_generation
        reused = _reusable(chunks, mapped) if round_number == 1 and not final else []
        outputs = reused + map_chunks(engine, chunks[len(reused) :], preset, generation)
        if final:
            return SummaryOutcome(
                text=lay_out(outputs[0], preset), chunks=first_chunks, rounds=round_number
            )
        texts = [sentence for output in outputs for sentence in split_english(output)]
    raise RuntimeError(f"map-reduce did not converge in {MAX_ROUNDS} rounds")


def _reusable(chunks: Sequence[str], mapped: Sequence[tuple[str, str]]) -> list[str]:
    """The summaries in ``mapped`` of the leading ``chunks``, up to the first that differs."""
    reused: list[str] = []
    for chunk, (mapped_chunk, summary) in zip(chunks, mapped, strict=False):
        if chunk != mapped_chunk:
            break
        reused.append(summary)
    return reused


def split_english(text: str) -> list[str]:
    """Split English text into sentences (good enough for generated summaries)."""
    return [part.strip() for part in _ENGLISH_SENTENCE_END.split(text) if part.strip()]


def lay_out(text: str, preset: Preset) -> str:
    """Shape the generated text as the style asks: a paragraph, bullet points or one line."""
    text = text.strip()
    if preset.layout == "headline":
        first = split_english(text.splitlines()[0] if text else "")
        return (first[0] if first else text).rstrip(".")
    if preset.layout == "bullets":
        lines = [line.strip(" -•*\t") for line in text.splitlines() if line.strip(" -•*\t")]
        points = lines if len(lines) >= preset.min_points else split_english(text)
        return "\n".join(f"- {point}" for point in points[: preset.max_points])
    return text
