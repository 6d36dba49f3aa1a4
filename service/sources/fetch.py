"""Fetching an article page by URL, through the SSRF guard, within a time and a byte budget.

The URL comes from a client, so the fetch is as dangerous as a webhook: it goes through the same
:class:`~service.webhooks.ssrf.GuardedTransport` (every address resolved, checked and
connected to as checked), with its own allow-list (``KURZ_FETCH_ALLOW_HOSTS``, not the
webhooks' one: a newsroom may let callbacks reach an internal receiver without letting anyone
read its intranet).

Redirects are followed here, not by httpx, so each hop's URL is checked again before anything
connects to it, and there are at most :data:`MAX_REDIRECTS`.  The whole fetch (every hop and the
body) has one deadline, so a server that drips a byte a second cannot hold a worker; the body is
streamed and reading stops at the byte cap, so an endless body costs at most the cap.  Only HTML
content types are read at all.

Each fetch gets its own client: cookies a site sets must not travel to the next job's site.
"""

from __future__ import annotations

import asyncio
import codecs
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx

from service.sources.errors import (
    FetchFailedError,
    NotHtmlError,
    PageTooLargeError,
    UrlRefusedError,
)
from service.webhooks.ssrf import (
    AllowList,
    CallbackRefusedError,
    GuardedTransport,
    Resolver,
    check_url,
    system_resolver,
)

__all__ = ["ArticleFetcher", "FetchedPage", "check_article_url"]

#: Redirect hops followed; the sixth is refused.
MAX_REDIRECTS: Final = 5
#: Seconds for the whole fetch: every hop, the headers and the body.
DEFAULT_TIMEOUT_S: Final = 15.0
#: Bytes of body read at most.  News pages with inline scripts and styles run to 1-3 MB.
DEFAULT_MAX_BYTES: Final = 5_000_000
HTML_CONTENT_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADERS: Final = {
    "Accept": "text/html,application/xhtml+xml;q=0.9",
    "Accept-Language": "de",
    # Uncompressed: the byte cap then counts what the server sends, and no compressed chunk can
    # expand a thousandfold in memory before the cap is checked.
    "Accept-Encoding": "identity",
    "User-Agent": "Kurzgefasst/0.1 (article summarizer)",
}

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True, slots=True)
class FetchedPage:
    """A fetched HTML page: where it ended up, and its text."""

    url: str
    status: int
    content_type: str
    html: str
    bytes_read: int
    redirects: int


def check_article_url(url: str, allow: AllowList) -> str:
    """The URL if a fetch may be attempted (no network); else :class:`UrlRefusedError`.

    For request time: scheme, credentials, host characters and literal addresses.  Host names are
    resolved and checked again when the fetch connects.
    """
    try:
        return str(check_url(url, allow).url)
    except CallbackRefusedError as error:
        raise UrlRefusedError(url, error.reason) from error


class ArticleFetcher:
    """Fetches article pages for the worker: guarded, redirect-checked, time- and size-capped."""

    def __init__(
        self,
        allow: AllowList,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
        transport: TransportFactory | None = None,
    ) -> None:
        self.allow = allow
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._transport = transport or (
            lambda: GuardedTransport(allow, resolver=resolver, verify=verify)
        )

    async def fetch(self, url: str) -> FetchedPage:
        """The HTML page at ``url``; raises the typed errors of :mod:`service.sources.errors`."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._fetch(url)
        except TimeoutError:
            reason = f"no complete answer within {self.timeout_s:g} s"
            raise FetchFailedError(url, reason) from None

    async def _fetch(self, url: str) -> FetchedPage:
        current = check_article_url(url, self.allow)
        timeout = httpx.Timeout(self.timeout_s)
        async with httpx.AsyncClient(
            transport=self._transport(), follow_redirects=False, timeout=timeout
        ) as client:
            for redirects in range(self.max_redirects + 1):
                request = client.build_request("GET", current, headers=_HEADERS)
                try:
                    response = await client.send(request, stream=True)
                except CallbackRefusedError as error:
                    raise UrlRefusedError(current, error.reason) from error
                except httpx.HTTPError as error:
                    reason = f"{type(error).__name__}: {error}".rstrip(": ")
                    raise FetchFailedError(current, reason) from error
                try:
                    if response.status_code in _REDIRECTS:
                        current = self._next_hop(current, response)
                        continue
                    return await self._read(current, response, redirects)
                except httpx.HTTPError as error:
                    reason = f"reading the page: {type(error).__name__}: {error}".rstrip(": ")
                    raise FetchFailedError(current, reason) from error
                finally:
                    await response.aclose()
        reason = f"more than {self.max_redirects} redirects"
        raise FetchFailedError(url, reason, upstream_status=response.status_code)

    def _next_hop(self, current: str, response: httpx.Response) -> str:
        """The redirect's target, checked like the first URL."""
        location = response.headers.get("location")
        if not location:
            reason = f"redirect {response.status_code} without a Location"
            raise FetchFailedError(current, reason, upstream_status=response.status_code)
        try:
            target = httpx.URL(current).join(location)
        except httpx.InvalidURL as error:
            raise UrlRefusedError(location, f"redirect to an invalid URL ({error})") from error
        return check_article_url(str(target), self.allow)

    async def _read(self, url: str, response: httpx.Response, redirects: int) -> FetchedPage:
        """Check status and type, then stream the body up to the cap and decode it."""
        status = response.status_code
        if not 200 <= status < 300:
            reason = f"the site answered {status} {response.reason_phrase}".rstrip()
            raise FetchFailedError(url, reason, upstream_status=status)
        content_type = response.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in HTML_CONTENT_TYPES:
            shown = media_type or "no content type"
            raise NotHtmlError(f"the site sent {shown}", content_type=media_type or None)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PageTooLargeError(int(declared), self.max_bytes)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > self.max_bytes:
                raise PageTooLargeError(len(body), self.max_bytes)
        html = _decode(bytes(body), response.charset_encoding)
        return FetchedPage(
            url=url,
            status=status,
            content_type=media_type,
            html=html,
            bytes_read=len(body),
            redirects=redirects,
        )


def _decode(body: bytes, declared: str | None) -> str:
    """The page's text: the header's charset, else a ``<meta>`` charset, else UTF-8."""
    for candidate in (declared, _meta_charset(body), "utf-8"):
        if not candidate:
            continue
        try:
            codec = codecs.lookup(candidate)
        except LookupError:
            continue
        return body.decode(codec.name, errors="replace")
    return body.decode("utf-8", errors="replace")


def _meta_charset(body: bytes) -> str | None:
    """The charset a ``<meta>`` tag names in the first 4 KiB, as browsers look for it."""
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii", errors="ignore") if match else None
