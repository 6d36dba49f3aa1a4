"""Hostile JSON bodies get a client error on every endpoint, never a 500 with a traceback.

A few thousand ``[`` exhaust the parsers' recursion (msgspec under Litestar, ``json`` in the
LibreTranslate and DeepL dialects); each endpoint once answered that with a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from service.api.app import create_app
from service.settings import Settings
from tests.conftest import AppServer

pytestmark = pytest.mark.redis

DEPTH = 50_000


def deep_bodies() -> list[bytes]:
    """Nesting at the top and under a field each endpoint reads."""
    nested = "[" * DEPTH + "]" * DEPTH
    fields = ("text", "q", "metadata", "articles", "name", "entries")
    return [nested.encode(), *(f'{{"{name}": {nested}}}'.encode() for name in fields)]


async def test_deeply_nested_json_is_a_client_error_everywhere(
    make_settings: Callable[..., Settings], serve_app: AppServer
) -> None:
    """Every route that takes a body answers deep JSON with a 4xx in its own error shape."""
    app = create_app(make_settings())
    client = await serve_app(app)
    tried = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            path = re.sub(r"\{[^}]*\}", "0" * 64, route.path)
            for body in deep_bodies():
                response = await client.request(
                    method, path, content=body, headers={"content-type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (method, path, response.text[:300])
                assert "Traceback" not in response.text
            tried.append(f"{method} {route.path}")
    assert {
        "POST /summarize",
        "POST /summarize/batch",
        "POST /translate",
        "POST /v2/translate",
        "POST /v2/glossaries",
    } <= set(tried), tried
