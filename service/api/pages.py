"""What a browser gets: ``/`` and the API docs, from files served by this process alone.

``/`` sends a browser to the interactive API docs.  The docs page and its scripts come from the
vendored files under ``static/`` (``static/VENDORED.md``), and the page is served with a
Content-Security-Policy that allows nothing from another host and no inline script.
"""

from __future__ import annotations

from litestar import Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.api.openapi import DOCS_CSP, DOCS_PATH, STATIC_DIR

__all__ = ["PageHeadersMiddleware", "home", "static_files"]


@get("/", include_in_schema=False)
async def home() -> Redirect:
    """``GET /``: a browser lands on the API docs."""
    return Redirect(path=DOCS_PATH, status_code=302)


def static_files() -> Router:
    """``/static/...``: the vendored front-end files, cached by browsers for a day."""
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
