"""What every inference engine shares, whichever backend runs it.

The pipeline talks to two contracts, ``TranslationEngine`` and ``SummaryEngine``; the
transformers backend (``transformers_engine``) and the CTranslate2 backend (``ct2``) each
implement both.  The two backends must read the same limits and stop at the same token, or
switching ``KURZ_BACKEND`` would change what a newsroom reads; so the limits, the generation
lengths and the guards live here once, in ``GuardedTranslator`` and ``GuardedSummarizer``, and
each backend adds only how it runs a batch.

Glossaries may forbid wrong spellings outright (``ForbiddenForms``): the engine tokenizes them
with the target-side tokenizer once per set (``forbidden_sequences``) and each backend passes the
token sequences to its decoder (transformers' ``bad_words_ids``, CTranslate2's
``suppress_sequences``).  Both apply to a whole batch, so the scheduler never mixes sentences with
different sets in one.

The generation lengths are methods (``generation_lengths``, ``summary_lengths``) so that a
subclass can bound them differently; the benchmarks do that to fix every output length.

No torch here: the inference scheduler and the summary map-reduce depend on these contracts
only.
"""

from __future__ import annotations

import hashlib
import json
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from service.presets import Generation

__all__ = [
    "INSTRUCTION_MODEL_TYPES",
    "Engines",
    "ForbiddenForms",
    "GenerationLengths",
    "GuardedSummarizer",
    "GuardedTranslator",
    "ModelRef",
    "SummaryEngine",
    "TokenSequences",
    "TokenizedEngine",
    "TranslationEngine",
    "collapse_repeats",
]

#: Model families trained to follow instructions; others (BART-CNN, PEGASUS) get plain text.
INSTRUCTION_MODEL_TYPES = frozenset({"t5", "mt5", "umt5", "longt5"})

TokenSequences = frozenset[tuple[int, ...]]
"""Target token-id sequences a translation must not contain (empty: nothing forbidden)."""

#: Written before a word to learn how SentencePiece cuts it when it is glued to what precedes it
#: (``„Lawrow``, ``Ex-Lawrow``): the first marker the target vocabulary has as a piece of its own.
_GLUE_MARKERS = ("-", "(", '"', "/")


@dataclass(frozen=True, slots=True)
class ForbiddenForms:
    """Words a translation must not contain, and the words it must still be able to write.

    ``forms`` are wrong spellings (a glossary's German ``Lawrow``, ``Lawrows``); ``kept`` are the
    target forms the same sentences require (``Lavrov``).  A forbidden token sequence that is
    part of a kept word's tokens is dropped, since forbidding it would forbid the kept word.
    Hashable, so that the scheduler can group sentences by it.
    """

    forms: frozenset[str]
    kept: frozenset[str] = frozenset()

    @property
    def digest(self) -> str:
        """A stable digest of both sets, for cache keys of what was translated under them."""
        payload = json.dumps([sorted(self.forms), sorted(self.kept)], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What ran: reported in every result and folded into every cache key."""

    id: str
    revision: str
    backend: str
    compute_type: str


class TranslationEngine(Protocol):
    """One model behind one backend: counts tokens and translates one batch, guarded."""

    ref: ModelRef
    max_source_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Source tokens per text, including the end-of-sentence token."""
        ...

    def translate_batch(
        self, texts: Sequence[str], forbidden: TokenSequences = frozenset()
    ) -> list[str]:
        """Translate texts that each fit ``max_source_tokens``, as one batch, generating none
        of the ``forbidden`` token sequences."""
        ...

    def translate_nbest(
        self, texts: Sequence[str], n: int, forbidden: TokenSequences = frozenset()
    ) -> list[list[str]]:
        """The ``n`` best translations of each text by beam search, best first (for glossary
        fallbacks and LibreTranslate's ``alternatives``); as guarded as ``translate_batch``."""
        ...

    def forbidden_sequences(self, forbidden: ForbiddenForms) -> TokenSequences:
        """The target token sequences that spell ``forbidden.forms`` (see ``GuardedTranslator``)."""
        ...


class SummaryEngine(Protocol):
    """One summarization model behind one backend."""

    ref: ModelRef
    max_input_tokens: int
    follows_instructions: bool

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Input tokens per text, special tokens included."""
        ...

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        """Summarize texts that each fit ``max_input_tokens``, as one batch."""
        ...


@dataclass(frozen=True, slots=True)
class Engines:
    """The two loaded models a worker needs, and the translate lane's own handle on the first."""

    translation: TranslationEngine
    summarization: SummaryEngine
    urgent_translation: TranslationEngine | None = None
    """The translation model for the translate lane, where it needs a copy of its own (a
    CTranslate2 model's worker threads keep the priority of the thread that made it: see
    ``service.nlp.priority``); None: the lane drives ``translation`` from its own thread."""


@dataclass(frozen=True, slots=True)
class GenerationLengths:
    """Bounds on the new tokens of one batch, counted as transformers' ``generate`` counts them.

    ``max_new`` includes the end-of-sequence token (Marian and BART force it into the last
    slot); ``min_new`` is "no end token before this many tokens" (0: no lower bound).
    """

    max_new: int
    min_new: int = 0


class TokenizedEngine:
    """A model's tokenizer, shared by the inference thread and the callers counting tokens.

    Fast tokenizers are not thread-safe (they raise "Already borrowed"), so every use of one goes
    through ``tokenizer_lock``.
    """

    def __init__(self, tokenizer: Any, ref: ModelRef) -> None:
        self.tokenizer = tokenizer
        self.ref = ref
        self.tokenizer_lock = threading.Lock()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens (the end token) included, never truncated."""
        with self.tokenizer_lock:
            encoded = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return [len(ids) for ids in encoded]


class GuardedTranslator(TokenizedEngine):
    """A sentence translator's limits and generation guards, whichever backend generates.

    Generation is bounded by the source: at most ``2 x source tokens + 10`` new tokens and never
    more than the model's own limit, so a looping model costs a bounded amount of time; a loop
    that fits the bound is cut from the text afterwards (``collapse_repeats``).
    """

    def __init__(self, tokenizer: Any, config: Any, ref: ModelRef, *, num_beams: int) -> None:
        super().__init__(tokenizer, ref)
        self.num_beams = num_beams
        positions = int(getattr(config, "max_position_embeddings", 512) or 512)
        model_max = int(getattr(tokenizer, "model_max_length", positions) or positions)
        self.max_target_tokens = min(positions, model_max)
        self.max_source_tokens = self.max_target_tokens

    def generation_lengths(self, longest_source: int) -> GenerationLengths:
        """The bounds for a batch whose longest source has this many tokens."""
        return GenerationLengths(max_new=min(self.max_target_tokens, 2 * longest_source + 10))

    def max_new_tokens(self, longest_source: int) -> int:
        """The generation bound for a batch whose longest source has this many tokens."""
        return self.generation_lengths(longest_source).max_new

    def check_source(self, longest_source: int) -> None:
        """Refuse a batch the model cannot read (the scheduler splits long sentences first)."""
        if longest_source > self.max_source_tokens:
            raise ValueError(
                f"batch of {longest_source} tokens exceeds the model's "
                f"{self.max_source_tokens}; split_long must run first"
            )

    @staticmethod
    def finish(decoded: Sequence[str]) -> list[str]:
        """The translations as a newsroom reads them: trimmed, degenerate loops cut."""
        return [collapse_repeats(text.strip()) for text in decoded]

    def nbest_beams(self, n: int) -> int:
        """Beams for an ``n``-best search: at least ``n``, and no fewer than the usual search."""
        if n < 1:
            raise ValueError(f"n-best needs n >= 1, not {n}")
        return max(n, self.num_beams)

    def forbidden_sequences(self, forbidden: ForbiddenForms) -> TokenSequences:
        """The target token sequences that spell ``forbidden.forms``, as the decoder would.

        Each form is cut by the target-side tokenizer twice: as a word of its own (SentencePiece
        writes its leading space as part of the first piece, ``▁La w row``) and glued to what
        precedes it (``La w row`` after a quote or hyphen).  A cut that does not decode back to
        the form (a character the vocabulary lacks becomes ``<unk>``) is dropped, as is any
        sequence found inside a cut of a ``kept`` word.  Forbidding works on tokens, so a longer
        word that starts with the same pieces (``Lawrowa``) is forbidden with it.
        """
        with self.tokenizer_lock:
            kept = [ids for word in sorted(forbidden.kept) for ids in self._spellings(word)]
            found = {ids for form in sorted(forbidden.forms) for ids in self._spellings(form)}
        return frozenset(ids for ids in found if not any(_contains(k, ids) for k in kept))

    def _spellings(self, word: str) -> Iterator[tuple[int, ...]]:
        """``word`` as target token ids, standing alone and glued (caller holds the lock)."""
        special = set(self.tokenizer.all_special_ids)
        for ids in (self._target_ids(word), self._glued_ids(word)):
            if ids and not special.intersection(ids) and self._spells(ids, word):
                yield ids

    def _target_ids(self, text: str) -> tuple[int, ...]:
        encoded = self.tokenizer(text_target=text, add_special_tokens=False)["input_ids"]
        return tuple(int(i) for i in encoded)

    def _glued_ids(self, word: str) -> tuple[int, ...]:
        """The pieces of ``word`` after a marker character, or () when no marker stays apart."""
        special = set(self.tokenizer.all_special_ids)
        for marker in _GLUE_MARKERS:
            alone = self._target_ids(marker)
            both = self._target_ids(marker + word)
            if alone and not special.intersection(alone) and both[: len(alone)] == alone:
                return both[len(alone) :]
        return ()

    def _spells(self, ids: Sequence[int], word: str) -> bool:
        decoded = str(self.tokenizer.decode(list(ids), skip_special_tokens=True))
        return _plain(decoded) == _plain(word)


class GuardedSummarizer(TokenizedEngine):
    """A seq2seq summarizer's input limit and summary lengths, whichever backend generates.

    The input limit is the smaller of the tokenizer's and the position embeddings' (BART reads
    1024 tokens, T5 512), ignoring the "no limit" sentinels some tokenizers carry; the preset's
    ``min_length``/``max_length`` count new tokens.
    """

    def __init__(self, tokenizer: Any, config: Any, ref: ModelRef) -> None:
        super().__init__(tokenizer, ref)
        limits = [int(getattr(tokenizer, "model_max_length", 0) or 0)]
        limits.append(int(getattr(config, "max_position_embeddings", 0) or 0))
        sane = [limit for limit in limits if 0 < limit < 1_000_000]
        self.max_input_tokens = min(sane) if sane else 512
        self.follows_instructions = config.model_type in INSTRUCTION_MODEL_TYPES

    def summary_lengths(self, generation: Generation) -> GenerationLengths:
        """The bounds ``generation`` asks for (a minimum over the maximum is capped)."""
        max_new = generation.max_length
        return GenerationLengths(max_new=max_new, min_new=min(generation.min_length, max_new))

    def check_input(self, longest_input: int) -> None:
        """Refuse a batch the model cannot read (the map-reduce chunks long texts first)."""
        if longest_input > self.max_input_tokens:
            raise ValueError("summarizer input over the model's limit; chunking must run first")

    @staticmethod
    def finish(decoded: Sequence[str]) -> list[str]:
        """The summaries, trimmed."""
        return [text.strip() for text in decoded]


def _contains(haystack: Sequence[int], needle: Sequence[int]) -> bool:
    """Whether ``needle`` occurs in ``haystack`` as a contiguous run."""
    size = len(needle)
    return any(
        tuple(haystack[i : i + size]) == tuple(needle) for i in range(len(haystack) - size + 1)
    )


def _plain(text: str) -> str:
    """``text`` as SentencePiece's NFKC normalizer leaves it: NFKC, single spaces, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


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
