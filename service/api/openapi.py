"""The OpenAPI document: what Litestar infers, plus request examples and the batch schema."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIMediaType,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType

from service import __version__
from service.api.articles import MAX_BATCH
from service.settings import ROOT

__all__ = [
    "DOCS_CSP",
    "DOCS_PATH",
    "SECURITY",
    "STATIC_DIR",
    "OfflineSwaggerPlugin",
    "document",
    "openapi_config",
    "seed_example",
]

SEED_EXAMPLE_FILE = ROOT / "seeds" / "000_1e1de29cccfa5500.txt"
SEED_EXAMPLE_CHARS = 600
#: Vendored front-end files (see ``static/VENDORED.md``), served at ``/static``.
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Where the interactive API docs are.
DOCS_PATH = "/schema/swagger"
#: The docs page loads only from this server, and runs no inline script.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
#: The protected endpoints accept either scheme.
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


FAVICON = "<link rel='icon' type='image/png' href='/static/swagger-ui/favicon-32x32.png'>"


class OfflineSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI from the vendored files: a newsroom network without internet still gets a
    working docs page (Litestar's default loads its scripts from a CDN, and the page stays
    blank offline)."""

    def __init__(self) -> None:
        super().__init__(
            path="/swagger",
            js_url="/static/swagger-ui/swagger-ui-bundle.js",
            css_url="/static/swagger-ui/swagger-ui.css",
            standalone_preset_js_url="/static/swagger-ui/swagger-ui-standalone-preset.js",
            favicon=FAVICON,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The page: the vendored stylesheet and scripts, then ``docs-init.js`` starts the UI."""
        title = str(openapi_schema["info"]["title"])
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: API docs</title>
{self.favicon}
<link rel="stylesheet" href="{self.css_url}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{self.js_url}"></script>
<script src="{self.standalone_preset_js_url}"></script>
<script src="/static/docs-init.js"></script>
</body>
</html>
"""
        return page.encode()


def openapi_config() -> OpenAPIConfig:
    """``GET /schema`` is the JSON document itself; ``/schema/swagger`` renders it."""
    return OpenAPIConfig(
        title="Kurzgefasst",
        version=__version__,
        description=(
            "German news in, English translation and summary out.  Submit an article, follow "
            "its job, read the result.  Errors are RFC 9457 problem documents with a stable "
            "`code`."
        ),
        path="/schema",
        render_plugins=[
            JsonRenderPlugin(path=["/", "/openapi.json"]),
            OfflineSwaggerPlugin(),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer"),
                "apiKey": SecurityScheme(
                    type="apiKey", name="X-API-Key", security_scheme_in="header"
                ),
            }
        ),
        create_examples=False,
    )


def seed_example(path: Path = SEED_EXAMPLE_FILE) -> dict[str, Any] | None:
    """A request body from the first seed article, cut at a paragraph end; None if it is missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    head = text[:SEED_EXAMPLE_CHARS]
    cut = head.rfind("\n\n")
    body = (head[:cut] if cut > 0 else head).strip()
    return {"text": body, "style": "standard", "external_id": "cms-4711"} if body else None


def document(schema: OpenAPI, example: dict[str, Any] | None) -> None:
    """Add what Litestar cannot infer: request examples, and the batch's article schema.

    The batch body is typed loosely (each article is validated on its own), so its items are
    pointed at the ``SummarizeRequest`` schema here.
    """
    _overlapping_unions_as_any_of(schema)
    paths = schema.paths or {}
    single = paths["/summarize"].post
    batch = paths["/summarize/batch"].post
    if single is None or batch is None:
        return
    single_media = _json_body(single.request_body)
    batch_media = _json_body(batch.request_body)
    if batch_media is not None:
        batch_media.schema = Schema(
            type=OpenAPIType.OBJECT,
            required=["articles"],
            properties={
                "articles": Schema(
                    type=OpenAPIType.ARRAY,
                    items=Reference(ref="#/components/schemas/SummarizeRequest"),
                    min_items=1,
                    max_items=MAX_BATCH,
                )
            },
        )
    if example is None:
        return
    if single_media is not None:
        single_media.examples = {"seed": Example(summary="A German news article", value=example)}
    if batch_media is not None:
        batch_media.examples = {
            "seed": Example(summary="Two articles", value={"articles": [example, example]})
        }


def _overlapping_unions_as_any_of(node: Any, seen: set[int] | None = None) -> None:
    """Turn each ``oneOf`` with both an integer and a number branch into ``anyOf``.

    Litestar writes every union as ``oneOf``, but ``int | float`` (metadata values) overlaps: 2
    is an integer and a number, matches two branches and so fails ``oneOf``.  ``anyOf`` (at least
    one branch) is what the Python type means.
    """
    seen = set() if seen is None else seen
    if id(node) in seen or isinstance(node, str | bytes | int | float | bool | None):
        return
    seen.add(id(node))
    if isinstance(node, Schema) and node.one_of:
        types = {branch.type for branch in node.one_of if isinstance(branch, Schema)}
        if OpenAPIType.INTEGER in types and OpenAPIType.NUMBER in types:
            node.any_of, node.one_of = node.one_of, None
    if isinstance(node, dict):
        children: Iterable[Any] = node.values()
    elif isinstance(node, list | tuple):
        children = node
    elif dataclasses.is_dataclass(node):
        children = (getattr(node, item.name) for item in dataclasses.fields(node))
    else:
        return
    for child in children:
        _overlapping_unions_as_any_of(child, seen)


def _json_body(body: Any) -> OpenAPIMediaType | None:
    content = getattr(body, "content", None) or {}
    media = content.get("application/json")
    return media if isinstance(media, OpenAPIMediaType) else None
