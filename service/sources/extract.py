"""The article inside an HTML page: trafilatura in a child process that can be stopped.

trafilatura finds the main text of a page and leaves navigation, ads, cookie banners, comments
and related links out.  Its Python API has no time limit, and lxml parsing a hostile or merely
enormous page runs in C, where no signal or thread can interrupt it.  So extraction runs in child
processes started with ``spawn`` (a fork of a worker that holds model threads is unsafe), kept
warm between pages, and a child that passes the time limit is killed and replaced; the caller
gets :class:`~service.sources.errors.ExtractionTimeoutError` at once.  A fresh child costs about
a second (Python plus trafilatura's imports), which is why the limit only starts counting once
the child has said it is ready.

The result is plain text the pipeline already handles: one paragraph per block (paragraph,
heading, list item, quotation, table cell), paragraphs separated by a blank line, and a ``<br>``
kept as a line break inside its paragraph.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Final

from service.errors import KurzError
from service.sources.errors import (
    ExtractionTimeoutError,
    NothingExtractedError,
    NotHtmlError,
    PageTooLargeError,
)
from service.text.normalize import normalize_text

__all__ = [
    "ExtractedArticle",
    "Extractor",
    "extract_payload",
    "looks_like_markup",
]

#: Seconds one page may take in trafilatura.  A 1 MB news page takes 0.1-0.3 s here.
DEFAULT_TIMEOUT_S: Final = 10.0
#: Characters of HTML accepted; above this the page is refused before any parsing.
DEFAULT_MAX_HTML_CHARS: Final = 5_000_000
#: Fewer extracted characters than this earn a warning: a paywall teaser or a page that is no
#: article.  The seed articles hold 3,100-4,600 characters; teasers run to 300-600.
SHORT_TEXT_CHARS: Final = 500
#: Seconds a fresh child may take to import trafilatura and report ready.
START_TIMEOUT_S: Final = 60.0

#: What a child runs per page: ``(html, url) -> payload`` (see :func:`extract_payload`), or None
#: when nothing was found.  Must be a module-level function: it is pickled by name for ``spawn``.
PayloadFunction = Callable[[str, str | None], dict[str, Any] | None]

# trafilatura's output tree: these wrap words inside a paragraph; every other element is a block.
_INLINE_TAGS: Final = frozenset({"hi", "ref", "del", "span"})
_TAG_RE: Final = re.compile(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>")
#: Elements whose tags make text markup (``<Zitat>`` is no HTML element, so no markup).
_HTML_TAG_NAMES: Final = (
    "a abbr article aside b blockquote body br caption code dd div dl dt em figcaption figure "
    "footer h1 h2 h3 h4 h5 h6 head header hr html i img li link main meta nav ol p pre script "
    "section small span strong style sub sup table tbody td th thead title tr u ul"
)
_HTML_TAGS: Final = frozenset(_HTML_TAG_NAMES.split())
_DOCUMENT_START: Final = re.compile(r"<(?:!doctype\s+html|html|\?xml)\b", re.I)
_BLANKS: Final = re.compile(r"\s*")
#: Leading comments skipped when looking for a doctype; a page has one or two.
_MAX_LEADING_COMMENTS: Final = 20


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    """The article found on a page, ready for the pipeline, and what the page says about it."""

    text: str
    title: str | None
    author: str | None
    date: str | None
    site_name: str | None
    characters: int
    #: Set when the text is suspiciously short (a paywall teaser, a page that is no article).
    short_text_warning: str | None = None


def looks_like_markup(text: str) -> bool:
    """Whether plain ``text`` is plainly HTML, so it should have been sent as ``html``.

    True for a document (doctype, ``<html>``, an XML declaration) and for text with at least two
    tags of real HTML elements, one of them a closing tag, that either starts with such a tag or
    holds six or more of them.  German prose that mentions ``<p>`` once, or uses angle brackets
    as quotation marks (``<Zitat>``, not an HTML element), is not markup.
    """
    if _starts_as_document(text):
        return True
    tags = [m for m in _TAG_RE.finditer(text) if m.group(1).lower() in _HTML_TAGS]
    if len(tags) < 2 or not any(m.group(0).lstrip("< \t").startswith("/") for m in tags):
        return False
    starts_with_tag = tags[0].start() == len(text) - len(text.lstrip())
    return starts_with_tag or len(tags) >= 6


def _starts_as_document(text: str) -> bool:
    """Whether ``text`` opens with a doctype, ``<html>`` or an XML declaration, after blanks and
    comments.  Walked by hand: a regular expression with a repeated comment group backtracks
    exponentially on text of many comments (250 ``<!-- -->`` took over a minute)."""
    position = _BLANKS.match(text).end()  # type: ignore[union-attr]  # \s* always matches
    for _ in range(_MAX_LEADING_COMMENTS):
        if not text.startswith("<!--", position):
            break
        end = text.find("-->", position + 4)
        if end < 0:
            return False
        position = _BLANKS.match(text, end + 3).end()  # type: ignore[union-attr]
    return _DOCUMENT_START.match(text, position) is not None


def _paragraphs(body: Any) -> list[str]:
    """Plain paragraphs of trafilatura's output tree: one per block, ``<lb/>`` as a newline."""
    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = normalize_text("".join(buffer).replace("\n\n", "\n"))
        buffer.clear()
        if text:
            paragraphs.append(text.replace("\n\n", "\n"))

    def walk(element: Any) -> None:
        block = element.tag not in _INLINE_TAGS
        if block:
            flush()
        buffer.append(element.text or "")
        for child in element:
            if child.tag == "lb":
                buffer.append("\n")
            else:
                walk(child)
            buffer.append(child.tail or "")
        if block:
            flush()

    walk(body)
    return paragraphs


def extract_payload(html: str, url: str | None) -> dict[str, Any] | None:
    """Run trafilatura on one page (in a child process); None when it found no article."""
    import trafilatura

    document = trafilatura.bare_extraction(
        html,
        url=url,
        include_comments=False,
        include_tables=True,
        with_metadata=True,
        favor_precision=False,
        # Dates only from the page's metadata and markup: the extensive search reads years out
        # of the article's prose ("seit 2017" became 2017-01-01 on a CMS fragment).
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    if document is None or isinstance(document, dict) or document.body is None:
        return None
    return {
        "paragraphs": _paragraphs(document.body),
        "title": document.title,
        "author": document.author,
        "date": document.date,
        "site_name": document.sitename,
    }


def _serve(connection: Connection, run: PayloadFunction) -> None:
    """A child's loop: import trafilatura, say ready, answer pages until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    import trafilatura  # noqa: F401 - imported before "ready", so the time limit excludes it

    connection.send(("ready", None))
    while True:
        try:
            html, url = connection.recv()
        except EOFError:
            return
        try:
            connection.send(("ok", run(html, url)))
        except Exception as error:  # noqa: BLE001 - reported to the parent, which raises
            connection.send(("error", f"{type(error).__name__}: {error}"))


class _Child:
    """One extraction process and the parent's end of its pipe."""

    def __init__(self, run: PayloadFunction) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child_end, run), name="kurz-extract", daemon=True
        )
        self.process.start()
        child_end.close()
        if not self.connection.poll(START_TIMEOUT_S) or self.connection.recv()[0] != "ready":
            self.kill()
            raise KurzError(f"the extraction process did not start within {START_TIMEOUT_S:g} s")

    def run(self, html: str, url: str | None, timeout_s: float) -> tuple[str, Any]:
        """Send one page and wait at most ``timeout_s`` for the answer; kill the child after."""
        self.connection.send((html, url))
        if not self.connection.poll(timeout_s):
            self.kill()
            raise ExtractionTimeoutError(timeout_s)
        try:
            answer: tuple[str, Any] = self.connection.recv()
        except EOFError:
            self.kill()
            raise NothingExtractedError("the extractor stopped on this page") from None
        return answer

    def kill(self) -> None:
        """Stop the process now and reap it."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.connection.close()


class Extractor:
    """Extracts articles from HTML in up to ``processes`` child processes, each time-limited.

    Thread-safe; ``extract`` is the asyncio face (the waiting happens in a thread).  Children
    start on first use, or all at once with :meth:`start` (a worker's start-up), and live until
    :meth:`close`.  ``run`` replaces what a child does per page (tests make it hang).
    """

    def __init__(
        self,
        *,
        processes: int = 1,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_html_chars: int = DEFAULT_MAX_HTML_CHARS,
        short_text_chars: int = SHORT_TEXT_CHARS,
        run: PayloadFunction = extract_payload,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_html_chars = max_html_chars
        self.short_text_chars = short_text_chars
        self._run = run
        self._slots = threading.BoundedSemaphore(processes)
        self._processes = processes
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False
        #: Children killed for running past the time limit (a figure for tests and metrics).
        self.children_killed = 0

    def start(self) -> None:
        """Start every child now, so the first page does not wait for one."""
        children = [_Child(self._run) for _ in range(self._processes)]
        for child in children:
            self._give_back(child)

    def close(self) -> None:
        """Stop the idle children; one still busy is stopped when its page is done."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def extract(self, html: str, *, url: str | None = None) -> ExtractedArticle:
        """:meth:`extract_blocking` off the event loop."""
        return await asyncio.to_thread(self.extract_blocking, html, url=url)

    def extract_blocking(self, html: str, *, url: str | None = None) -> ExtractedArticle:
        """The article on ``html``; raises the typed errors of :mod:`service.sources.errors`."""
        if len(html) > self.max_html_chars:
            raise PageTooLargeError(len(html), self.max_html_chars, unit="characters")
        if "\x00" in html or not _TAG_RE.search(html):
            raise NotHtmlError("the content holds no HTML tags")
        with self._slots:
            child = self._take()
            try:
                status, payload = child.run(html, url, self.timeout_s)
            except ExtractionTimeoutError:
                self.children_killed += 1
                raise
            self._give_back(child)
        if status != "ok":
            raise NothingExtractedError(f"extraction failed: {payload}")
        return self._article(payload)

    def _take(self) -> _Child:
        with self._lock:
            if self._closed:
                raise KurzError("the extractor is closed")
            if self._idle:
                return self._idle.pop()
        return _Child(self._run)

    def _give_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(child)
                return
        child.kill()

    def _article(self, payload: dict[str, Any] | None) -> ExtractedArticle:
        """Build the result; the page's title is dropped from the text's head if it leads it."""
        if not payload or not payload["paragraphs"]:
            raise NothingExtractedError()
        paragraphs: list[str] = payload["paragraphs"]
        title = _clean(payload.get("title"))
        if title and len(paragraphs) > 1 and normalize_text(paragraphs[0]) == normalize_text(title):
            paragraphs = paragraphs[1:]
        text = "\n\n".join(paragraphs)
        warning = None
        if len(text) < self.short_text_chars:
            warning = (
                f"only {len(text)} characters of article text were found; the page may be a "
                "paywall teaser or not an article"
            )
        return ExtractedArticle(
            text=text,
            title=title,
            author=_clean(payload.get("author")),
            date=_clean(payload.get("date")),
            site_name=_clean(payload.get("site_name")),
            characters=len(text),
            short_text_warning=warning,
        )


def _clean(value: object) -> str | None:
    """A metadata field as one line, or None when it is empty."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())
    return text or None
