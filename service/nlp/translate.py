"""Sentence translation: the engine contract, long-sentence splitting and generation guards.

The pipeline never hands a model more than it can read.  MarianMT reads at most 512 tokens; a
sentence over that is cut at clause boundaries (commas, semicolons, colons, dashes), then at
word boundaries, then, for a single monstrous "word", at character boundaries, and the English
pieces are joined again.  Nothing is dropped.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import torch

from service.nlp.loading import LoadedModel, ModelRef

#: Clause boundaries: punctuation followed by a space.  The punctuation stays with the left part.
_CLAUSE_BOUNDARY = re.compile(r"(?<=[,;:–—)])\s+|\s+(?=[–—(])")
_WORD_BOUNDARY = re.compile(r"\s+")


class TranslationEngine(Protocol):
    """One model behind one backend: counts tokens and translates one batch, guarded."""

    ref: ModelRef
    max_source_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Source tokens per text, including the end-of-sentence token."""
        ...

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        """Translate texts that each fit ``max_source_tokens``, as one batch."""
        ...


def split_long(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` tokens, preferring clause boundaries."""
    if count(text) <= limit:
        return [text]
    for pattern in (_CLAUSE_BOUNDARY, _WORD_BOUNDARY):
        parts = [p for p in pattern.split(text) if p.strip()]
        if len(parts) > 1:
            pieces: list[str] = []
            for part in _pack(parts, count, limit):
                pieces.extend(split_long(part, count, limit))
            return pieces
    return _hard_split(text, count, limit)


def _pack(parts: list[str], count: Callable[[str], int], limit: int) -> list[str]:
    """Greedily join neighbouring parts with spaces while the result stays within ``limit``."""
    packed: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if current and count(candidate) > limit:
            packed.append(current)
            current = part
        else:
            current = candidate
    if current:
        packed.append(current)
    return packed


def _hard_split(text: str, count: Callable[[str], int], limit: int) -> list[str]:
    """Last resort for text with no spaces: the longest prefix that fits, found by bisection."""
    pieces = []
    rest = text
    while rest:
        if count(rest) <= limit:
            pieces.append(rest)
            break
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if count(rest[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        pieces.append(rest[:low])
        rest = rest[low:]
    return pieces


def collapse_repeats(text: str, *, max_repeats: int = 3, max_ngram: int = 8) -> str:
    """Cut a degenerate loop ("the the the the ...") down to one occurrence.

    Generation length is bounded already, so a loop cannot hang a worker; this keeps the bounded
    garbage out of the translation a newsroom reads.  Only runs of more than ``max_repeats``
    back-to-back copies of the same 1..``max_ngram``-word sequence are touched.
    """
    words = text.split()
    if len(words) <= max_repeats:
        return text
    changed = False
    for size in range(1, max_ngram + 1):
        i = 0
        out: list[str] = []
        while i < len(words):
            gram = words[i : i + size]
            repeats = 1
            while words[i + repeats * size : i + (repeats + 1) * size] == gram:
                repeats += 1
            if len(gram) == size and repeats > max_repeats:
                out.extend(gram)
                i += repeats * size
                changed = True
            else:
                out.append(words[i])
                i += 1
        words = out
    return " ".join(words) if changed else text


class TransformersTranslator:
    """MarianMT (or any seq2seq translator) under transformers, with guarded generation.

    Generation is bounded by the source: at most ``2 x source tokens + 10`` new tokens and never
    more than the model's own limit, so a looping model costs a bounded amount of time.
    ``fixed_length_factor`` makes every batch generate exactly that multiple of its longest
    source (benchmarks use it so random-weight models do the real models' amount of work).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        num_beams: int = 1,
        fixed_length_factor: float | None = None,
    ) -> None:
        self.loaded = loaded
        self.ref = loaded.ref
        self.num_beams = num_beams
        self.fixed_length_factor = fixed_length_factor
        tokenizer = loaded.tokenizer
        config = loaded.model.config
        positions = int(getattr(config, "max_position_embeddings", 512) or 512)
        model_max = int(getattr(tokenizer, "model_max_length", positions) or positions)
        self.max_target_tokens = min(positions, model_max)
        self.max_source_tokens = self.max_target_tokens
        # The tokenizer is not thread-safe (fast tokenizers raise "Already borrowed").
        self._tokenizer_lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Source tokens per text, end-of-sentence included, never truncated."""
        with self._tokenizer_lock:
            encoded = self.loaded.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]

    def max_new_tokens(self, longest_source: int) -> int:
        """The generation bound for a batch whose longest source has this many tokens."""
        if self.fixed_length_factor is not None:
            return max(1, math.ceil(self.fixed_length_factor * longest_source))
        return min(self.max_target_tokens, 2 * longest_source + 10)

    @torch.inference_mode()
    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        """Translate one batch; every text must already fit ``max_source_tokens``."""
        if not texts:
            return []
        loaded = self.loaded
        with self._tokenizer_lock:
            batch = loaded.tokenizer(list(texts), return_tensors="pt", padding=True)
        input_ids = batch["input_ids"]
        if input_ids.shape[1] > self.max_source_tokens:
            raise ValueError(
                f"batch of {input_ids.shape[1]} tokens exceeds the model's "
                f"{self.max_source_tokens}; split_long must run first"
            )
        batch = {name: tensor.to(loaded.device) for name, tensor in batch.items()}
        new_tokens = self.max_new_tokens(int(batch["attention_mask"].sum(dim=1).max()))
        options: dict[str, object] = {
            "max_new_tokens": new_tokens,
            "num_beams": self.num_beams,
            "do_sample": False,
        }
        if self.fixed_length_factor is not None:
            options["min_new_tokens"] = new_tokens
        output = loaded.model.generate(**batch, **options)
        with self._tokenizer_lock:
            decoded = loaded.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [collapse_repeats(text.strip()) for text in decoded]
