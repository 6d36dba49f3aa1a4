"""Language identification: German articles pass, other languages and mixtures are recognised."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import py3langid
import pytest
from py3langid.langid import LanguageIdentifier

from service.text import language
from service.text.language import LanguageReport, detect_language
from service.text.segment import split_sentences

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))

ENGLISH = [
    "The talks between the two delegations lasted for more than five hours.",
    "Officials said that no agreement had been reached on the occupied territories.",
    "Both sides nevertheless described the meeting as constructive and useful.",
]
GERMAN = [
    "Die Gespräche zwischen den beiden Delegationen dauerten mehr als fünf Stunden.",
    "Nach Angaben von Beamten wurde keine Einigung über die besetzten Gebiete erzielt.",
    "Beide Seiten bezeichneten das Treffen dennoch als konstruktiv und nützlich.",
]


def seed_sentences(path: Path) -> list[str]:
    return [s.text for s in split_sentences(path.read_text(encoding="utf-8"))]


def test_seeds_are_present() -> None:
    """The five seed articles the other tests rely on are in the repository."""
    assert len(SEEDS) == 5


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_articles_are_german(path: Path) -> None:
    """Every seed article is recognised as German with a German share above 80 %."""
    report = detect_language(seed_sentences(path))
    assert report.language == "de"
    assert report.german_share > 0.8


def test_english_paragraph_is_english() -> None:
    """An English paragraph is reported as "en" with no German share."""
    assert detect_language(ENGLISH) == LanguageReport("en", 0.0)


def test_other_languages_are_not_restricted_away() -> None:
    """A French paragraph is reported as "fr", not forced into German or English."""
    report = detect_language(
        ["Le gouvernement français a annoncé mardi de nouvelles mesures pour les agriculteurs."]
    )
    assert report == LanguageReport("fr", 0.0)


def test_mixed_text_reports_a_share_in_between() -> None:
    """Half German, half English text gives a German share strictly between 0 and 1."""
    report = detect_language(GERMAN[:2] + ENGLISH[:2])
    assert 0.3 < report.german_share < 0.7
    assert report.language in {"de", "en"}


def test_share_is_weighted_by_length() -> None:
    """One long German sentence outweighs a shorter English one."""
    long_german = " ".join(GERMAN).replace(".", ",")[:-1] + "."
    report = detect_language([long_german, ENGLISH[0]])
    expected = len(long_german) / (len(long_german) + len(ENGLISH[0]))
    assert report.language == "de"
    assert report.german_share == pytest.approx(expected)


def test_short_fragments_do_not_vote_next_to_real_sentences() -> None:
    """Fragments under 20 letters ("SHARE", "Hello world") are ignored when sentences exist."""
    report = detect_language(["SHARE", "Hello world", "Photo: AP", *GERMAN[:1]])
    assert report == LanguageReport("de", 1.0)


def test_only_short_fragments_still_give_a_verdict() -> None:
    """When everything is short, the short fragments are used rather than giving up."""
    assert detect_language(["Guten Tag", "Vielen Dank", "Hallo Welt"]) == LanguageReport("de", 1.0)


@pytest.mark.parametrize(
    "texts",
    [[], [""], ["   ", "\n\t"], ["103", "0", "-", "11:00"]],
    ids=["no-texts", "empty", "whitespace", "no-letters"],
)
def test_nothing_to_judge_is_undetermined(texts: list[str]) -> None:
    """No texts, or texts without any letter, are reported as "und" with a share of 0."""
    assert detect_language(texts) == LanguageReport("und", 0.0)


def test_global_py3langid_restriction_does_not_leak_in() -> None:
    """Restricting py3langid's shared identifier elsewhere does not change what is detected here."""
    detect_language(GERMAN)  # make sure this module's identifier is already loaded
    py3langid.set_languages(["en", "fr"])
    try:
        assert detect_language(GERMAN) == LanguageReport("de", 1.0)
    finally:
        py3langid.set_languages(None)


def test_concurrent_calls_agree_with_sequential_ones() -> None:
    """Detecting from several threads at once gives the same reports as one after another."""
    inputs = [seed_sentences(p) for p in SEEDS] + [ENGLISH, GERMAN[:2] + ENGLISH[:2]]
    expected = [detect_language(texts) for texts in inputs]
    results: dict[int, list[LanguageReport]] = {}
    barrier = threading.Barrier(len(inputs))

    def work(index: int) -> None:
        barrier.wait()
        results[index] = [detect_language(inputs[index]) for _ in range(5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(inputs)
    for index, runs in results.items():
        assert runs == [expected[index]] * 5


def test_model_is_loaded_once_under_contention(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many threads detecting their first text at once load the model only once."""
    loads: list[int] = []
    original = LanguageIdentifier.from_model_file

    def counting_load(cls: type[LanguageIdentifier], /, *args: object, **kwargs: object) -> object:
        loads.append(1)
        time.sleep(0.05)  # widen the window in which a second thread could slip in
        return original(*args, **kwargs)

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", classmethod(counting_load))
    monkeypatch.setattr(language, "_identifier", None)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        detect_language(GERMAN)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [1]
