"""What the inference thread batches: pending requests, the pool a batch is cut from, the cut.

``service.nlp.batching``'s scheduler owns the thread and the engine; this module holds the
plain data and decisions it works with: one request's sentences and their pieces
(:class:`PendingRequest`), which waiting pieces the next batch may take (:func:`pool_pieces`:
urgent first, one forbidden-sequence group at a time), how a pool is cut by a token budget
(:func:`plan_batches`), and handing outcomes back to the caller's event loop (:func:`settle`).
Nothing here touches the engine or a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.nlp.engine import ForbiddenForms, TokenSequences

__all__ = [
    "PendingRequest",
    "ProgressCallback",
    "SentencesCallback",
    "joined",
    "plan_batches",
    "pool_pieces",
    "settle",
]

ProgressCallback = Callable[[int], None]
"""Called (on the event loop) with the number of sentences finished so far."""

SentencesCallback = Callable[[list[tuple[int, str]]], None]
"""Called (on the event loop) with ``(index, translation)`` of the sentences a batch finished,
so a caller can pass on each part of its request (a paragraph) as soon as it is complete; every
sentence is reported once, before the request's own result is delivered."""


def plan_batches(
    lengths: Sequence[int], *, token_budget: int, max_sentences: int
) -> list[list[int]]:
    """Group item indices into batches whose padded size stays within ``token_budget``.

    Items are taken shortest first; a batch's cost is ``len(batch) x its longest item``, which is
    what the padded tensor costs.  An item larger than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = lengths[index]  # ascending order: the newcomer is the longest
        if current and (
            (len(current) + 1) * longest > token_budget or len(current) >= max_sentences
        ):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


@dataclass(eq=False)
class PendingRequest:
    """One job's sentences, their pieces, and where to deliver the outcome."""

    sentences: list[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[str]]
    on_progress: ProgressCallback | None
    on_sentences: SentencesCallback | None = None
    #: A translate-lane request: its pieces fill the next batches before any article's.
    priority: bool = False
    #: Spellings none of these sentences may be translated into (a glossary's wrong forms).
    forbidden: ForbiddenForms | None = None
    #: ``forbidden`` as target token sequences (set by the scheduler when it prepares the
    #: request); None: nothing forbidden.
    #: The batching group: only requests with equal sequences share a batch.
    sequences: TokenSequences | None = None
    pieces: list[list[str]] = field(default_factory=list)
    piece_tokens: list[list[int]] = field(default_factory=list)
    outputs: list[list[str | None]] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    done_sentences: int = 0
    reported: set[int] = field(default_factory=set)
    prepared: bool = False


def pool_pieces(
    active: Sequence[PendingRequest],
) -> tuple[list[tuple[PendingRequest, int, int]], list[int], TokenSequences | None]:
    """The pieces the next batch is cut from, as ``(request, sentence, piece)``, their token
    lengths, and their forbidden-sequence group.

    The pool is the urgent requests' pieces while there are any, else every request's,
    narrowed to one forbidden-sequence group: that of the first request (in order of
    arrival) with pieces left.  With one group this is every active request's pieces.
    """
    pool: list[tuple[PendingRequest, int, int]] = []
    lengths: list[int] = []
    urgent = [r for r in active if r.priority and r.done_sentences < len(r.sentences)]
    group: TokenSequences | None = None
    for request in urgent or active:
        waiting = [
            (s_index, p_index)
            for s_index, outputs in enumerate(request.outputs)
            for p_index, output in enumerate(outputs)
            if output is None
        ]
        if not waiting:
            continue
        if not pool:
            group = request.sequences
        elif request.sequences != group:
            continue
        for s_index, p_index in waiting:
            pool.append((request, s_index, p_index))
            lengths.append(request.piece_tokens[s_index][p_index])
    return pool, lengths, group


def joined(pieces: Sequence[str | None]) -> str:
    """One sentence's translation from its pieces' (an over-long sentence was split)."""
    return " ".join(p for p in pieces if p)


def settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    *,
    result: Any = None,
    error: BaseException | None = None,
) -> None:
    """Settle ``future`` on its own loop (from the inference thread)."""

    def settle() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the caller's loop may be gone at shutdown
        loop.call_soon_threadsafe(settle)
