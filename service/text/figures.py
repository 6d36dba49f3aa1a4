"""Figures in text: numbers, money and percentages, with German and English formats reconciled.

German writes ``1.000`` and ``2,5`` where English writes ``1,000`` and ``2.5``, and a machine
translation often copies the German form.  A separator followed by exactly three digits is
ambiguous (``1.000`` is a thousand in German and one in English) and yields both readings where
the language allows both; any other form has one reading in either language.  Spelled-out numbers
count up to twenty (and "hundred"/"thousand"), with "one", "a" and the German articles only before
a scale word ("a billion", "eine Milliarde"), since elsewhere they are articles or pronouns, not
figures.  German numerals glued into compounds ("fünfstündigen", "sechsmal") count too.

Every pattern here is linear in the text's length: no nested quantifiers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from service.text.fact import Fact, Language

__all__ = ["CURRENCY_WORDS", "NUMBER_WORDS", "figures", "number_readings"]

_WORDS_EN = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_WORDS_DE = [
    "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn",
    "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn", "achtzehn",
    "neunzehn", "zwanzig",
]  # fmt: skip
NUMBER_WORDS: dict[Language, dict[str, int]] = {
    "en": {w: i for i, w in enumerate(_WORDS_EN)} | {"hundred": 100, "thousand": 1000},
    "de": {w: i for i, w in enumerate(_WORDS_DE)} | {"zwo": 2, "hundert": 100, "tausend": 1000},
}
#: Words that are "one" only before a scale word ("a billion", "eine Milliarde").
_ONE_BEFORE_SCALE = frozenset({"a", "an", "one", "ein", "eine", "einer", "einen", "einem"})
#: German numerals glue onto these ("fünfstündigen", "sechsmal", "dreieinhalb").
_DE_NUMBER_SUFFIX = r"(einhalb)?(?:stündig\w*|mal|fach\w*|jährig\w*|tägig\w*|wöchig\w*|köpfig\w*)?"
_SCALES = {
    "hundred": 10**2, "thousand": 10**3, "million": 10**6, "millions": 10**6, "billion": 10**9,
    "billions": 10**9, "trillion": 10**12, "bn": 10**9, "hundert": 10**2, "tausend": 10**3,
    "mio": 10**6, "millionen": 10**6, "milliarde": 10**9,
    "milliarden": 10**9, "mrd": 10**9, "billionen": 10**12,
}  # fmt: skip
_SCALE_DE = {"billion": 10**12, "million": 10**6}  # German "Billion" is a trillion
CURRENCY_WORDS = {
    "$": "USD", "us$": "USD", "dollar": "USD", "dollars": "USD", "usd": "USD",
    "€": "EUR", "euro": "EUR", "euros": "EUR", "eur": "EUR",
    "£": "GBP", "pound": "GBP", "pounds": "GBP", "gbp": "GBP", "pfund": "GBP",
    "rouble": "RUB", "roubles": "RUB", "ruble": "RUB", "rubles": "RUB", "rubel": "RUB",
    "rub": "RUB", "franken": "CHF", "francs": "CHF", "chf": "CHF",
}  # fmt: skip


_NUM = r"(?<![\w.,])(?:\d{1,3}(?:[.,]\d{3})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?![\d]|[.,]\d)"
_TIME = re.compile(r"(?<![\w.,:])\d{1,2}:\d{2}(?![\d:])")


def number_readings(text: str, language: Language) -> frozenset[Decimal]:
    """Every value ``text`` (digits with separators) can mean in ``language``'s writing."""
    digits = text.strip()
    plain = re.fullmatch(r"\d+", digits)
    if plain:
        return frozenset({Decimal(digits)})
    grouped = re.fullmatch(r"\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*", digits)
    if grouped:
        separator = grouped.group(1)
        readings = {Decimal(digits.replace(separator, ""))}
        if digits.count(separator) == 1:
            # "1.000" / "1,000": a thousand in one language, one in the other; keep the decimal
            # reading only where that language writes its decimals with this separator.
            decimal_separator = "," if language == "de" else "."
            if separator == decimal_separator:
                readings.add(Decimal(digits.replace(",", ".")))
        return frozenset(readings)
    mixed = re.fullmatch(r"\d{1,3}(?:([.,])\d{3})+([.,])(\d+)", digits)
    if mixed and mixed.group(1) != mixed.group(2):
        whole, fraction = digits[: mixed.start(2)], mixed.group(3)
        return frozenset({Decimal(whole.replace(mixed.group(1), "") + "." + fraction)})
    single = re.fullmatch(r"(\d+)[.,](\d+)", digits)
    if single:
        return frozenset({Decimal(f"{single.group(1)}.{single.group(2)}")})
    return frozenset()


_SPELLED = {
    language: "|".join(sorted(words, key=len, reverse=True))
    for language, words in NUMBER_WORDS.items()
}
_SCALE_NAMES = "|".join(sorted(_SCALES, key=len, reverse=True))
_AMOUNT = {
    language: re.compile(
        r"(?:(?P<digits>" + _NUM + r")|\b(?P<word>" + _SPELLED[language] + "|"
        + "|".join(_ONE_BEFORE_SCALE) + r")\b)"
        r"(?:\s*(?P<scale>" + _SCALE_NAMES + r")\b\.?)?",
        re.IGNORECASE,
    )
    for language in ("en", "de")
}  # fmt: skip
_DE_COMPOUND = re.compile(
    r"\b(" + _SPELLED["de"] + ")(?=einhalb|stündig|mal|fach|jährig|tägig|wöchig|köpfig)"
    + _DE_NUMBER_SUFFIX + r"\b", re.IGNORECASE,
)  # fmt: skip
_AND_A_HALF = re.compile(r"\s+and\s+a\s+half\b", re.IGNORECASE)
_CURRENCY_BEFORE = re.compile(r"(US\$|\$|€|£)\s?$")
_CURRENCY_AFTER = re.compile(
    r"^\s?(?:(?:US\s)?(" + "|".join(re.escape(w) for w in CURRENCY_WORDS if w.isalpha())
    + r")\b|(\$|€|£))", re.IGNORECASE,
)  # fmt: skip
_PERCENT_AFTER = re.compile(
    r"^\s?(?:%|(?:percent|per\s+cent|percentage\s+points?|prozent(?:punkte)?)\b)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class _Amount:
    start: int
    end: int
    values: frozenset[Decimal]


def _amounts(text: str, language: Language) -> list[_Amount]:
    """Every figure of ``text``: digits or spelled-out words, with a scale word applied."""
    amounts = []
    for match in _AMOUNT[language].finditer(text):
        scale_word = (match.group("scale") or "").lower().rstrip(".")
        scale = (_SCALE_DE if language == "de" else {}).get(scale_word, _SCALES.get(scale_word))
        end = match.end() if scale else match.end("digits" if match.group("digits") else "word")
        if match.group("digits"):
            base = number_readings(match.group("digits"), language)
        else:
            word = match.group("word").lower()
            if word in _ONE_BEFORE_SCALE and word not in NUMBER_WORDS[language]:
                if not scale:
                    continue
                base = frozenset({Decimal(1)})
            elif word in ("one", "eins") and not scale and language == "en":
                continue  # "one of the demands": a pronoun, not a figure
            else:
                base = frozenset({Decimal(NUMBER_WORDS[language][word])})
        half = _AND_A_HALF.match(text, end) if language == "en" and not scale else None
        if half:  # "three and a half hours" is 3.5, and still "three" to a looser summary
            base = base | frozenset(v + Decimal("0.5") for v in base)
            end = half.end()
        values = frozenset(v * scale for v in base) if scale else base
        amounts.append(_Amount(match.start(), end, values))
    if language == "de":
        for match in _DE_COMPOUND.finditer(text):
            value = Decimal(NUMBER_WORDS["de"][match.group(1).lower()])
            halves = {value, value + Decimal("0.5")} if match.group(2) else {value}
            amounts.append(_Amount(match.start(), match.end(), frozenset(halves)))
    return sorted(amounts, key=lambda a: a.start)


def figures(text: str, language: Language) -> list[Fact]:
    """Money, then percentages, then clock times, then plain numbers; overlaps are the caller's.

    The order is the priority: "$1 billion" is money before "1 billion" is a number, and the
    caller (:func:`service.text.facts.extract_facts`) keeps the first of overlapping facts.
    """
    amounts = _amounts(text, language)  # once: on a long sentence this is the costly part
    found = _money(text, amounts) + _percentages(text, amounts)
    # A clock time has no value to reconcile: it is found by its literal text.
    found.extend(Fact("number", m.start(), m.end(), m.group()) for m in _TIME.finditer(text))
    found.extend(Fact("number", a.start, a.end, "", a.values) for a in amounts)
    return [_with_text(fact, text) for fact in found]


def _money(text: str, amounts: list[_Amount]) -> list[Fact]:
    """Amounts with a currency symbol before or a currency word after them."""
    found = []
    for amount in amounts:
        window = max(0, amount.start - 4)
        before = _CURRENCY_BEFORE.search(text[window : amount.start])
        after = _CURRENCY_AFTER.match(text[amount.end : amount.end + 12])
        if before:
            code = CURRENCY_WORDS[before.group(1).lower()]
            start = window + before.start()
            found.append(Fact("money", start, amount.end, "", amount.values, currency=code))
        elif after:
            symbol = (after.group(1) or after.group(2)).lower()
            end = amount.end + after.end()
            found.append(
                Fact("money", amount.start, end, "", amount.values, currency=CURRENCY_WORDS[symbol])
            )
    return found


def _percentages(text: str, amounts: list[_Amount]) -> list[Fact]:
    """Amounts followed by "%", "percent", "Prozent" or "percentage points"."""
    found = []
    for amount in amounts:
        after = _PERCENT_AFTER.match(text[amount.end : amount.end + 24])
        if after:
            end = amount.end + after.end()
            found.append(Fact("percent", amount.start, end, "", amount.values))
    return found


def _with_text(fact: Fact, text: str) -> Fact:
    return Fact(
        fact.kind, fact.start, fact.end, text[fact.start : fact.end], fact.values, fact.date,
        fact.weekday, fact.currency, fact.tokens,
    )  # fmt: skip
