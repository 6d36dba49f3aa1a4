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
itself.  The requests it holds, the choice of the next batch's pool and the cut by token budget
are ``service.nlp.batch_pool``'s; this module owns the thread and the engine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from service.nlp.batch_pool import (
    PendingRequest,
    ProgressCallback,
    SentencesCallback,
    joined,
    plan_batches,
    pool_pieces,
    settle,
)
from service.nlp.engine import ForbiddenForms, TokenSequences, TranslationEngine
from service.nlp.priority import lower_this_thread
from service.text.split import split_long

log = structlog.get_logger(__name__)

#: Forbidden sets whose token sequences are kept, so that an article's set is tokenized once
#: rather than once per batch; a worker sees few distinct sets at a time.
_FORBIDDEN_CACHE_SIZE = 256


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
        self._pending: list[PendingRequest] = []
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
        request = PendingRequest(
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
                        settle(loop, future, error=asyncio.CancelledError())
                    self._calls.clear()
                    return
                calls, self._calls = self._calls, []
                active = [r for r in self._pending if not r.future.done()]
                # A copy: the failure path below removes from one list while walking the other.
                self._pending = list(active)
            for call, loop, future in calls:
                try:
                    settle(loop, future, result=call())
                except Exception as error:  # noqa: BLE001 - handed to the caller
                    settle(loop, future, error=error)
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

    def _prepare(self, request: PendingRequest) -> None:
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

    def _step(self, active: list[PendingRequest]) -> None:
        """Run one batch chosen from the pooled pieces of the active requests (see
        ``service.nlp.batch_pool.pool_pieces``)."""
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
        pool, lengths, group = pool_pieces(active)
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
        touched: dict[PendingRequest, list[int]] = {}
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
    def _report(request: PendingRequest, finished: Sequence[int]) -> None:
        """Hand the sentences just finished to the request's ``on_sentences``, in order."""
        fresh = sorted(i for i in finished if i not in request.reported)
        if request.on_sentences is None or not fresh:
            return
        request.reported.update(fresh)
        pairs = [(i, joined(request.outputs[i])) for i in fresh]
        request.loop.call_soon_threadsafe(request.on_sentences, pairs)

    def _finish(self, request: PendingRequest) -> None:
        with self._condition:
            if request in self._pending:
                self._pending.remove(request)
        # Sentences no batch completed (one with no pieces) are reported now, before the result.
        self._report(request, range(len(request.outputs)))
        if request.on_progress is not None:
            request.loop.call_soon_threadsafe(request.on_progress, len(request.sentences))
        self._resolve(request, result=[joined(outputs) for outputs in request.outputs])

    @staticmethod
    def _resolve(
        request: PendingRequest,
        *,
        result: list[str] | None = None,
        error: BaseException | None = None,
    ) -> None:
        settle(request.loop, request.future, result=result or [], error=error)
