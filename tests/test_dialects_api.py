"""The dialects' refusals that need no worker: rate limits, detection, preflights, timeouts."""

from __future__ import annotations

from collections.abc import Callable

from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.settings import Settings


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
