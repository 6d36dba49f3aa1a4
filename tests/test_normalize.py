"""The text normalization behind every cache key: fast, and the same keys as before.

``normalize_text`` folds blanks with ``str.split`` instead of a regular expression per line (it
runs on every cache hit).  A different result would change every cache key and turn every
stored result into a miss, so it is compared with the regular-expression version it replaced.
"""

from __future__ import annotations

import random
import re

from service.text.normalize import nfc, normalize_text
from tests.test_api import GERMAN, OTHER_GERMAN

_WHITESPACE = re.compile(r"\s+")


def normalized_by_regex(text: str) -> str:
    """The former implementation, kept here as the reference."""
    text = nfc(text).replace("\r\n", "\n").replace("\r", "\n")
    folded = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [_WHITESPACE.sub(" ", line).strip() for line in paragraph.split("\n")]
        kept = "\n".join(line for line in lines if line)
        if kept:
            folded.append(kept)
    return "\n\n".join(folded)


#: Letters, every kind of blank Python knows (line separators, no-break and ideographic spaces,
#: control blanks) and non-blanks that look like one (zero-width space, BOM), a combining mark.
PIECES = [
    *("a", "Ä", "ß", "e\u0301"),
    *(" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85"),
    *("\u00a0", "\u2000", "\u2028", "\u2029", "\u3000", "\u200b", "\ufeff"),
]


def test_normalization_matches_the_regex_version_on_random_blank_soup() -> None:
    """Thousands of short texts made of letters and odd blanks normalize exactly as before."""
    rng = random.Random(17)
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        assert normalize_text(text) == normalized_by_regex(text), repr(text)


def test_normalization_matches_the_regex_version_on_articles() -> None:
    """Real articles, also with Windows line ends and padded blank lines, keep their keys."""
    for article in (GERMAN, OTHER_GERMAN):
        for variant in (article, article.replace("\n", "\r\n"), article.replace("\n\n", "\n \t\n")):
            assert normalize_text(variant) == normalized_by_regex(variant)


def test_paragraphs_and_lines_survive_blanks_fold() -> None:
    """Blank lines separate paragraphs, single breaks stay, runs of blanks become one space."""
    assert normalize_text("  Eins\t zwei \n drei\n\n \n\nVier  ") == "Eins zwei\ndrei\n\nVier"
