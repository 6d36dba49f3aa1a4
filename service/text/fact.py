"""The shape of one checkable fact, shared by the scanners that find facts and the checker."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = ["Fact", "FactKind", "Language", "SpanSet"]

FactKind = Literal["number", "date", "weekday", "money", "percent", "name"]
Language = Literal["en", "de"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One checkable fact: where it stands in its text and what it says, normalized."""

    kind: FactKind
    start: int
    end: int
    text: str
    #: Numbers, money and percentages: every reading of the figure (scale applied).
    values: frozenset[Decimal] = frozenset()
    #: Dates: (day, month, year), any of day and year may be missing; the month never is.
    date: tuple[int | None, int, int | None] | None = None
    #: Weekdays: Monday is 0.
    weekday: int | None = None
    #: Money: the currency code ("USD", "EUR", ...) when one is named.
    currency: str | None = None
    #: Names: the capitalized words to find, lowercased, dots and possessives removed.
    tokens: tuple[str, ...] = field(default=())


class SpanSet:
    """Spans claimed first come, first served; a span that overlaps a claimed one is refused.

    Kept sorted, so a claim costs a binary search: a sentence of 50,000 figures is checked in
    well under a second, where comparing each new span with all earlier ones took minutes.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def claim(self, start: int, end: int) -> bool:
        """Take ``[start, end)`` unless it overlaps a span already taken; says whether it did."""
        i = bisect.bisect_right(self._starts, start)
        if i > 0 and self._ends[i - 1] > start:
            return False
        if i < len(self._starts) and self._starts[i] < end:
            return False
        self._starts.insert(i, start)
        self._ends.insert(i, end)
        return True
