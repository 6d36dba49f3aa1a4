"""DeepL's API v2, as its official clients call it: ``POST /v2/translate``,
``GET /v2/languages`` and ``GET /v2/usage``, keyed by ``Authorization: DeepL-Auth-Key KEY``.

Errors come in DeepL's shape, ``{"message": ...}``, with its statuses: 400 bad request, 403 a
missing or wrong key, 404 unknown path below ``/v2``, 413 a request over the character limit,
429 too many requests (with ``Retry-After``), 456 the month's characters spent, 503 the
translation not done in time.  Characters are counted per key and month (``/v2/usage``).

``glossary_id`` names one of the key's glossaries (``/v2/glossaries``) or the server's default
(``default``); as in DeepL it needs ``source_lang`` (400 without it), and an id the key does not
own answers 404, as DeepL answers a missing glossary.  Without it no glossary is applied, not
even the server's default: DeepL clients expect a glossary only when they name one.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post

from service.api.deps import ServicesDep
from service.api.keys import Caller, presented_key
from service.api.services import Services
from service.api.translate_lane import (
    Params,
    dialect_error,
    foreign_language,
    identify,
    lane_glossary,
    lane_translate,
    read_params,
    requested_glossary_id,
    too_many,
)
from service.errors import ApiProblem
from service.store.usage import CharacterUsage

__all__ = ["router"]

TARGETS = ("EN", "EN-GB", "EN-US")
#: Status DeepL answers when the key's character quota is spent.
QUOTA_EXCEEDED = 456


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiProblem:
    return ApiProblem(status, "deepl", message, headers=headers)


def deepl_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Any failure on these routes, in DeepL's ``{"message": ...}`` shape."""
    return dialect_error(request, exc, field="message", internal="Internal error")


async def _admit(request: Request[Any, Any, Any], services: Services, params: Params) -> Caller:
    """The caller (``client`` is its usage subject); 403 without a valid key (when keys are
    on), 429 over the rate.  The key comes as ``DeepL-Auth-Key`` (or ``auth_key``, DeepL's
    older parameter)."""
    key = presented_key(request.headers)
    legacy = params.get("auth_key")
    if key is None and isinstance(legacy, str) and legacy:
        key = legacy
    try:
        caller = await identify(services, request, key)
    except ApiProblem as problem:
        if problem.status == 429:
            raise _error(
                429,
                "Too many requests, please wait and resend your request.",
                dict(problem.headers),
            ) from None
        raise _error(403, "Authorization failure, check auth_key") from None
    if services.limiter.enabled:
        decision = await services.limiter.hit(caller.rate_subject)
        if not decision.allowed:
            raise _error(
                429,
                "Too many requests, please wait and resend your request.",
                {"Retry-After": str(decision.reset_after_s)},
            )
    return caller


async def _params(request: Request[Any, Any, Any]) -> Params:
    try:
        return await read_params(request)
    except ValueError:
        raise _error(400, "Bad request. Reason: the body is not valid JSON") from None


def _flag(params: Params, name: str) -> bool:
    value = params.get(name)
    return value is True or str(value).lower() in ("1", "true")


@post("/translate", status_code=200)
async def translate(request: Request[Any, Any, Any], services: ServicesDep) -> dict[str, Any]:
    """DeepL's ``POST /v2/translate``: German texts to English, in order."""
    params = await _params(request)
    caller = await _admit(request, services, params)
    subject = caller.client
    texts = [str(text) for text in params.getall("text")]
    if not texts:
        raise _error(400, "Value for 'text' not supported.")
    target = str(params.get("target_lang") or "").upper()
    if not target:
        raise _error(400, "Value for 'target_lang' not supported.")
    if target not in TARGETS:
        raise _error(400, f"Value for 'target_lang' not supported: {target}.")
    source = params.get("source_lang")
    source = str(source).upper() if source else None
    if source is not None and source != "DE":
        raise _error(400, f"Value for 'source_lang' not supported: {source}.")
    tag_handling = params.get("tag_handling")
    if tag_handling not in (None, "", "html"):
        raise _error(400, f"Value for 'tag_handling' not supported: {tag_handling}.")
    split = str(params.get("split_sentences") or "1").lower()
    if split not in ("0", "1", "nonewlines"):
        raise _error(400, f"Value for 'split_sentences' not supported: {split}.")
    glossary_id = requested_glossary_id(params)
    if glossary_id is not None and source is None:
        raise _error(400, "A glossary_id needs source_lang: set source_lang to DE.")
    glossary = await lane_glossary(services, glossary_id, caller)
    if (problem := too_many(services, texts)) is not None:
        raise _error(413, f"Request Entity Too Large: {problem}")
    characters = sum(len(text) for text in texts)
    usage = CharacterUsage(services.redis, services.keys)
    limit = services.settings.translate_monthly_char_limit
    if limit and await usage.count(subject) + characters > limit:
        raise _error(QUOTA_EXCEEDED, "Quota exceeded. The character limit has been reached.")
    if source is None:
        foreign = foreign_language(texts)
        if foreign is not None and not services.settings.translate_allow_non_german:
            raise _error(400, f"Detected source language {foreign.upper()} is not supported.")
    outcome = await lane_translate(
        services,
        texts,
        html=tag_handling == "html",
        split=split,
        glossary=glossary,
        cache_scope=caller.cache_scope,
    )
    await usage.add(subject, characters)
    return {
        "translations": [
            {
                "detected_source_language": _detected(text, source),
                "text": english,
                "billed_characters": len(text),
            }
            for text, english in zip(texts, outcome.translations, strict=True)
        ]
    }


def _detected(text: str, source: str | None) -> str:
    if source is not None:
        return source
    return (foreign_language([text]) or "de").upper()


@get("/languages")
async def languages(request: Request[Any, Any, Any], services: ServicesDep) -> list[dict[str, Any]]:
    """DeepL's ``GET /v2/languages``: ``type=source`` (German) or ``type=target`` (English)."""
    params = await _params(request)
    await _admit(request, services, params)
    kind = str(params.get("type") or "source").lower()
    if kind == "source":
        return [{"language": "DE", "name": "German"}]
    if kind == "target":
        return [
            {"language": "EN-GB", "name": "English (British)", "supports_formality": False},
            {"language": "EN-US", "name": "English (American)", "supports_formality": False},
        ]
    raise _error(400, f"Value for 'type' not supported: {kind}.")


@get("/usage")
async def usage(request: Request[Any, Any, Any], services: ServicesDep) -> dict[str, int]:
    """DeepL's ``GET /v2/usage``: characters translated this month for the key, and the limit
    when ``KURZ_TRANSLATE_MONTHLY_CHAR_LIMIT`` sets one."""
    params = await _params(request)
    subject = (await _admit(request, services, params)).client
    count = await CharacterUsage(services.redis, services.keys).count(subject)
    body = {"character_count": count}
    if services.settings.translate_monthly_char_limit:
        body["character_limit"] = services.settings.translate_monthly_char_limit
    return body


def router() -> Router:
    """The DeepL routes under ``/v2``, with their own error shape."""
    return Router(
        path="/v2",
        route_handlers=[translate, languages, usage],
        exception_handlers={Exception: deepl_error},
        include_in_schema=False,
    )
