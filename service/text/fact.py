"""The shape of one checkable fact, shared by the scanners that find facts and the checker."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

__all__ = ["Fact", "FactKind", "Language"]

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
