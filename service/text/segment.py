"""Sentence segmentation of German article text, keeping the article's layout.

MarianMT translates one sentence at a time, so an article is cut into sentences before
translation and the translations are put back into the same paragraphs and lines afterwards
(:func:`join_sentences`).  Headlines, bylines and list items are on lines of their own and rarely
end with a full stop, so lines are split first and only then is each line cut into sentences:
a headline can never be glued onto the paragraph below it.

The sentence splitter is SoMaJo (``de_CMC``), which knows German ordinals ("22. Januar",
"4. bis 5. Februar") and abbreviations ("z. B."), so those do not end a sentence.  Each sentence's
text is cut out of the original line by the tokens' character offsets rather than rebuilt from
tokens, so spacing, quotes and punctuation come through exactly as written.

SoMaJo gets a paragraph's lines in one call (a call has a fixed cost of about a tenth of a
millisecond, which made articles of many short lines slow) and the sentences it returns are cut
at the line breaks again; what it decided differently because it saw the neighbouring lines is
undone, so the result is exactly that of splitting each line on its own.

Three things are added on top of SoMaJo:

* Quotations.  SoMaJo splits inside a quotation of several sentences
  (``Er sagte: „Das ist gut. Sehr gut.“``), which leaves an unbalanced „ in one piece and a
  dangling “ in the next; the translation of either half then loses the quotation.  Sentences are
  therefore merged again while a „…“ or »…« quotation is open and closes later on the same line.
* Boundaries without whitespace.  SoMaJo also ends sentences inside a whitespace-free run, e.g.
  after "@Presse." in "Folge @Presse.Online für …" (a seed article).  Such pieces are merged
  again: a handle or name is not mangled, and joining the sentences with spaces gives back the
  line's words unchanged.  The price is that a typo such as "erzielt.Die" (missing space) keeps
  two sentences together, which the translation model copes with.
  Both kinds of merging stop at :data:`MAX_MERGE_CHARS`, so that one stray „ cannot swallow a
  whole paragraph into a single translation unit.
* Long whitespace-free runs.  SoMaJo's tokenizer is quadratic or worse in the length of a run of
  characters without whitespace that contains punctuation (``"a.a.a.…"``: 1,000 chars 0.1 s,
  5,000 chars 3.5 s, 20,000 chars 130 s), whereas ordinary text, even 100,000 characters on a
  single line, is linear.  Runs longer than :data:`MAX_RUN_CHARS` are therefore replaced by
  letters of the same length before SoMaJo sees them (a trailing full stop or question mark and
  closing quotes are kept, so a sentence can still end there).  The replacement has the same
  length, so the offsets still point into the original line and the text is cut from there
  unchanged.  No real word is that long; what is affected is long URLs and junk, and since a
  boundary inside a whitespace-free run is undone anyway (previous point), masking changes the
  running time, not the result.  Long lines are deliberately not cut into chunks: the cost is in
  the runs, not in the line length, and a cut could fall in the middle of a sentence.
"""

from __future__ import annotations

import bisect
import itertools
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_MERGE_CHARS",
    "MAX_RUN_CHARS",
    "Sentence",
    "join_sentences",
    "split_sentences",
]

#: Whitespace-free runs longer than this are masked before SoMaJo sees them (see module docstring).
MAX_RUN_CHARS = 100

#: Sentences are merged (inside a quotation, or where no whitespace separates them) only while the
#: result stays this short, so that a single stray quote mark cannot turn a long line into one huge
#: translation unit.
MAX_MERGE_CHARS = 1_000

# How many trailing characters of a masked run are kept as they are, so that "….html." or
# "…!“" still ends a sentence.  Bounded so that a run of 100,000 dots is still masked.
_MAX_KEPT_TAIL = 8

_LONG_RUN = re.compile(rf"\S{{{MAX_RUN_CHARS + 1},}}")
_SENTENCE_TAIL = re.compile(r"[.!?…]+[\"'“”»«)\]]*\Z")

# German quotation marks: „…“ (also „…” in careless typesetting) and »…«.  English-style “…” is
# not tracked: “ is the German closing mark, so its direction is ambiguous.
_OPENING_QUOTES = frozenset("„»")
_CLOSING_QUOTES = frozenset("“”«")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of an article and where it sits in the article's layout."""

    text: str
    """The sentence, stripped, exactly as it is written in the input."""
    paragraph: int
    """0-based index of its paragraph; paragraphs are separated by blank lines."""
    line: int
    """0-based index of its line within the paragraph."""


_splitter: Any = None
_splitter_lock = threading.Lock()


def _get_splitter() -> Any:
    """Return the process-wide SoMaJo instance, building it on first use.

    Building it reads abbreviation lists and compiles many regexes, so it is done once.  The
    caller must hold ``_splitter_lock``: SoMaJo makes no promise of being thread-safe.
    """
    global _splitter
    if _splitter is None:
        from somajo import SoMaJo  # costly import, deferred until a text is actually split

        _splitter = SoMaJo(
            "de_CMC", split_camel_case=False, split_sentences=True, character_offsets=True
        )
    return _splitter


def _mask_long_runs(line: str) -> str:
    """Replace whitespace-free runs longer than MAX_RUN_CHARS by letters of the same length."""

    def mask(match: re.Match[str]) -> str:
        run = match.group()
        tail = _SENTENCE_TAIL.search(run[-_MAX_KEPT_TAIL:])
        kept = tail.group() if tail else ""
        return "x" * (len(run) - len(kept)) + kept

    return _LONG_RUN.sub(mask, line)


def _somajo_spans(lines: Sequence[str]) -> list[list[tuple[int, int]]]:
    """Per line of a paragraph, the (start, end) offsets of the sentences SoMaJo finds in it.

    All lines go to SoMaJo in one call, joined by "\n": a call costs about a tenth of a
    millisecond whatever its length, so an article of many short lines ("a.b\n" x 1,250, 5,000
    characters) took half a second line by line.  Each sentence is then cut where it crosses a
    line break, since a line always ends a sentence here.  With the next line in view SoMaJo
    decides two things differently from a line on its own, and both are undone (see
    :func:`_as_if_alone`), so the spans are those of splitting every line by itself.
    """
    masked = "\n".join(_mask_long_runs(line) for line in lines)
    with _splitter_lock:
        token_sentences: list[list[Any]] = list(_get_splitter().tokenize_text([masked]))
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    spans: list[list[tuple[int, int]]] = [[] for _ in lines]
    continued = [False] * len(lines)  # the line's first piece is a sentence begun on a line above
    for tokens in token_sentences:
        current = -1  # the line this sentence's last piece is on
        for token in tokens:  # none for e.g. a line of nothing but zero-width characters
            start, end = token.character_offset
            first = bisect.bisect_right(starts, start) - 1
            last = bisect.bisect_right(starts, end - 1) - 1
            for index in range(first, last + 1):  # a token crossing a line break is cut too
                offset = starts[index]
                piece = (max(start, offset) - offset, min(end, offset + len(lines[index])) - offset)
                if first != last:  # SoMaJo read past the line break and any invisible
                    # characters beside it (";\u200b\n(" is the emoticon ";("): a line on its
                    # own has no token there.
                    piece = _visible_part(
                        lines[index], *piece, start=index > first, end=index < last
                    )
                if piece[1] <= piece[0]:
                    continue
                if index == current:
                    spans[index][-1] = (spans[index][-1][0], piece[1])
                    continue
                if current != -1 and not spans[index]:
                    continued[index] = True
                spans[index].append(piece)
                current = index
    return [
        _as_if_alone(line, line_spans, continued=line_continued)
        for line, line_spans, line_continued in zip(lines, spans, continued, strict=True)
    ]


def _visible_part(line: str, begin: int, stop: int, *, start: bool, end: bool) -> tuple[int, int]:
    """``line[begin:stop]`` without the whitespace and format characters (zero-width space,
    BOM) at its ``start`` and/or its ``end``; empty when nothing else is in it."""

    def invisible(char: str) -> bool:
        return char.isspace() or unicodedata.category(char) == "Cf"

    while start and begin < stop and invisible(line[begin]):
        begin += 1
    while end and stop > begin and invisible(line[stop - 1]):
        stop -= 1
    return begin, stop


def _as_if_alone(
    line: str, spans: list[tuple[int, int]], *, continued: bool
) -> list[tuple[int, int]]:
    """Undo what SoMaJo decided on a line only because the line after or before it was there.

    SoMaJo ends a sentence at a "." (or "!", "?", "…") when the next word starts with a capital,
    looking past opening and closing marks and emoticons.  On its own, a line's last tokens have
    no next word, so no boundary falls among them; joined, the next line's first word does.  So:

    * a line's last piece holding no letter or digit (the „ or ( or – after "Ja. " that SoMaJo
      moved to the next sentence) goes back to the piece before it;
    * a line's first piece that continues a sentence from the line above and holds no sentence
      end of its own (an emoticon or closing mark SoMaJo attached to that sentence) goes with
      the piece after it.
    """
    if continued and len(spans) >= 2 and not any(c in ".!?…" for c in line[slice(*spans[0])]):
        spans = [(spans[0][0], spans[1][1]), *spans[2:]]
    while len(spans) >= 2 and not any(c.isalnum() for c in line[slice(*spans[-1])]):
        spans = [*spans[:-2], (spans[-2][0], spans[-1][1])]
    return spans


def _quote_depths(line: str) -> tuple[list[int], list[int]]:
    """Per position, the quotation depth there and where the quotation open there closes.

    ``depth[i]`` is the number of German quotations open just before ``line[i]`` (never below
    zero: a stray closing mark is ignored).  ``closes_at[i]`` is the first position ``j >= i``
    at which the depth is back to zero, or ``len(line) + 1`` if it never is.
    """
    depth = [0] * (len(line) + 1)
    level = 0
    for i, char in enumerate(line):
        if char in _OPENING_QUOTES:
            level += 1
        elif char in _CLOSING_QUOTES:
            level = max(0, level - 1)
        depth[i + 1] = level
    closes_at = [0] * (len(line) + 1)
    next_zero = len(line) + 1
    for i in range(len(line), -1, -1):
        if depth[i] == 0:
            next_zero = i
        closes_at[i] = next_zero
    return depth, closes_at


def _merge_spans(line: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge adjacent sentences that SoMaJo split inside a quotation or without whitespace.

    A boundary is undone if a quotation is open there and closes later on the line, or if no
    whitespace separates the two sentences; either way only while the merged sentence stays
    within MAX_MERGE_CHARS.
    """
    if len(spans) < 2:
        return spans
    if any(char in _OPENING_QUOTES for char in line):
        depth, closes_at = _quote_depths(line)
    else:
        depth, closes_at = [0] * (len(line) + 1), [0] * (len(line) + 1)
    merged = [spans[0]]
    for start, end in spans[1:]:
        previous_start, previous_end = merged[-1]
        inside_quote = depth[previous_end] > 0 and closes_at[previous_end] <= len(line)
        glued = not any(char.isspace() for char in line[previous_end:start])
        if (inside_quote or glued) and end - previous_start <= MAX_MERGE_CHARS:
            merged[-1] = (previous_start, end)
        else:
            merged.append((start, end))
    return merged


def _line_sentences(line: str, spans: list[tuple[int, int]]) -> list[str]:
    """One line's sentences, each cut verbatim out of the line and stripped."""
    return [text for start, end in _merge_spans(line, spans) if (text := line[start:end].strip())]


def _paragraphs(text: str) -> Iterator[list[str]]:
    """Yield each paragraph as its list of non-blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paragraph: list[str] = []
    for line in lines:
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            yield paragraph
            paragraph = []
    if paragraph:
        yield paragraph


def split_sentences(text: str) -> list[Sentence]:
    """Cut an article into sentences, each tagged with its paragraph and line.

    Paragraphs are separated by one or more blank (whitespace-only) lines, lines by "\\n";
    "\\r\\n" and a lone "\\r" count as "\\n".  Indices are consecutive over the paragraphs and
    lines that hold at least one sentence, so blank lines leave no gaps.  The sentences of an
    article cover all of its text except whitespace (and invisible characters such as zero-width
    spaces between sentences).
    """
    sentences: list[Sentence] = []
    paragraph_index = 0
    for paragraph in _paragraphs(text):
        line_index = 0
        for line, spans in zip(paragraph, _somajo_spans(paragraph), strict=True):
            line_texts = _line_sentences(line, spans)
            if not line_texts:
                continue
            sentences.extend(Sentence(t, paragraph_index, line_index) for t in line_texts)
            line_index += 1
        if line_index:
            paragraph_index += 1
    return sentences


def join_sentences(sentences: Sequence[Sentence], texts: Sequence[str]) -> str:
    """Lay ``texts`` out the way ``sentences`` were laid out in the article.

    ``texts[i]`` replaces ``sentences[i]`` (typically it is its translation).  Texts of one line
    are joined with a single space, lines with "\\n" and paragraphs with "\\n\\n".  A new line or
    paragraph starts wherever the sentences' ``line`` or ``paragraph`` changes, so a filtered
    subsequence of :func:`split_sentences`' result is laid out sensibly too.  Texts are stripped;
    empty ones are left out, and so are lines and paragraphs left without any text.

    Raises:
        ValueError: ``sentences`` and ``texts`` differ in length, which would silently shift every
            translation onto the wrong sentence.
    """
    if len(sentences) != len(texts):
        raise ValueError(
            f"{len(sentences)} sentences but {len(texts)} texts: they must correspond one to one"
        )
    paragraphs: list[list[list[str]]] = []
    previous: Sentence | None = None
    for sentence, raw in zip(sentences, texts, strict=True):
        if previous is None or sentence.paragraph != previous.paragraph:
            paragraphs.append([[]])
        elif sentence.line != previous.line:
            paragraphs[-1].append([])
        previous = sentence
        if stripped := raw.strip():
            paragraphs[-1][-1].append(stripped)
    rendered = ("\n".join(" ".join(line) for line in lines if line) for lines in paragraphs)
    return "\n\n".join(paragraph for paragraph in rendered if paragraph)
