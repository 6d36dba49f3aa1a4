"""LibreTranslate and DeepL clients against the real service: API, worker, Redis, tiny models."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import deepl
import httpx
import pytest
import redis as redis_lib
from deep_translator import LibreTranslator
from libretranslatepy import LibreTranslateAPI

from service.api.keys import key_digest
from service.store.usage import current_period
from tests.processes import ServiceStack, service_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis]

KEY = "newsroom-key-0123456789abcdef0123456789"
SPENT_KEY = "spent-key-0123456789abcdef0123456789"
PREFIX = "dialects"
MONTHLY_LIMIT = 100_000
SENTENCE = "Die Bundesregierung hat am Mittwoch ein neues Gesetz beschlossen."


Stack = ServiceStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> Iterator[Stack]:
    """A private Redis, one API process (keys on, a monthly quota) and one worker."""
    with service_stack(
        tmp_path_factory.mktemp("dialects"),
        tiny_models_dir,
        KURZ_KEY_PREFIX=PREFIX,
        KURZ_API_KEYS=f"{KEY},{SPENT_KEY}",
        KURZ_WORKER_CONCURRENCY="1",
        KURZ_TRANSLATE_CHAR_LIMIT="50000",
        KURZ_TRANSLATE_MONTHLY_CHAR_LIMIT=str(MONTHLY_LIMIT),
    ) as running:
        yield running


def lt_post(stack: Stack, path: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{stack.base_url}{path}", timeout=120, **kwargs)  # type: ignore[arg-type]


def test_libretranslatepy_translates_detects_and_lists(stack: Stack) -> None:
    """libretranslatepy: a seed sentence, auto detection, detect and languages all work."""
    client = LibreTranslateAPI(stack.base_url + "/", api_key=KEY)
    english = client.translate(SENTENCE, "de", "en")
    assert isinstance(english, str) and english.strip() and english != SENTENCE
    assert client.translate(SENTENCE, "auto", "en") == english
    ranked = client.detect(SENTENCE)
    assert ranked[0]["language"] == "de" and ranked[0]["confidence"] > 50
    assert {"code": "de", "name": "German", "targets": ["en"]} in client.languages()


def test_deep_translator_translates_a_whole_seed(stack: Stack, seed_texts: dict[str, str]) -> None:
    """deep-translator's LibreTranslator translates a whole seed, paragraphs kept."""
    seed = next(iter(seed_texts.values()))
    translator = LibreTranslator(
        source="de", target="en", api_key=KEY, custom_url=stack.base_url + "/"
    )
    english = translator.translate(seed)
    assert english.count("\n\n") == seed.strip().count("\n\n")
    assert len(english) > len(seed) / 4


def test_libretranslate_list_alternatives_and_auto(stack: Stack) -> None:
    """A list q gives a list; auto adds detectedLanguage; alternatives come when asked."""
    body = lt_post(
        stack,
        "/translate",
        json={"q": [SENTENCE, "Es regnet."], "source": "auto", "target": "en", "api_key": KEY},
    ).json()
    assert isinstance(body["translatedText"], list) and len(body["translatedText"]) == 2
    assert body["detectedLanguage"][0]["language"] == "de"
    one = lt_post(
        stack,
        "/translate",
        data={"q": SENTENCE, "source": "de", "target": "en", "alternatives": "2", "api_key": KEY},
    ).json()
    assert isinstance(one["alternatives"], list) and 1 <= len(one["alternatives"]) <= 2
    assert "detectedLanguage" not in one


@pytest.mark.parametrize("how", ["json", "form", "multipart", "query"])
@pytest.mark.parametrize(
    ("params", "status", "error"),
    [
        ({"source": "de", "target": "en"}, 400, "Invalid request: missing q parameter"),
        ({"q": "Hallo", "target": "en"}, 400, "Invalid request: missing source parameter"),
        ({"q": "Hallo", "source": "de", "target": "fr"}, 400, "fr is not supported"),
        ({"q": "Hallo", "source": "it", "target": "en"}, 400, "it is not supported"),
        (
            {"q": "Hallo", "source": "de", "target": "en", "format": "pdf"},
            400,
            "pdf format is not supported",
        ),
        ({"q": "x" * 50001, "source": "de", "target": "en"}, 400, "exceeds text limit (50000)"),
    ],
)
def test_libretranslate_errors_in_every_body(
    stack: Stack, how: str, params: dict[str, str], status: int, error: str
) -> None:
    """Each LibreTranslate error has its status and wording, whatever carries the parameters."""
    sent = {**params, "api_key": KEY}
    if how == "json":
        response = lt_post(stack, "/translate", json=sent)
    elif how == "form":
        response = lt_post(stack, "/translate", data=sent)
    elif how == "multipart":
        response = lt_post(stack, "/translate", files={k: (None, v) for k, v in sent.items()})
    else:
        response = lt_post(stack, "/translate", params=sent)
    assert response.status_code == status
    assert error in response.json()["error"]
    assert response.headers["access-control-allow-origin"] == "*"


def test_libretranslate_keys_and_cors(stack: Stack) -> None:
    """A wrong key is 403 'Invalid API key', a missing one 400; preflights are answered."""
    sent = {"q": "Hallo", "source": "de", "target": "en"}
    wrong = lt_post(stack, "/translate", json={**sent, "api_key": "nope"})
    assert (wrong.status_code, wrong.json()) == (403, {"error": "Invalid API key"})
    missing = lt_post(stack, "/translate", json=sent)
    assert missing.status_code == 400 and "API key" in missing.json()["error"]
    preflight = httpx.options(
        f"{stack.base_url}/translate",
        headers={"Origin": "https://cms.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    settings = httpx.get(f"{stack.base_url}/frontend/settings").json()
    assert settings["keyRequired"] is True and settings["charLimit"] == 50000


def test_deepl_client_translates_lists_languages_and_usage(stack: Stack) -> None:
    """The official deepl client: a sentence, a list, languages and usage counted per key."""
    client = deepl.Translator(KEY, server_url=stack.base_url)
    before = client.get_usage().character.count
    one = client.translate_text(SENTENCE, target_lang="EN-GB")
    assert one.detected_source_lang == "DE" and one.text.strip()
    many = client.translate_text([SENTENCE, "Es regnet."], source_lang="DE", target_lang="EN-US")
    assert many[0].text == one.text
    assert [lang.code for lang in client.get_source_languages()] == ["DE"]
    assert "EN-GB" in [lang.code for lang in client.get_target_languages()]
    usage = client.get_usage().character
    assert usage.count == before + 2 * len(SENTENCE) + len("Es regnet.")
    assert usage.limit == MONTHLY_LIMIT


def test_deepl_client_wrong_key_and_unsupported_target(stack: Stack) -> None:
    """The deepl client raises its own exceptions for a wrong key and an unsupported target."""
    with pytest.raises(deepl.AuthorizationException):
        deepl.Translator("wrong", server_url=stack.base_url).translate_text(
            SENTENCE, target_lang="EN-GB"
        )
    with pytest.raises(deepl.DeepLException, match="target_lang"):
        deepl.Translator(KEY, server_url=stack.base_url).translate_text(SENTENCE, target_lang="FR")


@pytest.mark.parametrize("how", ["json", "form"])
@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"target_lang": "EN"}, 400, "'text'"),
        ({"text": "Hallo", "target_lang": "FR"}, 400, "'target_lang' not supported: FR"),
        ({"text": "Hallo", "target_lang": "EN", "source_lang": "FR"}, 400, "'source_lang'"),
        ({"text": "Hallo", "target_lang": "EN", "glossary_id": "g1"}, 400, "source_lang"),
        ({"text": "x" * 50001, "target_lang": "EN"}, 413, "Too Large"),
        (
            {"text": "The government passed a new law on Wednesday evening.", "target_lang": "EN"},
            400,
            "Detected source language EN",
        ),
    ],
)
def test_deepl_errors_in_every_body(
    stack: Stack, how: str, params: dict[str, str], status: int, message: str
) -> None:
    """Each DeepL error has its status and a {"message"} body, over JSON and form bodies."""
    headers = {"Authorization": f"DeepL-Auth-Key {KEY}"}
    if how == "json":
        body = {k: [v] if k == "text" else v for k, v in params.items()}
        response = lt_post(stack, "/v2/translate", json=body, headers=headers)
    else:
        response = lt_post(stack, "/v2/translate", data=params, headers=headers)
    assert response.status_code == status
    assert message in response.json()["message"]


def test_deepl_quota_and_auth_statuses(stack: Stack) -> None:
    """A spent key gets 456, no key 403, an unknown /v2 path 404."""
    client = redis_lib.Redis.from_url(stack.redis_url)
    subject = f"key:{key_digest(SPENT_KEY)}"
    client.set(f"{PREFIX}:usage:{subject}:{current_period()}", MONTHLY_LIMIT)
    spent = lt_post(
        stack,
        "/v2/translate",
        data={"text": "Hallo", "target_lang": "EN"},
        headers={"Authorization": f"DeepL-Auth-Key {SPENT_KEY}"},
    )
    assert spent.status_code == 456 and "Quota" in spent.json()["message"]
    anonymous = lt_post(stack, "/v2/translate", data={"text": "Hallo", "target_lang": "EN"})
    assert anonymous.status_code == 403 and "message" in anonymous.json()
    assert httpx.get(f"{stack.base_url}/v2/nothing").status_code == 404


def test_one_sentence_is_answered_while_a_long_article_runs(
    stack: Stack, seed_texts: dict[str, str]
) -> None:
    """A one-sentence translation returns while a long article job is still running."""
    article = "\n\n".join(seed_texts.values()) * 3
    submitted = httpx.post(
        f"{stack.base_url}/summarize",
        json={"text": article},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert submitted.status_code in (200, 202), submitted.text
    job_id = submitted.json()["id"]
    deadline = time.monotonic() + 120
    while (
        httpx.get(
            f"{stack.base_url}/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}
        ).json()["status"]
        != "running"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            lt_post,
            stack,
            "/translate",
            json={
                "q": "Heute ist ein schöner Tag in Berlin.",
                "source": "de",
                "target": "en",
                "api_key": KEY,
            },
        ).result()
    assert answer.status_code == 200 and answer.json()["translatedText"].strip()
    view = httpx.get(
        f"{stack.base_url}/jobs/{job_id}", headers={"Authorization": f"Bearer {KEY}"}
    ).json()
    assert view["status"] == "running", view["status"]


def test_html_keeps_its_markup_in_both_dialects(stack: Stack) -> None:
    """format=html and tag_handling=html translate the words and keep the elements."""
    html = '<p>Die <a href="/k">Kanzlerin</a> sprach <b>lange</b>.</p>'
    libre = lt_post(
        stack,
        "/translate",
        json={"q": html, "source": "de", "target": "en", "format": "html", "api_key": KEY},
    ).json()["translatedText"]
    deepl_answer = lt_post(
        stack,
        "/v2/translate",
        json={"text": [html], "target_lang": "EN", "tag_handling": "html"},
        headers={"Authorization": f"DeepL-Auth-Key {KEY}"},
    ).json()["translations"][0]["text"]
    for english in (libre, deepl_answer):
        assert english.startswith("<p>") and english.endswith("</p>")
        assert '<a href="/k">' in english and "<b>" in english
        assert english != html


def test_deepl_split_sentences_zero_translates_each_text_whole(stack: Stack) -> None:
    """split_sentences=0 sends a text as one unit: its line break does not survive."""
    text = "Es regnet.\nDie Sonne scheint."
    headers = {"Authorization": f"DeepL-Auth-Key {KEY}"}
    whole = lt_post(
        stack,
        "/v2/translate",
        data={"text": text, "target_lang": "EN", "split_sentences": "0"},
        headers=headers,
    ).json()["translations"][0]["text"]
    split = lt_post(
        stack, "/v2/translate", data={"text": text, "target_lang": "EN"}, headers=headers
    ).json()["translations"][0]["text"]
    assert "\n" in split and "\n" not in whole
