"""Real-looking pages built from the seed articles, for extraction and markup tests.

A seed is read as an article: its headline, subheadings and body paragraphs (lines of eight or
more words that end like a sentence).  What the seed's own crawl left in (breadcrumbs, "Lesen Sie
auch", share counters) is not part of the article here.  Two pages are built from it:

* :func:`news_page`: the article inside a news site's template with a cookie banner, navigation,
  ads (one inside the article body), related links, reader comments and a footer;
* :func:`cms_fragment`: the article body as a CMS stores it, with inline links and emphasis.

:data:`BOILERPLATE_LINES` is every line of the template that must not be extracted.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[.!?“\"»:…)]$")
_NOT_HEADINGS = (
    "Startseite",
    "Home ",
    "Lesen Sie",
    "Gerade lesen",
    "Quellen",
    "Continue",
    "Stand:",
)

COOKIE_TEXT = (
    "Wir verwenden Cookies und ähnliche Technologien, um Ihnen personalisierte Inhalte anzuzeigen."
)
NAV_ITEMS = (
    "Politik und Gesellschaft",
    "Wirtschaft aktuell",
    "Sport am Wochenende",
    "Kultur und Medien",
)
AD_TEXTS = (
    "Jetzt das Digital-Abo für nur 99 Cent im ersten Monat sichern",
    "Anzeige: Traumurlaub an der Ostsee zum Frühbucherpreis buchen",
)
RELATED_LINKS = (
    "Bürgermeisterwahl in Kleinstadt endet mit knappem Ergebnis",
    "Neue Radwege sollen bis zum Sommer fertiggestellt werden",
    "Wetterdienst warnt vor Glätte auf den Straßen im Bergland",
)
COMMENTS = (
    "Das ist doch alles nur Theater für die Kameras, schreibt Leser Hans88.",
    "Endlich redet man wieder miteinander, das wurde auch Zeit.",
    "Ich glaube kein Wort von dem, was hier angekündigt wird.",
)
FOOTER_LINES = ("Impressum und Kontakt zur Redaktion", "Datenschutzerklärung des Verlags")
BOILERPLATE_LINES = (
    COOKIE_TEXT,
    *NAV_ITEMS,
    *AD_TEXTS,
    "Mehr zum Thema",
    *RELATED_LINKS,
    *COMMENTS,
    *FOOTER_LINES,
)
SITE_NAME = "Rheinischer Kurier"
AUTHOR = "Lena Beispiel"


@dataclass(frozen=True)
class SeedArticle:
    """A seed read as an article: headline, then blocks in order (``("h2"|"p", text)``)."""

    title: str
    blocks: tuple[tuple[str, str], ...]

    @property
    def body(self) -> list[str]:
        """The body paragraphs, in order."""
        return [text for kind, text in self.blocks if kind == "p"]


def read_seed(text: str) -> SeedArticle:
    """The headline, subheadings and body paragraphs of one seed article."""
    title = ""
    blocks: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        words = len(line.split())
        if words >= 8 and _SENTENCE_END.search(line):
            blocks.append(("p", line))
        elif 3 <= words <= 14 and not line.startswith(_NOT_HEADINGS):
            if not title:
                title = line
            elif not _SENTENCE_END.search(line):
                blocks.append(("h2", line))
    return SeedArticle(title=title, blocks=tuple(blocks))


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _with_inline_markup(paragraph: str, index: int) -> str:
    """A paragraph as escaped HTML with a link around words 3-5 and emphasis on one more word."""
    words = paragraph.split(" ")
    if len(words) < 9:
        return _e(paragraph)
    link = f'<a href="https://example.org/artikel/{index}" title="Hintergrund">'
    emphasis = ("em", "strong")[index % 2]
    out = [_e(w) for w in words]
    out[2] = link + out[2]
    out[4] = out[4] + "</a>"
    out[-3] = f"<{emphasis}>{out[-3]}</{emphasis}>"
    return " ".join(out)


def cms_fragment(article: SeedArticle) -> str:
    """The article body as a CMS stores it: paragraphs and subheadings with inline markup."""
    parts = []
    for index, (kind, text) in enumerate(article.blocks):
        if kind == "p":
            parts.append(f"<p>{_with_inline_markup(text, index)}</p>")
        else:
            parts.append(f"<h2>{_e(text)}</h2>")
    return "\n".join(parts)


def news_page(article: SeedArticle) -> str:
    """The article inside a news site's full page with all the usual boilerplate around it."""
    body_parts = []
    for index, (kind, text) in enumerate(article.blocks):
        tag = "p" if kind == "p" else "h2"
        body_parts.append(f"<{tag}>\n      {_e(text)}\n    </{tag}>")
        if index == len(article.blocks) // 2:
            body_parts.append(f'<aside class="ad ad-inline"><p>{_e(AD_TEXTS[1])}</p></aside>')
    nav = "".join(
        f'<li><a href="/ressort/{i}">{_e(item)}</a></li>' for i, item in enumerate(NAV_ITEMS)
    )
    related = "".join(
        f'<li><a href="/artikel/verwandt-{i}">{_e(link)}</a></li>'
        for i, link in enumerate(RELATED_LINKS)
    )
    comments = "".join(
        f'<div class="comment"><p class="comment-author">Leser {i}</p><p>{_e(c)}</p></div>'
        for i, c in enumerate(COMMENTS)
    )
    footer = "".join(
        f'<li><a href="/info/{i}">{_e(line)}</a></li>' for i, line in enumerate(FOOTER_LINES)
    )
    return f"""<!DOCTYPE html>
<html lang="de">
<head>
  <meta charset="utf-8">
  <title>{_e(article.title)} | {SITE_NAME}</title>
  <meta name="author" content="{AUTHOR}">
  <meta property="og:site_name" content="{SITE_NAME}">
  <meta property="og:title" content="{html.escape(article.title)}">
  <meta property="article:published_time" content="2026-01-26T08:30:00+01:00">
  <style>body {{ font-family: serif; }} .ad {{ border: 1px solid #ccc; }}</style>
  <script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"page": "artikel"}});</script>
</head>
<body>
  <div id="cookie-banner" class="cookie-consent" role="dialog">
    <p>{_e(COOKIE_TEXT)}</p><button>Alle akzeptieren</button>
  </div>
  <header class="site-header">
    <a class="logo" href="/">{SITE_NAME}</a>
    <nav class="main-nav"><ul>{nav}</ul></nav>
  </header>
  <div class="ad ad-top"><a href="/abo">{_e(AD_TEXTS[0])}</a></div>
  <main>
    <article class="article">
      <h1>{_e(article.title)}</h1>
      <p class="byline">Von <span class="author">{AUTHOR}</span>,
        <time datetime="2026-01-26T08:30:00+01:00">26.01.2026</time></p>
      <div class="article-body">
    {chr(10).join(body_parts)}
      </div>
    </article>
    <aside class="related"><h2>Mehr zum Thema</h2><ul>{related}</ul></aside>
    <section id="comments" class="comments"><h2>Kommentare</h2>{comments}</section>
  </main>
  <footer class="site-footer"><ul>{footer}</ul><p>© 2026 {SITE_NAME}</p></footer>
</body>
</html>
"""
