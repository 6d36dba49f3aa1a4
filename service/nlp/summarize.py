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

    def count(text: str) -> int:
        return engine.count_tokens([text])[0]

    pieces: list[str] = []
    counts = engine.count_tokens(list(sentences)) if sentences else []
    for sentence, tokens in zip(sentences, counts, strict=True):
        pieces.extend(
            [sentence] if tokens <= content_limit else split_long(sentence, count, content_limit)
        )
    chunks: list[str] = []
    current: list[str] = []
    current_tokens = 0
    for piece, tokens in zip(pieces, engine.count_tokens(pieces) if pieces else [], strict=True):
        # Joining adds at most one token per boundary; count it so a chunk never overflows.
        if current and current_tokens + tokens > content_limit:
            chunks.append(" ".join(current))
            current, current_tokens = [], 0
        current.append(piece)
        current_tokens += tokens
    if current:
        chunks.append(" ".join(current))
    return chunks


def summarize(engine: SummaryEngine, sentences: Sequence[str], preset: Preset) -> SummaryOutcome:
    """Summarize English sentences with ``preset``, map-reducing whatever does not fit."""
    if not any(s.strip() for s in sentences):
        return SummaryOutcome(text="", chunks=0, rounds=0)
    if engine.follows_instructions:
        overhead = engine.count_tokens([preset.prompt("")])[0]
    else:
        overhead = engine.count_tokens([""])[0]
    content_limit = max(16, engine.max_input_tokens - overhead)
    # Map rounds produce intermediate summaries: cap them so each round really shrinks the text.
    map_generation = Generation(
        min_length=0,
        max_length=max(8, min(preset.generation.max_length, content_limit // 4)),
        num_beams=preset.generation.num_beams,
        length_penalty=preset.generation.length_penalty,
        no_repeat_ngram_size=preset.generation.no_repeat_ngram_size,
    )
    texts = [s for s in sentences if s.strip()]
    first_chunks = 0
    for round_number in range(1, MAX_ROUNDS + 1):
        chunks = pack_chunks(texts, engine, content_limit)
        first_chunks = first_chunks or len(chunks)
        final = len(chunks) == 1
        generation = preset.generation if final else map_generation
        inputs = [preset.prompt(c) if engine.follows_instructions else c for c in chunks]
        outputs = [
            summary
            for start in range(0, len(inputs), CHUNKS_PER_BATCH)
            for summary in engine.summarize_batch(
                inputs[start : start + CHUNKS_PER_BATCH], generation
            )
        ]
        if final:
            return SummaryOutcome(
                text=lay_out(outputs[0], preset), chunks=first_chunks, rounds=round_number
            )
        texts = [sentence for output in outputs for sentence in split_english(output)]
    raise RuntimeError(f"map-reduce did not converge in {MAX_ROUNDS} rounds")


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
