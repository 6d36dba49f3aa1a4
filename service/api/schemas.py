"""The request and response bodies of the HTTP API (the job view and result live in
``service.schemas``, shared with the worker)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from service.schemas import JobStatus, Links

__all__ = [
    "BatchAccepted",
    "BatchItem",
    "BatchRequest",
    "JobAccepted",
    "Liveness",
    "Readiness",
    "Redelivery",
    "StyleInfo",
    "SummarizeRequest",
]

MetadataValue = Annotated[str, Meta(max_length=1000)] | int | float | bool | None
Metadata = Annotated[
    dict[Annotated[str, Meta(min_length=1, max_length=100)], MetadataValue],
    Meta(max_length=50, description="Up to 50 keys, echoed back on the job."),
]


class SummarizeRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One German article to translate into English and summarize, as text, HTML or a URL."""

    text: (
        Annotated[str, Meta(description="The article body; paragraphs separated by blank lines.")]
        | None
    ) = None
    html: (
        Annotated[
            str,
            Meta(
                description="The article as HTML instead: a whole page or a CMS body fragment; "
                "the worker extracts its text, title, author, date and site name."
            ),
        ]
        | None
    ) = None
    url: (
        Annotated[
            str,
            Meta(
                max_length=2048,
                description="The article's http(s) URL instead: the worker fetches the page "
                "and extracts it.  Exactly one of `text`, `html` and `url` is needed.",
            ),
        ]
        | None
    ) = None
    title: (
        Annotated[
            str,
            Meta(
                max_length=1000, description="The headline; for html and url, the page's if empty."
            ),
        ]
        | None
    ) = None
    style: (
        Annotated[
            str,
            Meta(
                max_length=64,
                description="A summary style from GET /styles; the server's default if omitted.",
            ),
        ]
        | None
    ) = None
    callback_url: (
        Annotated[
            str,
            Meta(max_length=2048, description="Public http(s) URL that receives webhook events."),
        ]
        | None
    ) = None
    external_id: (
        Annotated[str, Meta(max_length=200, description="Your own id for the article.")] | None
    ) = None
    metadata: Metadata | None = None
    allow_non_german: Annotated[
        bool, Meta(description="Translate even when the text does not look German.")
    ] = False
    glossary_id: (
        Annotated[
            str,
            Meta(
                max_length=128,
                description=(
                    "A glossary from POST /v2/glossaries; null for none; the server's default "
                    "glossary when omitted."
                ),
            ),
        ]
        | msgspec.UnsetType
        | None
    ) = msgspec.UNSET


class BatchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Up to 100 articles.  Each is validated on its own, so one bad article spoils nothing."""

    articles: list[dict[str, Any]]


class JobAccepted(msgspec.Struct, kw_only=True):
    """A job that is not finished yet: follow ``links.self`` or ``links.events``."""

    id: str
    status: JobStatus
    links: Links


class BatchItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One article of a batch: its job (``id``, ``status``, ``links``), or its ``error``.

    ``error`` is the problem document the same article would get from ``POST /summarize``.
    """

    index: int
    id: str | None = None
    status: JobStatus | None = None
    links: Links | None = None
    error: dict[str, Any] | None = None


class BatchAccepted(msgspec.Struct, kw_only=True):
    jobs: list[BatchItem]


class StyleInfo(msgspec.Struct, kw_only=True):
    """One summary style, and what of it the loaded summarizer uses."""

    name: str
    description: str
    version: int
    digest: str
    layout: str
    """``paragraph``, ``bullets`` or ``headline``: how the summary is laid out."""
    summarizer: str | None
    """The summarization model the workers run; None until a worker has started."""
    instruction_applies: bool | None
    """Whether that model follows the style's ``instruction``: instruction-following models
    (T5/FLAN-T5) do; BART-style models such as the default ignore it, and only the style's
    generation settings (lengths, beams) and layout shape their summaries.  None until a
    worker has started."""


class Liveness(msgspec.Struct):
    status: str = "ok"


class Redelivery(msgspec.Struct, kw_only=True):
    """How many deliveries were scheduled again."""

    job_id: str
    scheduled: int


class Readiness(msgspec.Struct, kw_only=True):
    status: str
    workers: list[str]
