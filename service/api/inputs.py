"""Which input a submitted article came in (``text``, ``html`` or ``url``), checked at request
time, and the job key it gets.

Everything here is cheap and local: nothing is fetched or parsed on the API's event loop.  A
URL is checked without the network (scheme, credentials, literal addresses, the fetch
allow-list), so a URL no worker may read is a 422 before any job exists; its host name is
resolved and checked again when the worker connects.  HTML is only measured here (the body limit
has already bounded it); the worker extracts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.api.schemas import SummarizeRequest
from service.errors import ApiProblem, EmptyTextError, MarkupAsTextError, TextTooLongError
from service.schemas import ModelInfo, SourceKind
from service.settings import Settings
from service.sources.extract import looks_like_markup
from service.sources.fetch import check_article_url
from service.store.cache import page_key, result_key
from service.webhooks.ssrf import AllowList

__all__ = ["INPUT_FIELDS", "ArticleInput", "checked_input"]

#: The request fields that can hold the article; exactly one of them must.
INPUT_FIELDS = ("text", "html", "url")


@dataclass(frozen=True, slots=True)
class ArticleInput:
    """The one input a request used, checked; ``value`` is the URL as it will be fetched."""

    kind: SourceKind
    value: str

    def job_key(
        self,
        *,
        title: str | None,
        style: str,
        style_digest: str,
        models: Mapping[str, ModelInfo],
        glossary: tuple[str, str] | None = None,
        scope: str | None = None,
    ) -> str:
        """Text is keyed by its content (the result cache key); HTML and URLs by the raw input,
        in a namespace of their own, as their text is only known after extraction.  The
        glossary (id, content digest) and a desk's own cache scope are part of either key."""
        if self.kind == "text":
            return result_key(
                text=self.value,
                title=title,
                style=style,
                style_digest=style_digest,
                models=models,
                glossary=glossary,
                scope=scope,
            )
        return page_key(
            kind=self.kind,
            value=self.value,
            title=title,
            style=style,
            style_digest=style_digest,
            models=models,
            glossary=glossary,
            scope=scope,
        )


def checked_input(article: SummarizeRequest, settings: Settings, fetch: AllowList) -> ArticleInput:
    """The request's one input, or the 422 (413 for text over the limit) that refuses it."""
    given = [name for name in INPUT_FIELDS if getattr(article, name) is not None]
    if len(given) != 1:
        raise _not_one_input(given)
    if article.text is not None:
        if not article.text.strip():
            raise EmptyTextError()
        if len(article.text) > settings.max_text_chars:
            raise TextTooLongError(len(article.text), settings.max_text_chars)
        if looks_like_markup(article.text):
            raise MarkupAsTextError()
        return ArticleInput("text", article.text)
    if article.html is not None:
        if not article.html.strip():
            raise EmptyTextError()
        return ArticleInput("html", article.html)
    assert article.url is not None  # one of the three is given
    return ArticleInput("url", check_article_url(article.url, fetch))


def _not_one_input(given: list[str]) -> ApiProblem:
    """422 naming the fields: the ones sent together, or the ones of which one is missing."""
    if not given:
        return ApiProblem(
            422,
            "missing_input",
            "the article is missing: send one of `text`, `html` or `url`",
            fields=list(INPUT_FIELDS),
        )
    names = " and ".join(f"`{name}`" for name in given)
    return ApiProblem(
        422,
        "conflicting_inputs",
        f"{names} were sent together; send exactly one of `text`, `html` or `url`",
        fields=given,
    )
