"""Each fact of a summary, looked up in the article: supported, or flagged for the editor.

A fact is supported when one aligned sentence carries it: the English translation first, then,
for figures, dates and weekdays, the German source sentence (a translation model drops or mangles
numbers more often than it invents them, so the German is the better witness when the English
lost one).  Names are looked up in the translation only, since a German sentence spells them
differently; a glossary mapping (German form -> English form) bridges that gap: a sentence that
holds the German form counts as holding the English one.

Matching is by value, not by string: "1,000" in the summary is found as "1.000" in the German,
"2.5 percent" as "2,5 Prozent", "Tuesday" as "Dienstag", "22 January 2026" as "22. Januar 2026".
A date is supported by a sentence naming the same month and, where the summary gives them, the
same day and year; a sentence that names the day but no year lends its support when the year
appears elsewhere in the article.  Names match word by word, case-insensitively, all their words
in one sentence ("President Putin" is found in "President Vladimir Putin").

What this does not catch: a fact that is in the article but attached to the wrong subject (the
summary's "Kushner met Putin on 23 January" where the article has a different meeting on that
date).  It checks presence, not relations.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from service.schemas import FactCheck
from service.text.fact import Fact, Language
from service.text.facts import extract_facts, name_tokens
from service.text.figures import CURRENCY_WORDS

__all__ = ["Evidence", "check_summary", "flagged", "gather_evidence"]

_SOURCE_WORD = re.compile(r"[^\W\d_][\w'’.]*", re.UNICODE)
_CURRENCY_MARK = re.compile(
    r"US\$|\$|€|£|\b(?:" + "|".join(w for w in CURRENCY_WORDS if w.isalpha()) + r")\b",
    re.IGNORECASE,
)
_FIGURE_KINDS = frozenset({"number", "date", "weekday", "money", "percent"})

Date = tuple[int | None, int, int | None]


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one article sentence offers as support, normalized like the summary's facts."""

    text: str
    values: frozenset[Decimal]
    percents: frozenset[Decimal]
    currencies: frozenset[str]
    dates: tuple[Date, ...]
    weekdays: frozenset[int]
    words: frozenset[str]


def gather_evidence(
    sentence: str, language: Language, names: Mapping[str, str] | None = None
) -> Evidence:
    """The facts and words of one sentence; German sentences offer words only via ``names``."""
    facts = extract_facts(sentence, language, names=False)
    values: set[Decimal] = set()
    percents: set[Decimal] = set()
    dates: list[Date] = []
    for fact in facts:
        if fact.kind in ("number", "money", "percent"):
            values |= fact.values
        if fact.kind == "percent":
            percents |= fact.values
        if fact.date is not None:
            _day, month, year = fact.date
            dates.append(fact.date)
            dates.extend((int(second), month, year) for second in fact.values)
            if year is not None:
                values.add(Decimal(year))
    currencies = {CURRENCY_WORDS[m.group().lower()] for m in _CURRENCY_MARK.finditer(sentence)}
    words: set[str] = set()
    if language == "en":
        words |= _words(sentence)
    for german_form, english_form in (names or {}).items():
        if german_form and re.search(rf"(?<!\w){re.escape(german_form)}(?!\w)", sentence):
            words |= set(name_tokens(english_form)) | _words(english_form)
    return Evidence(
        text=sentence,
        values=frozenset(values),
        percents=frozenset(percents),
        currencies=frozenset(currencies),
        dates=tuple(dates),
        weekdays=frozenset(f.weekday for f in facts if f.weekday is not None),
        words=frozenset(words),
    )


def _words(text: str) -> set[str]:
    """Lowercased words without dots or possessives, hyphenated words also in their parts."""
    words = set()
    for match in _SOURCE_WORD.finditer(text):
        for part in re.split(r"[-–]", match.group()):
            word = re.sub(r"['’]s?$", "", part).replace(".", "").lower()
            if word:
                words.add(word)
    return words


def _supports(fact: Fact, evidence: Evidence, years: frozenset[int]) -> bool:
    """Whether one sentence carries ``fact``."""
    if fact.kind == "number":
        if not fact.values:  # a clock time: found by its literal text
            literal = rf"(?<![\d:]){re.escape(fact.text)}(?![\d:])"
            return re.search(literal, evidence.text) is not None
        return bool(fact.values & evidence.values)
    if fact.kind == "percent":
        return bool(fact.values & evidence.percents)
    if fact.kind == "money":
        currency_ok = fact.currency is None or fact.currency in evidence.currencies
        return currency_ok and bool(fact.values & evidence.values)
    if fact.kind == "weekday":
        return fact.weekday in evidence.weekdays
    if fact.kind == "date" and fact.date is not None:
        _day, month, year = fact.date
        # A range ("4 to 5 February") claims each of its days.
        claimed = [fact.date, *((int(second), month, year) for second in fact.values)]
        return all(
            any(_same_date(date, other, years) for other in evidence.dates) for date in claimed
        )
    if fact.kind == "name":
        return all(token in evidence.words for token in fact.tokens)
    return False


def _same_date(claimed: Date, found: Date, years: frozenset[int]) -> bool:
    day, month, year = claimed
    if month != found[1] or (day is not None and day != found[0]):
        return False
    if year is None or year == found[2]:
        return True
    return found[2] is None and year in years


def check_summary(
    summary: str,
    english: Sequence[str],
    german: Sequence[str],
    *,
    names: Mapping[str, str] | None = None,
) -> list[FactCheck]:
    """Every checkable fact of ``summary``, looked up in the aligned article sentences.

    ``english[i]`` is the translation of ``german[i]``; a check's ``sentence`` is that index.
    ``names`` maps German name forms to English ones (glossary targets).
    """
    facts = extract_facts(summary, "en", known_names=(names or {}).values())
    if not facts:
        return []
    in_english = [gather_evidence(s, "en", names) for s in english]
    in_german = [gather_evidence(s, "de", names) for s in german]
    years = frozenset(
        int(value)
        for evidence in (*in_english, *in_german)
        for value in evidence.values
        if value == value.to_integral_value() and 1000 <= value <= 2999
    )
    checks = []
    for fact in facts:
        found_in: Literal["translation", "source"] | None = None
        index: int | None = None
        sides: tuple[tuple[Literal["translation", "source"], list[Evidence]], ...] = (
            ("translation", in_english),
            ("source", in_german),
        )
        for where, sentences in sides:
            if where == "source" and fact.kind not in _FIGURE_KINDS and not names:
                break
            index = next(
                (i for i, ev in enumerate(sentences) if _supports(fact, ev, years)),
                None,
            )
            if index is not None:
                found_in = where
                break
        checks.append(
            FactCheck(
                kind=fact.kind,
                text=fact.text,
                start=fact.start,
                end=fact.end,
                supported=index is not None,
                sentence=index,
                found_in=found_in,
            )
        )
    return checks


def flagged(checks: Sequence[FactCheck]) -> list[str]:
    """The texts of the unsupported facts, in summary order (what ``summary_flags`` holds)."""
    return [check.text for check in checks if not check.supported]
