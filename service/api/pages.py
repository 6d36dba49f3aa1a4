"""What a browser gets: the editor page at ``/`` and the API docs, from this process alone.

``/`` is the editor page (``templates/editor.html`` with ``static/editor/``): editors paste an
article and read the result without curl.  It talks to the public HTTP API only, from the
browser, so nothing on the server exists for it but these routes.  The docs page and its
scripts come from the vendored files under ``static/`` (``static/VENDORED.md``).  Both pages are
served with a Content-Security-Policy that allows nothing from another host and no inline script.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.api.openapi import DOCS_CSP, DOCS_PATH, STATIC_DIR

#: The page templates (only the editor so far).
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: The editor page runs only its own script and stylesheet, and talks only to this server.
EDITOR_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

__all__ = ["EDITOR_CSP", "PageHeadersMiddleware", "home", "static_files", "template_config"]


@get("/", include_in_schema=False)
async def home() -> Template:
    """``GET /``: the editor page.  Its assets carry the version, so an upgrade is not served
    from a browser's cache of the old script."""
    return Template(
        template_name="editor.html",
        context={"version": __version__, "docs_path": DOCS_PATH},
        media_type="text/html",
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Jinja over ``templates/``, with autoescaping (the template is HTML)."""
    return TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine)


def static_files() -> Router:
    """``/static/...``: the vendored front-end files, without a Cache-Control header: the page
    names them with its version, so an upgrade is fetched anew."""
    return create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        include_in_schema=False,
        cache_control=None,
        send_as_attachment=False,
    )


class PageHeadersMiddleware(ASGIMiddleware):
    """Adds the Content-Security-Policy (and friends) to the pages a browser renders."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, pages: tuple[str, ...] = (DOCS_PATH,), csp: str = DOCS_CSP) -> None:
        self.pages = pages
        self.csp = csp

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope.get("path") not in self.pages:
            await next_app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Content-Security-Policy"] = self.csp
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
            await send(message)

        await next_app(scope, receive, send_with_headers)
