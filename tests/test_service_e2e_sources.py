"""HTML and URL inputs end to end: a real API, a worker on the tiny models, Redis, and a real
loopback news site that the fetch allow-list (``KURZ_FETCH_ALLOW_HOSTS``) admits.

The site serves the seed articles as full news pages (``tests.pages``), plus the pages a fetch
must survive: a redirect to a forbidden address, a 404, a 503, a PDF, an oversized page, a page
without article text, and a paywall teaser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from service.text.segment import split_sentences
from tests.pages import AUTHOR, BOILERPLATE_LINES, SITE_NAME, SeedArticle, news_page, read_seed
from tests.processes import RedisServer, ServiceProcess, free_port, service_env, wait_until_ready
from tests.test_service_e2e import follow

pytestmark = [pytest.mark.slow, pytest.mark.redis]

#: Bytes a fetched page may have here; the seed pages have 6-10 KB.
FETCH_MAX_BYTES = 200_000
JOB_RETRIES = 2
TEASER = (
    "<html><head><title>Exklusiv: Der Haushalt wackelt</title></head><body><article>"
    "<h1>Exklusiv: Der Haushalt wackelt</h1>"
    "<p>Die Koalition streitet seit Wochen über den Haushalt für das kommende Jahr.</p>"
    "<p>Lesen Sie weiter mit einem Abonnement.</p></article></body></html>"
)
EMPTY = "<html><head><script>var a = 1;</script></head><body></body></html>"


class NewsSite(BaseHTTPRequestHandler):
    """The seed pages at /artikel/<n> (and again at /amp/<n>), and the misbehaving pages."""

    pages: ClassVar[dict[str, str]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Route by path."""
        NewsSite.requests.append(self.path)
        path = self.path
        html = "text/html; charset=utf-8"
        if path in self.pages:
            self._send(200, html, self.pages[path].encode())
        elif path == "/weiter":
            self.send_response(302)
            self.send_header("Location", "http://10.20.30.40/intern")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/wartung":
            self._send(503, html, b"<p>Wartung</p>")
        elif path == "/dokument.pdf":
            self._send(200, "application/pdf", b"%PDF-1.7 " * 100)
        elif path == "/riesig":
            self._send(200, html, b"<p>" + b"Wort " * (FETCH_MAX_BYTES // 4) + b"</p>")
        else:
            self._send(404, html, b"<p>Nicht gefunden</p>")


@dataclass
class Stack:
    base_url: str
    site_url: str
    articles: list[SeedArticle]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path, seed_texts: dict[str, str]
) -> Iterator[Stack]:
    """A private Redis, one API, one worker, and the loopback news site."""
    articles = [read_seed(text) for text in seed_texts.values()]
    NewsSite.pages = {f"/artikel/{n}": news_page(a) for n, a in enumerate(articles)}
    NewsSite.pages["/amp/0"] = NewsSite.pages["/artikel/0"]
    NewsSite.pages["/teaser"] = TEASER
    NewsSite.pages["/leer"] = EMPTY
    site = ThreadingHTTPServer(("127.0.0.1", 0), NewsSite)
    site.daemon_threads = True
    threading.Thread(target=site.serve_forever, daemon=True).start()
    logs = tmp_path_factory.mktemp("sources-stack")
    redis = RedisServer(logs / "redis")
    redis.start()
    port = free_port()
    env = service_env(
        redis.url,
        tiny_models_dir,
        KURZ_PORT=str(port),
        KURZ_WORKER_CONCURRENCY="2",
        KURZ_JOB_RETRIES=str(JOB_RETRIES),
        KURZ_FETCH_ALLOW_HOSTS="127.0.0.1",
        KURZ_FETCH_TIMEOUT_S="5",
        KURZ_FETCH_MAX_BYTES=str(FETCH_MAX_BYTES),
    )
    processes = [
        ServiceProcess("api", env, logs / "api.log"),
        ServiceProcess("worker", env, logs / "worker.log"),
    ]
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(base_url)
        yield Stack(base_url, f"http://127.0.0.1:{site.server_address[1]}", articles)
    finally:
        for process in processes:
            process.stop()
        redis.stop()
        site.shutdown()
        site.server_close()


def submit(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    """POST /summarize, follow the job to its end, return the final view."""
    response = httpx.post(f"{stack.base_url}/summarize", json=body, timeout=10)
    assert response.status_code in (200, 202), response.text
    view, _ = follow(stack.base_url, response.json()["id"], timeout_s=600)
    return view


def _flat(text: str) -> str:
    return " ".join(text.split())


def assert_article_covered(name: str, result: dict[str, Any], article: SeedArticle) -> None:
    """Every body sentence of the seed is aligned, and no boilerplate line is."""
    aligned = [_flat(pair["de"]) for pair in result["alignment"]]
    sentences = [_flat(s.text) for p in article.body for s in split_sentences(p)]
    kept = sum(sentence in aligned for sentence in sentences)
    leaked = [line for line in BOILERPLATE_LINES if any(_flat(line) in de for de in aligned)]
    print(  # noqa: T201 - the figures are this test's output
        f"[e2e-sources] {name} body_sentences={len(sentences)} aligned={kept} "
        f"boilerplate_lines_leaked={len(leaked)} sentences_in={result['sentences_in']}"
    )
    assert len(sentences) > 10 and kept == len(sentences)
    assert leaked == []
    assert result["sentences_translated"] == result["sentences_in"] == len(aligned)


def test_a_url_is_fetched_extracted_and_summarized(stack: Stack) -> None:
    """A URL's page becomes a result covering its article and none of its boilerplate, with
    `source` filled; the same article at another URL is answered from that result."""
    article = stack.articles[0]
    url = f"{stack.site_url}/artikel/0"
    view = submit(stack, {"url": url})
    assert view["status"] == "succeeded", view
    result = view["result"]
    assert_article_covered("url", result, article)
    assert result["title_en"]  # the page's headline, translated
    assert result["source"] == {
        "kind": "url",
        "url": url,
        "final_url": url,
        "title": article.title,
        "author": AUTHOR,
        "date": "2026-01-26",
        "site_name": SITE_NAME,
        "characters": result["source"]["characters"],
    }
    assert result["source"]["characters"] > 2000 and result["cached"] is False
    other = submit(stack, {"url": f"{stack.site_url}/amp/0"})
    assert other["status"] == "succeeded" and other["id"] != view["id"]
    assert other["result"]["cached"] is True
    assert other["result"]["alignment"] == result["alignment"]
    assert other["result"]["source"]["url"] == f"{stack.site_url}/amp/0"
    again = httpx.post(f"{stack.base_url}/summarize", json={"url": url}, timeout=10)
    assert again.status_code == 200 and again.json()["id"] == view["id"]


def test_an_html_body_is_extracted_and_summarized(stack: Stack) -> None:
    """A whole page sent as `html` gives a result over its article, source kind html."""
    article = stack.articles[2]
    view = submit(stack, {"html": news_page(article), "title": ""})
    assert view["status"] == "succeeded", view
    assert_article_covered("html", view["result"], article)
    source = view["result"]["source"]
    assert (source["kind"], source["title"], source["site_name"]) == (
        "html",
        article.title,
        SITE_NAME,
    )
    assert "url" not in source and "warning" not in source


def test_the_same_article_as_text_and_as_html_shares_one_result(stack: Stack) -> None:
    """Sent as text first and then as its news page, the article is translated once: the
    second job's result is the first one's, marked cached, with its own source."""
    article = stack.articles[3]
    text = "\n\n".join(block for _, block in article.blocks)
    as_text = submit(stack, {"text": text, "title": article.title})
    assert as_text["status"] == "succeeded", as_text
    assert as_text["result"]["source"]["kind"] == "text"
    as_html = submit(stack, {"html": news_page(article)})
    assert as_html["status"] == "succeeded", as_html
    assert as_html["id"] != as_text["id"]
    assert as_html["result"]["cached"] is True
    assert as_html["result"]["alignment"] == as_text["result"]["alignment"]
    assert as_html["result"]["summary"] == as_text["result"]["summary"]
    assert as_html["result"]["source"]["kind"] == "html"


def test_a_teaser_succeeds_with_a_warning_in_its_source(stack: Stack) -> None:
    """A page with little article text is summarized, and `source.warning` says why to doubt it."""
    view = submit(stack, {"url": f"{stack.site_url}/teaser"})
    assert view["status"] == "succeeded", view
    source = view["result"]["source"]
    assert source["characters"] < 500 and "paywall" in source["warning"]


@pytest.mark.parametrize(
    ("path", "code", "status"),
    [
        ("/weiter", "url_refused", 422),
        ("/dokument.pdf", "not_html", 415),
        ("/riesig", "page_too_large", 413),
        ("/leer", "nothing_extracted", 422),
    ],
)
def test_a_page_that_cannot_be_used_fails_its_job_once(
    stack: Stack, path: str, code: str, status: int
) -> None:
    """A redirect to a forbidden address, a PDF, an oversized page and an empty page each fail
    their job with a stable code and status, on the first attempt (no retry can help)."""
    view = submit(stack, {"url": f"{stack.site_url}{path}"})
    assert view["status"] == "failed", view
    assert view["error"]["code"] == code and view["error"]["status"] == status
    assert view["attempts"] == 1
    assert "result" not in view


def test_a_forbidden_first_url_is_refused_before_any_job(stack: Stack) -> None:
    """The forbidden address as the URL itself is a 422 problem at request time."""
    response = httpx.post(
        f"{stack.base_url}/summarize", json={"url": "http://10.20.30.40/intern"}, timeout=10
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "url_refused"


def test_a_404_fails_for_good_and_a_503_is_retried(stack: Stack) -> None:
    """fetch_failed keeps the site's status: a 404 is not retried, a 503 is, up to the limit."""
    NewsSite.requests.clear()
    missing = submit(stack, {"url": f"{stack.site_url}/verschwunden"})
    assert missing["status"] == "failed", missing
    assert missing["error"]["code"] == "fetch_failed"
    assert missing["error"]["status"] == 502 and missing["error"]["upstream_status"] == 404
    assert missing["attempts"] == 1
    assert NewsSite.requests.count("/verschwunden") == 1
    down = submit(stack, {"url": f"{stack.site_url}/wartung"})
    assert down["status"] == "failed", down
    assert down["error"]["code"] == "fetch_failed" and down["error"]["upstream_status"] == 503
    assert down["attempts"] == JOB_RETRIES
    assert NewsSite.requests.count("/wartung") == JOB_RETRIES
