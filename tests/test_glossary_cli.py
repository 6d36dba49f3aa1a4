"""``python -m service glossary suggest``: transliterated names in the seeds, as uploadable TSV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.settings import ROOT
from service.text.glossary import parse_entries
from service.text.transliteration import english_guess, find_candidates

SEEDS = sorted((ROOT / "seeds").glob("*.txt"))


def suggest(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURZ_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "service", "glossary", "suggest", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_suggest_on_the_seeds_lists_their_transliterated_names() -> None:
    """The seeds' German spellings come out as valid DeepL TSV with English guesses."""
    done = suggest(*(str(path) for path in SEEDS))
    assert done.returncode == 0, done.stderr
    entries = {e.source: e.target for e in parse_entries(done.stdout, "tsv")}
    expected = {
        "Uschakow": "Ushakov",
        "Lawrow": "Lavrov",
        "Rjabkow": "Ryabkov",
        "Wladimir": "Vladimir",
        "Wolodymyr": "Volodymyr",
        "Pokrowsk": "Pokrovsk",
    }
    assert {name: entries.get(name) for name in expected} == expected
    assert {"Dmitrijew", "Selenskyj", "Kiew", "Sergej"} <= set(entries)
    # Ordinary German capitalized words are not suggested.
    assert not {"Putin", "Trump", "Moskau", "Gespräche", "Deutschland", "Schwiegersohn"} & set(
        entries
    )


def test_suggest_reports_counts_with_the_genitive_folded_in() -> None:
    """Counts go to stderr per word; 'Kiews' counts toward 'Kiew', most frequent first."""
    done = suggest(*(str(path) for path in SEEDS))
    counts = {line.split()[1]: int(line.split()[0]) for line in done.stderr.splitlines()}
    text = "\n".join(path.read_text() for path in SEEDS)
    assert counts["Uschakow"] == text.count("Uschakow") == 10
    assert counts["Kiew"] == text.count("Kiew") == 4
    assert "Kiews" not in counts
    assert list(counts.values()) == sorted(counts.values(), reverse=True)
    assert done.stdout.splitlines()[0].startswith("Uschakow\t")


def test_suggest_reads_stdin_and_fails_cleanly_on_a_missing_file(tmp_path: Path) -> None:
    """'-' reads standard input; a missing file is an error message and exit status 1."""
    done = suggest("-", stdin="Die Gespräche mit Gerassimow und Saporischschja.")
    assert done.stdout == "Gerassimow\tGerasimov\nSaporischschja\tSaporishshya\n"
    missing = suggest(str(tmp_path / "missing.txt"))
    assert missing.returncode == 1
    assert "missing.txt" in missing.stderr
    assert missing.stdout == ""


def test_english_guess_respells_german_sound_rules() -> None:
    """w->v, sch->sh, tsch->ch, ch->kh, j->y, z->ts: the common cases come out right."""
    assert [english_guess(w) for w in ("Peskow", "Tschernihiw", "Charkiw", "Donezk")] == [
        "Peskov",
        "Chernihiv",
        "Kharkiv",
        "Donetsk",
    ]
    assert find_candidates(["Ein Interview mit der Show."]) == []
