"""Glossaries through the running service: the official ``deepl`` client against a real API
process, and articles and translate-endpoint texts translated end to end by a real worker on the
tiny models."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import deepl
import httpx
import pytest
import redis as redis_sync
from redis.asyncio import Redis

from service.constants import Keys
from service.glossary_steps import GlossaryRun
from service.schemas import ModelInfo
from service.settings import ROOT
from service.store.cache import RedisSentenceCache
from service.store.workers import WorkerRegistry
from service.text.glossary import Glossary
from service.text.glossary_files import load_default_glossary
from service.text.glossary_terms import apply_to_source, repair_output
from service.text.segment import split_sentences
from tests.processes import ServiceStack, service_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis]

KEY_A = "glossary-test-key-a-0123456789abcdef"
KEY_B = "glossary-test-key-b-0123456789abcdef"
PREFIX = "kurz-glossary-e2e"
GENITIVE = "Lawrows Sprecher sagte am Montag in Moskau, die Gespräche seien schwierig gewesen."
COMPOUND = "Die Lawrowsche Linie gilt in Moskau seit Jahren als unverrückbar und streng."


Stack = ServiceStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> Iterator[Stack]:
    """A private Redis, an API with two keys, and one worker, all with the default glossary."""
    with service_stack(
        tmp_path_factory.mktemp("glossary-stack"),
        tiny_models_dir,
        KURZ_KEY_PREFIX=PREFIX,
        KURZ_API_KEYS=f"{KEY_A},{KEY_B}",
        KURZ_WORKER_CONCURRENCY="4",
    ) as running:
        yield running


@pytest.fixture(scope="module")
def default_glossary() -> Glossary:
    glossary = load_default_glossary(ROOT / "glossaries")
    assert glossary is not None
    return glossary


def translator(stack: Stack, key: str = KEY_A) -> deepl.Translator:
    return deepl.Translator(key, server_url=stack.base_url)


def summarize(stack: Stack, body: dict[str, Any], key: str = KEY_A) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/summarize",
        params={"wait": 60},
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=90,
    )


def finished(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


def test_deepl_client_creates_reads_lists_and_deletes(stack: Stack) -> None:
    """The official client's glossary calls all work against the service unchanged."""
    client = translator(stack)
    entries = {"Lawrow": "Lavrov", "Kyjiw": "Kyiv"}
    made = client.create_glossary("newsroom", "DE", "EN-GB", entries)
    assert (made.source_lang, made.target_lang, made.entry_count) == ("DE", "EN", 2)
    assert made.ready
    assert client.get_glossary(made.glossary_id).name == "newsroom"
    assert made.glossary_id in [g.glossary_id for g in client.list_glossaries()]
    assert client.get_glossary_entries(made) == entries
    pairs = [(p.source_lang, p.target_lang) for p in client.get_glossary_languages()]
    assert pairs == [("de", "en")]  # lower case, as DeepL answers
    client.delete_glossary(made)
    with pytest.raises(deepl.GlossaryNotFoundException):
        client.get_glossary(made.glossary_id)


def test_invalid_glossaries_are_refused_with_deepl_400s(stack: Stack) -> None:
    """Duplicate sources and other language pairs come back as DeepL's 400 with a message."""
    client = translator(stack)
    with pytest.raises(deepl.DeepLException, match=r"Bad request.*Lawrow") as duplicate:
        client.create_glossary_from_csv("dup", "DE", "EN", "Lawrow,Lavrov\nLawrow,Lavrow\n")
    assert duplicate.value.http_status_code == 400
    with pytest.raises(deepl.DeepLException, match="Bad request") as pair:
        client.create_glossary("fr", "FR", "EN-GB", {"Moscou": "Moscow"})
    assert pair.value.http_status_code == 400
    blank = httpx.post(
        f"{stack.base_url}/v2/glossaries",
        json={"name": "x", "source_lang": "de", "target_lang": "en", "entries": "a\t\n"},
        headers={"Authorization": f"DeepL-Auth-Key {KEY_A}"},
    )
    assert blank.status_code == 400
    assert set(blank.json()) == {"message"}


def test_form_bodies_and_tsv_entries_work_as_in_deepls_curl_examples(stack: Stack) -> None:
    """A form-encoded create answers 201, and the entries come back as TSV."""
    auth = {"Authorization": f"DeepL-Auth-Key {KEY_A}"}
    made = httpx.post(
        f"{stack.base_url}/v2/glossaries",
        data={
            "name": "form",
            "source_lang": "de",
            "target_lang": "en",
            "entries": "Uschakow\tUshakov",
            "entries_format": "tsv",
        },
        headers=auth,
    )
    assert made.status_code == 201, made.text
    glossary_id = made.json()["glossary_id"]
    entries = httpx.get(f"{stack.base_url}/v2/glossaries/{glossary_id}/entries", headers=auth)
    assert entries.headers["content-type"].startswith("text/tab-separated-values")
    assert entries.text == "Uschakow\tUshakov"
    gone = httpx.delete(f"{stack.base_url}/v2/glossaries/{glossary_id}", headers=auth)
    assert gone.status_code == 204


def test_another_key_gets_404_and_a_wrong_key_403(stack: Stack) -> None:
    """A glossary is its maker's: another key neither sees, uses nor deletes it."""
    made = translator(stack).create_glossary("mine", "DE", "EN", {"Peskow": "Peskov"})
    other = translator(stack, KEY_B)
    with pytest.raises(deepl.GlossaryNotFoundException):
        other.get_glossary(made.glossary_id)
    with pytest.raises(deepl.GlossaryNotFoundException):
        other.delete_glossary(made.glossary_id)
    assert made.glossary_id not in [g.glossary_id for g in other.list_glossaries()]
    refused = summarize(stack, {"text": GENITIVE, "glossary_id": made.glossary_id}, KEY_B)
    assert refused.status_code == 404
    assert refused.json()["code"] == "glossary_not_found"
    with pytest.raises(deepl.AuthorizationException):
        translator(stack, "not-a-key").list_glossaries()
    assert translator(stack).get_glossary(made.glossary_id).name == "mine"


def test_every_seed_leaves_no_german_name_and_reports_every_entry(
    stack: Stack, seed_texts: dict[str, str], default_glossary: Glossary
) -> None:
    """With the default glossary no German form survives in translation or summary, and each
    sentence's report names every entry its German contains."""
    totals = {"applied": 0, "fallback": 0, "missed": 0}
    for name, text in seed_texts.items():
        result = finished(summarize(stack, {"text": text}))
        report = result["glossary"]
        assert report["glossary_id"] == "default", name
        assert report["digest"] == default_glossary.digest
        assert repair_output(result["translation"], default_glossary).hits == (), name
        assert repair_output(result["summary"], default_glossary).hits == (), name
        counted = {"applied": 0, "fallback": 0, "missed": 0}
        for sentence in result["alignment"]:
            expected = {e.source for e in apply_to_source(sentence["de"], default_glossary).entries}
            reported = sentence["glossary"]
            named = {t["source"] for kind in counted for t in reported[kind]}
            assert expected <= named, (name, sentence["de"])
            for kind in counted:
                counted[kind] += len(reported[kind])
        assert counted == {kind: report[kind] for kind in counted}, name
        totals = {kind: totals[kind] + counted[kind] for kind in totals}
    print("[glossary-seeds]", " ".join(f"{k}={v}" for k, v in totals.items()))  # noqa: T201
    assert sum(totals.values()) > 0  # the seeds do name Lawrow, Uschakow, Kyjiw...


async def test_a_genitive_reaches_the_model_as_english_and_a_compound_is_left_alone(
    stack: Stack, default_glossary: Glossary
) -> None:
    """``Lawrows`` is sent to the model as ``Lavrov's``; ``Lawrowsche`` is not touched."""
    text = f"{GENITIVE}\n\n{COMPOUND}"
    result = finished(summarize(stack, {"text": text}))
    genitive, compound = result["alignment"]
    terms = [
        t["source"] for k in ("applied", "fallback", "missed") for t in genitive["glossary"][k]
    ]
    assert terms == ["Lawrow"]
    assert compound["glossary"] == {"applied": [], "fallback": [], "missed": []}
    assert repair_output(result["translation"], default_glossary).hits == ()
    sent = [s.text for s in split_sentences(text)]
    substituted = apply_to_source(sent[0], default_glossary).text
    assert substituted.startswith("Lavrov's Sprecher")
    model = ModelInfo(**result["models"]["translation"])
    client = Redis.from_url(stack.redis_url)
    try:
        cache = RedisSentenceCache(client, Keys(PREFIX), model, 60)
        # The sentence cache holds what the model was sent: the rewritten genitive (under the
        # article's forbidden spellings, since it requires "Lavrov"), the compound sentence
        # unchanged and plain, and not the German genitive.
        forbidden = GlossaryRun.start(default_glossary, sent).forbidden
        assert forbidden is not None and "Lawrows" in forbidden.forms
        hits = await cache.get_many([substituted, sent[1], sent[0]])
        assert [hit is not None for hit in hits] == [False, True, False]
        assert await cache.get_many([substituted], variant=forbidden.digest) != [None]
        without = finished(summarize(stack, {"text": text, "glossary_id": None}))
        assert without["glossary"] is None
        assert without["alignment"][0]["glossary"] is None
        assert (await cache.get_many([sent[0]]))[0] is not None
    finally:
        await client.aclose()


def test_with_and_without_a_glossary_are_two_cached_results(stack: Stack) -> None:
    """The glossary (id and content) is part of the result key: three requests, three jobs."""
    text = "Selenskyj traf am Dienstag in Kyjiw den Außenminister zu einem langen Gespräch."
    made = translator(stack).create_glossary("own", "DE", "EN", {"Selenskyj": "Selenskyy"})
    default = finished(summarize(stack, {"text": text}))
    none = finished(summarize(stack, {"text": text, "glossary_id": None}))
    own = finished(summarize(stack, {"text": text, "glossary_id": made.glossary_id}))
    assert default["glossary"]["glossary_id"] == "default"
    assert none["glossary"] is None
    assert own["glossary"]["glossary_id"] == made.glossary_id
    assert "Selenskyj" not in own["translation"]
    ids = {
        summarize(stack, body).json()["id"]
        for body in ({"text": text}, {"text": text, "glossary_id": None})
    }
    assert len(ids) == 2
    again = summarize(stack, {"text": text})
    assert again.json()["result"]["cached"] is True


def test_the_batch_takes_a_glossary_per_article(stack: Stack) -> None:
    """Each batch article names its own glossary; an unknown one is that article's 404 only."""
    made = translator(stack).create_glossary("batch", "DE", "EN", {"Rjabkow": "Ryabkov"})
    text = "Rjabkow sprach am Mittwoch in Genf lange mit den amerikanischen Unterhändlern."
    response = httpx.post(
        f"{stack.base_url}/summarize/batch",
        json={
            "articles": [
                {"text": text, "glossary_id": made.glossary_id},
                {"text": text, "glossary_id": "no-such-glossary"},
                {"text": text},
            ]
        },
        headers={"Authorization": f"Bearer {KEY_A}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    own, unknown, default = response.json()["jobs"]
    assert unknown["error"]["code"] == "glossary_not_found"
    assert unknown["error"]["status"] == 404
    assert own["id"] != default["id"]
    deadline = time.monotonic() + 60
    view: dict[str, Any] = {}
    while time.monotonic() < deadline and view.get("status") != "succeeded":
        time.sleep(0.25)
        view = httpx.get(
            f"{stack.base_url}/jobs/{own['id']}", headers={"Authorization": f"Bearer {KEY_A}"}
        ).json()
    assert view["result"]["glossary"]["glossary_id"] == made.glossary_id


def test_the_default_glossary_is_readable_by_all_and_deletable_by_none(
    stack: Stack, default_glossary: Glossary
) -> None:
    """``default`` answers GET and its entries for any key; DELETE is refused with 403."""
    for key in (KEY_A, KEY_B):
        client = translator(stack, key)
        info = client.get_glossary("default")
        assert info.entry_count == len(default_glossary.entries)
        entries = client.get_glossary_entries("default")
        assert entries == {e.source: e.target for e in default_glossary.entries}
    with pytest.raises(deepl.AuthorizationException):
        translator(stack).delete_glossary("default")


# --- the translate endpoints ------------------------------------------------------------------

#: Sentences no other test of this module translates, so the sentence cache entries a test
#: writes for them are its own.
LAWROW_LANE = "Lawrow sprach am Donnerstag in Genf lange mit den Unterhändlern der Gegenseite."
PESKOW_LANE = "Peskow sagte am Freitag in Moskau, der Kreml prüfe den Vorschlag sehr genau."


async def model_said(stack: Stack, entries: dict[str, str], german: str, english: str) -> None:
    """Put ``english`` in the sentence cache as the model's translation of ``german`` once the
    glossary's English forms are written in, as a real model that spelled the name the German
    way again would have left it (the tiny models write gibberish with no name at all)."""
    made = Glossary.create(
        name="x",
        source_lang="DE",
        target_lang="EN",
        entries="\n".join(f"{s}\t{t}" for s, t in entries.items()),
    )
    run = GlossaryRun.start(made, [german])
    (rewritten,) = run.sources
    assert rewritten != german
    # Filed as the service files it: under the digest of the spellings forbidden to the model.
    variant = run.forbidden.digest if run.forbidden is not None and run.constrained[0] else None
    client = Redis.from_url(stack.redis_url)
    try:
        models = await WorkerRegistry(client, Keys(PREFIX)).models()
        assert models is not None
        cache = RedisSentenceCache(client, Keys(PREFIX), models["translation"], 600)
        await cache.set_many([(rewritten, english)], variant=variant)
    finally:
        await client.aclose()


def lane_jobs(stack: Stack) -> set[bytes]:
    """The translate lane's job records in the stack's Redis."""
    client = redis_sync.Redis.from_url(stack.redis_url)
    try:
        pattern = f"saq:job:{Keys(PREFIX).translate_queue_name}:*"
        return set(client.scan_iter(match=pattern, count=500))
    finally:
        client.close()


async def test_the_deepl_client_translates_with_its_glossary_and_only_when_named(
    stack: Stack,
) -> None:
    """``translate_text(..., glossary=...)``: the German name comes out in the glossary's
    English form (the model's German spelling repaired), without a glossary it does not (the
    server's default is not applied unless named as ``default``), and with, without and
    ``default`` are three lane results, a repeat served from its own."""
    client = translator(stack)
    entries = {"Lawrow": "Lavrov"}
    made = client.create_glossary("lane", "DE", "EN", entries)
    await model_said(stack, entries, LAWROW_LANE, "Lawrow spoke at length in Geneva on Thursday.")
    before = lane_jobs(stack)
    own = client.translate_text(LAWROW_LANE, source_lang="DE", target_lang="EN-GB", glossary=made)
    plain = client.translate_text(LAWROW_LANE, source_lang="DE", target_lang="EN-GB")
    default = client.translate_text(
        LAWROW_LANE, source_lang="DE", target_lang="EN-GB", glossary="default"
    )
    assert own.text == "Lavrov spoke at length in Geneva on Thursday."
    assert default.text == own.text
    assert "Lavrov" not in plain.text and plain.text != own.text
    assert len(lane_jobs(stack) - before) == 3
    again = client.translate_text(
        LAWROW_LANE, source_lang="DE", target_lang="EN-GB", glossary=made.glossary_id
    )
    assert again.text == own.text
    assert len(lane_jobs(stack) - before) == 3


def test_deepl_translate_refuses_others_unknown_and_sourceless_glossaries(stack: Stack) -> None:
    """Another key's glossary and an unknown id are DeepL's 404 (the client's DeepLException
    with that status); a glossary_id without source_lang is DeepL's 400."""
    made = translator(stack).create_glossary("private", "DE", "EN", {"Lawrow": "Lavrov"})
    for key, glossary_id in ((KEY_B, made.glossary_id), (KEY_A, "no-such-glossary")):
        with pytest.raises(deepl.DeepLException) as refused:
            translator(stack, key).translate_text(
                LAWROW_LANE, source_lang="DE", target_lang="EN-GB", glossary=glossary_id
            )
        assert refused.value.http_status_code == 404
        assert glossary_id in str(refused.value)
    sourceless = httpx.post(
        f"{stack.base_url}/v2/translate",
        data={"text": LAWROW_LANE, "target_lang": "EN-GB", "glossary_id": made.glossary_id},
        headers={"Authorization": f"DeepL-Auth-Key {KEY_A}"},
        timeout=90,
    )
    assert sourceless.status_code == 400
    assert "source_lang" in sourceless.json()["message"]


async def test_libretranslate_takes_glossary_id_in_json_and_form(stack: Stack) -> None:
    """A plain LibreTranslate request with ``glossary_id`` gets the English form, as JSON and
    as a form, HTML included; without it the German name is not rewritten, and another key's
    glossary is 404 ``{"error"}``."""
    entries = {"Peskow": "Peskov"}
    made = translator(stack).create_glossary("libre", "DE", "EN", entries)
    await model_said(stack, entries, PESKOW_LANE, "Peskow said the Kremlin was examining it.")
    body = {"q": PESKOW_LANE, "source": "de", "target": "en", "api_key": KEY_A}
    with_json = lt_translate(stack, json={**body, "glossary_id": made.glossary_id})
    with_form = lt_translate(stack, data={**body, "glossary_id": made.glossary_id})
    without = lt_translate(stack, json=body)
    assert with_json.status_code == with_form.status_code == without.status_code == 200
    assert with_json.json()["translatedText"] == "Peskov said the Kremlin was examining it."
    assert with_form.json() == with_json.json()
    assert "Peskov" not in without.json()["translatedText"]
    html = lt_translate(
        stack,
        json={
            **body,
            "q": f"<p><b>{PESKOW_LANE}</b></p>",
            "format": "html",
            "glossary_id": made.glossary_id,
        },
    )
    assert html.status_code == 200
    marked = html.json()["translatedText"]
    assert marked.startswith("<p>") and marked.endswith("</p>") and "<b>" in marked
    assert "Peskow" not in marked
    other = lt_translate(stack, json={**body, "api_key": KEY_B, "glossary_id": made.glossary_id})
    assert other.status_code == 404
    assert set(other.json()) == {"error"}


def lt_translate(stack: Stack, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{stack.base_url}/translate", timeout=90, **kwargs)
