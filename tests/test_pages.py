"""What a browser meets: ``/`` leads to the API docs, and the docs work with no internet."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.api.app import create_app
from service.api.openapi import STATIC_DIR
from service.settings import Settings

#: Every URL a page names: ``src``/``href`` attributes, in either quote style.
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A test client of the app (the pages touch no Redis)."""
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def test_the_root_sends_a_browser_to_the_api_docs(client: AsyncTestClient[Litestar]) -> None:
    """``GET /`` is a redirect to the docs page, not a 404 problem document."""
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/schema/swagger"
    followed = await client.get("/")
    assert followed.status_code == 200
    assert "text/html" in followed.headers["content-type"]


async def test_the_docs_page_loads_everything_from_this_server(
    client: AsyncTestClient[Litestar],
) -> None:
    """Every script, stylesheet and icon the docs page names is a path on this server, and
    each one is served; the page forbids other hosts and inline script by its CSP."""
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    references = _REFERENCE.findall(page.text)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in references), references
    for reference in references:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, f"{reference} is on another host"
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    assert "<script>" not in page.text.replace(" ", "")  # no inline script
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src" not in policy or "'unsafe-inline'" not in policy.split("script-src")[1]


async def test_the_docs_initializer_uses_this_servers_document_and_no_online_validator(
    client: AsyncTestClient[Litestar],
) -> None:
    """The docs read ``/schema/openapi.json`` from this server; the validator badge, which
    would call an outside service, is switched off."""
    script = (await client.get("/static/docs-init.js")).text
    assert 'url: "/schema/openapi.json"' in script
    assert "validatorUrl: null" in script
    assert (await client.get("/schema/openapi.json")).status_code == 200


def test_vendored_files_come_with_their_licences() -> None:
    """Each vendored package keeps its licence beside it, and the table names its version."""
    swagger = STATIC_DIR / "swagger-ui"
    assert "Apache License" in (swagger / "LICENSE").read_text()
    assert (swagger / "swagger-ui-bundle.js.LICENSE.txt").exists()
    table = (STATIC_DIR / "VENDORED.md").read_text()
    assert "swagger-ui-dist" in table and "5.35.0" in table
