"""Glossary enforcement: names written into the German before translation (genitives, case,
compounds, longest match), translations checked, n-best chosen, output and summary repaired,
and every entry accounted for in the report."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.settings import ROOT
from service.text.glossary import MAX_ENTRIES, Glossary
from service.text.glossary_files import load_default_glossary
from service.text.glossary_report import (
    FallbackTerm,
    Term,
    article_report,
    needs_fallback,
    settle_sentence,
)
from service.text.glossary_terms import (
    apply_to_source,
    check_summary,
    check_translation,
    choose_hypothesis,
    repair_output,
)

NAMES = Glossary.create(
    name="Namen",
    source_lang="DE",
    target_lang="EN",
    entries="\n".join(
        [
            "Lawrow\tLavrov",
            "Selenskyj\tZelensky",
            "Wladimir\tVladimir",
            "Wladimir Klitschko\tWladimir Klitschko",
            "Kiew\tKyiv",
            "Peskow\tPeskov",
            "Bundeskanzler\tFederal Chancellor",
            "Klaus\tClaus",
        ]
    ),
)


@pytest.fixture(scope="module")
def default_glossary() -> Glossary:
    """The server's default glossary from glossaries/."""
    glossary = load_default_glossary(ROOT / "glossaries")
    assert glossary is not None
    return glossary


def applied(text: str) -> str:
    return apply_to_source(text, NAMES).text


# --- step 1: the source -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("german", "expected"),
    [
        ("Lawrows Sprecher", "Lavrov's Sprecher"),
        ("Selenskyjs Rede", "Zelensky's Rede"),
        ("Lawrow's Rede", "Lavrov's Rede"),
        ("Vertreter Kiews", "Vertreter Kyiv's"),
        ("Klaus' Hund", "Claus' Hund"),
        ("die Rede des Bundeskanzlers", "die Rede des Federal Chancellor"),
    ],
)
def test_genitives_become_english_possessives(german: str, expected: str) -> None:
    """German genitive -s (and -'s, and the bare apostrophe after s) becomes 's or '."""
    assert applied(german) == expected


def test_a_term_inside_a_compound_is_left_alone_unless_listed() -> None:
    """'Lawrowsche' and 'Selenskyjanhänger' stay; the compound itself, once listed, is replaced."""
    text = "Die Lawrowsche Linie und Selenskyjanhänger."
    assert applied(text) == text
    listed = Glossary.create(
        name="x",
        source_lang="DE",
        target_lang="EN",
        entries="Lawrow\tLavrov\nLawrowsche\tLavrov's",
    )
    assert apply_to_source(text, listed).text == "Die Lavrov's Linie und Selenskyjanhänger."


def test_hyphen_and_punctuation_are_word_boundaries() -> None:
    """'Selenskyj-Regierung', '(Lawrow)' and '„Kiew“' are whole-word occurrences."""
    assert applied("Selenskyj-Regierung (Lawrow) „Kiew“.") == "Zelensky-Regierung (Lavrov) „Kyiv“."


def test_case_of_the_occurrence_is_kept() -> None:
    """ALL CAPS stays all caps (with the possessive), lower case stays lower case."""
    assert applied("LAWROW, LAWROWS und lawrow") == "LAVROV, LAVROV'S und lavrov"


def test_an_upper_case_source_keeps_its_target_as_written() -> None:
    """'NATO' -> 'Nato' (house style) stays 'Nato', and 'NATOs' becomes "Nato's"."""
    style = Glossary.create(name="s", source_lang="DE", target_lang="EN", entries="NATO\tNato")
    assert apply_to_source("NATO und NATOs Gipfel", style).text == "Nato und Nato's Gipfel"


def test_longest_entry_wins_and_spans_line_breaks() -> None:
    """'Wladimir Klitschko' (kept as written) beats 'Wladimir', also across a line break."""
    text = "Wladimir\nKlitschko traf Wladimir Putin."
    result = apply_to_source(text, NAMES)
    assert result.text == "Wladimir Klitschko traf Vladimir Putin."
    assert [hit.entry.source for hit in result.hits] == ["Wladimir Klitschko", "Wladimir"]


def test_hits_report_offsets_in_both_texts() -> None:
    """Each hit gives where the form stood in the German and where the target stands now."""
    text = "Gestern sagte Lawrows Sprecher, Peskow widerspreche."
    result = apply_to_source(text, NAMES)
    for hit in result.hits:
        assert text[hit.start : hit.end] == hit.found
        assert result.text[hit.new_start : hit.new_end] == hit.replacement
    assert [(h.found, h.replacement) for h in result.hits] == [
        ("Lawrows", "Lavrov's"),
        ("Peskow", "Peskov"),
    ]
    assert result.required_terms == ("Lavrov", "Peskov")


_NAMES = ["Lawrow", "Lawrows", "LAWROW", "Lawrowsche", "Wladimir", "Klitschko", "Kiew", "Kiews"]
_FILLER = [" ", "  ", "\n", "-", "'", "’", ",", "„", "“", "des", "und", "x", "ß", "1", "s"]
_PIECES = st.sampled_from([*_NAMES, *_FILLER, "Peskow's"])


@given(st.lists(_PIECES, max_size=40))
def test_only_the_hits_change_and_offsets_always_line_up(pieces: list[str]) -> None:
    """Text between hits is kept byte for byte, and a second pass finds nothing to change."""
    text = "".join(pieces)
    result = apply_to_source(text, NAMES)
    rebuilt, position = [], 0
    for hit in result.hits:
        assert text[hit.start : hit.end] == hit.found
        assert result.text[hit.new_start : hit.new_end] == hit.replacement
        rebuilt += [text[position : hit.start], hit.replacement]
        position = hit.end
    assert "".join([*rebuilt, text[position:]]) == result.text
    again = apply_to_source(result.text, NAMES)
    assert [h.found for h in again.hits if h.found != h.replacement] == []


def test_text_without_glossary_terms_is_unchanged() -> None:
    """A sentence with no entry in it comes back identical, with no hits."""
    text = "Die Regierung hat am Montag neue Pläne vorgestellt."
    result = apply_to_source(text, NAMES)
    assert (result.text, result.hits) == (text, ())


def test_every_seed_loses_every_german_form_of_a_glossary_name(
    seed_texts: dict[str, str], default_glossary: Glossary
) -> None:
    """After the default glossary, no seed holds a German spelling a glossary entry changes."""
    changing = {e.source for e in default_glossary.entries if e.source != e.target}
    total = 0
    for name, text in seed_texts.items():
        result = apply_to_source(text, default_glossary)
        total += len(result.hits)
        again = apply_to_source(result.text, default_glossary)
        assert [h.found for h in again.hits if h.found != h.replacement] == [], name
        for source in changing:
            pattern = rf"(?<!\w){re.escape(source)}(?:s|'s)?(?!\w)"
            assert re.search(pattern, result.text, re.IGNORECASE) is None, (name, source)
    seeds = "\n".join(apply_to_source(t, default_glossary).text for t in seed_texts.values())
    for english in ("Lavrov", "Ryabkov", "Ushakov", "Dmitriev", "Zelensky", "Kyiv", "Pokrovsk"):
        assert english in seeds
    assert "Kyiv's" in seeds  # "Vertreter Moskaus und Kiews"
    print(f"[glossary-seeds] seeds={len(seed_texts)} replacements={total}")  # noqa: T201 - figures


def test_ten_thousand_entries_apply_fast(long_article: str) -> None:
    """A glossary at the entry limit builds and applies to a 30,000-character article quickly."""
    lines = [f"Name{i}ow\tName{i}ov" for i in range(MAX_ENTRIES - 1)] + ["Uschakow\tUshakov"]
    big = Glossary.create(name="big", source_lang="DE", target_lang="EN", entries="\n".join(lines))
    started = time.perf_counter()
    result = apply_to_source(long_article, big)
    elapsed_s = time.perf_counter() - started
    assert "Uschakow" not in result.text
    assert elapsed_s < 2.0
    figures = f"entries={len(big.entries)} chars={len(long_article)} s={elapsed_s:.3f}"
    print(f"[glossary-10k] {figures}")  # noqa: T201 - the figure is this test's output


# --- steps 2 to 4: the English --------------------------------------------------------------------


def test_check_translation_wants_whole_words_in_any_case() -> None:
    """'Lavrov' is in "Lavrov's" and 'LAVROV'; 'Zelensky' is not in 'Zelenskyy'."""
    assert check_translation("LAVROV met Lavrov's aide.", ["Lavrov"]) == ()
    assert check_translation("Zelenskyy spoke.", ["Zelensky", "Kyiv"]) == ("Zelensky", "Kyiv")


def test_choose_hypothesis_takes_the_best_one_with_the_term() -> None:
    """The first hypothesis with every required term wins; otherwise the one with the most."""
    hypotheses = ["Lawrov said.", "Lavrov said so.", "Lavrov said."]
    assert choose_hypothesis(hypotheses, ["Lavrov"]).index == 1
    partial = choose_hypothesis(["None here.", "Lavrov only.", "Also none."], ["Lavrov", "Kyiv"])
    assert (partial.index, partial.missing) == (1, ("Kyiv",))
    nothing = choose_hypothesis(["a", "b"], ["Kyiv"])
    assert (nothing.index, nothing.missing) == (0, ("Kyiv",))
    with pytest.raises(ValueError, match="at least one"):
        choose_hypothesis([], ["Kyiv"])


def test_repair_output_replaces_surviving_german_forms_only() -> None:
    """German forms in English are replaced (genitive too); identity entries are no hits."""
    repair = repair_output("Lawrows aide met Selenskyj and Wladimir Klitschko.", NAMES)
    assert repair.text == "Lavrov's aide met Zelensky and Wladimir Klitschko."
    assert [hit.found for hit in repair.hits] == ["Lawrows", "Selenskyj"]


def test_summary_check_replaces_source_forms_and_ignores_lost_terms() -> None:
    """A German form in the summary is replaced; a name the summary dropped is no error."""
    summary = check_summary("Peskow denied it. The talks went on.", NAMES)
    assert summary.text == "Peskov denied it. The talks went on."
    assert [hit.entry.target for hit in summary.hits] == ["Peskov"]


# --- the report -----------------------------------------------------------------------------------


def test_report_puts_every_entry_in_exactly_one_list() -> None:
    """Applied, n-best, repair and missed, each entry once, in source order."""
    source = apply_to_source("Lawrow, Peskow und Selenskyj trafen sich in Kiew.", NAMES)
    first = "Lavrov, Peskow and Selenski met in Kiev."
    assert needs_fallback(source, first)
    nbest = [first, "Lavrov, Peskow and Selenski met in Kyiv.", "Lavrov met people."]
    settled = settle_sentence(source, first, NAMES, nbest)
    assert settled.hypothesis == 1
    assert settled.text == "Lavrov, Peskov and Selenski met in Kyiv."
    report = settled.report
    assert report.applied == (Term("Lawrow", "Lavrov"),)
    assert report.fallback == (
        FallbackTerm("Peskow", "Peskov", "repair"),
        FallbackTerm("Kiew", "Kyiv", "nbest"),
    )
    assert report.missed == (Term("Selenskyj", "Zelensky"),)


def test_a_sentence_that_has_its_terms_needs_no_fallback() -> None:
    """When the first translation has every target term, all are applied and nothing else."""
    source = apply_to_source("Lawrows Sprecher sprach.", NAMES)
    first = "Lavrov's spokesman spoke."
    assert not needs_fallback(source, first)
    settled = settle_sentence(source, first, NAMES)
    assert (settled.text, settled.hypothesis) == (first, 0)
    assert settled.report.applied == (Term("Lawrow", "Lavrov"),)
    assert settled.report.fallback == settled.report.missed == ()


def test_german_forms_the_source_step_never_saw_are_reported_as_repairs() -> None:
    """A German form the model made from a compound is repaired and reported, not skipped."""
    source = apply_to_source("Die Lawrowsche Linie.", NAMES)
    settled = settle_sentence(source, "Lawrow's line.", NAMES)
    assert settled.text == "Lavrov's line."
    assert settled.report.fallback == (FallbackTerm("Lawrow", "Lavrov", "repair"),)


def test_article_report_sums_sentences_and_checks_the_summary() -> None:
    """The totals count each list; missed terms are listed once; the summary is repaired."""
    one = settle_sentence(apply_to_source("Lawrow kam.", NAMES), "Lavrov came.", NAMES).report
    two = settle_sentence(apply_to_source("Kiew und Peskow.", NAMES), "Kiev and Peskow.", NAMES)
    summary, report = article_report(NAMES, [one, two.report], "Peskow and Lavrov met.")
    assert summary == "Peskov and Lavrov met."
    assert (report.applied, report.fallback, report.missed) == (1, 1, 1)
    assert report.missed_terms == (Term("Kiew", "Kyiv"),)
    assert report.summary_replaced == (Term("Peskow", "Peskov"),)
    assert (report.glossary_id, report.digest) == (NAMES.glossary_id, NAMES.digest)
