"""Fetching article pages from a real loopback HTTP server that the fetch allow-list admits."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from service.sources.errors import (
    FetchFailedError,
    NotHtmlError,
    PageTooLargeError,
    UrlRefusedError,
)
from service.sources.fetch import ArticleFetcher, check_article_url
from service.webhooks.ssrf import AllowList, IPAddress

GOOD_PAGE = (
    "<!DOCTYPE html><html><head><title>Wahl</title></head><body><article>"
    "<p>Die Wahl in Köln brachte ein überraschendes Ergebnis für alle Beteiligten.</p>"
    "</article></body></html>"
)


class ArticleSite(BaseHTTPRequestHandler):
    """Pages that behave well and pages that misbehave in every way a fetch must survive."""

    seen: ClassVar[list[tuple[str, str | None]]] = []  # (path, Accept-Language) of every request

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test output stays readable."""

    def _send(self, status: int, content_type: str | None, body: bytes = b"") -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        """Route by path; the slow and endless ones stream until the client hangs up."""
        ArticleSite.seen.append((self.path, self.headers.get("Accept-Language")))
        path = self.path
        if path == "/good":
            self._send(200, "text/html; charset=utf-8", GOOD_PAGE.encode())
        elif path == "/latin1":
            page = '<html><head><meta charset="iso-8859-1"></head><body><p>Grüße aus Köln</p>'
            self._send(200, "text/html", page.encode("latin-1"))
        elif path.startswith("/hop/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/hop/{left - 1}" if left > 1 else "/good")
        elif path == "/to-metadata":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/to-private":
            self._redirect("http://10.20.30.40/intranet")
        elif path == "/to-localhost":
            self._redirect(f"http://localhost:{self.server.server_address[1]}/good")
        elif path == "/to-file":
            self._redirect("file:///etc/passwd")
        elif path in ("/drip", "/endless"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self._stream(b"<p>" if path == "/drip" else b"<p>" + b"Wort " * 13_000, path)
        elif path == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", "50000000")
            self.end_headers()
        elif path == "/pdf":
            self._send(200, "application/pdf", b"%PDF-1.7")
        elif path == "/untyped":
            self._send(200, None, GOOD_PAGE.encode())
        elif path == "/unavailable":
            self._send(503, "text/html", b"<p>Wartung</p>")
        else:
            self._send(404, "text/html", b"<p>Nicht gefunden</p>")

    def _stream(self, chunk: bytes, path: str) -> None:
        """Write ``chunk`` forever (a byte every half second for the drip) until the peer goes."""
        try:
            while True:
                self.wfile.write(chunk)
                self.wfile.flush()
                if path == "/drip":
                    time.sleep(0.5)
        except OSError:
            return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ArticleSite)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fetcher() -> ArticleFetcher:
    return ArticleFetcher(AllowList(["127.0.0.1"]), timeout_s=2.0, max_bytes=1_000_000)


async def test_a_good_page_is_fetched_in_german(site: str, fetcher: ArticleFetcher) -> None:
    """An allowed HTML page comes back decoded, and the request asked for German."""
    ArticleSite.seen.clear()
    page = await fetcher.fetch(f"{site}/good")
    assert page.html == GOOD_PAGE
    assert page.status == 200 and page.content_type == "text/html" and page.redirects == 0
    assert ArticleSite.seen == [("/good", "de")]


async def test_the_meta_charset_decodes_a_page_without_one_in_the_header(
    site: str, fetcher: ArticleFetcher
) -> None:
    """A Latin-1 page that names its charset only in <meta> reads as Latin-1, not as UTF-8."""
    page = await fetcher.fetch(f"{site}/latin1")
    assert "Grüße aus Köln" in page.html


async def test_five_redirects_are_followed_and_a_sixth_is_refused(
    site: str, fetcher: ArticleFetcher
) -> None:
    """Redirects are followed hop by hop up to five; a longer chain fails with its status."""
    page = await fetcher.fetch(f"{site}/hop/5")
    assert page.redirects == 5 and page.url.endswith("/good") and page.html == GOOD_PAGE
    with pytest.raises(FetchFailedError) as caught:
        await fetcher.fetch(f"{site}/hop/6")
    assert "more than 5 redirects" in str(caught.value)
    assert caught.value.upstream_status == 302


@pytest.mark.parametrize("path", ["/to-metadata", "/to-private", "/to-localhost", "/to-file"])
async def test_a_redirect_to_a_forbidden_address_is_refused(
    site: str, fetcher: ArticleFetcher, path: str
) -> None:
    """Each hop is checked again: a redirect to metadata, private, localhost or file is refused."""
    with pytest.raises(UrlRefusedError) as caught:
        await fetcher.fetch(f"{site}{path}")
    assert caught.value.code == "url_refused"


async def test_a_slow_drip_is_cut_at_the_deadline(site: str, fetcher: ArticleFetcher) -> None:
    """A server sending a byte every half second fails the fetch at its 2 s deadline."""
    started = time.monotonic()
    with pytest.raises(FetchFailedError) as caught:
        await fetcher.fetch(f"{site}/drip")
    assert 1.9 < time.monotonic() - started < 4.0
    assert caught.value.upstream_status is None and caught.value.retryable


async def test_an_endless_body_stops_at_the_byte_cap(site: str, fetcher: ArticleFetcher) -> None:
    """An endless body is read only to just over the cap; a declared huge one not at all."""
    with pytest.raises(PageTooLargeError) as endless:
        await fetcher.fetch(f"{site}/endless")
    assert endless.value.limit == 1_000_000
    assert 1_000_000 < endless.value.size < 1_200_000
    with pytest.raises(PageTooLargeError) as declared:
        await fetcher.fetch(f"{site}/declared-huge")
    assert declared.value.size == 50_000_000


@pytest.mark.parametrize("path", ["/pdf", "/untyped"])
async def test_a_wrong_content_type_is_not_html(
    site: str, fetcher: ArticleFetcher, path: str
) -> None:
    """A PDF, or a response without a content type, is refused as not HTML."""
    with pytest.raises(NotHtmlError) as caught:
        await fetcher.fetch(f"{site}{path}")
    assert caught.value.code == "not_html"


async def test_upstream_errors_keep_their_status(site: str, fetcher: ArticleFetcher) -> None:
    """A 404 fails for good; a 503 fails as retryable; both keep the site's status."""
    with pytest.raises(FetchFailedError) as missing:
        await fetcher.fetch(f"{site}/nowhere")
    assert missing.value.upstream_status == 404 and not missing.value.retryable
    with pytest.raises(FetchFailedError) as unavailable:
        await fetcher.fetch(f"{site}/unavailable")
    assert unavailable.value.upstream_status == 503 and unavailable.value.retryable


async def test_without_the_allow_list_loopback_is_never_contacted(site: str) -> None:
    """The webhooks' default (no allow-list) refuses loopback before any request is sent."""
    ArticleSite.seen.clear()
    with pytest.raises(UrlRefusedError):
        await ArticleFetcher(AllowList()).fetch(f"{site}/good")
    assert ArticleSite.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://user:pw@example.org/",
        "http://127.0.0.1/",
        "http://0x7f.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "gopher://example.org/",
    ],
)
def test_request_time_check_refuses_bad_urls(url: str) -> None:
    """The no-network check the API runs refuses schemes, credentials and local addresses."""
    with pytest.raises(UrlRefusedError):
        check_article_url(url, AllowList())


def test_request_time_check_passes_a_public_url() -> None:
    """An ordinary news URL passes the request-time check unchanged."""
    url = "https://www.example.org/politik/artikel-123.html?seite=2"
    assert check_article_url(url, AllowList()) == url


async def test_a_name_that_resolves_to_loopback_is_refused_at_connect(site: str) -> None:
    """A public-looking name whose DNS answer is loopback is refused when the fetch connects."""

    async def rebinding_resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    ArticleSite.seen.clear()
    port = site.rsplit(":", 1)[1]
    fetcher = ArticleFetcher(AllowList(), resolver=rebinding_resolver)
    with pytest.raises(UrlRefusedError) as caught:
        await fetcher.fetch(f"http://news.example.org:{port}/good")
    assert "resolves to 127.0.0.1" in str(caught.value)
    assert ArticleSite.seen == []
