"""The pipeline's glossary steps without models: source rewrite, n-best fallback, summary."""

from __future__ import annotations

from service.glossary_steps import NBEST, GlossaryRun, merged_names
from service.text.glossary import Glossary

GLOSSARY = Glossary.create(
    name="t",
    source_lang="DE",
    target_lang="EN",
    entries="Lawrow\tLavrov\nUschakow\tUshakov\nKyjiw\tKyiv",
)


def test_sources_carry_the_target_forms_and_names_feed_the_fact_check() -> None:
    """The model is sent the rewritten German; the fact checker gets German -> English names."""
    run = GlossaryRun.start(GLOSSARY, ["Lawrows Rede.", "Das Wetter."])
    assert run.sources == ["Lavrov's Rede.", "Das Wetter."]
    assert merged_names({"Putin": "Putin"}, run) == {
        "Lawrow": "Lavrov",
        "Uschakow": "Ushakov",
        "Kyjiw": "Kyiv",
        "Putin": "Putin",
    }
    assert merged_names(None, None) is None


async def test_only_sentences_lacking_a_term_are_asked_for_nbest_hypotheses() -> None:
    """One n-best call, for the sentences whose best output lost a name; its pick is reported."""
    run = GlossaryRun.start(GLOSSARY, ["Lawrow sprach.", "Uschakow schwieg.", "Es regnet."])
    calls: list[tuple[list[str], int]] = []

    async def nbest(texts: list[str], n: int) -> list[list[str]]:
        calls.append((texts, n))
        return [["He spoke.", "Ushakov was silent."] for _ in texts]

    english, reports = await run.settle(["Lavrov spoke.", "He was silent.", "It rains."], nbest)
    assert calls == [(["Ushakov schwieg."], NBEST)]
    assert english == ["Lavrov spoke.", "Ushakov was silent.", "It rains."]
    assert [t.source for t in reports[0].applied] == ["Lawrow"]
    assert [(t.source, t.method) for t in reports[1].fallback] == [("Uschakow", "nbest")]
    assert reports[2].empty


async def test_a_name_no_hypothesis_has_is_reported_missed_and_the_summary_is_repaired() -> None:
    """Nothing is skipped silently: a lost name is ``missed``; German left in a summary is fixed."""
    run = GlossaryRun.start(GLOSSARY, ["Lawrow sprach in Kyjiw."])

    async def nbest(texts: list[str], n: int) -> list[list[str]]:
        return [["He spoke in Kyjiw."] for _ in texts]

    english, reports = await run.settle(["He spoke in Kyiv."], nbest)
    assert english == ["He spoke in Kyiv."]
    assert [t.source for t in reports[0].missed] == ["Lawrow"]
    summary, report = run.finish("Lawrow spoke in Kyjiw.", reports)
    assert summary == "Lavrov spoke in Kyiv."
    assert (report.applied, report.fallback, report.missed) == (1, 0, 1)
    assert {t.source for t in report.summary_replaced} == {"Lawrow", "Kyjiw"}
