"""How the API shows a queue job: SAQ's statuses mapped onto the contract's, and the job view."""

from __future__ import annotations

import datetime as dt

import msgspec
from saq import Job, Status

from service.constants import CANCELED_BY_CLIENT
from service.schemas import JobError, JobStatus, JobView, Links, Progress, Result

__all__ = ["finished_view", "job_links", "status_of", "view_of"]


def _iso(epoch_ms: int) -> str | None:
    if not epoch_ms:
        return None
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def job_links(job_id: str) -> Links:
    return Links(self=f"/jobs/{job_id}", events=f"/jobs/{job_id}/events")


def status_of(job: Job) -> JobStatus:
    """Map SAQ's statuses onto the API's.

    An abort is a cancel only if a client asked for it.  Otherwise ``aborting`` is the sweep
    taking a dead worker's job back (it is re-queued next, or failed if out of attempts), so it
    shows as queued; only ``aborted`` without a client's request is a failure.
    """
    if job.status in (Status.NEW, Status.QUEUED):
        return JobStatus.QUEUED
    if job.status == Status.ACTIVE:
        return JobStatus.RUNNING
    if job.status == Status.COMPLETE:
        return JobStatus.SUCCEEDED
    if job.error == CANCELED_BY_CLIENT and job.status in (Status.ABORTING, Status.ABORTED):
        return JobStatus.CANCELED
    if job.status == Status.ABORTING:
        return JobStatus.QUEUED
    return JobStatus.FAILED


def finished_view(job: Job, result: Result) -> JobView:
    """The view of a job whose result is ready but which SAQ has not marked complete yet."""
    view = view_of(job)
    now_iso = dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")
    return msgspec.structs.replace(
        view,
        status=JobStatus.SUCCEEDED,
        progress=Progress(stage="done", done=result.sentences_in, total=result.sentences_in),
        result=result,
        error=None,
        finished_at=now_iso,
    )


def view_of(job: Job) -> JobView:
    """The API's view of a SAQ job."""
    kwargs = job.kwargs or {}
    status = status_of(job)
    meta = job.meta or {}
    progress = msgspec.convert(meta.get("progress") or {}, Progress)
    if status == JobStatus.QUEUED:
        progress = Progress(stage="queued")
    result = None
    if status == JobStatus.SUCCEEDED and job.result is not None:
        result = msgspec.convert(job.result, Result)
        progress = Progress(stage="done", done=result.sentences_in, total=result.sentences_in)
    error = None
    if status == JobStatus.FAILED:
        stored = meta.get("error")
        error = (
            msgspec.convert(stored, JobError)
            if stored
            else JobError(code="job_failed", detail=_last_line(job.error))
        )
    elif status == JobStatus.CANCELED:
        error = JobError(code="canceled", detail=CANCELED_BY_CLIENT)
    return JobView(
        id=job.key,
        status=status,
        progress=progress,
        created_at=_iso(job.queued) or "",
        finished_at=_iso(job.completed)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
        else None,
        attempts=job.attempts,
        links=job_links(job.key),
        result=result,
        error=error,
        external_id=kwargs.get("external_id"),
        metadata=kwargs.get("metadata"),
    )


def _last_line(text: str | None) -> str:
    """The last line of a traceback: the exception, without the frames (and their paths)."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the job failed"
