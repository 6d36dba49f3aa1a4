"""Glossaries as DeepL defines them: entries parsed and validated, exported, digested, and the
server's default glossary files validated at start-up."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.errors import ConfigError, InputError
from service.settings import ROOT
from service.text.glossary import (
    MAX_ENTRIES,
    MAX_ENTRIES_BYTES,
    MAX_TERM_BYTES,
    Glossary,
    GlossaryEntriesError,
    GlossaryEntry,
    GlossaryError,
    GlossaryTooLargeError,
    UnsupportedGlossaryLanguagesError,
    parse_entries,
)
from service.text.glossary_files import (
    DEFAULT_GLOSSARY_ID,
    GlossaryFileError,
    load_default_glossary,
)

#: The transliterations issue 15 names; the default glossary must carry every one.
ISSUE_NAMES = {
    "Uschakow": "Ushakov",
    "Rjabkow": "Ryabkov",
    "Lawrow": "Lavrov",
    "Dmitrijew": "Dmitriev",
    "Selenskyj": "Zelensky",
    "Peskow": "Peskov",
    "Kyjiw": "Kyiv",
}


def make(entries: str, entries_format: str = "tsv", **overrides: str) -> Glossary:
    fields = {"name": "Namen", "source_lang": "DE", "target_lang": "EN"} | overrides
    return Glossary.create(entries=entries, entries_format=entries_format, **fields)


# --- parsing ------------------------------------------------------------------------------------


def test_tsv_entries_parse_in_order_with_any_line_ending() -> None:
    """TSV lines split on \\n, \\r\\n or \\r; blank lines are skipped; terms are trimmed."""
    entries = parse_entries("Lawrow\tLavrov\r\n\n  Peskow \t Peskov\rKyjiw\tKyiv\n")
    assert entries == (
        GlossaryEntry("Lawrow", "Lavrov"),
        GlossaryEntry("Peskow", "Peskov"),
        GlossaryEntry("Kyjiw", "Kyiv"),
    )


def test_a_byte_order_mark_is_not_part_of_the_first_term() -> None:
    """A spreadsheet's UTF-8 BOM before the first entry is dropped, in TSV and CSV alike."""
    assert parse_entries("\ufeffLawrow\tLavrov")[0].source == "Lawrow"
    assert parse_entries("\ufeffLawrow,Lavrov", "csv")[0].source == "Lawrow"


def test_csv_entries_follow_rfc_4180_quoting_and_deepl_language_columns() -> None:
    """CSV takes quoted fields with commas and doubled quotes, and DeepL's 4-column export."""
    text = (
        'Lawrow,Lavrov\n"Kiew, Stadt","Kyiv, city"\n"„Rat“","the ""Council"""\n'
        "Peskow,Peskov,de,en\n"
    )
    assert parse_entries(text, "csv") == (
        GlossaryEntry("Lawrow", "Lavrov"),
        GlossaryEntry("Kiew, Stadt", "Kyiv, city"),
        GlossaryEntry("„Rat“", 'the "Council"'),
        GlossaryEntry("Peskow", "Peskov"),
    )


@pytest.mark.parametrize(
    ("text", "entries_format", "line", "problem"),
    [
        ("Lawrow\tLavrov\nPeskow Peskov\n", "tsv", 2, "no tab"),
        ("Lawrow\tLavrov\tLawrow\n", "tsv", 1, "more than one tab"),
        ("Lawrow\tLavrov\n\nLawrow\tLavrov2\n", "tsv", 3, "duplicate source term 'Lawrow'"),
        ("Lawrow\t \n", "tsv", 1, "empty target term"),
        ("\tLavrov\n", "tsv", 1, "empty source term"),
        ("Law\x00row\tLavrov\n", "tsv", 1, "U+0000"),
        ("Lawrow\tLav\x85rov\n", "tsv", 1, "U+0085"),
        ("Lawrow\tLav\u2028rov\n", "tsv", 1, "U+2028"),
        ("Lawrow\tLavrov\nPeskow\n", "tsv", 2, "no tab"),
        ("Lawrow,Lavrov,Peskov\n", "csv", 1, "3 columns"),
        ("Lawrow,Lavrov,fr,en\n", "csv", 1, "not DE, EN"),
        ('Lawrow,"Lavrov\n', "csv", 1, "not valid CSV"),
        ("\n  \n", "tsv", 1, "no entries"),
    ],
)
def test_invalid_entries_name_the_line_and_the_problem(
    text: str, entries_format: str, line: int, problem: str
) -> None:
    """Every DeepL rule is enforced with the 1-based line and a readable reason, as a 400."""
    with pytest.raises(GlossaryEntriesError) as error:
        make(text, entries_format)
    assert isinstance(error.value, InputError)
    assert error.value.line == line
    assert problem in error.value.problem
    assert f"line {line}" in str(error.value)


def test_terms_over_1024_utf8_bytes_are_refused_and_1024_accepted() -> None:
    """The limit counts UTF-8 bytes, not characters: 512 'ß' pass, 513 do not."""
    assert parse_entries(f"{'ß' * 512}\tx")[0].source == "ß" * (MAX_TERM_BYTES // 2)
    with pytest.raises(GlossaryEntriesError, match="longer than 1024"):
        parse_entries(f"x\t{'ß' * 513}")


def test_entries_over_10_mib_or_over_the_entry_limit_are_refused() -> None:
    """Over 10 MiB of entries, or more than MAX_ENTRIES entries, is a clear 'too large' error."""
    with pytest.raises(GlossaryTooLargeError, match="10 MiB"):
        parse_entries("a\tb\n" + "x" * MAX_ENTRIES_BYTES)
    many = "\n".join(f"Name{i}\tName{i}" for i in range(MAX_ENTRIES + 1))
    with pytest.raises(GlossaryTooLargeError, match=f"more than {MAX_ENTRIES} entries"):
        parse_entries(many)
    assert len(parse_entries("\n".join(many.split("\n")[:MAX_ENTRIES]))) == MAX_ENTRIES


@pytest.mark.parametrize(
    ("source_lang", "target_lang"), [("de", "en"), ("DE", "EN-GB"), ("De", "en-us")]
)
def test_german_to_english_is_accepted_in_deepl_spellings(
    source_lang: str, target_lang: str
) -> None:
    """DE -> EN in any case, with or without an English variant, is stored as DE, EN."""
    glossary = make("Lawrow\tLavrov", source_lang=source_lang, target_lang=target_lang)
    assert (glossary.source_lang, glossary.target_lang) == ("DE", "EN")
    assert (glossary.info().source_lang, glossary.info().target_lang) == ("de", "en")


@pytest.mark.parametrize(("source_lang", "target_lang"), [("EN", "DE"), ("DE", "FR"), ("", "EN")])
def test_other_language_pairs_are_refused(source_lang: str, target_lang: str) -> None:
    """This service translates German to English only; other pairs are a 400, not a 500."""
    with pytest.raises(UnsupportedGlossaryLanguagesError, match="DE -> EN only"):
        make("Lawrow\tLavrov", source_lang=source_lang, target_lang=target_lang)


@pytest.mark.parametrize(
    ("name", "problem"),
    [(" ", "must not be empty"), ("a\nb", "control character"), ("n" * 1025, "1024")],
)
def test_bad_names_and_formats_are_refused(name: str, problem: str) -> None:
    """An empty, multi-line or over-long name, or an unknown entries_format, is refused."""
    with pytest.raises(GlossaryError, match=problem):
        make("Lawrow\tLavrov", name=name)
    with pytest.raises(GlossaryError, match="entries_format"):
        make("Lawrow\tLavrov", "xlsx")


# --- identity, export, digest -------------------------------------------------------------------


def test_a_new_glossary_gets_a_uuid_and_deepl_metadata() -> None:
    """Create returns a fresh UUID, the creation time in UTC, and DeepL's info fields."""
    first, second = make("Lawrow\tLavrov"), make("Lawrow\tLavrov")
    assert first.glossary_id != second.glossary_id
    assert len(first.glossary_id) == 36
    info = first.info()
    assert info.entry_count == 1
    assert info.ready is True
    assert info.name == "Namen"
    assert info.creation_time.tzinfo is not None


def test_tsv_export_round_trips_entries_from_csv() -> None:
    """GET .../entries is TSV whatever format the glossary was made from, and parses back."""
    glossary = make('"Kiew, Stadt",Kyiv\nLawrow,Lavrov', "csv")
    assert glossary.to_tsv() == "Kiew, Stadt\tKyiv\nLawrow\tLavrov"
    assert parse_entries(glossary.to_tsv()) == glossary.entries


def test_digest_depends_on_entries_only_not_order_name_or_time() -> None:
    """Same entries in another order, under another name, later: same digest; a change: new."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    one = make("Lawrow\tLavrov\nPeskow\tPeskov", name="a")
    two = Glossary.create(
        name="b",
        source_lang="de",
        target_lang="en",
        entries="Peskow\tPeskov\nLawrow\tLavrov",
        creation_time=when,
    )
    three = make("Lawrow\tLavrov\nPeskow\tPeskow")
    assert one.digest == two.digest
    assert len(one.digest) == 64
    assert three.digest != one.digest


# --- the default glossary files -----------------------------------------------------------------


def test_shipped_default_glossary_validates_and_carries_the_issue_names() -> None:
    """glossaries/*.tsv load as one glossary with every transliteration the issue lists."""
    glossary = load_default_glossary(ROOT / "glossaries")
    assert glossary is not None
    assert glossary.glossary_id == DEFAULT_GLOSSARY_ID
    mapping = {e.source: e.target for e in glossary.entries}
    assert {name: mapping.get(name) for name in ISSUE_NAMES} == ISSUE_NAMES
    assert len(glossary.entries) >= 40


def test_a_bad_default_file_names_its_path_and_line(tmp_path: Path) -> None:
    """A broken line in glossaries/ stops start-up with the file and line (a config error)."""
    (tmp_path / "a.tsv").write_text("Lawrow\tLavrov\n")
    bad = tmp_path / "b.tsv"
    bad.write_text("Peskow\tPeskov\n\nKyjiw Kyiv\n")
    with pytest.raises(GlossaryFileError) as error:
        load_default_glossary(tmp_path)
    assert isinstance(error.value, ConfigError)
    assert (error.value.path, error.value.line) == (str(bad), 3)
    assert f"{bad}:3: no tab" in str(error.value)


def test_a_name_listed_in_two_default_files_names_both_places(tmp_path: Path) -> None:
    """The same source term in two files is refused, pointing at both."""
    (tmp_path / "a.tsv").write_text("Lawrow\tLavrov\n")
    (tmp_path / "b.tsv").write_text("Peskow\tPeskov\nLawrow\tLawrov\n")
    with pytest.raises(GlossaryFileError) as error:
        load_default_glossary(tmp_path)
    assert error.value.line == 2
    assert f"already listed at {tmp_path / 'a.tsv'}:1" in str(error.value)


def test_no_tsv_files_means_no_default_glossary_and_no_directory_is_an_error(
    tmp_path: Path,
) -> None:
    """An empty glossaries/ turns the default off; a missing one is a configuration error."""
    assert load_default_glossary(tmp_path) is None
    with pytest.raises(GlossaryFileError, match="no such directory"):
        load_default_glossary(tmp_path / "missing")


def test_default_glossary_creation_time_is_the_newest_file(tmp_path: Path) -> None:
    """The default's creation time is the newest file's modification time."""
    (tmp_path / "a.tsv").write_text("Lawrow\tLavrov\n")
    (tmp_path / "b.tsv").write_text("Peskow\tPeskov\n")
    os.utime(tmp_path / "a.tsv", (1_700_000_000, 1_700_000_000))
    os.utime(tmp_path / "b.tsv", (1_600_000_000, 1_600_000_000))
    glossary = load_default_glossary(tmp_path)
    assert glossary is not None
    assert glossary.creation_time == datetime.fromtimestamp(1_700_000_000, UTC)
