"""The dialects' refusals that need no worker: rate limits, detection, preflights, timeouts,
and the glossary a translate request names (checked before its lane job is queued)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.api.app import create_app
from service.api.keys import key_digest
from service.constants import Keys
from service.settings import Settings
from service.text.glossary_files import load_default_glossary


async def test_rate_limits_answer_in_each_dialects_shape(
    make_settings: Callable[..., Settings],
) -> None:
    """Over the limit, LibreTranslate says 429 'Slowdown: ...', DeepL 429 with Retry-After."""
    app = create_app(make_settings(rate_limit_per_minute=1))
    async with AsyncTestClient(app) as client:
        assert (await client.post("/detect", data={"q": "Guten Morgen"})).status_code == 200
        libre = await client.post("/detect", data={"q": "Guten Morgen"})
        assert libre.status_code == 429
        assert libre.json()["error"].startswith("Slowdown:")
        deepl = await client.get("/v2/languages", params={"type": "target"})
        assert deepl.status_code == 429 and int(deepl.headers["retry-after"]) >= 1
        assert "message" in deepl.json()


async def test_detect_ranks_german_first_with_a_confidence(
    make_settings: Callable[..., Settings],
) -> None:
    """/detect answers a ranked list of {confidence, language}, German first for German."""
    async with AsyncTestClient(create_app(make_settings())) as client:
        answer = await client.post(
            "/detect", json={"q": "Die Bundesregierung hat ein neues Gesetz beschlossen."}
        )
        ranked = answer.json()
        assert ranked[0]["language"] == "de" and ranked[0]["confidence"] > 90
        assert [r["confidence"] for r in ranked] == sorted(
            (r["confidence"] for r in ranked), reverse=True
        )
        missing = await client.post("/detect", json={})
        assert missing.status_code == 400
        assert missing.json() == {"error": "Invalid request: missing q parameter"}


async def test_no_worker_means_503_with_retry_after_in_both_shapes(
    make_settings: Callable[..., Settings],
) -> None:
    """With no worker, both dialects give up after the wait: 503, Retry-After, their shape."""
    app = create_app(make_settings(translate_wait_s=0.3))
    async with AsyncTestClient(app) as client:
        libre = await client.post(
            "/translate", json={"q": "Es regnet.", "source": "de", "target": "en"}
        )
        assert libre.status_code == 503 and libre.headers["retry-after"]
        assert "error" in libre.json()
        deepl = await client.post(
            "/v2/translate", json={"text": ["Es regnet."], "target_lang": "EN"}
        )
        assert deepl.status_code == 503 and deepl.headers["retry-after"]
        assert "message" in deepl.json()


async def test_cors_only_on_libretranslate_routes(make_settings: Callable[..., Settings]) -> None:
    """LibreTranslate's routes carry its CORS headers; the rest of the API does not."""
    async with AsyncTestClient(create_app(make_settings())) as client:
        languages = await client.get("/languages")
        assert languages.headers["access-control-allow-origin"] == "*"
        assert languages.json()[0] == {"code": "de", "name": "German", "targets": ["en"]}
        styles = await client.get("/styles")
        assert "access-control-allow-origin" not in styles.headers


KEY_A = "dialect-glossary-key-a-0123456789abcdef"
KEY_B = "dialect-glossary-key-b-0123456789abcdef"
LAWROW = "Lawrow sagte am Montag in Moskau, die Gespräche seien schwierig gewesen."


async def _lane_payloads(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    """The kwargs of every job on the prefix's translate lane."""
    keys = [
        k async for k in redis.scan_iter(match=f"saq:job:{Keys(prefix).translate_queue_name}:*")
    ]
    payloads = []
    for key in keys:
        record = json.loads(await redis.get(key))
        payloads.append(record["kwargs"])
    return payloads


async def _glossary_for(client: AsyncTestClient[Litestar], key: str) -> str:
    made = await client.post(
        "/v2/glossaries",
        json={"name": "n", "source_lang": "de", "target_lang": "en", "entries": "Lawrow\tLavrov"},
        headers={"Authorization": f"DeepL-Auth-Key {key}"},
    )
    assert made.status_code == 201, made.text
    glossary_id: str = made.json()["glossary_id"]
    return glossary_id


async def test_deepl_glossary_id_needs_source_lang_and_an_own_glossary(
    make_settings: Callable[..., Settings],
) -> None:
    """/v2/translate: a glossary_id without source_lang is 400; an unknown id and another
    key's glossary are 404 with DeepL's {"message"}; the owner's is accepted (503 here: no
    worker runs)."""
    app = create_app(make_settings(api_keys=[KEY_A, KEY_B], translate_wait_s=0.3))
    async with AsyncTestClient(app) as client:
        glossary_id = await _glossary_for(client, KEY_A)

        def translate(key: str, **fields: str) -> Any:
            body = {"text": LAWROW, "target_lang": "EN-GB", **fields}
            return client.post(
                "/v2/translate", data=body, headers={"Authorization": f"DeepL-Auth-Key {key}"}
            )

        no_source = await translate(KEY_A, glossary_id=glossary_id)
        assert no_source.status_code == 400
        assert "source_lang" in no_source.json()["message"]
        for key, asked in ((KEY_A, "no-such-glossary"), (KEY_B, glossary_id)):
            missing = await translate(key, glossary_id=asked, source_lang="DE")
            assert missing.status_code == 404
            assert set(missing.json()) == {"message"}
            assert asked in missing.json()["message"]
        accepted = await translate(KEY_A, glossary_id=glossary_id, source_lang="DE")
        assert accepted.status_code == 503, accepted.text
        as_json = await client.post(
            "/v2/translate",
            json={"text": [LAWROW], "target_lang": "EN", "glossary_id": 7, "source_lang": "DE"},
            headers={"Authorization": f"DeepL-Auth-Key {KEY_A}"},
        )
        assert as_json.status_code == 400
        assert "glossary_id" in as_json.json()["message"]


async def test_libretranslate_glossary_id_is_the_callers_own_in_json_and_form(
    make_settings: Callable[..., Settings],
) -> None:
    """/translate's glossary_id extension: another key's or an unknown glossary is 404 with
    LibreTranslate's {"error"}, in JSON and form bodies; the owner's is accepted."""
    app = create_app(make_settings(api_keys=[KEY_A, KEY_B], translate_wait_s=0.3))
    async with AsyncTestClient(app) as client:
        glossary_id = await _glossary_for(client, KEY_A)
        for how in ("json", "data"):
            for key, asked in ((KEY_B, glossary_id), (KEY_A, "no-such-glossary")):
                body = {"q": LAWROW, "source": "de", "target": "en", "api_key": key}
                missing = await client.post("/translate", **{how: {**body, "glossary_id": asked}})
                assert missing.status_code == 404, how
                assert set(missing.json()) == {"error"}
            body = {"q": LAWROW, "source": "auto", "target": "en", "api_key": KEY_A}
            accepted = await client.post(
                "/translate", **{how: {**body, "glossary_id": glossary_id}}
            )
            assert accepted.status_code == 503, accepted.text


async def test_a_glossary_makes_another_lane_job_and_none_is_applied_unless_named(
    make_settings: Callable[..., Settings], redis: Redis, prefix: str
) -> None:
    """The same text with the key's glossary, with ``default`` and with none are three lane
    jobs, each payload naming its glossary by id and digest; without glossary_id (or with
    null) none is named, although the server has a default glossary."""
    settings = make_settings(api_keys=[KEY_A], translate_wait_s=0.3)
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        glossary_id = await _glossary_for(client, KEY_A)
        auth = {"Authorization": f"DeepL-Auth-Key {KEY_A}"}
        bodies: list[dict[str, Any]] = [
            {"glossary_id": glossary_id},
            {"glossary_id": "default"},
            {},
            {"glossary_id": None},
            {"glossary_id": glossary_id},
        ]
        for extra in bodies:
            answer = await client.post(
                "/v2/translate",
                json={"text": [LAWROW], "target_lang": "EN", "source_lang": "DE", **extra},
                headers=auth,
            )
            assert answer.status_code == 503, answer.text
        libre = await client.post(
            "/translate",
            json={"q": LAWROW, "source": "de", "target": "en", "api_key": KEY_A},
        )
        assert libre.status_code == 503
    payloads = await _lane_payloads(redis, prefix)
    named = [
        (p["glossary"]["glossary_id"], p["glossary"]["owner"]) if p["glossary"] else None
        for p in payloads
    ]
    assert len(named) == 3
    assert set(named) == {None, ("default", None), (glossary_id, key_digest(KEY_A))}
    default = load_default_glossary(settings.glossaries_dir)
    assert default is not None
    digests = {
        p["glossary"]["glossary_id"]: p["glossary"]["digest"] for p in payloads if p["glossary"]
    }
    assert digests["default"] == default.digest
