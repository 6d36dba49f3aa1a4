"""Precision of the fact check on a hand-written reference set (``tests/data/factcheck/``).

Each reference file holds a faithful English translation of one seed (one line per German
sentence), faithful short summaries, and perturbations of those summaries that each make one fact
wrong: a changed number, a swapped name, a shifted date.  The check must flag the perturbed fact
(at least 95% of perturbations) and leave the faithful facts alone (at most 5% flagged).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from service.text.factcheck import check_summary
from service.text.segment import split_sentences

DATA = Path(__file__).parent / "data" / "factcheck"
SEEDS = Path(__file__).parent.parent / "seeds"


def load_references() -> list[dict[str, Any]]:
    """The reference files, each with the seed's German sentences added under ``german``."""
    references = []
    for path in sorted(DATA.glob("*.toml")):
        reference = tomllib.loads(path.read_text(encoding="utf-8"))
        seed_text = (SEEDS / reference["seed"]).read_text(encoding="utf-8")
        reference["german"] = [s.text for s in split_sentences(seed_text)]
        reference["name"] = path.name
        references.append(reference)
    return references


@pytest.fixture(scope="module")
def references() -> list[dict[str, Any]]:
    return load_references()


def test_reference_translations_align_with_the_seeds(references: list[dict[str, Any]]) -> None:
    """Every reference translation has one English line per German sentence of its seed."""
    assert len(references) >= 2
    for reference in references:
        assert len(reference["translation"]) == len(reference["german"]), reference["name"]


def test_perturbations_are_flagged_and_faithful_facts_are_not(
    references: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """>= 95% of the perturbed facts are flagged and <= 5% of the faithful facts are."""
    facts = false_flags = perturbations = caught = 0
    missed: list[str] = []
    wrongly: list[str] = []
    for reference in references:
        english, german = reference["translation"], reference["german"]
        for summary in reference["summaries"]:
            checks = check_summary(summary, english, german)
            facts += len(checks)
            wrong = [c.text for c in checks if not c.supported]
            false_flags += len(wrong)
            wrongly.extend(wrong)
        for change in reference["perturbations"]:
            original = reference["summaries"][change["summary"]]
            assert original.count(change["replace"]) == 1, change
            at = original.index(change["replace"])
            perturbed = original.replace(change["replace"], change["with"])
            end = at + len(change["with"])
            checks = check_summary(perturbed, english, german)
            perturbations += 1
            if any(not c.supported and c.start < end and c.end > at for c in checks):
                caught += 1
            else:
                missed.append(f"{change['replace']} -> {change['with']}")
    with capsys.disabled():  # the figures are this test's output, shown past the capture
        print(  # noqa: T201
            f"\n[fact-check] perturbations_flagged={caught}/{perturbations} "
            f"false_flags={false_flags}/{facts} facts={facts}"
        )
    assert perturbations >= 20
    assert facts >= 40
    assert caught >= 0.95 * perturbations, missed
    assert false_flags <= 0.05 * facts, wrongly
