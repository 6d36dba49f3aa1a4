"""Token-budget batching, long-sentence splitting and the repetition guard."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.nlp.batching import plan_batches
from service.nlp.engine import collapse_repeats
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
