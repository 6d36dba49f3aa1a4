"""Token-budget batching, grouping by forbidden spellings, long-sentence splitting and the
repetition guard."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.nlp.batch_pool import plan_batches
from service.nlp.batching import InferenceScheduler
from service.nlp.engine import ForbiddenForms, ModelRef, TokenSequences, collapse_repeats
from service.text.split import split_long


def words(text: str) -> int:
    """A stand-in token count: one token per word plus end-of-sentence."""
    return len(text.split()) + 1


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=200),
    budget=st.integers(min_value=64, max_value=8192),
    cap=st.integers(min_value=1, max_value=64),
)
def test_batches_cover_every_item_once_within_budget(
    lengths: list[int], budget: int, cap: int
) -> None:
    """Every sentence lands in exactly one batch, and no padded batch exceeds the budget."""
    batches = plan_batches(lengths, token_budget=budget, max_sentences=cap)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= cap
        if len(batch) > 1:
            assert len(batch) * max(lengths[i] for i in batch) <= budget


def test_similar_lengths_are_batched_together() -> None:
    """Sorting by length keeps padding low: short and long sentences do not share a batch."""
    lengths = [5, 300, 6, 290, 7, 310]
    batches = plan_batches(lengths, token_budget=1000, max_sentences=64)
    assert [sorted(b) for b in batches] == [[0, 2, 4], [1, 3, 5]]


def test_split_long_prefers_clause_boundaries() -> None:
    """An over-long sentence is cut after commas, and the pieces rejoin to the original words."""
    sentence = ", ".join(f"Teil {i} des Satzes mit einigen Wörtern" for i in range(20)) + "."
    pieces = split_long(sentence, words, 30)
    assert all(words(piece) <= 30 for piece in pieces)
    assert all(piece.endswith((",", ".")) for piece in pieces)
    assert " ".join(pieces).split() == sentence.split()


def test_split_long_falls_back_to_words_then_characters() -> None:
    """No commas: cut between words; no spaces at all: cut inside the 'word'."""
    no_commas = " ".join(["Wort"] * 100)
    pieces = split_long(no_commas, words, 10)
    assert all(words(p) <= 10 for p in pieces)
    assert " ".join(pieces).split() == no_commas.split()
    blob = "x" * 1000
    chars = split_long(blob, lambda t: len(t) // 10 + 1, 20)
    assert "".join(chars) == blob
    assert all(len(c) // 10 + 1 <= 20 for c in chars)


@given(st.text(min_size=1, max_size=400))
def test_split_long_never_loses_text(text: str) -> None:
    """Whatever the input, splitting keeps every non-space character in order."""
    pieces = split_long(text, lambda t: len(t) // 4 + 1, 8)
    assert "".join("".join(pieces).split()) == "".join(text.split())
    assert all(len(p) // 4 + 1 <= 8 for p in pieces)


@pytest.mark.parametrize(
    ("looping", "expected"),
    [
        ("the the the the the the", "the"),
        ("he said that he said that he said that he said that", "he said that"),
        ("A one-off repeat repeat is kept.", "A one-off repeat repeat is kept."),
        ("Berlin, Berlin, Berlin.", "Berlin, Berlin, Berlin."),
    ],
)
def test_collapse_repeats_cuts_only_degenerate_loops(looping: str, expected: str) -> None:
    """A model stuck in a loop is cut back; ordinary repetition in real text is left alone."""
    assert collapse_repeats(looping) == expected


def test_scheduler_and_splitting_load_no_torch() -> None:
    """The scheduler, the summary map-reduce and long-sentence splitting import without torch."""
    code = (
        "import sys\n"
        "import service.nlp.batching, service.nlp.summarize, service.text.split\n"
        "print(sorted(m for m in ('torch', 'transformers', 'ctranslate2') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]"


# --- grouping by forbidden spellings ------------------------------------------------------------


class GatedEngine:
    """A stand-in engine whose first batch waits for ``gate``, so that the test can queue work
    behind it; it records every batch with the forbidden sequences it was given (None: none)."""

    ref = ModelRef("gated", "1", "test", "none")
    max_source_tokens = 512

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.batches: list[tuple[list[str], TokenSequences | None]] = []
        self.tokenized: list[ForbiddenForms] = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) + 1 for text in texts]

    def forbidden_sequences(self, forbidden: ForbiddenForms) -> TokenSequences:
        self.tokenized.append(forbidden)
        # One "token" per character; a form of "-" spells nothing in this vocabulary.
        return frozenset(tuple(map(ord, form)) for form in forbidden.forms if form != "-")

    def translate_batch(self, texts: Sequence[str], *args: TokenSequences) -> list[str]:
        self.started.set()
        assert self.gate.wait(60), "the test never opened the gate"
        self.batches.append((list(texts), args[0] if args else None))
        return [text.upper() for text in texts]

    def translate_nbest(
        self, texts: Sequence[str], n: int, *args: TokenSequences
    ) -> list[list[str]]:
        self.batches.append((list(texts), args[0] if args else None))
        return [[text.upper()] * n for text in texts]


def _sentences(tag: str, count: int) -> list[str]:
    return [f"{tag} satz {i} " + "wort " * (i % 5) for i in range(count)]


async def _queued_behind_a_running_batch(
    scheduler: InferenceScheduler, engine: GatedEngine
) -> asyncio.Task[list[str]]:
    """Start a one-sentence plain request and return once its batch is running (blocked), so
    that everything submitted next waits in one pool."""
    first = asyncio.create_task(scheduler.translate(["vorab"]))
    assert await asyncio.to_thread(engine.started.wait, 60)
    return first


def _group_of(text: str) -> str:
    return text.split()[0]


async def test_sentences_under_different_forbidden_sets_never_share_a_batch() -> None:
    """Articles under two glossaries' forbidden spellings and a plain article, pending at once,
    are cut into batches of one kind each, every one decoded under its own sequences; a set
    that spells nothing batches with the plain work."""
    engine = GatedEngine()
    scheduler = InferenceScheduler(engine, token_budget=40, max_sentences=6)
    lawrow = ForbiddenForms(frozenset({"Lawrow", "Lawrows"}), frozenset({"Lavrov"}))
    kyjiw = ForbiddenForms(frozenset({"Kyjiw"}), frozenset({"Kyiv"}))
    nothing = ForbiddenForms(frozenset({"-"}))
    try:
        first = await _queued_behind_a_running_batch(scheduler, engine)
        jobs = {
            "a": scheduler.translate(_sentences("a", 9), forbidden=lawrow),
            "b": scheduler.translate(_sentences("b", 7), forbidden=kyjiw),
            "a2": scheduler.translate(_sentences("a2", 5), forbidden=lawrow),
            "p": scheduler.translate(_sentences("p", 8)),
            "n": scheduler.translate(_sentences("n", 3), forbidden=nothing),
        }
        tasks = {tag: asyncio.ensure_future(job) for tag, job in jobs.items()}
        await asyncio.sleep(0)  # every request is queued before the gate opens
        engine.gate.set()
        assert await first == ["VORAB"]
        for tag, task in tasks.items():
            assert await task == [s.upper() for s in _sentences(tag, len(await task))]
    finally:
        scheduler.close()
    # Each set was tokenized once, not once per request or per batch.
    assert engine.tokenized == [lawrow, kyjiw, nothing]
    expected = {
        "a": engine.forbidden_sequences(lawrow),
        "a2": engine.forbidden_sequences(lawrow),
        "b": engine.forbidden_sequences(kyjiw),
        "p": None,
        "n": None,
        "vorab": None,
    }
    for texts, forbidden in engine.batches:
        tags = {_group_of(text) for text in texts}
        assert len({str(expected[tag]) for tag in tags}) == 1, texts
        assert forbidden == expected[_group_of(texts[0])], texts
        assert len(texts) * max(len(t.split()) + 1 for t in texts) <= 40 or len(texts) == 1
    mixed = [texts for texts, _ in engine.batches if {"a", "a2"} <= set(map(_group_of, texts))]
    assert mixed, "two articles under the same set should share batches"
    plain = [texts for texts, _ in engine.batches if {"p", "n"} <= set(map(_group_of, texts))]
    assert plain, "a set that spells nothing should batch with plain work"


async def test_urgent_work_goes_first_whatever_the_forbidden_sets() -> None:
    """A lane request queued behind articles under forbidden spellings is the next batch, under
    its own set (or none), and alone: no article sentence rides along."""
    engine = GatedEngine()
    scheduler = InferenceScheduler(engine, token_budget=400, max_sentences=64)
    lawrow = ForbiddenForms(frozenset({"Lawrow"}), frozenset({"Lavrov"}))
    kyjiw = ForbiddenForms(frozenset({"Kyjiw"}))
    try:
        first = await _queued_behind_a_running_batch(scheduler, engine)
        article = asyncio.ensure_future(scheduler.translate(_sentences("a", 20), forbidden=lawrow))
        plain = asyncio.ensure_future(scheduler.translate(_sentences("p", 20)))
        urgent = asyncio.ensure_future(
            scheduler.translate(["eilig eins"], priority=True, forbidden=kyjiw)
        )
        urgent_plain = asyncio.ensure_future(scheduler.translate(["eilig zwei"], priority=True))
        await asyncio.sleep(0)
        engine.gate.set()
        assert await urgent == ["EILIG EINS"]
        assert await urgent_plain == ["EILIG ZWEI"]
        await asyncio.gather(first, article, plain)
    finally:
        scheduler.close()
    after_gate = engine.batches[1:]
    assert after_gate[0] == (["eilig eins"], engine.forbidden_sequences(kyjiw))
    assert after_gate[1] == (["eilig zwei"], None)
    rest = {_group_of(t) for texts, _ in after_gate[2:] for t in texts}
    assert rest == {"a", "p"}


async def test_nbest_lists_are_decoded_under_the_forbidden_sequences() -> None:
    """The n-best fallback passes the set's token sequences to the engine, and none without."""
    engine = GatedEngine()
    engine.gate.set()
    scheduler = InferenceScheduler(engine)
    lawrow = ForbiddenForms(frozenset({"Lawrow"}))
    try:
        assert await scheduler.translate_nbest(["x y"], 2, forbidden=lawrow) == [["X Y", "X Y"]]
        assert await scheduler.translate_nbest(["z"], 1) == [["Z"]]
    finally:
        scheduler.close()
    assert engine.batches == [(["x y"], engine.forbidden_sequences(lawrow)), (["z"], None)]
