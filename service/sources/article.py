"""One article from whichever input a request used: ``text``, ``html`` or ``url``.

The worker calls :func:`resolve_article` before the pipeline: HTML is extracted, a URL fetched
and then extracted, plain text checked for being markup in disguise.  What it returns is the text
and title the pipeline (and the result cache key) work on, and an :class:`ArticleSource` for the
result's ``source`` field.  Two requests that reach the same article (two URLs, or text and HTML)
end with the same text and title, so a cache key taken over those shares one result.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import TextTooLongError
from service.schemas import ArticleSource, SourceKind
from service.sources.errors import MarkupAsTextError
from service.sources.extract import ExtractedArticle, Extractor, looks_like_markup
from service.sources.fetch import ArticleFetcher

__all__ = ["ArticleSource", "ResolvedArticle", "SourceKind", "resolve_article"]


@dataclass(frozen=True, slots=True)
class ResolvedArticle:
    """The text and title to summarize, and where they came from."""

    text: str
    title: str | None
    source: ArticleSource


async def resolve_article(
    *,
    text: str | None = None,
    html: str | None = None,
    url: str | None = None,
    title: str | None = None,
    extractor: Extractor,
    fetcher: ArticleFetcher | None = None,
    max_text_chars: int | None = None,
) -> ResolvedArticle:
    """The article of exactly one of ``text``, ``html`` and ``url``; typed errors otherwise.

    An empty ``title`` takes the page's.  ``max_text_chars`` (``KURZ_MAX_TEXT_CHARS``) applies
    to the extracted text, which the API could not measure.  Raises ``ValueError`` when not
    exactly one input is given: the API refuses that with a 422 before a job exists.
    """
    given = [name for name, value in (("text", text), ("html", html), ("url", url)) if value]
    if len(given) != 1:
        raise ValueError(f"exactly one of text, html, url is needed; got {given or 'none'}")
    if text:
        if looks_like_markup(text):
            raise MarkupAsTextError()
        source = ArticleSource(kind="text", title=title or None, characters=len(text))
        return ResolvedArticle(text=text, title=title or None, source=source)
    if html:
        page = await extractor.extract(html)
        return _resolved(page, "html", title, max_text_chars)
    assert url is not None
    if fetcher is None:
        raise ValueError("a url needs a fetcher")
    fetched = await fetcher.fetch(url)
    page = await extractor.extract(fetched.html, url=fetched.url)
    return _resolved(page, "url", title, max_text_chars, url=url, final_url=fetched.url)


def _resolved(
    page: ExtractedArticle,
    kind: SourceKind,
    title: str | None,
    max_text_chars: int | None,
    *,
    url: str | None = None,
    final_url: str | None = None,
) -> ResolvedArticle:
    if max_text_chars is not None and page.characters > max_text_chars:
        raise TextTooLongError(page.characters, max_text_chars)
    source = ArticleSource(
        kind=kind,
        url=url,
        final_url=final_url,
        title=page.title,
        author=page.author,
        date=page.date,
        site_name=page.site_name,
        characters=page.characters,
        warning=page.short_text_warning,
    )
    return ResolvedArticle(text=page.text, title=title or page.title, source=source)
