"""Dynamic batching: one inference thread serves every job a worker holds.

Jobs submit their sentences and await the translations.  The inference thread pools the pending
sentences of *all* jobs, sorts them by token length and cuts batches by a token budget (padding
included), so ten short articles cost about one batched pass, not ten.  Sentences longer than
the model's input limit are split into pieces first (``split_long``) and joined after, so each
input sentence maps to exactly one output.

Sentences translated under a glossary's forbidden spellings (``ForbiddenForms``) are decoded with
those spellings suppressed, which the backends apply to a whole batch: so pending work is grouped
by its forbidden token sequences (none is a group of its own), and each batch is cut from one
group, the group of the oldest request with work left (urgent requests first, as always).

Inference runs off the event loop; results and progress are handed back with
``loop.call_soon_threadsafe``.  The scheduler drives any ``TranslationEngine`` and needs no torch
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.nlp.engine import ForbiddenForms, TokenSequences, TranslationEngine
from service.nlp.priority import lower_this_thread
from service.text.split import split_long

log = structlog.get_logger(__name__)

ProgressCallback = Callable[[int], None]
"""Called (on the event loop) with the number of sentences finished so far."""

#: Forbidden sets whose token sequences are kept, so that an article's set is tokenized once
#: rather than once per batch; a worker sees few distinct sets at a time.
_FORBIDDEN_CACHE_SIZE = 256

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
class _Request:
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
    #: ``forbidden`` as target token sequences (set by ``_prepare``); None: nothing forbidden.
    #: The batching group: only requests with equal sequences share a batch.
    sequences: TokenSequences | None = None
    pieces: list[list[str]] = field(default_factory=list)
    piece_tokens: list[list[int]] = field(default_factory=list)
    outputs: list[list[str | None]] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    done_sentences: int = 0
    reported: set[int] = field(default_factory=set)
    prepared: bool = False


class InferenceScheduler:
    """Owns the translation engine and the one thread that runs it."""

    def __init__(
        self,
        engine: TranslationEngine,
        *,
        token_budget: int = 4096,
        max_sentences: int = 64,
        nice: int = 0,
        name: str = "translation-inference",
    ) -> None:
        self.engine = engine
        #: How far below the worker's priority the thread runs (``service.nlp.priority``).
        self.nice = nice
        self.name = name
        self.token_budget = token_budget
        self.max_sentences = max_sentences
        self._pending: list[_Request] = []
        #: One-off calls on the engine (n-best lists), run before the next batch.
        self._calls: list[tuple[Callable[[], Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]]
        self._calls = []
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches_run = 0
        #: Tokenized forbidden sets (touched only by the inference thread).
        self._sequences: dict[ForbiddenForms, TokenSequences] = {}

    def start(self) -> None:
        """Start the inference thread (idempotent)."""
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread after the batch in hand; pending requests fail with CancelledError."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    async def translate(
        self,
        sentences: Sequence[str],
        on_progress: ProgressCallback | None = None,
        *,
        priority: bool = False,
        forbidden: ForbiddenForms | None = None,
        on_sentences: SentencesCallback | None = None,
    ) -> list[str]:
        """Translate ``sentences`` in order, batched with whatever else the worker is doing.

        ``on_sentences`` hears of each sentence as the batch that completes it ends (batches
        are cut by length, not by position, so sentences finish out of order).

        ``priority`` (the translate lane): while such sentences wait, each batch is cut from
        them alone, so a one-sentence request waits for at most the batch in hand, not for the
        hundreds of sentences of the articles queued before it.

        ``forbidden``: spellings the translations must not contain; these sentences share
        batches only with sentences under the same forbidden token sequences.
        """
        if not sentences:
            return []
        self.start()
        loop = asyncio.get_running_loop()
        request = _Request(
            sentences=list(sentences),
            loop=loop,
            future=loop.create_future(),
            on_progress=on_progress,
            on_sentences=on_sentences,
            priority=priority,
            forbidden=forbidden,
        )
        with self._condition:
            if self._closed:
                raise RuntimeError("the inference scheduler is closed")
            self._pending.append(request)
            self._condition.notify()
        return await request.future

    async def translate_nbest(
        self, sentences: Sequence[str], n: int, *, forbidden: ForbiddenForms | None = None
    ) -> list[list[str]]:
        """The ``n`` best translations of each sentence (best first), computed on the inference
        thread before its next batch (the engine is only ever driven from that thread).

        ``forbidden``: spellings no hypothesis may contain.
        """
        if not sentences:
            return []
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        texts = list(sentences)

        def call() -> list[list[str]]:
            sequences = self._forbidden_sequences(forbidden)
            if sequences is None:
                return self.engine.translate_nbest(texts, n)
            return self.engine.translate_nbest(texts, n, sequences)

        with self._condition:
            if self._closed:
                raise RuntimeError("the inference scheduler is closed")
            self._calls.append((call, loop, future))
            self._condition.notify()
        result: list[list[str]] = await future
        return result

    # --- inference thread ---------------------------------------------------------------------

    @property
    def native_thread_id(self) -> int | None:
        """The inference thread's id as the operating system knows it (None before it starts)."""
        return self._thread.native_id if self._thread is not None else None

    def _run(self) -> None:
        lower_this_thread(self.nice)  # before any inference: compute threads it starts inherit it
        while True:
            with self._condition:
                while not self._pending and not self._calls and not self._closed:
                    self._condition.wait()
                if self._closed:
                    for request in self._pending:
                        self._resolve(request, error=asyncio.CancelledError())
                    self._pending.clear()
                    for _, loop, future in self._calls:
                        _deliver(loop, future, error=asyncio.CancelledError())
                    self._calls.clear()
                    return
                calls, self._calls = self._calls, []
                active = [r for r in self._pending if not r.future.done()]
                # A copy: the failure path below removes from one list while walking the other.
                self._pending = list(active)
            for call, loop, future in calls:
                try:
                    _deliver(loop, future, result=call())
                except Exception as error:  # noqa: BLE001 - handed to the caller
                    _deliver(loop, future, error=error)
            if not active:
                continue
            try:
                self._step(active)
            except Exception as error:  # noqa: BLE001 - handed to the awaiting jobs
                log.warning("translation batch failed", error=repr(error))
                with self._condition:
                    for request in active:
                        if request in self._pending:
                            self._pending.remove(request)
                for request in active:
                    self._resolve(request, error=error)

    def _prepare(self, request: _Request) -> None:
        """Split over-long sentences and count tokens, once per request, in this thread."""
        engine = self.engine

        def count_one(text: str) -> int:
            return engine.count_tokens([text])[0]

        limit = engine.max_source_tokens
        counts = engine.count_tokens(request.sentences)
        for sentence, tokens in zip(request.sentences, counts, strict=True):
            if tokens <= limit:
                pieces, piece_tokens = [sentence], [tokens]
            else:
                pieces = split_long(sentence, count_one, limit)
                piece_tokens = engine.count_tokens(pieces)
            request.pieces.append(pieces)
            request.piece_tokens.append(piece_tokens)
            request.outputs.append([None] * len(pieces))
            request.remaining.append(len(pieces))
        request.sequences = self._forbidden_sequences(request.forbidden)
        request.prepared = True

    def _forbidden_sequences(self, forbidden: ForbiddenForms | None) -> TokenSequences | None:
        """``forbidden`` tokenized by the engine, remembered; None when nothing is forbidden
        (no set, or no form the target vocabulary can spell), so such work batches together."""
        if forbidden is None:
            return None
        sequences = self._sequences.get(forbidden)
        if sequences is None:
            sequences = self.engine.forbidden_sequences(forbidden)
            if len(self._sequences) >= _FORBIDDEN_CACHE_SIZE:
                del self._sequences[next(iter(self._sequences))]
            self._sequences[forbidden] = sequences
        return sequences or None

    def _step(self, active: list[_Request]) -> None:
        """Run one batch chosen from the pooled pieces of the active requests.

        The pool is the urgent requests' pieces while there are any, else every request's,
        narrowed to one forbidden-sequence group: that of the first request (in order of
        arrival) with pieces left.  With one group this is every active request's pieces.
        """
        for request in list(active):
            if not request.prepared:
                try:
                    self._prepare(request)
                except Exception as error:  # noqa: BLE001 - this request's text; fail it alone
                    log.warning("sentences could not be tokenized", error=repr(error))
                    with self._condition:
                        if request in self._pending:
                            self._pending.remove(request)
                    active.remove(request)
                    self._resolve(request, error=error)
        pool: list[tuple[_Request, int, int]] = []
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
        if not pool:
            for request in active:
                self._finish(request)
            return
        batch = plan_batches(
            lengths, token_budget=self.token_budget, max_sentences=self.max_sentences
        )[0]
        texts = [pool[i][0].pieces[pool[i][1]][pool[i][2]] for i in batch]
        if group is None:
            translated = self.engine.translate_batch(texts)
        else:
            translated = self.engine.translate_batch(texts, group)
        self.batches_run += 1
        touched: dict[_Request, list[int]] = {}
        for i, text in zip(batch, translated, strict=True):
            request, s_index, p_index = pool[i]
            request.outputs[s_index][p_index] = text
            request.remaining[s_index] -= 1
            finished = touched.setdefault(request, [])
            if request.remaining[s_index] == 0:
                request.done_sentences += 1
                finished.append(s_index)
        for request, finished in touched.items():
            self._report(request, finished)
            if request.done_sentences == len(request.sentences):
                self._finish(request)
            elif request.on_progress is not None:
                request.loop.call_soon_threadsafe(request.on_progress, request.done_sentences)

    @staticmethod
    def _report(request: _Request, finished: Sequence[int]) -> None:
        """Hand the sentences just finished to the request's ``on_sentences``, in order."""
        fresh = sorted(i for i in finished if i not in request.reported)
        if request.on_sentences is None or not fresh:
            return
        request.reported.update(fresh)
        pairs = [(i, _joined(request.outputs[i])) for i in fresh]
        request.loop.call_soon_threadsafe(request.on_sentences, pairs)

    def _finish(self, request: _Request) -> None:
        with self._condition:
            if request in self._pending:
                self._pending.remove(request)
        # Sentences no batch completed (one with no pieces) are reported now, before the result.
        self._report(request, range(len(request.outputs)))
        if request.on_progress is not None:
            request.loop.call_soon_threadsafe(request.on_progress, len(request.sentences))
        self._resolve(request, result=[_joined(outputs) for outputs in request.outputs])

    @staticmethod
    def _resolve(
        request: _Request, *, result: list[str] | None = None, error: BaseException | None = None
    ) -> None:
        def deliver() -> None:
            if request.future.done():
                return
            if error is not None:
                request.future.set_exception(error)
            else:
                request.future.set_result(result or [])

        with contextlib.suppress(RuntimeError):  # the job's loop may be gone at shutdown
            request.loop.call_soon_threadsafe(deliver)


def _joined(pieces: Sequence[str | None]) -> str:
    """One sentence's translation from its pieces' (an over-long sentence was split)."""
    return " ".join(p for p in pieces if p)


def _deliver(
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
