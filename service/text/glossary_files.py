"""The server's default glossary: ``glossaries/*.tsv`` in the repository, validated at start-up.

Every ``*.tsv`` file in the directory is DeepL TSV (``source<TAB>target``, one entry a line) and
all of them together form one glossary with the id ``default``; a request that names no
glossary gets it, and one that says ``glossary_id: null`` gets none.  As with ``prompts/``, a
bad file stops the process at start-up with its path and line named, rather than failing the
first article that uses it; a source term listed twice, in one file or in two, is such an error.
A directory without ``*.tsv`` files means no default glossary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from service.errors import GlossaryFileError
from service.text.glossary import (
    SOURCE_LANG,
    TARGET_LANG,
    Glossary,
    GlossaryEntriesError,
    GlossaryEntry,
    GlossaryTooLargeError,
    parse_numbered_entries,
)

__all__ = ["DEFAULT_GLOSSARY_ID", "GlossaryFileError", "load_default_glossary"]

DEFAULT_GLOSSARY_ID = "default"


def load_default_glossary(directory: Path) -> Glossary | None:
    """All ``*.tsv`` files of ``directory`` as one glossary, or None when there are none."""
    if not directory.is_dir():
        raise GlossaryFileError(str(directory), 0, "no such directory")
    paths = sorted(directory.glob("*.tsv"))
    if not paths:
        return None
    entries: list[GlossaryEntry] = []
    first_seen: dict[str, tuple[Path, int]] = {}
    for path in paths:
        for line, entry in _read(path):
            if entry.source in first_seen:
                other, other_line = first_seen[entry.source]
                raise GlossaryFileError(
                    str(path),
                    line,
                    f"source term {entry.source!r} is already listed at {other}:{other_line}",
                )
            first_seen[entry.source] = (path, line)
            entries.append(entry)
    modified = max(path.stat().st_mtime for path in paths)
    return Glossary(
        glossary_id=DEFAULT_GLOSSARY_ID,
        name="server default",
        source_lang=SOURCE_LANG,
        target_lang=TARGET_LANG,
        entries=tuple(entries),
        creation_time=datetime.fromtimestamp(modified, UTC),
    )


def _read(path: Path) -> list[tuple[int, GlossaryEntry]]:
    """The entries of one file with their line numbers; any problem names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise GlossaryFileError(str(path), 0, f"not UTF-8: {error}") from error
    try:
        return parse_numbered_entries(text, "tsv")
    except GlossaryEntriesError as error:
        raise GlossaryFileError(str(path), error.line, error.problem) from error
    except GlossaryTooLargeError as error:
        raise GlossaryFileError(str(path), 0, str(error)) from error
