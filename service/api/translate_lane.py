"""What the LibreTranslate and DeepL dialects share: parameters from any body, the caller's
key, the translate lane they wait on, and how a failure is answered.

Both dialects' clients send parameters every way HTTP allows: JSON bodies, form-encoded and
multipart bodies, query strings, and (DeepL's official client, for ``/v2/languages``) a form
body on a GET.  :func:`read_params` folds them into one lookup, body first.

``glossary_id`` (DeepL's parameter; an extension on LibreTranslate's ``/translate``) is resolved
by :func:`lane_glossary`.  Unlike ``/summarize``, the translate endpoints apply no glossary
unless one is named: a DeepL client expects none unless it asks, and a LibreTranslate client
knows of none.  The server's default is used when asked for by its id, ``default``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from litestar import Request, Response

from service.api.auth import identify_limited
from service.api.glossary_use import GlossaryChoice, choose_glossary, owner_of
from service.api.keys import PUBLIC_CLIENT, Caller
from service.api.problems import problem_for
from service.api.request import decode_json_object
from service.api.services import Services
from service.api.submission import current_models
from service.errors import ApiProblem
from service.queue import LaneGlossary, LaneOutcome, TranslatePayload, TranslateQueue
from service.text.language import MIN_LETTERS, detect_language

__all__ = [
    "Params",
    "dialect_error",
    "foreign_language",
    "identify",
    "lane_glossary",
    "lane_translate",
    "read_params",
    "requested_glossary_id",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Params:
    """A request's parameters: each name's values, body before query string."""

    values: dict[str, list[Any]]

    def get(self, name: str) -> Any:
        """The first value (a JSON list stays a list); None when absent."""
        found = self.values.get(name)
        return found[0] if found else None

    def getall(self, name: str) -> list[Any]:
        """Every value: repeated form or query fields, or a JSON list's items."""
        found = self.values.get(name, [])
        if len(found) == 1 and isinstance(found[0], list):
            return list(found[0])
        return list(found)


async def read_params(request: Request[Any, Any, Any]) -> Params:
    """Fold the query string and the body (JSON, form or multipart) into :class:`Params`.

    A body that claims to be JSON and is not raises ``ValueError`` (the dialects answer 400).
    """
    values: dict[str, list[Any]] = {}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        raw = await request.body()
        if raw.strip():
            body = decode_json_object(raw)
            if not isinstance(body, dict):
                raise ValueError("the JSON body is not an object")
            for name, value in body.items():
                values[str(name)] = [value]
    elif media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        for name in form:
            values[name] = [v for v in form.getall(name) if isinstance(v, str)]
    for name in request.query_params:
        values.setdefault(name, list(request.query_params.getall(name)))
    return Params(values)


async def identify(services: Services, request: Request[Any, Any, Any], key: str | None) -> Caller:
    """The caller behind ``key``: ``ApiProblem`` 401 when keys are configured and it is missing
    or wrong, 429 after too many such from one address (each dialect words and numbers these
    its own way)."""
    peer = request.client.host if request.client else None
    headers = {"x-api-key": key} if key else {}
    caller = await identify_limited(services, headers, peer)
    return caller if services.api_keys.enabled else Caller(PUBLIC_CLIENT, caller.rate_subject)


def requested_glossary_id(params: Params) -> str | None:
    """The ``glossary_id`` a request names; None when it names none (absent, empty, or JSON
    ``null``).  Anything but a string is a 400 (each dialect words it its own way)."""
    value = params.get("glossary_id")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiProblem(400, "invalid_glossary_id", "Value for 'glossary_id' not supported.")
    return value


async def lane_glossary(
    services: Services, glossary_id: str | None, caller: Caller
) -> GlossaryChoice | None:
    """The glossary a translate request names: one of the caller's, or the server's default
    by its id; ``GlossaryNotFoundError`` (404) for another caller's or a missing one."""
    if glossary_id is None:
        return None
    return await choose_glossary(services, glossary_id, owner_of(caller))


async def lane_translate(
    services: Services,
    texts: Sequence[str],
    *,
    html: bool = False,
    alternatives: int = 0,
    split: str = "1",
    glossary: GlossaryChoice | None = None,
    cache_scope: str | None = None,
) -> LaneOutcome:
    """Translate ``texts`` on the lane and wait (``KURZ_TRANSLATE_WAIT_S``).

    The job key digests the translation model and the request, glossary id and digest
    included, so identical requests share one job, the same texts with another glossary (or
    none) are another, and a model upgrade never answers from an old one.  A desk that keeps
    its caches to itself (``cache_scope``) has jobs and cached sentences of its own.
    """
    reference = (
        LaneGlossary(glossary_id=glossary.glossary_id, digest=glossary.digest, owner=glossary.owner)
        if glossary is not None
        else None
    )
    payload = TranslatePayload(
        texts=list(texts),
        html=html,
        alternatives=alternatives,
        split=split,
        glossary=reference,
        cache_scope=cache_scope,
    )
    models = await current_models(services)
    material = msgspec.json.encode([models["translation"], payload])
    key = "translate:" + hashlib.sha256(material).hexdigest()
    await services.storage.check()
    queue = TranslateQueue(services.redis, services.keys, retries=services.settings.job_retries)
    return await queue.translate(key, payload, services.settings.translate_wait_s)


def too_many(services: Services, texts: Sequence[str]) -> ApiProblem | None:
    """A 413 problem when the texts carry more characters than ``KURZ_TRANSLATE_CHAR_LIMIT``."""
    size = sum(len(text) for text in texts)
    limit = services.settings.translate_char_limit
    if size <= limit:
        return None
    return ApiProblem(413, "text_too_long", f"{size} characters, over the limit of {limit}")


def foreign_language(texts: Sequence[str]) -> str | None:
    """The language of ``texts`` when it is clearly not German, else None.

    Texts with fewer than ``MIN_LETTERS`` letters in all (``"Es regnet."``) are too short to
    judge (py3langid calls that one Latin-something), so they pass as German: refusing a short
    German text would be worse than translating a short foreign one.
    """
    if sum(ch.isalpha() for text in texts for ch in text) < MIN_LETTERS:
        return None
    language = detect_language(texts).language
    return None if language in ("de", "und") else language


def dialect_error(
    request: Request[Any, Any, Any], exc: Exception, *, field: str, internal: str
) -> Response[dict[str, Any]]:
    """Any failure on a dialect's routes as ``{field: message}``, with the problem's status and
    headers; an internal failure (a 5xx other than 503) is logged and answered with ``internal``
    instead of its detail."""
    problem = problem_for(exc)
    message = problem.detail
    if problem.status >= 500 and problem.status != 503:
        log.error("translation failed", path=request.url.path, error=repr(exc))
        message = internal
    return Response({field: message}, status_code=problem.status, headers=dict(problem.headers))
