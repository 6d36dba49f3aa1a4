"""Article extraction from HTML: seed pages in a news template and as CMS fragments, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from service.sources.errors import (
    ExtractionTimeoutError,
    NothingExtractedError,
    NotHtmlError,
    PageTooLargeError,
)
from service.sources.extract import Extractor, extract_payload, looks_like_markup
from service.text.segment import split_sentences
from tests.pages import AUTHOR, BOILERPLATE_LINES, SITE_NAME, cms_fragment, news_page, read_seed


def hang_on_marker(html: str, url: str | None) -> dict[str, Any] | None:
    """Extraction that gets stuck (as lxml can on a hostile page) when the page says HANG."""
    if "HANG" in html:
        while True:
            time.sleep(1)
    return extract_payload(html, url)


@pytest.fixture(scope="module")
def extractor() -> Iterator[Extractor]:
    with Extractor(processes=1, run=hang_on_marker) as started:
        started.start()
        yield started


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("kind", ["news", "cms"])
async def test_every_body_sentence_is_kept_and_no_boilerplate_leaks(
    extractor: Extractor, seed_texts: dict[str, str], kind: str
) -> None:
    """On each seed, as a full news page and as a CMS fragment, the body survives whole and
    navigation, ads, the cookie banner, comments, related links and footer are left out."""
    for name, seed in seed_texts.items():
        article = read_seed(seed)
        page = news_page(article) if kind == "news" else cms_fragment(article)
        extracted = await extractor.extract(page)
        text = _flat(extracted.text)
        sentences = [s.text for para in article.body for s in split_sentences(para)]
        kept = sum(_flat(sentence) in text for sentence in sentences)
        leaked = [line for line in BOILERPLATE_LINES if _flat(line) in text]
        print(  # noqa: T201 - the figures are this test's output
            f"[extract] page={name[:3]}-{kind} body_sentences={len(sentences)} kept={kept} "
            f"boilerplate_lines_leaked={len(leaked)}"
        )
        assert len(sentences) > 10
        assert kept == len(sentences), name
        assert leaked == [], name
        paragraphs = {_flat(p) for p in extracted.text.split("\n\n")}
        assert {_flat(p) for p in article.body} <= paragraphs, "paragraphs were merged or cut"
        assert extracted.characters == len(extracted.text)
        assert extracted.short_text_warning is None


def test_news_page_metadata_is_read(extractor: Extractor, seed_texts: dict[str, str]) -> None:
    """Title, author, date and site name come from the page; the title does not lead the text."""
    article = read_seed(next(iter(seed_texts.values())))
    extracted = extractor.extract_blocking(news_page(article))
    assert extracted.title == article.title
    assert extracted.author == AUTHOR
    assert extracted.site_name == SITE_NAME
    assert extracted.date == "2026-01-26"
    assert not extracted.text.startswith(article.title)


def test_line_breaks_stay_inside_their_paragraph(extractor: Extractor) -> None:
    """A <br> is a line break within its paragraph; blocks are separated by one blank line."""
    page = (
        "<html><body><article><h1>Wahl in Bayern</h1>"
        "<p>Die Wahl fand am Sonntag statt und brachte ein klares Ergebnis für die Regierung."
        "<br>Die Beteiligung lag bei siebzig Prozent und damit höher als beim letzten Mal.</p>"
        "<p>Die   Opposition\n kündigte an,"
        " das Ergebnis genau zu prüfen und Einspruch zu erheben.</p>"
        "<ul><li>Erstens wurde viel gewählt in diesem Jahr.</li>"
        "<li>Zweitens wurde wenig gestritten in diesem Jahr.</li></ul>"
        "</article></body></html>"
    )
    text = extractor.extract_blocking(page).text
    assert text.split("\n\n") == [
        "Die Wahl fand am Sonntag statt und brachte ein klares Ergebnis für die Regierung.\n"
        "Die Beteiligung lag bei siebzig Prozent und damit höher als beim letzten Mal.",
        "Die Opposition kündigte an, das Ergebnis genau zu prüfen und Einspruch zu erheben.",
        "Erstens wurde viel gewählt in diesem Jahr.",
        "Zweitens wurde wenig gestritten in diesem Jahr.",
    ]


def test_a_paywall_teaser_gets_a_short_text_warning(
    extractor: Extractor, seed_texts: dict[str, str]
) -> None:
    """A page with only the first paragraph and a subscription box is flagged as short."""
    article = read_seed(next(iter(seed_texts.values())))
    teaser = (
        f"<html><head><title>{article.title}</title></head><body><article><h1>{article.title}</h1>"
        f"<p>{article.body[0]}</p><div class='paywall'><p>Weiterlesen mit Abo</p></div>"
        "</article></body></html>"
    )
    extracted = extractor.extract_blocking(teaser)
    assert article.body[0] in extracted.text
    assert extracted.short_text_warning is not None
    assert str(extracted.characters) in extracted.short_text_warning


def test_a_page_without_text_is_nothing_extracted(extractor: Extractor) -> None:
    """A page of only scripts and an empty body raises NothingExtractedError."""
    with pytest.raises(NothingExtractedError) as caught:
        extractor.extract_blocking(
            "<html><head><script>var a = 1;</script></head><body></body></html>"
        )
    assert caught.value.code == "nothing_extracted"


def test_oversized_and_non_html_input_is_refused_before_extraction() -> None:
    """Too many characters, and content without a tag, fail fast with their own codes."""
    small = Extractor(max_html_chars=1000)
    with pytest.raises(PageTooLargeError) as too_large:
        small.extract_blocking("<p>" + "x" * 2000 + "</p>")
    assert too_large.value.code == "page_too_large"
    with pytest.raises(NotHtmlError) as not_html:
        small.extract_blocking("Nur Text, keine Auszeichnung.")
    assert not_html.value.code == "not_html"
    with pytest.raises(NotHtmlError):
        small.extract_blocking("%PDF-1.7 <</Type /Catalog>>\x00\x00")
    small.close()


def test_a_stuck_extraction_is_killed_at_the_time_limit() -> None:
    """A child stuck on a page is killed after the limit; the next page gets a fresh child."""
    with Extractor(timeout_s=1.0, run=hang_on_marker) as limited:
        limited.start()
        started = time.monotonic()
        with pytest.raises(ExtractionTimeoutError) as caught:
            limited.extract_blocking("<p>HANG</p>")
        waited = time.monotonic() - started
        assert caught.value.code == "extraction_timeout"
        assert 1.0 <= waited < 3.0
        assert limited.children_killed == 1
        page = "<html><body><article><p>" + "Ein ganz normaler Satz steht hier. " * 20
        assert (
            "normaler Satz" in limited.extract_blocking(page + "</p></article></body></html>").text
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!DOCTYPE html><html><body><p>Hallo</p></body></html>", True),
        ("  <html lang='de'><p>Text", True),
        ("<p>Die Regierung tagte am Montag.</p>\n<p>Sie beschloss nichts.</p>", True),
        (
            "Ein Satz. <b>fett</b> und <a href='x'>Link</a> und <i>kursiv</i> und <em>mehr</em>",
            True,
        ),
        ("Die Regierung tagte am Montag. Sie beschloss nichts.", False),
        ("Das HTML-Element <p> beginnt einen Absatz, schrieb der Autor.", False),
        ("Er nannte es <Zitat> und </Zitat> im Text.", False),
        ("Preise: 3 < 5 und 7 > 2, sagte die Lehrerin.", False),
    ],
)
def test_markup_sent_as_text_is_recognised(text: str, expected: bool) -> None:
    """Documents and tag-wrapped text are markup; prose mentioning a tag or using < is not."""
    assert looks_like_markup(text) is expected


@pytest.mark.parametrize(
    "hostile",
    ["<!-- -->" * 12_000, "<!--" * 25_000, "<a " * 33_000, "<a" + "x" * 100_000, "< " * 50_000],
)
def test_the_markup_check_stays_linear_on_hostile_text(hostile: str) -> None:
    """The API runs this on its event loop: 100,000 characters of near-markup take milliseconds
    (a regular expression for leading comments once took over a minute on 250 of them)."""
    started = time.perf_counter()
    looks_like_markup(hostile)
    assert time.perf_counter() - started < 0.1
