"""The checkable facts of a text: numbers, dates, weekdays, money, percentages and names.

A summarizer that invents does so in exactly these places (a figure, a shifted date, a person
who is not in the article), and they are the ones an editor can check mechanically.  The same
scanner reads the English summary, the English translation and the German source, so that a fact
of the summary and the evidence for it are recognised by the same rules; ``language`` only
decides how digits are read and which words name months, weekdays and numbers.

Figures (numbers, money, percentages) are read by :mod:`service.text.figures`, which reconciles
German and English number formats; dates and weekdays are read in both languages here.

Names are capitalized words.  A single capitalized word at the start of a sentence is not taken
for a name (it is capitalized because of where it stands) unless it is an acronym ("TASS"); a
capitalized run starting there is, without a leading function word ("The Kremlin" is the name
"Kremlin").  Months, weekdays and spelled-out numbers are dates and numbers, not names.

Every pattern here is linear in the text's length: no nested quantifiers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from service.text.fact import Fact, FactKind, Language, SpanSet
from service.text.figures import NUMBER_WORDS, figures

__all__ = ["Fact", "FactKind", "Language", "extract_facts", "name_tokens"]

_MONTHS_EN = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
]  # fmt: skip
_MONTHS_DE = [
    "januar", "februar", "märz", "april", "mai", "juni", "juli", "august", "september",
    "oktober", "november", "dezember",
]  # fmt: skip
_MONTH_NUMBER = {name: i + 1 for names in (_MONTHS_EN, _MONTHS_DE) for i, name in enumerate(names)}
_MONTH_NUMBER |= {"jänner": 1, "sept": 9}
_MONTH_NUMBER |= {m[:3]: i + 1 for i, m in enumerate(_MONTHS_EN) if m != "may"}
_WEEKDAYS_EN = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAYS_DE = ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"]
_WEEKDAY_NUMBER = {d: i for days in (_WEEKDAYS_EN, _WEEKDAYS_DE) for i, d in enumerate(days)}
_WEEKDAY_NUMBER["sonnabend"] = 5

#: Capitalized words that open sentences without being names.
_STARTERS = frozenset(
    re.findall(
        r"\w+",
        """a an the in on at by for from to of with after before during when while as if but and
        or so yet this that these those there here it its he she they we you his her their our
        my your what which who why how where despite although though since until according both
        neither either some many most several another each every all no not meanwhile however
        also only just even still then now today yesterday tomorrow later earlier under over
        instead""",
    )
)
_NOT_NAMES = frozenset(
    {"i", *_MONTH_NUMBER, *_WEEKDAY_NUMBER, *NUMBER_WORDS["en"], *NUMBER_WORDS["de"]}
)

_ISO_DATE = re.compile(r"(?<![\w.])(\d{4})-(\d{2})-(\d{2})(?![\w])")
_NUMERIC_DATE = re.compile(r"(?<![\w.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\w])")
_WORD = re.compile(r"[^\W\d_][\w'’.\-]*", re.UNICODE)


def name_tokens(span: str) -> tuple[str, ...]:
    """The parts of a name to look for: capitalized pieces, lowercased, without dots or 's."""
    tokens = []
    for word in re.split(r"[\s\-–]+", span):
        word = re.sub(r"(?:['’]s?|\.)$", "", word).replace(".", "")
        if word[:1].isupper() and word.lower() not in _NOT_NAMES:
            tokens.append(word.lower())
    return tuple(tokens)


def extract_facts(
    text: str,
    language: Language = "en",
    *,
    names: bool = True,
    known_names: Iterable[str] = (),
) -> list[Fact]:
    """The checkable facts of ``text`` in order of position; spans never overlap.

    Scanners run from the most specific to the least: a date owns its day and year, money and
    percentages own their figures, and what is left of the digits are plain numbers.  Names are
    read in English text only (``names=False`` skips them where only figures are wanted);
    ``known_names`` (glossary targets) are names wherever they stand, even at a sentence start.
    """
    spans = SpanSet()
    scanners = [_dates, figures, _weekdays]
    facts = [
        fact
        for scanner in scanners
        for fact in scanner(text, language)
        if spans.claim(fact.start, fact.end)
    ]
    if names and language == "en":
        found = [*_known_names(text, known_names), *_names(text)]
        facts.extend(fact for fact in found if spans.claim(fact.start, fact.end))
    return sorted(facts, key=lambda f: f.start)


# --- dates -----------------------------------------------------------------------------------

_MONTH_NAMES = "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th|\.)?"
_RANGE = r"(?:\s*(?:-|–|to|and|bis|und)\s*" + _DAY + r")?"
_YEAR = r"(?:,?\s+(\d{4})(?!\d))?"
_DAY_MONTH = re.compile(
    r"(?<![\w.,])" + _DAY + _RANGE + r"\s+(?:of\s+)?(" + _MONTH_NAMES + r")\.?\b" + _YEAR,
    re.IGNORECASE,
)
_MONTH_DAY = re.compile(
    r"\b("
    + _MONTH_NAMES
    + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?!\d)"
    + _RANGE
    + r"(?![\d.,]\d)"
    + _YEAR,
    re.IGNORECASE,
)
_MONTH_ALONE = re.compile(r"\b(" + _MONTH_NAMES + r")\b" + _YEAR, re.IGNORECASE)


_FULL_MONTHS = frozenset({*_MONTHS_EN, *_MONTHS_DE, "jänner"})


def _dates(text: str, language: Language) -> list[Fact]:
    found: list[Fact] = []

    def emit(
        match: re.Match[str], day: str | None, day2: str | None, name: str, year: str | None
    ) -> None:
        month = _MONTH_NUMBER.get(name.lower().rstrip("."))
        if month is None or not name[:1].isupper():
            return  # "may"/"march" in lower case are verbs, not months
        if day is not None and not 1 <= int(day) <= 31:
            return
        # "4 to 5 February": the span's date is the first day, the second is one of its values.
        values = frozenset({Decimal(day2)}) if day2 else frozenset()
        date = (int(day) if day else None, month, int(year) if year else None)
        found.append(Fact("date", match.start(), match.end(), match.group(), values, date=date))

    for pattern, order in ((_ISO_DATE, (2, 1, 0)), (_NUMERIC_DATE, (0, 1, 2))):
        for match in pattern.finditer(text):
            parts = [int(g) for g in match.groups()]
            d, m, y = (parts[i] for i in order)
            if 1 <= m <= 12 and 1 <= d <= 31:
                date = (d, m, y)
                found.append(Fact("date", match.start(), match.end(), match.group(), date=date))
    for match in _DAY_MONTH.finditer(text):
        day, day2, name, year = match.groups()
        emit(match, day, day2, name, year)
    for match in _MONTH_DAY.finditer(text):
        name, day, day2, year = match.groups()
        emit(match, day, day2, name, year)
    for match in _MONTH_ALONE.finditer(text):
        name, year = match.groups()
        if name.lower() in _FULL_MONTHS:  # abbreviations alone ("Mar", "Jan") are other words
            emit(match, None, None, name, year)
    return found


# --- weekdays and names ------------------------------------------------------------------------

_WEEKDAY = re.compile(
    r"\b(" + "|".join(sorted(_WEEKDAY_NUMBER, key=len, reverse=True)) + r")(?:s\b|\w*)",
    re.IGNORECASE,
)


def _weekdays(text: str, language: Language) -> list[Fact]:
    found = []
    for match in _WEEKDAY.finditer(text):
        if not match.group()[:1].isupper():
            continue
        if language == "en" and match.group().lower().rstrip("s") not in _WEEKDAY_NUMBER:
            continue  # English has no "Mondayabend" compounds
        day = _WEEKDAY_NUMBER[match.group(1).lower()]
        found.append(Fact("weekday", match.start(), match.end(), match.group(), weekday=day))
    return found


def _known_names(text: str, known: Iterable[str]) -> list[Fact]:
    """Occurrences of the given names as whole words, longest names first."""
    found = []
    for name in sorted({n.strip() for n in known if n.strip()}, key=len, reverse=True):
        tokens = name_tokens(name) or tuple(word.lower() for word in name.split())
        for match in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text):
            found.append(Fact("name", match.start(), match.end(), match.group(), tokens=tokens))
    return found


_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n)[\s\-–•*\"“„'‘(]*")
_ACRONYM = re.compile(r"(?:[A-Z]\.){2,}")
_CONNECTORS = frozenset({"of", "de", "von", "van", "der", "al", "bin", "la", "le", "du"})


def _names(text: str) -> list[Fact]:
    """Runs of capitalized words (with connectors such as "of" inside), minus sentence openers."""
    starts = {m.end() for m in _SENTENCE_START.finditer(text)}
    words = list(_WORD.finditer(text))
    found: list[Fact] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        while run and run[-1].group().lower() in _CONNECTORS:
            run.pop()
        if run and run[0].start() in starts:
            opener = run[0].group().lower()
            bare = re.sub(r"(?:['’]s?|\.)$", "", run[0].group()).replace(".", "")
            acronym = len(bare) >= 2 and bare.isupper()  # "TASS", "NATO": capitals anywhere
            if (len(run) == 1 and not acronym) or opener in _STARTERS or opener in _NOT_NAMES:
                run.pop(0)
        while run and run[0].group().lower() in _CONNECTORS | _NOT_NAMES:
            run.pop(0)
        if run:
            start, end = run[0].start(), run[-1].end()
            span = re.sub(r"(?:['’]s?|[.\-])$", "", text[start:end])
            tokens = name_tokens(span)
            if tokens:
                found.append(Fact("name", start, start + len(span), span, tokens=tokens))
        run.clear()

    previous_end = -1
    for word in words:
        gap = text[previous_end : word.start()] if previous_end >= 0 else " "
        capital = word.group()[:1].isupper() and word.group().lower() not in _NOT_NAMES
        connector = word.group() in _CONNECTORS and bool(run)
        # A possessive ends a name: "Moscow's Kremlin" is two names, not one.
        ends_name = bool(run) and run[-1].group().endswith(("'s", "’s"))
        ends_sentence = bool(run) and run[-1].group().endswith(".")
        if ends_sentence and _ACRONYM.fullmatch(run[-1].group()):
            ends_sentence = False
        if run and (gap != " " or ends_name or ends_sentence or not (capital or connector)):
            close()
        if capital or (connector and run):
            run.append(word)
        previous_end = word.end()
    close()
    return found
