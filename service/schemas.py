"""The shapes of the HTTP contract, as msgspec Structs (shared by the API and the worker).

This module imports nothing heavy: the API process uses it without torch.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from service.text.glossary_report import GlossaryReport, SentenceGlossaryReport


class JobStatus(enum.StrEnum):
    """Where a job is in its life; ``TERMINAL`` ones never change again."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class ModelInfo(msgspec.Struct, frozen=True):
    """Which model ran, at which revision, under which backend and number format."""

    id: str
    revision: str
    backend: str
    compute_type: str


class AlignedSentence(msgspec.Struct, frozen=True):
    """One German sentence and its English translation, so an editor can check a line."""

    de: str
    en: str
    paragraph: int
    cached: bool = False
    #: What the glossary did to this sentence (None without a glossary, or in older results).
    glossary: SentenceGlossaryReport | None = None


class FactCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One checkable fact of the summary and whether the article supports it.

    ``start``/``end`` are character offsets into ``summary`` (so an editor page can underline
    the span); ``sentence`` is the index into ``alignment`` of the sentence that carries the fact,
    ``found_in`` says which side of it: the English ``translation`` or the German ``source``.
    """

    kind: Literal["number", "date", "weekday", "money", "percent", "name"]
    text: str
    start: int
    end: int
    supported: bool
    sentence: int | None = None
    found_in: Literal["translation", "source"] | None = None


SourceKind = Literal["text", "html", "url"]


class ArticleSource(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Where the article came from and what its page said about it (the result's ``source``)."""

    kind: SourceKind
    #: The URL asked for, and where the redirects ended (``kind == "url"``).
    url: str | None = None
    final_url: str | None = None
    title: str | None = None
    author: str | None = None
    date: str | None = None
    site_name: str | None = None
    #: Characters of article text the pipeline received.
    characters: int = 0
    #: Set when the extracted text is suspiciously short (a paywall teaser).
    warning: str | None = None


class Result(msgspec.Struct, kw_only=True):
    """Everything one article produced."""

    title_en: str | None
    translation: str
    summary: str
    style: str
    source_language: str
    german_share: float
    sentences_in: int
    sentences_translated: int
    sentences_from_cache: int
    alignment: list[AlignedSentence]
    models: dict[str, ModelInfo]
    timings_ms: dict[str, float]
    summary_chunks: int
    summary_rounds: int
    cached: bool = False
    #: Facts of the summary looked up in the article (empty in results cached before checking).
    checks: list[FactCheck] = msgspec.field(default_factory=list)
    #: The texts of the unsupported facts; empty when every fact was found.
    summary_flags: list[str] = msgspec.field(default_factory=list)
    #: How many summaries were generated (2 when ``fact_check = "retry"`` regenerated one) and
    #: which of them (1-based) was kept: the one with fewer unsupported facts, the first on a tie.
    summary_attempts: int = 1
    summary_kept: int = 1
    #: Which input the article came from (``text``, ``html``, ``url``) and the page's metadata;
    #: None in results cached before HTML and URL inputs existed.
    source: ArticleSource | None = None
    #: The glossary used and its totals (None without one, or in results cached before).
    glossary: GlossaryReport | None = None


class Progress(msgspec.Struct):
    """How far a job is: the stage and, within it, units done of total."""

    stage: str = "queued"
    done: int = 0
    total: int = 0


class TranslatedParagraph(msgspec.Struct, frozen=True, kw_only=True):
    """One paragraph of a running job whose sentences are all translated (``partial``).

    Sent as soon as its last sentence is done, so an editor reads the English while the summary
    is still being written; the finished result's ``alignment`` holds the same sentences.
    """

    paragraph: Annotated[
        int, msgspec.Meta(description="0-based paragraph index, as in the sentences' `paragraph`")
    ]
    first_sentence: Annotated[
        int,
        msgspec.Meta(description="Index in the result's `alignment` of its first sentence"),
    ]
    sentences: Annotated[
        list[AlignedSentence],
        msgspec.Meta(description="Its sentences, German and English, as `alignment` has them"),
    ]


class JobError(msgspec.Struct, omit_defaults=True):
    """Why a job failed, with a stable code."""

    code: str
    detail: str
    #: The HTTP status the same error has as a request's problem (502 for ``fetch_failed``).
    status: int | None = None
    #: The article site's own HTTP status when fetching its page failed (404, 503, ...).
    upstream_status: int | None = None


class Links(msgspec.Struct):
    self: str
    events: str


class JobView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A job as ``GET /jobs/{id}`` shows it."""

    id: str
    status: JobStatus
    progress: Progress
    created_at: str
    links: Links
    result: Result | None = None
    error: JobError | None = None
    finished_at: str | None = None
    attempts: int = 0
    external_id: str | None = None
    metadata: dict[str, str | int | float | bool | None] | None = None
    #: A running job's paragraphs translated so far, in paragraph order (possibly none yet);
    #: absent while queued and once finished (the result then holds the whole translation).
    partial: Annotated[
        list[TranslatedParagraph] | None,
        msgspec.Meta(
            description=(
                "Only while the job is running: the paragraphs translated so far, in paragraph "
                "order (empty until the first is done). Absent while queued and once finished, "
                "when `result` holds the whole translation."
            )
        ),
    ] = None
