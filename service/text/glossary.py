"""Glossaries: a newsroom's spellings of names and terms, in DeepL's v2 shape and validation.

A glossary maps German source terms to the English target forms a newsroom writes (``Lawrow``
-> ``Lavrov``).  It is immutable once made, as in DeepL v2: a change is a new glossary.  Entries
arrive as DeepL's ``tsv`` or ``csv`` text and are held to DeepL's documented rules, so a file that
DeepL accepts is accepted here and one it refuses is refused with the line and the reason:

- one entry per line (``\\n``, ``\\r\\n`` or ``\\r``); blank lines are skipped;
- TSV: exactly one tab per line; CSV: two columns, or four with the source and target language
  (DeepL's own export), quoted as RFC 4180 says;
- terms are trimmed of surrounding whitespace (as DeepL's clients do) and must then be non-empty,
  free of C0/C1 control characters and Unicode line/paragraph separators, and at most 1,024
  UTF-8 bytes; source terms are unique;
- the whole entries text at most 10 MiB, the name at most 1,024 UTF-8 bytes.

DeepL sets no entry-count limit, only the 10 MiB one; ``MAX_ENTRIES`` is ours, so that parsing
and indexing a glossary stays well under a second in the API and the worker (10,000 entries:
0.2 s to parse, 0.06 s to index, 0.1 s to apply to a 94,000-character article).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import msgspec

from service.errors import (
    GlossaryEntriesError,
    GlossaryError,
    GlossaryLimitError,
    GlossaryNotFoundError,
    GlossaryTooLargeError,
    UnsupportedGlossaryLanguagesError,
)

if TYPE_CHECKING:
    from service.text.glossary_terms import TermMatcher

__all__ = [
    "MAX_ENTRIES",
    "MAX_ENTRIES_BYTES",
    "MAX_TERM_BYTES",
    "EntriesFormat",
    "Glossary",
    "GlossaryEntriesError",
    "GlossaryEntry",
    "GlossaryError",
    "GlossaryInfo",
    "GlossaryLimitError",
    "GlossaryNotFoundError",
    "GlossaryTooLargeError",
    "UnsupportedGlossaryLanguagesError",
    "parse_entries",
    "parse_numbered_entries",
]

#: DeepL: "each source/target text, as well as the name of the glossary, is limited to 1024
#: UTF-8 bytes".
MAX_TERM_BYTES = 1024
#: DeepL: "The maximum size limit for a glossary is 10 MiB = 10485760 bytes".
MAX_ENTRIES_BYTES = 10 * 1024 * 1024
#: Ours (DeepL has none; see the module docstring): a newsroom's name list many times over.
MAX_ENTRIES = 10_000

EntriesFormat = Literal["tsv", "csv"]

#: The only pair this service translates.  DeepL accepts ``EN`` without a variant for glossaries
#: and lets it serve both ``EN-GB`` and ``EN-US``; we take the variants and store ``EN``.
SOURCE_LANG = "DE"
TARGET_LANG = "EN"
_TARGET_ALIASES = {"EN", "EN-GB", "EN-US"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class GlossaryEntry:
    """One source term and the target form the newsroom writes for it."""

    source: str
    target: str


class GlossaryInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What DeepL's v2 API returns about a glossary (languages lowercase, as DeepL writes them)."""

    glossary_id: str
    name: str
    ready: bool = True
    source_lang: str
    target_lang: str
    creation_time: datetime
    entry_count: int


@dataclass(frozen=True)
class Glossary:
    """An immutable glossary; ``digest`` covers everything that changes a translation.

    The digest is a sha256 over the language pair and the entries sorted by source, so two
    glossaries with the same entries in another order, or under another name, share it: it is
    what result-cache keys should fold in (next to the id), since the name changes no output.
    """

    glossary_id: str
    name: str
    source_lang: str
    target_lang: str
    entries: tuple[GlossaryEntry, ...]
    creation_time: datetime
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        payload = msgspec.json.encode(
            [
                self.source_lang,
                self.target_lang,
                sorted((e.source, e.target) for e in self.entries),
            ]
        )
        object.__setattr__(self, "digest", hashlib.sha256(payload).hexdigest())

    @classmethod
    def create(
        cls,
        *,
        name: str,
        source_lang: str,
        target_lang: str,
        entries: str,
        entries_format: str = "tsv",
        glossary_id: str | None = None,
        creation_time: datetime | None = None,
    ) -> Glossary:
        """Validate a DeepL-style create request; the id is a new UUID unless given."""
        source, target = check_languages(source_lang, target_lang)
        if entries_format not in ("tsv", "csv"):
            raise GlossaryError(
                f"unsupported entries_format {entries_format!r}; use 'tsv' or 'csv'"
            )
        return cls(
            glossary_id=glossary_id or str(uuid.uuid4()),
            name=check_name(name),
            source_lang=source,
            target_lang=target,
            entries=parse_entries(entries, "tsv" if entries_format == "tsv" else "csv"),
            creation_time=creation_time or datetime.now(UTC),
        )

    @cached_property
    def matcher(self) -> TermMatcher:
        """The compiled matcher of this glossary's source terms, built on first use."""
        from service.text.glossary_terms import TermMatcher

        return TermMatcher(self.entries)

    def to_tsv(self) -> str:
        """The entries as DeepL's ``GET .../entries`` returns them: ``source<TAB>target`` lines."""
        return "\n".join(f"{e.source}\t{e.target}" for e in self.entries)

    def info(self) -> GlossaryInfo:
        """The metadata DeepL's API returns for this glossary."""
        return GlossaryInfo(
            glossary_id=self.glossary_id,
            name=self.name,
            source_lang=self.source_lang.lower(),
            target_lang=self.target_lang.lower(),
            creation_time=self.creation_time,
            entry_count=len(self.entries),
        )


def check_languages(source_lang: str, target_lang: str) -> tuple[str, str]:
    """The pair in canonical form (``DE``, ``EN``), or ``UnsupportedGlossaryLanguagesError``."""
    source, target = source_lang.strip().upper(), target_lang.strip().upper()
    if source != SOURCE_LANG or target not in _TARGET_ALIASES:
        raise UnsupportedGlossaryLanguagesError(source_lang, target_lang)
    return SOURCE_LANG, TARGET_LANG


def check_name(name: str) -> str:
    """The glossary name, trimmed; empty, control characters or over 1,024 bytes are refused."""
    trimmed = name.strip()
    if not trimmed:
        raise GlossaryError("the glossary name must not be empty")
    if _invalid_character(trimmed) is not None:
        raise GlossaryError("the glossary name contains a control character or line break")
    if len(trimmed.encode()) > MAX_TERM_BYTES:
        raise GlossaryError(f"the glossary name is longer than {MAX_TERM_BYTES} UTF-8 bytes")
    return trimmed


def parse_entries(text: str, entries_format: EntriesFormat = "tsv") -> tuple[GlossaryEntry, ...]:
    """Parse and validate DeepL ``tsv`` or ``csv`` entries; the first bad line raises."""
    return tuple(entry for _, entry in parse_numbered_entries(text, entries_format))


def parse_numbered_entries(
    text: str, entries_format: EntriesFormat = "tsv"
) -> list[tuple[int, GlossaryEntry]]:
    """Like :func:`parse_entries`, with the line number (from 1) each entry stands on.

    A leading byte-order mark (spreadsheet programs write one into CSV) is dropped, since it
    would otherwise become part of the first source term and that term would never match.
    """
    text = text.removeprefix("\ufeff")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_ENTRIES_BYTES:
        raise GlossaryTooLargeError(
            f"the glossary entries are {size} bytes; the limit is {MAX_ENTRIES_BYTES} (10 MiB)"
        )
    rows = _tsv_rows(text) if entries_format == "tsv" else _csv_rows(text)
    entries: list[tuple[int, GlossaryEntry]] = []
    first_line: dict[str, int] = {}
    for line, source_raw, target_raw in rows:
        source = _check_term(line, "source", source_raw)
        target = _check_term(line, "target", target_raw)
        if source in first_line:
            raise GlossaryEntriesError(
                line, f"duplicate source term {source!r} (first on line {first_line[source]})"
            )
        first_line[source] = line
        entries.append((line, GlossaryEntry(source, target)))
        if len(entries) > MAX_ENTRIES:
            raise GlossaryTooLargeError(f"more than {MAX_ENTRIES} entries")
    if not entries:
        raise GlossaryEntriesError(1, "no entries: a glossary needs at least one")
    return entries


def _tsv_rows(text: str) -> Iterator[tuple[int, str, str]]:
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        tabs = line.count("\t")
        if tabs == 0:
            raise GlossaryEntriesError(number, "no tab between source and target term")
        if tabs > 1:
            raise GlossaryEntriesError(number, "more than one tab: expected source<TAB>target")
        source, target = line.split("\t")
        yield number, source, target


def _csv_rows(text: str) -> Iterator[tuple[int, str, str]]:
    # csv counts physical lines itself, so a quoted field spanning lines keeps numbers honest.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise GlossaryEntriesError(reader.line_num, f"not valid CSV: {error}") from None
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) == 4:
            try:
                check_languages(row[2], row[3])
            except UnsupportedGlossaryLanguagesError:
                raise GlossaryEntriesError(
                    reader.line_num,
                    f"language columns {row[2]!r}, {row[3]!r} are not DE, EN",
                ) from None
        elif len(row) != 2:
            raise GlossaryEntriesError(
                reader.line_num,
                f"{len(row)} columns; expected source,target (or source,target,DE,EN)",
            )
        yield reader.line_num, row[0], row[1]


def _check_term(line: int, role: str, raw: str) -> str:
    term = raw.strip()
    if not term:
        raise GlossaryEntriesError(line, f"empty {role} term")
    bad = _invalid_character(term)
    if bad is not None:
        raise GlossaryEntriesError(
            line, f"{role} term {term!r} contains the control character U+{ord(bad):04X}"
        )
    if len(term.encode()) > MAX_TERM_BYTES:
        raise GlossaryEntriesError(line, f"{role} term is longer than {MAX_TERM_BYTES} UTF-8 bytes")
    return term


def _invalid_character(term: str) -> str | None:
    """The first C0/C1 control character or Unicode line/paragraph separator, if any."""
    for char in term:
        code = ord(char)
        if code <= 0x1F or 0x7F <= code <= 0x9F or char in "\u2028\u2029":
            return char
    return None
