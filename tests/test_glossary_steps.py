"""The pipeline's glossary steps without models: source rewrite, n-best fallback, summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis

from service.api.app import create_app
from service.errors import GlossaryFileError
from service.glossary_steps import NBEST, GlossaryRun, merged_names
from service.nlp.engine import ForbiddenForms
from service.settings import Settings
from service.text.glossary import Glossary
from service.worker_state import WorkerState

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
    calls: list[tuple[list[str], int, ForbiddenForms | None]] = []

    async def nbest(texts: list[str], n: int, forbidden: ForbiddenForms | None) -> list[list[str]]:
        calls.append((texts, n, forbidden))
        return [["He spoke.", "Ushakov was silent."] for _ in texts]

    english, reports = await run.settle(["Lavrov spoke.", "He was silent.", "It rains."], nbest)
    assert calls == [(["Ushakov schwieg."], NBEST, run.forbidden)]
    assert english == ["Lavrov spoke.", "Ushakov was silent.", "It rains."]
    assert [t.source for t in reports[0].applied] == ["Lawrow"]
    assert [(t.source, t.method) for t in reports[1].fallback] == [("Uschakow", "nbest")]
    assert reports[2].empty


async def test_a_name_no_hypothesis_has_is_reported_missed_and_the_summary_is_repaired() -> None:
    """Nothing is skipped silently: a lost name is ``missed``; German left in a summary is fixed."""
    run = GlossaryRun.start(GLOSSARY, ["Lawrow sprach in Kyjiw."])

    async def nbest(texts: list[str], n: int, forbidden: ForbiddenForms | None) -> list[list[str]]:
        return [["He spoke in Kyjiw."] for _ in texts]

    english, reports = await run.settle(["He spoke in Kyiv."], nbest)
    assert english == ["He spoke in Kyiv."]
    assert [t.source for t in reports[0].missed] == ["Lawrow"]
    summary, report = run.finish("Lawrow spoke in Kyjiw.", reports)
    assert summary == "Lavrov spoke in Kyiv."
    assert (report.applied, report.fallback, report.missed) == (1, 0, 1)
    assert {t.source for t in report.summary_replaced} == {"Lawrow", "Kyjiw"}


def test_a_bad_default_glossary_stops_the_api_and_the_worker_at_start(
    tmp_path: Path, clean_env: None
) -> None:
    """A bad ``glossaries/*.tsv`` line fails create_app and the worker's start-up, by name."""
    (tmp_path / "people.tsv").write_text("Lawrow\tLavrov\nLawrow\tLawrov\n", encoding="utf-8")
    settings = Settings(glossaries_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(GlossaryFileError, match=r"people\.tsv.*2"):
        create_app(settings)
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never reached: the glossary fails first
    with pytest.raises(GlossaryFileError, match=r"people\.tsv"):
        asyncio.run(WorkerState.start(settings, redis, "w-test"))
