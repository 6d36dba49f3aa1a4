"""One article from text, HTML or a URL, as the worker will resolve it before the pipeline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.errors import TextTooLongError
from service.sources.article import resolve_article
from service.sources.errors import MarkupAsTextError
from service.sources.extract import Extractor
from service.sources.fetch import ArticleFetcher
from service.webhooks.ssrf import AllowList
from tests.pages import AUTHOR, SITE_NAME, news_page, read_seed
from tests.test_sources_fetch import site  # noqa: F401 - the loopback site fixture

TEXT = "Die Regierung hat am Montag neue Pläne vorgestellt. Kritiker sind skeptisch."


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    with Extractor() as started:
        yield started


async def test_plain_text_passes_through_and_markup_as_text_is_refused(
    extractor: Extractor,
) -> None:
    """Text is summarized as sent; text that is plainly HTML is refused with its own code."""
    resolved = await resolve_article(text=TEXT, title="Pläne", extractor=extractor)
    assert (resolved.text, resolved.title) == (TEXT, "Pläne")
    assert resolved.source.kind == "text" and resolved.source.characters == len(TEXT)
    with pytest.raises(MarkupAsTextError) as caught:
        await resolve_article(text=f"<p>{TEXT}</p>\n<p>{TEXT}</p>", extractor=extractor)
    assert caught.value.code == "markup_as_text"


async def test_html_is_extracted_and_an_empty_title_takes_the_pages(
    extractor: Extractor, seed_texts: dict[str, str]
) -> None:
    """A news page gives its article text, its headline as title, and its metadata as source."""
    article = read_seed(next(iter(seed_texts.values())))
    resolved = await resolve_article(html=news_page(article), title="", extractor=extractor)
    assert resolved.title == article.title
    assert article.body[0] in resolved.text and article.body[-1] in resolved.text
    source = resolved.source
    assert (source.kind, source.author, source.site_name) == ("html", AUTHOR, SITE_NAME)
    assert source.characters == len(resolved.text) and source.warning is None
    given = await resolve_article(html=news_page(article), title="Eigener", extractor=extractor)
    assert given.title == "Eigener" and given.text == resolved.text


async def test_a_url_is_fetched_through_redirects_then_extracted(
    extractor: Extractor,
    site: str,  # noqa: F811 - the imported fixture
) -> None:
    """A URL is fetched (redirects followed) and extracted; the source names both URLs."""
    fetcher = ArticleFetcher(AllowList(["127.0.0.1"]), timeout_s=5.0)
    resolved = await resolve_article(url=f"{site}/hop/2", extractor=extractor, fetcher=fetcher)
    assert "überraschendes Ergebnis" in resolved.text
    assert resolved.source.kind == "url"
    assert resolved.source.url == f"{site}/hop/2"
    assert resolved.source.final_url == f"{site}/good"
    assert resolved.source.warning is not None  # one sentence: a teaser, as far as anyone knows


async def test_exactly_one_input_and_the_length_limit(
    extractor: Extractor, seed_texts: dict[str, str]
) -> None:
    """Two inputs or none are a programming error; extracted text over the limit is refused."""
    with pytest.raises(ValueError, match="exactly one"):
        await resolve_article(text=TEXT, html="<p>x</p>", extractor=extractor)
    with pytest.raises(ValueError, match="exactly one"):
        await resolve_article(extractor=extractor)
    page = news_page(read_seed(next(iter(seed_texts.values()))))
    with pytest.raises(TextTooLongError):
        await resolve_article(html=page, extractor=extractor, max_text_chars=1000)
