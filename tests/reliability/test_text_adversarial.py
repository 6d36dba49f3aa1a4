"""Sentence splitting and language detection stay fast and linear on adversarial text.

Every article passes through :func:`split_sentences` and :func:`detect_language` in the worker,
and every line through :func:`detect_language` in the API, before any model runs.  Text built to
hit a slow path (SoMaJo is quadratic on some inputs, see ``service.text.segment``) must not turn
a 5,000-character request into seconds of CPU.  Two rules per case:

* absolute: at :data:`CASE_CHARS` characters (10,000 for the „„„ case, as in the issue), the
  worker's segmentation stage (split, then detect over the sentences) and the API's check
  (detect over the lines) each cost at most a few times (:data:`MAX_TIMES_PLAIN`) what plain
  German text of the same length costs them, measured in the same run;
* growth: doubling the input from :data:`RATIO_CHARS` (a few ms of work) at most multiplies the
  time by 2.5, so the cost is linear, not quadratic, in the length.

Timings are this process's CPU time (``time.process_time``), not the wall clock: on a machine
whose cores are shared, time spent waiting for a core is not the code's cost.  They are the
minimum of several interleaved repeats, and a measurement over its limit is taken again, up to
five rounds, as cache and frequency effects of a load burst can spoil one round but a slow or
quadratic cost (4x per doubling) exceeds the limit every time.

Splitting once called SoMaJo line by line, at a fixed ~0.1-0.4 ms per call, so 5,000 characters
of short lines cost up to half a second; it now splits a paragraph in one call and cuts the
result at the line breaks.  The last test holds it to the line-by-line result on random text.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.settings import ROOT
from service.text import segment
from service.text.language import detect_language
from service.text.segment import Sentence, split_sentences

#: Size of each case for the absolute rule, in characters.
CASE_CHARS = 5_000
#: The smaller size of the doubling pair.
RATIO_CHARS = 1_000
#: An adversarial article may cost this many times a plain German article of the same length,
#: both measured in the same run (so a busy machine slows both alike).  Plain seed text costs
#: the worker about 60 ms per 5,000 characters here and the API about 3 ms; the slow paths this
#: suite found cost 50x and more.  The API's check pays a fixed few microseconds per line, so
#: 5,000 characters of one-letter lines cost it 5x plain text (15 ms) when the machine is idle
#: and up to 7x when it is busy: linear, harmless, and well below the slow paths, so its bound
#: is wider.  The worker's stays tight: splitting line by line once cost it 9x.
MAX_TIMES_PLAIN = {"worker": 5.0, "api": 10.0}
MAX_GROWTH = 2.5
ABSOLUTE_REPEATS = 3
RATIO_REPEATS = 7
#: A measurement over its limit is taken again, up to this many rounds this far apart.
ROUNDS = 5
ROUND_PAUSE_S = 0.3
#: A timing loops a stage until it lasts about this long, so fast stages are timed reliably.
MIN_TIMING_MS = 3.0

#: The ``figures`` fixture (tests/reliability/conftest.py) prints and records a test's figures.
Figures = Callable[..., None]


def repeat_to(pattern: str, chars: int) -> str:
    """``pattern`` repeated and cut to exactly ``chars`` characters."""
    return (pattern * (chars // len(pattern) + 1))[:chars]


def nested_brackets(chars: int) -> str:
    half = chars // 2
    return "(" * half + ")" * (chars - half)


def one_grapheme(chars: int) -> str:
    """A single letter carrying thousands of combining accents."""
    return "a" + "\u0301\u0308\u0323" * (chars // 3) + "a" * ((chars - 1) % 3)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[int], str]
    chars: int = CASE_CHARS


CASES = [
    Case("dots", lambda n: "." * n),
    Case("dots-spaced", lambda n: repeat_to(". ", n)),
    Case("ellipses-and-words", lambda n: repeat_to("Es geschah am 3. ... und dann … ", n)),
    Case("abbreviations", lambda n: repeat_to("z. B. u. a. Dr. Prof. Nr. 3. bzw. usw. ca. ", n)),
    Case("abbreviations-unspaced", lambda n: repeat_to("z.B.u.a.Dr.Prof.Nr.3.bzw.usw.", n)),
    Case("no-space-punctuation", lambda n: repeat_to("a.b,c;d!e?f:g", n)),
    Case("no-space-mixed", lambda n: repeat_to("Wort.Wort!wort?„x“(y)[z]...", n)),
    Case("long-url", lambda n: "https://example.org/" + repeat_to("a.b/c?d=e&f.", n - 20)),
    Case("quotes-10k", lambda n: "„" * n, chars=10_000),
    Case("quotes-spaced", lambda n: repeat_to("„ ", n)),
    Case("quoted-sentences", lambda n: repeat_to("„Er sagte: „Ja. Nein.“ Gut.“ ", n)),
    Case("unbalanced-quotes", lambda n: repeat_to("„Das ist gut. Sehr gut. ", n)),
    Case("nested-brackets", nested_brackets),
    Case(
        "nested-brackets-spaced",
        lambda n: repeat_to("( [ { « ‹ ", n // 2) + repeat_to(") ", n - n // 2),
    ),
    Case("emoji-zwj", lambda n: repeat_to("👨\u200d👩\u200d👧\u200d👦🏳️\u200d🌈", n)),
    Case("emoji-zwj-spaced", lambda n: repeat_to("👨\u200d👩\u200d👧 🏳️\u200d🌈. ", n)),
    Case("rtl", lambda n: repeat_to("שלום עולם. مرحبا بالعالم! ", n)),
    Case("rtl-overrides", lambda n: repeat_to("\u202eDie Sonne\u202c \u200fscheint.\u200e ", n)),
    Case("combining-words", lambda n: repeat_to("e\u0301\u0302\u0303 Zu\u0308ge. ", n)),
    Case("combining-one-grapheme", one_grapheme),
    Case("blank-lines", lambda n: "\n" * n),
    Case("short-lines", lambda n: repeat_to("a.\n", n)),
    Case("word-lines", lambda n: repeat_to("Wort\n", n)),
    Case("mixed-line-endings", lambda n: repeat_to("Satz.\r\n\r\v\f\u2028\u0085", n)),
    Case("mixed-scripts", lambda n: repeat_to("Die Sonne 太阳 солнце ήλιος सूर्य 해. ", n)),
    Case("mixed-scripts-unspaced", lambda n: repeat_to("Sonne太阳солнцеήλιοςसूर्य해.", n)),
    Case("invisible-and-control", lambda n: repeat_to("\u200b\u00ad\ufeff\x00\x1f\x7f", n)),
]


def segmentation_stage(text: str) -> None:
    """What the worker does first: split, then judge the language sentence by sentence."""
    detect_language([sentence.text for sentence in split_sentences(text)])


def api_language_check(text: str) -> None:
    """What the API does before queueing: judge the language line by line."""
    detect_language([line.strip() for line in text.splitlines() if line.strip()])


STAGES: dict[str, Callable[[str], None]] = {
    "worker": segmentation_stage,
    "api": api_language_check,
}


def fastest_ms(work: Callable[[str], None], texts: list[str], repeats: int) -> list[float]:
    """Per text, the fastest of ``repeats`` timings in ms per call; texts interleaved per round.

    Each timing runs ``work`` often enough to last about :data:`MIN_TIMING_MS` on the first
    text, so that sub-millisecond stages are timed in bulk rather than by the timer's noise.
    """
    started = time.process_time()
    work(texts[0])
    single_ms = (time.process_time() - started) * 1000
    loops = max(1, min(1000, math.ceil(MIN_TIMING_MS / max(single_ms, 1e-3))))
    best = [float("inf")] * len(texts)
    for _ in range(repeats):
        for index, text in enumerate(texts):
            started = time.process_time()
            for _ in range(loops):
                work(text)
            best[index] = min(best[index], (time.process_time() - started) * 1000 / loops)
    return best


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Load SoMaJo and py3langid once, so no case pays for it."""
    segmentation_stage("Die Sonne scheint. Der Regen fällt.\n„Ja“, sagte er.")


@pytest.fixture(scope="module")
def plain_ms() -> dict[tuple[str, int], float]:
    """Per stage and length, what plain German seed text costs, measured once in this run."""
    seeds = sorted((Path(__file__).resolve().parents[2] / "seeds").glob("*.txt"))
    plain = "\n\n".join(path.read_text(encoding="utf-8") for path in seeds * 4)
    lengths = sorted({case.chars for case in CASES})
    return {
        (stage, length): fastest_ms(work, [plain[:length]], ABSOLUTE_REPEATS)[0]
        for stage, work in STAGES.items()
        for length in lengths
    }


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_adversarial_text_is_segmented_fast_and_linearly(
    case: Case, figures: Figures, plain_ms: dict[tuple[str, int], float]
) -> None:
    """An adversarial article costs at most 5x plain text of its length to split (10x for the
    API's line check), and doubling it at most 2.5x."""
    full = case.build(case.chars)
    small, double = case.build(RATIO_CHARS), case.build(2 * RATIO_CHARS)
    assert len(full) == case.chars and len(small) == RATIO_CHARS and len(double) == 2 * RATIO_CHARS
    sentences = len(split_sentences(full))
    measured: dict[str, Any] = {"chars": case.chars, "sentences": sentences}
    failures: list[str] = []
    for stage, work in STAGES.items():
        limit_ms = MAX_TIMES_PLAIN[stage] * plain_ms[(stage, case.chars)]
        absolute = growth = math.inf
        small_ms = double_ms = 0.0
        # A load burst can spoil a round of timings; a slow or quadratic cost spoils every round.
        for attempt in range(ROUNDS):
            if attempt:
                time.sleep(ROUND_PAUSE_S)  # let the burst pass
            if absolute >= limit_ms:
                absolute = min(absolute, *fastest_ms(work, [full], ABSOLUTE_REPEATS))
            if growth > MAX_GROWTH:
                small_ms, double_ms = fastest_ms(work, [small, double], RATIO_REPEATS)
                growth = min(growth, double_ms / small_ms)
            if absolute < limit_ms and growth <= MAX_GROWTH:
                break
        measured[f"{stage}_ms"] = round(absolute, 1)
        measured[f"{stage}_plain_ms"] = round(limit_ms / MAX_TIMES_PLAIN[stage], 1)
        measured[f"{stage}_{RATIO_CHARS}_ms"] = round(small_ms, 3)
        measured[f"{stage}_{2 * RATIO_CHARS}_ms"] = round(double_ms, 3)
        measured[f"{stage}_growth"] = round(growth, 2)
        if absolute >= limit_ms:
            failures.append(
                f"{stage}: {absolute:.0f} ms at {case.chars} chars, limit {limit_ms:.0f}"
            )
        if growth > MAX_GROWTH:
            failures.append(f"{stage}: doubling {RATIO_CHARS} chars costs {growth:.2f}x")
    figures(f"adversarial:{case.name}", **measured)
    assert not failures, failures


# --- splitting a paragraph at once equals splitting it line by line -------------------------------


def split_line_by_line(text: str) -> list[Sentence]:
    """The reference: every line through SoMaJo on its own, as split_sentences once did."""
    sentences: list[Sentence] = []
    paragraph_index = 0
    for paragraph in segment._paragraphs(text):
        line_index = 0
        for line in paragraph:
            with segment._splitter_lock:
                found = list(segment._get_splitter().tokenize_text([segment._mask_long_runs(line)]))
            spans = [(t[0].character_offset[0], t[-1].character_offset[1]) for t in found if t]
            texts = [x for a, b in segment._merge_spans(line, spans) if (x := line[a:b].strip())]
            if texts:
                sentences.extend(Sentence(t, paragraph_index, line_index) for t in texts)
                line_index += 1
        if line_index:
            paragraph_index += 1
    return sentences


#: Pieces that make SoMaJo look across a line end: sentence ends, opening and closing marks,
#: emoticons, abbreviations, capitals, invisible characters.
_PIECES = [
    *"aAzZäÖß019 .!?…,;:-–—()[]\"'„“”»«‚‘›‹/@#&%",
    *["z. B.", "Dr.", "usw.", "3.", "II.", ":)", ";-)", "🔔", "👍", "👨\u200d👩", "\u200b"],
    *["\u00ad", "\ufeff", "\u202e", "e\u0301", "Der", "die", "USA", "S.", "Nr.", "\t", "  "],
    *["„Ja.“", "(Nein.)", "@user", "#tag", "...", "!!", "?!", "http://x.de/a.b", "x" * 120],
]
_LINE = st.lists(st.sampled_from(_PIECES), max_size=20).map("".join)
_TEXT = st.lists(_LINE, min_size=1, max_size=8).map("\n".join)


@pytest.mark.parametrize("seed", sorted(p.name for p in (ROOT / "seeds").glob("*.txt")))
def test_seed_articles_split_as_line_by_line(seed: str) -> None:
    """The seed articles split into exactly the sentences of splitting each line alone."""
    text = (ROOT / "seeds" / seed).read_text(encoding="utf-8")
    assert split_sentences(text) == split_line_by_line(text)


# derandomize: every run tries the same 300 texts, so CI cannot fail on a text no run before
# it tried; one that random search found since (below, xfail) is a known difference to fix.
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(text=_TEXT)
@example(text="Es klingelt! 🔔\n🔔 Folge uns.\nJa. „\nDer Satz. (\nNeu. –\n– Sagt er.")
@example(text="Er kam am 3.\nJanuar. z.\nB. so.\n:) Hallo.\n„Ja.“\nNein.")
@example(text=";\u200b\n(Nein.)")  # a zero-width space before the line break
@example(text=";\n\u200b(Nein.)")  # and after it
def test_paragraph_at_once_splits_like_line_by_line(text: str) -> None:
    """Splitting a paragraph in one SoMaJo call gives the same sentences as line by line."""
    assert split_sentences(text) == split_line_by_line(text)


@pytest.mark.xfail(
    strict=True,
    reason='joined to the line above, SoMaJo ends a sentence after "S." that it keeps going alone',
)
def test_an_abbreviation_after_a_line_of_digits_splits_like_line_by_line() -> None:
    """Found by the random search above: "S.\tA" is one sentence on its own, two after "0"."""
    text = "0\nS.\tA"
    assert split_sentences(text) == split_line_by_line(text)
