"""What a browser meets: ``/`` is the editor page, it links the API docs, and both work with no
internet (the editor in a real browser: ``tests/browser/``)."""

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


async def test_the_root_is_the_editor_page_and_links_the_api_docs(
    client: AsyncTestClient[Litestar],
) -> None:
    """``GET /`` is the editor page (HTML, no redirect), with a link to the docs page."""
    response = await client.get("/", follow_redirects=False)
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "<title>Kurzgefasst: editor</title>" in response.text
    assert 'href="/schema/swagger"' in response.text
    assert 'id="article-form"' in response.text
    assert (await client.get("/schema/swagger")).status_code == 200


async def test_the_editor_page_loads_only_its_own_files_under_a_strict_policy(
    client: AsyncTestClient[Litestar],
) -> None:
    """Every file the editor names is on this server and served; its CSP allows only this
    server, no inline script and no inline style."""
    page = await client.get("/")
    references = _REFERENCE.findall(page.text)
    assert any("/static/editor/editor.js" in ref for ref in references), references
    for reference in references:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, f"{reference} is on another host"
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
    for module in ("api.js", "render.js", "glossary.js"):
        assert (await client.get(f"/static/editor/{module}")).status_code == 200
    assert "<script>" not in page.text.replace(" ", "")
    assert "style=" not in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy and "unsafe" not in policy


async def test_the_editor_script_never_writes_html(client: AsyncTestClient[Litestar]) -> None:
    """The page's scripts put text into the page only as text: no ``innerHTML`` and friends,
    so an article or a model output cannot inject markup."""
    for module in ("editor.js", "api.js", "render.js", "glossary.js"):
        script = (await client.get(f"/static/editor/{module}")).text
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script, f"{module} uses {sink}"


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
