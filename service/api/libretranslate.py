"""LibreTranslate's API, so its clients (CMS plugins, browser extensions, ``libretranslatepy``)
work by changing one URL: ``POST /translate``, ``POST /detect``, ``GET /languages`` and
``GET /frontend/settings``.

Parameters come as JSON, form, multipart or query string, as LibreTranslate takes them.  Errors
are LibreTranslate's: ``{"error": "..."}`` with its statuses and wording (400 for a missing
parameter, an unsupported language or format, a text over the limit, a missing key; 403 for a
wrong key; 429 "Slowdown: ..."; 500 "Cannot translate text: ...").  Every answer carries
LibreTranslate's CORS headers, and preflights are answered, so browser clients work too.

One extension: ``glossary_id`` on ``/translate`` names one of the key's glossaries (made with
DeepL's ``/v2/glossaries``) or the server's default (``default``); another key's or a missing
one answers 404 ``{"error": ...}``.  Without it no glossary is applied (LibreTranslate's clients
know of none), and ``source`` may stay ``auto``: only German is translated here anyway.
"""

from __future__ import annotations

from typing import Any, cast

from litestar import Request, Response, Router, get, post
from litestar.types import ASGIApp, Receive, Scope, Send

from service.api.deps import ServicesDep
from service.api.keys import Caller
from service.api.translate_lane import (
    Params,
    dialect_error,
    foreign_language,
    identify,
    lane_glossary,
    lane_translate,
    read_params,
    requested_glossary_id,
)
from service.errors import ApiProblem
from service.text.language import rank_languages

__all__ = ["CORS_HEADERS", "LibreCorsMiddleware", "router"]

NAMES = {"de": "German", "en": "English"}
#: LibreTranslate's CORS answer, on every response of its routes.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Authorization",
    "Access-Control-Allow-Methods": "GET, POST",
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Max-Age": str(60 * 60 * 24 * 20),
}
PATHS = frozenset({"/translate", "/detect", "/languages", "/frontend/settings"})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiProblem:
    return ApiProblem(status, "libretranslate", message, headers=headers)


def libre_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Any failure on these routes, in LibreTranslate's ``{"error": ...}`` shape."""
    return dialect_error(
        request, exc, field="error", internal="Cannot translate text: the translation failed"
    )


async def _params(request: Request[Any, Any, Any]) -> Params:
    try:
        return await read_params(request)
    except ValueError:
        raise _error(400, "Invalid JSON format") from None


async def _admit(request: Request[Any, Any, Any], services: Any, params: Params) -> Caller:
    """LibreTranslate's access check: a wrong key 403, a missing one 400, then the rate; the
    caller (whose glossaries a request may name)."""
    key = params.get("api_key")
    key = key if isinstance(key, str) and key else None
    if services.api_keys.enabled:
        try:
            caller = await identify(services, request, key)
        except ApiProblem as problem:
            if problem.status == 429:
                raise _error(
                    429, "Slowdown: too many wrong API keys", dict(problem.headers)
                ) from None
            if key is None:
                raise _error(400, "Please contact the server operator to get an API key") from None
            raise _error(403, "Invalid API key") from None
    else:
        caller = await identify(services, request, None)
    decision = await services.limiter.hit(caller.rate_subject) if services.limiter.enabled else None
    if decision is not None and not decision.allowed:
        raise _error(
            429,
            f"Slowdown: {decision.limit} per 1 minute",
            {"Retry-After": str(decision.reset_after_s)},
        )
    return caller


def _required(params: Params, name: str) -> Any:
    value = params.get(name)
    if value in (None, "", []):
        raise _error(400, f"Invalid request: missing {name} parameter")
    return value


@post("/translate", status_code=200)
async def translate(request: Request[Any, Any, Any], services: ServicesDep) -> dict[str, Any]:
    """LibreTranslate's ``POST /translate``: German to English, ``q`` a text or a list."""
    params = await _params(request)
    caller = await _admit(request, services, params)
    q = _required(params, "q")
    source = str(_required(params, "source")).lower()
    target = str(_required(params, "target")).lower()
    try:
        alternatives = max(0, int(params.get("alternatives") or 0))
    except (TypeError, ValueError):
        raise _error(400, "Invalid request: alternatives parameter is not a number") from None
    text_format = str(params.get("format") or "text").lower()
    batch = isinstance(q, list)
    texts = [str(item) for item in q] if batch else [str(q)]
    size = sum(len(text) for text in texts)
    limit = services.settings.translate_char_limit
    if size > limit:
        raise _error(400, f"Invalid request: request ({size}) exceeds text limit ({limit})")
    if source not in ("de", "auto"):
        raise _error(400, f"{source} is not supported")
    if target != "en":
        raise _error(400, f"{target} is not supported")
    if text_format not in ("text", "html"):
        raise _error(400, f"{text_format} format is not supported")
    try:
        glossary_id = requested_glossary_id(params)
    except ApiProblem:
        raise _error(400, "Invalid request: glossary_id is not a string") from None
    glossary = await lane_glossary(services, glossary_id, caller)
    detected: list[dict[str, Any]] = []
    if source == "auto":
        for text in texts:
            ranked = rank_languages(text, 1) or [("de", 0.0)]
            code, confidence = ranked[0]
            detected.append({"confidence": round(confidence * 100, 1), "language": code})
        foreign = foreign_language(texts)
        if foreign is not None and not services.settings.translate_allow_non_german:
            raise _error(400, f"{foreign} is not supported")
    outcome = await lane_translate(
        services,
        texts,
        html=text_format == "html",
        alternatives=alternatives,
        glossary=glossary,
        cache_scope=caller.cache_scope,
    )
    body: dict[str, Any] = {
        "translatedText": outcome.translations if batch else outcome.translations[0]
    }
    if detected:
        body["detectedLanguage"] = detected if batch else detected[0]
    if alternatives:
        readings = outcome.alternatives or [[] for _ in texts]
        body["alternatives"] = readings if batch else readings[0]
    return body


@post("/detect", status_code=200)
async def detect(request: Request[Any, Any, Any], services: ServicesDep) -> list[dict[str, Any]]:
    """LibreTranslate's ``POST /detect``: the likeliest languages, confidence in percent."""
    params = await _params(request)
    await _admit(request, services, params)
    q = _required(params, "q")
    text = " ".join(str(item) for item in q) if isinstance(q, list) else str(q)
    return [
        {"confidence": round(confidence * 100, 1), "language": code}
        for code, confidence in rank_languages(text, 3)
    ]


@get("/languages")
async def languages() -> list[dict[str, Any]]:
    """LibreTranslate's ``GET /languages``: German, translated to English."""
    return [
        {"code": "de", "name": "German", "targets": ["en"]},
        {"code": "en", "name": "English", "targets": []},
    ]


@get("/frontend/settings")
async def frontend_settings(services: ServicesDep) -> dict[str, Any]:
    """LibreTranslate's ``GET /frontend/settings``: what its web front ends read first."""
    keys = services.api_keys.enabled
    return {
        "charLimit": services.settings.translate_char_limit,
        "frontendTimeout": 500,
        "apiKeys": keys,
        "keyRequired": keys,
        "suggestions": False,
        "filesTranslation": False,
        "supportedFilesFormat": [],
        "language": {
            "source": {"code": "de", "name": NAMES["de"]},
            "target": {"code": "en", "name": NAMES["en"]},
        },
    }


def router() -> Router:
    """The LibreTranslate routes, with their own error shape."""
    return Router(
        path="/",
        route_handlers=[translate, detect, languages, frontend_settings],
        exception_handlers={Exception: libre_error},
        include_in_schema=False,
    )


class LibreCorsMiddleware:
    """LibreTranslate's CORS: its headers on every answer of its routes, preflights answered
    with 200 (the rest of the API keeps its own same-origin policy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: dict[str, Any] = cast("dict[str, Any]", scope)
        if raw["type"] != "http" or raw["path"] not in PATHS:
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]
        if raw["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 200, "headers": extra})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(cast("Any", message))

        await self.app(scope, receive, send_with_cors)
