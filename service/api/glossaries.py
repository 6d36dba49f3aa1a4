"""DeepL's v2 glossary endpoints, so DeepL-literate integrators and the official client work.

``POST /v2/glossaries`` takes DeepL's fields as JSON (what the ``deepl`` client sends) or as a
form (what DeepL's curl examples send); ``GET`` lists, describes and exports (TSV) them,
``DELETE`` removes one, ``GET /v2/glossary-language-pairs`` names the one pair served.  Each
glossary belongs to the API key that made it (by the key's digest; on an open API everyone is
one ``public`` owner), and another key's answers 404 exactly as a missing one does.  The server
default glossary (id ``default``) can be read by everyone and deleted by no one.

Errors here are DeepL's ``{"message": "..."}`` with DeepL's statuses (a wrong key is 403, as
DeepL answers it, so the client raises ``AuthorizationException``); the native endpoints keep
problem documents.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from service.api.auth import READ_BUCKET, authenticate, caller_of
from service.api.deps import ServicesDep
from service.api.glossary_use import owner_of
from service.api.openapi import SECURITY
from service.api.problems import handle_exception, problem_for
from service.errors import ApiProblem, GlossaryError, GlossaryNotFoundError
from service.text.glossary import SOURCE_LANG, TARGET_LANG, Glossary, GlossaryInfo
from service.text.glossary_files import DEFAULT_GLOSSARY_ID

__all__ = ["router"]

TSV_MEDIA_TYPE = "text/tab-separated-values"
#: Our statuses that DeepL spells differently: a missing or wrong key is DeepL's 403, and a
#: request it cannot use is its 400.
_DEEPL_STATUS = {401: 403, 422: 400}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_READ = {"rate_bucket": READ_BUCKET}


class DeepLError(msgspec.Struct):
    """DeepL's error body."""

    message: str


def deepl_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the DeepL-shaped errors an endpoint can answer with."""
    return {
        status: ResponseSpec(
            data_container=DeepLError,
            description=_ERROR_DOCS[status],
            generate_examples=False,
        )
        for status in statuses
    }


_ERROR_DOCS = {
    400: "Invalid glossary: entries (line and reason), name, language pair, or over a limit",
    403: "Missing or invalid API key, or the server's default glossary cannot be deleted",
    404: "No glossary with this id belongs to the caller",
    413: "Body over the byte limit",
    415: "The body is neither JSON nor a form",
    429: "Rate limited; see Retry-After",
    503: "Redis unreachable; see Retry-After",
}
_READS = deepl_responses(403, 404, 429, 503)


class GlossaryList(msgspec.Struct):
    glossaries: list[GlossaryInfo]


class LanguagePair(msgspec.Struct):
    source_lang: str
    target_lang: str


class LanguagePairs(msgspec.Struct):
    supported_languages: list[LanguagePair]


def deepl_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """Any error on these endpoints as DeepL writes it: ``{"message": ...}``."""
    problem = problem_for(exc)
    if problem.status >= 500:
        handle_exception(request, exc)  # logs the traceback as the native endpoints do
    headers = {k: v for k, v in problem.headers.items() if k.lower() != "www-authenticate"}
    return Response(
        {"message": problem.detail},
        status_code=_DEEPL_STATUS.get(problem.status, problem.status),
        headers=headers,
    )


async def _fields(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The request's fields, from a JSON object or a form."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        body = await request.json()
        if not isinstance(body, dict):
            raise GlossaryError("the request body must be a JSON object")
        return body
    if media_type in _FORM_TYPES:
        form = await request.form()
        return {key: form.get(key) for key in form}
    raise ApiProblem(
        415,
        "unsupported_media_type",
        f"send the glossary as application/json or a form, not {media_type or 'nothing'}",
    )


def _text(fields: dict[str, Any], name: str, default: str | None = None) -> str:
    value = fields.get(name, default)
    if not isinstance(value, str):
        raise GlossaryError(f"missing or invalid argument: {name}")
    return value


@post(
    "/glossaries",
    status_code=201,
    responses=deepl_responses(400, 403, 413, 415, 429, 503),
    summary="Create a glossary (DeepL v2)",
    tags=["glossaries"],
)
async def create_glossary(request: Request[Any, Any, Any], services: ServicesDep) -> GlossaryInfo:
    """``POST /v2/glossaries``: validated as DeepL validates; 201 with its metadata."""
    fields = await _fields(request)
    glossary = Glossary.create(
        name=_text(fields, "name"),
        source_lang=_text(fields, "source_lang"),
        target_lang=_text(fields, "target_lang"),
        entries=_text(fields, "entries"),
        entries_format=_text(fields, "entries_format", "tsv"),
    )
    return await services.glossaries.create(owner_of(caller_of(request)), glossary)


@get(
    "/glossaries",
    opt=_READ,
    responses=deepl_responses(403, 429, 503),
    summary="List your glossaries (DeepL v2)",
    tags=["glossaries"],
)
async def list_glossaries(request: Request[Any, Any, Any], services: ServicesDep) -> GlossaryList:
    """``GET /v2/glossaries``: the caller's glossaries, oldest first."""
    return GlossaryList(await services.glossaries.list_by_owner(owner_of(caller_of(request))))


@get(
    "/glossaries/{glossary_id:str}",
    opt=_READ,
    responses=_READS,
    summary="One glossary",
    tags=["glossaries"],
)
async def get_glossary(
    request: Request[Any, Any, Any], services: ServicesDep, glossary_id: FromPath[str]
) -> GlossaryInfo:
    """``GET /v2/glossaries/{id}``."""
    if glossary_id == DEFAULT_GLOSSARY_ID:
        return _default(services.default_glossary).info()
    return await services.glossaries.info(owner_of(caller_of(request)), glossary_id)


@get(
    "/glossaries/{glossary_id:str}/entries",
    opt=_READ,
    media_type=TSV_MEDIA_TYPE,
    responses=_READS,
    summary="A glossary's entries as TSV",
    tags=["glossaries"],
)
async def get_entries(
    request: Request[Any, Any, Any], services: ServicesDep, glossary_id: FromPath[str]
) -> str:
    """``GET /v2/glossaries/{id}/entries``: ``source<TAB>target`` lines."""
    if glossary_id == DEFAULT_GLOSSARY_ID:
        return _default(services.default_glossary).to_tsv()
    return await services.glossaries.entries(owner_of(caller_of(request)), glossary_id)


@delete(
    "/glossaries/{glossary_id:str}",
    responses=deepl_responses(403, 404, 429, 503),
    summary="Delete a glossary",
    tags=["glossaries"],
)
async def delete_glossary(
    request: Request[Any, Any, Any], services: ServicesDep, glossary_id: FromPath[str]
) -> None:
    """``DELETE /v2/glossaries/{id}``: 204."""
    if glossary_id == DEFAULT_GLOSSARY_ID:
        raise ApiProblem(403, "default_glossary", "the server's default glossary is read-only")
    await services.glossaries.delete(owner_of(caller_of(request)), glossary_id)


@get(
    "/glossary-language-pairs",
    opt=_READ,
    responses=deepl_responses(403, 429, 503),
    summary="Glossary languages",
    tags=["glossaries"],
)
async def language_pairs() -> LanguagePairs:
    """``GET /v2/glossary-language-pairs``: German to English, the one pair translated here."""
    return LanguagePairs([LanguagePair(SOURCE_LANG.lower(), TARGET_LANG.lower())])


def _default(glossary: Glossary | None) -> Glossary:
    if glossary is None:
        raise GlossaryNotFoundError(DEFAULT_GLOSSARY_ID)
    return glossary


def router() -> Router:
    """The glossary endpoints under ``/v2``, behind the API key, with DeepL's error shape."""
    return Router(
        path="/v2",
        route_handlers=[
            create_glossary,
            list_glossaries,
            get_glossary,
            get_entries,
            delete_glossary,
            language_pairs,
        ],
        guards=[authenticate],
        security=SECURITY,
        exception_handlers={Exception: deepl_error},
    )
