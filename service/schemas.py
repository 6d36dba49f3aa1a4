"""The shapes of the HTTP contract, as msgspec Structs (shared by the API and the worker).

This module imports nothing heavy: the API process uses it without torch.
"""

from __future__ import annotations

import enum

import msgspec


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


class Progress(msgspec.Struct):
    """How far a job is: the stage and, within it, units done of total."""

    stage: str = "queued"
    done: int = 0
    total: int = 0


class JobError(msgspec.Struct):
    """Why a job failed, with a stable code."""

    code: str
    detail: str


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
