"""The summary fact check on hand-written English/German pairs, one kind of fact at a time."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from decimal import Decimal

import msgspec
import pytest

from service.schemas import FactCheck, Result
from service.text.factcheck import check_summary, flagged
from service.text.facts import extract_facts
from service.text.figures import number_readings

#: A small aligned article: English translation and German source, sentence by sentence.
ENGLISH = [
    "The Kremlin said on Tuesday that the talks with Vladimir Putin lasted five hours.",
    "Around 1.000 people attended the forum in Moscow.",
    "Inflation fell to 2,5 percent in December, the central bank said.",
    "The meeting took place on 22 January 2026; the next one is planned for 4 to 5 February.",
    "Putin said that one billion dollars could go to the fund.",
    "His adviser Juri Uschakow briefed journalists.",
    "The delegation travelled to the Kremlin in the evening.",
]
GERMAN = [
    "Der Kreml sagte am Dienstag, die Gespräche mit Wladimir Putin hätten fünf Stunden gedauert.",
    "Rund 1.000 Menschen nahmen an dem Forum in Moskau teil.",
    "Die Inflation sank im Dezember auf 2,5 Prozent, sagte die Zentralbank.",
    "Das Treffen fand am 22. Januar 2026 statt; das nächste ist für den 4. bis 5. Februar geplant.",
    "Putin sagte, eine Milliarde Dollar könnte an den Fonds gehen.",
    "Sein Berater Juri Uschakow informierte Journalisten.",
    "Die Delegation reiste am Montagabend in den Kreml.",
]


def check(summary: str, names: Mapping[str, str] | None = None) -> dict[str, FactCheck]:
    """The checks of ``summary`` against the article above, by fact text."""
    checks = check_summary(summary, ENGLISH, GERMAN, names=names)
    for item in checks:
        assert summary[item.start : item.end] == item.text
    return {item.text: item for item in checks}


@pytest.mark.parametrize(
    ("text", "language", "values"),
    [
        ("1,000", "en", {1000}),
        ("1.000", "de", {1000}),
        ("1.000", "en", {1000, 1}),
        ("2.5", "en", {Decimal("2.5")}),
        ("2,5", "de", {Decimal("2.5")}),
        ("2,5", "en", {Decimal("2.5")}),
        ("1,234,567.5", "en", {Decimal("1234567.5")}),
        ("1.234.567,5", "de", {Decimal("1234567.5")}),
    ],
)
def test_number_formats_are_reconciled(text: str, language: str, values: set[Decimal]) -> None:
    """German and English separators are read as the language writes them; "1.000" both ways."""
    assert number_readings(text, language) == values  # type: ignore[arg-type]


def test_english_thousands_match_german_thousands() -> None:
    """A summary's "1,000 people" is found as "1.000" in the article; "1,500" is not."""
    checks = check("About 1,000 people came to Moscow, not 1,500.")
    assert checks["1,000"].supported
    assert checks["1,000"].sentence == 1
    assert not checks["1,500"].supported


def test_percent_with_german_decimal_comma() -> None:
    """Both "2.5 percent" and "2.5 per cent" match "2,5 percent"; "3.5 percent" does not."""
    checks = check("Inflation fell to 2.5 percent, not 3.5 percent.")
    assert checks["2.5 percent"].kind == "percent"
    assert checks["2.5 percent"].supported
    assert checks["2.5 percent"].sentence == 2
    assert not checks["3.5 percent"].supported
    assert check("Inflation hit 2.5 per cent.")["2.5 per cent"].supported


def test_percent_found_in_german_when_translation_lost_it() -> None:
    """A percentage the translation dropped is still supported by the German "2,5 Prozent"."""
    english = ["Inflation fell, the central bank said."]
    german = ["Die Inflation sank auf 2,5 Prozent, sagte die Zentralbank."]
    [fact] = check_summary("Inflation fell to 2.5 percent.", english, german)
    assert fact.supported
    assert fact.found_in == "source"
    assert fact.sentence == 0


def test_spelled_out_numbers() -> None:
    """Spelled "five hours" is checked as 5, "seven hours" flagged, "one of" is no figure."""
    checks = check("One of the talks lasted five hours; another lasted seven hours.")
    assert checks["five"].kind == "number"
    assert checks["five"].supported
    assert not checks["seven"].supported
    assert "One" not in checks


def test_spelled_out_number_matches_digits_and_german_compounds() -> None:
    """Digits match spelled-out words, and "six" matches the German compound "sechsmal"."""
    assert check("The talks lasted 5 hours.")["5"].supported
    [fact] = check_summary(
        "They met six times.", ["They met often."], ["Sie trafen sich sechsmal."]
    )
    assert fact.supported
    assert fact.found_in == "source"


def test_halves_in_english_and_german() -> None:
    """Halves match: 3.5 is found as "dreieinhalb"; "four and a half" is flagged."""
    english = ["The talks lasted three and a half hours."]
    german = ["Die Gespräche dauerten dreieinhalb Stunden."]
    checks = {c.text: c for c in check_summary("It took 3.5 hours.", ["It took long."], german)}
    assert checks["3.5"].supported
    assert checks["3.5"].found_in == "source"
    checks = {
        c.text: c
        for c in check_summary("Three and a half hours, not four and a half.", english, german)
    }
    assert not checks["four and a half"].supported


def test_money_needs_amount_and_currency() -> None:
    """Money "$1 billion" matches "one billion dollars"; "2 billion" or "euros" do not."""
    checks = check("Putin said $1 billion, or 1 billion euros, or 2 billion dollars, could go.")
    assert checks["$1 billion"].kind == "money"
    assert checks["$1 billion"].supported
    assert not checks["1 billion euros"].supported
    assert not checks["2 billion dollars"].supported


def test_dates_and_a_shifted_date() -> None:
    """The article's date is supported; a shifted day or a wrong year is flagged."""
    checks = check("They met on January 22, 2026, again on 23 January and on 22 January 2025.")
    assert checks["January 22, 2026"].kind == "date"
    assert checks["January 22, 2026"].supported
    assert checks["January 22, 2026"].sentence == 3
    assert not checks["23 January"].supported
    assert not checks["22 January 2025"].supported


def test_date_range_claims_each_day() -> None:
    """A range is supported day by day: "4 to 6 February" is flagged for its second day."""
    assert check("Talks are planned for 4 to 5 February.")["4 to 5 February"].supported
    assert not check("Talks are planned for 4 to 6 February.")["4 to 6 February"].supported


def test_month_and_german_numeric_date() -> None:
    """A month alone is a date; "3 December 2025" is found as "03.12.2025" in the German."""
    assert check("Inflation fell in December.")["December"].supported
    assert not check("Inflation fell in November.")["November"].supported
    [fact] = check_summary(
        "The report is dated 3 December 2025.", ["Status: 11:00"], ["Stand: 03.12.2025, 11:00 Uhr"]
    )
    assert fact.supported
    assert fact.found_in == "source"


def test_weekdays_in_english_and_german() -> None:
    """Tuesday is in the translation, Monday only in the German "Montagabend", Friday nowhere."""
    checks = check(
        "On Tuesday the Kremlin spoke, on Monday the delegation came, on Friday it left."
    )
    assert checks["Tuesday"].kind == "weekday"
    assert checks["Tuesday"].found_in == "translation"
    assert checks["Monday"].supported
    assert checks["Monday"].found_in == "source"
    assert checks["Monday"].sentence == 6
    assert not checks["Friday"].supported


def test_name_absent_from_the_article_is_flagged() -> None:
    """A person the article never names is flagged; one it names is supported."""
    checks = check("The talks with Vladimir Putin and Mike Pompeo lasted five hours.")
    assert checks["Vladimir Putin"].supported
    assert checks["Vladimir Putin"].sentence == 0
    assert not checks["Mike Pompeo"].supported
    assert checks["Mike Pompeo"].kind == "name"


def test_name_only_in_german_transliteration_needs_the_mapping() -> None:
    """A name only in German transliteration is flagged without a glossary, supported with it."""
    summary = "Putin's adviser Yuri Ushakov briefed journalists."
    assert not check(summary)["Yuri Ushakov"].supported
    mapped = check(summary, names={"Juri Uschakow": "Yuri Ushakov"})["Yuri Ushakov"]
    assert mapped.supported
    assert mapped.sentence == 5


def test_name_mapping_works_from_the_german_source() -> None:
    """A German form only in the source sentence supports its English form through the mapping."""
    english = ["His adviser briefed journalists."]
    german = ["Sein Berater Juri Uschakow informierte Journalisten."]
    [fact] = check_summary(
        "His adviser Yuri Ushakov spoke.", english, german, names={"Juri Uschakow": "Yuri Ushakov"}
    )
    assert fact.supported
    assert fact.found_in == "source"


def test_glossary_targets_are_names_even_at_a_sentence_start() -> None:
    """A glossary target opening a sentence is checked: supported if mapped, flagged if absent."""
    glossary = {"Juri Uschakow": "Ushakov", "Sergej Lawrow": "Lavrov"}
    supported = check("Ushakov briefed journalists.", names=glossary)["Ushakov"]
    assert supported.supported
    assert supported.sentence == 5
    assert not check("Lavrov briefed journalists.", names=glossary)["Lavrov"].supported
    assert check("Lavrov briefed journalists.") == {}


def test_sentence_initial_capitals_are_not_names() -> None:
    """Words like "Meanwhile" or "Officials" at a sentence start are not checked as names."""
    summary = "Meanwhile, prices rose. Officials were silent. Inflation fell. The Kremlin spoke."
    kinds = {item.text: item.kind for item in check_summary(summary, ENGLISH, GERMAN)}
    assert kinds == {"Kremlin": "name"}
    assert check(summary)["Kremlin"].supported


def test_capitalized_run_at_sentence_start_is_a_name() -> None:
    """A capitalized run ("Mike Pompeo met ...") at a sentence start is checked, and flagged."""
    checks = check("Mike Pompeo met Putin. Vladimir Putin spoke.")
    assert not checks["Mike Pompeo"].supported
    assert checks["Vladimir Putin"].supported


def test_a_possessive_ends_a_name() -> None:
    """A possessive ends a name: "Moscow's Kremlin" is two names, each found on its own."""
    english = ["The forum was held in Moscow.", "The Kremlin said nothing."]
    checks = check_summary("They met in Moscow's Kremlin.", english, [])
    assert [(c.text, c.supported) for c in checks] == [("Moscow", True), ("Kremlin", True)]


def test_names_match_whole_words_case_insensitively() -> None:
    """Every word of a name must be in one sentence: "President Putin" yes, "Premier Putin" no."""
    english = ["President Vladimir Putin spoke.", "The premier spoke."]
    assert all(c.supported for c in check_summary("He met President Putin.", english, []))
    assert not check_summary("He met Premier Putin.", english, [])[0].supported


def test_flags_name_the_unsupported_facts_in_order() -> None:
    """``flagged`` lists the texts of the unsupported facts, in the summary's order."""
    checks = check_summary(
        "Mike Pompeo met Putin on 23 January in Moscow with 7 aides.", ENGLISH, GERMAN
    )
    assert flagged(checks) == ["Mike Pompeo", "23 January", "7"]


def test_summary_without_facts_has_no_checks() -> None:
    """A summary with nothing checkable yields no checks and no flags."""
    assert check_summary("talks went on and on.", ENGLISH, GERMAN) == []


def test_old_cached_results_still_decode() -> None:
    """A result cached before fact checks existed decodes with empty checks and flags."""
    old = {
        "title_en": None,
        "translation": "t",
        "summary": "s",
        "style": "standard",
        "source_language": "de",
        "german_share": 1.0,
        "sentences_in": 1,
        "sentences_translated": 1,
        "sentences_from_cache": 0,
        "alignment": [],
        "models": {},
        "timings_ms": {},
        "summary_chunks": 1,
        "summary_rounds": 1,
    }
    result = msgspec.json.decode(msgspec.json.encode(old), type=Result)
    assert result.checks == []
    assert result.summary_flags == []
    assert (result.summary_attempts, result.summary_kept) == (1, 1)


def test_extraction_spans_do_not_overlap() -> None:
    """Dates, money and percentages own their digits: no number fact inside them."""
    facts = extract_facts("On 22 January 2026 $5 billion, 2.5 percent and 1,000 people.")
    assert [f.kind for f in facts] == ["date", "money", "percent", "number"]
    spans = [(f.start, f.end) for f in facts]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_a_huge_sentence_of_figures_is_checked_in_linear_time() -> None:
    """A 100,000-character sentence of 50,000 figures is checked in seconds, not minutes."""
    hostile = "1 " * 50_000
    started = time.perf_counter()
    checks = check_summary("About 1,000 people came on 22 January.", [hostile], [hostile])
    elapsed_s = time.perf_counter() - started
    assert [c.supported for c in checks] == [False, False]
    assert elapsed_s < 20, elapsed_s  # comparing every span with every other one took ~10 min
